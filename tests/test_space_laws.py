"""The shipped space laws (`morphax.testing`) on random spaces and programs,
and the invariants every hyper-value constructor keeps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import morphax as mx
from morphax import testing as mxt
from morphax.testing import strategies


@given(space=strategies.spaces(), seed=st.integers(0, 2**31 - 1))
def test_encode_inverts_materialize(space: Any, seed: int) -> None:
    mxt.check_encode_inverts_materialize(space, mx.dna_spec(space).random_dna(seed))


@given(space=strategies.spaces(), seed=st.integers(0, 2**31 - 1))
def test_materialize_inverts_encode_on_children(space: Any, seed: int) -> None:
    child = mx.materialize(space, mx.dna_spec(space).random_dna(seed))
    mxt.check_materialize_inverts_encode(space, child)


@given(space=strategies.spaces(), seed=st.integers(0, 2**31 - 1))
def test_dna_array_json_round_trips(space: Any, seed: int) -> None:
    mxt.check_dna_round_trips(space, mx.dna_spec(space).random_dna(seed))


@given(space=strategies.spaces(), seed=st.integers(0, 2**31 - 1))
def test_compiled_plan_and_decider_walk_agree(space: Any, seed: int) -> None:
    # Issue 7: one id scheme, so the two ways to make a child never disagree.
    mxt.check_deciders_agree(space, mx.dna_spec(space).random_dna(seed))


def test_decider_walk_of_a_manyof_of_one() -> None:
    space = {"m": mx.manyof(1, ["a", "b"])}
    mxt.check_deciders_agree(space, mx.DNA([1]))
    assert mx.dna_spec(space).to_dict(mx.DNA([1])) == {"m": [1]}
    traced = mx.trace(lambda: mx.manyof(1, ["a", "b"], name="m"))
    assert mx.materialize(traced, mx.DNA([1]))() == ["b"]


@given(program=strategies.programs())
def test_json_round_trip_of_random_programs(program: Any) -> None:
    mxt.check_json_round_trip(program)


@given(space=strategies.spaces(max_leaves=6))
def test_space_size_counts_the_enumeration(space: Any) -> None:
    mxt.check_space_size(space, max_size=500)


@given(space=strategies.spaces(max_leaves=4))
def test_all_laws_together(space: Any) -> None:
    mxt.check_space_laws(space, seeds=[0, 1], max_size=200)


@pytest.mark.parametrize("name", sorted(mxt.example_spaces()))
def test_example_spaces_keep_the_laws(name: str) -> None:
    mxt.check_space_laws(mxt.example_spaces()[name])


def test_laws_pass_on_the_errors_of_the_core() -> None:
    """A child that is not of the space, DNA that is not of its spec: the core's ValueError."""
    space = {"w": mx.oneof([8, 16])}
    with pytest.raises(ValueError, match=r"cannot encode the program"):
        mxt.check_materialize_inverts_encode(space, {"w": 16, "extra": 1})
    with pytest.raises(ValueError, match=r"DNA"):
        mxt.check_encode_inverts_materialize(space, mx.DNA([5]))


# ---------------------------------------------------------------------------
# Hyper-value constructors keep their invariants.


@given(lo=st.floats(-1e6, 1e6), gap=st.floats(0, 1e6))
def test_floatv_needs_low_below_high(lo: float, gap: float) -> None:
    with pytest.raises(ValueError, match="low < high"):
        mx.floatv(lo + gap, lo)


@given(lo=st.floats(-10, 0))
def test_log_floatv_needs_a_positive_low(lo: float) -> None:
    with pytest.raises(ValueError, match="log"):
        mx.floatv(lo, 1.0, scale="log")


@given(lo=st.integers(-100, 100), gap=st.integers(1, 100))
def test_intv_needs_low_at_most_high(lo: int, gap: int) -> None:
    with pytest.raises(ValueError, match="low <= high"):
        mx.intv(lo + gap, lo)


@given(k=st.integers(-5, 0))
def test_manyof_needs_a_positive_k(k: int) -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        mx.manyof(k, [1, 2, 3])


@given(n=st.integers(1, 5), extra=st.integers(1, 3))
def test_distinct_manyof_needs_enough_candidates(n: int, extra: int) -> None:
    with pytest.raises(ValueError, match="distinct"):
        mx.manyof(n + extra, list(range(n)))
    assert len(mx.dna_spec(mx.manyof(n + extra, list(range(n)), distinct=False))) == n + extra


def test_oneof_needs_candidates() -> None:
    with pytest.raises(ValueError, match="empty"):
        mx.oneof([])


REBINDS = {
    "floatv low >= high": (lambda: mx.floatv(0.0, 1.0), {"x.high": -1.0}),
    "log floatv low <= 0": (lambda: mx.floatv(0.1, 1.0, scale="log"), {"x.low": -1.0}),
    "intv low > high": (lambda: mx.intv(1, 4), {"x.low": 9}),
    "manyof k = 0": (lambda: mx.manyof(2, [1, 2, 3]), {"x.k": 0}),
    "distinct manyof k > candidates": (lambda: mx.manyof(2, [1, 2, 3]), {"x.k": 4}),
    "oneof without candidates": (lambda: mx.oneof([1, 2]), {"x.candidates": []}),
}


@pytest.mark.parametrize("case", REBINDS)
def test_rebind_keeps_hyper_value_invariants(case: str) -> None:
    """The constructor's rule still holds after `mx.rebind` of a field (issue 7 bug 2)."""
    make, update = REBINDS[case]
    program = {"x": make()}
    before = mx.clone(program)
    with pytest.raises(ValueError, match=r"cannot rebind 'x\.\w+' to .*: `\w+` .*needs"):
        mx.rebind(program, update)
    assert program == before  # nothing changed
