"""PyGlove interoperability: specs, DNA and programs converted both ways.

Each case builds the same space in morphax and in PyGlove and checks that the
sizes, the sets of children, the spec structure and the DNA agree.
"""

from __future__ import annotations

import functools
import json
import math
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyglove as pg
import pytest
from conftest import spaces
from hypothesis import given, settings

import morphax as mx
from morphax.interop import (
    from_pyglove,
    from_pyglove_dna,
    from_pyglove_spec,
    to_pyglove_dna,
    to_pyglove_spec,
)


class Layer(pg.Object):
    units: int
    act: str = "relu"


class Net(pg.Object):
    layers: list
    head: dict


@pg.members([("b", pg.typing.Any()), ("a", pg.typing.Any())], init_arg_list=["a", "b"])
class Swapped(pg.Object):
    """Its init order (a, b) differs from its field order (b, a)."""


@pg.symbolize
def scaled(x, factor=2, *rest, **extra):
    return x * factor + sum(rest) + sum(extra.values())


class Plain:
    def __init__(self, a: int, b: int = 2) -> None:
        self.a, self.b = a, b


PlainS = pg.symbolize(Plain)
Layer_, Net_ = mx.symbolic(Layer), mx.symbolic(Net)


@dataclass(frozen=True)
class Case:
    """One space written in both libraries."""

    name: str
    mx_space: Callable[[], Any]
    pg_space: Callable[[], Any]
    leaf_only: bool  # all candidates plain values: literals agree too

    @property
    def finite(self) -> bool:
        return mx.dna_spec(self.mx_space()).is_finite


def _manyof_case(distinct: bool, sorted_: bool) -> Case:
    return Case(
        f"manyof-distinct={distinct}-sorted={sorted_}",
        lambda: {"ops": mx.manyof(2, ["a", "b", "c"], distinct=distinct, sorted=sorted_)},
        lambda: pg.Dict(ops=pg.manyof(2, ["a", "b", "c"], distinct=distinct, sorted=sorted_)),
        True,
    )


CASES = [
    Case(
        "flat",
        lambda: {"act": mx.oneof(["relu", "gelu", "tanh"]), "width": mx.oneof([16, 32, 64])},
        lambda: pg.Dict(act=pg.oneof(["relu", "gelu", "tanh"]), width=pg.oneof([16, 32, 64])),
        True,
    ),
    Case(
        "root", lambda: mx.oneof([1, 2.5, None, "x"]), lambda: pg.oneof([1, 2.5, None, "x"]), True
    ),
    *[_manyof_case(d, s) for d in (True, False) for s in (True, False)],
    Case(
        "conditional",
        lambda: {
            "op": mx.oneof(
                [
                    "skip",
                    {"kind": "conv", "k": mx.oneof([3, 5])},
                    {"kind": "pool", "size": mx.oneof([2, 3]), "stride": mx.oneof([1, 2])},
                ]
            ),
        },
        lambda: pg.Dict(
            op=pg.oneof(
                [
                    "skip",
                    pg.Dict(kind="conv", k=pg.oneof([3, 5])),
                    pg.Dict(kind="pool", size=pg.oneof([2, 3]), stride=pg.oneof([1, 2])),
                ]
            ),
        ),
        False,
    ),
    Case(
        "manyof-conditional",
        lambda: mx.manyof(2, ["x", {"z": mx.manyof(2, [1, 2, 3], sorted=True)}, "w"]),
        lambda: pg.manyof(2, ["x", pg.Dict(z=pg.manyof(2, [1, 2, 3], sorted=True)), "w"]),
        False,
    ),
    Case(
        "floats",
        lambda: {
            "lr": mx.floatv(1e-4, 1e-1, scale="log"),
            "drop": mx.floatv(0.0, 0.5),
            "opt": mx.oneof(["adam", {"name": "sgd", "momentum": mx.floatv(0.0, 0.99)}]),
        },
        lambda: pg.Dict(
            lr=pg.floatv(1e-4, 1e-1, scale="log"),
            drop=pg.floatv(0.0, 0.5),
            opt=pg.oneof(["adam", pg.Dict(name="sgd", momentum=pg.floatv(0.0, 0.99))]),
        ),
        False,
    ),
    Case(
        "objects",
        lambda: Net_(
            layers=[
                Layer_(units=mx.oneof([8, 16])),
                Layer_(units=32, act=mx.oneof(["relu", "tanh"])),
            ],
            head={"act": "id", "sizes": [mx.oneof([1, 2]), 3]},
        ),
        lambda: Net(
            layers=pg.List(
                [Layer(units=pg.oneof([8, 16])), Layer(units=32, act=pg.oneof(["relu", "tanh"]))]
            ),
            head=pg.Dict(act="id", sizes=pg.List([pg.oneof([1, 2]), 3])),
        ),
        True,
    ),
    Case(
        "named",
        lambda: {
            "a": mx.oneof([1, 2], name="first"),
            "b": [mx.manyof(2, ["p", "q", "r"], name="picks"), mx.floatv(0.5, 1.0, name="f")],
        },
        lambda: pg.Dict(
            a=pg.oneof([1, 2], name="first"),
            b=pg.List([pg.manyof(2, ["p", "q", "r"], name="picks"), pg.floatv(0.5, 1.0, name="f")]),
        ),
        True,
    ),
]
FINITE = [c for c in CASES if c.finite]
ids = [c.name for c in CASES]
finite_ids = [c.name for c in FINITE]

# PyGlove is slow to make specs and children: make them once per case.


@functools.cache
def pg_space(case: str) -> Any:
    return next(c for c in CASES if c.name == case).pg_space()


@functools.cache
def pg_spec(case: str) -> Any:
    return pg.dna_spec(pg_space(case))


@functools.cache
def pg_samples(case: str) -> list[tuple[Any, str]]:
    """Random PyGlove DNA of the case, with their children (canonical text)."""
    out = []
    for seed in range(3):
        dna = pg.random_dna(pg_spec(case), random.Random(seed))
        out.append((dna, canon(pg.materialize(pg_space(case), dna))))
    return out


@functools.cache
def pg_children(case: str) -> frozenset[str]:
    children = [canon(c) for c in pg.iter(pg_space(case))]
    assert len(set(children)) == len(children)
    return frozenset(children)


def _size(pg_size: int) -> int | float:
    return math.inf if pg_size == -1 else pg_size


def canon(value: Any) -> str:
    """A canonical text of a child (morphax calls are built first)."""
    return json.dumps(pg.to_json(mx.build(value)), sort_keys=True)


def _row(p: mx.DecisionPoint) -> tuple[Any, ...]:
    return (type(p).__name__, p.id, p.name, p.location, p.parent, p.parent_value, p.describe())


def structure(spec: mx.DNASpec) -> list[tuple[Any, ...]]:
    """Everything about the columns except the candidates' literals."""
    return [_row(p) for p in spec.columns]


def full(spec: mx.DNASpec) -> list[tuple[Any, ...]]:
    """Every field of every column."""
    out = []
    for p in spec.columns:
        row = (*_row(p), getattr(p, "literals", None))
        if isinstance(p, mx.Choice):
            row += (p.k, p.pick, p.manyof_id, p.distinct, p.sorted, p.group)
        if isinstance(p, mx.Float):
            row += (p.low, p.high, p.scale)
        if isinstance(p, mx.Int):
            row += (p.low, p.high, len(p.subspaces))
        out.append(row)
    return out


# ---------------------------------------------------------------------------
# The same space in both libraries.


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_space_sizes_agree(case: Case) -> None:
    spec, theirs = mx.dna_spec(case.mx_space()), pg_spec(case.name)
    assert _size(theirs.space_size) == spec.space_size
    assert from_pyglove_spec(theirs).space_size == spec.space_size
    assert _size(to_pyglove_spec(spec).space_size) == spec.space_size


@pytest.mark.parametrize("case", FINITE, ids=finite_ids)
def test_children_agree(case: Case) -> None:
    mine = [canon(c) for c in mx.iter(case.mx_space())]
    assert len(set(mine)) == len(mine) == mx.dna_spec(case.mx_space()).space_size
    assert set(mine) == pg_children(case.name)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_from_pyglove_spec_has_morphax_structure(case: Case) -> None:
    spec, theirs = mx.dna_spec(case.mx_space()), pg_spec(case.name)
    converted = from_pyglove_spec(theirs)
    assert structure(converted) == structure(spec)
    if case.leaf_only:
        assert converted == spec
        # ... and the other way, the very spec PyGlove makes.
        assert pg.eq(to_pyglove_spec(spec), theirs)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_pyglove_spec_round_trip(case: Case) -> None:
    theirs = pg_spec(case.name)
    assert pg.eq(to_pyglove_spec(from_pyglove_spec(theirs)), theirs)


def test_from_pyglove_spec_of_a_single_decision_point() -> None:
    spec = from_pyglove_spec(pg.geno.manyof(2, [pg.geno.constant()] * 3, sorted=True))
    assert spec.space_size == 3
    assert [p.id for p in spec.columns] == ["[0]", "[1]"]


# ---------------------------------------------------------------------------
# Round trips.


def _dynamic_model(x: int) -> int:
    depth = mx.intv(1, 3, name="depth")  # picks how many named ops run
    for i in range(depth):
        x = x * mx.oneof([1, 2], name=f"op{i}")
    if mx.oneof(["a", "b"]) == "b":
        mx.manyof(2, ["p", "q", "r"], sorted=True)
    mx.floatv(0.1, 1.0)
    return x


EXTRA_SPECS = {
    "intv": lambda: mx.dna_spec({"n": mx.intv(-1, 2), "m": [mx.intv(0, 0), mx.oneof([1, 2])]}),
    "conditional-intv": lambda: mx.dna_spec(mx.oneof([0, {"n": mx.intv(1, 3, name="n")}])),
    "manyof-of-1": lambda: mx.dna_spec(
        {"a": mx.manyof(1, ["x", {"y": mx.oneof([1, 2])}]), "b": mx.manyof(1, [1, 2], name="b")}
    ),
    "root-manyof": lambda: mx.dna_spec(mx.manyof(2, ["x", {"y": mx.oneof([1, 2])}, "z"])),
    "name-clashes-with-id": lambda: mx.dna_spec(
        {"x": mx.oneof([1, 2]), "y": mx.oneof([3, 4], name="x")}
    ),
    "odd-keys": lambda: mx.dna_spec({"a b": [mx.oneof([1, 2])], "c": {3: mx.oneof(["u", "v"])}}),
    "define-by-run": lambda: mx.trace(_dynamic_model, 1).spec,
    "empty": lambda: mx.DNASpec(()),
}


@pytest.mark.parametrize(
    "make_spec",
    [lambda c=c: mx.dna_spec(c.mx_space()) for c in CASES] + list(EXTRA_SPECS.values()),
    ids=ids + list(EXTRA_SPECS),
)
def test_spec_and_dna_round_trips(make_spec: Callable[[], mx.DNASpec]) -> None:
    spec = make_spec()
    pg_spec = to_pyglove_spec(spec)
    back = from_pyglove_spec(pg_spec)
    assert back == spec
    assert full(back) == full(spec)
    assert back.space_size == spec.space_size == _size(pg_spec.space_size)
    for seed in range(2):
        dna = spec.random_dna(seed)
        pg_dna = to_pyglove_dna(dna, pg_spec)
        assert pg_dna.spec is not None
        assert pg_dna == pg.DNA.from_numbers(pg_dna.to_numbers(), pg_spec)
        assert from_pyglove_dna(pg_dna, spec) == dna
        assert to_pyglove_dna(dna, spec) == pg_dna  # a morphax spec is converted
        theirs = pg.random_dna(pg_spec, random.Random(seed))
        mine = from_pyglove_dna(theirs, spec)
        spec.validate(mine)  # a DNA is a plain value (issue 7 bug 3): checked, not tagged
        assert to_pyglove_dna(mine, pg_spec) == theirs
        assert from_pyglove_dna(theirs, pg_spec) == mine  # a PyGlove spec is converted


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_dna_decodes_to_the_same_child(case: Case) -> None:
    mx_space = case.mx_space()
    spec = mx.dna_spec(mx_space)
    for seed in range(3):
        dna = spec.random_dna(seed)
        pg_dna = to_pyglove_dna(dna, pg_spec(case.name))
        child = pg.materialize(pg_space(case.name), pg_dna)
        assert canon(child) == canon(mx.materialize(mx_space, dna))
        assert from_pyglove_dna(pg_dna, spec) == dna
    for theirs, child in pg_samples(case.name):
        mine = from_pyglove_dna(theirs, spec)
        assert canon(mx.materialize(mx_space, mine)) == child
        assert to_pyglove_dna(mine, pg_spec(case.name)) == theirs


def test_every_dna_of_a_define_by_run_space() -> None:
    spec = mx.trace(lambda: [mx.oneof([1, 2], name=f"o{i}") for i in range(mx.intv(1, 3))]).spec
    pg_spec = to_pyglove_spec(spec)
    assert {from_pyglove_dna(d, spec) for d in pg_spec.iter_dna()} == set(spec.iter_dna())
    assert len(set(spec.iter_dna())) == spec.space_size == pg_spec.space_size == 14


def test_int_decisions_are_offset_choices() -> None:
    mx_space = {"n": mx.intv(2, 5), "act": mx.oneof(["a", "b"])}
    pg_space = pg.Dict(n=pg.oneof([2, 3, 4, 5]), act=pg.oneof(["a", "b"]))
    spec = mx.dna_spec(mx_space)
    pg_spec = to_pyglove_spec(spec)
    assert pg_spec.elements[0].literal_values == [2, 3, 4, 5]
    assert pg_spec.space_size == spec.space_size == 8
    dna = mx.DNA([4, 1])
    pg_dna = to_pyglove_dna(dna, pg_spec)
    assert pg_dna.to_numbers() == [2, 1]
    assert pg.materialize(pg_space, pg_dna) == mx.materialize(mx_space, dna) == {"n": 4, "act": "b"}
    assert from_pyglove_dna(pg_dna, spec) == dna
    # A plain PyGlove spec has no int decision: the value is an index there.
    assert [type(p) for p in from_pyglove_spec(pg.dna_spec(pg_space)).columns] == [mx.Choice] * 2


@settings(max_examples=10, deadline=None)
@given(spaces)
def test_random_spaces_round_trip(program: Any) -> None:
    spec = mx.dna_spec(program)
    pg_spec = to_pyglove_spec(spec)
    assert from_pyglove_spec(pg_spec) == spec
    assert _size(pg_spec.space_size) == spec.space_size
    for seed in range(2):
        dna = spec.random_dna(seed)
        assert from_pyglove_dna(to_pyglove_dna(dna, pg_spec), spec) == dna
        theirs = pg.random_dna(pg_spec, random.Random(seed))
        assert to_pyglove_dna(from_pyglove_dna(theirs, spec), pg_spec) == theirs


# ---------------------------------------------------------------------------
# Programs.


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_from_pyglove(case: Case) -> None:
    space = from_pyglove(pg_space(case.name))
    spec, theirs = mx.dna_spec(space), pg_spec(case.name)
    assert spec.space_size == _size(theirs.space_size)
    assert structure(spec) == structure(from_pyglove_spec(theirs))
    assert structure(spec) == structure(mx.dna_spec(case.mx_space()))
    if case.leaf_only:
        assert spec == from_pyglove_spec(theirs) == mx.dna_spec(case.mx_space())
    if spec.is_finite:
        mine = {canon(c) for c in mx.iter(space)}
        assert mine == pg_children(case.name)
        assert len(mine) == spec.space_size
    for pg_dna, child in pg_samples(case.name):
        assert canon(mx.materialize(space, from_pyglove_dna(pg_dna, spec))) == child


def test_from_pyglove_objects_are_calls_of_their_class() -> None:
    space = from_pyglove(Net(layers=[Layer(units=pg.oneof([1, 2]))], head={}))
    assert isinstance(space, mx.Call) and space.target is Net
    assert space.layers[0].target is Layer
    assert space.layers[0].act == "relu"
    child = mx.build(mx.materialize(space, mx.DNA([1])))
    assert isinstance(child, Net) and pg.eq(child, Net(layers=[Layer(units=2)], head={}))
    assert mx.encode(space, mx.materialize(space, mx.DNA([1]))) == mx.DNA([1])


def test_from_pyglove_keeps_pyglove_field_order() -> None:
    pg_space = Swapped(a=pg.oneof([1, 2]), b=pg.oneof(["x", "y", "z"]))
    space = from_pyglove(pg_space)
    assert [p.id for p in mx.dna_spec(space).columns] == ["b", "a"]
    assert [str(p.id) for p in pg.dna_spec(pg_space).decision_points] == ["b", "a"]
    child = mx.build(mx.materialize(space, mx.DNA([2, 0])))
    assert pg.eq(child, pg.materialize(pg_space, pg.DNA([2, 0])))


def test_from_pyglove_functors_and_symbolized_classes() -> None:
    pg_space = pg.Dict(
        f=scaled(pg.oneof([1, 2]), 3, 4, 5, z=pg.oneof([10, 20])),
        p=PlainS(a=pg.oneof([7, 8])),
    )
    space = from_pyglove(pg_space)
    assert space["p"].target is PlainS
    pg_spec = pg.dna_spec(pg_space)
    spec = mx.dna_spec(space)
    assert [p.id for p in spec.columns] == ["f.x", "f.z", "p.a"]
    assert structure(spec) == structure(from_pyglove_spec(pg_spec))
    assert {canon(c) for c in mx.iter(space)} == {canon(c) for c in pg.iter(pg_space)}
    assert mx.from_json(mx.to_json(space)) == space
    child = mx.build(mx.materialize(space, mx.DNA([1, 0, 1])))
    assert child["f"]() == 2 * 3 + 4 + 5 + 10
    assert child["p"].a == 8


def test_from_pyglove_plain_containers_and_templates() -> None:
    pg_space = {"a": [pg.oneof([1, 2]), (pg.floatv(0.0, 1.0), "k")], "t": pg.Dict(x=1)}
    space = from_pyglove(pg.template(pg.Dict(pg_space)))
    assert type(space["t"]) is dict and type(space["a"]) is list and type(space["a"][1]) is tuple
    assert mx.materialize(space, mx.DNA([1, 0.5])) == {"a": [2, (0.5, "k")], "t": {"x": 1}}
    assert from_pyglove(3) == 3 and from_pyglove("x") == "x"


# ---------------------------------------------------------------------------
# Bad input.


def test_bad_specs() -> None:
    spec = mx.dna_spec({"a": mx.oneof([1, 2])})
    with pytest.raises(TypeError, match=r"needs a PyGlove DNASpec .* but got DNASpec"):
        from_pyglove_spec(spec)
    with pytest.raises(TypeError, match=r"pass pg\.dna_spec\(space\), or use from_pyglove"):
        from_pyglove_spec(pg.Dict(a=pg.oneof([1, 2])))
    with pytest.raises(TypeError, match=r"needs a morphax DNASpec .* but got .*Space"):
        to_pyglove_spec(pg.dna_spec(pg.oneof([1, 2])))
    with pytest.raises(ValueError, match=r"scale 'rlog', which morphax does not have"):
        from_pyglove_spec(pg.dna_spec(pg.floatv(0.1, 1.0, scale="rlog")))
    with pytest.raises(TypeError, match=r"CustomDecisionPoint: .* no custom decision points"):
        from_pyglove_spec(pg.geno.Space([pg.geno.custom()]))
    with pytest.raises(ValueError, match=r"one pick of a PyGlove multi-choice"):
        from_pyglove_spec(pg.geno.manyof(2, [pg.geno.constant()] * 3).subchoice(1))
    with pytest.raises(ValueError, match=r"int decision 'n' \(intv\(0, 100000\)\) .* too large"):
        to_pyglove_spec(mx.dna_spec({"n": mx.intv(0, 100_000)}))


def test_bad_dna() -> None:
    space = {"a": mx.oneof([1, {"b": mx.oneof([1, 2])}]), "c": mx.manyof(2, ["x", "y", "z"])}
    spec = mx.dna_spec(space)
    pg_spec = to_pyglove_spec(spec)
    with pytest.raises(TypeError, match=r"needs a morphax DNA \(mx.DNA\), but got \[0, 1, 2\]"):
        to_pyglove_dna([0, 1, 2], pg_spec)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a PyGlove DNASpec .* or a morphax DNASpec"):
        to_pyglove_dna(mx.DNA([0, 1, 2]), {"a": 1})
    with pytest.raises(ValueError, match=r"cannot convert DNA\(\[2, 1, 2\]\).*'a'.*\[0, 1\]"):
        to_pyglove_dna(mx.DNA([2, 1, 2]), pg_spec)
    with pytest.raises(
        ValueError, match=r"too short for this space: no value for decision 'c\[1\]'"
    ):
        to_pyglove_dna(mx.DNA([0, 1]), pg_spec)
    with pytest.raises(ValueError, match=r"picks \[1, 1\] .* needs distinct picks"):
        to_pyglove_dna(mx.DNA([0, 1, 1]), pg_spec)
    with pytest.raises(
        TypeError, match=r"needs a PyGlove DNA \(pg.DNA\), but got DNA\(\[0, 1, 2\]\)"
    ):
        from_pyglove_dna(mx.DNA([0, 1, 2]), spec)
    with pytest.raises(TypeError, match=r"needs a morphax DNASpec or a PyGlove DNASpec"):
        from_pyglove_dna(pg.DNA([0, 1, 2]), None)
    with pytest.raises(ValueError, match=r"does not fit .* 3 at position 0 for decision 'a'"):
        from_pyglove_dna(pg.DNA([3, [0, 1]]), spec)
    with pytest.raises(
        ValueError, match=r"does not fit .* too short: no value for decision 'c\[0\]'"
    ):
        from_pyglove_dna(pg.DNA(0), spec)
    with pytest.raises(ValueError, match=r"\[2\] are left over"):
        from_pyglove_dna(pg.DNA([0, [0, 1], 2]), spec)
    with pytest.raises(ValueError, match=r"'abc' at position 0 for decision 'a'"):
        from_pyglove_dna(pg.DNA("abc"), spec)
    with pytest.raises(ValueError, match=r"picks \[1, 1\] .* needs distinct picks"):
        from_pyglove_dna(pg.DNA([0, [1, 1]]), spec)
    # The right values in the wrong tree: (1, 0) is "candidate 1, then its b=0".
    assert from_pyglove_dna(pg.DNA([(1, 0), [0, 1]]), spec) == mx.DNA([1, 0, 0, 1])
    with pytest.raises(
        ValueError, match=r"not its tree shape \(expected DNA\(\[\(1, 0\), \[0, 1\]\]\)"
    ):
        from_pyglove_dna(pg.DNA([1, 0, [0, 1]]), spec)


def test_bad_programs() -> None:
    with pytest.raises(ValueError, match=r"floatv at 'lr' has scale 'rlog'"):
        from_pyglove(pg.Dict(lr=pg.floatv(0.1, 1.0, scale="rlog")))
    with pytest.raises(ValueError, match=r"floatv at 'x\[1\]' has the empty range \[1.0, 1.0\]"):
        from_pyglove({"x": [0, pg.floatv(1.0, 1.0)]})
    with pytest.raises(ValueError, match=r"choice at '<root>' filters .* with `where`"):
        from_pyglove(pg.hyper.OneOf([1, pg.oneof([2, 3])], where=lambda h: True))
    with pytest.raises(TypeError, match=r"hyper-value at 'e'.*equivalents of pg.oneof"):
        from_pyglove(pg.Dict(e=pg.evolve(pg.Dict(x=1), lambda k, v, p: v)))


def test_importing_morphax_does_not_import_pyglove() -> None:
    code = "import sys, morphax.interop; assert 'pyglove' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
