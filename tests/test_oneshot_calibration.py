"""Single paths are scored with their own batch statistics (`recalibrate`).

A supernet's running averages are those of the mixture (DARTS) or of all the
paths it trained (SPOS), so a single path scored with them is normalized
with another network's statistics. `search(...,
recalibrate=K)` recomputes them over K fixed training batches before a path
is scored, as SPOS does; these tests check the statistics against a direct
computation, for two momenta, and that the child with inherited weights
scores what the search reported.
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import morphax as mx
from morphax.testing import log_compilations
from morphax.train import load_digits

TRAIN, VALID = load_digits()
TR, VA = TRAIN[:320], VALID[:64]
ACTS = {"relu": nn.relu, "tanh": jnp.tanh, "sigmoid": nn.sigmoid}


class AfterChoice(nn.Module):
    """A batch norm right after a decision: its statistics depend on the path."""

    momentum: float = 0.99

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dense(6, name="fc")(x.reshape((x.shape[0], -1)))
        act = mx.oneof(list(ACTS), name="act")
        x = mx.dispatch(act, lambda a: ACTS[a](x))
        x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, name="bn")(x)
        return nn.Dense(10, name="out")(x)


def child_accuracy(child: Any, variables: Any, data: Any) -> float:
    logits = child.apply(variables, data.x, train=False)
    return float(np.mean(np.argmax(np.asarray(logits), -1) == data.y))


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_statistics_are_the_mean_of_the_path_batch_statistics(momentum: float) -> None:
    sn = mx.oneshot.supernet(AfterChoice(momentum), TR.x[:32])
    prog = mx.oneshot.DARTS().program(sn, steps_per_epoch=1, epochs=1)
    state = prog.init(jax.random.PRNGKey(0), TR.x[:32])
    # running averages far from any path's: the recomputed ones must not depend on them
    stale = jax.tree.map(lambda v: jnp.full_like(v, 5.0), state.model_state["batch_stats"])
    state = state._replace(model_state={**state.model_state, "batch_stats": stale})
    xs = jnp.asarray(TR.x[:96].reshape(3, 32, *TR.x.shape[1:]))
    prog.calibration = xs
    fc = state.params["fc"]
    for path, act in enumerate(ACTS.values()):
        got = prog.calibrated(state, np.array([path], np.int32))["batch_stats"]["bn"]
        h = [act(x.reshape(32, -1) @ fc["kernel"] + fc["bias"]) for x in xs]
        mean = np.mean([np.mean(b, axis=0) for b in h], axis=0)
        var = np.mean([np.var(b, axis=0) for b in h], axis=0)
        np.testing.assert_allclose(got["mean"], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["var"], var, rtol=1e-4, atol=1e-5)
    # the paths differ, so the statistics do (the check above is not vacuous)
    relu, tanh = (prog.calibrated(state, np.array([p], np.int32)) for p in (0, 1))
    assert not np.allclose(relu["batch_stats"]["bn"]["mean"], tanh["batch_stats"]["bn"]["mean"])
    prog.calibration = None  # off: the state's own
    assert prog.calibrated(state, np.array([0], np.int32)) is state.model_state


@pytest.fixture(scope="module")
def result() -> Any:
    with log_compilations() as log:
        out = mx.oneshot.search(
            AfterChoice(), mx.oneshot.DARTS(), TR, VA, epochs=2, batch_size=32, progress=False
        )
    return out, log


def test_the_child_with_inherited_weights_scores_what_the_search_reported(result: Any) -> None:
    res, log = result
    child = res.child
    assert child_accuracy(child, res.child_variables, VA) == pytest.approx(
        res.history[-1]["valid_accuracy"], abs=1e-9
    )
    # without recomputing: the supernet's running averages, as inherited before
    plain = res.supernet.child_variables(res.variables, res.dna)
    assert res.score([res.dna], VA, recalibrate=False) == [
        pytest.approx(child_accuracy(child, plain, VA), abs=1e-9)
    ]
    stats = (res.child_variables["batch_stats"]["bn"], plain["batch_stats"]["bn"])
    assert not np.allclose(stats[0]["mean"], stats[1]["mean"])


def test_recomputing_compiles_once_for_every_path(result: Any) -> None:
    res, log = result
    assert log.compiles["oneshot_calibrate"] == 1, log  # two epochs' exports, one compile
    with log_compilations() as again:
        scores = res.score([mx.DNA([i]) for i in range(3)], VA)
    assert again.compiles["oneshot_calibrate"] == 0, again
    assert len(set(scores)) > 1, scores


def test_recalibrate_zero_scores_with_the_running_averages() -> None:
    res = mx.oneshot.search(
        AfterChoice(),
        mx.oneshot.DARTS(),
        TR,
        VA,
        epochs=1,
        batch_size=32,
        progress=False,
        recalibrate=0,
    )
    plain = res.supernet.child_variables(res.variables, res.dna)
    assert child_accuracy(res.child, plain, VA) == pytest.approx(
        res.history[-1]["valid_accuracy"], abs=1e-9
    )


def test_bad_recalibrate_names_the_value() -> None:
    for bad in (-1, 1.5, True, "16"):
        with pytest.raises(ValueError, match=re.escape(f"recalibrate={bad!r}")):
            mx.oneshot.search(AfterChoice(), mx.oneshot.DARTS(), TR, VA, epochs=1, recalibrate=bad)
