"""`dispatch`: runs code on the value of a choice, in every mode alike.

In space and child modes a `oneof` over values (op names, activation names)
gives one value, and `dispatch(value, fn)` is `fn(value)`. A supernet
(:mod:`morphax.oneshot`) gives a mixed choice instead, which runs `fn` on
every candidate and mixes the results. :class:`Mixed` is the base of such
values: it lives here, with no JAX, so the walk over programs
(`resolve_fields`) and `dispatch` can recognise one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Mixed:
    """Base of the mixed values a supernet gives for a decision (no JAX here).

    Subclasses define `__mx_dispatch__(fn)` (run `fn` on each candidate and
    mix) and `__mx_resolve__(resolve)` (`resolve(j, candidate)` gives
    candidate `j` with its own hyper-values decided; called by the walk over
    a program's fields).
    """

    __slots__ = ()

    def __mx_dispatch__(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def __mx_resolve__(self, resolve: Callable[[int, Any], Any]) -> None:
        raise NotImplementedError


def dispatch(value: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(value, *args)` for a chosen value; for a supernet's mixed choice, the mix over its candidates.

    Write `mx.dispatch(op, fn)` where a `oneof` over values (not callables)
    selects code, so the same model runs as a space, a child and a supernet.
    Pass the input as `args` (`mx.dispatch(op, fn, x)`, `fn(value, x)`) when
    a supernet should see it (partial channels, PC-DARTS, split `x`).

    Args:
        value: the value of a `oneof` (or any value).
        fn: a function of one candidate value (and `args`).
        *args: passed to `fn` after the value.

    Raises:
        TypeError: if `fn` is not callable.

    Examples:
        >>> import morphax as mx
        >>> mx.dispatch("relu", lambda op: op.upper())
        'RELU'
        >>> def model(x):
        ...     act = mx.oneof(["double", "square"], name="act")
        ...     return mx.dispatch(act, lambda a: 2 * x if a == "double" else x * x)
        >>> child = mx.materialize(mx.trace(model, 3), mx.DNA([1]))
        >>> child(3)
        9
    """
    if not callable(fn):
        raise TypeError(f"mx.dispatch(value, fn) needs a callable fn, but got fn={fn!r}")
    if isinstance(value, Mixed):
        return value.__mx_dispatch__(fn, *args)
    return fn(value, *args)
