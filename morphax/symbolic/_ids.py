"""Decision ids: one scheme for static fields and define-by-run calls.

A decision's id is its user-given `name`, else:

- for a hyper-value sitting in a program (a field, an argument, a list
  item), its location: `layers[2].features`; inside candidate `j` of the
  choice at `a`, `a[=j]...`; in pick `p` of a manyof, `a[p][=j]...`;
- for a hyper-value called while code runs (define-by-run), its scope and a
  per-scope counter, the way Flax names `Dense_0`: inside a Flax module the
  module's scope path (`Block_0/oneof#0`), elsewhere the qualified name of
  the calling function (`model/oneof#1`). Counters count per kind, restart
  with each run (and, in Flax, with each call of a module's method, so a body
  that a lifted transform such as `nn.scan` traces twice meets the same
  ids), and do not depend on source lines: edits that do not change the
  model keep the ids of a stored study.

The call site (`qualname:line`) is kept for messages only.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any

from ._keypath import Key, format_key


class Cand:
    """The id key of candidate `j` of a choice: formats as `[=j]`."""

    __slots__ = ("j",)

    def __init__(self, j: int) -> None:
        self.j = j

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cand) and other.j == self.j

    def __hash__(self) -> int:
        return hash(("Cand", self.j))

    def __repr__(self) -> str:
        return f"[={self.j}]"


def format_id(keys: tuple[Key | Cand, ...]) -> str:
    """Formats id keys: paths with `[=j]` for candidate `j`; `<root>` for ()."""
    out = []
    for i, k in enumerate(keys):
        out.append(f"[={k.j}]" if isinstance(k, Cand) else format_key(k, i == 0))
    return "".join(out) or "<root>"


# Per-run counters of anonymous define-by-run decisions outside Flax modules.
_COUNTS: contextvars.ContextVar[dict[tuple[str, str], int] | None] = contextvars.ContextVar(
    "morphax_call_counts", default=None
)


def new_run() -> contextvars.Token[dict[tuple[str, str], int] | None]:
    """Starts fresh counters (called when a resolver takes over)."""
    return _COUNTS.set({})


def end_run(token: contextvars.Token[dict[tuple[str, str], int] | None]) -> None:
    _COUNTS.reset(token)


def _flax_scope() -> tuple[Any, str] | None:
    """The Flax module whose method is running, and its scope path, or None.

    Flax keeps the running module on a stack, and per call of a compact method
    a dict of name counters (`autoname_cursor`, how it names `Dense_0`); both
    are internal to Flax, read here only.
    """
    linen = sys.modules.get("flax.linen")
    if linen is None:
        return None
    stack = getattr(getattr(linen.module, "_context", None), "module_stack", None)
    module = stack[-1] if stack else None
    if module is None or getattr(module, "scope", None) is None:
        return None
    return module, "/".join(str(p) for p in module.scope.path)


def call_id(kind: str, qualname: str) -> str:
    """The id of an anonymous `kind` decision called from `qualname` now."""
    flax = _flax_scope()
    if flax is not None:
        module, scope = flax
        cursor = module._state.autoname_cursor
        key = f"morphax:{kind}"
        k = cursor.get(key, 0)
        cursor[key] = k + 1
        return f"{scope}/{kind}#{k}" if scope else f"{kind}#{k}"
    counts = _COUNTS.get()
    if counts is None:  # no run in progress: count from zero
        counts = {}
        _COUNTS.set(counts)
    k = counts.get((qualname, kind), 0)
    counts[(qualname, kind)] = k + 1
    return f"{qualname}/{kind}#{k}"
