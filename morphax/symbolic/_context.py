"""The resolver context: who decides the value of a hyper-value met at run time.

Outside any resolver, `mx.oneof(...)` returns a hyper-value object (a space).
Inside one (tracing a define-by-run space, running a child, or a supernet),
the resolver decides what the call returns. The supernet mode of the design
plugs in here as another resolver, without touching user code.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._hyper import HyperValue

_RESOLVER: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "morphax_resolver", default=None
)


class Resolver(Protocol):
    """Decides the value of each hyper-value met while user code runs."""

    def resolve(self, hyper: HyperValue) -> Any:
        """Returns the value that stands for `hyper` (see `hyper.name`, `hyper.site`)."""
        ...


def current_resolver() -> Resolver | None:
    """The resolver in force, or None in space mode."""
    return _RESOLVER.get()


@contextlib.contextmanager
def resolving(resolver: Resolver | None) -> Iterator[None]:
    """Runs the body with `resolver` deciding define-by-run hyper-values.

    A resolver with a `start()` method has it called on entry (to restart
    per-run state such as call-site counters).

    Examples:
        >>> import morphax as mx
        >>> class First:
        ...     def resolve(self, hyper):
        ...         return hyper.candidates[0]
        >>> with mx.resolving(First()):
        ...     mx.oneof(["relu", "gelu"])
        'relu'
    """
    start = getattr(resolver, "start", None)
    if start is not None:
        start()
    token = _RESOLVER.set(resolver)
    try:
        yield
    finally:
        _RESOLVER.reset(token)
