"""What a child is trained for: its loss, accuracy where it means something,
user metrics, and the checks that the model's output fits them."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._data import Dataset

Loss = Callable[[jax.Array, jax.Array], jax.Array]
Metric = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels (computed in float32)."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels
    ).mean()


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error (computed in float32); shapes must be equal."""
    return jnp.mean((outputs.astype(jnp.float32) - targets.astype(jnp.float32)) ** 2)


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean sigmoid binary cross-entropy of logits against targets in [0, 1]."""
    return optax.sigmoid_binary_cross_entropy(
        logits.astype(jnp.float32), targets.astype(jnp.float32)
    ).mean()


LOSSES: dict[str, Loss] = {
    "cross_entropy": cross_entropy,
    "softmax_cross_entropy": cross_entropy,
    "mse": mse,
    "binary_cross_entropy": binary_cross_entropy,
}
_SOFTMAX = ("cross_entropy", "softmax_cross_entropy")
_ELEMENTWISE = ("mse", "binary_cross_entropy")


def _argmax_correct(out: jax.Array, y: jax.Array) -> jax.Array:
    return (jnp.argmax(out, -1) == y).astype(jnp.float32)


def _binary_correct(out: jax.Array, y: jax.Array) -> jax.Array:
    hit = (out > 0) == (y > 0.5)
    return hit.reshape(hit.shape[0], -1).mean(-1).astype(jnp.float32)


@dataclass(frozen=True)
class Task:
    """A loss, its accuracy (None where accuracy means nothing) and user metrics."""

    name: str
    loss: Loss
    accuracy: Callable[[jax.Array, jax.Array], jax.Array] | None
    metrics: tuple[tuple[str, Metric], ...]

    @property
    def key(self) -> Hashable:
        loss_key = self.name if self.name in LOSSES else ("callable", self.loss)
        return (loss_key, self.accuracy, self.metrics)


def make_task(
    loss: str | Loss | None,
    metrics: Mapping[str, Metric] | Sequence[Metric] | None,
    data: Dataset,
) -> Task:
    """The task of `fit(..., loss=, metrics=)` on `data`.

    `loss=None` is cross-entropy for class labels, MSE for other targets.
    Accuracy is reported for the softmax and binary cross-entropies, and for
    a loss function on data with classes.
    """
    if loss is None:
        loss = "cross_entropy" if data.num_classes is not None else "mse"
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(
                f"unknown loss {loss!r}; known losses: {sorted(LOSSES)}, or pass a function "
                "loss(outputs, targets) -> scalar"
            )
        name, fn = loss, LOSSES[loss]
    elif callable(loss):
        name, fn = getattr(loss, "__name__", "loss"), loss
    else:
        raise TypeError(
            f"the loss must be a name in {sorted(LOSSES)} or a callable, but got {loss!r}"
        )
    accuracy: Any = None
    if name in _SOFTMAX or (name not in LOSSES and data.num_classes is not None):
        accuracy = _argmax_correct
    elif name == "binary_cross_entropy":
        accuracy = _binary_correct
    return Task(name, fn, accuracy, _metrics(metrics))


def _metrics(metrics: Mapping[str, Metric] | Sequence[Metric] | None) -> tuple[Any, ...]:
    if metrics is None:
        return ()
    pairs = (
        list(metrics.items())
        if isinstance(metrics, Mapping)
        else [(getattr(m, "__name__", repr(m)), m) for m in metrics]
    )
    reserved = {"loss", "accuracy", "count", "correct"}
    for name, fn in pairs:
        if not callable(fn):
            raise TypeError(
                f"metric {name!r} must be a function metric(outputs, targets) -> scalar, "
                f"but got {fn!r}"
            )
        if name in reserved or name.startswith("train_"):
            raise ValueError(
                f"metric name {name!r} is taken by fit's own metrics; give it another name "
                "(pass metrics as a dict {name: fn})"
            )
    return tuple((str(n), f) for n, f in pairs)


def check_output(task: Task, out: Any, data: Dataset, batch_size: int) -> None:
    """Raises a ValueError naming both shapes when the model's output does not
    fit the loss, or when labels are out of range for the model's classes."""
    shape = tuple(getattr(out, "shape", ()))
    y = jax.ShapeDtypeStruct((batch_size, *data.target_shape), data.y.dtype)
    if task.name in _SOFTMAX:
        if data.num_classes is not None and shape != (batch_size, data.num_classes):
            raise ValueError(
                f"the model's output shape {shape} does not fit {task.name} over "
                f"{data.num_classes} classes: expected {(batch_size, data.num_classes)} (batch, "
                "num_classes); check the model's num_classes"
            )
        if not np.issubdtype(data.y.dtype, np.integer):
            raise ValueError(
                f"{task.name} needs integer class labels, but {data.name} has targets of dtype "
                f"{data.y.dtype}; use loss='mse' for regression targets"
            )
        if len(shape) >= 1 and len(data) and (data.y.min() < 0 or data.y.max() >= shape[-1]):
            bad = data.y[(data.y < 0) | (data.y >= shape[-1])].flat[0]
            raise ValueError(
                f"label {int(bad)} of {data.name} is out of range for the model's output of "
                f"shape {shape}: labels must be in [0, {shape[-1]}); fix the labels or the "
                "model's number of classes"
            )
    if task.name in _ELEMENTWISE and shape != y.shape:
        raise ValueError(
            f"the model's output shape {shape} does not fit the loss {task.name!r} with "
            f"targets of shape {y.shape}: they must be equal (broadcasting would silently "
            "compare every output with every target); change the model's last layer or "
            "reshape the targets"
        )
    if task.name == "binary_cross_entropy" and len(data) and (data.y.min() < 0 or data.y.max() > 1):
        raise ValueError(
            f"binary_cross_entropy needs targets in [0, 1], but {data.name}'s span "
            f"{data.y.min()}..{data.y.max()}"
        )
    try:
        value = jax.eval_shape(task.loss, out, y)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"the model's output shape {shape} does not fit the loss {task.name!r} with "
            f"targets of shape {y.shape}: {e}"
        ) from None
    if getattr(value, "shape", None) != ():
        raise ValueError(
            f"the loss {task.name!r} must return a scalar, but returned shape {value.shape} "
            f"for outputs of shape {shape} and targets of shape {y.shape}"
        )
