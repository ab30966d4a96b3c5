"""A one-shot search SIGKILLed after an epoch resumes bit-identically (issue 10).

Each search runs in its own process (`sys.executable`): once uninterrupted,
once killed with SIGKILL as soon as its first epoch's checkpoint is written
(DARTS-PT's: its first projection's), then run again with the same
checkpoint to the end. The final state (every leaf of the `SearchState`:
weights, batch statistics, logits, optimizer and controller states, step and
key), the DNA, the history and the study's trials must be equal bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

SCRIPT = r"""
import json, sys
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import morphax as mx
from morphax.train import load_digits

ACTS = {"relu": nn.relu, "tanh": jnp.tanh, "gelu": nn.gelu}


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(12, name="fc1")(x)
        x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
        act = mx.oneof(list(ACTS), name="act")
        x = mx.dispatch(act, lambda a: ACTS[a](x))
        x = mx.dispatch(mx.oneof(["dense", "id"], name="block"),
                        lambda b: nn.Dense(12, name="dense")(x) if b == "dense" else x)
        return nn.Dense(10, name="out")(x)


name, ckpt, out, cache, store = sys.argv[1:6]
strategy = {
    "darts": mx.oneshot.DARTS(order=2),
    "gdas": mx.oneshot.GDAS(),
    "enas": mx.oneshot.ENAS(controller_steps=3),
    "darts-pt": mx.oneshot.DARTS(selection="pt", pt_epochs=2),
    "spos": mx.oneshot.SPOS(num_trials=6, epoch_candidates=2),
}[name]
train, valid = load_digits()
result = mx.oneshot.search(
    Tiny(), strategy, train, valid[:96], epochs=EPOCHS, batch_size=32, seed=3,
    checkpoint=ckpt, progress=False, compilation_cache=cache, store=store, name="resume",
)
study = mx.load_study(store, "resume")
leaves = [np.asarray(a) for a in jax.device_get(jax.tree.leaves(result.state))]
np.savez(out, *leaves)
with open(out + ".json", "w") as f:
    json.dump({"dna": mx.to_json(result.dna), "history": result.history,
               "trials": [[t.id, t.status, mx.to_json(t.dna), t.metrics] for t in study.trials]}, f)
"""
EPOCHS = 4
#: When to kill each run: after this many units (epochs, then DARTS-PT's projections)
#: are checkpointed. DARTS-PT is killed after its first projection (of 2).
KILL_AFTER = {"darts": 1, "gdas": 1, "enas": 1, "darts-pt": EPOCHS + 1, "spos": 1}


def run(script: str, *args: str, wait: bool = True) -> Any:
    cmd = [sys.executable, script, *args]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if wait:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def load(out: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    with np.load(out + ".npz") as z:
        leaves = [z[f"arr_{i}"] for i in range(len(z.files))]
    with open(out + ".json") as f:
        return leaves, json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KILL_AFTER))
def test_sigkill_after_an_epoch_then_resume_is_bit_identical(tmp_path: Any, name: str) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.replace("EPOCHS", str(EPOCHS)))
    cache = str(tmp_path / "cache")
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    run(str(script), name, str(tmp_path / "ckpt-a"), straight, cache, str(tmp_path / "a.db"))

    ckpt = tmp_path / "ckpt-b"
    store = str(tmp_path / "b.db")
    proc = run(str(script), name, str(ckpt), resumed, cache, store, wait=False)
    meta = ckpt / "morphax-oneshot.json"
    deadline = time.monotonic() + 600

    def units_done() -> int:
        return len(json.loads(meta.read_text())["history"]) if meta.exists() else 0

    while units_done() < KILL_AFTER[name] and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint in 600 s"
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = units_done()
    units = len(load(straight)[1]["history"])
    assert KILL_AFTER[name] <= done < units, (done, units)  # killed part way
    assert not os.path.exists(resumed + ".npz")

    run(str(script), name, str(ckpt), resumed, cache, store)
    a, meta_a = load(straight)
    b, meta_b = load(resumed)
    assert meta_a == meta_b  # DNA, every epoch's metrics, and the study's trials
    ids = [t[0] for t in meta_b["trials"] if t[1] == "completed"]
    assert ids == sorted(set(ids)) and len(ids) >= len(meta_b["history"])  # none twice
    assert len(meta_b["history"]) == units >= EPOCHS
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y), (x, y)
