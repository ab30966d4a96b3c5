"""Mutators and recombinators for evolutionary algorithms (composable).

Examples:
    >>> import morphax as mx
    >>> from morphax.algorithms import mutators
    >>> m = mutators.OneOf([mutators.Uniform(), mutators.Gaussian(scale=0.2)], weights=[3, 1])
    >>> algo = mx.algorithms.RegularizedEvolution(population_size=10, tournament_size=3, mutator=m)
"""

from ._mutators import Chain as Chain
from ._mutators import Gaussian as Gaussian
from ._mutators import Mutator as Mutator
from ._mutators import OneOf as OneOf
from ._mutators import Recombinator as Recombinator
from ._mutators import Uniform as Uniform
from ._mutators import UniformCrossover as UniformCrossover
