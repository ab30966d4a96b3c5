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
