"""Tree operations over programs: clone, equality, hashing, rebind, query, build.

Every operation walks through the node-type registry (`_nodes`), so it knows
no concrete node kind: lists, dicts, dataclasses, symbolic calls and
hyper-values are all "a node type with children".
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._keypath import Key, format_path, parse_path
from ._nodes import NodeType, children, node_type


def traverse(node: Any, keys: tuple[Key, ...] = ()) -> Iterator[tuple[tuple[Key, ...], Any]]:
    """Yields (keys, node) for `node` and every node under it, in preorder."""
    yield keys, node
    for key, child in children(node):
        yield from traverse(child, keys + (key,))


def clone(node: Any) -> Any:
    """A deep copy of the program's structure; leaves (values, functions) are shared.

    Examples:
        >>> import morphax as mx
        >>> a = {"layers": [1, 2]}
        >>> b = mx.clone(a)
        >>> b == a and b["layers"] is not a["layers"]
        True
    """
    nt = node_type(node)
    if nt is None:
        return node
    if type(node) is list:
        return [clone(v) for v in node]
    return nt.unflatten(node, {key: clone(v) for key, v in nt.flatten(node)})


def _head(nt: NodeType, node: Any) -> Any:
    return type(node) if nt.head is None else (type(node), nt.head(node))


def sym_eq(a: Any, b: Any) -> bool:
    """Value equality of two programs (structure, types and leaves)."""
    if a is b:
        return True
    na = node_type(a)
    if na is None:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return (
                isinstance(a, np.ndarray)
                and isinstance(b, np.ndarray)
                and a.dtype == b.dtype
                and np.array_equal(a, b)
            )
        return node_type(b) is None and bool(a == b)
    if type(a) is not type(b) or _head(na, a) != _head(na, b):
        return False
    ca, cb = na.flatten(a), na.flatten(b)
    if len(ca) != len(cb):
        return False
    return all(ka == kb and sym_eq(va, vb) for (ka, va), (kb, vb) in zip(ca, cb, strict=True))


def eq(a: Any, b: Any) -> bool:
    """Value equality of two programs, also where `==` would not work (arrays).

    Examples:
        >>> import morphax as mx
        >>> import numpy as np
        >>> mx.eq({"w": np.ones(3)}, {"w": np.ones(3)})
        True
    """
    return sym_eq(a, b)


def sym_hash(node: Any) -> int:
    """A hash of a program's value, consistent with :func:`eq` (public as `value_hash`).

    Examples:
        >>> import numpy as np
        >>> from morphax.symbolic import value_hash
        >>> value_hash({"w": np.ones(3)}) == value_hash({"w": np.ones(3)})
        True
    """
    nt = node_type(node)
    if nt is None:
        try:
            return hash(node)
        except TypeError:
            if isinstance(node, np.ndarray):
                return hash((node.dtype.str, node.shape, node.tobytes()))
            return hash(type(node))
    return hash((_head(nt, node), tuple((k, sym_hash(v)) for k, v in nt.flatten(node))))


value_hash = sym_hash


# ---------------------------------------------------------------------------
# Paths: rebind, get and query.


def _missing_key_error(keys: tuple[Key, ...], i: int, node: Any) -> ValueError:
    where = format_path(keys[:i]) or "<root>"
    nt = node_type(node)
    have = [] if nt is None else [format_path((k,)) for k in nt.all_keys(node)]
    return ValueError(
        f"path {format_path(keys)!r} does not exist: {type(node).__name__} at {where!r} "
        f"has no key {keys[i]!r} (its keys: {have})"
    )


def _accepts(hint: Any, value: Any) -> bool:
    """Whether `value` fits the annotation `hint`; True when unsure."""
    nt = node_type(value)
    if hint is Any or (nt is not None and nt.placeholder):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if origin is not None:
        hint = origin
    if hint is None or hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if not isinstance(hint, type):
        return True
    try:
        return isinstance(value, hint)
    except TypeError:
        return True


def rebind(root: Any, updates: dict[str, Any]) -> Any:
    """Sets values at paths: in place, or on a copy, never both.

    Each path is changed in place up to its first immutable node (a tuple, a
    Flax module, a hyper-value); that node and everything below it on the
    path are rebuilt, so an immutable root comes back as a new root and the
    original program is left as it was (also through lists it shares with
    the new one). Rebuilt hyper-values check their rules again.

    Args:
        root: the program.
        updates: `{path: value}`, with paths like `"layers[2].features"`.

    Returns:
        The root, changed: `root` itself when it is mutable, else a new root.

    Raises:
        ValueError: if a path does not exist, or a rebuilt node refuses its
            new children (naming the path).
        TypeError: if a value does not fit the annotated type of its argument.

    Examples:
        >>> import morphax as mx
        >>> import flax.linen as nn
        >>> Dense = mx.symbolic(nn.Dense)
        >>> model = {"head": Dense(features=10)}
        >>> _ = mx.rebind(model, {"head.features": 100})
        >>> model
        {'head': Dense(features=100)}
    """
    if not isinstance(updates, dict):
        raise TypeError(f"rebind takes a dict of {{path: value}}, but got {updates!r}")
    for path, value in updates.items():
        keys = parse_path(path)
        if not keys:
            raise ValueError("rebind cannot replace the root (path ''); build a new program")
        root = _set(root, keys, 0, value, True)
    return root


def _set(node: Any, keys: tuple[Key, ...], i: int, value: Any, in_place: bool) -> Any:
    """Sets keys[i:] under `node` to `value`; returns `node` or its replacement.

    `in_place` is False below an immutable node: there, every node on the
    path is copied, so the original program is never changed.
    """
    key = keys[i]
    nt = node_type(node)
    if nt is None or key not in nt.all_keys(node):
        raise _missing_key_error(keys, i, node)
    if isinstance(key, int) and key < 0:
        key = key % len(node)
    mutable = in_place and nt.set_child is not None and nt.is_mutable(node)
    if i + 1 < len(keys):
        old = nt.child(node, key)
        if node_type(old) is None:
            raise _missing_key_error(keys, i + 1, old)
        value = _set(old, keys, i + 1, value, mutable)
    else:
        hint = nt.hint(node, key) if nt.hint is not None else Any
        if not _accepts(hint, value):
            raise TypeError(
                f"cannot rebind {format_path(keys)!r} to {value!r}: "
                f"{type(value).__name__} does not fit the annotated type {_hint_repr(hint)}"
            )
    if mutable:
        assert nt.set_child is not None
        nt.set_child(node, key, value)
        return node
    values = dict(nt.flatten(node))
    values[key] = value
    try:
        return nt.unflatten(node, values)
    except (ValueError, TypeError) as e:
        raise type(e)(f"cannot rebind {format_path(keys)!r} to {value!r}: {e}") from None


def _hint_repr(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else repr(hint)


def get(root: Any, path: str) -> Any:
    """The node at `path`.

    Examples:
        >>> import morphax as mx
        >>> mx.get({"a": [1, {"b": 2}]}, "a[1].b")
        2
    """
    node = root
    keys = parse_path(path)
    for i, key in enumerate(keys):
        nt = node_type(node)
        try:
            if nt is None or key not in nt.all_keys(node):
                raise KeyError(key)
            node = nt.child(node, key)
        except (KeyError, IndexError, AttributeError, TypeError):
            raise _missing_key_error(keys, i, node) from None
    return node


_NOT_GIVEN: Any = object()


def query(
    root: Any,
    path: str | None = None,
    *,
    where: type | tuple[type, ...] | Callable[[Any], bool] | None = None,
    value: Any = _NOT_GIVEN,
) -> dict[str, Any]:
    """Finds sub-objects by path, type or value.

    Args:
        root: the program.
        path: a regular expression that the whole path must match.
        where: a type (or tuple of types) the node must be an instance of, or
            a predicate on the node. For calls, a type matches the type of the
            call's target class too.
        value: the node must equal this value.

    Returns:
        `{path: node}` in preorder.

    Examples:
        >>> import morphax as mx
        >>> space = {"a": mx.oneof([1, 2]), "b": [mx.floatv(0.0, 1.0), 3]}
        >>> list(mx.query(space, where=mx.HyperValue))
        ['a', 'b[0]']
        >>> mx.query(space, r"b\\[\\d\\]", value=3)
        {'b[1]': 3}
    """
    import re

    pattern = re.compile(path) if path is not None else None
    if where is not None and not (isinstance(where, type | tuple) or callable(where)):
        raise TypeError(f"query `where` must be a type or a predicate, but got {where!r}")
    out: dict[str, Any] = {}
    for keys, node in traverse(root):
        p = format_path(keys)
        if pattern is not None and not pattern.fullmatch(p):
            continue
        if where is not None:
            if isinstance(where, type | tuple):
                target = getattr(node, "target", None) if _is_call(node) else None
                ok = isinstance(node, where) or (
                    isinstance(target, type) and issubclass(target, where)
                )
            else:
                ok = bool(where(node))
            if not ok:
                continue
        if value is not _NOT_GIVEN and not sym_eq(node, value):
            continue
        out[p] = node
    return out


def _is_call(node: Any) -> bool:
    nt = node_type(node)
    return nt is not None and nt.placeholder and nt.build is not None


def build(node: Any, _keys: tuple[Key, ...] = ()) -> Any:
    """Builds the real objects of a program: every symbolic call is called.

    A leaf whose type defines `__mx_build__(self)` builds to what that
    returns (a define-by-run child of an NNX constructor: the module).

    Raises:
        ValueError: if the program still holds hyper-values (materialize first).

    Examples:
        >>> import morphax as mx
        >>> @mx.symbolic
        ... def scale(x, factor=2):
        ...     return x * factor
        >>> mx.build([scale(3), scale(1, factor=5)])
        [6, 5]
    """
    nt = node_type(node)
    if nt is None:
        hook = getattr(type(node), "__mx_build__", None)  # a leaf that builds itself
        return node if hook is None else hook(node)
    if nt.placeholder and nt.build is None:
        raise ValueError(
            f"cannot build a program that still has a hyper-value at "
            f"{format_path(_keys) or '<root>'!r}: {node!r}; call mx.materialize(space, dna) first"
        )
    built = {key: build(v, _keys + (key,)) for key, v in nt.flatten(node)}
    if nt.build is not None:
        return nt.build(node, built)
    if type(node) is list:
        return list(built.values())
    return nt.unflatten(node, built)
