"""The entry points over static and define-by-run spaces."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._call import Call
from ._dna import DNA, DNAValue
from ._dynamic import DynamicSpace, no_decisions_error
from ._nodes import node_type
from ._space import Space
from ._spec import DNASpec

AnySpace = Space | DynamicSpace

# Compiled spaces of recent raw programs, with what each program's mutable
# nodes held at compile time (see `_watch`): a hit needs every one unchanged.
_Watch = list[tuple[Any, Any, tuple[Any, ...]]]
_CACHE: OrderedDict[int, tuple[Any, Space, _Watch]] = OrderedDict()
_CACHE_SIZE = 32


def space(program: Any) -> AnySpace:
    """Compiles a program with hyper-values into a :class:`Space`.

    The space keeps a snapshot of the program: later edits of `program` do
    not change it. Compile once when you materialize many children; the
    one-shot functions (`mx.materialize(program, dna)`, `mx.encode`) reuse
    the compiled space of a program while it is unchanged.

    Raises:
        TypeError: if `program` holds no hyper-value.
    """
    if isinstance(program, Space | DynamicSpace):
        return program
    compiled = Space(program)
    if not compiled.spec.columns:
        raise no_decisions_error(program, traced=False)
    return compiled


def _watch(program: Any) -> _Watch:
    """Each mutable node of `program` (lists, dicts, calls, ...) with its children.

    Immutable nodes (tuples, Flax modules, hyper-values, partials) cannot change
    in place, so a program whose mutable nodes still hold the very same
    children (by identity, under the same keys) is unchanged; an in-place edit
    of a leaf (a numpy array) is the one change this does not see. Entries are
    `(list, None, items)`, `(dict, keys, values)` or `(node, node_type, pairs)`.
    """
    out: _Watch = []
    stack = [program]
    while stack:
        node = stack.pop()
        nt = node_type(node)
        if nt is None:
            continue
        if type(node) is list:
            out.append((node, None, tuple(node)))
            stack.extend(node)
            continue
        args = node.args if isinstance(node, Call) else node if type(node) is dict else None
        if args is not None:
            out.append((args, tuple(args), tuple(args.values())))
            stack.extend(args.values())
            continue
        kids = nt.flatten(node)
        if nt.is_mutable(node):
            out.append((node, nt, tuple(kids)))
        stack.extend(v for _, v in kids)
    return out


def _unchanged(watch: _Watch) -> bool:
    for node, how, kids in watch:
        if how is None:  # a list
            if len(node) != len(kids) or not all(map(operator.is_, node, kids)):
                return False
        elif type(how) is tuple:  # a dict: keys, then values by identity
            if tuple(node) != how or not all(map(operator.is_, node.values(), kids)):
                return False
        else:
            now = how.flatten(node)
            if len(now) != len(kids):
                return False
            for (k, v), (k0, v0) in zip(now, kids, strict=True):
                if v is not v0 or k != k0:
                    return False
    return True


def _cached(program: Any) -> AnySpace:
    """`space(program)`, reused while `program` is unchanged since it was compiled."""
    if isinstance(program, Space | DynamicSpace):
        return program
    key = id(program)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is program and _unchanged(hit[2]):
        _CACHE.move_to_end(key)
        return hit[1]
    compiled = space(program)
    assert isinstance(compiled, Space)
    _CACHE[key] = (program, compiled, _watch(program))
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def dna_spec(program: Any) -> DNASpec:
    """The :class:`DNASpec` of a space: its decision points, ids and size.

    Examples:
        >>> import morphax as mx
        >>> spec = mx.dna_spec([mx.oneof([1, 2, 3]), mx.manyof(2, ["a", "b", "c", "d"], sorted=True)])
        >>> spec.space_size, len(spec)
        (18, 3)
    """
    return space(program).spec


def materialize(program: Any, dna: DNA | Sequence[DNAValue]) -> Any:
    """The child of a space for `dna`: each hyper-value replaced by its choice.

    For a static space, the child is a new program of the same structure
    (symbolic calls stay symbolic; call :func:`morphax.build` for the real
    objects; Flax modules come back as Flax modules with concrete fields).
    For a define-by-run space (from :func:`morphax.trace`), the child is a
    :class:`DynamicChild` that runs the traced code with the DNA's choices.

    Raises:
        TypeError: if `program` is not a space.
        ValueError: if `dna` does not fit the space (naming the decision).

    Examples:
        >>> import morphax as mx
        >>> import flax.linen as nn
        >>> space = nn.Dense(features=mx.oneof([16, 32, 64]))
        >>> mx.materialize(space, mx.DNA([2])).features
        64
    """
    return _cached(program).materialize(dna)


def encode(program: Any, child: Any) -> DNA:
    """The DNA whose child is `child`: the inverse of :func:`materialize`.

    Raises:
        ValueError: if `child` is not a child of the space, naming where it
            differs.

    Examples:
        >>> import morphax as mx
        >>> space = {"w": mx.oneof([16, 32]), "lr": mx.floatv(0.0, 1.0)}
        >>> mx.encode(space, {"w": 32, "lr": 0.25})
        DNA([1, 0.25])
    """
    return _cached(program).encode(child)


def iter(program: Any, num: int | None = None) -> Iterator[Any]:  # noqa: A001
    """Every child of a finite space, in DNA order (a grid), up to `num`.

    Raises:
        ValueError: for a space with float decisions (use random_sample).

    Examples:
        >>> import morphax as mx
        >>> list(mx.iter({"a": mx.oneof([1, 2]), "b": mx.oneof(["x", "y"])}))
        [{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    s = space(program)
    if num is not None and (not isinstance(num, int) or num < 0):
        raise ValueError(f"`num` must be a non-negative int or None, but got {num!r}")
    for i, dna in enumerate(s.spec.iter_dna()):
        if num is not None and i >= num:
            return
        yield s.materialize(dna)


def random_sample(
    program: Any, num: int, *, seed: int | np.random.Generator | None = None
) -> Iterator[Any]:
    """`num` random children of a space, reproducible under `seed`.

    Examples:
        >>> import morphax as mx
        >>> space = {"a": mx.oneof([1, 2, 3]), "lr": mx.floatv(1e-3, 1e-1, scale="log")}
        >>> [c["a"] for c in mx.random_sample(space, 5, seed=1)] == [c["a"] for c in mx.random_sample(space, 5, seed=1)]
        True
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise ValueError(f"`num` must be a non-negative int, but got {num!r}")
    s = space(program)
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    for _ in range(num):
        yield s.materialize(s.spec.random_dna(rng))
