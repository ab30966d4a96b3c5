"""Mutators and recombinators: small composable operators on DNA.

A mutator maps `(spec, dna, rng)` to a new valid DNA; a recombinator maps
`(spec, parent_a, parent_b, rng)` to a child. They work column-wise on the
flat array form (`spec.to_array`), so conditional decisions stay consistent:
when a choice changes, the decisions of its newly chosen candidate are sampled
at random, and `spec.from_array` reads back only the active ones.

All randomness comes from the `rng` argument, so an algorithm that passes its
seeded generator stays deterministic.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, Choice, DecisionPoint, DNASpec, Float, Int

# -- the structure of a spec, as mutators need it -----------------------------


class _Plan:
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


_plans: dict[int, tuple[weakref.ref[DNASpec], _Plan]] = {}


def _plan(spec: DNASpec) -> _Plan:
    # Keyed by identity: specs that compare equal may still differ in details.
    got = _plans.get(id(spec))
    if got is not None and got[0]() is spec:
        return got[1]
    if len(_plans) >= 64:
        for key in [k for k, (ref, _) in _plans.items() if ref() is None] or list(_plans):
            del _plans[key]
    plan = _Plan(spec)
    _plans[id(spec)] = (weakref.ref(spec), plan)
    return plan


def _f32(p: Float, x: float) -> float:
    """`x` rounded to float32 (as the array form stores it), within bounds."""
    return min(max(float(np.float32(x)), p.low), p.high)


def _to_unit(p: Float, x: float) -> float:
    if p.scale == "log":
        return (math.log(x) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
    return (x - p.low) / (p.high - p.low)


def _from_unit(p: Float, u: float) -> float:
    if p.scale == "log":
        return _f32(p, math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low))))
    return _f32(p, p.low + u * (p.high - p.low))


def _random_picks(p: Choice, rng: np.random.Generator) -> list[int]:
    if p.distinct:
        picks = rng.choice(p.num_candidates, p.k, replace=False).tolist()
    else:
        picks = rng.integers(0, p.num_candidates, p.k).tolist()
    return sorted(picks) if p.sorted else picks


def _sample(
    plan: _Plan, cols: Sequence[int], idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Fills `cols` (a set of whole sub-trees, in preorder) with random values."""
    done: set[int] = set()
    for c in cols:
        if c in done:
            continue
        p = plan.columns[c]
        if isinstance(p, Choice) and p.k > 1:
            for q, j in zip(p.group, _random_picks(p, rng), strict=True):
                idx[q] = j
            done.update(p.group)
        elif isinstance(p, Choice):
            idx[c] = int(rng.integers(p.num_candidates))
        elif isinstance(p, Int):
            idx[c] = int(rng.integers(p.low, p.high + 1))
        else:
            assert isinstance(p, Float)
            val[c] = _from_unit(p, float(rng.random()))


def _set(
    plan: _Plan, c: int, v: int, idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Sets a choice or int column and samples the decisions it newly enables."""
    idx[c] = v
    _sample(plan, plan.under(c, v), idx, val, rng)


def _signature(plan: _Plan, cols: Sequence[int]) -> list[str]:
    """The structure of a set of sub-trees, independent of where they sit."""
    return [
        f"{type(p).__name__}:{p.describe()}:{c - p.parent}" for c in cols for p in [plan.columns[c]]
    ]


def _swap_picks(
    plan: _Plan, c: int, q: int, idx: list[int], val: list[float], rng: np.random.Generator
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


def _options(p: DecisionPoint, idx: list[int]) -> list[int] | None:
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


def _arrays(spec: DNASpec, dna: DNA) -> tuple[list[int], list[float], list[bool]]:
    arr = spec.to_array(dna)
    return arr.indices.tolist(), arr.values.tolist(), arr.mask.tolist()


def _read(spec: DNASpec, idx: list[int], val: list[float]) -> DNA:
    dna: DNA = spec.from_array((np.asarray(idx, np.int32), np.asarray(val, np.float32)))
    return dna


def _change(
    plan: _Plan, c: int, v: int, idx: list[int], val: list[float], rng: np.random.Generator
) -> None:
    """Sets discrete column `c` to `v`, keeping a distinct manyof distinct."""
    p = plan.columns[c]
    if isinstance(p, Choice) and p.k > 1 and p.distinct:
        holder = [q for q in p.group if q != c and idx[q] == v]
        if holder:
            _swap_picks(plan, c, holder[0], idx, val, rng)
            return
    _set(plan, c, v, idx, val, rng)


# -- mutators ---------------------------------------------------------------------


class Operator:
    """Base class of search operators (mutators, recombinators, selectors).

    Subclasses implement `__call__` and list their constructor arguments in
    `config()`; `describe()` names the operator and its arguments (JSON-ready).
    """

    def config(self) -> dict[str, Any]:
        """The JSON-ready constructor arguments."""
        return {}

    def describe(self) -> dict[str, Any]:
        """`{"name": class name, "args": config()}`."""
        return {"name": type(self).__name__, "args": self.config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Mutator(Operator):
    """Base class of mutators: `mutator(spec, dna, rng)` returns a new DNA."""

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        raise NotImplementedError


class Uniform(Mutator):
    """Resamples one active decision, chosen uniformly, to a different value.

    A choice gets a different candidate (the decisions of the new candidate are
    sampled at random); an int a different value; a float a new uniform value
    (uniform in log space on a log scale). A manyof pick keeps its rules: a
    sorted one stays between its neighbours; a distinct one that takes a
    candidate held by another pick swaps with it (their sub-decisions move
    along). Only decisions that can change are picked, so the result differs
    from the input unless the space has a single point.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.oneof(["x", "y"])])
        >>> parent = mx.DNA([0, 0])
        >>> child = mx.algorithms.mutators.Uniform()(spec, parent, np.random.default_rng(0))
        >>> spec.validate(child); child != parent
        True

    References:
        Real et al., Regularized Evolution for Image Classifier Architecture
        Search, AAAI 2019 (the mutation of one op or connection).
    """

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        plan = _plan(spec)
        idx, val, mask = _arrays(spec, dna)
        moves: list[tuple[int, list[int] | None]] = []
        for c, active in enumerate(mask):
            if active:
                opts = _options(plan.columns[c], idx)
                if opts is None or opts:
                    moves.append((c, opts))
        if not moves:
            return dna
        c, opts = moves[int(rng.integers(len(moves)))]
        p = plan.columns[c]
        if opts is None:
            assert isinstance(p, Float)
            for _ in range(16):  # float32 rounding may hit the same value
                x = _from_unit(p, float(rng.random()))
                if x != val[c]:
                    break
            val[c] = x
        else:
            _change(plan, c, opts[int(rng.integers(len(opts)))], idx, val, rng)
        return _read(spec, idx, val)


class Gaussian(Mutator):
    """Perturbs one active float or int decision with Gaussian noise.

    The noise has standard deviation `scale` times the range (in log space on
    a log scale); values that leave the range are reflected back into it. An
    int moves by at least one step. An int that enables conditional decisions
    (a define-by-run depth) samples the decisions it newly enables. A DNA with
    no active float or int decision is returned unchanged (combine with
    `Uniform` through `OneOf` or `Chain` for mixed spaces).

    Args:
        scale: the noise standard deviation, as a fraction of the range (> 0).

    Raises:
        ValueError: if `scale` is not positive.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec({"lr": mx.floatv(1e-4, 1e-1, scale="log"), "n": mx.intv(1, 8)})
        >>> child = mx.algorithms.mutators.Gaussian(scale=0.1)(spec, mx.DNA([1e-3, 4]), np.random.default_rng(0))
        >>> spec.validate(child); child != mx.DNA([1e-3, 4])
        True

    References:
        Bäck & Schwefel, An Overview of Evolutionary Algorithms for Parameter
        Optimization, Evolutionary Computation 1(1), 1993.
    """

    def __init__(self, *, scale: float = 0.1) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            raise ValueError(f"Gaussian needs a `scale` > 0, but got scale={scale!r}")
        self.scale = float(scale)

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        plan = _plan(spec)
        idx, val, mask = _arrays(spec, dna)
        cols = [
            c
            for c, active in enumerate(mask)
            if active
            and (
                isinstance(plan.columns[c], Float)
                or (isinstance(p := plan.columns[c], Int) and p.high > p.low)
            )
        ]
        if not cols:
            return dna
        c = cols[int(rng.integers(len(cols)))]
        p = plan.columns[c]
        noise = float(rng.normal(0.0, self.scale))
        if isinstance(p, Float):
            x = _from_unit(p, _reflect(_to_unit(p, val[c]) + noise))
            for _ in range(16):  # float32 rounding may hit the same value
                if x != val[c]:
                    break
                x = _from_unit(p, _reflect(_to_unit(p, val[c]) + rng.normal(0.0, self.scale)))
            val[c] = x
        else:
            assert isinstance(p, Int)
            width = p.high - p.low
            u = _reflect((idx[c] - p.low) / width + noise * (width + 1) / width)
            v = p.low + round(u * width)
            if v == idx[c]:  # move at least one step, inside the range
                step = 1 if noise >= 0 else -1
                v = idx[c] + step if p.low <= idx[c] + step <= p.high else idx[c] - step
            _set(plan, c, v, idx, val, rng)
        return _read(spec, idx, val)


def _reflect(u: float) -> float:
    """Folds `u` into [0, 1] by reflecting at the bounds."""
    u = u % 2.0
    return 2.0 - u if u > 1.0 else u


class Chain(Mutator):
    """Applies mutators in order, each to the result of the previous.

    Args:
        mutators: a non-empty sequence of mutators.

    Raises:
        TypeError: if an element is not a Mutator.
        ValueError: if `mutators` is empty.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec([mx.oneof([1, 2, 3]), mx.floatv(0.0, 1.0)])
        >>> m = mx.algorithms.mutators.Chain([mx.algorithms.mutators.Uniform(), mx.algorithms.mutators.Gaussian(scale=0.2)])
        >>> spec.validate(m(spec, mx.DNA([0, 0.5]), np.random.default_rng(0)))
        >>> m.describe()["args"]["mutators"][1]
        {'name': 'Gaussian', 'args': {'scale': 0.2}}

    References:
        The composition of gradient transformations in optax (`optax.chain`).
    """

    def __init__(self, mutators: Sequence[Mutator]) -> None:
        self.mutators = _mutator_list(mutators, "Chain")

    def config(self) -> dict[str, Any]:
        return {"mutators": [m.describe() for m in self.mutators]}

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        for m in self.mutators:
            dna = m(spec, dna, rng)
        return dna


class OneOf(Mutator):
    """Applies one of several mutators, drawn per call.

    Args:
        mutators: a non-empty sequence of mutators.
        weights: their relative probabilities (non-negative, not all zero);
            None for uniform.

    Raises:
        TypeError: if an element is not a Mutator.
        ValueError: if `mutators` is empty or `weights` do not fit them.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec([mx.oneof([1, 2, 3]), mx.floatv(0.0, 1.0)])
        >>> m = mx.algorithms.mutators.OneOf([mx.algorithms.mutators.Uniform(), mx.algorithms.mutators.Gaussian()], weights=[3, 1])
        >>> spec.validate(m(spec, mx.DNA([0, 0.5]), np.random.default_rng(0)))
        >>> m.config()["weights"]
        [0.75, 0.25]

    References:
        The mixture of mutation operators of evolution strategies (Bäck &
        Schwefel, Evolutionary Computation 1(1), 1993).
    """

    def __init__(
        self, mutators: Sequence[Mutator], *, weights: Sequence[float] | None = None
    ) -> None:
        self.mutators = _mutator_list(mutators, "OneOf")
        self.weights: list[float] | None = None
        if weights is not None:
            w = [float(x) for x in weights]
            if len(w) != len(self.mutators) or any(not x >= 0 for x in w) or not sum(w) > 0:
                raise ValueError(
                    f"OneOf needs one non-negative weight per mutator, not all zero, but got "
                    f"weights={list(weights)!r} for {len(self.mutators)} mutators"
                )
            self.weights = [x / sum(w) for x in w]

    def config(self) -> dict[str, Any]:
        return {"mutators": [m.describe() for m in self.mutators], "weights": self.weights}

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        n = len(self.mutators)
        i = int(rng.integers(n)) if self.weights is None else int(rng.choice(n, p=self.weights))
        return self.mutators[i](spec, dna, rng)


def _mutator_list(mutators: Sequence[Mutator], who: str) -> list[Mutator]:
    if isinstance(mutators, Mutator) or not isinstance(mutators, Sequence):
        raise TypeError(f"{who} takes a list of mutators, but got {mutators!r}")
    out = list(mutators)
    if not out:
        raise ValueError(f"{who} needs at least one mutator, but got an empty list")
    for i, m in enumerate(out):
        if not isinstance(m, Mutator):
            raise TypeError(
                f"{who} takes Mutator instances (e.g. Uniform()), but got {m!r} at position {i}"
            )
    return out


# -- recombinators ----------------------------------------------------------------


class Recombinator(Operator):
    """Base class of recombinators: `recombinator(spec, a, b, rng)` returns a child."""

    def __call__(self, spec: DNASpec, a: DNA, b: DNA, rng: np.random.Generator) -> DNA:
        raise NotImplementedError


class UniformCrossover(Recombinator):
    """Takes each decision from one of two parents, with even odds.

    Decisions go in depth-first order; a conditional decision is active in the
    child when its parent decision's value enables it, and then comes from a
    parent where it is active too (either, at random, if both). The picks of a
    manyof are mixed per pick when the mix keeps its distinct/sorted rules;
    otherwise all picks come from one parent.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec([mx.oneof(["a", {"k": mx.oneof([3, 5])}]), mx.floatv(0.0, 1.0)])
        >>> child = mx.algorithms.mutators.UniformCrossover()(
        ...     spec, mx.DNA([0, 0.25]), mx.DNA([1, 1, 0.75]), np.random.default_rng(0))
        >>> spec.validate(child)

    References:
        Syswerda, Uniform Crossover in Genetic Algorithms, ICGA 1989.
    """

    def __call__(self, spec: DNASpec, a: DNA, b: DNA, rng: np.random.Generator) -> DNA:
        plan = _plan(spec)
        parents = [_arrays(spec, a), _arrays(spec, b)]
        n = len(plan.columns)
        idx, val, on = [0] * n, [0.0] * n, [False] * n
        decided: set[int] = set()
        for c, p in enumerate(plan.columns):
            on[c] = p.parent < 0 or (on[p.parent] and idx[p.parent] == p.parent_value)
            if not on[c] or c in decided:
                continue
            sources = [x for x in parents if x[2][c]]
            assert sources, "an active decision is active in the parent that enabled it"
            if isinstance(p, Choice) and p.k > 1:
                group = list(p.group)
                if len(sources) == 2:
                    mix = [sources[int(rng.random() < 0.5)][0][q] for q in group]
                    if not _picks_ok(p, mix):  # take all picks from one parent
                        whole = sources[int(rng.random() < 0.5)][0]
                        mix = [whole[q] for q in group]
                else:
                    mix = [sources[0][0][q] for q in group]
                for q, j in zip(group, mix, strict=True):
                    idx[q] = j
                decided.update(group)
                continue
            src = sources[int(rng.random() < 0.5)] if len(sources) == 2 else sources[0]
            idx[c], val[c] = src[0][c], src[1][c]
        return _read(spec, idx, val)


def _picks_ok(p: Choice, picks: list[int]) -> bool:
    if p.distinct and len(set(picks)) != len(picks):
        return False
    return not (p.sorted and picks != sorted(picks))
