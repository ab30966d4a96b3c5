"""Bad input: each error names the rule, the value and where it is."""

from __future__ import annotations

import flax.linen as nn
import pytest

import morphax as mx


def test_oneof_needs_candidates() -> None:
    with pytest.raises(
        ValueError,
        match=r"`oneof` needs at least one candidate, but got an empty list \(at test_oneof",
    ):
        mx.oneof([])
    with pytest.raises(TypeError, match="takes a list of candidates, but got 'abc'"):
        mx.oneof("abc")  # type: ignore[arg-type]


def test_floatv_bounds_and_scale() -> None:
    with pytest.raises(ValueError, match=r"`floatv` needs low < high, but got low=3, high=1 \(at "):
        mx.floatv(3, 1)
    with pytest.raises(ValueError, match=r"scale='log' needs low > 0, but got low=0, high=1"):
        mx.floatv(0, 1, scale="log")
    with pytest.raises(
        ValueError, match=r"scale must be one of \('linear', 'log'\), but got scale='exp'"
    ):
        mx.floatv(1, 2, scale="exp")
    with pytest.raises(TypeError, match="`low` must be a real number, but got '0'"):
        mx.floatv("0", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`high` must be finite, but got inf"):
        mx.floatv(0, float("inf"))


def test_manyof_rules() -> None:
    with pytest.raises(
        ValueError,
        match=r"distinct=True needs k <= len\(candidates\), but got k=4 with 3 candidates \[1, 2, 3\]",
    ):
        mx.manyof(4, [1, 2, 3])
    assert mx.dna_spec(mx.manyof(4, [1, 2, 3], distinct=False)).space_size == 81
    with pytest.raises(ValueError, match="needs k >= 1, but got k=0"):
        mx.manyof(0, [1, 2])


def test_intv_bounds() -> None:
    with pytest.raises(ValueError, match="`intv` needs low <= high, but got low=5, high=1"):
        mx.intv(5, 1)
    with pytest.raises(TypeError, match="needs int bounds, but got low=0.5"):
        mx.intv(0.5, 3)  # type: ignore[arg-type]


def test_one_name_for_two_different_candidate_lists() -> None:
    space = {"a": mx.oneof([1, 2], name="width"), "b": [mx.oneof([1, 3], name="width")]}
    with pytest.raises(
        ValueError,
        match=r"decision name 'width' is used for two different hyper-values: oneof\(\[1, 2\], name='width'\) at 'a' and oneof\(\[1, 3\], name='width'\) at 'b\[0\]'",
    ):
        mx.dna_spec(space)

    def fn() -> None:
        mx.oneof([1, 2], name="width")
        mx.oneof([4, 5], name="width")

    with pytest.raises(
        ValueError, match="decision name 'width' is used for two different hyper-values"
    ):
        mx.trace(fn)


def test_shared_name_across_conditions_is_refused() -> None:
    space = {"a": mx.oneof([1, {"x": mx.oneof([1, 2], name="s")}]), "b": mx.oneof([1, 2], name="s")}
    with pytest.raises(ValueError, match="under different conditional choices"):
        mx.dna_spec(space)


def test_shared_name_is_one_decision() -> None:
    space = {"a": mx.oneof([16, 32], name="w"), "b": [mx.oneof([16, 32], name="w")]}
    spec = mx.dna_spec(space)
    assert len(spec) == 1 and spec.space_size == 2
    assert mx.materialize(space, mx.DNA([1])) == {"a": 32, "b": [32]}
    with pytest.raises(ValueError, match="for the shared decision 'w'"):
        mx.encode(space, {"a": 32, "b": [16]})


def test_dna_out_of_range_or_wrong_length() -> None:
    space = {"act": mx.oneof(["relu", "gelu"]), "lr": mx.floatv(0.1, 1.0), "n": mx.intv(1, 3)}
    with pytest.raises(
        ValueError,
        match=r"DNA value 2 for decision 'act' is out of range: it needs a candidate index in \[0, 1\]",
    ):
        mx.materialize(space, mx.DNA([2, 0.5, 1]))
    with pytest.raises(
        ValueError,
        match=r"DNA value 1.5 for decision 'lr' is out of range: it needs a float in \[0.1, 1.0\]",
    ):
        mx.materialize(space, mx.DNA([0, 1.5, 1]))
    with pytest.raises(
        ValueError, match=r"value 4 at position 2 for decision 'n', which needs an int in \[1, 3\]"
    ):
        mx.dna_spec(space).validate(mx.DNA([0, 0.5, 4]))
    with pytest.raises(
        ValueError, match=r"DNA\(\[0\]\) is too short for this space: no value for decision 'lr'"
    ):
        mx.materialize(space, mx.DNA([0]))
    with pytest.raises(
        ValueError,
        match=r"is too long for this space: it has 4 values but the decisions it picks use 3",
    ):
        mx.materialize(space, mx.DNA([0, 0.5, 1, 1]))
    with pytest.raises(
        TypeError, match="DNA values must be ints or floats, but got 'x' at position 1"
    ):
        mx.DNA([0, "x"])


def test_manyof_dna_must_respect_distinct_and_sorted() -> None:
    space = mx.manyof(2, [1, 2, 3], sorted=True)
    with pytest.raises(
        ValueError, match=r"picks \[1, 1\] for manyof '<root>', which needs distinct picks"
    ):
        mx.materialize(space, mx.DNA([1, 1]))
    with pytest.raises(
        ValueError, match=r"picks \[2, 0\] for manyof '<root>', which needs sorted picks"
    ):
        mx.materialize(space, mx.DNA([2, 0]))


def test_dna_is_checked_by_structure_wherever_it_was_made() -> None:
    # Issue 7 bug 3: a DNA is a plain value, so two equal DNA behave alike; a
    # DNA from one space fits another of the same structure, and a DNA that
    # does not fit is refused by the decision it breaks.
    a = {"x": mx.oneof([1, 2]), "y": mx.oneof([1, 2])}
    b = {"u": mx.oneof([1, 2]), "v": mx.oneof([1, 2])}
    dna = mx.dna_spec(a).random_dna(0)
    assert mx.materialize(b, dna) == mx.materialize(b, mx.DNA(dna.values))
    with pytest.raises(ValueError, match=r"decision 'w' is out of range: it needs a candidate"):
        mx.materialize({"w": mx.oneof([1])}, mx.DNA([1]))


def test_materialize_needs_a_space() -> None:
    with pytest.raises(
        TypeError, match=r"expected a search space .* but got 42 \(int\), which has no hyper-values"
    ):
        mx.materialize(42, mx.DNA([]))
    with pytest.raises(TypeError, match="expected a search space"):
        mx.materialize(nn.Dense(3), mx.DNA([0]))
    with pytest.raises(TypeError, match="expected a DNA"):
        mx.materialize(mx.oneof([1, 2]), "0")  # type: ignore[arg-type]


def test_encode_names_where_the_program_differs() -> None:
    space = {"layers": [nn.Dense(mx.oneof([4, 8])), nn.Dense(2)]}
    with pytest.raises(
        ValueError,
        match=r"has 5 at 'layers\[0\]\.features', which matches none of the candidates \[4, 8\]",
    ):
        mx.encode(space, {"layers": [nn.Dense(5), nn.Dense(2)]})
    with pytest.raises(ValueError, match=r"at 'layers\[1\]'"):
        mx.encode(space, {"layers": [nn.Dense(4), nn.Dense(3)]})


def test_from_json_unregistered_or_malformed() -> None:
    with pytest.raises(
        ValueError,
        match="unknown name 'my_pkg.Evil': it is not registered, and from_json imports nothing",
    ):
        mx.from_json('{"$type": "call", "fn": "my_pkg.Evil", "args": {}}')
    with pytest.raises(ValueError, match=r"malformed JSON"):
        mx.from_json("{not json")
    with pytest.raises(
        ValueError, match=r"malformed morphax JSON at \$\.a: '\$type' must be one of"
    ):
        mx.from_json('{"a": {"$type": "pickle", "data": "..."}}')
    with pytest.raises(
        ValueError, match=r"malformed morphax JSON at \$: 'oneof' needs the key 'candidates'"
    ):
        mx.from_json('{"$type": "oneof"}')
    with pytest.raises(ValueError, match=r"at \$\.x: floatv needs low < high"):
        mx.from_json('{"x": {"$type": "floatv", "low": 2, "high": 1, "scale": "linear"}}')
    with pytest.raises(ValueError, match=r"flax\.linen\.Dense has no arguments \['bogus'\]"):
        mx.from_json('{"$type": "call", "fn": "flax.linen.Dense", "args": {"bogus": 1}}')
    with pytest.raises(TypeError, match="takes a JSON string"):
        mx.from_json(3)  # type: ignore[arg-type]


def test_to_json_of_unregistered_objects() -> None:
    class Unknown:
        pass

    with pytest.raises(
        TypeError, match=r"cannot serialize .*Unknown.* at \$\.a\[0\]: it is not registered"
    ):
        mx.to_json({"a": [Unknown]})
    with pytest.raises(TypeError, match=r"cannot serialize <object .*> \(object\) at \$"):
        mx.to_json(object())


def test_search_space_functions_check_arguments() -> None:
    space = mx.oneof([1, 2])
    with pytest.raises(ValueError, match="`num` must be a non-negative int"):
        list(mx.random_sample(space, -1))
    with pytest.raises(ValueError, match="cannot enumerate a space with float decisions"):
        list(mx.iter(mx.floatv(0.0, 1.0)))
    with pytest.raises(TypeError, match="mx.trace needs a callable"):
        mx.trace(3)  # type: ignore[arg-type]
