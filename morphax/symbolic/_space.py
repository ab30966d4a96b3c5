"""Static spaces: compile a program with hyper-values into a DNASpec and a plan.

The plan is a tree of closures that rebuilds the program from a DNA in one
pass, so materializing costs about as much as copying the program.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._dna import DNA, DNAValue
from ._format import literal
from ._hyper import FloatV, HyperValue, IntV, ManyOf, OneOf
from ._ids import Cand, format_id
from ._keypath import Key
from ._nodes import node_type
from ._points import Choice, DecisionPoint, Float, Int, ManyChoice
from ._spec import DNASpec
from ._tree import clone, sym_eq

Plan = Callable[[Iterator[DNAValue], dict[str, Any]], Any]


class _Compiler:
    def __init__(self) -> None:
        # name -> (hyper, scope, location)
        self.named: dict[str, tuple[HyperValue, tuple[Any, ...], str]] = {}
        self.points_by_name: dict[str, DecisionPoint] = {}
        # ids of the nodes that hold hyper-values (found once, read by encode),
        # with the decision point of each hyper-value (None for containers)
        self.dynamic: dict[int, DecisionPoint | None] = {}

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
        if isinstance(node, HyperValue):
            n = len(points)
            plan = self._hyper(node, keys, idkeys, scope, points)
            if len(points) > n:
                self.dynamic[id(node)] = points[n]
                if node.name is not None:
                    self.points_by_name[node.name] = points[n]
            else:
                self.dynamic[id(node)] = self._first(node)
            return plan
        nt = node_type(node)
        if nt is None:
            return None
        pairs = nt.flatten(node)
        plans = [
            self._compile(v, keys + (key,), idkeys + (key,), scope, points) for key, v in pairs
        ]
        if all(plan is None for plan in plans):
            return None
        self.dynamic[id(node)] = None
        items = [
            (key, plan if plan is not None else _static_plan(v))
            for (key, v), plan in zip(pairs, plans, strict=True)
        ]
        if type(node) is list:
            fns = [f for _, f in items]
            return lambda it, sh: [f(it, sh) for f in fns]
        if type(node) is dict:
            return lambda it, sh: {key: f(it, sh) for key, f in items}
        unflatten = nt.unflatten
        return lambda it, sh: unflatten(node, {key: f(it, sh) for key, f in items})

    def _first(self, node: HyperValue) -> DecisionPoint:
        """The point of the first hyper-value named like `node` (a shared decision)."""
        assert node.name is not None
        return self.points_by_name[node.name]

    def _shared(
        self, node: HyperValue, keys: tuple[Key, ...], scope: tuple[Any, ...]
    ) -> Plan | None:
        name = node.name
        if name is None:
            return None
        loc = format_id(keys)
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
        pid = name or format_id(idkeys)
        loc = format_id(keys)
        point: DecisionPoint
        if isinstance(node, OneOf):
            subs, fns = self._candidates(node.candidates, keys, idkeys)
            point = Choice(
                pid,
                loc,
                name,
                num_candidates=len(fns),
                subspaces=subs,
                literals=_literals(node.candidates),
            )
            points.append(point)
            return _choice_plan(fns, point)
        if isinstance(node, ManyOf):
            pick_fns, subspaces = [], []
            for pick in range(node.k):
                subs, fns = self._candidates(node.candidates, keys, idkeys + (pick,))
                subspaces.append(subs)
                pick_fns.append(fns)
            many = ManyChoice(
                pid,
                loc,
                name,
                num_candidates=len(node.candidates),
                k=node.k,
                distinct=node.distinct,
                sorted=node.sorted,
                subspaces=tuple(subspaces),
                literals=_literals(node.candidates),
                pick_ids=tuple(
                    f"{name}[{p}]" if name else format_id(idkeys + (p,)) for p in range(node.k)
                ),
            )
            points.append(many)
            return _manyof_plan(pick_fns, many)
        if isinstance(node, FloatV):
            point = Float(pid, loc, name, low=node.low, high=node.high, scale=node.scale)
        else:
            assert isinstance(node, IntV)
            point = Int(pid, loc, name, low=node.low, high=node.high)
        points.append(point)
        return _value_plan(point)

    def _candidates(
        self, candidates: list[Any], keys: tuple[Key, ...], idkeys: tuple[Any, ...]
    ) -> tuple[tuple[tuple[DecisionPoint, ...], ...], list[Plan]]:
        subs, fns = [], []
        for j, cand in enumerate(candidates):
            sub: list[DecisionPoint] = []
            cid = idkeys + (Cand(j),)
            fns.append(self.compile(cand, keys + ("candidates", j), cid, cid, sub))
            subs.append(tuple(sub))
        return tuple(subs), fns


def _static_plan(node: Any) -> Plan:
    if node_type(node) is None:
        return lambda it, sh: node
    return lambda it, sh: clone(node)


def _literals(candidates: list[Any]) -> tuple[str, ...]:
    return tuple(literal(c) for c in candidates)


def _bad(p: DecisionPoint, v: Any) -> ValueError:
    return ValueError(f"DNA value {v!r} for decision {p.id!r} is out of range: it needs {p.rule()}")


def _choice_plan(fns: list[Plan], point: Choice) -> Plan:
    name, check = point.name, point.check

    def choice(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        i = next(it)
        if check(i) is None:
            raise _bad(point, i)
        v = fns[i](it, sh)  # type: ignore[index]
        if name is not None:
            sh[name] = v
        return v

    return choice


def _manyof_plan(pick_fns: list[list[Plan]], many: ManyChoice) -> Plan:
    name, check = many.name, many.check

    def manyof(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        picks: list[int] = []
        out = []
        for fns in pick_fns:
            i = next(it)
            if check(i) is None:
                raise _bad(many, i)
            picks.append(i)  # type: ignore[arg-type]
            out.append(fns[i](it, sh))  # type: ignore[index]
        why = many.check_picks(picks)
        if why is not None:
            raise ValueError(f"DNA picks {picks} for manyof {many.id!r}, which {why}")
        if name is not None:
            sh[name] = out
        return out

    return manyof


def _value_plan(point: DecisionPoint) -> Plan:
    name, check = point.name, point.check

    def value(it: Iterator[DNAValue], sh: dict[str, Any]) -> Any:
        v = next(it)
        x = check(v)
        if x is None:
            raise _bad(point, v)
        if name is not None:
            sh[name] = x
        return x

    return value


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
        # A snapshot: later edits of the user's program do not reach this space.
        self.program = clone(program)
        points: list[DecisionPoint] = []
        compiler = _Compiler()
        self._plan = compiler.compile(self.program, (), (), (), points)
        self._dynamic = compiler.dynamic
        self.spec = DNASpec(tuple(points))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Space, (self.program,))

    def materialize(self, dna: DNA | Sequence[DNAValue]) -> Any:
        """The child program for `dna`: every hyper-value replaced by its choice.

        Raises:
            ValueError: if `dna` does not fit the space, naming the decision.
        """
        dna = _as_dna(dna)
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
        return DNA(out)

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
    dynamic: dict[int, DecisionPoint | None],
) -> None:
    """Appends the DNA values that make `prog` from `space`; `dynamic` holds the
    ids of the space's nodes that contain hyper-values."""
    if isinstance(space, HyperValue):
        name = space.name
        sub: list[DNAValue] = []
        _encode_hyper(space, prog, keys, sub, shared, dynamic)
        if name is not None:
            if name in shared:
                if shared[name] != sub:
                    raise _Mismatch(
                        f"the program has {prog!r} at {format_id(keys)!r} for the shared decision {name!r}, "
                        "which differs from its other place"
                    )
                return
            shared[name] = sub
        out.extend(sub)
        return
    if id(space) not in dynamic:
        if not sym_eq(space, prog):
            raise _Mismatch(
                f"the program has {prog!r} at {format_id(keys)!r} where the space has {space!r}"
            )
        return
    nt = node_type(space)
    assert nt is not None
    if type(prog) is not type(space) or (nt.head is not None and nt.head(prog) != nt.head(space)):
        raise _Mismatch(
            f"the program has {prog!r} at {format_id(keys)!r} where the space has {space!r}"
        )
    sc, pc = dict(nt.flatten(space)), dict(nt.flatten(prog))
    if nt.keys is not None:
        # Children left at their defaults need not be listed (call arguments,
        # dataclass fields): compare the union, reading defaults through `get`.
        for key in pc:
            if key not in sc:
                sc[key] = nt.child(space, key)
        pc = {key: nt.child(prog, key) for key in sc}
    elif list(sc) != list(pc):
        raise _Mismatch(
            f"the program at {format_id(keys)!r} has keys {list(pc)} where the space has {list(sc)}"
        )
    for key, v in sc.items():
        _encode(v, pc[key], keys + (key,), out, shared, dynamic)


def _match(
    candidates: list[Any],
    prog: Any,
    keys: tuple[Key, ...],
    shared: dict[str, Any],
    dynamic: dict[int, DecisionPoint | None],
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
        f"the program has {prog!r} at {format_id(keys)!r}, which matches none of the "
        f"candidates {candidates!r}"
    )


def _encode_hyper(
    space: HyperValue,
    prog: Any,
    keys: tuple[Key, ...],
    out: list[DNAValue],
    shared: dict[str, Any],
    dynamic: dict[int, DecisionPoint | None],
) -> None:
    point = dynamic[id(space)]
    assert point is not None
    if isinstance(space, OneOf):
        out.extend(_match(space.candidates, prog, keys, shared, dynamic))
        return
    if isinstance(space, ManyOf):
        if not isinstance(prog, list) or len(prog) != space.k:
            raise _Mismatch(
                f"the program has {prog!r} at {format_id(keys)!r} where the space has a list "
                f"of {space.k} picks"
            )
        picks = []
        for p, item in enumerate(prog):
            sub = _match(space.candidates, item, keys + (p,), shared, dynamic)
            picks.append(int(sub[0]))
            out.extend(sub)
        why = point.check_picks(picks)  # type: ignore[attr-defined]
        if why is not None:
            raise _Mismatch(f"the program's picks {picks} at {format_id(keys)!r}: the manyof {why}")
        return
    v = point.check(prog)
    if v is None:
        raise _Mismatch(f"the program has {prog!r} at {format_id(keys)!r}, not {point.rule()}")
    out.append(v)
