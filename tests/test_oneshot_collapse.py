"""DARTS is faithful: one seed of the reduced NAS-Bench-201 protocol collapses.

Plain first-order DARTS is known to collapse on NAS-Bench-201 to cells of
parameter-free operations (the benchmark paper's DARTS result is the all-skip
cell, 54.30 on the table). Issue 10 asks CI to run one seed of that check: the
protocol of `benchmarks/oneshot_quality.py` (10,000 CIFAR-10 images, C=8,
one cell per stage, 40 epochs, batch 64), with the search net's affine batch
norms on running averages (`--batch-norm train`).

What it asserts is the collapse itself: at least 5 of the cell's 6 edges are
`skip_connect` or `avg_pool_3x3`. Only 4.1% of the 15,625 cells are
(`cells_5_of_6_skip_or_pool_share` in the benchmark's JSON), and every DARTS
run we made ended there (9 of 9: both batch norms, one and two XLA threads).
It does not assert the issue's table line (at most 60), which is meant over 3
seeds: for one seed, whether the cell lands under it is decided by float
noise. The same command, seed 0, gave 51.71 (`skip, pool, pool, pool, skip,
skip`) with one XLA thread in two earlier sessions, 78.81 (`skip, pool,
skip, pool, conv1x1, skip`) with two threads in CI, and 78.16 (`skip, pool,
pool, pool, conv1x1, skip`) with one thread in a later session's fresh clone,
and 50.35 (`pool, pool, pool, pool, skip, pool`) with two threads in the next:
one edge between `skip` and a convolution moves the score by 25 points. The
failure message reports the table score and the machine.

It runs the benchmark itself, as a user would, so the figure it checks is the
README's. About 25 min with two XLA threads, 45-55 min with one: `make
test-slow` only; the subprocess gets 70 min, so that a stuck run fails here
within CI's 90 min rather than being killed with the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHARED_CIFAR = ROOT / ".." / "shared" / "data" / "cifar10-jpeg"
#: The collapse: at least this many of the cell's 6 edges are skip or pool.
SKIP_OR_POOL = 5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SHARED_CIFAR / "train.tar.gz").exists(),
        reason="needs ../shared/data/cifar10-jpeg/train.tar.gz (the project's shared data), "
        "absent on this machine",
    ),
]


def test_darts_collapses_on_one_seed_of_the_reduced_protocol(tmp_path: Path) -> None:
    out = tmp_path / "collapse.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "oneshot_quality.py"),
        "--strategies",
        "darts",
        "--seeds",
        "1",
        "--first-seed",
        "0",
        "--batch-norm",
        "train",
        "--data",
        str(SHARED_CIFAR),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=4200)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}"
    report = json.loads(out.read_text())
    assert report["complete"] is True
    assert report["settings"]["images"] == 10000 and report["settings"]["epochs"] == 40
    (run,) = report["runs"]
    assert run["strategy"] == "darts" and run["batch_norm"] == "train" and run["seed"] == 0
    # the search trained all 40 epochs (the history counts epochs from 1)
    assert run["last_history"]["epoch"] == 40.0, run["last_history"]
    # what a cell drawn at random would pass with (the docstring's 4.1%)
    assert report["cells_5_of_6_skip_or_pool_share"] == pytest.approx(0.041, abs=1e-4)
    assert run["skip_or_pool_edges"] >= SKIP_OR_POOL, (
        f"DARTS did not collapse: its cell {run['arch']} has {run['skip_or_pool_edges']} skip "
        f"or pool edges of 6, fewer than {SKIP_OR_POOL} (table: {run['test_accuracy']}; "
        f"machine: {report['machine']})"
    )
