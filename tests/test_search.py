"""The search loop and the study store: resume, bad reports, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import morphax as mx
from morphax.algorithms import Algorithm, Random
from morphax.tuning import RewardWarning, StoreError

SPACE = {
    "x": mx.oneof([0, 1, 2, 3]),
    "y": mx.floatv(-1.0, 1.0),
    "z": mx.oneof(["a", {"k": mx.intv(1, 4)}]),
}


def objective(program: dict) -> float:
    return program["x"] - program["y"] ** 2


def run(
    num_trials: int, store: Path | None = None, name: str | None = None, seed: int = 0
) -> list[mx.DNA]:
    dnas = []
    for trial in mx.search(SPACE, Random(seed=seed), num_trials=num_trials, store=store, name=name):
        dnas.append(trial.dna)
        trial.report(objective(trial.program))
    return dnas


def test_loop_yields_materialized_trials() -> None:
    seen = []
    search = mx.search(SPACE, Random(seed=1), num_trials=12)
    for trial in search:
        assert mx.materialize(SPACE, trial.dna) == trial.program
        seen.append(trial.id)
        trial.report({"reward": objective(trial.program), "extra": 1.0})
    assert seen == list(range(1, 13))
    best = search.best()
    assert best is not None and best.reward == max(t.reward for t in search.trials)
    assert best.metrics is not None and best.metrics["extra"] == 1.0


def test_same_seed_same_trials_and_resume_is_exact(tmp_path: Path) -> None:
    full = run(10, seed=3)
    assert run(10, seed=3) == full and run(10, seed=4) != full
    store = tmp_path / "study.db"
    first = []
    for trial in mx.search(SPACE, Random(seed=3), num_trials=10, store=store):
        first.append(trial.dna)
        if trial.id == 6:
            break  # interrupted: trial 6 has no report
        trial.report(objective(trial.program))
    assert first == full[:6]
    resumed = run(10, store, seed=3)
    assert resumed == full[5:]  # trial 6 proposed again, then 7..10
    study = mx.load_study(store)
    assert [t.dna for t in study.trials] == full
    assert all(t.status == "completed" for t in study.trials)
    assert run(10, store, seed=3) == []  # already done


def test_nan_and_inf_rewards_fail_the_trial_and_the_search_goes_on(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    statuses = []
    with pytest.warns(
        RewardWarning,
        match=r"trial #2 rejected a report: non-finite reward nan; the trial is marked failed",
    ):
        for trial in mx.search(SPACE, Random(seed=0), num_trials=4, store=store):
            trial.report(float("nan") if trial.id == 2 else float("inf") if trial.id == 3 else 1.0)
            statuses.append(trial.status)
    assert statuses == ["completed", "failed", "failed", "completed"]
    study = mx.load_study(store)
    assert [t.reason for t in study.trials][1:3] == [
        "non-finite reward nan",
        "non-finite reward inf",
    ]


def test_reporting_twice_and_leaving_a_trial_unreported() -> None:
    search = iter(mx.search(SPACE, Random(seed=0), num_trials=3))
    trial = next(search)
    trial.report(1.0)
    with pytest.raises(
        RuntimeError, match=r"trial #1 is already completed .* report once per trial"
    ):
        trial.report(2.0)
    next(search)  # trial 2, left without a report
    with pytest.raises(
        RuntimeError, match=r"trial #2 of study 'default' was left without a report"
    ):
        next(search)


def test_skip_and_fail_count_as_trials() -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=3)
    for trial in search:
        if trial.id == 1:
            trial.skip("duplicate architecture")
        elif trial.id == 2:
            trial.fail("diverged")
        else:
            trial.report(0.5)
    assert [(t.status, t.reason) for t in search.trials] == [
        ("skipped", "duplicate architecture"),
        ("failed", "diverged"),
        ("completed", None),
    ]


class TwoObjectives(Random):
    objectives = ("accuracy", "speed")


def test_multi_objective_reports_need_every_metric(tmp_path: Path) -> None:
    search = iter(mx.search(SPACE, TwoObjectives(seed=0), num_trials=2, store=tmp_path / "m.db"))
    trial = next(search)
    with pytest.raises(
        ValueError,
        match=r"lacks the metric\(s\) \['speed'\] .* \['accuracy', 'speed'\]; it has \['accuracy', 'loss'\]",
    ):
        trial.report({"accuracy": 0.9, "loss": 0.1})
    with pytest.raises(TypeError, match="needs a dict report with"):
        trial.report(0.9)
    trial.report({"accuracy": 0.9, "speed": 3.0})
    assert trial.reward == (0.9, 3.0)


def test_single_objective_dict_reports_name_the_objective() -> None:
    trial = next(iter(mx.search(SPACE, Random(seed=0), num_trials=1)))
    with pytest.raises(
        ValueError,
        match=r"the report \['acc'\] lacks the objective 'reward'; .* objective=<one of \['acc'\]>",
    ):
        trial.report({"acc": 0.5})
    search = mx.search(SPACE, Random(seed=0), num_trials=2, objective="acc")
    for t in search:
        t.report({"acc": float(t.id), "loss": 1.0})
    assert [t.reward for t in search.trials] == [1.0, 2.0]


def test_study_name_reused_with_another_space_or_algorithm(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(2, store, name="exp")
    with pytest.raises(
        ValueError,
        match=r"study 'exp' in .* was made for another space \(spec [0-9a-f]+: \{.*\); this search's space is spec [0-9a-f]+",
    ):
        for t in mx.search(
            {"other": mx.oneof([1, 2])}, Random(seed=0), num_trials=3, store=store, name="exp"
        ):
            t.report(1.0)
    with pytest.raises(
        ValueError,
        match=r"was run with \{'algorithm': 'Random', 'seed': 0\}, but this search uses \{'algorithm': 'Random', 'seed': 9\}",
    ):
        run(3, store, name="exp", seed=9)
    run(2, store, name="exp2")  # another name is fine
    assert set(mx.tuning.Store(store).study_names()) == {"exp", "exp2"}


def test_foreign_corrupted_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("just some text, not a database " * 100)
    with pytest.raises(
        StoreError,
        match=r"is not a morphax study file: SQLite cannot read it \(file is not a database\)",
    ):
        run(1, text)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(
        StoreError,
        match=r"is a SQLite database but not a morphax study store \(its tables: \['users'\]\)",
    ):
        run(1, foreign)
    good = tmp_path / "good.db"
    run(3, good)
    data = bytearray(good.read_bytes())
    for f in ("good.db-wal", "good.db-shm"):
        (tmp_path / f).unlink(missing_ok=True)
    data[100:4096] = b"\xff" * (4096 - 100)
    broken = tmp_path / "broken.db"
    broken.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"broken\.db"):
        run(1, broken)
    with pytest.raises(ValueError, match="no study file at"):
        mx.load_study(tmp_path / "missing.db")
    with pytest.raises(StoreError, match="folder .* does not exist"):
        run(1, tmp_path / "no" / "such" / "dir.db")


class Broken(Algorithm):
    def propose(self) -> mx.DNA:
        return mx.DNA([7, 0.0, 0])


def test_an_algorithm_proposing_invalid_dna_is_named() -> None:
    with pytest.raises(
        ValueError, match=r"Broken\(seed=0\) proposed an invalid DNA: .*value 7 .* decision 'x'"
    ):
        next(iter(mx.search(SPACE, Broken(), num_trials=1)))


def test_search_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="needs an mx.algorithms.Algorithm"):
        mx.search(SPACE, "random", num_trials=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`num_trials` must be a non-negative int"):
        mx.search(SPACE, Random(), num_trials=-1)
    with pytest.raises(TypeError, match="expected a search space"):
        mx.search(3, Random(), num_trials=1)


def test_median_early_stopping_with_step_reports(tmp_path: Path) -> None:
    policy = mx.algorithms.MedianStopping(min_steps=2, min_trials=2)
    stopped = []
    search = mx.search(
        SPACE, Random(seed=0), num_trials=8, store=tmp_path / "e.db", early_stopping=policy
    )
    for trial in search:
        quality = trial.program["x"] + 1  # 1..4
        for step in range(1, 6):
            value = quality * step / 5
            trial.report(value, step=step)
            if trial.should_stop():
                stopped.append(trial.id)
                break
        trial.report(value)
    assert stopped  # some poor trials stopped early
    study = mx.load_study(tmp_path / "e.db")
    by_id = {t.id: t for t in study.trials}
    assert all(len(by_id[i].steps) < 5 for i in stopped)
    assert all(by_id[i].program["x"] <= max(t.program["x"] for t in study.trials) for i in stopped)


def test_nested_search_flows(tmp_path: Path) -> None:
    store = tmp_path / "nested.db"
    hparams = {"lr": mx.floatv(1e-3, 1e-1, scale="log")}
    outer = mx.search(hparams, Random(seed=0), num_trials=3, store=store, name="outer")
    for outer_trial in outer:
        inner = mx.search(
            SPACE,
            Random(seed=outer_trial.id),
            num_trials=4,
            store=store,
            name=f"inner-{outer_trial.id}",
        )
        for trial in inner:
            trial.report(objective(trial.program) * outer_trial.program["lr"])
        best = inner.best()
        assert best is not None
        outer_trial.report(best.reward)
    names = mx.tuning.Store(store).study_names()
    assert names == ["outer", "inner-1", "inner-2", "inner-3"]
    assert len(mx.load_study(store, "inner-2").completed) == 4


def test_define_by_run_spaces_are_searched() -> None:
    def fn() -> int:
        return mx.oneof([1, 2, 3], name="a") * mx.oneof([1, 10], name="b")

    space = mx.trace(fn)
    search = mx.search(space, Random(seed=0), num_trials=10)
    for trial in search:
        trial.report(float(trial.program()))
    assert search.best().reward == max(float(t.program()) for t in search.trials)  # type: ignore[union-attr]


def test_load_study_dataframe_best_and_plot(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(15, store, name="exp")
    study = mx.load_study(store, "exp")
    assert len(study.trials) == 15 and study.algorithm == {"algorithm": "Random", "seed": 0}
    best = study.best(3)
    assert [t.reward for t in best] == sorted((t.reward for t in study.trials), reverse=True)[:3]
    df = study.to_dataframe()
    assert list(df.index) == list(range(1, 16)) and "reward" in df.columns
    study.plot(tmp_path / "curve.png")  # returns a Figure; writes only the path given
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert study.space == SPACE
    with pytest.raises(ValueError, match=r"no study named 'nope' .* it has \['exp'\]"):
        mx.load_study(store, "nope")


def test_pareto_plot_for_two_objectives(tmp_path: Path) -> None:
    store = tmp_path / "mo.db"
    for trial in mx.search(SPACE, TwoObjectives(seed=0), num_trials=20, store=store):
        trial.report(
            {"accuracy": trial.program["x"] + trial.program["y"], "speed": -trial.program["x"]}
        )
    study = mx.load_study(store)
    front = study.best(100)
    assert front and all(isinstance(t.reward, tuple) for t in front)
    assert study.best() == front  # the whole front
    study.plot(tmp_path / "front.png")
    assert (tmp_path / "front.png").exists()


_CHILD = textwrap.dedent(
    """
    import sys, time
    import morphax as mx
    sys.path.insert(0, {tests!r})
    from test_search import SPACE, objective
    store, name, seed, n, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    for trial in mx.search(SPACE, mx.algorithms.Random(seed=seed), num_trials=n, store=store, name=name):
        time.sleep(delay)
        trial.report(objective(trial.program))
        print(trial.id, flush=True)
    """
)


def _child(
    tmp_path: Path, store: Path, name: str, seed: int, n: int, delay: float
) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(Path(__file__).parent)))
    return subprocess.Popen(
        [sys.executable, str(script), str(store), name, str(seed), str(n), str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigkill_mid_search_then_resume_gives_the_same_trials(tmp_path: Path) -> None:
    store = tmp_path / "killed.db"
    proc = _child(tmp_path, store, "exp", 5, 30, 0.02)
    assert proc.stdout is not None
    reported = 0
    while reported < 8:
        line = proc.stdout.readline()
        assert line, "the child ended early"
        reported = int(line)
    time.sleep(0.013)  # land anywhere inside a trial
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = [t for t in mx.load_study(store, "exp").trials if t.status == "completed"]
    assert len(kept) >= 8  # nothing reported was lost
    run(30, store, name="exp", seed=5)
    study = mx.load_study(store, "exp")
    assert [t.dna for t in study.trials] == run(30, seed=5)
    assert all(t.status == "completed" for t in study.trials)


@pytest.mark.slow
def test_two_processes_append_to_one_file(tmp_path: Path) -> None:
    store = tmp_path / "shared.db"
    procs = [_child(tmp_path, store, f"p{i}", i, 40, 0.0) for i in range(2)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for i in range(2):
        study = mx.load_study(store, f"p{i}")
        assert [t.id for t in study.trials] == list(range(1, 41))
        assert [t.dna for t in study.trials] == run(40, seed=i)


def test_finished_search_leaves_a_self_contained_file(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    run(3, store)
    wal = tmp_path / "s.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy.db"
    copy.write_bytes(store.read_bytes())  # the .db alone holds every trial
    assert len(mx.load_study(copy).trials) == 3


def test_a_resumed_trial_reports_its_steps_again_without_duplicates(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    for trial in mx.search(SPACE, Random(seed=0), num_trials=2, store=store):
        trial.report(0.1, step=1)
        break  # interrupted after one step report
    for trial in mx.search(SPACE, Random(seed=0), num_trials=2, store=store):
        trial.report(0.2, step=1)
        trial.report(0.3, step=2)
        assert [s for s, _ in trial.steps] == [1, 2]
        trial.report(0.3)
    first = mx.load_study(store).trials[0]
    assert [(s, m["reward"]) for s, m in first.steps] == [(1, 0.2), (2, 0.3)]


def test_a_changed_candidate_is_another_space(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    old = {"block": mx.oneof([{"w": 16}, {"w": 32}])}
    new = {"block": mx.oneof([{"w": 64}, {"w": 128}])}  # same decisions, other programs
    for t in mx.search(old, Random(seed=0), num_trials=2, store=store):
        t.report(1.0)
    with pytest.raises(ValueError, match="was made for another space"):
        next(iter(mx.search(new, Random(seed=0), num_trials=3, store=store)))


@pytest.mark.slow
def test_one_writer_per_study(tmp_path: Path) -> None:
    store = tmp_path / "busy.db"
    proc = _child(tmp_path, store, "exp", 0, 200, 0.02)
    assert proc.stdout is not None and proc.stdout.readline()  # the child is searching
    with pytest.raises(
        StoreError,
        match=r"study 'exp' in .* is being searched by another search .*one writer at a time",
    ):
        next(iter(mx.search(SPACE, Random(seed=0), num_trials=300, store=store, name="exp")))
    run(3, store, name="other")  # another study in the same file is fine
    proc.kill()
    proc.wait()
    assert len(run(300, store, name="exp")) > 0  # a dead writer's claim is taken over
