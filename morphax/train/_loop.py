"""Child programs to jitted JAX training and evaluation.

Pure functions underneath — `init`, `train_step`, `eval_step` — with explicit
PRNG keys; :func:`fit` is the convenient face that trains a child and returns
its metrics. Steps are compiled ahead of time once per distinct (model,
optimizer, loss, batch shape): children with identical structure reuse one
executable, a child with a new structure compiles once, and nothing stale is
reused because the cache key is the child program's value.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import Call, build
from ..symbolic._tree import sym_eq, sym_hash
from ._data import Dataset


class TrainState(NamedTuple):
    """The state of training: a pytree you can checkpoint."""

    step: jax.Array
    params: Any
    model_state: Any  # non-parameter collections, e.g. {"batch_stats": ...}
    opt_state: Any


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


class _Key:
    """A cache key for a program: hashed and compared by value."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: Any) -> None:
        self.value = value
        try:
            self._hash = hash(value)
        except TypeError:
            self._hash = sym_hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and (
            self.value is other.value or sym_eq(self.value, other.value)
        )


def _takes_train(model: Any) -> bool:
    target = getattr(model, "target", model)  # DynamicChild wraps its module
    try:
        return "train" in inspect.signature(type(target).__call__).parameters
    except (TypeError, ValueError):
        return False


def _apply(
    model: Any, variables: Any, x: jax.Array, *, train: bool, takes_train: bool, mutable: bool
) -> Any:
    kwargs = {"train": train} if takes_train else {}
    if mutable:
        return model.apply(variables, x, mutable=["batch_stats"], **kwargs)
    return model.apply(variables, x, **kwargs)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels
    ).mean()


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {"cross_entropy": cross_entropy}

#: Incremented each time a step function is traced (so tests can count compiles).
TRACE_COUNTS: dict[str, int] = {"train_step": 0, "eval_step": 0}


def init(
    model: Any, optimizer: optax.GradientTransformation, example_x: Any, *, key: jax.Array
) -> TrainState:
    """Initializes parameters, non-parameter state and the optimizer state."""
    kwargs = {"train": False} if _takes_train(model) else {}
    variables = model.init(key, jnp.asarray(example_x), **kwargs)
    variables = dict(variables)
    params = variables.pop("params", {})
    return TrainState(jnp.zeros((), jnp.int32), params, variables, optimizer.init(params))


def make_train_step(
    model: Any,
    optimizer: optax.GradientTransformation,
    loss: Callable[..., jax.Array],
    *,
    compute_dtype: Any = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """A pure `train_step(state, x, y) -> (state, metrics)` for jit."""
    takes_train = _takes_train(model)

    def train_step(
        state: TrainState, x: jax.Array, y: jax.Array
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        TRACE_COUNTS["train_step"] += 1
        mutable = "batch_stats" in state.model_state

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[Any, jax.Array]]:
            p, xin = params, x
            if compute_dtype is not None:
                p = jax.tree.map(lambda a: a.astype(compute_dtype), params)
                xin = x.astype(compute_dtype)
            out = _apply(
                model,
                {"params": p, **state.model_state},
                xin,
                train=True,
                takes_train=takes_train,
                mutable=mutable,
            )
            logits, new_state = (out[0], out[1]) if mutable else (out, state.model_state)
            return loss(logits, y), (new_state, logits)

        (value, (new_model_state, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        accuracy = (jnp.argmax(logits, -1) == y).mean()
        return TrainState(state.step + 1, params, dict(new_model_state), opt_state), {
            "loss": value,
            "accuracy": accuracy,
        }

    return train_step


def make_eval_step(
    model: Any, loss: Callable[..., jax.Array]
) -> Callable[..., dict[str, jax.Array]]:
    """A pure `eval_step(state, x, y, weight) -> summed metrics` (weight masks padding)."""
    takes_train = _takes_train(model)

    def eval_step(
        state: TrainState, x: jax.Array, y: jax.Array, weight: jax.Array
    ) -> dict[str, jax.Array]:
        TRACE_COUNTS["eval_step"] += 1
        logits = _apply(
            model,
            {"params": state.params, **state.model_state},
            x,
            train=False,
            takes_train=takes_train,
            mutable=False,
        )
        logits = logits.astype(jnp.float32)
        per_example = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return {
            "loss": (per_example * weight).sum(),
            "correct": (correct * weight).sum(),
            "count": weight.sum(),
        }

    return eval_step


@dataclass
class _Compiled:
    train: Any
    eval: Any
    compile_s: float
    flops_per_example: float | None


_CACHE: dict[tuple[Any, ...], _Compiled] = {}


def clear_cache() -> None:
    """Forgets every compiled step (for tests and long-running processes)."""
    _CACHE.clear()


def _optimizer(optimizer: Any) -> tuple[optax.GradientTransformation, Any]:
    """The real optimizer and its cache key (by value for symbolic programs)."""
    if isinstance(optimizer, Call):
        return build(optimizer), _Key(optimizer)
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer, ("id", id(optimizer))
    raise TypeError(
        f"the optimizer must be an optax GradientTransformation or a symbolic program that builds one, "
        f"but got {optimizer!r}"
    )


def _flops(compiled: Any) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(cost, list):
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


@dataclass
class FitResult:
    """What :func:`fit` measured; `metrics` is what a search trial reports."""

    state: TrainState
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    _eval: Any = field(default=None, repr=False)
    _batch_size: int = 0

    def evaluate(self, data: Dataset) -> dict[str, float]:
        """`accuracy` and `loss` of the trained child on `data` (e.g. a test set)."""
        return evaluate(self.state, self._eval, data, self._batch_size)


def evaluate(
    state: TrainState, compiled_eval: Any, data: Dataset, batch_size: int
) -> dict[str, float]:
    totals = {"loss": 0.0, "correct": 0.0, "count": 0.0}
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        pad = batch_size - len(y)
        weight = np.ones(batch_size, np.float32)
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros(pad, y.dtype)])
            weight[-pad:] = 0.0
        out = compiled_eval(state, x, y, weight)
        for k in totals:
            totals[k] += float(out[k])
    count = max(totals["count"], 1.0)
    return {"loss": totals["loss"] / count, "accuracy": totals["correct"] / count}


def fit(
    model: Any,
    optimizer: Any,
    train_data: Dataset,
    *,
    valid_data: Dataset | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    key: jax.Array | int = 0,
    loss: str = "cross_entropy",
    compute_dtype: Any = None,
    on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
) -> FitResult:
    """Trains a child program and evaluates it.

    Args:
        model: a Flax linen module (a materialized child, or a DynamicChild).
        optimizer: an optax optimizer, or a symbolic program building one (so
            its learning rate and kind can be searched).
        train_data: the training set.
        valid_data: the held-out set for `accuracy`/`loss` (default: train).
        epochs: passes over the training data.
        batch_size: the batch size (the last partial batch is dropped).
        key: a JAX PRNG key or an int seed (init and shuffling).
        loss: "cross_entropy".
        compute_dtype: e.g. `jnp.bfloat16` to compute in bf16 (master weights
            stay float32); for GPUs.
        on_epoch: called after each epoch with (epoch, metrics); returning
            True stops training (early stopping).

    Returns:
        A FitResult whose `metrics` hold `accuracy` and `loss` (held-out),
        `train_loss`, `params`, `flops_per_example`, `step_time_ms`,
        `compile_s`, `steps` and `epochs`.

    Raises:
        ValueError: if the model's output does not fit the loss.
        TrainingDiverged: if the loss becomes NaN or infinite.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known losses: {sorted(LOSSES)}")
    if len(train_data) < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(train_data)} training examples of {train_data.name}"
        )
    loss_fn = LOSSES[loss]
    tx, opt_key = _optimizer(optimizer)
    if isinstance(key, int):
        key = jax.random.key(key)
    init_key, shuffle_key = jax.random.split(key)
    seed = int(jax.random.randint(shuffle_key, (), 0, 2**31 - 1))
    x0 = train_data.x[:batch_size]
    state = init(model, tx, x0, key=init_key)
    out = jax.eval_shape(
        lambda s, x: _apply(
            model,
            {"params": s.params, **s.model_state},
            x,
            train=False,
            takes_train=_takes_train(model),
            mutable=False,
        ),
        state,
        x0,
    )
    if out.shape != (batch_size, train_data.num_classes):
        raise ValueError(
            f"the model's output shape {tuple(out.shape)} does not fit {loss} over "
            f"{train_data.num_classes} classes: expected ({batch_size}, {train_data.num_classes})"
        )
    compiled = _compile(
        model, tx, opt_key, loss, loss_fn, state, train_data, batch_size, compute_dtype
    )
    valid = valid_data if valid_data is not None else train_data
    history: list[dict[str, float]] = []
    step_times: list[float] = []
    train_loss = math.nan
    for epoch in range(1, epochs + 1):
        losses = []
        t0 = time.perf_counter()
        for x, y in train_data.batches(batch_size, seed=seed + epoch):
            state, m = compiled.train(state, x, y)
            losses.append(m["loss"])
        train_loss = float(jnp.mean(jnp.stack(losses)))  # waits for the epoch's steps
        step_times.append((time.perf_counter() - t0) / len(losses))
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"the training loss became {train_loss} in epoch {epoch}")
        metrics = evaluate(state, compiled.eval, valid, batch_size)
        metrics["train_loss"] = train_loss
        history.append(metrics)
        if on_epoch is not None and on_epoch(epoch, metrics):
            break
    jax.block_until_ready(state.params)
    final = dict(history[-1])
    final.update(
        params=float(sum(np.size(p) for p in jax.tree.leaves(state.params))),
        flops_per_example=compiled.flops_per_example or math.nan,
        step_time_ms=float(np.median(step_times[1:] or step_times) * 1e3),
        compile_s=compiled.compile_s,
        steps=float(int(state.step)),
        epochs=float(len(history)),
    )
    return FitResult(state, final, history, compiled.eval, batch_size)


def _compile(
    model: Any,
    tx: Any,
    opt_key: Any,
    loss: str,
    loss_fn: Any,
    state: TrainState,
    data: Dataset,
    batch_size: int,
    compute_dtype: Any,
) -> _Compiled:
    key = (_Key(model), opt_key, loss, batch_size, data.input_shape, str(compute_dtype))
    hit = _CACHE.get(key)
    if hit is not None:
        return _Compiled(hit.train, hit.eval, 0.0, hit.flops_per_example)
    x = jax.ShapeDtypeStruct((batch_size, *data.input_shape), jnp.float32)
    y = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
    w = jax.ShapeDtypeStruct((batch_size,), jnp.float32)
    t0 = time.perf_counter()
    train = (
        jax.jit(make_train_step(model, tx, loss_fn, compute_dtype=compute_dtype), donate_argnums=0)
        .lower(state, x, y)
        .compile()
    )
    evaluate_ = jax.jit(make_eval_step(model, loss_fn)).lower(state, x, y, w).compile()
    compile_s = time.perf_counter() - t0
    flops = _flops(evaluate_)
    entry = _Compiled(train, evaluate_, compile_s, None if flops is None else flops / batch_size)
    _CACHE[key] = entry
    return entry
