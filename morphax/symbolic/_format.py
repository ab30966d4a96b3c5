"""Readable text of programs: `repr`, and candidate literals for fingerprints."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._nodes import _PRIMITIVES, node_type


def qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def _leaf_repr(node: Any) -> str:
    if callable(node) and isinstance(getattr(node, "__name__", None), str):
        return qualname(node)  # functions, classes, jax custom_jvp wrappers
    return repr(node)


def literal(node: Any) -> str:
    """A text for a candidate that is the same in every process, and tells values apart.

    Values print as their repr; functions and classes as `module.qualname`
    (never a memory address), whether or not they are registered; containers
    and objects as their qualified type with the literals of their children,
    so `(1, 1)` and `(4, 4)` differ, and so do two classes of one name.
    """
    if type(node) in _PRIMITIVES:
        return repr(node)
    nt = node_type(node)
    if nt is not None:
        head = nt.head(node) if nt.head is not None else None
        target = getattr(node, "target", None)
        kind = _callable_name(target) if head is not None and callable(target) else None
        name = kind or f"{type(node).__module__}.{type(node).__qualname__}"
        inner = ", ".join(f"{k!r}: {literal(v)}" for k, v in nt.flatten(node))
        return f"{name}({inner})"
    if callable(node) and isinstance(getattr(node, "__name__", None), str):
        return _callable_name(node)
    if isinstance(node, np.ndarray):
        return f"ndarray({node.dtype.str}, {node.shape}, {hash(node.tobytes())})"
    if isinstance(node, np.generic):
        return repr(node.item())
    text = repr(node)
    if " at 0x" in text:  # an address would change from run to run
        return f"{type(node).__module__}.{type(node).__qualname__}"
    return text


def _callable_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{qualname(obj)}"


def _default_parts(node: Any, fmt: Any) -> tuple[str, str, list[str]]:
    nt = node_type(node)
    assert nt is not None
    head = type(node).__name__ + "("
    return head, ")", [f"{k}={fmt(v)}" for k, v in nt.flatten(node)]


def format_program(node: Any, width: int = 88, indent: int = 0) -> str:
    """A readable form of a program: one line when it fits, indented otherwise."""
    nt = node_type(node)
    if nt is None:
        return _leaf_repr(node)

    def fmt(child: Any) -> str:
        return format_program(child, width, indent + 4)

    parts = nt.parts or PARTS.get(nt.name, _default_parts)
    head, close, items = parts(node, fmt)
    one = head + ", ".join(items) + close
    if len(one) + indent <= width and "\n" not in one:
        return one
    pad = " " * (indent + 4)
    return head + "\n" + ",\n".join(pad + it for it in items) + ",\n" + " " * indent + close


def _list_parts(node: Any, fmt: Any) -> tuple[str, str, list[str]]:
    return "[", "]", [fmt(v) for v in node]


def _tuple_parts(node: Any, fmt: Any) -> tuple[str, str, list[str]]:
    named = hasattr(node, "_fields") and type(node) is not tuple
    head = type(node).__name__ + "(" if named else "("
    close = ",)" if len(node) == 1 and not named else ")"
    return head, close, [fmt(v) for v in node]


def _dict_parts(node: Any, fmt: Any) -> tuple[str, str, list[str]]:
    head = "{" if type(node) is dict else type(node).__name__ + "({"
    close = "}" if type(node) is dict else "})"
    return head, close, [f"{k!r}: {fmt(v)}" for k, v in node.items()]


def _partial_parts(node: functools.partial[Any], fmt: Any) -> tuple[str, str, list[str]]:
    items = [_leaf_repr(node.func)] + [fmt(a) for a in node.args]
    items += [f"{k}={fmt(v)}" for k, v in node.keywords.items()]
    return "partial(", ")", items


PARTS: dict[str, Any] = {  # the readable forms of the built-in node types
    "list": _list_parts,
    "tuple": _tuple_parts,
    "dict": _dict_parts,
    "mapping": _dict_parts,
    "ConfigDict": _dict_parts,
    "partial": _partial_parts,
}
