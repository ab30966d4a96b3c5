"""Steady-state evolution: a population, a selector and a mutator.

`Evolution` is the composition; `RegularizedEvolution` (aging evolution) is
that composition with a tournament selector and a uniform mutator, checked
arguments and defaults, the way `optax.adam` is a chain of two transforms.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from .._typing import Reward
from ..symbolic import DNA
from ._base import Algorithm, scalar_reward
from ._mutators import (
    Chain,
    Gaussian,
    Mutator,
    Operator,
    RandomChoice,
    Recombinator,
    Uniform,
    UniformCrossover,
)


class Member(NamedTuple):
    """One evaluated DNA of a population."""

    dna: DNA
    reward: float


class Selector(Operator):
    """Base class of selectors: `selector(population, rng)` returns a member."""

    def __call__(self, population: Sequence[Member], rng: np.random.Generator) -> Member:
        raise NotImplementedError


class TournamentSelector(Selector):
    """The best of `size` members drawn uniformly at random, with replacement.

    Drawing with replacement follows Real et al. (Algorithm 1). Ties go to
    the member drawn first.

    Args:
        size: how many members compete (>= 1).

    Raises:
        ValueError: if `size` is not a positive int.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> from morphax.algorithms import Member, TournamentSelector
        >>> pop = [Member(mx.DNA([i]), float(i)) for i in range(5)]
        >>> TournamentSelector(5)(pop, np.random.default_rng(0)).reward
        4.0

    References:
        Goldberg & Deb, A Comparative Analysis of Selection Schemes Used in
        Genetic Algorithms, FOGA 1991.
    """

    def __init__(self, size: int = 3) -> None:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"TournamentSelector needs an int `size` >= 1, but got size={size!r}")
        self.size = int(size)

    def config(self) -> dict[str, Any]:
        return {"size": self.size}

    def __call__(self, population: Sequence[Member], rng: np.random.Generator) -> Member:
        if not population:
            raise ValueError("TournamentSelector needs a non-empty population")
        drawn = rng.integers(0, len(population), self.size).tolist()
        return max((population[i] for i in drawn), key=lambda m: m.reward)


class Evolution(Algorithm):
    """Steady-state evolution with an aging population.

    The population is the last `population_size` successful feedbacks (the
    oldest leaves first). Until it is full (counting random proposals still
    waiting for feedback), proposals are random; after that, each proposal is
    `mutator(selector(population))`, or, with probability
    `recombination_prob`, the mutated `recombinator` child of two selected
    parents. Proposals made while feedback is pending use the population
    available. A feedback of a DNA it did not propose joins the population
    like any other; a None or NaN reward (a failed trial) is ignored.

    Args:
        population_size: how many recent members make the population (>= 1).
        selector: picks a parent from the population.
        mutator: makes a child from a parent.
        recombinator: makes a child from two parents (None: `UniformCrossover()`,
            used only when `recombination_prob > 0`).
            Each operator may also be given as its `to_json_value()`, so
            `Evolution(**algo.config())` rebuilds `algo`.
        recombination_prob: the probability to recombine before mutating.
        seed: the seed.

    Raises:
        TypeError: if an operator has the wrong type.
        ValueError: if a size or probability is out of range.

    Examples:
        >>> import morphax as mx
        >>> from morphax.algorithms import Evolution, TournamentSelector
        >>> from morphax.algorithms.mutators import Uniform
        >>> algo = Evolution(population_size=4, selector=TournamentSelector(2), mutator=Uniform())
        >>> algo.setup(mx.dna_spec([mx.oneof(range(4)) for _ in range(3)]))
        >>> for _ in range(12):
        ...     dna = algo.propose()
        ...     algo.feedback(dna, float(sum(dna.values)))
        >>> len(algo.population)
        4

    References:
        Real et al., Regularized Evolution for Image Classifier Architecture
        Search, AAAI 2019.
    """

    def __init__(
        self,
        *,
        population_size: int,
        selector: Selector | dict[str, Any],
        mutator: Mutator | dict[str, Any],
        recombinator: Recombinator | dict[str, Any] | None = None,
        recombination_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        name = type(self).__name__
        _check_int(population_size, "population_size", name, 1)
        _check_prob(recombination_prob, "recombination_prob", name)
        self.population_size = int(population_size)
        self.selector = _as_operator(selector, Selector, "selector", name)
        self.mutator = _as_operator(mutator, Mutator, "mutator", name)
        self.recombinator = _as_operator(
            UniformCrossover() if recombinator is None else recombinator,
            Recombinator,
            "recombinator",
            name,
        )
        self.recombination_prob = float(recombination_prob)
        self._population: deque[Member] = deque(maxlen=self.population_size)
        self._pending: Counter[DNA] = Counter()

    def reset(self) -> None:
        self._population = deque(maxlen=self.population_size)
        self._pending = Counter()

    @property
    def population(self) -> list[Member]:
        """The current population, oldest first."""
        return list(self._population)

    def _propose(self) -> DNA:
        pop = self._population
        if not pop or len(pop) + self._pending.total() < self.population_size:
            dna = self.spec.random_dna(self.rng)
            self._pending[dna] += 1
            return dna
        parent = self.selector(pop, self.rng).dna
        if self.recombination_prob > 0 and self.rng.random() < self.recombination_prob:
            other = self.selector(pop, self.rng).dna
            parent = self.recombinator(self.spec, parent, other, self.rng)
        return self.mutator(self.spec, parent, self.rng)

    def _feedback(self, dna: DNA, reward: Reward) -> None:
        if self._pending[dna]:
            self._pending[dna] -= 1
            if not self._pending[dna]:
                del self._pending[dna]
        r = scalar_reward(reward, type(self).__name__)
        if r is None or math.isnan(r):
            return
        self._population.append(Member(dna, r))

    def config(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "selector": self.selector.to_json_value(),
            "mutator": self.mutator.to_json_value(),
            "recombinator": self.recombinator.to_json_value(),
            "recombination_prob": self.recombination_prob,
            "seed": self.seed,
        }


# -- operators from their descriptions ---------------------------------------------

_OPERATORS: dict[str, type[Mutator] | type[Recombinator] | type[Selector]] = {
    "Uniform": Uniform,
    "Gaussian": Gaussian,
    "Chain": Chain,
    "RandomChoice": RandomChoice,
    "OneOf": RandomChoice,  # its earlier name (in stored studies)
    "UniformCrossover": UniformCrossover,
    "TournamentSelector": TournamentSelector,
}
_EXAMPLES = {
    "selector": "TournamentSelector(3)",
    "mutator": "Uniform()",
    "recombinator": "UniformCrossover()",
}
_T = TypeVar("_T")


def operator_from_json_value(
    description: dict[str, Any],
) -> Mutator | Recombinator | Selector:
    """Rebuilds a mutator, recombinator or selector from its `to_json_value()`.

    Args:
        description: `{"name": ..., "args": {...}}`, nested for `Chain` and
            `RandomChoice`.

    Raises:
        ValueError: if the description is malformed or names no known operator.

    Examples:
        >>> import morphax as mx
        >>> from morphax.algorithms import mutators
        >>> m = mutators.RandomChoice([mutators.Uniform(), mutators.Gaussian(scale=0.3)])
        >>> mx.algorithms.operator_from_json_value(m.to_json_value())
        RandomChoice(mutators=[Uniform(), Gaussian(scale=0.3)], weights=None)
    """
    if not isinstance(description, dict) or set(description) != {"name", "args"}:
        raise ValueError(
            f"an operator description is {{'name': ..., 'args': {{...}}}}, but got {description!r}"
        )
    name, args = description["name"], dict(description["args"])
    cls = _OPERATORS.get(name)
    if cls is None:
        raise ValueError(f"unknown operator {name!r}; known: {sorted(_OPERATORS)}")
    if "mutators" in args:
        args["mutators"] = [operator_from_json_value(d) for d in args["mutators"]]
    return cls(**args)


#: The earlier name of `operator_from_json_value`.
operator_from_description = operator_from_json_value


def _as_operator(value: Any, cls: type[_T], arg: str, who: str) -> _T:
    """`value` (an instance of `cls`, or its description) as an instance of `cls`."""
    if isinstance(value, dict):
        value = operator_from_json_value(value)
    if not isinstance(value, cls):
        raise TypeError(
            f"{who} needs a {cls.__name__} as `{arg}` (e.g. {_EXAMPLES[arg]}), but got {value!r}"
        )
    return value


def _check_int(value: Any, arg: str, who: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{who} needs an int `{arg}` >= {low}, but got {arg}={value!r}")


def _check_prob(value: Any, arg: str, who: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{who} needs `{arg}` in [0, 1], but got {arg}={value!r}")


class RegularizedEvolution(Evolution):
    """Aging (regularized) evolution: tournament selection plus mutation.

    The first `population_size` proposals are random. Then each proposal
    draws `tournament_size` members of the population (the last
    `population_size` results, the oldest removed first), mutates the best,
    and, with probability `recombination_prob`, first recombines it with the
    winner of a second tournament. This is `Evolution` with a
    `TournamentSelector`. The defaults (population 20, tournament P // 2: strong
    selection for budgets of about a hundred evaluations) were chosen on
    NAS-Bench-201 CIFAR-10 with held-out seeds, among P in 5..30 and S in
    2..20 (`benchmarks/nasbench201.py`; the README has the numbers). Real et
    al. use P=100, S=25 for budgets of thousands.

    Args:
        population_size: the population size P (>= 1).
        tournament_size: the sample size S (1 <= S <= P); None for P // 2.
        mutator: None for `Uniform()` (one decision resampled).
        recombinator: None for `UniformCrossover()` (used only when
            `recombination_prob > 0`). Operators may also be given as their
            `to_json_value()`, so `RegularizedEvolution(**algo.config())`
            rebuilds `algo`.
        recombination_prob: the probability to recombine before mutating.
        seed: the seed.

    Raises:
        ValueError: if a size or probability is out of range.
        TypeError: if an operator has the wrong type.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.RegularizedEvolution(population_size=5, tournament_size=2, seed=1)
        >>> algo.setup(mx.dna_spec([mx.oneof(range(4)) for _ in range(6)]))
        >>> best = 0.0
        >>> for _ in range(60):
        ...     dna = algo.propose()
        ...     reward = float(sum(v == 3 for v in dna.values))
        ...     algo.feedback(dna, reward)
        ...     best = max(best, reward)
        >>> best >= 4, len(algo.population)
        (True, 5)

    References:
        Real, Aggarwal, Huang & Le, Regularized Evolution for Image Classifier
        Architecture Search, AAAI 2019. Dong & Yang, NAS-Bench-201: Extending
        the Scope of Reproducible Neural Architecture Search, ICLR 2020.
    """

    def __init__(
        self,
        *,
        population_size: int = 20,
        tournament_size: int | None = None,
        mutator: Mutator | dict[str, Any] | None = None,
        recombinator: Recombinator | dict[str, Any] | None = None,
        recombination_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        name = type(self).__name__
        _check_int(population_size, "population_size", name, 1)
        if tournament_size is None:
            tournament_size = max(1, population_size // 2)
        _check_int(tournament_size, "tournament_size", name, 1)
        if tournament_size > population_size:
            raise ValueError(
                f"{name} needs tournament_size <= population_size, but got "
                f"tournament_size={tournament_size}, population_size={population_size}; "
                "lower tournament_size or raise population_size"
            )
        super().__init__(
            population_size=population_size,
            selector=TournamentSelector(tournament_size),
            mutator=Uniform() if mutator is None else mutator,
            recombinator=recombinator,
            recombination_prob=recombination_prob,
            seed=seed,
        )
        self.tournament_size = int(tournament_size)

    def config(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
            "mutator": self.mutator.to_json_value(),
            "recombinator": self.recombinator.to_json_value(),
            "recombination_prob": self.recombination_prob,
            "seed": self.seed,
        }
