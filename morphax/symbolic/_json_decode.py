"""Decoding morphax JSON: data, never code (see `_registry` for what a name may do)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from ._call import Call
from ._dna import DNA
from ._json import (
    MAX_DEPTH,
    _format,
    _lookup,
    _make_call,
    _make_hyper,
    _need,
    _Path,
    _short,
)
from ._registry import data_class
from ._space import Space

# ---------------------------------------------------------------------------
# Decoding.


def from_json_value(value: Any) -> Any:
    """The program, space or DNA of a JSON-ready value (see :func:`from_json`)."""
    return _dec(value, None, 0)


def _dec(value: Any, path: _Path, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(
            f"morphax JSON nests deeper than {MAX_DEPTH} levels, at {_format(path)}; "
            "programs are not nested this deeply: the input is not a morphax program"
        )
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out.append(_dec(v, (path, i), depth + 1))
        return out
    _need(isinstance(value, dict), path, "expected a JSON value", value)
    t = value.get("$type")
    if t is None:
        return _dec_fields(value, path, depth)
    decoder = _DECODERS.get(t) if isinstance(t, str) else None
    _need(decoder is not None, path, f"'$type' must be one of {sorted(_DECODERS)}", t)
    try:
        return decoder(value, path, depth)  # type: ignore[misc]
    except KeyError as e:
        raise ValueError(
            f"malformed morphax JSON at {_format(path)}: {t!r} needs the key {e}, but got "
            f"{_short(value)}"
        ) from None


def _dec_fields(value: dict[str, Any], path: _Path, depth: int) -> dict[str, Any]:
    out = {}
    for key, v in value.items():
        out[key] = _dec(v, (path, key), depth + 1)
    return out


def _field(value: dict[str, Any], key: str, typ: type | tuple[type, ...], path: _Path) -> Any:
    v = value[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and bool not in _types(typ))
    _need(ok, (path, key), f"{key!r} must be {_type_text(typ)}", v)
    return v


def _types(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _type_text(typ: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _types(typ))


def _dec_hyper(value: dict[str, Any], path: _Path, depth: int) -> Any:
    t = value["$type"]
    name = value.get("name")
    _need(name is None or isinstance(name, str), (path, "name"), "'name' must be a str", name)
    site = f"from_json:{_format(path)}"
    v: dict[str, Any] = {}
    if t in ("oneof", "manyof"):
        cands = _field(value, "candidates", list, path)
        v["candidates"] = _dec(cands, (path, "candidates"), depth + 1)
        _need(len(cands) > 0, path, f"{t} needs candidates", value)
        if t == "manyof":
            v["k"] = _field(value, "k", int, path)
            v["distinct"] = _field(value, "distinct", bool, path)
            v["sorted"] = _field(value, "sorted", bool, path)
    elif t == "floatv":
        low = float(_field(value, "low", (int, float), path))
        high = float(_field(value, "high", (int, float), path))
        _need(low < high, path, "floatv needs low < high", value)
        v.update(low=low, high=high, scale=_field(value, "scale", str, path))
    else:
        v["low"], v["high"] = _field(value, "low", int, path), _field(value, "high", int, path)
        _need(v["low"] <= v["high"], path, "intv needs low <= high", value)
    try:
        return _make_hyper(t, v, name, site)
    except (TypeError, ValueError) as e:
        raise ValueError(f"malformed morphax JSON at {_format(path)}: {e}") from None


def _dec_call(value: dict[str, Any], path: _Path, depth: int) -> Call:
    fn = _field(value, "fn", str, path)
    target = _lookup(fn, path)  # registered names only; the target is never called
    args = _field(value, "args", dict, path)
    return _make_call(target, _dec_fields(args, path, depth + 1), fn, path)


def _dec_object(value: dict[str, Any], path: _Path, depth: int) -> Any:
    name = _field(value, "cls", str, path)
    cls = data_class(name, _lookup(name, path), "object", _format(path))
    fields = _dec_fields(_field(value, "fields", dict, path), path, depth + 1)
    return _construct(cls, name, path, (), fields)


def _dec_namedtuple(value: dict[str, Any], path: _Path, depth: int) -> Any:
    name = _field(value, "cls", str, path)
    cls = data_class(name, _lookup(name, path), "namedtuple", _format(path))
    items = _dec(_field(value, "items", list, path), path, depth + 1)
    return _construct(cls, name, path, items, {})


def _construct(cls: type, name: str, path: _Path, args: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(*args, **kwargs)
    except Exception as e:  # a data class's own check: report it with the path
        raise ValueError(
            f"malformed morphax JSON at {_format(path)}: cannot rebuild {name} from the stored "
            f"fields: {type(e).__name__}: {e}"
        ) from None


def _dec_dna(value: dict[str, Any], path: _Path, depth: int) -> DNA:
    vals = _field(value, "values", list, path)
    try:
        return DNA(vals)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"malformed morphax JSON at {_format(path)}: {e}") from None


def _dec_float(value: dict[str, Any], path: _Path, depth: int) -> float:
    text = _field(value, "value", str, path)
    _need(
        text in ("nan", "inf", "-inf"), path, "a non-finite float is 'nan', 'inf' or '-inf'", text
    )
    return float(text)


def _dec_ndarray(value: dict[str, Any], path: _Path, depth: int) -> np.ndarray:
    try:
        dtype = np.dtype(_field(value, "dtype", str, path))
    except TypeError:
        _need(False, path, "ndarray dtype must be a numeric dtype string", value["dtype"])
    _need(dtype.kind in "biufc", path, "ndarray dtype must be numeric", dtype.str)
    data = _field(value, "data", list, path)
    shape = _field(value, "shape", list, path)
    _need(all(type(n) is int and n >= 0 for n in shape), path, "bad ndarray shape", shape)
    try:
        return np.asarray(data, dtype=dtype).reshape(shape)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"malformed morphax JSON at {_format(path)}: bad ndarray: {e}") from None


def _dec_space(value: dict[str, Any], path: _Path, depth: int) -> Any:
    return Space(_dec(value["program"], (path, "program"), depth + 1))


def _dec_partial(value: dict[str, Any], path: _Path, depth: int) -> functools.partial[Any]:
    """A partial of a registered function: its reference is loaded, nothing is called."""
    func = _dec(_field(value, "func", dict, path), path, depth + 1)
    _need(callable(func), path, "a partial's func must be a registered reference", func)
    args = _dec(_field(value, "args", list, path), path, depth + 1)
    keywords = _dec_fields(_field(value, "keywords", dict, path), path, depth + 1)
    return functools.partial(func, *args, **keywords)


def _dec_tuple(value: dict[str, Any], path: _Path, depth: int) -> tuple[Any, ...]:
    return tuple(_dec(_field(value, "items", list, path), path, depth + 1))


def _dec_dict(value: dict[str, Any], path: _Path, depth: int) -> dict[Any, Any]:
    out = {}
    for i, pair in enumerate(_field(value, "items", list, path)):
        _need(isinstance(pair, list) and len(pair) == 2, (path, i), "expected [key, value]", pair)
        key = _dec(pair[0], (path, ("key", None)), depth + 1)
        try:
            hash(key)
        except TypeError:
            _need(False, (path, ("key", None)), "a dict key must be hashable", pair[0])
        out[key] = _dec(pair[1], (path, ("item", key)), depth + 1)
    return out


_DECODERS: dict[str, Callable[[dict[str, Any], _Path, int], Any]] = {
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
    "ref": lambda v, p, d: _lookup(_field(v, "name", str, p), p),
    "tuple": _dec_tuple,
    "partial": _dec_partial,
    "namedtuple": _dec_namedtuple,
    "dict": _dec_dict,
}


def from_json(text: str | bytes) -> Any:
    """Loads a program, space or DNA written by :func:`to_json`.

    The text is data: names resolve only to registered classes and functions,
    functions come back as references and recorded calls as `Call` nodes,
    never called; only data classes (dataclasses, Flax modules, named tuples,
    classes made symbolic or registered) are constructed.

    Raises:
        ValueError: for malformed JSON, nesting deeper than :data:`MAX_DEPTH`,
            an unregistered name, or a record that would construct anything
            but a data class; the message names the JSON path.

    Examples:
        >>> import morphax as mx
        >>> mx.from_json('{"$type": "ref", "name": "os.system"}')
        Traceback (most recent call last):
        ...
        ValueError: morphax JSON at $: unknown name 'os.system': it is not registered, and from_json imports nothing; ...
    """
    if not isinstance(text, str | bytes | bytearray):
        raise TypeError(f"from_json takes a JSON string, but got {type(text).__name__}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON: {e}") from None
    except RecursionError:
        raise ValueError(
            f"malformed morphax JSON: it nests too deeply to parse (morphax JSON nests at most "
            f"{MAX_DEPTH} levels)"
        ) from None
    try:
        return _dec(value, None, 0)
    except RecursionError:
        raise ValueError(
            "malformed morphax JSON: it nests too deeply to decode in this call stack"
        ) from None
