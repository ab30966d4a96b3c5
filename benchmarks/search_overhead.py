"""Per-trial overhead of `mx.search` next to `pg.sample`, in one process.

The space has 20 `oneof` decisions of 5 candidates; the objective is trivial
(the sum of the choices), so what is measured is the loop: proposing,
materializing, reporting, feedback, and with the store on, SQLite writes.
Prints JSON with median microseconds per trial and the ratios.

Usage: python benchmarks/search_overhead.py [--trials N] [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyglove as pg

import morphax as mx

NUM_DECISIONS, NUM_CANDIDATES = 20, 5


def mx_space() -> dict[str, Any]:
    return {f"d{i}": mx.oneof(list(range(NUM_CANDIDATES))) for i in range(NUM_DECISIONS)}


def pg_space() -> Any:
    return pg.Dict(**{f"d{i}": pg.oneof(list(range(NUM_CANDIDATES))) for i in range(NUM_DECISIONS)})


def mx_algorithm(kind: str) -> mx.algorithms.Algorithm:
    if kind == "random":
        return mx.algorithms.Random(seed=1)
    return mx.algorithms.RegularizedEvolution(population_size=20, tournament_size=5, seed=1)


def pg_algorithm(kind: str) -> Any:
    if kind == "random":
        return pg.geno.Random(seed=1)
    return pg.evolution.regularized_evolution(population_size=20, tournament_size=5, seed=1)


def time_mx(kind: str, trials: int, store: bool) -> float:
    space = mx_space()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "study.db") if store else None
        start = time.perf_counter()
        for trial in mx.search(space, mx_algorithm(kind), num_trials=trials, store=path):
            trial.report(float(sum(trial.program.values())))
        return (time.perf_counter() - start) / trials


def time_pg(kind: str, trials: int) -> float:
    space = pg_space()
    start = time.perf_counter()
    for example, feedback in pg.sample(space, pg_algorithm(kind), num_examples=trials):
        feedback(float(sum(example.values())))
    return (time.perf_counter() - start) / trials


def median_us(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats)) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, default=300, help="trials per morphax run (default 300)"
    )
    parser.add_argument(
        "--pg-trials", type=int, default=40, help="trials per pyglove run (default 40)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="runs per measurement; the median is kept"
    )
    parser.add_argument("--quick", action="store_true", help="a few trials, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.pg_trials, args.repeats = 30, 5, 1
    results: dict[str, Any] = {}
    for kind in ("random", "evolution"):
        off = median_us(lambda k=kind: time_mx(k, args.trials, store=False), args.repeats)
        on = median_us(lambda k=kind: time_mx(k, args.trials, store=True), args.repeats)
        peer = median_us(lambda k=kind: time_pg(k, args.pg_trials), args.repeats)
        results[kind] = {
            "morphax_store_off_us_per_trial": round(off, 1),
            "morphax_store_on_us_per_trial": round(on, 1),
            "pyglove_us_per_trial": round(peer, 1),
            "ratio_pyglove_over_morphax_store_off": round(peer / off, 1),
        }
    goals = {
        "store_off_100x_less_than_pyglove": all(
            r["ratio_pyglove_over_morphax_store_off"] >= 100 for r in results.values()
        ),
        "store_on_under_1ms": all(
            r["morphax_store_on_us_per_trial"] < 1000 for r in results.values()
        ),
    }
    out = {
        "benchmark": "search_overhead",
        "space": f"{NUM_DECISIONS} oneof x {NUM_CANDIDATES} candidates, trivial objective",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "pyglove": pg.__version__,
            "morphax": mx.__version__,
        },
        "settings": {
            "mx_trials": args.trials,
            "pg_trials": args.pg_trials,
            "repeats": args.repeats,
        },
        "results": results,
        "goals": goals,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
