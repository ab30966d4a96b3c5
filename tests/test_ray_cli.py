"""`morphax search --workers N`: the children train on Ray, N at a time."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

import morphax as mx
from morphax import cli

pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'morphax[ray]'")
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.usefixtures("ray_cluster")]

FAST = ["--space", "cnn", "--algorithm", "random", "--epochs", "1", "--max-depth", "1"]
FAST += ["--widths", "4", "--limit-per-class", "20", "--batch-size", "32"]


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(argv)
    return code, out.getvalue()


@pytest.mark.slow
def test_search_with_workers_trains_on_ray_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    code, out = run(["search", *FAST, "--trials", "3", "--store", str(path), "--workers", "2"])
    assert code == 0, out
    trials = mx.load_study(path, "cnn-random-0").trials
    assert [t.status for t in trials] == ["completed"] * 3
    assert all(t.metrics and "test_accuracy" in t.metrics for t in trials)
    assert all(t.steps for t in trials)  # the per-epoch reports came through the actor
    code, out = run(["search", *FAST, "--trials", "4", "--store", str(path), "--workers", "2"])
    assert code == 0, out  # resumed: one more trial
    trials = mx.load_study(path, "cnn-random-0").trials
    counted = [t for t in trials if not (t.reason or "").startswith("duplicate of")]
    assert [t.status for t in counted] == ["completed"] * 4  # a tiny space: duplicates are reused


def test_workers_must_be_a_positive_count() -> None:
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        cli.main(["search", *FAST, "--workers", "0"])
    assert "--workers" in err.getvalue()
