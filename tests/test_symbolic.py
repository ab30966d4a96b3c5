"""Symbolic programs: calls, walking, rebind, clone, equality, repr, query, build."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

import morphax as mx

Dense = mx.symbolic(nn.Dense)


@mx.symbolic
def make_optimizer(learning_rate: float, kind: str = "adam", momentum: float = 0.9):
    if kind == "adam":
        return optax.adam(learning_rate)
    return optax.sgd(learning_rate, momentum=momentum)


@dataclasses.dataclass
class Config:
    depth: int
    widths: list
    name: str = "net"


def test_symbolic_records_and_builds_later() -> None:
    calls = []

    @mx.symbolic
    def f(a: int, b: int = 2) -> int:
        calls.append((a, b))
        return a + b

    program = f(1, b=5)
    assert isinstance(program, mx.Call) and calls == []
    assert program.args == {"a": 1, "b": 5} and program.a == 1
    assert program.build() == 6 and calls == [(1, 5)]
    assert f(1).b == 2  # defaults read through
    assert mx.symbolic(f) is f and mx.symbolic(nn.Dense) is Dense


def test_wrapping_classes_and_functions_you_do_not_own() -> None:
    layer = Dense(features=4).build()
    assert isinstance(layer, nn.Dense) and layer.features == 4
    opt = mx.symbolic(optax.adam)(learning_rate=1e-3).build()
    assert isinstance(opt, optax.GradientTransformation)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    updates, _ = opt.update(jax.tree.map(jnp.ones_like, params), state)
    assert updates["w"].shape == (3,)


def test_nested_programs_build_bottom_up() -> None:
    program = {"opt": make_optimizer(0.1, kind="sgd"), "layers": [Dense(2), Dense(3)]}
    built = mx.build(program)
    assert isinstance(built["opt"], optax.GradientTransformation)
    assert [m.features for m in built["layers"]] == [2, 3]


def test_bad_call_arguments_name_the_callable() -> None:
    with pytest.raises(TypeError, match="bad arguments for Dense"):
        Dense(features=3, nonsense=1)
    with pytest.raises(TypeError, match="needs a class or function"):
        mx.symbolic(3)  # type: ignore[arg-type]


def test_rebind_in_place_by_path() -> None:
    program = {"model": [Dense(8), Dense(16)], "cfg": Config(depth=2, widths=[1, 2])}
    same = mx.rebind(program, {"model[1].features": 32, "cfg.widths[0]": 7, "cfg.depth": 3})
    assert same is program
    assert program["model"][1].features == 32
    assert program["cfg"].widths == [7, 2] and program["cfg"].depth == 3
    call = make_optimizer(0.1)
    assert call.rebind({"kind": "sgd"}) is call and call.kind == "sgd"


def test_rebind_through_immutable_nodes_rebuilds_them() -> None:
    module = nn.Sequential([nn.Dense(4), nn.relu])
    holder = {"net": module, "pair": (1, 2)}
    mx.rebind(holder, {"net.layers[0].features": 9, "pair[1]": 5})
    assert holder["pair"] == (1, 5)
    assert holder["net"].layers[0].features == 9
    dense = nn.Dense(3)
    new = mx.rebind(dense, {"features": 5})
    assert new.features == 5 and dense.features == 3  # Flax modules stay immutable


def test_rebind_rejects_missing_paths_and_wrong_types() -> None:
    program = {"model": [Dense(8)]}
    with pytest.raises(
        ValueError, match=r"path 'model\[0\]\.feature' does not exist.*no key 'feature'"
    ):
        mx.rebind(program, {"model[0].feature": 3})
    with pytest.raises(ValueError, match=r"path 'model\[3\]' does not exist"):
        mx.rebind(program, {"model[3]": 3})
    with pytest.raises(ValueError, match="malformed path"):
        mx.rebind(program, {"model..x": 3})
    with pytest.raises(
        TypeError, match=r"cannot rebind 'model\[0\]\.features' to 'wide'.*type int"
    ):
        mx.rebind(program, {"model[0].features": "wide"})
    # Hyper-values are always accepted: they make the program a space.
    mx.rebind(program, {"model[0].features": mx.oneof([8, 16])})
    assert mx.dna_spec(program).space_size == 2


def test_clone_equality_and_hash() -> None:
    a = {"layers": [Dense(mx.oneof([1, 2])), Dense(3)], "cfg": Config(1, [2])}
    b = mx.clone(a)
    assert a == b and mx.Call.__hash__(a["layers"][0]) == hash(b["layers"][0])
    assert b["layers"] is not a["layers"] and b["cfg"] is not a["cfg"]
    b["layers"][1].rebind({"features": 4})
    assert a != b and a["layers"][1].features == 3
    assert Dense(3) == Dense(features=3) and hash(Dense(3)) == hash(Dense(features=3))
    assert Dense(3) != mx.symbolic(nn.Conv)(3, kernel_size=(3,))
    assert mx.oneof([1, 2]) == mx.oneof([1, 2]) and mx.oneof([1, 2]) != mx.oneof([1, 2], name="x")


def test_repr_shows_the_program() -> None:
    program = Dense(features=mx.oneof([16, 32], name="width"))
    assert repr(program) == "Dense(features=oneof([16, 32], name='width'))"
    assert repr(mx.floatv(0.1, 1.0, scale="log")) == "floatv(0.1, 1.0, scale='log')"
    assert repr(mx.manyof(2, [1, 2, 3], sorted=True)) == "manyof(2, [1, 2, 3], sorted=True)"
    big = [Dense(features=mx.oneof(list(range(20)))) for _ in range(3)]
    text = repr(mx.Call(make_optimizer, {"learning_rate": big}))
    assert "\n" in text and text.count("Dense(") == 3


def test_query_by_path_type_and_value() -> None:
    space = {"layers": [Dense(mx.oneof([1, 2])), Dense(3)], "lr": mx.floatv(0.1, 1.0)}
    assert list(mx.query(space, where=mx.OneOf)) == ["layers[0].features"]
    assert list(mx.query(space, where=nn.Dense)) == ["layers[0]", "layers[1]"]
    assert list(mx.query(space, r"layers\[\d\]\.features", value=3)) == ["layers[1].features"]
    assert list(mx.query(space, where=lambda n: isinstance(n, mx.FloatV))) == ["lr"]
    assert mx.get(space, "layers[1].features") == 3
    with pytest.raises(ValueError, match="does not exist"):
        mx.get(space, "layers[5]")


def test_flax_modules_and_dataclasses_are_walked_through_fields() -> None:
    space = nn.Sequential([nn.Dense(mx.oneof([4, 8])), mx.oneof([nn.relu, nn.tanh])])
    assert list(mx.query(space, where=mx.HyperValue)) == [
        "layers[0].features",
        "layers[1]",
    ]
    child = mx.materialize(space, mx.DNA([1, 0]))
    assert isinstance(child, nn.Sequential) and child.layers[0].features == 8
    assert child.layers[1] is nn.relu
    cfg = Config(depth=mx.intv(1, 3), widths=[mx.oneof([8, 16])])
    assert mx.materialize(cfg, mx.DNA([2, 1])) == Config(2, [16])
    paths = [mx.format_path(keys) for keys, _ in mx.traverse(cfg)]
    assert paths[:2] == ["", "depth"] and "widths[0]" in paths and "name" not in paths


def test_key_paths_round_trip() -> None:
    keys = ("a", 2, "b c", "d")
    assert mx.format_path(keys) == "a[2]['b c'].d"
    assert mx.parse_path("a[2]['b c'].d") == keys


def test_rebind_inside_hyper_values() -> None:
    space = {"op": mx.oneof(["skip", {"conv": mx.oneof([3, 5])}])}
    mx.rebind(space, {"op.candidates[1].conv": mx.oneof([3, 5, 7])})
    assert mx.dna_spec(space).space_size == 4
    mx.rebind(space, {"op.name": "op"})
    assert mx.dna_spec(space).columns[0].name == "op"
    with pytest.raises(
        ValueError, match=r"path 'op\.cands' does not exist: OneOf at 'op' has no key 'cands'"
    ):
        mx.rebind(space, {"op.cands": []})
