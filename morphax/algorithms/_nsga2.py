"""NSGA-II: multi-objective evolution by non-dominated sorting and crowding.

The numerics (`pareto_front`, `non_dominated_sort`, `crowding_distance`) are
plain functions over a `[n, m]` array of objective values, all maximized; the
algorithm composes them with a crowded binary tournament, a recombinator and
a mutator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._typing import Reward
from ..symbolic import DNA
from ._base import Algorithm
from ._evolution import _as_operator, _check_int, _check_prob
from ._mutators import Mutator, Recombinator, Uniform, UniformCrossover


def _points(points: Any) -> np.ndarray:
    f = np.asarray(points, dtype=float)
    if f.ndim != 2:
        if f.size == 0:
            return f.reshape(0, 0)
        raise ValueError(
            f"objective values must be a list of points of equal length ([n, m]), but got "
            f"an array of shape {f.shape}"
        )
    return f


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
    """The indices of the non-dominated points, all objectives maximized.

    A point dominates another if it is at least as good in every objective and
    better in one. Equal points do not dominate each other, so duplicates on
    the front are all kept. Runs in O(n log n + n f m) for f front points.

    Args:
        points: `[n, m]` objective values (n points, m objectives).

    Returns:
        The indices of the front, in increasing order.

    Examples:
        >>> from morphax.algorithms import pareto_front
        >>> pareto_front([(1, 5), (2, 2), (3, 1), (1, 1), (3, 1)])
        [0, 1, 2, 4]

    References:
        Kung, Luccio & Preparata, On Finding the Maxima of a Set of Vectors,
        JACM 22(4), 1975.
    """
    f = _points(points)
    if len(f) == 0:
        return []
    # A dominating point comes before the point it dominates in descending
    # lexicographic order, and dominance is transitive: comparing each point
    # with the front found so far is enough.
    order = np.lexsort(-f.T[::-1])
    front: list[int] = []
    for i in order.tolist():
        if front:
            g = f[front]
            if np.any(np.all(g >= f[i], axis=1) & np.any(g > f[i], axis=1)):
                continue
        front.append(i)
    return sorted(front)


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[list[int]]:
    """The fronts of `points` (maximized): front 0 is the Pareto front, etc.

    Examples:
        >>> from morphax.algorithms import non_dominated_sort
        >>> non_dominated_sort([(1, 1), (2, 2), (0, 3), (0, 0)])
        [[1, 2], [0], [3]]

    References:
        Deb, Pratap, Agarwal & Meyarivan, A Fast and Elitist Multiobjective
        Genetic Algorithm: NSGA-II, IEEE TEC 6(2), 2002 (fast non-dominated sort).
    """
    f = _points(points)
    n = len(f)
    if n == 0:
        return []
    ge = np.all(f[:, None, :] >= f[None, :, :], axis=2)
    gt = np.any(f[:, None, :] > f[None, :, :], axis=2)
    dominates = ge & gt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)
    fronts: list[list[int]] = []
    current = np.flatnonzero(count == 0)
    while current.size:
        fronts.append(current.tolist())
        count = count - dominates[current].sum(axis=0)
        count[current] = -1
        current = np.flatnonzero(count == 0)
    return fronts


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The crowding distance of each point of one front (boundary points: inf).

    Examples:
        >>> from morphax.algorithms import crowding_distance
        >>> crowding_distance([(0, 4), (1, 2), (4, 0)]).tolist()
        [inf, 2.0, inf]

    References:
        Deb, Pratap, Agarwal & Meyarivan, A Fast and Elitist Multiobjective
        Genetic Algorithm: NSGA-II, IEEE TEC 6(2), 2002.
    """
    f = _points(points)
    n = len(f)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for k in range(f.shape[1]):
        order = np.argsort(f[:, k], kind="stable")
        col = f[order, k]
        dist[order[0]] = dist[order[-1]] = math.inf
        span = col[-1] - col[0]
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


class Individual(NamedTuple):
    """A member of the NSGA-II population: its DNA, objectives, rank and crowding."""

    dna: DNA
    objectives: tuple[float, ...]
    rank: int = 0
    crowding: float = 0.0


class NSGA2(Algorithm):
    """NSGA-II for several objectives, all maximized (generational).

    The first `population_size` results (random proposals) form the first
    parent population. Each proposal is an offspring of the current parents:
    two binary tournaments by crowded comparison (lower rank wins, then larger
    crowding distance) pick two parents, the recombinator mixes them with
    probability `recombination_prob`, and the mutator changes the child.
    Every `population_size` results (a generation; results of DNA it did not
    propose count too), parents and offspring are merged, duplicate DNA
    dropped, and the next parents are the best `population_size` by
    non-dominated rank, then crowding distance. A None reward (a failed trial)
    or one with a NaN is ignored.

    Args:
        objectives: the names of the metrics it reads, in order (at least one,
            unique); rewards are tuples of floats in this order.
        population_size: the population size N (>= 2).
        mutator: None for `Uniform()`.
        recombinator: None for `UniformCrossover()`.
        recombination_prob: the probability to recombine (0.9 as in the paper).
        seed: the seed.

    Raises:
        ValueError: if an argument is out of range.
        TypeError: if `objectives` or an operator has the wrong type.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.NSGA2(objectives=("acc", "speed"), population_size=6)
        >>> algo.setup(mx.dna_spec([mx.oneof(range(5)) for _ in range(4)]))
        >>> for _ in range(30):
        ...     dna = algo.propose()
        ...     algo.feedback(dna, (float(sum(dna.values)), float(-max(dna.values))))
        >>> algo.objectives, len(algo.population)
        (('acc', 'speed'), 6)

    References:
        Deb, Pratap, Agarwal & Meyarivan, A Fast and Elitist Multiobjective
        Genetic Algorithm: NSGA-II, IEEE Transactions on Evolutionary
        Computation 6(2), 2002.
    """

    def __init__(
        self,
        *,
        objectives: Sequence[str],
        population_size: int = 20,
        mutator: Mutator | dict[str, Any] | None = None,
        recombinator: Recombinator | dict[str, Any] | None = None,
        recombination_prob: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        name = type(self).__name__
        if isinstance(objectives, str) or not isinstance(objectives, Sequence):
            raise TypeError(
                f"{name} needs `objectives` as a list of metric names, e.g. "
                f"objectives=('accuracy', 'speed'), but got {objectives!r}"
            )
        if not objectives or len(set(objectives)) != len(objectives):
            raise ValueError(
                f"{name} needs at least one objective name, without repeats, but got "
                f"objectives={tuple(objectives)!r}"
            )
        for o in objectives:
            if not isinstance(o, str):
                raise TypeError(f"{name} needs metric names (str) as objectives, but got {o!r}")
        _check_int(population_size, "population_size", name, 2)
        _check_prob(recombination_prob, "recombination_prob", name)
        self._names = tuple(objectives)
        self.objectives = self._names
        self.population_size = int(population_size)
        self.mutator = _as_operator(
            Uniform() if mutator is None else mutator, Mutator, "mutator", name
        )
        self.recombinator = _as_operator(
            UniformCrossover() if recombinator is None else recombinator,
            Recombinator,
            "recombinator",
            name,
        )
        self.recombination_prob = float(recombination_prob)
        self._parents: list[Individual] = []
        self._offspring: list[Individual] = []

    def reset(self) -> None:
        self._parents = []
        self._offspring = []

    @property
    def population(self) -> list[Individual]:
        """The current parent population (with ranks and crowding distances)."""
        return list(self._parents)

    def _propose(self) -> DNA:
        if not self._parents:
            return self.spec.random_dna(self.rng)
        a = self._tournament()
        if self.rng.random() < self.recombination_prob:
            b = self._tournament()
            a = self.recombinator(self.spec, a, b, self.rng)
        return self.mutator(self.spec, a, self.rng)

    def _tournament(self) -> DNA:
        """Binary tournament by crowded comparison (ties: the first drawn)."""
        i, j = self.rng.integers(0, len(self._parents), 2).tolist()
        a, b = self._parents[i], self._parents[j]
        if (b.rank, -b.crowding) < (a.rank, -a.crowding):
            return b.dna
        return a.dna

    def _feedback(self, dna: DNA, reward: Reward) -> None:
        objs = self._objectives(reward)
        if objs is None:
            return
        self._offspring.append(Individual(dna, objs))
        if len(self._offspring) >= self.population_size:
            self._parents = self._select(self._parents + self._offspring)
            self._offspring = []

    def _objectives(self, reward: Reward) -> tuple[float, ...] | None:
        if reward is None:
            return None
        m = len(self._names)
        if isinstance(reward, int | float) and m == 1:
            reward = (float(reward),)
        if (
            not isinstance(reward, tuple | list)
            or len(reward) != m
            or not all(isinstance(x, int | float | np.number) for x in reward)
        ):
            raise TypeError(
                f"{type(self).__name__} reads {m} objectives {self._names} and needs a "
                f"tuple of {m} floats per reward, but got {reward!r}"
            )
        objs = tuple(float(x) for x in reward)
        return None if any(math.isnan(x) for x in objs) else objs

    def _select(self, pool: list[Individual]) -> list[Individual]:
        """Environmental selection: best N by rank, then crowding distance."""
        seen: set[DNA] = set()
        unique = []
        for ind in pool:
            if ind.dna not in seen:
                seen.add(ind.dna)
                unique.append(ind)
        f = np.array([ind.objectives for ind in unique])
        out: list[Individual] = []
        for rank, front in enumerate(non_dominated_sort(f)):
            crowd = crowding_distance(f[front])
            members = [
                unique[i]._replace(rank=rank, crowding=float(c))
                for i, c in zip(front, crowd.tolist(), strict=True)
            ]
            room = self.population_size - len(out)
            if len(members) > room:  # the last front: the least crowded first
                order = sorted(range(len(members)), key=lambda k: -members[k].crowding)
                members = [members[k] for k in order[:room]]
            out.extend(members)
            if len(out) >= self.population_size:
                break
        return out

    def config(self) -> dict[str, Any]:
        return {
            "objectives": list(self._names),
            "population_size": self.population_size,
            "mutator": self.mutator.to_json_value(),
            "recombinator": self.recombinator.to_json_value(),
            "recombination_prob": self.recombination_prob,
            "seed": self.seed,
        }
