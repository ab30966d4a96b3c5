"""Shared fixtures and hypothesis strategies for morphax tests."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import morphax as mx

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

_leaf_values = st.one_of(
    st.integers(-5, 100), st.sampled_from(["relu", "gelu", "tanh", "id"]), st.booleans(), st.none()
)


def _hyper(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
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


def _programs(depth: int) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(_leaf_values, _hyper(_leaf_values)),
        lambda children: st.one_of(
            _hyper(children),
            st.lists(children, min_size=1, max_size=3),
            st.dictionaries(
                st.sampled_from(["a", "b", "c", "w"]), children, min_size=1, max_size=3
            ),
        ),
        max_leaves=depth,
    )


def has_hyper(program: Any) -> bool:
    return bool(mx.query(program, where=mx.HyperValue))


#: Random programs with at least one hyper-value: static search spaces.
spaces = _programs(8).filter(has_hyper)
