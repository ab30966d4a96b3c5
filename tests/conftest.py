"""Shared fixtures and hypothesis strategies for morphax tests."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from morphax.testing import strategies

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

has_hyper = strategies.has_hyper

#: Random programs with at least one hyper-value: static search spaces.
spaces = strategies.spaces(max_leaves=8)
