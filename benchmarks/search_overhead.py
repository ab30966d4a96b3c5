"""Per-trial overhead of `mx.search` next to `pg.sample`, in one process.

The space has 20 `oneof` decisions of 5 candidates; the objective is trivial
(the sum of the choices), so what is measured is the loop: proposing,
materializing, reporting, feedback, and with the store on, SQLite writes.
Prints JSON with median microseconds per trial and the ratios.

Two lines measure what grows with a study: the cost per trial of early
stopping (`observe` + `stop` of `MedianStopping` on each step report, 8 trials
in flight, 10 steps each) in the window of 1,000 trials that ends at 1,000,
5,000 and 20,000 trials (flat is the goal), next to the old `should_stop(own,
others)` at 1,000; and the time to `replay` a 2,000-trial journal (8 in flight,
random finishing order) of regularized evolution (the goal: under 3 s).

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


STOP_STEPS, STOP_IN_FLIGHT, STOP_WINDOW = 10, 8, 1000


def stopping_reports(trials: int, seed: int = 0) -> Any:
    """`(trial, step, value)` of `trials` trials, 8 in flight taking turns,
    each reporting steps 1..10 (its learning curve plus noise)."""
    rng = np.random.default_rng(seed)
    live: dict[int, int] = {}
    started = 0
    while started < trials or live:
        while started < trials and len(live) < STOP_IN_FLIGHT:
            live[started] = 0
            started += 1
        for trial in list(live):
            live[trial] += 1
            step = live[trial]
            yield trial, step, float(step * 0.05 + rng.normal(0.5, 0.1))
            if step >= STOP_STEPS:
                del live[trial]


def time_early_stopping(marks: tuple[int, ...]) -> dict[str, float]:
    """Microseconds per trial of observe + stop in the window of trials that
    ends at each mark (a stopped trial reports no more)."""
    policy = mx.algorithms.MedianStopping()
    out: dict[str, float] = {}
    stopped: set[int] = set()
    window_start, clock = time.perf_counter(), time.perf_counter
    for trial, step, value in stopping_reports(max(marks)):
        if trial in stopped:
            continue
        if step == 1 and trial % STOP_WINDOW == 0:
            if trial in marks:
                out[f"{trial}_trials"] = (clock() - window_start) / STOP_WINDOW * 1e6
            if trial + STOP_WINDOW in marks:
                window_start = clock()
        policy.observe(trial, step, value)
        if policy.stop(trial):
            stopped.add(trial)
    out[f"{max(marks)}_trials"] = (clock() - window_start) / STOP_WINDOW * 1e6
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: int(kv[0].split("_")[0]))}


def time_should_stop(trials: int) -> float:
    """Microseconds per trial of the old `should_stop(own, others)` over
    `trials` trials (every call reads every trial's reports)."""
    policy = mx.algorithms.MedianStopping()
    steps: dict[int, list[tuple[int, float]]] = {}
    stopped: set[int] = set()
    start = time.perf_counter()
    for trial, step, value in stopping_reports(trials):
        if trial in stopped:
            continue
        steps.setdefault(trial, []).append((step, value))
        if policy.should_stop(steps[trial], [s for t, s in steps.items() if t != trial]):
            stopped.add(trial)
    return (time.perf_counter() - start) / trials * 1e6


def time_replay(trials: int) -> float:
    """Seconds to replay the journal of `trials` evolution trials."""
    from morphax.testing import run_in_flight

    spec = mx.dna_spec(mx_space())

    def reward(algorithm: Any, dna: mx.DNA) -> float:
        return float(sum(dna.values))

    journal = run_in_flight(
        mx_algorithm("evolution"), spec, trials, width=8, order_seed=1, reward=reward
    )
    fresh = mx_algorithm("evolution")
    fresh.setup(spec)
    start = time.perf_counter()
    fresh.replay(journal)
    return time.perf_counter() - start


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
    marks = (1000, 5000, 20000) if not args.quick else (1000, 2000)
    stopping = time_early_stopping(marks)
    results["early_stopping"] = {
        "observe_stop_us_per_trial": stopping,
        "should_stop_us_per_trial_at_1000": round(
            time_should_stop(1000 if not args.quick else 200), 1
        ),
        "steps_per_trial": STOP_STEPS,
        "in_flight": STOP_IN_FLIGHT,
    }
    replay_trials = 2000 if not args.quick else 200
    results["replay"] = {
        "evolution_journal_trials": replay_trials,
        "seconds": round(statistics.median(time_replay(replay_trials) for _ in range(3)), 3),
    }
    lookups = [r for k, r in results.items() if k in ("random", "evolution")]
    goals = {
        "store_off_100x_less_than_pyglove": all(
            r["ratio_pyglove_over_morphax_store_off"] >= 100 for r in lookups
        ),
        "store_on_under_1ms": all(r["morphax_store_on_us_per_trial"] < 1000 for r in lookups),
        "early_stopping_flat": max(stopping.values()) <= 2 * min(stopping.values()),
        "replay_2000_trials_under_3s": results["replay"]["seconds"] < 3.0,
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
