"""Symbolic programs: recorded calls and the tree walk over programs.

A program is a tree of :class:`Call` nodes (a callable and its arguments,
recorded, not yet run), dataclass instances (Flax linen modules among them,
walked through their fields without subclassing or patching Flax), lists,
tuples and dicts, hyper-values, and leaves (anything else).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._keypath import Key, format_path, parse_path

# Node kinds.
LEAF, CALL, HYPER, LIST, TUPLE, DICT, DATACLASS = range(7)
_PRIMITIVES = (int, float, str, bool, type(None), bytes, complex)
_KIND_BY_TYPE: dict[type, int] = {t: LEAF for t in _PRIMITIVES}


class SymbolicFactory:
    """A callable whose calls are recorded as :class:`Call` nodes.

    Made by :func:`symbolic`; calling it checks the arguments against the
    target's signature and returns a `Call` that builds the target later.
    """

    __slots__ = ("target", "signature", "_params", "__wrapped__", "__name__", "__dict__")

    def __init__(self, target: Callable[..., Any]) -> None:
        self.target = target
        try:
            self.signature = inspect.signature(target)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"cannot make {target!r} symbolic: its signature cannot be inspected ({e})"
            ) from None
        self._params = self.signature.parameters
        self.__wrapped__ = target
        self.__doc__ = target.__doc__
        self.__name__ = getattr(target, "__name__", repr(target))

    def __call__(self, *args: Any, **kwargs: Any) -> Call:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"bad arguments for {_qualname(self.target)}: {e}") from None
        return Call(self, dict(bound.arguments))

    def __repr__(self) -> str:
        return f"symbolic({_qualname(self.target)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymbolicFactory) and other.target is self.target

    def __hash__(self) -> int:
        return hash(("symbolic", id(self.target)))


_FACTORIES: dict[int, SymbolicFactory] = {}


def symbolic(target: Callable[..., Any]) -> SymbolicFactory:
    """Makes a class or function symbolic: calls record, and build on demand.

    Use it as a decorator on your own classes and functions, or wrap ones you
    do not own (`mx.symbolic(nn.Dense)`, `mx.symbolic(optax.adam)`). The
    target is registered for JSON under its `module.qualname`.

    Args:
        target: a class or function.

    Returns:
        A factory; calling it returns a :class:`Call`.

    Examples:
        >>> import morphax as mx
        >>> import optax
        >>> Adam = mx.symbolic(optax.adam)
        >>> program = Adam(learning_rate=mx.floatv(1e-4, 1e-2, scale="log"))
        >>> child = mx.materialize(program, mx.DNA([1e-3]))
        >>> child
        adam(learning_rate=0.001)
        >>> optimizer = mx.build(child)  # the real optax.GradientTransformation
        >>> type(optimizer).__name__
        'GradientTransformationExtraArgs'
    """
    if isinstance(target, SymbolicFactory):
        return target
    if not callable(target):
        raise TypeError(f"mx.symbolic needs a class or function, but got {target!r}")
    factory = _FACTORIES.get(id(target))
    if factory is None or factory.target is not target:
        factory = SymbolicFactory(target)
        _FACTORIES[id(target)] = factory
        from ._json import register

        register(target, _default=True)
    return factory


class Call:
    """A recorded call: `factory.target(**args)`, built by :meth:`build`.

    Arguments are stored by parameter name (positional ones are bound to their
    names), so `call.rebind({"features": 64})` and paths such as
    `layers[2].features` address them.
    """

    __slots__ = ("factory", "args")

    def __init__(self, factory: SymbolicFactory, args: dict[str, Any]) -> None:
        self.factory = factory
        self.args = args

    @property
    def target(self) -> Callable[..., Any]:
        return self.factory.target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.args[name]
        except KeyError:
            param = self.factory._params.get(name)
            if param is not None and param.default is not inspect.Parameter.empty:
                return param.default
            raise AttributeError(
                f"{_qualname(self.target)} call has no argument {name!r}; "
                f"its arguments are {list(self.factory._params)}"
            ) from None

    def build(self) -> Any:
        """Builds the real object, building nested calls first."""
        return build(self)

    def rebind(self, updates: dict[str, Any]) -> Call:
        """Rebinds arguments in place by path; see :func:`rebind`."""
        result = rebind(self, updates)
        assert result is self
        return self

    def clone(self) -> Call:
        return typing.cast(Call, clone(self))

    def __eq__(self, other: object) -> bool:
        return sym_eq(self, other)

    def __hash__(self) -> int:
        return sym_hash(self)

    def __repr__(self) -> str:
        return format_program(self)


# ---------------------------------------------------------------------------
# The tree walk.


def _is_flax_module(node: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return linen is not None and isinstance(node, linen.Module)


def kind_of(node: Any) -> int:
    """The node kind of `node` (cached per type)."""
    t = type(node)
    k = _KIND_BY_TYPE.get(t)
    if k is None:
        if issubclass(t, Call):
            k = CALL
        elif issubclass(t, HyperValue):
            k = HYPER
        elif issubclass(t, list):
            k = LIST
        elif issubclass(t, tuple):
            k = TUPLE
        elif issubclass(t, dict):
            k = DICT
        elif dataclasses.is_dataclass(t) and t is not type:
            k = DATACLASS
        else:
            k = LEAF
        _KIND_BY_TYPE[t] = k
    return k


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    if value is default:
        return True
    try:
        return type(value) is type(default) and kind_of(value) == LEAF and bool(value == default)
    except Exception:
        return False


def _dataclass_keys(node: Any) -> list[str]:
    """The init fields of a dataclass that differ from their defaults.

    Flax's `parent` is never a key. Fields left at their defaults are not
    walked, shown or serialized: rebuilding with the other fields restores them.
    """
    flax = _is_flax_module(node)
    keys = []
    for f in dataclasses.fields(node):
        if not f.init or (flax and f.name == "parent"):
            continue
        if not _is_default(f, getattr(node, f.name)):
            keys.append(f.name)
    return keys


def children(node: Any) -> list[tuple[Key, Any]]:
    """The (key, child) pairs of a node, in a fixed order; [] for leaves."""
    k = kind_of(node)
    if k == LEAF:
        return []
    if k == CALL:
        return list(node.args.items())
    if k in (LIST, TUPLE):
        return list(enumerate(node))
    if k == DICT:
        return list(node.items())
    if k == DATACLASS:
        return [(key, getattr(node, key)) for key in _dataclass_keys(node)]
    return list(node._fields().items())  # HYPER


def rebuild(node: Any, values: dict[Key, Any]) -> Any:
    """A new node of the type of `node` with children `values` (key -> value)."""
    k = kind_of(node)
    if k == CALL:
        return Call(node.factory, dict(values))
    if k == LIST:
        return type(node)(values.values()) if type(node) is not list else list(values.values())
    if k == TUPLE:
        vals = list(values.values())
        if hasattr(node, "_fields") and type(node) is not tuple:  # namedtuple
            return type(node)(*vals)
        return type(node)(vals)
    if k == DICT:
        return type(node)(values)
    if k == DATACLASS:
        return type(node)(**values)
    if k == HYPER:
        return _rebuild_hyper(node, values)
    return node


def _rebuild_hyper(node: HyperValue, values: dict[Key, Any]) -> HyperValue:
    if isinstance(node, OneOf):
        return OneOf(list(values["candidates"]), values["name"], node.site)
    if isinstance(node, ManyOf):
        return ManyOf(
            values["k"],
            list(values["candidates"]),
            values["distinct"],
            values["sorted"],
            values["name"],
            node.site,
        )
    if isinstance(node, FloatV):
        return FloatV(values["low"], values["high"], values["scale"], values["name"], node.site)
    assert isinstance(node, IntV)
    return IntV(values["low"], values["high"], values["name"], node.site)


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
    k = kind_of(node)
    if k == LEAF:
        return node
    if k == LIST and type(node) is list:
        return [clone(v) for v in node]
    return rebuild(node, {key: clone(v) for key, v in children(node)})


def sym_eq(a: Any, b: Any) -> bool:
    """Value equality of two programs (structure, types and leaves)."""
    if a is b:
        return True
    ka = kind_of(a)
    if ka == LEAF:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return (
                isinstance(a, np.ndarray)
                and isinstance(b, np.ndarray)
                and a.dtype == b.dtype
                and np.array_equal(a, b)
            )
        return kind_of(b) == LEAF and bool(a == b)
    if type(a) is not type(b):
        return False
    if ka == CALL and a.factory.target is not b.factory.target:
        return False
    ca, cb = children(a), children(b)
    if len(ca) != len(cb):
        return False
    return all(ka_ == kb_ and sym_eq(va, vb) for (ka_, va), (kb_, vb) in zip(ca, cb, strict=True))


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
    """A hash consistent with :func:`sym_eq`."""
    k = kind_of(node)
    if k == LEAF:
        try:
            return hash(node)
        except TypeError:
            if isinstance(node, np.ndarray):
                return hash((node.dtype.str, node.shape, node.tobytes()))
            return hash(type(node))
    head: Any = id(node.factory.target) if k == CALL else type(node)
    return hash((head, tuple((key, sym_hash(v)) for key, v in children(node))))


# ---------------------------------------------------------------------------
# Paths: rebind and query.


def _missing_key_error(root: Any, keys: tuple[Key, ...], i: int, node: Any) -> ValueError:
    where = format_path(keys[:i]) or "<root>"
    have = [format_path((k,)) for k, _ in children(node)]
    if kind_of(node) == CALL:
        have = list(node.factory._params)
    return ValueError(
        f"path {format_path(keys)!r} does not exist: {type(node).__name__} at {where!r} "
        f"has no key {keys[i]!r} (its keys: {have})"
    )


def _type_hint(node: Any, key: Key) -> Any:
    """The annotation of argument/field `key` of `node`, or Any."""
    k = kind_of(node)
    if k == CALL:
        param = node.factory._params.get(key)
        if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            return Any
        return Any if param.annotation is param.empty else param.annotation
    if k == DATACLASS:
        f = node.__dataclass_fields__.get(key)
        return Any if f is None or isinstance(f.type, str) else f.type
    return Any


def _accepts(hint: Any, value: Any) -> bool:
    """Whether `value` fits the annotation `hint`; True when unsure."""
    if hint is Any or isinstance(value, HyperValue | Call):
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
    """Sets values at paths, in place where the nodes are mutable.

    Lists, dicts, calls and mutable dataclasses change in place; tuples and
    immutable nodes (Flax modules) on the way are rebuilt, so the returned root
    is `root` unless `root` itself is immutable.

    Args:
        root: the program.
        updates: `{path: value}`, with paths like `"layers[2].features"`.

    Returns:
        The root, changed.

    Raises:
        ValueError: if a path does not exist.
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
        root = _set(root, keys, 0, value, root)
    return root


def _set(node: Any, keys: tuple[Key, ...], i: int, value: Any, root: Any) -> Any:
    """Sets keys[i:] under node to value; returns node or its replacement."""
    key = keys[i]
    k = kind_of(node)
    if k == CALL:
        exists = key in node.factory._params
    elif k in (LIST, TUPLE):
        exists = isinstance(key, int) and -len(node) <= key < len(node)
    elif k == DICT:
        exists = key in node
    elif k == DATACLASS:
        exists = key in _dataclass_keys(node) or key in node.__dataclass_fields__
    elif k == HYPER:
        exists = key in node._fields()
    else:
        exists = False
    if not exists:
        raise _missing_key_error(root, keys, i, node)
    if i + 1 < len(keys):
        old = node.args.get(key) if k == CALL else _get(node, key)
        if old is None and k == CALL:
            raise _missing_key_error(root, keys, i + 1, node)
        value = _set(old, keys, i + 1, value, root)
    else:
        hint = _type_hint(node, key)
        if not _accepts(hint, value):
            raise TypeError(
                f"cannot rebind {format_path(keys)!r} to {value!r}: "
                f"{type(value).__name__} does not fit the annotated type {_hint_repr(hint)}"
            )
    if k == CALL:
        node.args[key] = value
        return node
    if k in (LIST, DICT) and not isinstance(node, tuple):
        node[key] = value
        return node
    if k == DATACLASS and not _is_flax_module(node) and not node.__dataclass_params__.frozen:
        setattr(node, key, value)
        return node
    values = dict(children(node))
    if k == TUPLE:
        key = key % len(node)
    values[key] = value
    return rebuild(node, values)


def _hint_repr(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else repr(hint)


def _get(node: Any, key: Key) -> Any:
    k = kind_of(node)
    if k == CALL:
        return node.args[key]
    if k in (LIST, TUPLE, DICT):
        return node[key]
    if k == DATACLASS:
        return getattr(node, key)
    return node._fields()[key]


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
                target = node.target if isinstance(node, Call) else None
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
        try:
            node = _get(node, key)
        except (KeyError, IndexError, AttributeError, TypeError):
            raise _missing_key_error(root, keys, i, node) from None
    return node


# ---------------------------------------------------------------------------
# Building and formatting.


def build(node: Any, _keys: tuple[Key, ...] = ()) -> Any:
    """Builds the real objects of a program: every :class:`Call` is called.

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
    k = kind_of(node)
    if k == LEAF:
        return node
    if k == HYPER:
        raise ValueError(
            f"cannot build a program that still has a hyper-value at "
            f"{format_path(_keys) or '<root>'!r}: {node!r}; call mx.materialize(space, dna) first"
        )
    built = {key: build(v, _keys + (key,)) for key, v in children(node)}
    if k == CALL:
        sig = node.factory.signature
        bound = inspect.BoundArguments(sig, built)
        return node.factory.target(*bound.args, **bound.kwargs)
    if k == LIST and type(node) is list:
        return list(built.values())
    return rebuild(node, built)


def _qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def _leaf_repr(node: Any) -> str:
    if isinstance(node, functools.partial):
        return f"partial({_leaf_repr(node.func)}, ...)"
    if callable(node) and isinstance(getattr(node, "__name__", None), str):
        return _qualname(node)  # functions, classes, jax custom_jvp wrappers
    return repr(node)


def literal(node: Any) -> str:
    """A short text for a candidate that is the same in every process.

    Values print as their repr; functions and classes as `module.qualname`
    (never a memory address); other nodes as their type name.
    """
    if type(node) in _PRIMITIVES:
        return repr(node)
    if kind_of(node) == CALL:
        return _qualname(node.target)
    if callable(node) and isinstance(getattr(node, "__name__", None), str):
        return f"{getattr(node, '__module__', '')}.{_qualname(node)}"
    return type(node).__qualname__


def format_program(node: Any, width: int = 88, indent: int = 0) -> str:
    """A readable form of a program: one line when it fits, indented otherwise."""
    k = kind_of(node)
    if k == LEAF:
        return _leaf_repr(node)
    if k == CALL:
        head, close, items = _qualname(node.target) + "(", ")", _kv(node.args)
    elif k == HYPER:
        fields = {k_: v for k_, v in node._fields().items() if v is not None}
        if isinstance(node, ManyOf):
            fields = {
                k_: v
                for k_, v in fields.items()
                if (k_, v) not in (("distinct", True), ("sorted", False))
            }
        if isinstance(node, FloatV) and fields.get("scale") == "linear":
            del fields["scale"]
        head, close = node.kind + "(", ")"
        items = [
            format_program(v, width, indent + 4)
            if k_ in ("candidates", "k", "low", "high")
            else f"{k_}={v!r}"
            for k_, v in fields.items()
        ]
    elif k == LIST:
        head, close, items = "[", "]", [format_program(v, width, indent + 4) for v in node]
    elif k == TUPLE:
        head, close = type(node).__name__ + "(" if hasattr(node, "_fields") else "(", ")"
        items = [format_program(v, width, indent + 4) for v in node]
        if len(node) == 1 and head == "(":
            close = ",)"
    elif k == DICT:
        head, close = "{", "}"
        items = [f"{k_!r}: {format_program(v, width, indent + 4)}" for k_, v in node.items()]
    else:
        head, close = type(node).__name__ + "(", ")"
        items = _kv(dict(children(node)), width, indent)
    one = head + ", ".join(items) + close
    if len(one) + indent <= width and "\n" not in one:
        return one
    pad = " " * (indent + 4)
    return head + "\n" + ",\n".join(pad + it for it in items) + ",\n" + " " * indent + close


def _kv(args: dict[Any, Any], width: int = 88, indent: int = 0) -> list[str]:
    return [f"{k}={format_program(v, width, indent + 4)}" for k, v in args.items()]
