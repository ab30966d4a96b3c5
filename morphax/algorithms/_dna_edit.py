"""Column-wise edits of DNA in its flat array form, shared by the mutators.

`plan_of(spec)` says which columns hang under which (column, value); `arrays`
and `read` go between a DNA and its lists of indices and values; `set_value`
and `change` set a discrete column and sample the decisions it newly enables
(keeping a distinct `manyof` distinct). All randomness comes from the `rng`
argument.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from ..symbolic import DNA, Choice, DecisionPoint, DNASpec, Float, Int, Pick

# -- the structure of a spec, as mutators need it -----------------------------


class Plan:
    """Which columns hang under which (column, value), for one spec."""

    def __init__(self, spec: DNASpec) -> None:
        self.columns: list[DecisionPoint] = list(spec.columns)
        n = len(self.columns)
        kids: dict[tuple[int, int], list[int]] = {}
        for p in self.columns:
            if p.parent >= 0:
                kids.setdefault((p.parent, p.parent_value), []).append(p.column)
        # Preorder numbering: the descendants of column c are c + 1 .. end[c] - 1.
        end = list(range(1, n + 1))
        for p in reversed(self.columns):
            if p.parent >= 0:
                end[p.parent] = max(end[p.parent], end[p.column])
        self._kids = kids
        self._end = end

    def under(self, column: int, value: int) -> list[int]:
        """The columns that `column == value` enables (all depths, preorder)."""
        out: list[int] = []
        for q in self._kids.get((column, value), ()):
            out.extend(range(q, self._end[q]))
        return out


_plans: dict[int, tuple[weakref.ref[DNASpec], Plan]] = {}


def plan_of(spec: DNASpec) -> Plan:
    # Keyed by identity: specs that compare equal may still differ in details.
    got = _plans.get(id(spec))
    if got is not None and got[0]() is spec:
        return got[1]
    if len(_plans) >= 64:
        for key in [k for k, (ref, _) in _plans.items() if ref() is None] or list(_plans):
            del _plans[key]
    plan = Plan(spec)
    _plans[id(spec)] = (weakref.ref(spec), plan)
    return plan


def to_unit(p: Float, x: float) -> float:
    return p.to_unit(x)  # the decision's own rule


def from_unit(p: Float, u: float) -> float:
    return float(p.sample(u))  # the decision's own rule (float32, within bounds)


def _sample(
    plan: Plan, cols: Sequence[int], idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Fills `cols` (a set of whole sub-trees, in preorder) with random values."""
    done: set[int] = set()
    for c in cols:
        if c in done:
            continue
        p = plan.columns[c]
        if isinstance(p, Pick):
            for q, j in zip(p.group, p.sample_picks(rng), strict=True):
                idx[q] = j
            done.update(p.group)
        elif isinstance(p, Choice):
            idx[c] = int(rng.integers(p.num_candidates))
        elif isinstance(p, Int):
            idx[c] = int(rng.integers(p.low, p.high + 1))
        else:
            assert isinstance(p, Float)
            val[c] = from_unit(p, float(rng.random()))


def set_value(
    plan: Plan, c: int, v: int, idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Sets a choice or int column and samples the decisions it newly enables."""
    idx[c] = v
    _sample(plan, plan.under(c, v), idx, val, rng)


def _signature(plan: Plan, cols: Sequence[int]) -> list[str]:
    """The structure of a set of sub-trees, independent of where they sit."""
    return [
        f"{type(p).__name__}:{p.describe()}:{c - p.parent}" for c in cols for p in [plan.columns[c]]
    ]


def _swap_picks(
    plan: Plan, c: int, q: int, idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Swaps two picks of a manyof; their sub-decisions move along with them."""
    a, b = idx[c], idx[q]
    moves = [(plan.under(q, b), plan.under(c, b)), (plan.under(c, a), plan.under(q, a))]
    copied = [([idx[s] for s in src], [val[s] for s in src]) for src, _ in moves]
    idx[c], idx[q] = b, a
    for (src, dst), (ids, vals) in zip(moves, copied, strict=True):
        if _signature(plan, src) == _signature(plan, dst):
            for d, i, x in zip(dst, ids, vals, strict=True):
                idx[d], val[d] = i, x
        else:  # the picks' sub-spaces differ (a shared named decision): resample
            _sample(plan, dst, idx, val, rng)


def _pick_options(p: Choice, idx: list[int]) -> list[int]:
    """The values pick `p` of a manyof may change to, keeping its rules."""
    cur = idx[p.column]
    n = p.num_candidates
    if p.sorted:
        lo = idx[p.group[p.pick - 1]] if p.pick > 0 else 0
        hi = idx[p.group[p.pick + 1]] if p.pick < p.k - 1 else n - 1
        if p.distinct:
            lo, hi = lo + (p.pick > 0), hi - (p.pick < p.k - 1)
        return [j for j in range(lo, hi + 1) if j != cur]
    # Unsorted: any other candidate (for distinct picks, taking one that
    # another pick holds swaps the two).
    return [j for j in range(n) if j != cur]


def options(p: DecisionPoint, idx: list[int]) -> list[int] | None:
    """Other values of a discrete column, or None for a float column."""
    if isinstance(p, Float):
        return None
    cur = idx[p.column]
    if isinstance(p, Choice):
        if p.k > 1:
            return _pick_options(p, idx)
        return [j for j in range(p.num_candidates) if j != cur]
    assert isinstance(p, Int)
    return [v for v in range(p.low, p.high + 1) if v != cur]


def arrays(spec: DNASpec, dna: DNA) -> tuple[list[int], list[float], list[bool]]:
    arr = spec.to_array(dna)
    return arr.indices.tolist(), arr.values.tolist(), arr.mask.tolist()


def read(spec: DNASpec, idx: list[int], val: list[float]) -> DNA:
    # The edits keep every rule by construction; the search validates proposals.
    arrays = (np.asarray(idx, np.int32), np.asarray(val, np.float32))
    dna: DNA = spec.from_array(arrays, check=False)
    return dna


def change(
    plan: Plan, c: int, v: int, idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Sets discrete column `c` to `v`, keeping a distinct manyof distinct."""
    p = plan.columns[c]
    if isinstance(p, Choice) and p.k > 1 and p.distinct:
        holder = [q for q in p.group if q != c and idx[q] == v]
        if holder:
            _swap_picks(plan, c, holder[0], idx, val, rng)
            return
    set_value(plan, c, v, idx, val, rng)
