"""Random and grid search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..symbolic import DNA
from ._base import Algorithm


class Random(Algorithm):
    """Uniform random search: each decision uniform given its parents.

    Args:
        seed: the seed.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.Random(seed=1)
        >>> algo.setup(mx.dna_spec([mx.oneof([1, 2, 3]), mx.floatv(0.0, 1.0)]))
        >>> len(algo.propose())
        2

    References:
        Bergstra & Bengio, Random Search for Hyper-Parameter Optimization, JMLR 2012.
    """

    def _propose(self) -> DNA:
        return self.spec.random_dna(self.rng)


class Grid(Algorithm):
    """Exhaustive search over a finite space, in DNA order (deterministic).

    After the last point, `propose` raises StopIteration, which ends a search.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.Grid()
        >>> algo.setup(mx.dna_spec([mx.oneof([1, 2]), mx.oneof([3, 4])]))
        >>> [algo.propose().values for _ in range(4)]
        [(0, 0), (0, 1), (1, 0), (1, 1)]
    """

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self._it: Iterator[DNA] | None = None

    def reset(self) -> None:
        if not self.spec.is_finite:
            raise ValueError("Grid needs a finite space, but this one has float decisions")
        self._it = self.spec.iter_dna()

    def _propose(self) -> DNA:
        assert self._it is not None, "setup() made the iterator"
        return next(self._it)

    def config(self) -> dict[str, Any]:
        return {}
