"""Mutators and recombinators for evolutionary algorithms (composable).

Examples:
    >>> import morphax as mx
    >>> from morphax.algorithms import mutators
    >>> m = mutators.RandomChoice([mutators.Uniform(), mutators.Gaussian(scale=0.2)], weights=[3, 1])
    >>> algo = mx.algorithms.RegularizedEvolution(population_size=10, tournament_size=3, mutator=m)
"""

import warnings
from typing import Any

from ._mutators import Chain as Chain
from ._mutators import Gaussian as Gaussian
from ._mutators import Mutator as Mutator
from ._mutators import Operator as Operator
from ._mutators import RandomChoice as RandomChoice
from ._mutators import Recombinator as Recombinator
from ._mutators import Uniform as Uniform
from ._mutators import UniformCrossover as UniformCrossover


def __getattr__(name: str) -> Any:
    if name == "OneOf":  # renamed: `mx.OneOf` is the hyper-value
        warnings.warn(
            "morphax.algorithms.mutators.OneOf is now RandomChoice (mx.OneOf is the "
            "hyper-value); use mutators.RandomChoice",
            DeprecationWarning,
            stacklevel=2,
        )
        return RandomChoice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
