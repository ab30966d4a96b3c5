"""Static spaces: compile a program with hyper-values into a DNASpec and a plan.

The plan is a tree of closures that rebuilds the program from a DNA in one
pass, so materializing costs about as much as copying the program.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._dna import DNA, DNAValue
from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._keypath import Key, format_key
from ._spec import Choice, DecisionPoint, DNASpec, Float, Int
from ._tree import (
    CALL,
    DATACLASS,
    DICT,
    HYPER,
    LEAF,
    LIST,
    Call,
    children,
    clone,
    kind_of,
    literal,
    rebuild,
    sym_eq,
)

Plan = Callable[[Iterator[DNAValue], dict[str, Any]], Any]


class _Cand:
    """The id key for candidate `j` of a choice: formats as `[=j]`."""

    __slots__ = ("j",)

    def __init__(self, j: int) -> None:
        self.j = j


def _format_id(keys: tuple[Any, ...]) -> str:
    out = []
    for i, k in enumerate(keys):
        out.append(f"[={k.j}]" if isinstance(k, _Cand) else format_key(k, i == 0))
    return "".join(out) or "<root>"


class _Compiler:
    def __init__(self) -> None:
        # name -> (hyper, scope, location)
        self.named: dict[str, tuple[HyperValue, tuple[Any, ...], str]] = {}
        # ids of the nodes that hold hyper-values (found once, read by encode)
        self.dynamic: set[int] = set()

    def compile(
        self,
        node: Any,
        keys: tuple[Key, ...],
        idkeys: tuple[Any, ...],
        scope: tuple[Any, ...],
        points: list[DecisionPoint],
    ) -> Plan:
        plan = self._compile(node, keys, idkeys, scope, points)
        return plan if plan is not None else _static_plan(node)

    def _compile(
        self,
        node: Any,
        keys: tuple[Key, ...],
        idkeys: tuple[Any, ...],
        scope: tuple[Any, ...],
        points: list[DecisionPoint],
    ) -> Plan | None:
        """The plan of `node`, or None when it holds no hyper-value (one walk)."""
        k = kind_of(node)
        if k == HYPER:
            self.dynamic.add(id(node))
            return self._hyper(node, keys, idkeys, scope, points)
        if k == LEAF:
            return None
        pairs = children(node)
        plans = [
            self._compile(v, keys + (key,), idkeys + (key,), scope, points) for key, v in pairs
        ]
        if all(plan is None for plan in plans):
            return None
        self.dynamic.add(id(node))
        items = [
            (key, plan if plan is not None else _static_plan(v))
            for (key, v), plan in zip(pairs, plans, strict=True)
        ]
        if k == LIST and type(node) is list:
            fns = [f for _, f in items]
            return lambda it, sh: [f(it, sh) for f in fns]
        if k == CALL:
            factory = node.factory
            return lambda it, sh: Call(factory, {key: f(it, sh) for key, f in items})
        if k == DICT and type(node) is dict:
            return lambda it, sh: {key: f(it, sh) for key, f in items}
        if k == DATACLASS:
            cls = type(node)
            return lambda it, sh: cls(**{key: f(it, sh) for key, f in items})
        return lambda it, sh: rebuild(node, {key: f(it, sh) for key, f in items})

    def _shared(
        self, node: HyperValue, keys: tuple[Key, ...], scope: tuple[Any, ...]
    ) -> Plan | None:
        name = node.name
        if name is None:
            return None
        loc = _format_id(keys)
        first = self.named.get(name)
        if first is None:
            self.named[name] = (node, scope, loc)
            return None
        hyper, first_scope, first_loc = first
        if type(hyper) is not type(node) or not sym_eq(hyper._fields(), node._fields()):
            raise ValueError(
                f"decision name {name!r} is used for two different hyper-values: {hyper!r} at "
                f"{first_loc!r} and {node!r} at {loc!r}; one name must mean one decision "
                "(the same candidates), so rename one of them"
            )
        if first_scope != scope:
            raise ValueError(
                f"decision name {name!r} is shared by {first_loc!r} and {loc!r}, which sit under "
                "different conditional choices; shared decisions must be at the same level"
            )

        def shared(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
            return clone(sh[name])

        return shared

    def _hyper(
        self,
        node: HyperValue,
        keys: tuple[Key, ...],
        idkeys: tuple[Any, ...],
        scope: tuple[Any, ...],
        points: list[DecisionPoint],
    ) -> Plan:
        shared = self._shared(node, keys, scope)
        if shared is not None:
            return shared
        name = node.name
        pid = name or _format_id(idkeys)
        loc = _format_id(keys)
        if isinstance(node, OneOf):
            subs, fns = self._candidates(node.candidates, keys, idkeys)
            points.append(
                Choice(
                    pid,
                    loc,
                    name,
                    num_candidates=len(fns),
                    subspaces=subs,
                    literals=_literals(node.candidates),
                )
            )
            return _choice_plan(fns, pid, name)
        if isinstance(node, ManyOf):
            pick_fns = []
            for pick in range(node.k):
                subs, fns = self._candidates(node.candidates, keys, idkeys + (pick,))
                points.append(
                    Choice(
                        name + f"[{pick}]" if name else _format_id(idkeys + (pick,)),
                        loc,
                        name,
                        num_candidates=len(fns),
                        k=node.k,
                        distinct=node.distinct,
                        sorted=node.sorted,
                        pick=pick,
                        manyof_id=pid,
                        subspaces=subs,
                        literals=_literals(node.candidates),
                    )
                )
                pick_fns.append(fns)
            return _manyof_plan(pick_fns, node, pid, name)
        if isinstance(node, FloatV):
            points.append(Float(pid, loc, name, low=node.low, high=node.high, scale=node.scale))
            return _float_plan(node.low, node.high, pid, name)
        assert isinstance(node, IntV)
        points.append(Int(pid, loc, name, low=node.low, high=node.high))
        return _int_plan(node.low, node.high, pid, name)

    def _candidates(
        self, candidates: list[Any], keys: tuple[Key, ...], idkeys: tuple[Any, ...]
    ) -> tuple[tuple[tuple[DecisionPoint, ...], ...], list[Plan]]:
        subs, fns = [], []
        for j, cand in enumerate(candidates):
            sub: list[DecisionPoint] = []
            cid = idkeys + (_Cand(j),)
            fns.append(self.compile(cand, keys + ("candidates", j), cid, cid, sub))
            subs.append(tuple(sub))
        return tuple(subs), fns


def _static_plan(node: Any) -> Plan:
    if kind_of(node) == LEAF:
        return lambda it, sh: node
    return lambda it, sh: clone(node)


def _literals(candidates: list[Any]) -> tuple[str, ...]:
    return tuple(literal(c) for c in candidates)


def _bad(pid: str, v: Any, need: str) -> ValueError:
    return ValueError(f"DNA value {v!r} for decision {pid!r} is out of range: it needs {need}")


def _choice_plan(fns: list[Plan], pid: str, name: str | None) -> Plan:
    n = len(fns)

    def choice(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        i = next(it)
        if i.__class__ is not int or not 0 <= i < n:
            raise _bad(pid, i, f"a candidate index in [0, {n - 1}]")
        v = fns[i](it, sh)
        if name is not None:
            sh[name] = v
        return v

    return choice


def _manyof_plan(pick_fns: list[list[Plan]], node: ManyOf, pid: str, name: str | None) -> Plan:
    n, distinct, is_sorted = len(node.candidates), node.distinct, node.sorted

    def manyof(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        picks, out = [], []
        for fns in pick_fns:
            i = next(it)
            if i.__class__ is not int or not 0 <= i < n:
                raise _bad(pid, i, f"a candidate index in [0, {n - 1}]")
            picks.append(i)
            out.append(fns[i](it, sh))
        if distinct and len(set(picks)) != len(picks):
            raise ValueError(f"DNA picks {picks} for manyof {pid!r}, which needs distinct picks")
        if is_sorted and picks != sorted(picks):
            raise ValueError(f"DNA picks {picks} for manyof {pid!r}, which needs sorted picks")
        if name is not None:
            sh[name] = out
        return out

    return manyof


def _float_plan(low: float, high: float, pid: str, name: str | None) -> Plan:
    def floatv(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        v = next(it)
        if v.__class__ is not float and v.__class__ is not int or not low <= v <= high:
            raise _bad(pid, v, f"a float in [{low}, {high}]")
        v = float(v)
        if name is not None:
            sh[name] = v
        return v

    return floatv


def _int_plan(low: int, high: int, pid: str, name: str | None) -> Plan:
    def intv(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        v = next(it)
        if v.__class__ is not int or not low <= v <= high:
            raise _bad(pid, v, f"an int in [{low}, {high}]")
        if name is not None:
            sh[name] = v
        return v

    return intv


_END: Any = object()


class Space:
    """A compiled static search space: the program, its DNASpec and a plan.

    Made by :func:`morphax.space`; compile once and materialize many times.

    Examples:
        >>> import morphax as mx
        >>> space = mx.space({"w": mx.oneof([16, 32]), "act": mx.oneof(["relu", "gelu"])})
        >>> space.spec.space_size
        4
        >>> space.materialize(mx.DNA([1, 0]))
        {'w': 32, 'act': 'relu'}
        >>> space.encode({"w": 32, "act": "relu"})
        DNA([1, 0])
    """

    def __init__(self, program: Any) -> None:
        points: list[DecisionPoint] = []
        compiler = _Compiler()
        self._plan = compiler.compile(program, (), (), (), points)
        self._dynamic = compiler.dynamic
        self.program = program
        self.spec = DNASpec(tuple(points))

    def materialize(self, dna: DNA | Sequence[DNAValue]) -> Any:
        """The child program for `dna`: every hyper-value replaced by its choice."""
        dna = _as_dna(dna)
        spec = dna.spec
        if spec is not None and spec is not self.spec and spec != self.spec:
            self.spec.validate(dna)  # raises: made for another space
        it = iter(dna.values)
        try:
            out = self._plan(it, {})
        except StopIteration:
            self.spec.validate(dna)  # raises with the missing decision named
            raise
        if next(it, _END) is not _END:
            self.spec.validate(dna)
        return out

    def encode(self, program: Any) -> DNA:
        """The DNA whose child is `program` (the inverse of `materialize`)."""
        out: list[DNAValue] = []
        try:
            _encode(self.program, program, (), out, {}, self._dynamic)
        except _Mismatch as e:
            raise ValueError(f"cannot encode the program: {e}") from None
        return DNA(out, spec=self.spec)

    def random_dna(self, rng: np.random.Generator | int | None = None) -> DNA:
        return self.spec.random_dna(rng)

    def __repr__(self) -> str:
        return f"Space(space_size={self.spec.space_size}, program={self.program!r})"


def _as_dna(dna: Any) -> DNA:
    if isinstance(dna, DNA):
        return dna
    if isinstance(dna, list | tuple):
        return DNA(dna)
    raise TypeError(f"expected a DNA (or a list of DNA values), but got {dna!r}")


class _Mismatch(Exception):
    pass


def _encode(
    space: Any,
    prog: Any,
    keys: tuple[Key, ...],
    out: list[DNAValue],
    shared: dict[str, Any],
    dynamic: set[int],
) -> None:
    """Appends the DNA values that make `prog` from `space`; `dynamic` holds the
    ids of the space's nodes that contain hyper-values."""
    k = kind_of(space)
    if k == HYPER:
        name = space.name
        sub: list[DNAValue] = []
        _encode_hyper(space, prog, keys, sub, shared, dynamic)
        if name is not None:
            if name in shared:
                if shared[name] != sub:
                    raise _Mismatch(
                        f"the program has {prog!r} at {_format_id(keys)!r} for the shared decision {name!r}, "
                        "which differs from its other place"
                    )
                return
            shared[name] = sub
        out.extend(sub)
        return
    if id(space) not in dynamic:
        if not sym_eq(space, prog):
            raise _Mismatch(
                f"the program has {prog!r} at {_format_id(keys)!r} where the space has {space!r}"
            )
        return
    if (
        kind_of(prog) != k
        or type(prog) is not type(space)
        or (k == CALL and prog.target is not space.target)
    ):
        raise _Mismatch(
            f"the program has {prog!r} at {_format_id(keys)!r} where the space has {space!r}"
        )
    sc, pc = dict(children(space)), dict(children(prog))
    if k in (CALL, DATACLASS):
        # Arguments and fields left at their defaults are not listed: compare
        # the union, reading defaults through attribute access.
        for key in pc:
            if key not in sc:
                sc[key] = getattr(space, key)
        pc = {key: getattr(prog, key) for key in sc}
    elif list(sc) != list(pc):
        raise _Mismatch(
            f"the program at {_format_id(keys)!r} has keys {list(pc)} where the space has {list(sc)}"
        )
    for key, v in sc.items():
        _encode(v, pc[key], keys + (key,), out, shared, dynamic)


def _match(
    candidates: list[Any],
    prog: Any,
    keys: tuple[Key, ...],
    shared: dict[str, Any],
    dynamic: set[int],
) -> list[DNAValue]:
    for j, cand in enumerate(candidates):
        sub: list[DNAValue] = [j]
        trial_shared = dict(shared)
        try:
            _encode(cand, prog, keys, sub, trial_shared, dynamic)
        except _Mismatch:
            continue
        shared.update(trial_shared)
        return sub
    raise _Mismatch(
        f"the program has {prog!r} at {_format_id(keys)!r}, which matches none of the "
        f"candidates {candidates!r}"
    )


def _encode_hyper(
    space: HyperValue,
    prog: Any,
    keys: tuple[Key, ...],
    out: list[DNAValue],
    shared: dict[str, Any],
    dynamic: set[int],
) -> None:
    if isinstance(space, OneOf):
        out.extend(_match(space.candidates, prog, keys, shared, dynamic))
    elif isinstance(space, ManyOf):
        if not isinstance(prog, list) or len(prog) != space.k:
            raise _Mismatch(
                f"the program has {prog!r} at {_format_id(keys)!r} where the space has a list of {space.k} picks"
            )
        picks = []
        for p, item in enumerate(prog):
            sub = _match(space.candidates, item, keys + (p,), shared, dynamic)
            picks.append(sub[0])
            out.extend(sub)
        if (
            space.distinct
            and len(set(picks)) != len(picks)
            or space.sorted
            and picks != sorted(picks)
        ):
            raise _Mismatch(
                f"the program's picks {picks} at {_format_id(keys)!r} break the manyof's rules "
                f"(distinct={space.distinct}, sorted={space.sorted})"
            )
    elif isinstance(space, FloatV):
        if (
            isinstance(prog, bool)
            or not isinstance(prog, int | float)
            or not space.low <= prog <= space.high
        ):
            raise _Mismatch(
                f"the program has {prog!r} at {_format_id(keys)!r}, not a float in [{space.low}, {space.high}]"
            )
        out.append(float(prog))
    else:
        assert isinstance(space, IntV)
        if (
            isinstance(prog, bool)
            or not isinstance(prog, int)
            or not space.low <= prog <= space.high
        ):
            raise _Mismatch(
                f"the program has {prog!r} at {_format_id(keys)!r}, not an int in [{space.low}, {space.high}]"
            )
        out.append(int(prog))
