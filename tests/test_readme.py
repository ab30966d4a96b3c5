"""The README's tour runs as written (so the README stays true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def test_readme_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    tour = text[text.index("## A short tour") :].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"score": lambda program: 0.5}
    exec(compile(tour, str(README), "exec"), namespace)  # noqa: S102
    assert os.path.exists(tmp_path / "study.db") and os.path.exists(tmp_path / "curve.png")


def test_readme_ask_tell_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import morphax as mx

    text = README.read_text()
    block = text[text.index("## Trials in flight") :].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    space = {"w": mx.oneof([8, 16, 32]), "lr": mx.floatv(1e-3, 1e-1, scale="log")}
    namespace: dict[str, object] = {
        "mx": mx,
        "space": space,
        "evaluate": lambda p: p["w"] * p["lr"],
    }
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    study = mx.load_study(tmp_path / "study.db", "nas")
    assert len(study.completed) == 200  # and skipped rows for duplicates it reused


def test_readme_training_example_runs() -> None:
    from morphax.testing import log_compilations

    text = README.read_text()
    block = text[text.index("## Training children") :].split("```python", 1)[1].split("```", 1)[0]
    with log_compilations() as log:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102
    steps = [n for n in log.compiles if "train_step" in n]
    assert steps and all(log.compiles[n] == 1 for n in steps), dict(log.compiles)


def test_readme_everyday_example_runs() -> None:
    import morphax as mx

    text = README.read_text()
    block = text[text.index("## Everyday use") :].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {"mx": mx}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    best = namespace["search"].best()  # type: ignore[attr-defined]
    assert abs(best.program["x"] - 1) < 0.1


def test_readme_oneshot_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import morphax as mx

    text = README.read_text()
    block = text[text.index("## Weight sharing") :].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    study = mx.load_study(tmp_path / "study.db", "darts-pt")
    assert [t.dna for t in study.completed] == result.dnas  # type: ignore[attr-defined]
    assert os.listdir(tmp_path / "darts-ckpt")
