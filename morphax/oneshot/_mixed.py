"""Mixed choices: what a `oneof` gives in a supernet, and how candidates are mixed.

Each candidate runs inside its own Flax module, named `mx~{row}~{j}` in the
module that mixes (so candidates whose code names sub-modules alike, such as
NAS-Bench-201's `edge_0_1`, do not collide). The candidate modules start
from the mixing module's name counters (Flax's `Dense_0` cursor and
morphax's `oneof#k`), so a module or an anonymous decision made inside a
candidate gets the name it gets in the child; the decider strips the
`mx~...` scopes from decision ids, and `child_variables` from paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..symbolic import Mixed, OneOf

if TYPE_CHECKING:
    from ._supernet import _Decider

#: A candidate's scope: `mx~{row}~{j}`.
SCOPE = re.compile(r"^mx~(\d+)~(\d+)$")
_MIXED_KEY = "morphax:mixed:"


def candidate_scope(row: int, j: int) -> str:
    return f"mx~{row}~{j}"


def strip_scopes(pid: str) -> str:
    """A decision id met inside candidates, as the trace and the child name it."""
    if "mx~" not in pid:
        return pid
    return "/".join(p for p in pid.split("/") if not SCOPE.match(p))


class _Ends:
    """Where the candidates of one mixing leave the name counters."""

    __slots__ = ("ends",)

    def __init__(self) -> None:
        self.ends: list[dict[str, int]] = []


class _Candidate(nn.Module):
    """Runs one candidate in its own scope, starting from its parent's name counters."""

    run: Callable[[nn.Module], Any]
    start: tuple[tuple[str, int], ...]
    log: _Ends

    @nn.compact
    def __call__(self) -> Any:
        self._state.autoname_cursor.update(dict(self.start))
        out = self.run(self)
        self.log.ends.append(dict(self._state.autoname_cursor))
        return out


def _running_module(what: str) -> nn.Module:
    stack = getattr(getattr(nn.module, "_context", None), "module_stack", None)
    module = stack[-1] if stack else None
    if module is None or getattr(module, "scope", None) is None:
        raise ValueError(
            f"{what} was used outside the method of a Flax module; a supernet mixes "
            "candidates inside a module's @nn.compact method"
        )
    return module


def _field_name(module: nn.Module, value: Any) -> str | None:
    """The name Flax gives the submodule that `value` stands for in `module`'s fields."""
    for name in getattr(module, "__dataclass_fields__", {}):
        if name in ("parent", "name"):
            continue
        field = getattr(module, name, None)
        if field is value:
            return name
        if isinstance(field, list | tuple):
            for i, v in enumerate(field):
                if v is value:
                    return f"{name}_{i}"
        if isinstance(field, dict):
            for k, v in field.items():
                if v is value:
                    return f"{name}_{k}"
    return None


class MixedChoice(Mixed):
    """A `oneof` in a supernet: call it (callable candidates) or `mx.dispatch` it.

    It stands for all candidates at once; using it as a value (comparing,
    formatting, converting) is refused, naming the decision, because a
    supernet cannot pick one: dispatch on it instead.
    """

    __slots__ = ("decider", "row", "pid", "hyper", "candidates")

    def __init__(self, decider: _Decider, row: int, pid: str, hyper: OneOf) -> None:
        object.__setattr__(self, "decider", decider)
        object.__setattr__(self, "row", row)
        object.__setattr__(self, "pid", pid)
        object.__setattr__(self, "hyper", hyper)
        object.__setattr__(self, "candidates", list(hyper.candidates))

    def __mx_resolve__(self, resolve: Callable[[int, Any], Any]) -> None:
        self.candidates[:] = [resolve(j, c) for j, c in enumerate(self.candidates)]

    def __mx_dispatch__(self, fn: Callable[..., Any], *args: Any) -> Any:
        def runner(c: Any) -> Callable[[nn.Module], Callable[..., Any]]:
            return lambda m: lambda *a: fn(c, *a)

        return self._mix([runner(c) for c in self.candidates], args, {})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for j, c in enumerate(self.candidates):
            if not callable(c):
                raise TypeError(
                    f"decision {self.pid!r} ({self._short()}) was called, but its candidate "
                    f"{j} ({c!r}) is not callable; for value candidates write "
                    f"mx.dispatch(choice, fn) with fn(value) running the code of one value"
                )
        runs = [self._caller(c) for c in self.candidates]
        return self._mix(runs, args, kwargs)

    def _caller(self, c: Any) -> Callable[[nn.Module], Callable[..., Any]]:
        if isinstance(c, nn.Module) and c.scope is None:
            # An unbound module from a field: bound in the candidate's scope, under
            # the name the child gives it (the field's name).
            parent = _running_module(f"decision {self.pid!r}")
            name = _field_name(parent, self)

            def bind(m: nn.Module) -> Callable[..., Any]:
                return c.clone(parent=m, name=name)

            return bind
        return lambda m: c

    def _mix(
        self,
        runs: list[Callable[[nn.Module], Callable[..., Any]]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        decider = self.decider
        if decider.done:
            raise ValueError(
                f"decision {self.pid!r} ({self._short()}) is a supernet's mixed choice used "
                "after its supernet run ended; mixed choices exist only inside sn.init / "
                "sn.apply (do not keep them)"
            )
        parent = _running_module(f"decision {self.pid!r}")
        cursor = parent._state.autoname_cursor
        key = f"{_MIXED_KEY}{self.row}"
        if key in cursor:
            raise ValueError(
                f"decision {self.pid!r} ({self._short()}) is mixed twice in one call of "
                f"{type(parent).__name__} (scope {_scope_path(parent) or '<root>'}); a "
                "supernet mixes one decision once per module call: call the choice once, or "
                "give the two places different decision names"
            )
        cursor[key] = 1
        start = tuple((k, v) for k, v in cursor.items() if not k.startswith(_MIXED_KEY))
        args, rest = decider.partial_in(self, args)
        log = _Ends()

        def branch(j: int) -> Callable[..., Any]:
            def fn(m: nn.Module, *a: Any) -> Any:
                def run(scope: nn.Module) -> Any:
                    return runs[j](scope)(*a, **kwargs)

                return _Candidate(run, start, log, name=candidate_scope(self.row, j), parent=m)()

            return fn

        branches = [branch(j) for j in range(len(runs))]
        index = decider.switch_index(self.row)
        if index is not None and not parent.is_initializing():
            out = nn.switch(index, branches, parent, *args)
            out = decider.straight_through(self.row, out)
        else:
            outs = [b(parent, *args) for b in branches]
            out = self._combine(outs, decider.coefs(self.row, len(runs)))
        for k in set().union(*log.ends) if log.ends else ():
            cursor[k] = max(e.get(k, 0) for e in log.ends)
        return decider.partial_out(self, out, rest)

    def _combine(self, outs: list[Any], coefs: jax.Array) -> Any:
        structs: list[Any] = [jax.tree.structure(o) for o in outs]
        for j, s in enumerate(structs):
            if s != structs[0] or any(
                jnp.shape(a) != jnp.shape(b)
                for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[j]), strict=True)
            ):
                raise ValueError(
                    f"decision {self.pid!r} ({self._short()}): candidate {j} returns "
                    f"{_describe(outs[j])} but candidate 0 returns {_describe(outs[0])}; a "
                    "supernet sums the candidates' outputs, so they must have one structure "
                    "and shape (return zeros for a candidate that has no output)"
                )
        if not jax.tree.leaves(outs[0]):
            raise ValueError(
                f"decision {self.pid!r} ({self._short()}): the candidates return no arrays "
                f"({outs[0]!r}); a supernet mixes array outputs"
            )

        def mix(*leaves: jax.Array) -> jax.Array:
            total = coefs[0].astype(leaves[0].dtype) * leaves[0]
            for j in range(1, len(leaves)):
                total = total + coefs[j].astype(leaves[j].dtype) * leaves[j]
            return total

        return jax.tree.map(mix, *outs)

    def _short(self) -> str:
        text = repr(self.hyper)
        return text if len(text) <= 80 else text[:77] + "..."

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise TypeError(
            f"decision {self.pid!r} ({self._short()}) is mixed in a supernet: it stands for "
            "all its candidates, so it cannot be used as one value; call it (callable "
            "candidates) or write mx.dispatch(choice, fn) with fn(value) the code of one value"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __bool__ = __int__ = __float__ = __index__ = __str__ = __iter__ = __len__ = _refuse
    __format__ = __getitem__ = __contains__ = _refuse
    __hash__ = object.__hash__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._refuse()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a mixed choice is immutable")

    def __repr__(self) -> str:
        return f"MixedChoice({self.pid!r}, row={self.row}, {self._short()})"


def _scope_path(module: nn.Module) -> str:
    scope = module.scope
    return "/".join(str(p) for p in scope.path) if scope is not None else ""


def _describe(out: Any) -> str:
    try:
        return str(jax.tree.map(lambda a: tuple(jnp.shape(a)), out))
    except Exception:  # noqa: BLE001 - for the message only
        return repr(out)
