"""Hypothesis strategies of random morphax programs and search spaces.

This module needs `hypothesis` (installed with `morphax[test]`); the rest of
`morphax.testing` does not.

Examples:
    >>> from hypothesis import given, settings
    >>> from morphax.testing import check_space_laws
    >>> from morphax.testing.strategies import spaces
    >>> @settings(max_examples=10)
    ... @given(spaces())
    ... def test_my_laws(space):
    ...     check_space_laws(space, seeds=[0])
    >>> test_my_laws()
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import morphax as mx

__all__ = ["has_hyper", "hyper_values", "leaf_values", "programs", "spaces"]


def leaf_values() -> st.SearchStrategy[Any]:
    """Plain values a program holds: small ints, activation names, bools, None.

    Examples:
        >>> from hypothesis import given, settings
        >>> from morphax.testing.strategies import leaf_values
        >>> @settings(max_examples=10)
        ... @given(leaf_values())
        ... def test_leaves(value):
        ...     assert value is None or isinstance(value, int | str)
        >>> test_leaves()
    """
    return st.one_of(
        st.integers(-5, 100),
        st.sampled_from(["relu", "gelu", "tanh", "id"]),
        st.booleans(),
        st.none(),
    )


def hyper_values(children: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """Random valid hyper-values: `oneof` over distinct ints or over dicts of
    `children` (conditional decisions), linear and log `floatv`, `intv`, and
    `manyof` with every `distinct`/`sorted` combination.

    Args:
        children: the values inside conditional candidates; by default
            :func:`leaf_values`.

    Examples:
        >>> import morphax as mx
        >>> from hypothesis import given, settings
        >>> from morphax.testing.strategies import hyper_values
        >>> @settings(max_examples=10)
        ... @given(hyper_values())
        ... def test_hyper(value):
        ...     assert isinstance(value, mx.HyperValue)
        >>> test_hyper()
    """
    children = leaf_values() if children is None else children
    distinct_cands = st.lists(st.integers(0, 1000), min_size=1, max_size=4, unique=True)
    cond_cands = st.lists(children, min_size=1, max_size=3).map(
        lambda cs: [{"i": i, "sub": c} for i, c in enumerate(cs)]
    )
    floats = st.tuples(st.floats(-10, 10), st.floats(0.01, 10)).map(
        lambda t: mx.floatv(t[0], t[0] + t[1])
    )
    logs = st.tuples(st.floats(1e-5, 1.0), st.floats(1.5, 100)).map(
        lambda t: mx.floatv(t[0], t[0] * t[1], scale="log")
    )
    ints = st.tuples(st.integers(-3, 3), st.integers(0, 4)).map(
        lambda t: mx.intv(t[0], t[0] + t[1])
    )
    manyofs = st.tuples(distinct_cands, st.booleans(), st.booleans(), st.integers(1, 3)).map(
        lambda t: mx.manyof(
            min(t[3], len(t[0])) if t[1] else t[3], t[0], distinct=t[1], sorted=t[2]
        )
    )
    return st.one_of(
        distinct_cands.map(mx.oneof), cond_cands.map(mx.oneof), floats, logs, ints, manyofs
    )


def programs(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Random programs: nested lists and dicts of plain values and
    hyper-values (possibly none of them).

    Args:
        max_leaves: bounds the size of a program.

    Examples:
        >>> import morphax as mx
        >>> from hypothesis import given, settings
        >>> from morphax.testing.strategies import programs
        >>> @settings(max_examples=10)
        ... @given(programs(max_leaves=4))
        ... def test_json(program):
        ...     assert mx.from_json(mx.to_json(program)) == program
        >>> test_json()
    """
    return st.recursive(
        st.one_of(leaf_values(), hyper_values(leaf_values())),
        lambda children: st.one_of(
            hyper_values(children),
            st.lists(children, min_size=1, max_size=3),
            st.dictionaries(
                st.sampled_from(["a", "b", "c", "w"]), children, min_size=1, max_size=3
            ),
        ),
        max_leaves=max_leaves,
    )


def has_hyper(program: Any) -> bool:
    """Whether `program` holds at least one hyper-value (is a search space).

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing.strategies import has_hyper
        >>> has_hyper([1, mx.oneof([2, 3])]), has_hyper([1, 2])
        (True, False)
    """
    return bool(mx.query(program, where=mx.HyperValue))


def spaces(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Random static search spaces: :func:`programs` with at least one
    hyper-value.

    Examples:
        >>> import morphax as mx
        >>> from hypothesis import given, settings
        >>> from morphax.testing.strategies import spaces
        >>> @settings(max_examples=10)
        ... @given(spaces())
        ... def test_has_decisions(space):
        ...     assert len(mx.dna_spec(space)) >= 1
        >>> test_has_decisions()
    """
    return programs(max_leaves=max_leaves).filter(has_hyper)
