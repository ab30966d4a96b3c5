"""JSON for programs, spaces and DNA: registered names only, never pickle.

Classes and functions are stored by registered name (see `_registry` for
what is registered: Flax linen, `jax.nn`, `jax.numpy` and optax callables
except input/output, `mx.symbolic` targets, and what users register with
:func:`register`). `from_json` treats its input as data: it looks names up
in the registry and never imports (but morphax's own modules, from a fixed
table) or calls anything, except that it constructs registered data classes
(dataclasses, Flax modules, named tuples) from their fields. Functions come
back as references, recorded calls as `Call` nodes that are not built.

Decoding bounds the nesting depth (:data:`MAX_DEPTH`) and formats the JSON
path of a value only when it reports an error.
"""

from __future__ import annotations

import functools
import json
import math
import reprlib
from typing import Any

import numpy as np

from ._call import Call, symbolic
from ._dna import DNA
from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._nodes import dataclass_keys, node_type
from ._registry import lookup, registered_name
from ._space import Space

#: How deeply morphax JSON may nest (dicts and lists); deeper input is refused.
MAX_DEPTH = 200

# ---------------------------------------------------------------------------
# The uses of the node model (`_tree`, `_hyper`), kept in these helpers.


def _node_kind(obj: Any) -> str:
    """ "leaf", "hyper", "call", "list", "tuple", "dict", "partial", "object" or "other"."""
    nt = node_type(obj)
    if nt is None:
        return "leaf"
    if isinstance(obj, HyperValue):
        return "hyper"
    if isinstance(obj, Call):
        return "call"
    if isinstance(obj, list):
        return "list"
    if isinstance(obj, tuple):
        return "tuple"
    if isinstance(obj, dict):
        return "dict"
    if type(obj) is functools.partial:
        return "partial"
    return "object" if nt.name == "dataclass" else "other"


def _call_parts(call: Any) -> tuple[Any, dict[str, Any]]:
    return call.target, call.args


def _object_fields(obj: Any) -> dict[str, Any]:
    return {key: getattr(obj, key) for key in dataclass_keys(obj)}


def _make_call(target: Any, args: dict[str, Any], fn: str, path: _Path) -> Call:
    """A `Call` node of `target` (never called here)."""
    try:
        factory = symbolic(target)
    except TypeError as e:
        raise ValueError(f"malformed morphax JSON at {_format(path)}: {e}") from None
    unknown = [key for key in args if key not in factory._params]
    _need(not unknown, path, f"{fn} has no arguments {unknown}", sorted(args))
    return Call(factory, args)


def _make_hyper(t: str, v: dict[str, Any], name: Any, site: str) -> HyperValue:
    """A hyper-value through its constructor, which checks its rules."""
    if t == "oneof":
        return OneOf(v["candidates"], name=name, site=site)
    if t == "manyof":
        return ManyOf(
            v["k"],
            v["candidates"],
            distinct=v["distinct"],
            sorted=v["sorted"],
            name=name,
            site=site,
        )
    if t == "floatv":
        return FloatV(v["low"], v["high"], scale=v["scale"], name=name, site=site)
    return IntV(v["low"], v["high"], name=name, site=site)


# ---------------------------------------------------------------------------
# Paths: a linked tuple `(parent, key)` per level, formatted only for errors.

_Path = tuple[Any, Any] | None  # None is the root, `$`
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlist = _repr.maxdict = _repr.maxtuple = 6
_repr.maxlevel = 3


def _short(value: Any) -> str:
    """A bounded repr of a (JSON) value for error messages."""
    return _repr.repr(value)


def _segment(key: Any) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if isinstance(key, str):
        return "." + (key if len(key) <= 40 else key[:30] + "...")
    kind, k = key
    return "<key>" if kind == "key" else f"[{_short(k)}]"


def _format(path: _Path, limit: int = 300) -> str:
    """The `$.a[0].b` text of a path, shortened to about `limit` characters."""
    parts = []
    while path is not None:
        path, key = path
        parts.append(_segment(key))
    text = "$" + "".join(reversed(parts))
    return text if len(text) <= limit else f"{text[: limit - 100]}...{text[-90:]}"


def _lookup(name: str, path: _Path) -> Any:
    """The registered object of `name` (never imported, never called)."""
    try:
        return lookup(name)
    except ValueError as e:
        raise ValueError(f"morphax JSON at {_format(path)}: {e}") from None


def _need(cond: bool, path: _Path, what: str, value: Any) -> None:
    if not cond:
        raise ValueError(
            f"malformed morphax JSON at {_format(path)}: {what}, but got {_short(value)}"
        )


# ---------------------------------------------------------------------------
# Encoding.


def to_json_value(obj: Any) -> Any:
    """The JSON-ready value (dicts, lists, str, numbers) of a program or DNA."""
    return _enc(obj, None)


def _enc(obj: Any, path: _Path) -> Any:
    k = _node_kind(obj)
    if k == "leaf":
        return _leaf(obj, path)
    if k == "hyper":
        fields = {key: _enc(v, (path, key)) for key, v in obj._fields().items()}
        return {"$type": obj.kind, **fields}
    if k == "call":
        target, args = _call_parts(obj)
        return {
            "$type": "call",
            "fn": _name_or_raise(target, path),
            "args": {key: _enc(v, (path, key)) for key, v in args.items()},
        }
    if k == "list":
        return [_enc(v, (path, i)) for i, v in enumerate(obj)]
    if k == "tuple":
        items = [_enc(v, (path, i)) for i, v in enumerate(obj)]
        if type(obj) is tuple:
            return {"$type": "tuple", "items": items}
        return {"$type": "namedtuple", "cls": _name_or_raise(type(obj), path), "items": items}
    if k == "dict":
        if type(obj) is dict and all(
            isinstance(key, str) and not key.startswith("$") for key in obj
        ):
            return {key: _enc(v, (path, key)) for key, v in obj.items()}
        if type(obj) is not dict:
            raise TypeError(
                f"cannot serialize {type(obj).__name__} at {_format(path)}: only plain dicts "
                "are supported"
            )
        return {
            "$type": "dict",
            "items": [
                [_enc(key, (path, ("key", None))), _enc(v, (path, ("item", key)))]
                for key, v in obj.items()
            ],
        }
    if k == "partial":
        return {
            "$type": "partial",
            "func": {"$type": "ref", "name": _name_or_raise(obj.func, path)},
            "args": [_enc(v, (path, ("args", i))) for i, v in enumerate(obj.args)],
            "keywords": {key: _enc(v, (path, key)) for key, v in obj.keywords.items()},
        }
    if k == "other":
        raise TypeError(
            f"cannot serialize {type(obj).__name__} at {_format(path)}: morphax JSON holds "
            "plain dicts, lists, tuples, partials, programs and registered classes; convert it "
            "(for a ConfigDict: .to_dict()) before storing it"
        )
    return {
        "$type": "object",
        "cls": _name_or_raise(type(obj), path),
        "fields": {key: _enc(v, (path, key)) for key, v in _object_fields(obj).items()},
    }


def _leaf(obj: Any, path: _Path) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$type": "float", "value": repr(obj)}
    if isinstance(obj, DNA):
        return obj.to_json_value()
    if isinstance(obj, np.generic):
        return _leaf(obj.item(), path)
    if isinstance(obj, np.ndarray):
        return {
            "$type": "ndarray",
            "dtype": obj.dtype.str,
            "shape": list(obj.shape),
            "data": obj.ravel().tolist(),
        }
    if isinstance(obj, Space):
        return {"$type": "space", "program": _enc(obj.program, path)}
    if callable(obj):
        return {"$type": "ref", "name": _name_or_raise(obj, path)}
    raise TypeError(
        f"cannot serialize {obj!r} ({type(obj).__name__}) at {_format(path)}: morphax JSON "
        "holds numbers, strings, lists, dicts, programs and registered classes and functions; "
        "register its type with mx.register"
    )


def _name_or_raise(obj: Any, path: _Path) -> str:
    name = registered_name(obj)
    if name is None:
        raise TypeError(
            f"cannot serialize {obj!r} at {_format(path)}: it is not registered; call "
            f"mx.register({getattr(obj, '__name__', 'obj')}) (or decorate it with @mx.register "
            "or @mx.symbolic) so that JSON can name it"
        )
    return name


def to_json(obj: Any, **dumps_kwargs: Any) -> str:
    """Serializes a program, a space or a DNA to a JSON string.

    Raises:
        TypeError: for a value JSON cannot name (an unregistered class or
            function), naming its path.

    Examples:
        >>> import morphax as mx
        >>> import flax.linen as nn
        >>> space = {"layer": nn.Dense(features=mx.oneof([16, 32])), "act": mx.oneof([nn.relu, nn.gelu])}
        >>> mx.from_json(mx.to_json(space)) == space
        True
    """
    try:
        return json.dumps(to_json_value(obj), **dumps_kwargs)
    except RecursionError:
        raise ValueError(
            "cannot serialize a program nested deeper than Python's recursion limit"
        ) from None
