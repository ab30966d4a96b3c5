"""NAS-Bench-201 through `mx.search`: random search, regularized evolution,
REINFORCE and PPO, 100 evaluations per run, many seeds, three datasets.

Protocol (Dong & Yang, ICLR 2020): the search signal is the 12-epoch
validation accuracy; what is reported is the 200-epoch test accuracy of the
architecture with the best signal. Prints JSON with mean and std per
algorithm and dataset, the published CIFAR-10 numbers, and the wall time.

Usage: python benchmarks/nasbench201.py [--seeds 200] [--trials 100] [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import morphax as mx
from morphax.spaces import nasbench201 as nb

#: Dong & Yang, NAS-Bench-201, ICLR 2020, Table 5 (CIFAR-10 test accuracy).
PUBLISHED_CIFAR10 = {
    "random": (93.70, 0.36),
    "reinforce": (93.85, 0.37),
    "evolution": (93.92, 0.30),
    "optimum": (94.37, 0.0),
}
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def algorithms() -> dict[str, Callable[[int], mx.algorithms.Algorithm]]:
    """The algorithms and their default settings, as a user gets them."""
    return {
        "random": lambda seed: mx.algorithms.Random(seed=seed),
        "evolution": lambda seed: mx.algorithms.RegularizedEvolution(seed=seed),
        "reinforce": lambda seed: mx.algorithms.Reinforce(seed=seed),
        "ppo": lambda seed: mx.algorithms.PPO(seed=seed),
    }


def run_one(algorithm: str, dataset: str, seed: int, trials: int) -> float:
    """One search: returns the 200-epoch test accuracy of the best-by-signal architecture."""
    bench = nb.load()
    space = nb.cell_space()
    best_signal, best_dna = -np.inf, None
    for trial in mx.search(space, algorithms()[algorithm](seed), num_trials=trials):
        signal = bench.valid_accuracy(trial.dna, dataset)
        trial.report(signal)
        if signal > best_signal:
            best_signal, best_dna = signal, trial.dna
    assert best_dna is not None
    return float(bench.test_accuracy(best_dna, dataset))


def _job(args: tuple[str, str, list[int], int]) -> tuple[str, str, list[float], float]:
    algorithm, dataset, seeds, trials = args
    start = time.perf_counter()
    results = [run_one(algorithm, dataset, s, trials) for s in seeds]
    return algorithm, dataset, results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=200, help="searches per algorithm and dataset (default 200)"
    )
    parser.add_argument(
        "--trials", type=int, default=100, help="evaluations per search (default 100)"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--algorithms", default="random,evolution,reinforce,ppo", help="comma-separated subset"
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="5 seeds, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 5
    algos = args.algorithms.split(",")
    unknown = [a for a in algos if a not in algorithms()]
    if unknown:
        parser.error(f"unknown algorithms {unknown}; known: {sorted(algorithms())}")
    datasets = args.datasets.split(",")
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        parser.error(f"unknown datasets {bad}; known: {list(DATASETS)}")
    seeds = list(range(args.seeds))
    chunks = [seeds[i :: args.workers] for i in range(args.workers)]
    jobs = [
        (a, d, chunk, args.trials) for a in algos for d in datasets for chunk in chunks if chunk
    ]
    start = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers) as pool:
        outputs = pool.map(_job, jobs, chunksize=1)
    wall = time.perf_counter() - start
    collected: dict[tuple[str, str], list[float]] = {}
    cpu: dict[str, float] = {}
    for a, d, res, seconds in outputs:
        collected.setdefault((a, d), []).extend(res)
        cpu[a] = cpu.get(a, 0.0) + seconds
    bench = nb.load()
    results: dict[str, Any] = {}
    for d in datasets:
        results[d] = {"optimum": round(bench.best(d).test_accuracy, 2)}
        for a in algos:
            acc = np.array(collected[(a, d)])
            results[d][a] = {
                "mean": round(float(acc.mean()), 2),
                "std": round(float(acc.std()), 2),
                "runs": len(acc),
            }
    c10 = results.get("cifar10", {})
    goals: dict[str, Any] = {}
    if c10 and "random" in c10:
        goals["random_within_0.15_of_93.70"] = abs(c10["random"]["mean"] - 93.70) <= 0.15
    for a in ("evolution", "reinforce"):
        if a in c10:
            goals[f"{a}_at_or_above_published_{PUBLISHED_CIFAR10[a][0]}"] = (
                c10[a]["mean"] >= PUBLISHED_CIFAR10[a][0]
            )
    builtin = [c10[a]["mean"] for a in algos if a != "random" and a in c10]
    if builtin:
        goals["best_builtin_at_or_above_94.05"] = max(builtin) >= 94.05
    goals["whole_run_under_120s"] = wall < 120
    out = {
        "benchmark": "nasbench201",
        "protocol": "signal: 12-epoch validation accuracy; reported: 200-epoch test accuracy of the best-by-signal architecture",
        "settings": {"seeds": args.seeds, "trials": args.trials, "workers": args.workers},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "morphax": mx.__version__,
        },
        "results": results,
        "published_cifar10_table5": {
            k: {"mean": m, "std": s} for k, (m, s) in PUBLISHED_CIFAR10.items()
        },
        "wall_s": round(wall, 1),
        "cpu_s_per_algorithm": {a: round(s, 1) for a, s in cpu.items()},
        "goals": goals,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
