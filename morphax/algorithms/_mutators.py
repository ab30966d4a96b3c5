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

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, Choice, DNASpec, Float, Int
from ._base import Configurable
from ._dna_edit import arrays, change, from_unit, options, plan_of, read, set_value, to_unit


class Operator(Configurable):
    """Base class of search operators (mutators, recombinators, selectors).

    Subclasses implement `__call__` and list their constructor arguments in
    `config()`; `describe()` is the one-line summary `Name(arg=value, ...)`
    and `to_json_value()` the JSON-ready `{"name": ..., "args": ...}` that
    `operator_from_json_value` rebuilds.

    Examples:
        >>> from morphax.algorithms import mutators
        >>> m = mutators.Chain([mutators.Uniform(), mutators.Gaussian(scale=0.2)])
        >>> m.describe()
        'Chain(mutators=[Uniform(), Gaussian(scale=0.2)])'
        >>> m.to_json_value()["args"]["mutators"][1]
        {'name': 'Gaussian', 'args': {'scale': 0.2}}
    """

    def to_json_value(self) -> dict[str, Any]:
        """`{"name": class name, "args": config()}` (JSON-ready)."""
        return {"name": type(self).__name__, "args": self.config()}


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
        >>> _ = spec.validate(child); child != parent
        True

    References:
        Real et al., Regularized Evolution for Image Classifier Architecture
        Search, AAAI 2019 (the mutation of one op or connection).
    """

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        plan = plan_of(spec)
        idx, val, mask = arrays(spec, dna)
        moves: list[tuple[int, list[int] | None]] = []
        for c, active in enumerate(mask):
            if active:
                opts = options(plan.columns[c], idx)
                if opts is None or opts:
                    moves.append((c, opts))
        if not moves:
            return dna
        c, opts = moves[int(rng.integers(len(moves)))]
        p = plan.columns[c]
        if opts is None:
            assert isinstance(p, Float)
            for _ in range(16):  # float32 rounding may hit the same value
                x = from_unit(p, float(rng.random()))
                if x != val[c]:
                    break
            val[c] = x
        else:
            change(plan, c, opts[int(rng.integers(len(opts)))], idx, val, rng)
        return read(spec, idx, val)


class Gaussian(Mutator):
    """Perturbs one active float or int decision with Gaussian noise.

    The noise has standard deviation `scale` times the range (in log space on
    a log scale); values that leave the range are reflected back into it. An
    int moves by at least one step. An int that enables conditional decisions
    (a define-by-run depth) samples the decisions it newly enables. A DNA with
    no active float or int decision is returned unchanged (combine with
    `Uniform` through `RandomChoice` or `Chain` for mixed spaces).

    Args:
        scale: the noise standard deviation, as a fraction of the range (> 0).

    Raises:
        ValueError: if `scale` is not positive.

    Examples:
        >>> import numpy as np
        >>> import morphax as mx
        >>> spec = mx.dna_spec({"lr": mx.floatv(1e-4, 1e-1, scale="log"), "n": mx.intv(1, 8)})
        >>> child = mx.algorithms.mutators.Gaussian(scale=0.1)(spec, mx.DNA([1e-3, 4]), np.random.default_rng(0))
        >>> _ = spec.validate(child); child != mx.DNA([1e-3, 4])
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
        plan = plan_of(spec)
        idx, val, mask = arrays(spec, dna)
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
            x = from_unit(p, _reflect(to_unit(p, val[c]) + noise))
            for _ in range(16):  # float32 rounding may hit the same value
                if x != val[c]:
                    break
                x = from_unit(p, _reflect(to_unit(p, val[c]) + rng.normal(0.0, self.scale)))
            val[c] = x
        else:
            assert isinstance(p, Int)
            width = p.high - p.low
            u = _reflect((idx[c] - p.low) / width + noise * (width + 1) / width)
            v = p.low + round(u * width)
            if v == idx[c]:  # move at least one step, inside the range
                step = 1 if noise >= 0 else -1
                v = idx[c] + step if p.low <= idx[c] + step <= p.high else idx[c] - step
            set_value(plan, c, v, idx, val, rng)
        return read(spec, idx, val)


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
        >>> _ = spec.validate(m(spec, mx.DNA([0, 0.5]), np.random.default_rng(0)))
        >>> m.describe()
        'Chain(mutators=[Uniform(), Gaussian(scale=0.2)])'

    References:
        The composition of gradient transformations in optax (`optax.chain`).
    """

    def __init__(self, mutators: Sequence[Mutator]) -> None:
        self.mutators = _mutator_list(mutators, "Chain")

    def config(self) -> dict[str, Any]:
        return {"mutators": [m.to_json_value() for m in self.mutators]}

    def __call__(self, spec: DNASpec, dna: DNA, rng: np.random.Generator) -> DNA:
        for m in self.mutators:
            dna = m(spec, dna, rng)
        return dna


class RandomChoice(Mutator):
    """Applies one of several mutators, drawn at random per call.

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
        >>> m = mx.algorithms.mutators.RandomChoice([mx.algorithms.mutators.Uniform(), mx.algorithms.mutators.Gaussian()], weights=[3, 1])
        >>> _ = spec.validate(m(spec, mx.DNA([0, 0.5]), np.random.default_rng(0)))
        >>> m.config()["weights"]
        [0.75, 0.25]

    References:
        The mixture of mutation operators of evolution strategies (Bäck &
        Schwefel, Evolutionary Computation 1(1), 1993).
    """

    def __init__(
        self, mutators: Sequence[Mutator], *, weights: Sequence[float] | None = None
    ) -> None:
        self.mutators = _mutator_list(mutators, "RandomChoice")
        self.weights: list[float] | None = None
        if weights is not None:
            w = [float(x) for x in weights]
            if len(w) != len(self.mutators) or any(not x >= 0 for x in w) or not sum(w) > 0:
                raise ValueError(
                    f"RandomChoice needs one non-negative weight per mutator, not all zero, but got "
                    f"weights={list(weights)!r} for {len(self.mutators)} mutators"
                )
            self.weights = [x / sum(w) for x in w]

    def config(self) -> dict[str, Any]:
        return {"mutators": [m.to_json_value() for m in self.mutators], "weights": self.weights}

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
        >>> _ = spec.validate(child)

    References:
        Syswerda, Uniform Crossover in Genetic Algorithms, ICGA 1989.
    """

    def __call__(self, spec: DNASpec, a: DNA, b: DNA, rng: np.random.Generator) -> DNA:
        plan = plan_of(spec)
        parents = [arrays(spec, a), arrays(spec, b)]
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
        return read(spec, idx, val)


def _picks_ok(p: Choice, picks: list[int]) -> bool:
    return p.check_picks(picks) is None  # type: ignore[attr-defined]
