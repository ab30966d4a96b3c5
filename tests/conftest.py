"""Shared fixtures and hypothesis strategies for morphax tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local Ray for the session's Ray tests (they share an xdist group):
    2 CPUs, no dashboard, its files under the session's tmp dir. Its GCS
    address, for driver subprocesses that join it."""
    ray = pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'morphax[ray]'")
    temp = tmp_path_factory.mktemp("ray")
    if len(str(temp)) > 60:  # Ray's socket paths under it must stay under 108 bytes
        temp = Path(tempfile.mkdtemp(prefix="mxray"))
    info = ray.init(
        num_cpus=2, include_dashboard=False, _temp_dir=str(temp), logging_level="WARNING"
    )
    try:
        yield info.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--dist loadgroup` on pytest 9: xdist (3.8) suffixes a grouped test's
    node id with `@group` by setting `item._nodeid`, which pytest 9 no longer
    reads; set the id it reads, so that the Ray tests share one worker."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        marks = [
            m.args[0] if m.args else m.kwargs.get("name") for m in item.iter_markers("xdist_group")
        ]
        if marks and "@" not in item.nodeid and hasattr(item, "_id"):
            from _pytest.nodeid import coerce_node_id

            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(map(str, marks)))}")
