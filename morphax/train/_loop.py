"""Child programs to jitted JAX training and evaluation: :func:`fit`.

:func:`fit` is the convenient face over the pure steps of
:mod:`morphax.train._steps`: it trains a child and returns its metrics. Its
steps are compiled ahead of time once per distinct (model, optimizer, loss,
batch shape) and cached by value, never by `id`.
"""

from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import Call, build
from ._data import Dataset, prefetch_to_device
from ._metrics import _final_metrics
from ._steps import (
    _SHAPE_CACHE,
    LOSSES,
    EvalStep,
    Loss,
    TrainState,
    _apply,
    _cached,
    _compile,
    _Entry,
    _Key,
    init,
)


class TrainingDiverged(FloatingPointError):
    """The training (or held-out) loss became NaN or infinite."""


@dataclass
class FitResult:
    """What :func:`fit` measured; `metrics` is what a search trial reports."""

    state: TrainState
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    _eval: Any = field(default=None, repr=False)
    _batch_size: int = 0
    _data: Dataset | None = field(default=None, repr=False)

    def evaluate(self, data: Dataset) -> dict[str, float]:
        """`accuracy` and `loss` of the trained child on `data` (e.g. a test set).

        Raises:
            ValueError: if `data` does not match the training data's input
                shape and classes, or is empty.
        """
        if self._data is not None:
            _check_compatible(self._data, data)
        return evaluate(self.state, self._eval, data, self._batch_size)


def evaluate(
    state: TrainState, eval_step: EvalStep, data: Dataset, batch_size: int
) -> dict[str, float]:
    """`loss` and `accuracy` on `data`, with `eval_step` (from
    :func:`make_eval_step`, jitted for `batch_size`); the last batch is padded.
    """
    if len(data) == 0:
        raise ValueError(f"cannot evaluate on {data.name}: it has no examples")
    outs = []
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        pad = batch_size - len(y)
        weight = np.ones(batch_size, np.float32)
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros(pad, y.dtype)])
            weight[-pad:] = 0.0
        outs.append(eval_step(state.params, state.model_state, x, y, weight))
    totals = {k: float(np.sum([o[k] for o in jax.device_get(outs)])) for k in outs[0]}
    count = max(totals["count"], 1.0)
    return {"loss": totals["loss"] / count, "accuracy": totals["correct"] / count}


def _optimizer(optimizer: Any) -> tuple[optax.GradientTransformation, Hashable]:
    """The real optimizer and its cache key (by value for symbolic programs;
    the object itself otherwise, so an equal object never hits another's entry)."""
    if isinstance(optimizer, Call):
        tx = build(optimizer)
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(
                f"the optimizer program must build an optax GradientTransformation, "
                f"but {optimizer!r} built {tx!r}"
            )
        return tx, _Key(optimizer)
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer, ("object", optimizer)
    raise TypeError(
        "the optimizer must be an optax GradientTransformation or a symbolic program that "
        f"builds one (e.g. mx.symbolic(optax.adam)(learning_rate=1e-3)), but got {optimizer!r}"
    )


def _loss(loss: str | Loss) -> tuple[Hashable, Loss]:
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; known losses: {sorted(LOSSES)}")
        return loss, LOSSES[loss]
    if callable(loss):
        return ("callable", loss), loss
    raise TypeError(f"the loss must be a name in {sorted(LOSSES)} or a callable, but got {loss!r}")


def _as_key(key: jax.Array | int) -> jax.Array:
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(key)  # a raw uint32 key (jax.random.PRNGKey)
    return key


def _check_compatible(train: Dataset, other: Dataset) -> None:
    if other.input_shape != train.input_shape or other.num_classes != train.num_classes:
        raise ValueError(
            f"{other.name} has inputs of shape {other.input_shape} and {other.num_classes} "
            f"classes, but the child was trained on {train.name} with {train.input_shape} and "
            f"{train.num_classes}; they must match"
        )
    if len(other) == 0:
        raise ValueError(f"{other.name} has no examples to evaluate on")


def _check_args(train: Dataset, valid: Dataset | None, epochs: int, batch_size: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, but got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, but got {batch_size!r}")
    if len(train) < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(train)} training examples of "
            f"{train.name}; use a batch size of at most {len(train)}"
        )
    if valid is not None:
        _check_compatible(train, valid)


def _abstract_state(
    model: Any,
    tx: optax.GradientTransformation,
    opt_key: Hashable,
    loss: tuple[Hashable, Loss],
    x0: np.ndarray,
    key: jax.Array,
    data: Dataset,
) -> TrainState:
    """The shape-only initial state, traced and checked once per child structure."""

    def make() -> _Entry:
        abstract = jax.eval_shape(lambda x, k: init(model, tx, x, key=k), x0, key)
        _check_output(model, abstract, x0, data, loss)
        return _Entry(abstract, 0.0)

    cache_key = (_Key(model), opt_key, loss[0], x0.shape, data.num_classes)
    entry, _ = _cached(_SHAPE_CACHE, cache_key, make)
    return typing.cast(TrainState, entry.fn)


def _check_output(
    model: Any, state: TrainState, x0: np.ndarray, data: Dataset, loss: tuple[Hashable, Loss]
) -> None:
    """Raises a ValueError naming both shapes when the model's output does not fit the loss."""
    variables = {"params": state.params, **state.model_state}
    out = jax.eval_shape(
        lambda v, x: _apply(model, v, x, train=False, mutable=False), variables, x0
    )
    want = (len(x0), data.num_classes)
    shape = tuple(getattr(out, "shape", ()))
    if loss[0] == "cross_entropy" and shape != want:
        raise ValueError(
            f"the model's output shape {shape} does not fit cross_entropy over "
            f"{data.num_classes} classes: expected {want} (batch, num_classes); check the "
            "model's num_classes"
        )
    y = jax.ShapeDtypeStruct((len(x0),), jnp.int32)
    try:
        value = jax.eval_shape(loss[1], out, y)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"the model's output shape {shape} does not fit the loss {loss[0]!r} with labels "
            f"of shape {y.shape}: {e}"
        ) from None
    if getattr(value, "shape", None) != ():
        raise ValueError(
            f"the loss {loss[0]!r} must return a scalar, but returned shape {value.shape} "
            f"for outputs of shape {shape}"
        )


def _train_epoch(
    train_step: Any,
    state: TrainState,
    data: Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    prefetch: int,
) -> tuple[TrainState, dict[str, float], float]:
    """One pass over `data`: (state, train metrics, seconds per step)."""
    outs = []
    t0 = time.perf_counter()
    batches: Iterable[tuple[Any, Any]] = data.batches(batch_size, seed=seed)
    if prefetch:
        batches = prefetch_to_device(batches, size=prefetch)
    for x, y in batches:
        state, m = train_step(state, x, y)
        outs.append(m)
    host = jax.device_get(outs)  # waits for the epoch's steps
    seconds = (time.perf_counter() - t0) / len(outs)
    losses = np.array([m["loss"] for m in host])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise TrainingDiverged(
            f"the training loss became {losses[bad[0]]} at step {bad[0] + 1} of epoch {epoch}; "
            "lower the learning rate or check the model and data"
        )
    accuracy = float(np.mean([m["accuracy"] for m in host]))
    return state, {"train_loss": float(losses.mean()), "train_accuracy": accuracy}, seconds


def _prefetch_size(prefetch: int | None) -> int:
    if prefetch is None:
        return 0 if jax.default_backend() == "cpu" else 2
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0 or None, but got {prefetch!r}")
    return prefetch


def fit(
    model: Any,
    optimizer: Any,
    train_data: Dataset,
    *,
    valid_data: Dataset | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    key: jax.Array | int = 0,
    loss: str | Loss = "cross_entropy",
    compute_dtype: Any = None,
    on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
    prefetch: int | None = None,
) -> FitResult:
    """Trains a child program and evaluates it.

    Args:
        model: a Flax linen module (a materialized child, or a DynamicChild).
        optimizer: an optax optimizer, or a symbolic program building one (so
            its learning rate and kind can be searched). Symbolic programs
            are cached by value; a plain optax object by identity, so pass
            the same object to reuse compiled steps.
        train_data: the training set.
        valid_data: the held-out set for `accuracy`/`loss` (default: train);
            it may be smaller than a batch.
        epochs: passes over the training data.
        batch_size: the batch size (the last partial training batch is dropped).
        key: a JAX PRNG key or an int seed (init, dropout and shuffling).
        loss: "cross_entropy", or a callable `loss(logits, labels) -> scalar`
            (a mean over the batch).
        compute_dtype: e.g. `jnp.bfloat16` to compute in bf16 (master weights
            stay float32); for GPUs.
        on_epoch: called after each epoch with (epoch, metrics); returning
            True stops training (early stopping).
        prefetch: how many batches to copy to the device ahead of the step
            (:func:`prefetch_to_device`); None: 2 on accelerators, 0 on CPU
            (where the extra copy costs more than it hides).

    Returns:
        A FitResult whose `metrics` hold `accuracy` and `loss` (held-out),
        `train_loss`, `train_accuracy`, `params` (the parameter count),
        `flops_per_example` (forward pass, XLA's estimate), `step_time_ms`
        (wall time per training step, input feeding included, median over the
        epochs after the first), `compile_s` (0 when the steps were cached),
        `steps` and `epochs`.

    Raises:
        ValueError: if the model's output does not fit the loss, or the
            arguments or data do not fit together.
        TrainingDiverged: if the loss becomes NaN or infinite.

    Examples:
        >>> import optax
        >>> from morphax.spaces.cnn import MLP
        >>> from morphax.train import fit, load_digits
        >>> train, test = load_digits()
        >>> result = fit(MLP(hidden=(32,)), optax.adam(1e-2), train, valid_data=test, epochs=2)
        >>> result.metrics["accuracy"] > 0.5
        True
    """
    loss_pair = _loss(loss)
    _check_args(train_data, valid_data, epochs, batch_size)
    ahead = _prefetch_size(prefetch)
    tx, opt_key = _optimizer(optimizer)
    init_key, shuffle_key = jax.random.split(_as_key(key))
    seed = int(jax.random.randint(shuffle_key, (), 0, 2**31 - 1))
    x0 = train_data.x[:batch_size]
    abstract = _abstract_state(model, tx, opt_key, loss_pair, x0, init_key, train_data)
    steps = _compile(model, tx, opt_key, loss_pair, abstract, train_data, batch_size, compute_dtype)
    var_key, train_key = jax.random.split(init_key)  # as init() does
    params, model_state = steps.init_variables(x0, var_key)
    state = TrainState(
        jnp.zeros((), jnp.int32), params, model_state, steps.init_opt(params), train_key
    )
    valid = valid_data if valid_data is not None else train_data
    history: list[dict[str, float]] = []
    step_times: list[float] = []
    for epoch in range(1, epochs + 1):
        state, train_metrics, seconds = _train_epoch(
            steps.train,
            state,
            train_data,
            batch_size,
            seed=seed + epoch,
            epoch=epoch,
            prefetch=ahead,
        )
        step_times.append(seconds)
        metrics = evaluate(state, steps.eval, valid, batch_size)
        if not math.isfinite(metrics["loss"]):
            raise TrainingDiverged(
                f"the held-out loss on {valid.name} became {metrics['loss']} after epoch {epoch}; "
                "lower the learning rate or check the model and data"
            )
        history.append({**metrics, **train_metrics})
        if on_epoch is not None and on_epoch(epoch, dict(history[-1])):
            break
    final = _final_metrics(state, history, steps, step_times)
    return FitResult(state, final, history, steps.eval, batch_size, train_data)
