"""morphax.train with Flax NNX: tracing a constructor, building children, fit, search."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import morphax as mx
from morphax import train as mt
from morphax.testing import log_compilations

TX = optax.adam(1e-2)


class CNN(nnx.Module):
    """Flax's NNX MNIST tutorial CNN, as the tutorial writes it, with four
    hyper-values added (two widths, the hidden size, the dropout rate) and
    sized for the 8x8 digits (two 2x2 pools: 2x2 positions left)."""

    def __init__(self, *, rngs: nnx.Rngs):
        c1 = mx.oneof([8, 16], name="conv1")
        c2 = mx.oneof([16, 32], name="conv2")
        hidden = mx.oneof([32, 64], name="hidden")
        rate = mx.oneof([0.0, 0.1], name="dropout")
        self.conv1 = nnx.Conv(1, c1, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(c1, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=rate, rngs=rngs)
        self.conv2 = nnx.Conv(c1, c2, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(c2, rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(2 * 2 * c2, hidden, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=rate, rngs=rngs)
        self.linear2 = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x)))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)  # flatten
        x = nnx.relu(self.dropout2(self.linear1(x)))
        x = self.linear2(x)
        return x


class MLP(nnx.Module):
    """Hyper-values in constructor arguments: searched through mx.symbolic."""

    def __init__(self, din: int, hidden: int, dout: int, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l2(nnx.relu(self.l1(x.reshape(x.shape[0], -1))))


@pytest.fixture(scope="module")
def digits() -> tuple[mt.Dataset, mt.Dataset]:
    return mt.load_digits()


def test_trace_an_nnx_constructor_without_allocating() -> None:
    rngs = nnx.Rngs(0)
    before = jax.tree.leaves(nnx.state(rngs))
    space = mx.trace(CNN, rngs=rngs)
    assert space.spec.space_size == 16
    assert [c.id for c in space.spec.columns] == ["conv1", "conv2", "hidden", "dropout"]
    # tracing ran abstractly on copies: the caller's Rngs did not move
    assert all(np.array_equal(jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key)
                              else a, jax.random.key_data(b) if jnp.issubdtype(b.dtype,
                              jax.dtypes.prng_key) else b)
               for a, b in zip(before, jax.tree.leaves(nnx.state(rngs)), strict=True))  # fmt: skip
    child = mx.materialize(space, mx.DNA([1, 0, 1, 1]))
    module = mx.build(child)
    assert isinstance(module, CNN)
    assert module.conv1.kernel.shape == (3, 3, 1, 16) and module.linear1.kernel.shape == (64, 64)
    assert module.dropout1.rate == 0.1
    again = mx.build(mx.materialize(space, mx.DNA([1, 0, 1, 1])))
    assert np.array_equal(again.conv1.kernel[...], module.conv1.kernel[...])  # same weights


def test_fit_trains_nnx_and_compiles_once_per_structure(digits: Any) -> None:
    train, test = digits
    space = mx.trace(CNN, rngs=nnx.Rngs(0))
    child = mx.materialize(space, mx.DNA([0, 0, 0, 1]))
    result = mt.fit(child, TX, train, valid_data=test, epochs=2)
    m = result.metrics
    assert m["accuracy"] > 0.7, m
    assert m["params"] == sum(np.size(p) for p in jax.tree.leaves(nnx.state(mx.build(child),
                                                                             nnx.Param)))  # fmt: skip
    assert m["compile_s"] > 0 and m["flops_per_example"] > 0 and "train_accuracy" in m
    with log_compilations() as log:
        # the same child materialized again: cached
        same = mt.fit(mx.materialize(space, mx.DNA([0, 0, 0, 1])), TX, train, epochs=1)
    assert same.metrics["compile_s"] == 0.0 and log.compiles["train_step"] == 0
    with log_compilations() as log:
        mt.fit(mx.materialize(space, mx.DNA([1, 0, 0, 1])), TX, train, epochs=1)
    assert log.compiles["train_step"] == 1  # a new structure compiles anew


def test_symbolic_nnx_constructor_arguments(digits: Any) -> None:
    train, test = digits
    space = mx.symbolic(MLP)(64, mx.oneof([16, 32], name="hidden"), 10, rngs=nnx.Rngs(0))
    child = mx.materialize(space, mx.DNA([1]))
    assert isinstance(mx.build(child), MLP)
    lr = mx.symbolic(optax.adam)(learning_rate=mx.floatv(1e-3, 1e-1, scale="log"))
    result = mt.fit(child, mx.materialize(lr, mx.DNA([1e-2])), train, valid_data=test, epochs=2)
    assert result.metrics["accuracy"] > 0.7 and result.metrics["params"] == 64 * 32 + 32 + 330


@pytest.mark.parametrize(
    "algorithm", [mx.algorithms.Random(seed=0), mx.algorithms.RegularizedEvolution(
        population_size=2, tournament_size=2, seed=0)], ids=["random", "evolution"]
)  # fmt: skip
def test_search_the_nnx_tutorial_cnn(digits: Any, algorithm: Any) -> None:
    train, test = digits
    space = mx.trace(CNN, rngs=nnx.Rngs(0))
    scores = []
    for trial in mx.search(space, algorithm, num_trials=3):
        result = mt.fit(trial.program, TX, train, valid_data=test, epochs=1)
        trial.report(result.metrics["accuracy"])
        scores.append(result.metrics["train_accuracy"])
    # one epoch: BatchNorm's running averages (momentum 0.99) still lag, so the
    # held-out accuracy is low; the training accuracy shows that children learn
    assert len(scores) == 3 and max(scores) > 0.5, scores
