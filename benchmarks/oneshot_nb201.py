"""The NAS-Bench-201 supernet step: morphax next to a hand-written plain-JAX one.

For each configuration (strategy x layout x batch size), a fresh Python process
builds the full NAS-Bench-201 search network (C=16, N=5, 32x32x3 inputs, 10
classes) twice, side by side in that process:

* `hand`: the hand-written plain-JAX supernet of `benchmarks/_nb201_plain.py`
  (explicit parameter pytrees, `lax.conv_general_dilated`, batch norm with
  batch statistics, the 5 ops mixed by the architecture weights);
* `morphax`: `morphax.spaces.nasbench201.search_net(batch_norm="search")`
  made a supernet by `mx.oneshot.supernet`, run with `mx.oneshot.Arch`.

Both run the very same step code (`_nb201_plain.make_step`: the same loss, the
same hand-written SGD and Adam, the same Gumbel sampling), so the ratio
measures the supernet's forward and backward passes only. Strategies:
`darts1` and `darts2` (DARTS first and second order), `gdas` (Gumbel hard
sample, straight-through; morphax gets `Arch(weights=soft, index=hard)`),
`spos` (a uniform single path; morphax gets `Arch(index=...)`, run by the
supernet's default `path_impl`). Layouts: `unrolled`, `scan` (the cells of a
stage scanned) and `remat` (each cell rematerialized), where the morphax
network offers them.

Measured per implementation: the seconds to build the supernet (morphax's
trace of the model), to initialize the variables (a jitted init, compile
included), to trace, lower and compile the step ahead of time; the step's
temporary memory (`compiled.memory_analysis()`); and milliseconds per
iteration, the median over `--iters` iterations after `--warmup`, the two
implementations alternating iteration by iteration. Random inputs; the
persistent compilation cache is off, except in the cache check: the same
configuration run twice in fresh processes over one new cache folder, the
time from process launch to the end of the first step, cold and warm.

With the `remat` layout, `remat_probe` reports what the backend's compiler
makes of rematerialization in plain JAX (a 20-block chain's gradient, its
temporary memory without and with `jax.checkpoint`), to tell a property of
the backend from one of the supernet.

Goals (issue 10): the morphax step at most 1.1x the hand-written one; a rerun
with a warm persistent cache starts its first step within 10 s.

Usage:
    python benchmarks/oneshot_nb201.py [--strategies darts1,darts2,gdas,spos]
        [--layouts unrolled,scan,remat] [--batch-sizes 8,64] [--impls hand,morphax]
        [--channels 16] [--cells 5] [--iters 10] [--warmup 2] [--no-cache-check]
        [--path-impl onehot|switch]
    python benchmarks/oneshot_nb201.py --quick   # C=8, N=1, batch 8, darts1 unrolled
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

GOAL_RATIO = 1.1
GOAL_WARM_FIRST_STEP_S = 10.0
HERE = os.path.dirname(os.path.abspath(__file__))
STRATEGIES = ("darts1", "darts2", "gdas", "spos")
LAYOUTS = ("unrolled", "scan", "remat")
IMPLS = ("hand", "morphax", "strategy")


def remat_probe() -> dict[str, Any]:
    """What this backend's compiler makes of rematerialization in plain JAX: the
    temporary memory of the gradient of 20 blocks of two 256-wide tanh layers
    (batch 1,024), without and with `jax.checkpoint` around each block. Without
    checkpoints the backward pass keeps 40 activations of 1 MiB; with them, 20."""
    import jax
    import jax.numpy as jnp

    def block(w: Any, x: Any) -> Any:
        return jnp.tanh(jnp.tanh(x @ w) @ w)

    ws = [jnp.full((256, 256), 0.01, jnp.float32) for _ in range(20)]
    x = jnp.ones((1024, 256), jnp.float32)
    out: dict[str, Any] = {"backend": jax.default_backend()}
    for name, f in (("plain", block), ("checkpoint", jax.checkpoint(block))):

        def loss(ws: Any, x: Any, f: Any = f) -> Any:
            for w in ws:
                x = f(w, x)
            return jnp.sum(x)

        compiled = jax.jit(jax.grad(loss)).lower(ws, x).compile()
        out[f"{name}_temp_mib"] = round(compiled.memory_analysis().temp_size_in_bytes / 2**20, 1)
    return out


# ---------------------------------------------------------------------------
# The child: one configuration in a fresh process.


class Unsupported(Exception):
    """The implementation does not offer this configuration (reported, not fatal)."""


def _setup_cache(cache_dir: str | None, impls: list[str]) -> str:
    """Turns the persistent compilation cache off, or on in `cache_dir`: through
    morphax's `enable_compilation_cache` when morphax runs, else JAX's settings."""
    import jax

    if cache_dir is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return "off"
    jax.config.update("jax_enable_compilation_cache", True)
    if set(impls) & {"morphax", "strategy"}:
        import morphax as mx

        enable = getattr(mx.oneshot, "enable_compilation_cache", None)
        if enable is not None:
            enable(cache_dir)
            return "mx.oneshot.enable_compilation_cache"
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return "jax.config (min compile time 0 s)"


def _hand(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax

    sys.path.insert(0, HERE)
    import _nb201_plain as plain

    start = time.perf_counter()
    forward = plain.make_forward(cfg["layout"])
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    params, stats = plain.init(
        1, channels=cfg["channels"], cells_per_stage=cfg["cells"], layout=cfg["layout"]
    )
    state = jax.block_until_ready(plain.init_state(params, stats, 2))
    init_s = time.perf_counter() - start
    return _shared_step(cfg, forward, state, build_s, init_s, {"params": plain.num_params(params)})


def _shared_step(
    cfg: dict[str, Any],
    forward: Any,
    state: Any,
    build_s: float,
    init_s: float,
    info: dict[str, Any],
) -> dict[str, Any]:
    """A runner of the hand-written step code (`_nb201_plain.make_step`) over `forward`."""
    import _nb201_plain as plain
    import jax

    step = jax.jit(plain.make_step(forward, cfg["strategy"], total_steps=1000), donate_argnums=0)
    x = cfg["data"]

    def call(compiled: Any, state: Any, i: int) -> tuple[Any, Any]:
        return compiled(state, *x)

    return {
        "jitted": step,
        "state": state,
        "example": (state, *x),
        "call": call,
        "build_s": build_s,
        "init_s": init_s,
        "info": info,
    }


def _search_net(cfg: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], float]:
    import jax.numpy as jnp

    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    if not hasattr(nb, "search_net"):
        raise Unsupported("morphax has no nasbench201.search_net yet")
    kwargs: dict[str, Any] = {}
    accepted = inspect.signature(nb.search_net).parameters
    if cfg["layout"] != "unrolled":
        if cfg["layout"] not in accepted:
            raise Unsupported(
                f"search_net offers no {cfg['layout']!r} option (its parameters: {list(accepted)})"
            )
        kwargs[cfg["layout"]] = True
    start = time.perf_counter()
    model = nb.search_net(
        channels=cfg["channels"],
        cells_per_stage=cfg["cells"],
        num_classes=10,
        batch_norm="search",
        **kwargs,
    )
    x0 = jnp.zeros((cfg["batch"], 32, 32, 3), jnp.float32)
    sn = mx.oneshot.supernet(model, x0, path_impl=cfg.get("path_impl"))
    return sn, x0, kwargs, time.perf_counter() - start


def _morphax(cfg: dict[str, Any]) -> dict[str, Any]:
    """morphax's supernet under the hand-written step code (the supernet alone compared)."""
    import jax

    import morphax as mx

    sys.path.insert(0, HERE)
    import _nb201_plain as plain

    sn, x0, kwargs, build_s = _search_net(cfg)
    start = time.perf_counter()
    variables = dict(jax.block_until_ready(jax.jit(sn.init)(jax.random.key(1), x0)))
    params = variables.pop("params")
    stats = variables
    mutable = sorted(stats)
    state = jax.block_until_ready(
        plain.init_state(params, stats, 2, shape=(int(sn.rows), int(sn.num_candidates)))
    )
    init_s = time.perf_counter() - start

    def forward(params: Any, stats: Any, x: Any, arch: tuple[Any, Any]) -> Any:
        weights, index = arch
        a = mx.oneshot.Arch(weights=weights, index=index)
        v = {"params": params, **stats}
        if mutable:
            logits, new = sn.apply(v, x, arch=a, train=True, mutable=mutable)
            return logits, dict(new)
        return sn.apply(v, x, arch=a, train=True), stats

    info = {
        "params": plain.num_params(params),
        "model_state": mutable,
        "path_impl": getattr(sn, "path_impl", None),
        "search_net_options": kwargs,
    }
    return _shared_step(cfg, forward, state, build_s, init_s, info)


def _strategy(cfg: dict[str, Any]) -> dict[str, Any]:
    """morphax's own strategy step (`strategy.program(sn, ...).train_step`), host sampling included."""
    import jax
    import numpy as np

    import morphax as mx

    if not hasattr(mx.oneshot, "DARTS"):
        raise Unsupported("morphax has no mx.oneshot strategies yet")
    sn, x0, kwargs, build_s = _search_net(cfg)
    strategy = {
        "darts1": lambda: mx.oneshot.DARTS(order=1),
        "darts2": lambda: mx.oneshot.DARTS(order=2),
        "gdas": lambda: mx.oneshot.GDAS(),
        "spos": lambda: mx.oneshot.SPOS(),
    }[cfg["strategy"]]()
    prog = strategy.program(sn, steps_per_epoch=100, epochs=10)
    start = time.perf_counter()
    state = jax.block_until_ready(prog.init(jax.random.PRNGKey(1), x0))  # a raw key
    init_s = time.perf_counter() - start
    xt, yt, xv, yv = cfg["data"]
    batch, valid = (xt, yt), ((xv, yv) if strategy.uses_valid_batches else ())
    rng = np.random.default_rng(0)
    state, sample = prog.sample(state, rng)

    def call(compiled: Any, state: Any, i: int) -> tuple[Any, Any]:
        state, sample = prog.sample(state, rng)
        state, metrics = compiled(state, batch, valid, sample)
        return state, metrics["loss"]

    info = {
        "strategy": repr(strategy),
        "params": sum(int(p.size) for p in jax.tree.leaves(state.params)),
        "model_state": sorted(state.model_state),
        "path_impl": getattr(sn, "path_impl", None),
        "search_net_options": kwargs,
    }
    return {
        "jitted": prog.train_step,
        "state": state,
        "example": (state, batch, valid, sample),
        "call": call,
        "build_s": build_s,
        "init_s": init_s,
        "info": info,
    }


def _memory(compiled: Any) -> dict[str, float] | None:
    try:
        ma = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return None
    if ma is None:
        return None
    mib = 2.0**20
    return {
        "temp_mib": round(ma.temp_size_in_bytes / mib, 2),
        "argument_mib": round(ma.argument_size_in_bytes / mib, 2),
        "output_mib": round(ma.output_size_in_bytes / mib, 2),
        "generated_code_mib": round(ma.generated_code_size_in_bytes / mib, 2),
    }


def child_main(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs one configuration; returns its measurements (JSON-able)."""
    cache = _setup_cache(cfg.get("cache_dir"), cfg["impls"])
    import jax
    import numpy as np

    builders: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "hand": _hand,
        "morphax": _morphax,
        "strategy": _strategy,
    }
    batch = cfg["batch"]
    rng = np.random.default_rng(0)
    cfg["data"] = tuple(
        jax.device_put(a)
        for a in (
            rng.standard_normal((batch, 32, 32, 3), np.float32),
            rng.integers(0, 10, batch).astype(np.int32),
            rng.standard_normal((batch, 32, 32, 3), np.float32),
            rng.integers(0, 10, batch).astype(np.int32),
        )
    )
    out: dict[str, Any] = {k: cfg[k] for k in ("strategy", "layout", "batch", "channels", "cells")}
    out["impls"], out["compilation_cache"] = {}, cache
    runs: dict[str, dict[str, Any]] = {}
    for impl in cfg["impls"]:
        res: dict[str, Any] = {}
        out["impls"][impl] = res
        try:
            run = builders[impl](cfg)
            res.update(
                build_s=round(run["build_s"], 3), init_s=round(run["init_s"], 3), **run["info"]
            )
            start = time.perf_counter()
            traced = run["jitted"].trace(*run["example"])
            res["trace_s"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            lowered = traced.lower()
            res["lower_s"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            run["compiled"] = lowered.compile()
            res["compile_s"] = round(time.perf_counter() - start, 3)
            res["memory"] = _memory(run["compiled"])
            del run["example"]
            start = time.perf_counter()
            run["state"], loss = run["call"](run["compiled"], run["state"], 0)
            res["first_loss"] = float(jax.block_until_ready(loss))
            res["first_step_ms"] = round((time.perf_counter() - start) * 1e3, 2)
            if "launched_at" in cfg and "first_step_since_launch_s" not in out:
                out["first_step_since_launch_s"] = round(time.time() - cfg["launched_at"], 3)
                out["first_step_impl"] = impl
        except Unsupported as e:
            res["unsupported"] = str(e)
            continue
        except Exception as e:  # a failure is a result: report it, keep the others
            res["error"] = f"{type(e).__name__}: {e}"[:2000]
            continue
        runs[impl] = run
        res["times_ms"] = []
    for i in range(cfg["warmup"] + cfg["iters"]):
        for impl, run in runs.items():  # alternating: the same machine load for each
            start = time.perf_counter()
            run["state"], loss = run["call"](run["compiled"], run["state"], i + 1)
            loss = float(jax.block_until_ready(loss))
            ms = (time.perf_counter() - start) * 1e3
            if i >= cfg["warmup"]:
                out["impls"][impl]["times_ms"].append(round(ms, 2))
            out["impls"][impl]["last_loss"] = loss
    for impl in runs:
        res = out["impls"][impl]
        times = res["times_ms"]
        res["ms_per_iter"] = round(statistics.median(times), 2) if times else None
        res["finite"] = bool(np.isfinite(res["last_loss"]))
    return out


# ---------------------------------------------------------------------------
# The parent: one fresh process per configuration.


def run_child(cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    cfg = {**cfg, "launched_at": time.time()}
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**_key(cfg), "error": f"timed out after {timeout:.0f} s"}
    wall = round(time.perf_counter() - start, 1)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**_key(cfg), "error": proc.stderr[-3000:], "returncode": proc.returncode}
    result = json.loads(lines[-1])
    result["process_wall_s"] = wall
    print(f"# {_label(cfg)}: {_summary(result)} ({wall} s)", file=sys.stderr, flush=True)
    return result


def _key(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: cfg[k] for k in ("strategy", "layout", "batch", "channels", "cells")}


def _label(cfg: dict[str, Any]) -> str:
    return f"{cfg['strategy']} {cfg['layout']} batch {cfg['batch']} C={cfg['channels']} N={cfg['cells']}"


def _summary(result: dict[str, Any]) -> str:
    parts = []
    for impl, res in result.get("impls", {}).items():
        if "ms_per_iter" in res:
            parts.append(f"{impl} {res['ms_per_iter']} ms, compile {res.get('compile_s')} s")
        else:
            parts.append(f"{impl}: {res.get('unsupported') or res.get('error', '?')[:200]}")
    return "; ".join(parts)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """morphax ms / hand-written ms per configuration, for the supernet under the hand
    step (`morphax`) and for morphax's own strategy step (`strategy`)."""
    rows = []
    for r in results:
        impls = r.get("impls", {})
        hand = impls.get("hand", {})
        for impl in ("morphax", "strategy"):
            mine = impls.get(impl, {})
            if not (hand.get("ms_per_iter") and mine.get("ms_per_iter")):
                continue
            ratio = mine["ms_per_iter"] / hand["ms_per_iter"]
            rows.append(
                {
                    **_key(r),
                    "impl": impl,
                    "hand_ms": hand["ms_per_iter"],
                    f"{impl}_ms": mine["ms_per_iter"],
                    "ratio_over_hand": round(ratio, 3),
                    "met": ratio <= GOAL_RATIO,
                    "compile_s": {"hand": hand.get("compile_s"), impl: mine.get("compile_s")},
                    "temp_mib": {
                        "hand": (hand.get("memory") or {}).get("temp_mib"),
                        impl: (mine.get("memory") or {}).get("temp_mib"),
                    },
                }
            )
    return rows


def cache_check(base: dict[str, Any], impl: str, timeout: float) -> dict[str, Any]:
    """The same configuration twice over one new persistent cache: cold, then warm."""
    folder = tempfile.mkdtemp(prefix="oneshot-nb201-cache-")
    try:
        cfg = {**base, "impls": [impl], "cache_dir": folder, "warmup": 0, "iters": 1}
        cold = run_child(cfg, timeout)
        warm = run_child(cfg, timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def pick(r: dict[str, Any]) -> dict[str, Any]:
        res = r.get("impls", {}).get(impl, {})
        return {
            "first_step_since_launch_s": r.get("first_step_since_launch_s"),
            "compile_s": res.get("compile_s"),
            "trace_s": res.get("trace_s"),
            "build_s": res.get("build_s"),
            "init_s": res.get("init_s"),
            "error": r.get("error") or res.get("error") or res.get("unsupported"),
            "compilation_cache": r.get("compilation_cache"),
        }

    out = {"config": {**_key(base), "impl": impl}, "cold": pick(cold), "warm": pick(warm)}
    warm_s = out["warm"]["first_step_since_launch_s"]
    out["met"] = warm_s is not None and warm_s <= GOAL_WARM_FIRST_STEP_S
    return out


def machine() -> dict[str, Any]:
    import jax

    device = jax.devices()[0]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }


def _list(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise SystemExit(f"{flag} takes a comma-separated list of {allowed}, but got {text!r}")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="(all four)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="(all three)")
    parser.add_argument("--batch-sizes", default="8,64", help="(8,64)")
    parser.add_argument("--impls", default=",".join(IMPLS), help="(hand,morphax)")
    parser.add_argument("--channels", type=int, default=16, help="C, the first stage's width (16)")
    parser.add_argument("--cells", type=int, default=5, help="N, cells per stage (5)")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (2)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process (3600)")
    parser.add_argument("--no-cache-check", action="store_true", help="skip the cache check")
    parser.add_argument(
        "--path-impl",
        choices=("onehot", "switch"),
        help="how morphax runs a single path (gdas, spos); default: the supernet's",
    )
    parser.add_argument(
        "--quick", action="store_true", help="C=8, N=1, batch 8, darts1 unrolled, 3 iterations"
    )
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child))))
        return 0
    given = set(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.channels, args.cells, args.iters, args.warmup = 8, 1, 3, 1
        if not any(a.startswith("--batch-sizes") for a in given):
            args.batch_sizes = "8"
        if not any(a.startswith("--strategies") for a in given):
            args.strategies = "darts1"
        if not any(a.startswith("--layouts") for a in given):
            args.layouts = "unrolled"
    strategies = _list(args.strategies, STRATEGIES, "--strategies")
    layouts = _list(args.layouts, LAYOUTS, "--layouts")
    impls = _list(args.impls, IMPLS, "--impls")
    try:
        batches = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--batch-sizes takes integers, but got {args.batch_sizes!r}") from None
    if min(batches) < 1 or args.channels < 1 or args.cells < 1 or args.iters < 1 or args.warmup < 0:
        raise SystemExit("--batch-sizes, --channels, --cells, --iters must be >= 1, --warmup >= 0")

    start = time.perf_counter()
    info = machine()
    results = []
    for strategy in strategies:
        for layout in layouts:
            for batch in batches:
                cfg = {
                    "strategy": strategy,
                    "layout": layout,
                    "batch": batch,
                    "channels": args.channels,
                    "cells": args.cells,
                    "impls": impls,
                    "iters": args.iters,
                    "warmup": args.warmup,
                    "cache_dir": None,
                    "path_impl": args.path_impl,
                }
                results.append(run_child(cfg, args.timeout))
    cache = None
    if not args.no_cache_check:
        base = {
            "strategy": strategies[0],
            "layout": layouts[0],
            "batch": batches[0],
            "channels": args.channels,
            "cells": args.cells,
            "path_impl": args.path_impl,
        }
        cache = cache_check(base, impls[-1], args.timeout)
    rows = ratios(results)
    probe = remat_probe() if "remat" in layouts else None
    out = {
        "benchmark": "oneshot_nb201",
        "network": f"NAS-Bench-201 search net C={args.channels} N={args.cells}, 32x32x3, 10 classes",
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k != "child"},
        "results": results,
        "ratios": rows,
        "cache_check": cache,
        "remat_probe": probe,
        "goals": {
            "step_ratio": f"morphax ms / hand-written ms <= {GOAL_RATIO}",
            "step_ratio_met": all(r["met"] for r in rows) if rows else None,
            "warm_cache": f"first step of a rerun within {GOAL_WARM_FIRST_STEP_S} s of launch",
            "warm_cache_met": cache["met"] if cache else None,
        },
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
