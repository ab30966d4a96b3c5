"""Define-by-run spaces: tracing, conditional decisions, children, resolvers."""

from __future__ import annotations

import itertools
import math

import pytest

import morphax as mx


def cell(x: float) -> float:
    op = mx.oneof(["add", "mul", "pow"], name="op")
    if op == "mul":
        x *= mx.oneof([2, 3], name="factor")
    elif op == "pow":
        x **= mx.intv(2, 3, name="exp")
    else:
        x += mx.floatv(0.0, 1.0, name="shift")
    return x * mx.oneof([1, -1], name="sign")


def test_trace_finds_conditional_decisions() -> None:
    space = mx.trace(cell, 2.0)
    spec = space.spec
    assert [(p.id, p.parent, p.parent_value) for p in spec.columns] == [
        ("op", -1, -1),
        ("shift", 0, 0),
        ("factor", 0, 1),
        ("exp", 0, 2),
        ("sign", -1, -1),
    ]
    assert spec.space_size == float("inf")
    child = mx.materialize(space, mx.DNA([1, 1, 1]))  # mul, factor 3, sign -1
    assert child(2.0) == -6.0
    assert mx.materialize(space, mx.DNA([2, 3, 0]))(2.0) == 8.0
    assert mx.materialize(space, mx.DNA([0, 0.25, 0]))(2.0) == 2.25


def test_depth_as_an_int_decision() -> None:
    def net(x: int) -> int:
        for i in range(mx.intv(1, 3, name="depth")):
            x = x * mx.oneof([1, 2, 3], name=f"layer{i}")
        return x

    space = mx.trace(net, 1)
    assert space.spec.space_size == 3 + 9 + 27
    values = [mx.materialize(space, d)(1) for d in space.spec.iter_dna()]
    expected = [
        math.prod(combo)
        for depth in (1, 2, 3)
        for combo in itertools.product((1, 2, 3), repeat=depth)
    ]
    assert sorted(values) == sorted(expected)


def test_anonymous_decisions_are_named_by_call_site() -> None:
    def fn() -> list[int]:
        return [mx.oneof([1, 2]) for _ in range(3)]

    spec = mx.trace(fn).spec
    ids = [p.id for p in spec.columns]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(
        i.startswith("test_anonymous_decisions_are_named_by_call_site.<locals>.fn") for i in ids
    )
    assert ids[0].endswith("#0") and ids[2].endswith("#2")
    assert mx.materialize(mx.trace(fn), mx.DNA([1, 0, 1]))() == [2, 1, 2]


def test_named_decisions_are_shared_in_define_by_run() -> None:
    def fn() -> tuple[int, int]:
        return mx.oneof([8, 16], name="w"), mx.oneof([8, 16], name="w")

    space = mx.trace(fn)
    assert len(space.spec) == 1
    assert mx.materialize(space, mx.DNA([1]))() == (16, 16)


def test_manyof_and_floats_define_by_run() -> None:
    def fn() -> tuple[list[str], float]:
        return mx.manyof(2, ["a", "b", "c"], sorted=True, name="ops"), mx.floatv(
            1e-3, 1.0, scale="log", name="lr"
        )

    space = mx.trace(fn)
    assert [p.id for p in space.spec.columns] == ["ops[0]", "ops[1]", "lr"]
    assert mx.materialize(space, mx.DNA([0, 2, 0.01]))() == (["a", "c"], 0.01)
    children = list(mx.random_sample(space, 5, seed=0))
    assert all(isinstance(c, mx.DynamicChild) for c in children)


def test_dynamic_child_is_a_hashable_value() -> None:
    space = mx.trace(cell, 1.0)
    a = mx.materialize(space, mx.DNA([1, 0, 0]))
    b = mx.materialize(space, mx.DNA([1, 0, 0]))
    c = mx.materialize(space, mx.DNA([1, 1, 0]))
    assert a == b and hash(a) == hash(b) and a != c
    assert mx.encode(space, c) == mx.DNA([1, 1, 0])
    assert "DynamicChild(cell" in repr(a)
    with pytest.raises(ValueError, match="encodes only the children it materialized"):
        mx.encode(space, cell)


def test_child_refuses_decisions_the_trace_did_not_see() -> None:
    def fn() -> int:
        a = mx.oneof([0, 1], name="a")
        b = mx.oneof([0, 1], name="b")
        if a and b:  # depends on a combination of two choices
            return mx.oneof([5, 6], name="c")
        return 0

    space = mx.trace(fn)
    assert "c" not in [p.id for p in space.spec.columns]
    with pytest.raises(
        ValueError, match="decision 'c' .* was met while running the child, but it is not active"
    ):
        mx.materialize(space, mx.DNA([1, 1]))()


def test_bad_dna_for_a_dynamic_space() -> None:
    space = mx.trace(cell, 1.0)
    with pytest.raises(ValueError, match="for decision 'op', which needs a candidate index in"):
        mx.materialize(space, mx.DNA([7, 0]))


def test_custom_resolver_plugs_in_without_touching_user_code() -> None:
    class Last:
        def resolve(self, hyper: mx.HyperValue) -> object:
            if isinstance(hyper, mx.OneOf):
                return hyper.candidates[-1]
            if isinstance(hyper, mx.IntV | mx.FloatV):
                return hyper.high
            raise NotImplementedError

    with mx.resolving(Last()):
        assert mx.current_resolver() is not None
        assert cell(2.0) == -8.0  # pow, exp=3, sign -1
    assert mx.current_resolver() is None
    assert isinstance(mx.oneof([1, 2]), mx.OneOf)  # space mode again
