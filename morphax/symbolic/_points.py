"""Decision points: each kind of decision owns its rules, written once here.

A point is frozen. Its kind says, in one place, which values it takes
(`check`), how a uniform number in [0, 1) becomes a value (`sample`, used by
scalar and vectorized sampling alike), its number of distinct outcomes
(`size`), which column of the flat array form holds it (`in_indices`), and
which sub-space a value enables (`subspace`). The spec decoder, the space
compiler, the mutators, the pyglove adapter and the policy layout call these.

A new decision kind is a new subclass here, plus its hyper-value in
`_hyper.py` and the line in the compiler (`_compile.py`) that makes it.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Sequence
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
    """A categorical decision: one pick of `num_candidates` (a manyof has `k`
    picks, one point per pick, sharing the rules in :meth:`check_picks`).

    `subspaces[j]` is the sub-space of candidate `j` for this pick.
    """

    num_candidates: int = 1
    k: int = 1
    distinct: bool = True
    sorted: bool = False
    pick: int = 0
    group: tuple[int, ...] = ()  # the columns of all picks of this manyof
    manyof_id: str = ""  # the id of the whole manyof (its picks have ids `manyof_id[p]`)
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

    @property
    def is_manyof(self) -> bool:
        """Whether this is a pick of a manyof (also of a manyof with k=1)."""
        return bool(self.manyof_id)

    def size(self) -> int | float:
        return sum(subspace_size(s) for s in self.subspaces)

    def describe(self) -> str:
        if self.k == 1:
            return f"oneof({self.num_candidates})"
        rules = ("distinct" if self.distinct else "repeats") + (", sorted" if self.sorted else "")
        return f"manyof({self.k} of {self.num_candidates}, {rules}, pick {self.pick})"

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

    def check_picks(self, picks: Sequence[int]) -> str | None:
        """Why the `k` picks of this manyof break its rules, or None if they keep them."""
        if self.distinct and len(set(picks)) != len(picks):
            return "needs distinct picks"
        if self.sorted and list(picks) != sorted(picks):
            return "needs sorted picks"
        return None

    def sample_picks(self, gen: np.random.Generator, batch: int | None = None) -> Any:
        """Random picks of this manyof: a list, or an int array `[batch, k]`."""
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
        if self.scale == "log":
            lo, hi = math.log(self.low), math.log(self.high)
            x = np.exp(lo + u * (hi - lo))
        else:
            x = self.low + u * (self.high - self.low)
        return x if isinstance(u, np.ndarray) else self.clip(float(x))

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
    i = 0
    while i < len(points):
        p = points[i]
        if isinstance(p, Choice) and p.k > 1:
            size *= _manyof_size(points[i : i + p.k])
            i += p.k
            continue
        size *= p.size()
        i += 1
    return size


def _manyof_size(group: Sequence[DecisionPoint]) -> int | float:
    """Exact size of a manyof: picks share candidate sub-space sizes."""
    first = group[0]
    assert isinstance(first, Choice)
    s = [subspace_size(sub) for sub in first.subspaces]
    k = first.k
    if any(math.isinf(x) for x in s):
        return math.inf
    if not first.distinct and not first.sorted:
        return sum(s) ** k
    # e[j] / h[j]: elementary / complete homogeneous symmetric polynomials.
    poly: list[int | float] = [1]
    poly += [0] * k
    for x in s:
        for j in range(k, 0, -1):
            if first.distinct:
                poly[j] += x * poly[j - 1]
            else:
                poly[j] += sum(x**i * poly[j - i] for i in range(1, j + 1))
    size = poly[k]
    return size * math.factorial(k) if not first.sorted else size
