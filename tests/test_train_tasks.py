"""morphax.train: clear errors, optimizer hyperparameters as step values, any loss."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import morphax as mx
from morphax import train as mt
from morphax.spaces.cnn import MLP
from morphax.testing import log_compilations

TX = optax.adam(1e-2)


@pytest.fixture(scope="module")
def digits() -> tuple[mt.Dataset, mt.Dataset]:
    return mt.load_digits()


# ---------------------------------------------------------------------------
# Item 6: clear errors.


def test_a_search_space_is_refused_with_the_call_to_make(digits: Any) -> None:
    train, _ = digits
    space = MLP(hidden=(mx.oneof([8, 16]),))
    with pytest.raises(TypeError, match=r"hyper-value at 'hidden\[0\]'; materialize a child"):
        mt.fit(space, TX, train)
    with pytest.raises(TypeError, match=r"mx\.materialize\(space, mx\.dna_spec\(space\)"):
        mt.fit(space, TX, train)

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            x = x.reshape((x.shape[0], -1))
            return nn.Dense(10)(nn.Dense(mx.oneof([4, 8], name="w"))(x))

    dyn = mx.trace(Net(), jnp.ones((1, 8, 8, 1)))
    with pytest.raises(TypeError, match=r"define-by-run search space .* space\.spec\.random_dna"):
        mt.fit(dyn, TX, train)
    child = mx.materialize(dyn, mx.DNA([1]))
    assert mt.fit(child, TX, train, epochs=1).metrics["params"] == 64 * 8 + 8 + 8 * 10 + 10


def test_a_symbolic_model_is_built(digits: Any) -> None:
    train, test = digits
    program = mx.symbolic(MLP)(hidden=(16,))
    result = mt.fit(program, TX, train, valid_data=test, epochs=1)
    assert result.metrics["params"] == 64 * 16 + 16 + 16 * 10 + 10
    with pytest.raises(TypeError, match="hyper-value at 'hidden'"):
        mt.fit(mx.symbolic(MLP)(hidden=mx.oneof([(8,), (16,)])), TX, train)


def test_loss_shape_and_label_errors_name_both_shapes(digits: Any) -> None:
    train, _ = digits
    with pytest.raises(ValueError, match=r"output shape \(64, 3\) does not fit .* \(64, 10\)"):
        mt.fit(MLP(hidden=(8,), num_classes=3), TX, train)
    reg = mt.from_arrays(train.x, np.zeros((len(train),), np.float32))
    with pytest.raises(
        ValueError,
        match=r"output shape \(64, 1\) does not fit the loss 'mse' with targets of "
        r"shape \(64,\)",
    ):
        mt.fit(MLP(hidden=(8,), num_classes=1), TX, reg, loss="mse")
    with pytest.raises(ValueError, match=r"label 12 is not"):
        mt.Dataset(np.zeros((3, 2)), np.array([0, 1, 12]), num_classes=10)
    # labels without num_classes: checked against the model's outputs
    wide = mt.Dataset(train.x, np.where(train.y == 9, 12, train.y), num_classes=None)
    with pytest.raises(
        ValueError,
        match=r"label 12 of arrays is out of range for the model's output of shape "
        r"\(64, 10\): labels must be in \[0, 10\)",
    ):
        mt.fit(MLP(hidden=(8,)), TX, wide, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"binary_cross_entropy needs targets in \[0, 1\]"):
        mt.fit(MLP(hidden=(8,), num_classes=1), TX, mt.from_arrays(train.x, 2.0 + reg.y[:, None]),
               loss="binary_cross_entropy")  # fmt: skip
    with pytest.raises(ValueError, match="cross_entropy needs integer class labels"):
        mt.fit(MLP(hidden=(8,), num_classes=1), TX, reg, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"must return a scalar, but returned shape \(64,\)"):
        mt.fit(MLP(hidden=(8,)), TX, train, loss=lambda o, y: o.sum(-1))
    with pytest.raises(TypeError, match="train_data must be a morphax.train.Dataset"):
        mt.fit(MLP(hidden=(8,)), TX, (train.x, train.y))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metric name 'loss' is taken"):
        mt.fit(MLP(hidden=(8,)), TX, train, metrics={"loss": lambda o, y: o.mean()})


# ---------------------------------------------------------------------------
# Item 2: optimizer hyperparameters are values of the compiled step.

STEPS = ("init_variables", "init_opt", "train_step", "eval_step")


def test_a_learning_rate_search_compiles_the_train_step_once(digits: Any) -> None:
    train, test = digits
    space = mx.symbolic(optax.adamw)(
        learning_rate=mx.floatv(1e-4, 1e-1, scale="log"), weight_decay=mx.floatv(0.0, 0.1)
    )
    model = MLP(hidden=(24,))  # a structure no other test trains
    spec = mx.dna_spec(space)
    results = []
    with log_compilations() as log:
        for dna in spec.random_dna(3), *(spec.random_dna(i) for i in range(4)):
            results.append(mt.fit(model, mx.materialize(space, dna), train, valid_data=test,
                                  epochs=1))  # fmt: skip
    assert {name: log.compiles[name] for name in STEPS} == dict.fromkeys(STEPS, 1), log
    assert results[0].metrics["compile_s"] > 0
    assert all(r.metrics["compile_s"] == 0.0 for r in results[1:])
    assert len({round(r.metrics["loss"], 6) for r in results[1:]}) == 4  # each its own rate

    # the same numbers as floats compiled in as constants
    child = mx.materialize(space, spec.random_dna(1))
    static = mt.fit(model, child, train, valid_data=test, epochs=1, optimizer_values=False)
    assert static.metrics["loss"] == pytest.approx(results[2].metrics["loss"], rel=1e-4)


def test_schedules_and_momentum_are_values_and_python_floats_fall_back(digits: Any) -> None:
    train, _ = digits
    sgd, cosine = mx.symbolic(optax.sgd), mx.symbolic(optax.cosine_decay_schedule)
    model = MLP(hidden=(20,))
    for lr, m in [(0.1, 0.9), (0.05, 0.5)]:
        opt = sgd(learning_rate=cosine(init_value=lr, decay_steps=50), momentum=m)
        with log_compilations() as log:
            mt.fit(model, opt, train, epochs=1)
    assert log.compiles["train_step"] == 0  # the second one reused the first's

    @mx.symbolic
    def picky(lr: float) -> optax.GradientTransformation:
        if lr > 0.5:  # needs a Python float: compiled in as a constant
            return optax.sgd(lr / 10)
        return optax.sgd(lr)

    with log_compilations() as log:
        mt.fit(model, picky(0.1), train, epochs=1)
        mt.fit(model, picky(0.2), train, epochs=1)
    assert log.compiles["train_step"] == 2


# ---------------------------------------------------------------------------
# Item 3: any loss, user metrics, dict batches, regression targets.


class Regressor(nn.Module):
    """Two named inputs (features and a mask); one output per example."""

    @nn.compact
    def __call__(self, features: jax.Array, mask: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(32)(features * mask))
        return nn.Dense(1)(h)


def _regression_data(n: int, seed: int) -> mt.Dataset:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 6)).astype(np.float32)
    mask = (rng.random((n, 6)) > 0.2).astype(np.float32)
    target = (features * mask) @ np.arange(1.0, 7.0)[:, None] / 6.0
    return mt.from_arrays({"features": features, "mask": mask}, target.astype(np.float32))


def test_regression_with_mse_and_a_dict_batch() -> None:
    train, valid = _regression_data(512, 0), _regression_data(100, 1)

    def mae(out: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.abs(out - y).mean()

    result = mt.fit(Regressor(), TX, train, valid_data=valid, loss="mse", metrics=[mae],
                    epochs=20, batch_size=32)  # fmt: skip
    m = result.metrics
    assert "accuracy" not in m and "train_accuracy" not in m  # meaningless for regression
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < 0.2 * first["loss"], (first, last)  # learns y = w . (x * mask)
    assert 0 < m["mae"] < np.sqrt(m["loss"]) * 1.5
    again = result.evaluate(valid)
    assert again["loss"] == pytest.approx(m["loss"], rel=1e-5) and "mae" in again
    mean_target = np.mean((valid.y - valid.y.mean()) ** 2)
    assert m["loss"] < 0.3 * mean_target  # far better than predicting the mean
    default = mt.fit(Regressor(), TX, train, epochs=1, batch_size=32)  # loss=None: mse
    assert "accuracy" not in default.metrics
    with pytest.raises(ValueError, match="has inputs of shape"):
        result.evaluate(mt.from_arrays({"features": valid.x["features"]}, valid.y))


def test_binary_cross_entropy_reports_accuracy_and_a_loss_function(digits: Any) -> None:
    train, test = digits
    odd = mt.from_arrays(train.x, (train.y % 2).astype(np.float32)[:, None])
    odd_test = mt.from_arrays(test.x, (test.y % 2).astype(np.float32)[:, None])
    result = mt.fit(MLP(hidden=(32,), num_classes=1), TX, odd, valid_data=odd_test,
                    loss="binary_cross_entropy", epochs=3)  # fmt: skip
    assert result.metrics["accuracy"] > 0.8 and "train_accuracy" in result.metrics

    def smoothed(logits: jax.Array, labels: jax.Array) -> jax.Array:
        target = optax.smooth_labels(jax.nn.one_hot(labels, 10), 0.1)
        return optax.softmax_cross_entropy(logits, target).mean()

    custom = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, loss=smoothed, epochs=2)
    assert custom.metrics["accuracy"] > 0.6  # classes known: accuracy means something
