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

from ._ids import end_run, new_run

if TYPE_CHECKING:
    from ._hyper import HyperValue

_RESOLVER: contextvars.ContextVar[Resolver | Decider | None] = contextvars.ContextVar(
    "morphax_resolver", default=None
)


class Resolver(Protocol):
    """Decides the value of each hyper-value met while user code runs.

    A resolver may instead define `decide(hyper, pid)`, which also receives
    the decision's id (see `morphax.symbolic._ids`): the deciders of morphax
    (tracing, a child, a supernet) do.
    """

    def resolve(self, hyper: HyperValue) -> Any:
        """Returns the value that stands for `hyper` (see `hyper.name`, `hyper.site`)."""
        ...


class Decider(Protocol):
    """A resolver that is also told each decision's id (tracing, a child, a supernet)."""

    def decide(self, hyper: HyperValue, pid: str) -> Any:
        """Returns the value that stands for `hyper`, the decision with id `pid`."""
        ...


def decide(hyper: HyperValue, pid: str) -> Any:
    """The value of `hyper` (decision `pid`) under the resolver in force."""
    resolver = _RESOLVER.get()
    if resolver is None:
        return hyper
    by_id = getattr(resolver, "decide", None)
    return by_id(hyper, pid) if by_id is not None else resolver.resolve(hyper)  # type: ignore[union-attr]


def current_resolver() -> Resolver | Decider | None:
    """The resolver in force, or None in space mode."""
    return _RESOLVER.get()


@contextlib.contextmanager
def resolving(resolver: Resolver | Decider | None) -> Iterator[None]:
    """Runs the body with `resolver` deciding define-by-run hyper-values.

    Each entry starts a run: the counters behind the ids of anonymous
    decisions restart. A resolver with a `start()` method has it called on
    entry (to restart per-run state of its own).

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
    run = new_run()
    try:
        yield
    finally:
        end_run(run)
        _RESOLVER.reset(token)
