"""Training-loop overhead: `morphax.train.fit` next to a hand-written Flax + optax
loop, in one process.

Both loops train the same plain Flax CNN on the embedded digits (8x8, 10
classes) with the same optimizer object, batch size, number of steps and data
order, from the same init key, and evaluate on the same held-out set after
each epoch. The hand-written loop is the idiomatic one: `jax.jit` steps with
the state donated, a flax `TrainState`, numpy batches fed straight to the
step, the losses kept on the device until the end of the epoch (one host sync
per epoch, and one per evaluation).

Measured, compile time excluded (every step is compiled in a warm-up first):

* end to end: steps per second of a whole `fit(...)` call (init, epochs,
  per-epoch evaluation) next to the same work by the hand-written loop;
* training only: steps per second of the training epochs alone (morphax's own
  `step_time_ms`, the hand loop timed the same way: epoch start to the
  epoch's losses on the host, median over the epochs after the first);
* fixed cost per call: from runs of 1 and of E epochs, `(E * t1 - tE) / (E - 1)`.

Runs are interleaved (the order alternates) and medians are kept, since the
machine may be shared. Then the compile time per new architecture: several
distinct CNNs, each trained once by `fit` (its `compile_s`, and the whole
first call next to a second, cached call), and the hand loop's compile time
of the same architectures (init, train and eval steps) for reference.

Goal: morphax's loop within 5% of the hand-written one (ratio >= 0.95).
The same for NNX: `fit` on an NNX module (the same CNN, `NNXCNN`) next to
the hand-written NNX loop of Flax's tutorials (`nnx.jit` steps taking the
module and an `nnx.Optimizer`), same data order and optimizer.
Last, a learning-rate search (`--lr-trials`, 20 trials of one epoch on one
architecture): compile time per trial with each rate compiled in as a
constant (before) and with the rate a value of the compiled step (after).

Runs on CPU or GPU unchanged. Prints JSON.

`--profile` prints, to stderr, where a cached `fit` call spends its time
(cProfile over warm one-epoch calls). `--prng-impl rbg` makes every key an
rbg key, to see what the PRNG costs in compile time.

Usage: python benchmarks/train_overhead.py [--epochs 10] [--repeats 7] [--archs 5]
           [--prng-impl threefry2x32|rbg] [--profile] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from flax.training import train_state

import morphax as mx
from morphax import train as mt
from morphax.train import Dataset, fit, load_digits

GOAL_RATIO = 0.95


class CNN(nn.Module):
    """A plain Flax CNN: conv, relu and 2x2 max-pool per block, then a dense head."""

    features: Sequence[int] = (16, 32)
    kernel_size: int = 3
    hidden: int = 64
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.features:
            x = nn.Conv(width, (self.kernel_size, self.kernel_size))(x)
            x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_classes)(x)


#: Distinct architectures for the compile-time measurement (new shapes each).
ARCHITECTURES = [
    CNN(features=(8, 16), hidden=32),
    CNN(features=(16, 32), kernel_size=5, hidden=64),
    CNN(features=(24,), hidden=48),
    CNN(features=(12, 24, 48), hidden=96),
    CNN(features=(32, 64), hidden=128),
    CNN(features=(20, 40), kernel_size=5, hidden=80),
    CNN(features=(40,), kernel_size=5, hidden=24),
]


# ---------------------------------------------------------------------------
# The hand-written loop.


def fit_keys(seed: int) -> tuple[jax.Array, int]:
    """The parameter-init key and the shuffling seed, derived from `seed` the way
    `fit` derives them, so both loops see the same batches in the same order.
    (The initial parameters may still differ in their bits: `fit` may draw
    them with its own PRNG settings.)"""
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    shuffle_seed = int(jax.random.randint(shuffle_key, (), 0, 2**31 - 1))
    params_key, _ = jax.random.split(init_key)
    return params_key, shuffle_seed


class HandLoop:
    """A hand-written Flax + optax training loop for one model, as a user writes it."""

    def __init__(self, model: nn.Module, tx: optax.GradientTransformation) -> None:
        self.model = model

        def create(key: jax.Array, x: jax.Array) -> train_state.TrainState:
            params = model.init(key, x)["params"]
            return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

        def train_step(
            state: train_state.TrainState, x: jax.Array, y: jax.Array
        ) -> tuple[train_state.TrainState, jax.Array]:
            def loss_fn(params: Any) -> jax.Array:
                logits = state.apply_fn({"params": params}, x)
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

            loss, grads = jax.value_and_grad(loss_fn)(state.params)
            return state.apply_gradients(grads=grads), loss

        def eval_step(
            params: Any, x: jax.Array, y: jax.Array, weight: jax.Array
        ) -> tuple[jax.Array, jax.Array]:
            logits = model.apply({"params": params}, x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
            return (loss * weight).sum(), (correct * weight).sum()

        self.create: Any = jax.jit(create)
        self.train_step: Any = jax.jit(train_step, donate_argnums=0)
        self.eval_step: Any = jax.jit(eval_step)

    def compile(self, batch_size: int, input_shape: tuple[int, ...]) -> float:
        """Compiles the three steps ahead of time; returns the seconds it took."""
        x = jax.ShapeDtypeStruct((batch_size, *input_shape), jnp.float32)
        y = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
        w = jax.ShapeDtypeStruct((batch_size,), jnp.float32)
        start = time.perf_counter()
        key = jax.random.key(0)
        state = jax.eval_shape(self.create, key, x)
        self.create = self.create.lower(key, x).compile()
        self.train_step = self.train_step.lower(state, x, y).compile()
        self.eval_step = self.eval_step.lower(state.params, x, y, w).compile()
        return time.perf_counter() - start

    def evaluate(self, params: Any, data: Dataset, batch_size: int) -> float:
        sums = []
        for i in range(0, len(data), batch_size):
            x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
            weight = np.ones(batch_size, np.float32)
            pad = batch_size - len(y)
            if pad:
                x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
                y = np.concatenate([y, np.zeros(pad, y.dtype)])
                weight[-pad:] = 0.0
            sums.append(self.eval_step(params, x, y, weight))
        correct = sum(float(c) for _, c in jax.device_get(sums))
        return correct / len(data)

    def fit(
        self, train: Dataset, valid: Dataset, *, epochs: int, batch_size: int, seed: int
    ) -> dict[str, float]:
        key, shuffle_seed = fit_keys(seed)
        state = self.create(key, train.x[:batch_size])
        n = len(train)
        stop = n - n % batch_size
        step_times, accuracy, train_loss = [], 0.0, float("nan")
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            order = np.random.default_rng(shuffle_seed + epoch).permutation(n)
            losses = []
            for i in range(0, stop, batch_size):
                idx = order[i : i + batch_size]
                state, loss = self.train_step(state, train.x[idx], train.y[idx])
                losses.append(loss)
            train_loss = float(np.mean(jax.device_get(losses)))  # one sync per epoch
            step_times.append((time.perf_counter() - start) / len(losses))
            accuracy = self.evaluate(state.params, valid, batch_size)
        return {
            "accuracy": accuracy,
            "train_loss": train_loss,
            "step_time_ms": float(np.median(step_times[1:] or step_times) * 1e3),
            "steps": float(int(state.step)),
        }


# ---------------------------------------------------------------------------
# Measurements.


def timed(fn: Callable[[], dict[str, float]]) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    metrics = fn()
    return time.perf_counter() - start, metrics


def compare(
    run_mx: Callable[[int], dict[str, float]],
    run_hand: Callable[[int], dict[str, float]],
    *,
    epochs: int,
    repeats: int,
) -> dict[str, Any]:
    """Steps per second of both loops (`run(epochs) -> metrics`), interleaved,
    after a warm-up call of each (compile excluded)."""
    first = run_mx(1)  # compiles morphax's steps
    run_hand(1)
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {
        k: [] for k in ("mx", "hand", "mx_1", "hand_1")
    }
    for r in range(repeats):
        order = [("mx", run_mx), ("hand", run_hand)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            runs[name].append(timed(lambda fn=fn: fn(epochs)))
            runs[name + "_1"].append(timed(lambda fn=fn: fn(1)))

    def summary(name: str) -> dict[str, float]:
        walls = [w for w, _ in runs[name]]
        walls_1 = [w for w, _ in runs[name + "_1"]]
        metrics = runs[name][-1][1]
        steps = metrics["steps"]
        wall, wall_1 = statistics.median(walls), statistics.median(walls_1)
        step_ms = statistics.median(m["step_time_ms"] for _, m in runs[name])
        return {
            "steps_per_s": round(steps / wall, 1),
            "train_steps_per_s": round(1e3 / step_ms, 1),
            "wall_s_median": round(wall, 4),
            "wall_s_min": round(min(walls), 4),
            "wall_s_max": round(max(walls), 4),
            "fixed_ms_per_call": round((epochs * wall_1 - wall) / (epochs - 1) * 1e3, 1)
            if epochs > 1
            else None,
            "final_train_loss": round(metrics["train_loss"], 6),
            "final_accuracy": round(metrics["accuracy"], 4),
        }

    mx_s, hand_s = summary("mx"), summary("hand")
    return {
        "steps_per_run": int(runs["mx"][-1][1]["steps"]),
        "epochs_per_run": epochs,
        "morphax": mx_s,
        "hand_written": hand_s,
        "ratio_morphax_over_hand": round(mx_s["steps_per_s"] / hand_s["steps_per_s"], 3),
        "train_only_ratio_morphax_over_hand": round(
            mx_s["train_steps_per_s"] / hand_s["train_steps_per_s"], 3
        ),
        "morphax_compile_s": round(first["compile_s"], 3),
    }


def throughput(
    model: nn.Module,
    tx: optax.GradientTransformation,
    train: Dataset,
    valid: Dataset,
    *,
    epochs: int,
    batch_size: int,
    repeats: int,
) -> dict[str, Any]:
    """Steps per second of `fit` and of the hand-written Linen loop."""
    hand = HandLoop(model, tx)
    hand_compile_s = hand.compile(batch_size, train.input_shape)

    def run_mx(e: int) -> dict[str, float]:
        return fit(
            model, tx, train, valid_data=valid, epochs=e, batch_size=batch_size, key=0
        ).metrics

    def run_hand(e: int) -> dict[str, float]:
        return hand.fit(train, valid, epochs=e, batch_size=batch_size, seed=0)

    result = compare(run_mx, run_hand, epochs=epochs, repeats=repeats)
    compile_s = {"morphax_fit": result.pop("morphax_compile_s"), "hand_written": hand_compile_s}
    return {"model": repr_model(model), **result, "compile_s": compile_s}


class NNXCNN(nnx.Module):
    """The default CNN (conv, relu, 2x2 max-pool per block, dense head) in NNX."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.convs = nnx.List(
            [nnx.Conv(1, 16, (3, 3), rngs=rngs), nnx.Conv(16, 32, (3, 3), rngs=rngs)]
        )
        self.hidden = nnx.Linear(2 * 2 * 32, 64, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv in self.convs:
            x = nnx.max_pool(nnx.relu(conv(x)), (2, 2), strides=(2, 2))
        return self.out(nnx.relu(self.hidden(x.reshape((x.shape[0], -1)))))


@nnx.jit
def nnx_train_step(model: NNXCNN, opt: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    def loss_fn(model: NNXCNN) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss


@nnx.jit
def nnx_eval_step(model: NNXCNN, x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    return ((jnp.argmax(model(x), -1) == y) * w).sum()


def nnx_hand_fit(
    tx: optax.GradientTransformation,
    train: Dataset,
    valid: Dataset,
    *,
    epochs: int,
    batch_size: int,
) -> dict[str, float]:
    """The hand-written NNX loop of Flax's tutorials: `nnx.jit` steps, `nnx.Optimizer`."""
    model = NNXCNN(rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    _, shuffle_seed = fit_keys(0)
    n, step_times, loss = len(train), [], float("nan")
    stop = n - n % batch_size
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = np.random.default_rng(shuffle_seed + epoch).permutation(n)
        model.train()
        losses = [
            nnx_train_step(model, opt, train.x[idx], train.y[idx])
            for idx in (order[i : i + batch_size] for i in range(0, stop, batch_size))
        ]
        loss = float(np.mean(jax.device_get(losses)))
        step_times.append((time.perf_counter() - start) / len(losses))
        model.eval()
        correct = []
        for i in range(0, len(valid), batch_size):
            x, y = valid.x[i : i + batch_size], valid.y[i : i + batch_size]
            w, pad = np.ones(batch_size, np.float32), batch_size - len(y)
            if pad:
                x, y = (
                    np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]),
                    np.pad(y, (0, pad)),
                )
                w[-pad:] = 0.0
            correct.append(nnx_eval_step(model, x, y, w))
        accuracy = float(np.sum(jax.device_get(correct))) / len(valid)
    return {
        "accuracy": accuracy,
        "train_loss": loss,
        "step_time_ms": float(np.median(step_times[1:] or step_times) * 1e3),
        "steps": float(epochs * (stop // batch_size)),
    }


def nnx_throughput(
    tx: optax.GradientTransformation,
    train: Dataset,
    valid: Dataset,
    *,
    epochs: int,
    batch_size: int,
    repeats: int,
) -> dict[str, Any]:
    """Steps per second of `fit` on an NNX module and of the hand-written NNX
    loop; each run builds the module from `nnx.Rngs(0)` (same weights)."""

    def run_mx(e: int) -> dict[str, float]:
        model = NNXCNN(rngs=nnx.Rngs(0))
        return fit(
            model, tx, train, valid_data=valid, epochs=e, batch_size=batch_size, key=0
        ).metrics

    def run_hand(e: int) -> dict[str, float]:
        return nnx_hand_fit(tx, train, valid, epochs=e, batch_size=batch_size)

    return {
        "model": "NNXCNN (= the default CNN)",
        **compare(run_mx, run_hand, epochs=epochs, repeats=repeats),
    }


def compile_per_architecture(
    tx: optax.GradientTransformation,
    train: Dataset,
    valid: Dataset,
    *,
    archs: int,
    batch_size: int,
) -> dict[str, Any]:
    """Per new architecture: fit's compile_s and whole first call, and the hand
    loop's compile time, the order alternating."""
    rows = []
    for i, model in enumerate(ARCHITECTURES[:archs]):

        def run_mx(model: nn.Module = model) -> dict[str, float]:
            return fit(
                model, tx, train, valid_data=valid, epochs=1, batch_size=batch_size, key=0
            ).metrics

        def run_hand(model: nn.Module = model) -> float:
            return HandLoop(model, tx).compile(batch_size, train.input_shape)

        if i % 2:
            hand_compile_s = run_hand()
        first_wall, first = timed(run_mx)
        second_wall, second = timed(run_mx)
        if not i % 2:
            hand_compile_s = run_hand()
        assert second["compile_s"] == 0.0, "a second fit of one architecture must hit the cache"
        rows.append(
            {
                "model": repr_model(model),
                "params": int(first["params"]),
                "morphax_compile_s": round(first["compile_s"], 3),
                "morphax_first_call_s": round(first_wall, 3),
                "morphax_cached_call_s": round(second_wall, 3),
                "hand_compile_s": round(hand_compile_s, 3),
            }
        )
    return {
        "architectures": rows,
        "median_morphax_compile_s": round(
            statistics.median(r["morphax_compile_s"] for r in rows), 3
        ),
        "median_morphax_first_call_overhead_s": round(
            statistics.median(r["morphax_first_call_s"] - r["morphax_cached_call_s"] for r in rows),
            3,
        ),
        "median_hand_compile_s": round(statistics.median(r["hand_compile_s"] for r in rows), 3),
    }


def lr_search(train: Dataset, valid: Dataset, *, trials: int, batch_size: int) -> dict[str, Any]:
    """Compile time per trial of a `trials`-trial learning-rate search on one
    architecture: before (`optimizer_values=False`: each rate compiled in as
    a constant, as every morphax release before this one did) and after (the
    rate a value of the compiled step). The cache is cleared before each."""
    space = mx.symbolic(optax.adam)(learning_rate=mx.floatv(1e-4, 1e-1, scale="log"))
    model = CNN(features=(12, 24), hidden=40)  # no other part trains it
    result = {}
    for label, as_values in (("before", False), ("after", True)):
        mt.clear_cache()
        compile_s, walls = [], []
        for trial in mx.search(space, mx.algorithms.Random(seed=0), num_trials=trials):
            opts = {"epochs": 1, "batch_size": batch_size, "optimizer_values": as_values}
            wall, metrics = timed(
                lambda p=trial.program, o=opts: fit(model, p, train, valid_data=valid, **o).metrics
            )
            trial.report(metrics["accuracy"])
            compile_s.append(metrics["compile_s"])
            walls.append(wall)
        result[label] = {
            "compile_s_per_trial": round(statistics.mean(compile_s), 3),
            "compile_s_total": round(sum(compile_s), 3),
            "trials_that_compiled": sum(c > 0 for c in compile_s),
            "wall_s_per_trial": round(statistics.mean(walls), 3),
        }
    before, after = result["before"], result["after"]
    result["compile_speedup"] = round(before["compile_s_total"] / after["compile_s_total"], 1)
    return {"trials": trials, "model": repr_model(model), "epochs_per_trial": 1, **result}


def profile_fit(
    tx: optax.GradientTransformation, train: Dataset, valid: Dataset, *, batch_size: int
) -> str:
    """The top of a cProfile of 20 cached one-epoch `fit` calls of the default CNN."""
    model = CNN()
    fit(model, tx, train, valid_data=valid, epochs=1, batch_size=batch_size, key=0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        fit(model, tx, train, valid_data=valid, epochs=1, batch_size=batch_size, key=0)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(r"morphax|train_overhead", 30)
    return text.getvalue()


def repr_model(model: CNN) -> str:
    return f"CNN(features={tuple(model.features)}, kernel_size={model.kernel_size}, hidden={model.hidden})"


def machine() -> dict[str, Any]:
    device = jax.devices()[0]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "morphax": mx.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed run (10)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved runs per loop (7)")
    parser.add_argument(
        "--archs",
        type=int,
        default=5,
        help=f"new architectures for compile times (5, at most {len(ARCHITECTURES)})",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument(
        "--prng-impl",
        choices=["threefry2x32", "rbg"],
        default="threefry2x32",
        help="JAX's PRNG for every key (threefry2x32, JAX's default)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile cached fit calls (to stderr)"
    )
    parser.add_argument(
        "--lr-trials", type=int, default=20, help="trials of the learning-rate search (20)"
    )
    parser.add_argument("--quick", action="store_true", help="2 epochs, 3 repeats, 2 archs")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.archs = 2, 3, 2
    if not 1 <= args.archs <= len(ARCHITECTURES):
        parser.error(f"--archs must be in 1..{len(ARCHITECTURES)}, but got {args.archs}")
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")

    info = machine()
    start = time.perf_counter()
    train, valid = load_digits()
    tx = optax.adam(1e-3)  # one object: fit caches compiled steps per optimizer object
    with jax.default_prng_impl(args.prng_impl):
        main_result = throughput(
            CNN(),
            tx,
            train,
            valid,
            epochs=args.epochs,
            batch_size=args.batch_size,
            repeats=args.repeats,
        )
        nnx_result = nnx_throughput(
            tx, train, valid, epochs=args.epochs, batch_size=args.batch_size, repeats=args.repeats
        )
        compile_result = compile_per_architecture(
            tx, train, valid, archs=args.archs, batch_size=args.batch_size
        )
        lr_result = lr_search(train, valid, trials=args.lr_trials, batch_size=args.batch_size)
        if args.profile:
            print(profile_fit(tx, train, valid, batch_size=args.batch_size), file=sys.stderr)
    out = {
        "benchmark": "train_overhead",
        "data": f"digits: {len(train)} train, {len(valid)} held-out, batch {args.batch_size}",
        "optimizer": "optax.adam(1e-3)",
        "machine": info,
        "settings": vars(args),
        "throughput": main_result,
        "nnx_throughput": nnx_result,
        "compile_per_new_architecture": compile_result,
        "learning_rate_search": lr_result,
        "goals": {
            "goal": f"morphax steps/s >= {GOAL_RATIO} x hand-written",
            "end_to_end_met": main_result["ratio_morphax_over_hand"] >= GOAL_RATIO,
            "train_only_met": main_result["train_only_ratio_morphax_over_hand"] >= GOAL_RATIO,
            "nnx_end_to_end_met": nnx_result["ratio_morphax_over_hand"] >= GOAL_RATIO,
            "nnx_train_only_met": nnx_result["train_only_ratio_morphax_over_hand"] >= GOAL_RATIO,
        },
        "load_average_1m_at_end": round(os.getloadavg()[0], 2)
        if hasattr(os, "getloadavg")
        else None,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
