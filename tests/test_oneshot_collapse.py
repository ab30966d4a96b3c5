"""DARTS is faithful: one seed of the reduced NAS-Bench-201 protocol collapses.

Plain first-order DARTS is known to collapse on NAS-Bench-201 to cells of
parameter-free ops (the benchmark paper's DARTS result is the all-skip cell,
54.30 on the table). Issue 10 asks CI to run one seed of that check: the
protocol of `benchmarks/oneshot_quality.py` (10,000 CIFAR-10 images, C=8,
one cell per stage, 40 epochs, batch 64), with the search net's affine batch
norms on running averages (`--batch-norm train`), the batch norm under which
the collapse shows (3 of 3 seeds in the README's table; with the protocol's
default "search" batch norm it does not). Only 3.0% of the 15,625 cells
score 60 or less on the table, so a search that did not collapse passes by
chance about 3 times in 100.

It runs the benchmark itself, as a user would, so the figure it checks is the
README's, with one XLA thread (`--threads 1`), as the README's rows ran: the
search's floating-point sums differ with XLA's thread count, and 40 epochs of
DARTS amplify that into another cell. With two threads (CI's first run of
this test) seed 0 ended on `skip, pool, skip, pool, conv1x1, skip`, 78.81:
five parameter-free edges of six, but above the line; with one thread it
ends on 51.71 (three epochs already differ: the README's one-shot quality
section). It took 45 min on one core shared with another search: `make
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
#: The issue's collapse line: plain DARTS at most 60 on the table.
COLLAPSED = 60.0

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
        "--threads",
        "1",
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
    assert report["machine"]["xla_threads"] == 1, report["machine"]
    (run,) = report["runs"]
    assert run["strategy"] == "darts" and run["batch_norm"] == "train" and run["seed"] == 0
    # the search trained all 40 epochs (the history counts epochs from 1)
    assert run["last_history"]["epoch"] == 40.0, run["last_history"]
    assert run["test_accuracy"] <= COLLAPSED, (
        f"DARTS did not collapse: its cell {run['arch']} scores {run['test_accuracy']} on "
        f"the NAS-Bench-201 table, above {COLLAPSED} (the README's seed 0 scored 51.71 with one "
        f"XLA thread on a 2-core AMD EPYC; this run: {report['machine']})"
    )
