"""Counting JAX traces and XLA compilations with `jax.monitoring` events."""

from __future__ import annotations

import collections
import contextlib
import re
from collections.abc import Iterator
from typing import Any

#: JAX records one of these per trace of a Python function to a jaxpr ...
_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
#: ... and one per executable it builds (or loads from the persistent cache).
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_WRAPPED = re.compile(r"^(?:jit|pjit|pmap|xla_pmap)\((.*)\)$")


def _function_name(metadata: dict[str, Any]) -> str:
    """`fun_name` without the `jit(...)` JAX wraps around compiled names."""
    name = str(metadata.get("fun_name", "?"))
    match = _WRAPPED.match(name)
    return match.group(1) if match else name


class CompileLog:
    """What JAX traced and compiled inside a :func:`log_compilations` block.

    Both counters are keyed by the Python function's `__name__` (`"<lambda>"`
    for a lambda). Eager operations outside `jit` show up too, under their
    primitive's name (`"add"`, `"broadcast_in_dim"`), the first time JAX
    compiles them for a shape; read the names you care about.

    Attributes:
        traces: how often each function was traced to a jaxpr. A jitted
            function traces again for new static arguments, shapes or dtypes.
        compiles: how many XLA executables were built (or read from the
            persistent compilation cache) for each function.
    """

    def __init__(self) -> None:
        self.traces: collections.Counter[str] = collections.Counter()
        self.compiles: collections.Counter[str] = collections.Counter()

    def _record(self, event: str, duration_secs: float, **metadata: Any) -> None:
        del duration_secs
        if event == _TRACE_EVENT:
            self.traces[_function_name(metadata)] += 1
        elif event == _COMPILE_EVENT:
            self.compiles[_function_name(metadata)] += 1

    def __repr__(self) -> str:
        return f"CompileLog(traces={dict(self.traces)}, compiles={dict(self.compiles)})"


@contextlib.contextmanager
def log_compilations() -> Iterator[CompileLog]:
    """Counts the traces and XLA compilations of jitted functions in its body.

    Use it to prove compile behaviour in tests: a new architecture compiles
    anew, the same structure reuses its executable. It listens to the events
    JAX records through the public `jax.monitoring` API
    (`/jax/core/compile/jaxpr_trace_duration` and
    `/jax/core/compile/backend_compile_duration`), so it sees every thread of
    the process while the block runs; blocks may nest. JAX is imported only
    when the block is entered.

    Returns:
        A context manager whose value is a :class:`CompileLog`, filled in as
        the body runs.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from morphax.testing import log_compilations
        >>> @jax.jit
        ... def double(x):
        ...     return 2 * x
        >>> with log_compilations() as log:
        ...     for _ in range(3):
        ...         _ = double(jnp.ones(3))   # one shape: traced and compiled once
        ...     _ = double(jnp.ones(4))       # a new shape compiles anew
        >>> log.traces["double"], log.compiles["double"]
        (2, 2)
    """
    import jax.monitoring

    log = CompileLog()
    jax.monitoring.register_event_duration_secs_listener(log._record)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(log._record)
