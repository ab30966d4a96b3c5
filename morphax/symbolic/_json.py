"""JSON for programs, spaces and DNA: registered names only, never pickle.

Classes and functions are stored by registered name. Flax linen layers and
activations, `jax.nn` functions and initializers, and optax's public
functions are registered by default; `mx.symbolic` registers its target; users
register their own with :func:`register`. `from_json` looks names up in the
registry and never imports or calls anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np

from ._dna import DNA
from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._tree import CALL, DATACLASS, LEAF, Call, _dataclass_keys, kind_of, symbolic

T = TypeVar("T")
_BY_NAME: dict[str, Any] = {}
_NAME_OF: dict[int, str] = {}
_AUTO: set[int] = set()  # objects named by `module.qualname`, not by the user
_DEFAULTS_LOADED = False
_DEFAULT_MODULES = (
    "flax.linen",
    "flax.linen.initializers",
    "jax.nn",
    "jax.nn.initializers",
    "jax.numpy",
    "optax",
    "optax.schedules",
)


def _auto_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not module or not qualname:
        raise TypeError(f"cannot derive a registry name for {obj!r}; pass name='...'")
    return f"{module}.{qualname}"


@overload
def register(obj: T, *, name: str | None = None, _default: bool = False) -> T: ...
@overload
def register(
    obj: None = None, *, name: str | None = None, _default: bool = False
) -> Callable[[T], T]: ...
def register(obj: Any = None, *, name: str | None = None, _default: bool = False) -> Any:
    """Registers a class or function for JSON, under `name` or `module.qualname`.

    Use it as a call (`mx.register(MyBlock)`) or as a decorator, with or
    without a name. A later registration of the same name replaces the
    earlier one.

    Examples:
        >>> import morphax as mx
        >>> @mx.register(name="my_project.swish")
        ... def swish(x):
        ...     return x
        >>> mx.to_json({"act": swish})
        '{"act": {"$type": "ref", "name": "my_project.swish"}}'
    """
    if obj is None:
        return lambda o: register(o, name=name, _default=_default)
    if not callable(obj):
        raise TypeError(f"mx.register takes a class or function, but got {obj!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"a registry name must be a non-empty str, but got {name!r}")
    key = name or _auto_name(obj)
    replaced = _BY_NAME.get(key)
    if replaced is not None and replaced is not obj and _NAME_OF.get(id(replaced)) == key:
        # The old object may be collected and its id reused: forget its name.
        del _NAME_OF[id(replaced)]
        _AUTO.discard(id(replaced))
    _BY_NAME[key] = obj
    if not _default:
        _NAME_OF[id(obj)] = key
        _AUTO.discard(id(obj))
    elif id(obj) not in _NAME_OF:
        _NAME_OF[id(obj)] = key
        _AUTO.add(id(obj))
    return obj


def _load_defaults() -> None:
    global _DEFAULTS_LOADED
    if _DEFAULTS_LOADED:
        return
    _DEFAULTS_LOADED = True
    import importlib

    for modname in _DEFAULT_MODULES:
        try:
            module = importlib.import_module(modname)
        except ImportError:  # pragma: no cover - all are dependencies
            continue
        for attr, value in vars(module).items():
            if attr.startswith("_") or not callable(value) or isinstance(value, type(json)):
                continue
            key = f"{modname}.{attr}"
            _BY_NAME.setdefault(key, value)
            # Library names win over automatic `module.qualname` names, so the
            # name of an object does not depend on what was registered first.
            if id(value) not in _NAME_OF or id(value) in _AUTO:
                _NAME_OF[id(value)] = key
                _AUTO.discard(id(value))


def registered_name(obj: Any) -> str | None:
    """The registry name of `obj`, or None."""
    if not _DEFAULTS_LOADED and (id(obj) not in _NAME_OF or id(obj) in _AUTO):
        module = getattr(obj, "__module__", None) or ""
        if id(obj) not in _NAME_OF or module.split(".")[0] in ("flax", "jax", "jaxlib", "optax"):
            _load_defaults()  # library names win; user classes need no JAX import
    name = _NAME_OF.get(id(obj))
    # An id is only a name while the registry still holds that very object.
    return name if name is not None and _BY_NAME.get(name) is obj else None


def lookup(name: str) -> Any:
    """The registered object of `name`; ValueError naming close matches otherwise."""
    if name not in _BY_NAME:
        _load_defaults()
    try:
        return _BY_NAME[name]
    except KeyError:
        tail = name.rsplit(".", 1)[-1]
        close = sorted(n for n in _BY_NAME if n.rsplit(".", 1)[-1] == tail)[:5]
        hint = f"; registered names ending in {tail!r}: {close}" if close else ""
        raise ValueError(
            f"unknown name {name!r}: it is not registered, and from_json imports nothing; "
            f"register it with mx.register(obj, name={name!r}) before loading{hint}"
        ) from None


# ---------------------------------------------------------------------------
# Encoding.


def to_json_value(obj: Any, path: str = "$") -> Any:
    """The JSON-ready value (dicts, lists, str, numbers) of a program or DNA."""
    k = kind_of(obj)
    if k == LEAF:
        return _leaf(obj, path)
    if isinstance(obj, HyperValue):
        fields = {key: to_json_value(v, f"{path}.{key}") for key, v in obj._fields().items()}
        return {"$type": obj.kind, **fields}
    if k == CALL:
        return {
            "$type": "call",
            "fn": _name_or_raise(obj.target, path),
            "args": {key: to_json_value(v, f"{path}.{key}") for key, v in obj.args.items()},
        }
    if isinstance(obj, list):
        return [to_json_value(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        items = [to_json_value(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if type(obj) is tuple:
            return {"$type": "tuple", "items": items}
        return {"$type": "namedtuple", "cls": _name_or_raise(type(obj), path), "items": items}
    if isinstance(obj, dict):
        if type(obj) is dict and all(
            isinstance(key, str) and not key.startswith("$") for key in obj
        ):
            return {key: to_json_value(v, f"{path}.{key}") for key, v in obj.items()}
        if type(obj) is not dict:
            raise TypeError(
                f"cannot serialize {type(obj).__name__} at {path}: only plain dicts are supported"
            )
        return {
            "$type": "dict",
            "items": [
                [to_json_value(key, f"{path}<key>"), to_json_value(v, f"{path}[{key!r}]")]
                for key, v in obj.items()
            ],
        }
    assert k == DATACLASS
    return {
        "$type": "object",
        "cls": _name_or_raise(type(obj), path),
        "fields": {
            key: to_json_value(getattr(obj, key), f"{path}.{key}") for key in _dataclass_keys(obj)
        },
    }


def _leaf(obj: Any, path: str) -> Any:
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
    from ._space import Space

    if isinstance(obj, Space):
        return {"$type": "space", "program": to_json_value(obj.program, path)}
    if callable(obj):
        return {"$type": "ref", "name": _name_or_raise(obj, path)}
    raise TypeError(
        f"cannot serialize {obj!r} ({type(obj).__name__}) at {path}: morphax JSON holds "
        "numbers, strings, lists, dicts, programs and registered classes and functions; "
        "register its type with mx.register"
    )


def _name_or_raise(obj: Any, path: str) -> str:
    name = registered_name(obj)
    if name is None:
        raise TypeError(
            f"cannot serialize {obj!r} at {path}: it is not registered; call "
            f"mx.register({getattr(obj, '__name__', 'obj')}) (or decorate it with @mx.register "
            "or @mx.symbolic) so that JSON can name it"
        )
    return name


def to_json(obj: Any, **dumps_kwargs: Any) -> str:
    """Serializes a program, a space or a DNA to a JSON string.

    Examples:
        >>> import morphax as mx
        >>> import flax.linen as nn
        >>> space = {"layer": nn.Dense(features=mx.oneof([16, 32])), "act": mx.oneof([nn.relu, nn.gelu])}
        >>> mx.from_json(mx.to_json(space)) == space
        True
    """
    return json.dumps(to_json_value(obj), **dumps_kwargs)


# ---------------------------------------------------------------------------
# Decoding.


def _need(cond: bool, path: str, what: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"malformed morphax JSON at {path}: {what}, but got {value!r}")


def from_json_value(value: Any, path: str = "$") -> Any:
    """The program, space or DNA of a JSON-ready value (see :func:`from_json`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [from_json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    _need(isinstance(value, dict), path, "expected a JSON value", value)
    t = value.get("$type")
    if t is None:
        return {key: from_json_value(v, f"{path}.{key}") for key, v in value.items()}
    decoder = _DECODERS.get(t)
    _need(decoder is not None, path, f"'$type' must be one of {sorted(_DECODERS)}", t)
    try:
        return decoder(value, path)  # type: ignore[misc]
    except KeyError as e:
        raise ValueError(
            f"malformed morphax JSON at {path}: {t!r} needs the key {e}, but got {value!r}"
        ) from None


def _field(value: dict[str, Any], key: str, typ: type | tuple[type, ...], path: str) -> Any:
    v = value[key]
    _need(isinstance(v, typ), f"{path}.{key}", f"{key!r} must be {typ}", v)
    return v


def _dec_hyper(value: dict[str, Any], path: str) -> Any:
    t = value["$type"]
    name = value.get("name")
    site = f"from_json:{path}"
    if t == "oneof":
        cands = from_json_value(_field(value, "candidates", list, path), f"{path}.candidates")
        _need(len(cands) > 0, path, "oneof needs candidates", value)
        return OneOf(cands, name, site)
    if t == "manyof":
        cands = from_json_value(_field(value, "candidates", list, path), f"{path}.candidates")
        return ManyOf(
            _field(value, "k", int, path),
            cands,
            bool(value["distinct"]),
            bool(value["sorted"]),
            name,
            site,
        )
    if t == "floatv":
        low, high = (
            _field(value, "low", (int, float), path),
            _field(value, "high", (int, float), path),
        )
        _need(low < high, path, "floatv needs low < high", value)
        return FloatV(float(low), float(high), _field(value, "scale", str, path), name, site)
    low, high = _field(value, "low", int, path), _field(value, "high", int, path)
    _need(low <= high, path, "intv needs low <= high", value)
    return IntV(low, high, name, site)


def _dec_call(value: dict[str, Any], path: str) -> Call:
    factory = symbolic(lookup(_field(value, "fn", str, path)))
    args = _field(value, "args", dict, path)
    decoded = {key: from_json_value(v, f"{path}.{key}") for key, v in args.items()}
    unknown = [key for key in decoded if key not in factory._params]
    _need(not unknown, path, f"{value['fn']} has no arguments {unknown}", sorted(args))
    return Call(factory, decoded)


def _dec_object(value: dict[str, Any], path: str) -> Any:
    cls = lookup(_field(value, "cls", str, path))
    fields = _field(value, "fields", dict, path)
    try:
        return cls(**{key: from_json_value(v, f"{path}.{key}") for key, v in fields.items()})
    except TypeError as e:
        raise ValueError(
            f"malformed morphax JSON at {path}: cannot rebuild {value['cls']}: {e}"
        ) from None


def _dec_dna(value: dict[str, Any], path: str) -> DNA:
    vals = _field(value, "values", list, path)
    try:
        return DNA(vals)
    except TypeError as e:
        raise ValueError(f"malformed morphax JSON at {path}: {e}") from None


def _dec_float(value: dict[str, Any], path: str) -> float:
    text = _field(value, "value", str, path)
    _need(
        text in ("nan", "inf", "-inf"), path, "a non-finite float is 'nan', 'inf' or '-inf'", text
    )
    return float(text)


def _dec_ndarray(value: dict[str, Any], path: str) -> np.ndarray:
    dtype = np.dtype(_field(value, "dtype", str, path))
    _need(dtype.kind in "biufc", path, "ndarray dtype must be numeric", dtype.str)
    return np.asarray(_field(value, "data", list, path), dtype=dtype).reshape(
        _field(value, "shape", list, path)
    )


def _dec_space(value: dict[str, Any], path: str) -> Any:
    from ._space import Space

    return Space(from_json_value(value["program"], f"{path}.program"))


_DECODERS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "oneof": _dec_hyper,
    "manyof": _dec_hyper,
    "floatv": _dec_hyper,
    "intv": _dec_hyper,
    "call": _dec_call,
    "object": _dec_object,
    "DNA": _dec_dna,
    "float": _dec_float,
    "ndarray": _dec_ndarray,
    "space": _dec_space,
    "ref": lambda v, p: lookup(_field(v, "name", str, p)),
    "tuple": lambda v, p: tuple(from_json_value(_field(v, "items", list, p), p)),
    "namedtuple": lambda v, p: lookup(_field(v, "cls", str, p))(
        *from_json_value(_field(v, "items", list, p), p)
    ),
    "dict": lambda v, p: {
        from_json_value(k, p): from_json_value(x, f"{p}[{k!r}]")
        for k, x in _field(v, "items", list, p)
    },
}


def from_json(text: str | bytes) -> Any:
    """Loads a program, space or DNA written by :func:`to_json`.

    Raises:
        ValueError: for malformed JSON or an unregistered name (nothing is
            imported or called but registered classes and functions).

    Examples:
        >>> import morphax as mx
        >>> mx.from_json('{"$type": "ref", "name": "os.system"}')
        Traceback (most recent call last):
        ...
        ValueError: unknown name 'os.system': it is not registered, and from_json imports nothing; ...
    """
    if not isinstance(text, str | bytes | bytearray):
        raise TypeError(f"from_json takes a JSON string, but got {type(text).__name__}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON: {e}") from None
    return from_json_value(value)
