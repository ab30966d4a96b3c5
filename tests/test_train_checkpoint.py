"""fit(..., checkpoint_dir=...): trained weights kept with orbax, loaded back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest
from flax import nnx

import morphax as mx
from morphax import train as mt

TX = optax.adam(1e-2)


@pytest.fixture(scope="module")
def digits() -> tuple[mt.Dataset, mt.Dataset]:
    return mt.load_digits()


class BNNet(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dense(16)(x.reshape(x.shape[0], -1))
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(10)(nn.relu(x))


class NNXNet(nnx.Module):
    def __init__(self, hidden: int, *, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(64, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.l2 = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.drop(nnx.relu(self.bn(self.l1(x.reshape(x.shape[0], -1)))))
        return self.l2(x)


def test_linen_variables_round_trip(digits: Any, tmp_path: Path) -> None:
    train, test = digits
    model = BNNet()
    r = mt.fit(model, TX, train, valid_data=test, epochs=2, checkpoint_dir=tmp_path / "best")
    assert r.checkpoint == str(tmp_path / "best") and os.path.isabs(r.checkpoint)
    meta = json.loads((tmp_path / "best" / "morphax.json").read_text())
    assert meta["kind"] == "linen" and meta["metrics"]["loss"] == pytest.approx(r.metrics["loss"])
    variables = mt.load_variables(r.checkpoint)
    assert set(variables) == {"params", "batch_stats"}
    trained = {"params": r.state.params, **r.state.model_state}
    np.testing.assert_allclose(model.apply(variables, test.x), model.apply(trained, test.x))
    # the same metrics from the loaded weights
    logits = model.apply(variables, test.x)
    accuracy = float(np.mean(np.argmax(logits, -1) == test.y))
    assert accuracy == pytest.approx(r.metrics["accuracy"], abs=1e-6)


def test_a_second_fit_replaces_the_checkpoint(digits: Any, tmp_path: Path) -> None:
    train, test = digits
    model = nn.Sequential([lambda x: x.reshape(x.shape[0], -1), nn.Dense(10)])
    mt.fit(model, TX, train, epochs=1, key=0, checkpoint_dir=tmp_path)
    r = mt.fit(model, TX, train, epochs=1, key=1, checkpoint_dir=tmp_path)
    trained = {"params": r.state.params}
    np.testing.assert_allclose(
        model.apply(mt.load_variables(tmp_path), test.x), model.apply(trained, test.x)
    )


def test_nnx_module_round_trip(digits: Any, tmp_path: Path) -> None:
    train, test = digits
    child = mx.symbolic(NNXNet)(hidden=16, rngs=nnx.Rngs(0))
    r = mt.fit(child, TX, train, valid_data=test, epochs=2, checkpoint_dir=tmp_path / "nnx")
    module = mt.load_module(child, r.checkpoint)
    assert isinstance(module, NNXNet)
    module.eval()
    logits = np.asarray(module(test.x))
    accuracy = float(np.mean(np.argmax(logits, -1) == test.y))
    assert accuracy == pytest.approx(r.metrics["accuracy"], abs=1e-6)
    # the pure dict of the state; batch statistics were trained, not the init's
    state = mt.load_variables(r.checkpoint)
    assert not np.allclose(state["bn"]["mean"], 0.0)
    np.testing.assert_allclose(np.asarray(module.bn.mean.value), state["bn"]["mean"])
    # a concrete module of the same structure works as the child too
    again = mt.load_module(NNXNet(16, rngs=nnx.Rngs(5)), r.checkpoint)
    again.eval()
    np.testing.assert_allclose(np.asarray(again(test.x)), logits, rtol=1e-6)


def test_loading_errors_teach(digits: Any, tmp_path: Path) -> None:
    train, _ = digits
    with pytest.raises(
        FileNotFoundError, match=r"no morphax checkpoint at .*FitResult\.checkpoint"
    ):
        mt.load_variables(tmp_path / "missing")
    r = mt.fit(BNNet(), TX, train, epochs=1, checkpoint_dir=tmp_path / "linen")
    with pytest.raises(ValueError, match=r"holds Linen variables; use model\.apply"):
        mt.load_module(NNXNet(16, rngs=nnx.Rngs(0)), r.checkpoint)
    n = mt.fit(NNXNet(16, rngs=nnx.Rngs(0)), TX, train, epochs=1, checkpoint_dir=tmp_path / "n")
    with pytest.raises(
        ValueError, match=r"shape \(16,\) at \['bn'\]\['bias'\] where NNXNet has \(32,\)"
    ):
        mt.load_module(NNXNet(32, rngs=nnx.Rngs(0)), n.checkpoint)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not a morphax checkpoint \(\['notes\.txt'\]\)"):
        mt.fit(BNNet(), TX, train, epochs=1, checkpoint_dir=tmp_path / "other")
