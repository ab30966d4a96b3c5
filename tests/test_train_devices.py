"""fit(..., devices=...): data parallelism over a "batch" mesh axis.

The 4-device runs happen in a subprocess that sets
`--xla_force_host_platform_device_count=4` before importing JAX; the test
process keeps its one CPU device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest
from flax import nnx

from morphax import train as mt

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, optax
    import flax.linen as nn
    from flax import nnx
    from morphax import train as mt
    from morphax.spaces.cnn import MLP

    class BNNet(nn.Module):  # Flax ResNet's pattern: no bias before a synced BatchNorm
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.Dense(32, use_bias=False)(x.reshape(x.shape[0], -1))
            x = nn.BatchNorm(use_running_average=not train, axis_name="batch", momentum=0.9)(x)
            return nn.Dense(10)(nn.relu(x))

    class NNXNet(nnx.Module):
        def __init__(self, *, rngs):
            self.l1 = nnx.Linear(64, 32, use_bias=False, rngs=rngs)
            self.bn = nnx.BatchNorm(32, momentum=0.9, axis_name="batch", rngs=rngs)
            self.l2 = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.bn(self.l1(x.reshape(x.shape[0], -1)))))

    train, test = mt.load_digits()
    out = {"devices": len(jax.devices())}
    models = {"plain": MLP(hidden=(32,)), "batchnorm": BNNet(), "nnx": None}
    for name, model in models.items():
        for devices in (None, jax.devices()):
            m = NNXNet(rngs=nnx.Rngs(0)) if model is None else model
            r = mt.fit(m, optax.adam(1e-2), train, valid_data=test, epochs=3, batch_size=64,
                       devices=devices)
            leaf = jax.tree.leaves(r.state.params)[0]
            out[f"{name}/{0 if devices is None else len(devices)}"] = {
                "train_loss": [h["train_loss"] for h in r.history],
                "loss": [h["loss"] for h in r.history],
                "accuracy": r.metrics["accuracy"],
                "replicated": len(leaf.sharding.device_set),
                "test": r.evaluate(test)["loss"],
            }
    try:
        mt.fit(MLP(hidden=(8,)), optax.adam(1e-2), train, batch_size=30, devices=jax.devices())
    except ValueError as e:
        out["error"] = str(e)
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def four_devices() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT ") :]))


@pytest.mark.parametrize("name", ["plain", "batchnorm", "nnx"])
def test_four_devices_follow_the_one_device_loss_curve(
    four_devices: dict[str, Any], name: str
) -> None:
    assert four_devices["devices"] == 4
    one, four = four_devices[f"{name}/0"], four_devices[f"{name}/4"]
    for key in ("train_loss", "loss"):
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-5)
    assert four["accuracy"] == pytest.approx(one["accuracy"], abs=1e-6)
    assert four["test"] == pytest.approx(one["test"], rel=1e-4)  # FitResult.evaluate, sharded
    assert four["replicated"] == 4 and one["replicated"] == 1
    assert one["train_loss"][-1] < one["train_loss"][0]  # it trained


def test_a_batch_size_that_does_not_split_over_the_devices_is_refused(
    four_devices: dict[str, Any],
) -> None:
    assert "batch_size=30 must be a multiple of the 4 devices" in four_devices["error"]
    assert "use batch_size=28 or 32" in four_devices["error"]


class ResNetBlock(nn.Module):
    """The normalization of Flax's ResNet example: BatchNorm with axis_name="batch"."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        norm = lambda: nn.BatchNorm(  # noqa: E731
            use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name="batch"
        )
        y = nn.Conv(8, (3, 3), use_bias=False)(x)
        y = nn.relu(norm()(y))
        y = y.mean(axis=(1, 2))
        return nn.Dense(10)(y)


def test_a_model_naming_the_batch_axis_trains_on_one_device() -> None:
    train, test = mt.load_digits()
    tx = optax.adam(1e-2)
    r = mt.fit(ResNetBlock(), tx, train, valid_data=test, epochs=1)
    assert np.isfinite(r.metrics["loss"])
    assert "batch_stats" in r.state.model_state
    again = mt.fit(ResNetBlock(), tx, train, valid_data=test, epochs=1)
    assert again.metrics["compile_s"] == 0.0  # remembered: compiled with the axis bound once
    assert again.metrics["loss"] == pytest.approx(r.metrics["loss"])


def test_an_nnx_model_naming_the_batch_axis_trains_on_one_device() -> None:
    train, _ = mt.load_digits()

    class Net(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs) -> None:
            self.l1 = nnx.Linear(64, 16, rngs=rngs)
            self.bn = nnx.BatchNorm(16, axis_name="batch", rngs=rngs)
            self.l2 = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.l2(nnx.relu(self.bn(self.l1(x.reshape(x.shape[0], -1)))))

    r = mt.fit(Net(rngs=nnx.Rngs(0)), optax.adam(1e-2), train, epochs=1)
    assert np.isfinite(r.metrics["loss"])


@pytest.mark.parametrize(
    ("devices", "error", "match"),
    [
        ([], ValueError, r"devices is empty"),
        (["cpu"], TypeError, r"devices must be a sequence of JAX devices"),
        ("twice", ValueError, r"devices must be distinct"),
    ],
)
def test_bad_devices_are_refused(devices: Any, error: type[Exception], match: str) -> None:
    train, _ = mt.load_digits()
    if devices == "twice":
        devices = jax.devices()[:1] * 2
    with pytest.raises(error, match=match):
        mt.fit(nn.Dense(10), optax.adam(1e-2), train, epochs=1, devices=devices)


def test_one_listed_device_runs_as_a_mesh_of_one() -> None:
    train, _ = mt.load_digits()
    model = nn.Sequential([lambda x: x.reshape(x.shape[0], -1), nn.Dense(10)])
    plain = mt.fit(model, optax.adam(1e-2), train, epochs=2)
    mesh = mt.fit(model, optax.adam(1e-2), train, epochs=2, devices=jax.devices()[:1])
    np.testing.assert_allclose(
        [h["train_loss"] for h in mesh.history], [h["train_loss"] for h in plain.history], rtol=1e-5
    )
