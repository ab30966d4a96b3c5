"""How the NAS-Bench-201 defaults were chosen: CIFAR-10 only, held-out seeds.

Runs each candidate setting on seeds 1000..1000+N (the benchmark itself uses
seeds 0..199), 100 evaluations per search, the 12-epoch validation accuracy
as the signal and the 200-epoch test accuracy reported. Prints JSON.

Usage: python benchmarks/tune_nasbench201.py [--seeds 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np

import morphax as mx
from morphax.spaces import nasbench201 as nb

RE = mx.algorithms.RegularizedEvolution
CANDIDATES: dict[str, Callable[[int], mx.algorithms.Algorithm]] = {
    **{
        f"evolution P={p} S={s}": (
            lambda seed, p=p, s=s: RE(population_size=p, tournament_size=s, seed=seed)
        )
        for p, s in [
            (10, 3),
            (5, 2),
            (8, 4),
            (10, 5),
            (15, 8),
            (20, 5),
            (20, 10),
            (20, 15),
            (30, 10),
            (30, 15),
        ]
    },
    **{
        f"reinforce lr={lr}": (
            lambda seed, lr=lr: mx.algorithms.Reinforce(learning_rate=lr, seed=seed)
        )
        for lr in (0.05, 0.1, 0.2)
    },
    **{
        f"ppo lr={lr}": (lambda seed, lr=lr: mx.algorithms.PPO(learning_rate=lr, seed=seed))
        for lr in (0.05, 0.1, 0.2)
    },
}


def score(make: Callable[[int], mx.algorithms.Algorithm], seeds: range) -> tuple[float, float]:
    bench = nb.load()
    spec = mx.dna_spec(nb.cell_space())
    results = []
    for seed in seeds:
        algo = make(seed)
        algo.setup(spec)
        best, best_dna = -np.inf, None
        for _ in range(100):
            dna = algo.propose()
            signal = bench.valid_accuracy(dna, "cifar10")
            algo.feedback(dna, signal)
            if signal > best:
                best, best_dna = signal, dna
        results.append(bench.test_accuracy(best_dna, "cifar10"))
    return float(np.mean(results)), float(np.std(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=200, help="held-out seeds per setting (default 200)"
    )
    parser.add_argument("--quick", action="store_true", help="5 seeds")
    args = parser.parse_args(argv)
    seeds = range(1000, 1000 + (5 if args.quick else args.seeds))
    out = {
        name: dict(zip(("mean", "std"), (round(v, 3) for v in score(make, seeds)), strict=True))
        for name, make in CANDIDATES.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "tune_nasbench201",
                "dataset": "cifar10",
                "seeds": [seeds.start, seeds.stop],
                "results": out,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
