"""A trial's trained weights: saved beside the study, given back by load_study."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optax

import morphax as mx
import morphax.train as mt
from morphax.spaces.cnn import MLP


def test_best_trial_gives_its_weights_back(tmp_path: Path) -> None:
    train, test = mt.load_digits(seed=0)
    space = MLP(hidden=(mx.oneof([8, 32]),))
    path = tmp_path / "study.db"
    predictions = {}
    for trial in mx.search(space, mx.algorithms.Grid(), num_trials=2, store=path, name="mlp/1"):
        assert trial.checkpoint is None and trial.checkpoint_dir is not None
        result = mt.fit(
            trial.program, optax.adam(1e-2), train, epochs=1, checkpoint_dir=trial.checkpoint_dir
        )
        assert result.checkpoint == trial.checkpoint_dir == trial.checkpoint
        predictions[trial.id] = np.asarray(
            trial.program.apply({"params": result.state.params}, test.x[:16])
        )
        trial.report(result.metrics["accuracy"])
    # The study and its weights folder copied elsewhere: both move together.
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(path, moved / "study.db")
    shutil.copytree(f"{path}.ckpt", moved / "study.db.ckpt")
    best = mx.load_study(moved / "study.db", "mlp/1").best()[0]
    assert best.checkpoint is not None and best.checkpoint.startswith(str(moved))
    variables = mt.load_variables(best.checkpoint)
    again = np.asarray(best.program.apply(variables, test.x[:16]))
    np.testing.assert_allclose(again, predictions[best.id], rtol=1e-6)


def test_a_study_in_memory_has_no_weights_folder() -> None:
    search = mx.search({"w": mx.oneof([1, 2])}, mx.algorithms.Random(seed=0), num_trials=1)
    trial = search.ask()
    assert trial is not None and trial.checkpoint_dir is None and trial.checkpoint is None
    search.close()
