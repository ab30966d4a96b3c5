"""What training measures: parameter counts, FLOPs and timings."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from ._steps import TrainState, _Steps


def _flops(compiled: Any) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(cost, list):
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def _timed_compile(jitted: Any, *args: Any, once: bool = False) -> tuple[Any, float]:
    """Compiles ahead of time; returns (executable, seconds).

    Random bits are traced with `jax.threefry_partitionable(False)`: on one
    device the values are as good, and XLA compiles parameter initializers
    about three times faster on CPU. Code that runs `once` (initializers) is
    compiled without LLVM optimizations on CPU, which halves the time again.
    """
    options = {"xla_backend_optimization_level": 0} if once and _on_cpu() else None
    t0 = time.perf_counter()
    with jax.threefry_partitionable(False):
        compiled = jitted.lower(*args).compile(options)
    return compiled, time.perf_counter() - t0


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def _final_metrics(
    state: TrainState, history: list[dict[str, float]], steps: _Steps, step_times: list[float]
) -> dict[str, float]:
    return {
        **history[-1],
        "params": float(sum(np.size(p) for p in jax.tree.leaves(state.params))),
        "flops_per_example": steps.flops_per_example or math.nan,
        "step_time_ms": float(np.median(step_times[1:] or step_times) * 1e3),
        "compile_s": steps.compile_s,
        "steps": float(int(state.step)),
        "epochs": float(len(history)),
    }
