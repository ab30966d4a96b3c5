"""Parallel trials on Ray (`mx.backends.Ray`) next to the serial loop.

Each configuration runs in a fresh Python process (`--config NAME`), which
starts its own local Ray (`ray.init(num_cpus=2)`; the start, 4-15 s here, is
reported as `ray_init_s` and left out of `wall_s`: a search runs on a cluster
that is up). Prints one JSON object:

- `sleep_*`: 40 trials of 0.5 s: the serial loop, Ray with 1 and 2 workers
  (goals: 2 workers >= 1.85x serial, 1 worker >= 0.95x); `sleep_ray2_warm`:
  2 workers after a 4-trial warm-up search on the same backend (the workers'
  start and imports, timed apart as `warm_up_s`).
- `uniform_*`: 40 trials of U(0.25, 0.75) s (seeded), regularized evolution
  on 2 workers, async and ordered (goal: ordered >= 0.9x async).
- `noop`: 300 trials that return at once, 2 workers: wall and driver CPU per
  trial (goals: <= 5 ms and <= 2 ms).
- `flax_*`: 6 small CNNs on the embedded digits (3 epochs each), 1 and 2
  workers, each with its worker pinned to one CPU (`xla_threads="auto"`, the
  default: single-threaded XLA) and unpinned (`xla_threads=None`: XLA's own
  thread pool over both cores). Goal: 2 workers not slower than 1.
- `simulate`: a discrete-event simulation of `--simulate N` workers (100)
  running 60 s trials (x U(0.8, 1.2)), 10 trials per worker, with a latency of
  2 ms each way and the driver's cost per trial measured: the real
  `search.ask()`/`search.tell()` of regularized evolution on a SQLite study
  (timed call by call), plus the driver CPU per trial that Ray itself costs
  (measured by `noop`). Goals: the driver under 1% busy, a worker's wait for
  its next trial under 50 ms at the 99th percentile.

Usage: python benchmarks/parallel_search.py [--simulate N] [--configs a,b,...] [--quick]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import morphax as mx

SPACE = {f"d{i}": mx.oneof(list(range(5))) for i in range(20)}
SLEEP_TRIALS = 40


def _ray_init() -> float:
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    return time.perf_counter() - start


def _sleeper(seconds: float) -> Any:
    def evaluate(trial: mx.Trial) -> float:
        time.sleep(seconds)
        return float(sum(trial.dna.values))

    return evaluate


def _uniform(trial: mx.Trial) -> float:
    time.sleep(random.Random(trial.id).uniform(0.25, 0.75))
    return float(sum(trial.dna.values))


def _noop(trial: mx.Trial) -> float:
    return 1.0


def _timed(search: mx.tuning.Search, evaluate: Any, backend: Any) -> dict[str, float]:
    cpu, start = time.process_time(), time.perf_counter()
    search.run(evaluate, backend=backend)
    wall = time.perf_counter() - start
    n = len(search.trials)
    return {
        "trials": n,
        "wall_s": round(wall, 3),
        "driver_cpu_s": round(time.process_time() - cpu, 3),
    }


def config_sleep(workers: int, trials: int, *, warm: bool = False) -> dict[str, Any]:
    """`warm`: a 4-trial search on the same backend first, so that the timed
    one finds the workers started (morphax and JAX imported) and the cluster's
    channel actor code loaded, as a second search in one script does."""
    out: dict[str, Any] = {}
    search = mx.search(SPACE, mx.algorithms.Random(seed=0), num_trials=trials)
    if workers == 0:
        out.update(_timed(search, _sleeper(0.5), mx.backends.Local()))
    else:
        out["ray_init_s"] = round(_ray_init(), 2)
        backend = mx.backends.Ray(max_in_flight=workers)
        if warm:
            start = time.perf_counter()
            mx.search(SPACE, mx.algorithms.Random(seed=1), num_trials=4).run(_noop, backend=backend)
            out["warm_up_s"] = round(time.perf_counter() - start, 2)
        out.update(_timed(search, _sleeper(0.5), backend))
    return out


def config_uniform(ordered: bool, trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {"ray_init_s": round(_ray_init(), 2)}
    algorithm = mx.algorithms.RegularizedEvolution(population_size=10, tournament_size=3, seed=0)
    search = mx.search(SPACE, algorithm, num_trials=trials)
    out.update(_timed(search, _uniform, mx.backends.Ray(max_in_flight=2, ordered=ordered)))
    return out


def config_noop(trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {"ray_init_s": round(_ray_init(), 2)}
    backend = mx.backends.Ray(max_in_flight=2)
    mx.search(SPACE, mx.algorithms.Random(seed=1), num_trials=20).run(_noop, backend=backend)
    search = mx.search(SPACE, mx.algorithms.Random(seed=0), num_trials=trials)  # workers warm
    out.update(_timed(search, _noop, backend))
    out["wall_ms_per_trial"] = round(out["wall_s"] / trials * 1e3, 2)
    out["driver_cpu_ms_per_trial"] = round(out["driver_cpu_s"] / trials * 1e3, 2)
    return out


def _fit(trial: mx.Trial) -> float:
    import optax

    import morphax.train as mt

    train, valid = mt.load_digits(seed=0)
    result = mt.fit(
        trial.program,
        optax.adam(3e-3),
        train,
        valid_data=valid,
        epochs=3,
        batch_size=64,
        key=trial.id,
    )
    return float(result.metrics["accuracy"])


def config_flax(workers: int, threads: str | None, trials: int) -> dict[str, Any]:
    from morphax.spaces.cnn import cnn_space

    out: dict[str, Any] = {"ray_init_s": round(_ray_init(), 2)}
    space = cnn_space(num_classes=10, max_depth=2, widths=(8, 16))
    search = mx.search(space, mx.algorithms.Random(seed=0), num_trials=trials)
    backend = mx.backends.Ray(max_in_flight=workers, xla_threads=threads)
    out.update(_timed(search, _fit, backend))
    out["xla_threads"] = threads
    return out


def simulate(workers: int, ray_driver_ms: float, *, trials_per_worker: int = 10) -> dict[str, Any]:
    """A discrete-event simulation on a virtual clock; the driver's costs are
    the real calls' measured times."""
    rng = random.Random(0)
    latency, trial_s = 0.002, 60.0
    total = workers * trials_per_worker
    algorithm = mx.algorithms.RegularizedEvolution(population_size=50, tournament_size=10, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        search = mx.search(
            SPACE, algorithm, num_trials=total, store=os.path.join(tmp, "s.db"), progress=False
        )

        def ask() -> tuple[Any, float]:
            start = time.perf_counter()
            trial = search.ask()
            return trial, time.perf_counter() - start + ray_driver_ms / 2e3

        def tell(trial: Any) -> float:
            start = time.perf_counter()
            search.tell(trial, float(sum(trial.dna.values)))
            return time.perf_counter() - start + ray_driver_ms / 2e3

        now = busy = 0.0
        arrivals: list[tuple[float, int, Any]] = []  # (result at the driver, seq, trial)
        seq = 0
        for _ in range(workers):  # the first wave
            trial, cost = ask()
            now += cost
            busy += cost
            done = now + latency + trial_s * rng.uniform(0.8, 1.2)
            heapq.heappush(arrivals, (done + latency, seq, trial))
            seq += 1
        waits: list[float] = []
        driver_free = now
        while arrivals:
            arrived, _, trial = heapq.heappop(arrivals)
            start = max(arrived, driver_free)
            cost = tell(trial)
            nxt, ask_cost = ask()
            cost += ask_cost
            busy += cost
            driver_free = start + cost
            if nxt is None:
                continue
            waits.append(driver_free + latency - (arrived - latency))
            done = driver_free + latency + trial_s * rng.uniform(0.8, 1.2)
            heapq.heappush(arrivals, (done + latency, seq, nxt))
            seq += 1
        search.close()
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(0.99 * len(waits)))]
    return {
        "workers": workers,
        "trials": total,
        "trial_s": f"{trial_s:g} x U(0.8, 1.2)",
        "latency_ms_each_way": latency * 1e3,
        "ray_driver_ms_per_trial": ray_driver_ms,
        "driver_ms_per_trial": round(busy / total * 1e3, 3),
        "makespan_s": round(driver_free, 1),
        "driver_busy_percent": round(100 * busy / driver_free, 4),
        "worker_wait_ms_p50": round(waits[len(waits) // 2] * 1e3, 2),
        "worker_wait_ms_p99": round(p99 * 1e3, 2),
        "worker_wait_ms_max": round(waits[-1] * 1e3, 2),
    }


CONFIGS = {
    "sleep_serial": lambda q: config_sleep(0, q["sleep"]),
    "sleep_ray1": lambda q: config_sleep(1, q["sleep"]),
    "sleep_ray2": lambda q: config_sleep(2, q["sleep"]),
    "sleep_ray2_warm": lambda q: config_sleep(2, q["sleep"], warm=True),
    "uniform_async": lambda q: config_uniform(False, q["sleep"]),
    "uniform_ordered": lambda q: config_uniform(True, q["sleep"]),
    "noop": lambda q: config_noop(q["noop"]),
    "flax_1w_pinned": lambda q: config_flax(1, "auto", q["flax"]),
    "flax_2w_pinned": lambda q: config_flax(2, "auto", q["flax"]),
    "flax_1w_default": lambda q: config_flax(1, None, q["flax"]),
    "flax_2w_default": lambda q: config_flax(2, None, q["flax"]),
}


def _child(name: str, sizes: dict[str, int]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--config", name, "--sizes", json.dumps(sizes)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _goals(r: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: str, b: str) -> float | None:
        if "wall_s" in r.get(a, {}) and "wall_s" in r.get(b, {}):
            return round(r[a]["wall_s"] / r[b]["wall_s"], 3)
        return None

    goals: dict[str, Any] = {
        "speedup_2_workers": ratio("sleep_serial", "sleep_ray2"),
        "speedup_2_workers_warm": ratio("sleep_serial", "sleep_ray2_warm"),
        "speedup_1_worker": ratio("sleep_serial", "sleep_ray1"),
        "ordered_vs_async": ratio("uniform_async", "uniform_ordered"),
        "flax_pinned_2_vs_1_workers": ratio("flax_1w_pinned", "flax_2w_pinned"),
        "flax_default_2_vs_1_workers": ratio("flax_1w_default", "flax_2w_default"),
        "flax_2_workers_pinned_vs_default": ratio("flax_2w_default", "flax_2w_pinned"),
    }
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="which configurations")
    parser.add_argument("--simulate", type=int, default=100, help="workers simulated (0: none)")
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    args = parser.parse_args()
    if args.config:
        print(json.dumps(CONFIGS[args.config](json.loads(args.sizes))))
        return
    sizes = {"sleep": 8, "noop": 60, "flax": 2} if args.quick else {}
    sizes = {"sleep": SLEEP_TRIALS, "noop": 300, "flax": 6, **sizes}
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    for name in [c for c in args.configs.split(",") if c]:
        results[name] = _child(name, sizes)
    results["goals"] = _goals(results)
    if args.simulate:
        ray_ms = results.get("noop", {}).get("driver_cpu_ms_per_trial", 2.0)
        results["simulate"] = simulate(args.simulate, float(ray_ms))
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
