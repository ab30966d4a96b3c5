"""Decision points: each kind of decision owns its rules, written once here.

A point is frozen. Its kind says, in one place, which values it takes
(`check`), how a uniform number in [0, 1) becomes a value (`sample`, used by
scalar and vectorized sampling alike), its number of distinct outcomes
(`size`), which column of the flat array form holds it (`in_indices`), and
which sub-space a value enables (`subspace`). The spec decoder, the space
compiler, the mutators, the pyglove adapter and the policy layout call these.

A new decision kind is a new subclass here, plus its hyper-value in
`_hyper.py` and the lines in the compilers (`_space.py` for static spaces,
`_dynamic.py` for traced ones) that make it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Subspace = tuple["DecisionPoint", ...]
_F32 = struct.Struct("f")


@dataclass(frozen=True, eq=False)
class DecisionPoint:
    """One decision of a space (a column of the flat array form).

    Attributes:
        id: stable identifier: the user-given name or the location.
        location: where the hyper-value sits (path in the program, or the
            define-by-run call site).
        name: the user-given name, or None.
        column: the column of this decision in the flat array form (set when
            a :class:`DNASpec` numbers its points; -1 before).
        parent: the column of the choice that enables this decision, or -1.
        parent_value: the index (or int value) of `parent` that enables it.
    """

    id: str
    location: str
    name: str | None
    column: int = -1
    parent: int = -1
    parent_value: int = -1

    #: Whether the value lives in the `indices` column (else in `values`).
    in_indices = True

    def size(self) -> int | float:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def rule(self) -> str:
        """What a value must be, for messages ("a candidate index in [0, 2]")."""
        raise NotImplementedError

    def check(self, value: Any) -> Any:
        """`value` normalized (an int or a float) if this point takes it, else None."""
        raise NotImplementedError

    def sample(self, u: Any) -> Any:
        """The value for uniform `u` in [0, 1) (a float or a numpy array)."""
        raise NotImplementedError

    def subspace(self, value: Any) -> Subspace:
        """The sub-space that `value` enables (empty for most)."""
        return ()

    def branches(self) -> list[tuple[int, Subspace]]:
        """(value, sub-space) for each value that enables one."""
        return []

    def options(self) -> list[int]:
        """Every value of a finite point, in order (for enumeration)."""
        raise ValueError(f"decision {self.id!r} ({self.describe()}) has no finite values")


def _is_int(v: Any) -> bool:
    return v.__class__ is int or (isinstance(v, int) and not isinstance(v, bool))


@dataclass(frozen=True, eq=False)
class Choice(DecisionPoint):
    """A categorical decision: one of `num_candidates` (a `oneof`).

    `subspaces[j]` is the sub-space of candidate `j`. A pick of a manyof is
    a :class:`Pick`, a `Choice` whose rules over all picks its
    :class:`ManyChoice` owns.
    """

    num_candidates: int = 1
    subspaces: tuple[Subspace, ...] = ()
    literals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.subspaces:
            object.__setattr__(self, "subspaces", ((),) * self.num_candidates)
        if len(self.subspaces) != self.num_candidates:
            raise ValueError(
                f"choice {self.id!r} has {self.num_candidates} candidates but "
                f"{len(self.subspaces)} sub-spaces"
            )

    # A oneof is a manyof of one pick with no rules across picks.
    k = 1
    pick = 0
    distinct = True
    sorted = False
    manyof_id = ""

    @property
    def group(self) -> tuple[int, ...]:
        return ()

    @property
    def is_manyof(self) -> bool:
        """Whether this is a pick of a manyof (also of a manyof with k=1)."""
        return False

    def size(self) -> int | float:
        return sum(subspace_size(s) for s in self.subspaces)

    def describe(self) -> str:
        return f"oneof({self.num_candidates})"

    def rule(self) -> str:
        return f"a candidate index in [0, {self.num_candidates - 1}]"

    def check(self, value: Any) -> Any:
        return value if _is_int(value) and 0 <= value < self.num_candidates else None

    def sample(self, u: Any) -> Any:
        if isinstance(u, np.ndarray):
            return np.minimum((u * self.num_candidates).astype(np.int64), self.num_candidates - 1)
        return min(int(u * self.num_candidates), self.num_candidates - 1)

    def subspace(self, value: Any) -> Subspace:
        return self.subspaces[value]

    def branches(self) -> list[tuple[int, Subspace]]:
        return list(enumerate(self.subspaces))

    def options(self) -> list[int]:
        return list(range(self.num_candidates))


@dataclass(frozen=True, eq=False)
class ManyChoice(DecisionPoint):
    """`k` picks of `num_candidates` (a `manyof`): one decision, `k` columns.

    It owns the rules across picks (:meth:`check_picks`, :meth:`sample_picks`)
    and the exact size. `subspaces[p][j]` is the sub-space of candidate `j`
    for pick `p`. In a numbered :class:`DNASpec`, `columns` are the columns of
    the picks and `picks` their :class:`Pick` points (what `spec.columns`
    lists); `column` is the first pick's column.
    """

    num_candidates: int = 1
    k: int = 1
    distinct: bool = True
    sorted: bool = False
    subspaces: tuple[tuple[Subspace, ...], ...] = ()
    literals: tuple[str, ...] = ()
    pick_ids: tuple[str, ...] = ()
    columns: tuple[int, ...] = ()
    picks: tuple[Pick, ...] = ()

    def __post_init__(self) -> None:
        if not self.subspaces:
            object.__setattr__(self, "subspaces", (((),) * self.num_candidates,) * self.k)
        if not self.pick_ids:
            object.__setattr__(self, "pick_ids", tuple(f"{self.id}[{p}]" for p in range(self.k)))
        if len(self.subspaces) != self.k or any(
            len(s) != self.num_candidates for s in self.subspaces
        ):
            raise ValueError(
                f"manyof {self.id!r} needs {self.k} picks of {self.num_candidates} sub-spaces"
            )

    def size(self) -> int | float:
        s = [subspace_size(sub) for sub in self.subspaces[0]]
        k = self.k
        if any(math.isinf(x) for x in s):
            return math.inf
        if not self.distinct and not self.sorted:
            return sum(s) ** k
        # e[j] / h[j]: elementary / complete homogeneous symmetric polynomials.
        poly: list[int | float] = [1]
        poly += [0] * k
        for x in s:
            for j in range(k, 0, -1):
                if self.distinct:
                    poly[j] += x * poly[j - 1]
                else:
                    poly[j] += sum(x**i * poly[j - i] for i in range(1, j + 1))
        size = poly[k]
        return size * math.factorial(k) if not self.sorted else size

    def rules(self) -> str:
        return ("distinct" if self.distinct else "repeats") + (", sorted" if self.sorted else "")

    def describe(self) -> str:
        return f"manyof({self.k} of {self.num_candidates}, {self.rules()})"

    def rule(self) -> str:
        return f"a candidate index in [0, {self.num_candidates - 1}]"

    def check(self, value: Any) -> Any:
        """One pick's value: a candidate index."""
        return value if _is_int(value) and 0 <= value < self.num_candidates else None

    def check_picks(self, picks: Sequence[int]) -> str | None:
        """Why the `k` picks break this manyof's rules, or None if they keep them."""
        if self.distinct and len(set(picks)) != len(picks):
            return "needs distinct picks"
        if self.sorted and list(picks) != sorted(picks):
            return "needs sorted picks"
        return None

    def sample_picks(self, gen: np.random.Generator, batch: int | None = None) -> Any:
        """Random picks: a list, or an int array `[batch, k]`."""
        n, k = self.num_candidates, self.k
        if batch is None:
            if self.distinct:
                picks = gen.choice(n, k, replace=False).tolist()
            else:
                picks = gen.integers(0, n, k).tolist()
            return sorted(picks) if self.sorted else picks
        if self.distinct:
            arr = np.argsort(gen.random((batch, n)), axis=1)[:, :k]
        else:
            arr = gen.integers(0, n, (batch, k))
        return np.sort(arr, axis=1) if self.sorted else arr

    def iter_picks(self) -> Iterator[tuple[int, ...]]:
        """Every valid tuple of picks, in lexicographic order."""
        n, k = range(self.num_candidates), self.k
        if self.distinct:
            yield from itertools.combinations(n, k) if self.sorted else itertools.permutations(n, k)
        elif self.sorted:
            yield from itertools.combinations_with_replacement(n, k)
        else:
            yield from itertools.product(n, repeat=k)


@dataclass(frozen=True, eq=False)
class Pick(Choice):
    """Pick `pick` of a manyof: one column of its :class:`ManyChoice` `owner`.

    Per-column code (the array form, mutators, the policy layout) reads a
    pick like any choice; the rules across picks are the owner's.
    """

    owner: ManyChoice | None = None
    pick: int = 0

    def _owner(self) -> ManyChoice:
        assert self.owner is not None, f"pick {self.id!r} of an unnumbered spec"
        return self.owner

    @property
    def k(self) -> int:  # type: ignore[override]
        return self._owner().k

    @property
    def distinct(self) -> bool:  # type: ignore[override]
        return self._owner().distinct

    @property
    def sorted(self) -> bool:  # type: ignore[override]
        return self._owner().sorted

    @property
    def manyof_id(self) -> str:  # type: ignore[override]
        return self._owner().id

    @property
    def group(self) -> tuple[int, ...]:
        return self._owner().columns

    @property
    def is_manyof(self) -> bool:
        return True

    def describe(self) -> str:
        o = self._owner()
        return f"manyof({o.k} of {o.num_candidates}, {o.rules()}, pick {self.pick})"

    def check_picks(self, picks: Sequence[int]) -> str | None:
        return self._owner().check_picks(picks)

    def sample_picks(self, gen: np.random.Generator, batch: int | None = None) -> Any:
        return self._owner().sample_picks(gen, batch)


@dataclass(frozen=True, eq=False)
class Float(DecisionPoint):
    """A float decision in `[low, high]` (`scale` "linear" or "log")."""

    low: float = 0.0
    high: float = 1.0
    scale: str = "linear"
    in_indices = False

    def size(self) -> int | float:
        return math.inf

    def describe(self) -> str:
        return f"floatv({self.low}, {self.high}{', log' if self.scale == 'log' else ''})"

    def rule(self) -> str:
        return f"a float in [{self.low}, {self.high}]"

    def check(self, value: Any) -> Any:
        if value.__class__ is not float and not _is_int(value):
            return None
        return float(value) if self.low <= value <= self.high else None

    def sample(self, u: Any) -> Any:
        if isinstance(u, np.ndarray):
            if self.scale == "log":
                lo, hi = math.log(self.low), math.log(self.high)
                return np.exp(lo + u * (hi - lo))
            return self.low + u * (self.high - self.low)
        if self.scale == "log":
            lo, hi = math.log(self.low), math.log(self.high)
            return self.clip(math.exp(lo + u * (hi - lo)))
        return self.clip(self.low + u * (self.high - self.low))

    def to_unit(self, x: float) -> float:
        """The inverse of :meth:`sample`: where `x` sits in [0, 1] on this scale."""
        if self.scale == "log":
            return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (x - self.low) / (self.high - self.low)

    def clip(self, x: float) -> float:
        """Rounds to float32 (so the array form round-trips), within bounds."""
        with contextlib.suppress(OverflowError):  # beyond float32: the bounds decide
            x = _F32.unpack(_F32.pack(x))[0]
        return min(max(x, self.low), self.high)


@dataclass(frozen=True, eq=False)
class Int(DecisionPoint):
    """An int decision in `[low, high]`.

    In define-by-run spaces, an int that controls which decisions run (a
    depth) has one sub-space per value: `subspaces[v - low]`.
    """

    low: int = 0
    high: int = 0
    subspaces: tuple[Subspace, ...] = field(default_factory=tuple)

    def size(self) -> int | float:
        if self.subspaces:
            return sum(subspace_size(s) for s in self.subspaces)
        return self.high - self.low + 1

    def describe(self) -> str:
        return f"intv({self.low}, {self.high})"

    def rule(self) -> str:
        return f"an int in [{self.low}, {self.high}]"

    def check(self, value: Any) -> Any:
        return value if _is_int(value) and self.low <= value <= self.high else None

    def sample(self, u: Any) -> Any:
        span = self.high - self.low + 1
        if isinstance(u, np.ndarray):
            return np.minimum(self.low + (u * span).astype(np.int64), self.high)
        return min(self.low + int(u * span), self.high)

    def subspace(self, value: Any) -> Subspace:
        return self.subspaces[value - self.low] if self.subspaces else ()

    def branches(self) -> list[tuple[int, Subspace]]:
        return [(self.low + j, s) for j, s in enumerate(self.subspaces)]

    def options(self) -> list[int]:
        return list(range(self.low, self.high + 1))


def subspace_size(points: Subspace) -> int | float:
    """The exact number of distinct outcomes of a sub-space (or `math.inf`)."""
    size: int | float = 1
    for p in points:
        size *= p.size()
    return size
