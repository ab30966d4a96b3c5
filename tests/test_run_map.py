"""`search.run` / `search.map` with the Local backend, and `catch`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.algorithms import PPO, Random, RegularizedEvolution, Reinforce

SPACE = {"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}
ALGORITHMS = {
    "Random": lambda: Random(seed=3),
    "RegularizedEvolution": lambda: RegularizedEvolution(
        population_size=6, tournament_size=3, seed=3
    ),
    "Reinforce": lambda: Reinforce(seed=3),
    "PPO": lambda: PPO(seed=3),
}


def reward(trial: mx.Trial) -> float:
    return float(sum(trial.dna.values)) + 0.01 * trial.dna.values[0]


def rows(path: Path, name: str = "default") -> list[tuple[Any, ...]]:
    study = mx.load_study(path, name)
    return [(t.id, t.dna, t.status, t.reward) for t in study.trials]


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_local_run_is_the_serial_study(tmp_path: Path, name: str) -> None:
    for trial in mx.search(
        SPACE, ALGORITHMS[name](), num_trials=12, store=tmp_path / "s.db", progress=False
    ):
        trial.report(reward(trial))
    search = mx.search(
        SPACE, ALGORITHMS[name](), num_trials=12, store=tmp_path / "r.db", progress=False
    )
    search.run(reward)  # returns the value: reported for the trial
    assert rows(tmp_path / "r.db") == rows(tmp_path / "s.db")
    assert search._state == "closed"


def test_map_yields_finished_trials_and_report_wins(tmp_path: Path) -> None:
    def evaluate(trial: mx.Trial) -> float:
        trial.report({"reward": 1.0, "loss": 2.0}, step=1)
        trial.report(0.5)
        return 99.0  # ignored: the trial reported

    search = mx.search(SPACE, Random(seed=0), num_trials=4, progress=False)
    seen = list(search.map(evaluate, backend=mx.backends.Local()))
    assert [t.id for t in seen] == [1, 2, 3, 4]
    assert all(t.status == "completed" and t.reward == 0.5 for t in seen)
    assert seen[0].steps == [(1, {"reward": 1.0, "loss": 2.0})]


def test_map_stopped_early_closes_the_search(tmp_path: Path) -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=10, store=tmp_path / "s.db")
    for trial in search.map(lambda t: {"reward": 1.0}):
        if trial.id == 3:
            break
    assert search._state == "closed"  # the lease is given up
    again = mx.search(SPACE, Random(seed=0), num_trials=10, store=tmp_path / "s.db")
    again.run(lambda t: 1.0)
    assert [t.status for t in mx.load_study(tmp_path / "s.db").trials] == ["completed"] * 10


class Diverged(Exception):
    pass


def flaky(trial: mx.Trial) -> float:
    if trial.id % 3 == 0:
        raise Diverged(f"loss is nan at trial {trial.id}")
    return reward(trial)


@pytest.mark.parametrize("where", ["run", "search"])
def test_catch_fails_the_trial_with_its_traceback_and_goes_on(tmp_path: Path, where: str) -> None:
    path = tmp_path / "s.db"
    if where == "run":
        search = mx.search(SPACE, RegularizedEvolution(seed=0), num_trials=9, store=path)
        search.run(flaky, catch=(Diverged,))
    else:
        search = mx.search(
            SPACE, RegularizedEvolution(seed=0), num_trials=9, store=path, catch=(Diverged,)
        )
        search.run(flaky)
    trials = mx.load_study(path).trials
    failed = [t for t in trials if t.status == "failed"]
    assert [t.id for t in failed] == [3, 6, 9]
    assert failed[0].reason is not None
    assert failed[0].reason.startswith("evaluate raised Diverged: loss is nan at trial 3\n")
    assert "Traceback (most recent call last)" in failed[0].reason
    assert 'in flaky\n    raise Diverged(f"loss is nan' in failed[0].reason
    assert sum(t.status == "completed" for t in trials) == 6


def test_an_uncaught_exception_ends_the_search_and_the_trial_resumes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, RegularizedEvolution(seed=0), num_trials=9, store=path)
    with pytest.raises(Diverged, match="loss is nan at trial 3"):
        search.run(flaky, catch=(KeyError,))
    assert search._state == "closed"
    assert [t.status for t in mx.load_study(path).trials] == ["completed"] * 2 + ["pending"]

    again = mx.search(SPACE, RegularizedEvolution(seed=0), num_trials=9, store=path)
    again.run(reward)
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 9
    assert trials[2].attempts == 2  # trial #3 ran again under its number
    for t in mx.search(SPACE, RegularizedEvolution(seed=0), num_trials=9, store=tmp_path / "u.db"):
        t.report(reward(t))
    assert rows(path) == rows(tmp_path / "u.db")  # the resume is exact


def test_left_without_a_result_is_refused_and_stays_pending() -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=3)
    with pytest.raises(RuntimeError, match=r"trial #1 was left without a result: evaluate"):
        search.run(lambda trial: None)
    assert search.trials[0].status == "pending"


def test_bad_arguments_are_named() -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=3)
    with pytest.raises(TypeError, match=r"`catch` must be a tuple of exception types"):
        search.run(reward, catch=("ValueError",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`backend` must be an mx.backends backend"):
        search.run(reward, backend="ray")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`evaluate` must be a function of a trial"):
        search.run(3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`catch` must be a tuple"):
        mx.search(SPACE, Random(seed=0), num_trials=3, catch=(KeyboardInterrupt,))
