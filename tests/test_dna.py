"""DNASpec and DNA: order, sizes, array form, JSON, and round-trip properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import spaces
from hypothesis import given
from hypothesis import strategies as st

import morphax as mx


def test_spec_order_ids_and_conditionals() -> None:
    space = {
        "conv": mx.oneof(["skip", {"k": mx.oneof([3, 5]), "w": mx.floatv(0.1, 1.0)}]),
        "picks": mx.manyof(2, ["a", {"z": mx.intv(1, 3)}, "c"]),
        "lr": mx.floatv(1e-4, 1e-1, scale="log", name="lr"),
    }
    spec = mx.dna_spec(space)
    assert [p.id for p in spec.columns] == [
        "conv",
        "conv[=1].k",
        "conv[=1].w",
        "picks[0]",
        "picks[0][=1].z",
        "picks[1]",
        "picks[1][=1].z",
        "lr",
    ]
    assert spec["conv[=1].k"].parent == 0 and spec["conv[=1].k"].parent_value == 1
    assert spec["lr"].location == "lr" and spec["lr"].name == "lr"
    assert len(spec) == 8
    assert spec.space_size == math.inf
    assert "if conv=1" in repr(spec)


@pytest.mark.parametrize(
    ("space", "size"),
    [
        (mx.oneof([1, 2, 3]), 3),
        ([mx.oneof([1, 2]), mx.oneof([1, 2, 3])], 6),
        (mx.manyof(2, [1, 2, 3]), 6),
        (mx.manyof(2, [1, 2, 3], sorted=True), 3),
        (mx.manyof(2, [1, 2, 3], distinct=False), 9),
        (mx.manyof(2, [1, 2, 3], distinct=False, sorted=True), 6),
        (mx.intv(-2, 2), 5),
        (mx.oneof([1, {"x": mx.oneof([1, 2, 3])}]), 4),
        (mx.manyof(2, [1, {"x": mx.oneof([1, 2])}, 3], sorted=True), 5),
        (mx.manyof(3, list(range(30)), sorted=True), math.comb(30, 3)),
        ([mx.oneof(list(range(10))) for _ in range(30)], 10**30),
        (mx.floatv(0.0, 1.0), math.inf),
    ],
)
def test_space_size_is_exact(space: object, size: int | float) -> None:
    spec = mx.dna_spec(space)
    assert spec.space_size == size
    if spec.is_finite and size < 2000:
        dnas = list(spec.iter_dna())
        assert len(dnas) == len(set(dnas)) == size
        children = [mx.materialize(space, d) for d in dnas]
        assert len({mx.to_json(c) for c in children}) == size


def test_dna_is_an_immutable_hashable_value() -> None:
    a, b = mx.DNA([1, 0.5]), mx.DNA((1, 0.5))
    assert a == b and hash(a) == hash(b) and {a, b} == {a}
    with pytest.raises(AttributeError, match="immutable"):
        a.values = (2,)  # type: ignore[misc]
    assert repr(a) == "DNA([1, 0.5])"
    assert a != mx.DNA([0, 0.5])


def test_random_dna_is_seeded_and_accepts_a_generator() -> None:
    spec = mx.dna_spec([mx.oneof(list(range(10))) for _ in range(5)] + [mx.floatv(0.0, 1.0)])
    assert spec.random_dna(3) == spec.random_dna(3)
    assert len({spec.random_dna(s) for s in range(20)}) > 15
    rng = np.random.default_rng(0)
    assert spec.random_dna(rng) != spec.random_dna(rng)
    with pytest.raises(TypeError, match="numpy Generator or an int seed"):
        spec.random_dna("seed")  # type: ignore[arg-type]


def test_random_arrays_shapes_masks_and_validity() -> None:
    space = {
        "op": mx.oneof(["skip", {"k": mx.oneof([3, 5, 7])}]),
        "set": mx.manyof(3, list(range(6)), sorted=True),
        "lr": mx.floatv(1e-3, 1.0, scale="log"),
        "n": mx.intv(2, 4),
    }
    spec = mx.dna_spec(space)
    arr = spec.random_arrays(2000, 0)
    assert arr.indices.dtype == np.int32 and arr.values.dtype == np.float32
    assert arr.mask.dtype == bool and arr.indices.shape == (2000, len(spec))
    k_col = spec["op[=1].k"].column
    assert np.array_equal(arr.mask[:, k_col], arr.indices[:, 0] == 1)
    picks = arr.indices[:, [spec["set[0]"].column, spec["set[1]"].column, spec["set[2]"].column]]
    assert (np.diff(picks, axis=1) > 0).all()  # distinct and sorted
    lr = arr.values[:, spec["lr"].column]
    assert lr.min() >= 1e-3 and lr.max() <= 1.0 and np.median(lr) < 0.1  # log-uniform
    n = arr.indices[:, spec["n"].column]
    assert set(n.tolist()) == {2, 3, 4}
    dnas = spec.from_array(arr)
    assert len(dnas) == 2000
    assert spec.to_array(dnas).indices.tolist() == arr.indices.tolist()


def test_from_array_reads_arrays_without_a_mask() -> None:
    spec = mx.dna_spec({"op": mx.oneof(["a", {"k": mx.oneof([3, 5])}]), "b": mx.oneof([0, 1])})
    idx = np.array([[0, 1, 1], [1, 1, 0]], np.int32)  # column 1 inactive in row 0
    dnas = spec.from_array((idx, np.zeros_like(idx, np.float32)))
    assert dnas == [mx.DNA([0, 1]), mx.DNA([1, 1, 0])]
    with pytest.raises(ValueError, match=r"shape \[n\] or \[batch, n\] with n=3"):
        spec.from_array((np.zeros(4, np.int32), np.zeros(4, np.float32)))


@given(space=spaces, seed=st.integers(0, 2**31 - 1))
def test_dna_array_json_round_trips(space: object, seed: int) -> None:
    spec = mx.dna_spec(space)
    dna = spec.random_dna(seed)
    spec.validate(dna)
    assert spec.from_array(spec.to_array(dna)) == dna
    assert mx.from_json(mx.to_json(dna)) == dna
    batch = [dna, spec.random_dna(seed + 1)]
    assert spec.from_array(spec.to_array(batch)) == batch


@given(space=spaces, seed=st.integers(0, 2**31 - 1))
def test_encode_inverts_materialize(space: object, seed: int) -> None:
    compiled = mx.space(space)
    dna = compiled.spec.random_dna(seed)
    child = compiled.materialize(dna)
    assert not mx.query(child, where=mx.HyperValue)
    assert mx.encode(space, child) == dna
    assert mx.from_json(mx.to_json(child)) == child


@given(space=spaces, seed=st.integers(0, 2**31 - 1))
def test_random_arrays_decode_to_valid_dna(space: object, seed: int) -> None:
    spec = mx.dna_spec(space)
    arr = spec.random_arrays(8, seed)
    for row, dna in enumerate(spec.from_array(arr)):
        mx.materialize(space, dna)
        assert np.array_equal(spec.to_array(dna).mask, arr.mask[row])


def test_grid_order_is_lexicographic() -> None:
    space = [mx.oneof(["a", "b"]), mx.oneof([1, {"x": mx.oneof([True, False])}])]
    assert [d.values for d in mx.dna_spec(space).iter_dna()] == [
        (0, 0),
        (0, 1, 0),
        (0, 1, 1),
        (1, 0),
        (1, 1, 0),
        (1, 1, 1),
    ]
    assert list(mx.iter(space, num=2)) == [["a", 1], ["a", {"x": True}]]


def test_to_dict_names_active_decisions() -> None:
    space = {"a": mx.oneof([1, {"b": mx.floatv(0.0, 1.0)}]), "c": mx.manyof(2, [7, 8, 9])}
    spec = mx.dna_spec(space)
    assert spec.to_dict(mx.DNA([1, 0.5, 2, 0])) == {"a": 1, "a[=1].b": 0.5, "c": [2, 0]}


def test_spec_equality_follows_structure() -> None:
    a = mx.dna_spec({"x": mx.oneof([1, 2])})
    assert a == mx.dna_spec({"x": mx.oneof([1, 2])})
    assert a != mx.dna_spec({"x": mx.oneof([1, 3])})
    assert a != mx.dna_spec({"y": mx.oneof([1, 2])})
