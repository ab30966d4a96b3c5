"""Everyday use (issue 11): minimizing, in-memory studies, readable values,
plots that leave matplotlib alone, progress bars and duplicates."""

from __future__ import annotations

import io
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import flax.linen as nn
import matplotlib
import pytest
from matplotlib.figure import Figure

import morphax as mx
from morphax.algorithms import NSGA2, Random, RegularizedEvolution

QUADRATIC = {"x": mx.floatv(-2.0, 2.0)}


def _minimize(store: Path | None = None, **kw: Any) -> mx.tuning.Search:
    search = mx.search(
        QUADRATIC,
        RegularizedEvolution(seed=0),
        num_trials=kw.pop("num_trials", 200),
        direction="minimize",
        store=store,
        **kw,
    )
    for trial in search:
        trial.report((trial.program["x"] - 1.0) ** 2)
    return search


def test_evolution_minimizes_a_quadratic() -> None:
    # The reproduction: without direction, the "best" was x = -1.93.
    best = _minimize().best()
    assert isinstance(best, mx.tuning.Trial)
    assert abs(best.program["x"] - 1.0) < 0.05 and best.reward < 0.0025


def test_direction_is_stored_and_used_by_best_and_best_so_far(tmp_path: Path) -> None:
    path = tmp_path / "min.db"
    _minimize(path, num_trials=30)
    study = mx.load_study(path)
    assert study.direction == "minimize" and study.objective.directions == ("minimize",)
    rewards = [t.reward for t in study.trials]
    assert [t.reward for t in study.best(3)] == sorted(rewards)[:3]
    _, best = study.best_so_far()
    assert best[-1] == min(rewards) and best == sorted(best, reverse=True)
    assert "direction='minimize'" in repr(study)
    with pytest.raises(ValueError, match=r"optimizes .*'directions': \['minimize'\].*asks for"):
        mx.search(QUADRATIC, RegularizedEvolution(seed=0), num_trials=30, store=path).ask()


def test_a_study_stored_without_directions_reads_as_maximize(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    for trial in mx.search(QUADRATIC, Random(seed=0), num_trials=4, store=path):
        trial.report(trial.program["x"])
    with sqlite3.connect(path) as conn:  # the objective JSON of a study made before issue 11
        conn.execute("""UPDATE studies SET objective_json = '{"name": "reward", "names": null}'""")
    study = mx.load_study(path)
    assert study.direction == "maximize"
    assert study.best()[0].reward == max(t.reward for t in study.trials)
    more = mx.search(QUADRATIC, Random(seed=0), num_trials=6, store=path)  # resumes
    for trial in more:
        trial.report(trial.program["x"])
    assert len(mx.load_study(path).trials) == 6


def test_bad_directions_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"`direction` must be 'maximize' or 'minimize'.*'min'"):
        mx.search(QUADRATIC, Random(seed=0), num_trials=1, direction="min")
    with pytest.raises(ValueError, match=r"`direction` has 3 entries .* 2 objective\(s\)"):
        mx.search(
            QUADRATIC,
            NSGA2(objectives=("a", "b"), seed=0),
            num_trials=1,
            direction=("maximize", "minimize", "maximize"),
        )


def test_multi_objective_directions_and_the_front() -> None:
    space = {"w": mx.oneof([1, 2, 4, 8, 16]), "d": mx.intv(1, 4)}
    search = mx.search(
        space,
        NSGA2(objectives=("accuracy", "params"), population_size=8, seed=0),
        num_trials=60,
        direction=("maximize", "minimize"),
    )
    for trial in search:
        w, d = trial.program["w"], trial.program["d"]
        trial.report({"accuracy": 1.0 - 1.0 / (w * d), "params": float(w * d)})
    front = search.best()
    assert isinstance(front, list) and front
    # Minimized params: the front runs from the smallest model to the most accurate.
    assert min(t.metrics["params"] for t in front) == 1.0
    assert max(t.metrics["accuracy"] for t in front) == 1.0 - 1.0 / 64
    sizes = sorted(t.metrics["params"] for t in front)
    assert len({t.dna for t in front}) == len(front)  # a DNA evaluated twice is one point
    study = search.study()
    assert study.direction == ("maximize", "minimize")
    assert sorted(t.metrics["params"] for t in study.best()) == sizes
    assert isinstance(study.plot(), Figure)


def test_in_memory_searches_have_a_study_with_readable_values() -> None:
    space = {"act": mx.oneof([nn.relu, nn.gelu, "tanh"]), "width": mx.oneof([16, 32, 64])}
    search = mx.search(space, Random(seed=0), num_trials=12, duplicates="rerun")  # 9 points
    for trial in search:
        assert set(trial.values) == {"act", "width"}
        assert trial.values["act"] in ("relu", "gelu", "tanh")
        trial.report(float(trial.program["width"]))
    study = search.study()
    assert isinstance(study, mx.tuning.Study)
    assert repr(study).startswith("Study('default', trials=12, completed=12, direction='maximize'")
    assert study.best(2)[0].reward == 64.0
    df = study.to_dataframe()
    assert {"act", "width", "reward", "dna"} <= set(df.columns)
    assert set(df["act"]) <= {"relu", "gelu", "tanh"} and set(df["width"]) <= {16, 32, 64}
    assert not any("0x" in str(v) for v in df["act"])
    with pytest.raises(ValueError, match=r"study 'default' is in memory; search with store="):
        study.backup("copy.db")


def test_stored_studies_read_values_back(tmp_path: Path) -> None:
    space = {"op": mx.oneof(["skip", {"conv": mx.oneof([3, 5])}]), "lr": mx.floatv(0.1, 1.0)}
    path = tmp_path / "v.db"
    for trial in mx.search(space, Random(seed=1), num_trials=8, store=path):
        trial.report(trial.program["lr"])
    study = mx.load_study(path)
    values = [t.values for t in study.trials]
    assert all(v["op"] in ("skip", "dict(...)#1") for v in values)
    assert all(("op[=1].conv" in v) == (v["op"] != "skip") for v in values)
    assert "op[=1].conv" in study.to_dataframe().columns


def _study() -> mx.tuning.Study:
    space = {"act": mx.oneof(["relu", "gelu"]), "width": mx.intv(1, 8), "lr": mx.floatv(0.0, 1.0)}
    search = mx.search(space, Random(seed=0), num_trials=10)
    for trial in search:
        trial.report(trial.program["width"] * trial.program["lr"])
    return search.study()


@pytest.mark.parametrize("call", ["plot", "plot_decisions"])
def test_plots_return_figures_and_leave_matplotlib_alone(call: str, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    study = _study()
    backend, open_figures = matplotlib.get_backend(), plt.get_fignums()
    fig = getattr(study, call)()
    assert isinstance(fig, Figure)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == open_figures
    assert list(tmp_path.iterdir()) == []  # no file without a path
    out = tmp_path / "sub.png"
    assert getattr(study, call)(out) is not fig and out.read_bytes()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend and plt.get_fignums() == open_figures


def test_plot_draws_into_a_users_axes() -> None:
    study = _study()
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert study.plot(ax=right) is fig
    assert right.get_ylabel() == "reward (max)" and not left.has_data()
    panels = study.plot_decisions().axes
    assert [a.get_title() for a in panels if a.get_visible()] == ["act", "width", "lr"]


def test_progress_bar_shows_the_best_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    stream = io.StringIO()
    real = tqdm.auto.tqdm
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda **kw: real(file=stream, **kw))
    _minimize(num_trials=5, progress=True)
    text = stream.getvalue()
    assert "5/5" in text and "best=" in text and "study 'default'" in text
    stream.truncate(0)
    _minimize(num_trials=5)  # not a terminal (pytest captures): off by default
    assert stream.getvalue() == ""
    with pytest.raises(TypeError, match=r"`progress` must be True, False or None"):
        mx.search(QUADRATIC, Random(seed=0), num_trials=1, progress="yes")


SMALL = {"a": mx.oneof([0, 1, 2]), "b": mx.oneof([0, 1, 2])}


def _evolve(store: Path | None, num_trials: int, duplicates: str = "reuse") -> tuple[Any, list]:
    ran: list[mx.DNA] = []
    search = mx.search(
        SMALL,
        RegularizedEvolution(population_size=4, tournament_size=2, seed=0),
        num_trials=num_trials,
        store=store,
        duplicates=duplicates,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for trial in search:
            ran.append(trial.dna)
            trial.report(float(trial.program["a"] * 3 + trial.program["b"]))
    return search, ran


def test_duplicates_are_answered_from_the_study_not_run_again() -> None:
    search, ran = _evolve(None, 8)
    assert len(ran) == len(set(ran)) == 8  # eight distinct children ran
    dups = [t for t in search.trials if t.status == "skipped"]
    assert dups and all(t.reason.startswith("duplicate of trial #") for t in dups)
    assert len([t for t in search.trials if t.status == "completed"]) == 8
    _, rerun = _evolve(None, 8, duplicates="rerun")
    assert len(rerun) == 8 and len(set(rerun)) < 8  # the old behaviour, for noisy objectives
    with pytest.raises(ValueError, match=r"`duplicates` must be 'reuse' .* or 'rerun'"):
        mx.search(SMALL, Random(seed=0), num_trials=1, duplicates="skip")


def test_an_exhausted_space_ends_the_search_with_a_message() -> None:
    search = mx.search(
        SMALL,
        RegularizedEvolution(population_size=4, tournament_size=2, seed=0),
        num_trials=50,
        duplicates="reuse",
    )
    with pytest.warns(
        UserWarning,
        match=r"the search ends with 9 of 50 trials, because the space looks exhausted: 9 distinct "
        r"DNA of 9 are evaluated",
    ):
        for trial in search:
            trial.report(float(trial.program["a"]))
    assert len({t.dna for t in search.trials if t.status == "completed"}) == 9


def test_a_resumed_search_with_duplicates_is_the_uninterrupted_one(tmp_path: Path) -> None:
    _evolve(tmp_path / "full.db", 8)
    path = tmp_path / "cut.db"
    _evolve(path, 4)
    _evolve(path, 8)
    rows = [(t.dna, t.status, t.reason) for t in mx.load_study(path).trials]
    assert rows == [(t.dna, t.status, t.reason) for t in mx.load_study(tmp_path / "full.db").trials]
    counted = [t for t in mx.load_study(path).trials if t.status == "completed"]
    assert len(counted) == 8
    objective = json.loads(
        sqlite3.connect(path).execute("SELECT objective_json FROM studies").fetchone()[0]
    )
    assert objective["directions"] == ["maximize"]
