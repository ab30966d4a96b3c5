"""Define-by-run spaces: hyper-values called while user code runs.

`trace(fn, ...)` runs `fn` under a tracing resolver, exploring each choice's
candidates to find the decisions that only some choices meet (conditional
decisions). A child for a DNA runs the same code under a resolver that looks
each decision up by its id.

Decision ids follow the one scheme of `_ids`: the user-given `name`, else
the scope and a per-scope counter (`Block_0/oneof#0` inside a Flax module,
`model/oneof#1` in a function), never a source line; hyper-values in the
fields of a traced module get their paths, the same ids that compiling the
module as a static space gives them. Give names to decisions that are met in
different orders from run to run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._context import decide, resolving
from ._dispatch import Mixed
from ._dna import DNA, DNAValue
from ._format import literal
from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._ids import Cand, format_id
from ._nodes import node_type
from ._points import Choice, DecisionPoint, Float, Int, ManyChoice, Subspace
from ._spec import DNASpec
from ._tree import sym_eq, sym_hash

_MAX_INT_BRANCHES = 256
_PROBE_ALL_INTS = 8  # intv ranges this small are explored value by value


class _Named:
    """Checks that one name means one decision within a run."""

    def __init__(self) -> None:
        self.seen: dict[str, HyperValue] = {}

    def again(self, hyper: HyperValue, pid: str) -> bool:
        """Whether decision `pid` was met before in this run."""
        first = self.seen.get(pid)
        if first is None:
            self.seen[pid] = hyper
            return False
        if hyper.name is not None and (
            type(first) is not type(hyper) or not sym_eq(first._fields(), hyper._fields())
        ):
            raise ValueError(
                f"decision name {hyper.name!r} is used for two different hyper-values: "
                f"{first!r} (at {first.site}) and {hyper!r} (at {hyper.site}); one name "
                "must mean one decision, so rename one of them"
            )
        return True


def _value_of(hyper: HyperValue, v: Any) -> Any:
    if isinstance(hyper, OneOf):
        return hyper.candidates[v]
    if isinstance(hyper, ManyOf):
        return [hyper.candidates[i] for i in v]
    return v


def _default(hyper: HyperValue) -> Any:
    if isinstance(hyper, OneOf):
        return 0
    if isinstance(hyper, ManyOf):
        return list(range(hyper.k)) if hyper.distinct else [0] * hyper.k
    if isinstance(hyper, FloatV | IntV):
        return hyper.low
    raise TypeError(f"unknown hyper-value {hyper!r}")


class TraceResolver:
    """Records the decisions met; forced ones take given values, others defaults."""

    def __init__(self, forced: dict[str, Any]) -> None:
        self.forced = forced
        self.named = _Named()
        self.met: dict[str, HyperValue] = {}
        self.values: dict[str, Any] = {}

    def start(self) -> None:
        """Called by `mx.resolving` on entry: a new run."""
        self.named = _Named()

    def decide(self, hyper: HyperValue, pid: str) -> Any:
        if not self.named.again(hyper, pid) and pid not in self.met:
            self.met[pid] = hyper
            self.values[pid] = self.forced.get(pid, _default(hyper))
        return _value_of(hyper, self.values[pid])


class ChildResolver:
    """Resolves each decision by id from a decoded DNA."""

    def __init__(self, values: dict[str, Any], spec: DNASpec) -> None:
        self.values = values
        self.spec = spec

    def decide(self, hyper: HyperValue, pid: str) -> Any:
        try:
            v = self.values[pid]
        except KeyError:
            raise ValueError(
                f"decision {pid!r} ({hyper!r}, at {hyper.site}) was met while running the "
                "child, but it is not active in the traced space for this DNA: it depends on a "
                "combination of choices, on a float, or on a value of a wide intv that tracing "
                "did not try; give it a `name` and make it depend on one choice"
            ) from None
        if isinstance(hyper, OneOf | ManyOf):
            picks = [v] if isinstance(hyper, OneOf) else v
            if any(i >= len(hyper.candidates) for i in picks):
                raise ValueError(
                    f"decision {pid!r} now has {len(hyper.candidates)} candidates, but the "
                    f"space was traced with more; trace the space again"
                )
        return _value_of(hyper, v)


# ---------------------------------------------------------------------------
# Tracing.


def _run(fn: Callable[[], Any], forced: dict[str, Any]) -> TraceResolver:
    resolver = TraceResolver(forced)
    with resolving(resolver):
        fn()
    return resolver


def _options(
    pid: str, hyper: HyperValue, fn: Callable[[], Any], forced: dict[str, Any]
) -> list[Any]:
    """The values of a decision that may change which decisions are met."""
    if isinstance(hyper, OneOf):
        return list(range(len(hyper.candidates)))
    if isinstance(hyper, IntV) and hyper.high > hyper.low:
        if hyper.high - hyper.low < _PROBE_ALL_INTS:
            return list(range(hyper.low, hyper.high + 1))  # small: try every value
        lo = set(_run(fn, {**forced, pid: hyper.low}).met)
        hi = set(_run(fn, {**forced, pid: hyper.high}).met)
        if lo == hi:
            return []
        if hyper.high - hyper.low + 1 > _MAX_INT_BRANCHES:
            raise ValueError(
                f"intv decision {pid!r} ({hyper!r}) changes which decisions run and has more "
                f"than {_MAX_INT_BRANCHES} values, too many to trace; use a oneof over fewer values"
            )
        return list(range(hyper.low, hyper.high + 1))
    return []


def _explore(fn: Callable[[], Any], forced: dict[str, Any], scope: set[str] | None) -> Subspace:
    base = _run(fn, forced)
    met = {pid: h for pid, h in base.met.items() if pid not in forced}
    ids = [pid for pid in met if scope is None or pid in scope]
    runs: dict[tuple[str, Any], list[str]] = {}
    options: dict[str, list[Any]] = {}
    for pid in ids:
        opts = _options(pid, met[pid], fn, forced)
        if not opts:
            continue
        options[pid] = opts
        default = _default(met[pid])
        for v in opts:
            if v == default:
                runs[(pid, v)] = list(met)
            else:
                runs[(pid, v)] = [x for x in _run(fn, {**forced, pid: v}).met if x not in forced]
    conditional_on: dict[str, str] = {}
    for pid, opts in options.items():
        sets = [set(runs[(pid, v)]) for v in opts]
        for x in set[str]().union(*sets) - set[str].intersection(*sets) - {pid}:
            conditional_on.setdefault(x, pid)
    points: list[DecisionPoint] = []
    for pid in ids:
        if pid in conditional_on:
            continue
        hyper = met[pid]
        subs: list[Subspace] = []
        for v in options.get(pid, []):
            child_scope = {x for x in runs[(pid, v)] if conditional_on.get(x) == pid}
            subs.append(_explore(fn, {**forced, pid: v}, child_scope) if child_scope else ())
        points.extend(_points(pid, hyper, tuple(subs)))
    return tuple(points)


def _points(pid: str, hyper: HyperValue, subs: tuple[Subspace, ...]) -> list[DecisionPoint]:
    name = hyper.name
    if isinstance(hyper, OneOf):
        lits = tuple(literal(c) for c in hyper.candidates)
        return [
            Choice(
                pid,
                hyper.site,
                name,
                num_candidates=len(hyper.candidates),
                subspaces=subs,
                literals=lits,
            )
        ]
    if isinstance(hyper, ManyOf):
        return [
            ManyChoice(
                pid,
                hyper.site,
                name,
                num_candidates=len(hyper.candidates),
                k=hyper.k,
                distinct=hyper.distinct,
                sorted=hyper.sorted,
                literals=tuple(literal(c) for c in hyper.candidates),
            )
        ]
    if isinstance(hyper, FloatV):
        return [Float(pid, hyper.site, name, low=hyper.low, high=hyper.high, scale=hyper.scale)]
    assert isinstance(hyper, IntV)
    return [Int(pid, hyper.site, name, low=hyper.low, high=hyper.high, subspaces=subs)]


def no_decisions_error(obj: Any, traced: bool) -> TypeError:
    """The one error for a space without decisions, static or traced."""
    text = repr(obj)
    short = (text if len(text) < 120 else text[:117] + "...") + f" ({type(obj).__name__})"
    return TypeError(
        f"expected a search space (a program with hyper-values such as mx.oneof, or "
        f"mx.trace(fn) of code that calls them), but got {short}, which has no hyper-values"
        + (" when traced" if traced else "")
    )


class DynamicSpace:
    """A define-by-run space: the function, and the DNASpec its tracing found.

    Made by :func:`trace`. `materialize(dna)` returns a :class:`DynamicChild`.

    Raises:
        TypeError: if running the code meets no hyper-value.
    """

    def __init__(self, target: Any, runner: Callable[[], Any]) -> None:
        self.target = target
        self._runner = runner
        self.spec = DNASpec(_explore(runner, {}, None))
        if not self.spec.columns:
            raise no_decisions_error(target, traced=True)

    def materialize(self, dna: DNA | Sequence[DNAValue]) -> DynamicChild:
        if not isinstance(dna, DNA):
            dna = DNA(dna)
        return DynamicChild(self.target, dna, self.spec.to_dict(dna), self.spec)

    def encode(self, child: Any) -> DNA:
        if not isinstance(child, DynamicChild) or child.spec != self.spec:
            raise ValueError(
                f"cannot encode {child!r}: a define-by-run space encodes only the children "
                "it materialized (DynamicChild objects of the same traced space)"
            )
        return child.dna

    def random_dna(self, rng: np.random.Generator | int | None = None) -> DNA:
        return self.spec.random_dna(rng)

    def __repr__(self) -> str:
        return f"DynamicSpace(target={self.target!r}, space_size={self.spec.space_size})"


class DynamicChild:
    """A define-by-run child: the same code, run with its DNA's choices.

    Calling it (or any method of the target, such as a Flax module's `init`
    and `apply`) runs under a resolver that returns this child's choices. It
    is hashable by (target, DNA), so passed as a static argument to
    `jax.jit` a new DNA compiles anew and the same DNA reuses its executable.
    """

    __slots__ = ("target", "dna", "values", "spec", "_wrapped", "_concrete")

    def __init__(self, target: Any, dna: DNA, values: dict[str, Any], spec: DNASpec) -> None:
        self.target = target
        self.dna = dna
        self.values = values
        self.spec = spec
        self._wrapped: dict[str, Callable[..., Any]] = {}
        self._concrete: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (DynamicChild, (self.target, self.dna, self.values, self.spec))

    def _resolver(self) -> ChildResolver:
        return ChildResolver(self.values, self.spec)

    @property
    def program(self) -> Any:
        """The target with the choices of its field hyper-values applied (the
        define-by-run choices still happen when it runs)."""
        if self._concrete is None:
            with resolving(self._resolver()):
                self._concrete = resolve_fields(self.target)
        return self._concrete

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = self.program
        with resolving(self._resolver()):
            return target(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in DynamicChild.__slots__:
            raise AttributeError(name)
        attr = getattr(self.program, name)
        if not callable(attr):
            return attr
        wrapped = self._wrapped.get(name)
        if wrapped is None:

            def wrapped(*args: Any, **kwargs: Any) -> Any:
                with resolving(self._resolver()):
                    return attr(*args, **kwargs)

            wrapped.__name__ = name
            self._wrapped[name] = wrapped
        return wrapped

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DynamicChild)
            and other.dna == self.dna
            and other.spec == self.spec
            and _same(other.target, self.target)
        )

    def __hash__(self) -> int:
        try:
            h = hash(self.target)
        except TypeError:
            h = sym_hash(self.target)
        return hash((h, self.dna))

    def __repr__(self) -> str:
        target = self.target.cls if isinstance(self.target, Constructor) else self.target
        name = getattr(target, "__qualname__", type(target).__name__)
        return f"DynamicChild({name}, {self.dna!r})"

    def __mx_build__(self) -> Any:
        """`mx.build(child)`: the concrete module of a traced NNX constructor
        (built now, with this child's choices); any other child is itself."""
        if isinstance(self.target, Constructor):
            return self()
        return self


class Constructor:
    """A class and the arguments it was traced with; calling it builds one.

    Arguments that are NNX graph nodes (`nnx.Rngs`, modules) are copied for
    each build, so every build (and every tracing run) starts from the state
    they had when traced: children of one DNA get the same weights.
    """

    __slots__ = ("cls", "args", "kwargs")

    def __init__(self, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __call__(self) -> Any:
        from flax import nnx

        def fresh(v: Any) -> Any:
            return nnx.clone(v) if nnx.graph.is_graph_node(v) else v

        args = tuple(fresh(a) for a in self.args)
        return self.cls(*args, **{k: fresh(v) for k, v in self.kwargs.items()})

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Constructor)
            and other.cls is self.cls
            and len(other.args) == len(self.args)
            and all(_same(a, b) for a, b in zip(other.args, self.args, strict=True))
            and other.kwargs.keys() == self.kwargs.keys()
            and all(_same(other.kwargs[k], v) for k, v in self.kwargs.items())
        )

    def __hash__(self) -> int:
        return hash(("constructor", self.cls))

    def __repr__(self) -> str:
        return f"Constructor({self.cls.__qualname__})"


def _same(a: Any, b: Any) -> bool:
    return a is b or sym_eq(a, b)


def resolve_fields(program: Any, idkeys: tuple[Any, ...] = ()) -> Any:
    """`program` with each hyper-value in it decided by the resolver in force.

    A field hyper-value without a name is decided under its id, the same id
    that compiling `program` as a static space gives it (for example
    `features`, or `hidden[=1][0]` inside candidate 1), so a module may mix
    hyper-values in its fields with define-by-run ones in its methods, in
    one space.
    """
    if isinstance(program, HyperValue):
        value = decide(program, program.name or format_id(idkeys))
        if isinstance(program, OneOf):
            return _resolve_in(program.candidates, value, idkeys)
        if isinstance(program, ManyOf) and isinstance(value, list):
            return [_resolve_in(program.candidates, v, idkeys + (p,)) for p, v in enumerate(value)]
        return value
    nt = node_type(program)
    if nt is None:
        return program
    pairs = nt.flatten(program)
    resolved = {key: resolve_fields(v, idkeys + (key,)) for key, v in pairs}
    if all(resolved[key] is v for key, v in pairs):
        return program  # nothing to decide below: the very same node
    return nt.unflatten(program, resolved)


def _resolve_in(candidates: list[Any], value: Any, idkeys: tuple[Any, ...]) -> Any:
    """The chosen candidate `value`, resolved under its id `...[=j]`."""
    for j, cand in enumerate(candidates):
        if cand is value:
            return resolve_fields(value, idkeys + (Cand(j),))
    if isinstance(value, Mixed):  # a supernet's mixed value: every candidate, each under its id
        value.__mx_resolve__(lambda j, cand: resolve_fields(cand, idkeys + (Cand(j),)))
    return value


def trace(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> DynamicSpace:
    """Runs define-by-run code and returns the space of the decisions it meets.

    `fn(*args, **kwargs)` is run once per explored choice (each candidate of a
    `oneof` is tried, to find conditional decisions). A Flax linen module is
    traced through `module.init(jax.random.key(0), *args, **kwargs)` under
    `jax.eval_shape`, so no real computation runs. Hyper-values in the
    module's fields join the space too, decided under their paths (a module
    may mix field hyper-values and define-by-run ones); `child.program` is
    the module with its field choices applied. A Flax NNX module class is
    traced through its constructor, `fn(*args, **kwargs)` under
    `nnx.eval_shape` (no parameter is allocated); `mx.build(child)` then
    builds the concrete module with the child's choices (graph-node
    arguments such as `nnx.Rngs` copied, so a DNA always gets the same
    weights).

    Examples:
        >>> import morphax as mx
        >>> def model(x):
        ...     depth = mx.intv(1, 3, name="depth")
        ...     for _ in range(depth):
        ...         x = x * mx.oneof([1, 2], name=f"op{_}")
        ...     return x
        >>> space = mx.trace(model, 1)
        >>> space.spec.space_size
        14
        >>> child = mx.materialize(space, mx.DNA([2, 1, 1]))
        >>> child(3)
        12
    """
    if not callable(fn):
        raise TypeError(f"mx.trace needs a callable (a function or a Flax module), but got {fn!r}")
    linen = sys.modules.get("flax.linen")
    if linen is not None and isinstance(fn, linen.Module):
        import jax

        def runner() -> Any:
            module = resolve_fields(fn)
            return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))

        return DynamicSpace(fn, runner)
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(fn, type) and issubclass(fn, nnx.Module):
        ctor = Constructor(fn, args, kwargs)
        return DynamicSpace(ctor, lambda: nnx.eval_shape(ctor))
    return DynamicSpace(fn, lambda: resolve_fields(fn)(*args, **kwargs))
