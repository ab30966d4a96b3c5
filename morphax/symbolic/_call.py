"""Symbolic calls: a callable and its arguments, recorded, built on demand."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from ._format import format_program, qualname
from ._nodes import NodeType, register_node, signature_hint
from ._tree import build, clone, rebind, sym_eq, sym_hash


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

    @property
    def parameters(self) -> typing.Mapping[str, inspect.Parameter]:
        """The target's parameters, by name."""
        return self._params

    def __call__(self, *args: Any, **kwargs: Any) -> Call:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"bad arguments for {qualname(self.target)}: {e}") from None
        return Call(self, dict(bound.arguments))

    def __reduce__(self) -> tuple[Any, ...]:
        return (symbolic, (self.target,))

    def __repr__(self) -> str:
        return f"symbolic({qualname(self.target)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymbolicFactory) and other.target is self.target

    def __hash__(self) -> int:
        return hash(("symbolic", id(self.target)))


_FACTORIES: dict[int, SymbolicFactory] = {}
#: Called with each new symbolic target (the JSON registry listens here).
ON_SYMBOLIC: list[Callable[[Any], None]] = []


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
        for listener in ON_SYMBOLIC:
            listener(target)
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
        if name.startswith("__") or name in Call.__slots__:
            raise AttributeError(name)
        try:
            return self.args[name]
        except KeyError:
            param = self.factory._params.get(name)
            if param is not None and param.default is not inspect.Parameter.empty:
                return param.default
            raise AttributeError(
                f"{qualname(self.target)} call has no argument {name!r}; "
                f"its arguments are {list(self.factory._params)}"
            ) from None

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory, "args": self.args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.factory = state["factory"]
        self.args = state["args"]

    def build(self) -> Any:
        """Builds the real object, building nested calls first."""
        return build(self)

    def rebind(self, updates: dict[str, Any]) -> Call:
        """Rebinds arguments in place by path; see :func:`morphax.rebind`."""
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


def _build_call(node: Call, built: dict[Any, Any]) -> Any:
    bound = inspect.BoundArguments(node.factory.signature, built)
    return node.factory.target(*bound.args, **bound.kwargs)


def _set_arg(node: Call, key: Any, value: Any) -> None:
    node.args[key] = value


def _get_arg(node: Call, key: Any) -> Any:
    return getattr(node, key)


def _call_parts(node: Call, fmt: Any) -> tuple[str, str, list[str]]:
    return qualname(node.target) + "(", ")", [f"{k}={fmt(v)}" for k, v in node.args.items()]


CALL = NodeType(
    "call",
    flatten=lambda c: list(c.args.items()),
    unflatten=lambda c, v: Call(c.factory, dict(v)),
    keys=lambda c: list(c.factory._params),
    get=_get_arg,
    set_child=_set_arg,
    hint=lambda c, k: signature_hint(c.factory.signature, k),
    head=lambda c: id(c.factory.target),
    build=_build_call,
    placeholder=True,
    parts=_call_parts,
)
register_node(Call, CALL)
