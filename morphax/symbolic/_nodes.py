"""Node types: how the tree walk sees inside a value, registered per type.

Like JAX pytrees, a node type says how to *flatten* a node into `(key,
child)` pairs and how to *unflatten* a new node of its kind from children.
Every tree operation (clone, equality, hashing, repr, rebind, query, JSON,
compiling a space) goes through this registry, so a new container type is
one :func:`register_node` call, never an edit of those operations.

Built in: lists, tuples and named tuples, dicts and other mappings
(`collections.abc.Mapping`, `ml_collections.ConfigDict`), `functools.partial`
(its function, positional arguments and keywords), and dataclasses (Flax
linen modules among them, walked through their fields). Symbolic calls and
hyper-values register themselves in their own modules.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from ._keypath import Key

Children = list[tuple[Key, Any]]
_PRIMITIVES = (int, float, str, bool, type(None), bytes, complex)


@dataclasses.dataclass(frozen=True)
class NodeType:
    """How one type of node is walked.

    Attributes:
        name: a short name for messages (`"list"`, `"dataclass"`).
        flatten: `node -> [(key, child), ...]`, in a fixed order. Children
            left at their defaults may be omitted (see `keys`).
        unflatten: `(node, {key: child}) -> new node` of the same kind as
            `node`, with the given children (all keys `flatten` gave, plus any
            that `keys` allows).
        keys: `node -> every key a path may address` (defaults to the keys
            of `flatten`).
        get: `(node, key) -> child` (defaults to a lookup in `flatten`).
        set_child: `(node, key, value) -> None`: sets a child in place;
            None for immutable nodes (rebind rebuilds them with `unflatten`).
        mutable: `node -> bool`, for types whose instances differ (defaults
            to whether `set_child` is given).
        hint: `(node, key) -> annotation` of a child, or `Any`.
        head: `node -> hashable`: what beyond the type and children decides
            equality (for a symbolic call, its target).
        build: `(node, {key: built child}) -> object` for `mx.build`
            (defaults to `unflatten`).
        placeholder: True for nodes that stand for a value not yet decided or
            built (hyper-values, symbolic calls): they fit any annotation.
        parts: `(node, fmt) -> (open, close, items)` for the readable form,
            where `fmt(child)` formats a child (defaults to `Type(key=child)`).
    """

    name: str
    flatten: Callable[[Any], Children]
    unflatten: Callable[[Any, dict[Key, Any]], Any]
    keys: Callable[[Any], list[Key]] | None = None
    get: Callable[[Any, Key], Any] | None = None
    set_child: Callable[[Any, Key, Any], None] | None = None
    mutable: Callable[[Any], bool] | None = None
    hint: Callable[[Any, Key], Any] | None = None
    head: Callable[[Any], Any] | None = None
    build: Callable[[Any, dict[Key, Any]], Any] | None = None
    placeholder: bool = False
    parts: Callable[[Any, Callable[[Any], str]], tuple[str, str, list[str]]] | None = None

    def is_mutable(self, node: Any) -> bool:
        if self.mutable is not None:
            return self.mutable(node)
        return self.set_child is not None

    def all_keys(self, node: Any) -> list[Key]:
        if self.keys is not None:
            return self.keys(node)
        return [k for k, _ in self.flatten(node)]

    def child(self, node: Any, key: Key) -> Any:
        if self.get is not None:
            return self.get(node, key)
        for k, v in self.flatten(node):
            if k == key:
                return v
        raise KeyError(key)


_EXACT: dict[type, NodeType | None] = {t: None for t in _PRIMITIVES}
_BASES: list[tuple[type, NodeType]] = []  # subclass matches, most recent first
_BY_QUALNAME: dict[str, Callable[[], NodeType]] = {}  # types of optional libraries


def register_node(cls: type, node_type: NodeType, *, subclasses: bool = True) -> None:
    """Registers how nodes of `cls` (and, by default, its subclasses) are walked.

    Args:
        cls: the container type.
        node_type: its :class:`NodeType`.
        subclasses: whether subclasses of `cls` use it too.

    Examples:
        >>> import morphax as mx
        >>> from morphax.symbolic import NodeType, register_node
        >>> class Pair:
        ...     def __init__(self, a, b):
        ...         self.a, self.b = a, b
        >>> register_node(Pair, NodeType(
        ...     "Pair",
        ...     flatten=lambda p: [("a", p.a), ("b", p.b)],
        ...     unflatten=lambda p, kids: Pair(kids["a"], kids["b"])))
        >>> space = Pair(mx.oneof([1, 2]), 3)
        >>> mx.materialize(space, mx.DNA([1])).a
        2
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_node takes a type, but got {cls!r}")
    if not isinstance(node_type, NodeType):
        raise TypeError(f"register_node takes a NodeType, but got {node_type!r}")
    if subclasses:
        _BASES.insert(0, (cls, node_type))
        _EXACT.clear()
        _EXACT.update({t: None for t in _PRIMITIVES})
    _EXACT[cls] = node_type


def node_type(node: Any) -> NodeType | None:
    """The node type of `node`, or None for a leaf (cached per type)."""
    t = type(node)
    try:
        return _EXACT[t]
    except KeyError:
        pass
    found: NodeType | None = None
    for base, nt in _BASES:
        if issubclass(t, base):
            found = nt
            break
    if found is None:
        lazy = _BY_QUALNAME.get(f"{t.__module__}.{t.__qualname__}")
        if lazy is not None:
            found = lazy()
        elif dataclasses.is_dataclass(t) and t is not type:
            found = DATACLASS
    _EXACT[t] = found
    return found


def children(node: Any) -> Children:
    """The (key, child) pairs of a node, in a fixed order; [] for leaves."""
    nt = node_type(node)
    return [] if nt is None else nt.flatten(node)


def is_placeholder(node: Any) -> bool:
    nt = node_type(node)
    return nt is not None and nt.placeholder


# ---------------------------------------------------------------------------
# Built-in node types.


def _set_item(node: Any, key: Key, value: Any) -> None:
    node[key] = value


def _unflatten_list(node: Any, values: dict[Key, Any]) -> Any:
    vals = list(values.values())
    return vals if type(node) is list else type(node)(vals)


def _unflatten_tuple(node: Any, values: dict[Key, Any]) -> Any:
    vals = list(values.values())
    if type(node) is tuple:
        return tuple(vals)
    if hasattr(node, "_fields"):  # a named tuple
        return type(node)(*vals)
    return type(node)(vals)


def _seq_keys(node: Any) -> list[Key]:
    return list(range(len(node)))


def _seq_get(node: Any, key: Key) -> Any:
    if not isinstance(key, int) or isinstance(key, bool) or not -len(node) <= key < len(node):
        raise KeyError(key)
    return node[key]


def _map_get(node: Any, key: Key) -> Any:
    return node[key]


LIST = NodeType(
    "list",
    flatten=lambda n: list(enumerate(n)),
    unflatten=_unflatten_list,
    keys=_seq_keys,
    get=_seq_get,
    set_child=_set_item,
)
TUPLE = NodeType(
    "tuple",
    flatten=lambda n: list(enumerate(n)),
    unflatten=_unflatten_tuple,
    keys=_seq_keys,
    get=_seq_get,
)
DICT = NodeType(
    "dict",
    flatten=lambda n: list(n.items()),
    unflatten=lambda n, v: dict(v) if type(n) is dict else type(n)(v),
    get=_map_get,
    set_child=_set_item,
)
MAPPING = NodeType(  # read-only mappings: rebuilt from a dict of their items
    "mapping",
    flatten=lambda n: list(n.items()),
    unflatten=lambda n, v: type(n)(dict(v)),
    get=_map_get,
    set_child=_set_item,
    mutable=lambda n: isinstance(n, collections.abc.MutableMapping),
)


def _partial_flatten(p: functools.partial[Any]) -> Children:
    return [("func", p.func), ("args", p.args), ("keywords", p.keywords)]


def _partial_unflatten(p: Any, v: dict[Key, Any]) -> Any:
    return type(p)(v["func"], *v["args"], **v["keywords"])


PARTIAL = NodeType(
    "partial",
    flatten=_partial_flatten,
    unflatten=_partial_unflatten,
    get=lambda p, k: dict(_partial_flatten(p))[k],
)


def is_flax_module(node: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return linen is not None and isinstance(node, linen.Module)


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _holds_placeholder(value: Any) -> bool:
    """Whether `value` is, or holds somewhere inside, a hyper-value."""
    if is_placeholder(value):
        return True
    nt = node_type(value)
    return nt is not None and any(_holds_placeholder(c) for _, c in nt.flatten(value))


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    default = _default_of(f)
    if default is dataclasses.MISSING or is_placeholder(value):
        return False  # a hyper-value default is a decision: always walked
    if value is default:
        # A default that holds decisions (`proj: nn.Module = nn.Dense(features=mx.oneof(...))`)
        # is walked like any other value, so its decisions are in the space.
        return not _holds_placeholder(value)
    try:
        return type(value) is type(default) and node_type(value) is None and bool(value == default)
    except Exception:
        return False


def _init_fields(node: Any) -> list[dataclasses.Field[Any]]:
    flax = is_flax_module(node)
    return [f for f in dataclasses.fields(node) if f.init and not (flax and f.name == "parent")]


def dataclass_keys(node: Any) -> list[str]:
    """The init fields of a dataclass that differ from their defaults.

    Flax's `parent` is never a key. Fields left at their defaults are not
    walked, shown or serialized: rebuilding with the other fields restores them.
    """
    return [f.name for f in _init_fields(node) if not _is_default(f, getattr(node, f.name))]


def _dataclass_mutable(node: Any) -> bool:
    return not is_flax_module(node) and not node.__dataclass_params__.frozen


def _dataclass_hint(node: Any, key: Key) -> Any:
    f = node.__dataclass_fields__.get(key)
    return Any if f is None or isinstance(f.type, str) else f.type


DATACLASS = NodeType(
    "dataclass",
    flatten=lambda n: [(k, getattr(n, k)) for k in dataclass_keys(n)],
    unflatten=lambda n, v: type(n)(**v),
    keys=lambda n: [f.name for f in _init_fields(n)],
    get=lambda n, k: getattr(n, k),
    set_child=setattr,
    mutable=_dataclass_mutable,
    hint=_dataclass_hint,
)


def _config_dict() -> NodeType:
    return NodeType(
        "ConfigDict",
        flatten=lambda n: list(n.items()),
        unflatten=lambda n, v: type(n)(dict(v)),
        get=_map_get,
        set_child=_set_item,
        mutable=lambda n: type(n).__name__ == "ConfigDict",
    )


# Most recent first: register the general types before the specific ones.
register_node(collections.abc.Mapping, MAPPING)
register_node(functools.partial, PARTIAL)
register_node(list, LIST)
register_node(tuple, TUPLE)
register_node(dict, DICT)
for _qual in ("ConfigDict", "FrozenConfigDict"):
    _BY_QUALNAME[f"ml_collections.config_dict.config_dict.{_qual}"] = _config_dict


def signature_hint(sig: inspect.Signature, key: Key) -> Any:
    """The annotation of parameter `key` of `sig`, or Any."""
    param = sig.parameters.get(key) if isinstance(key, str) else None
    if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return Any
    return Any if param.annotation is param.empty else param.annotation
