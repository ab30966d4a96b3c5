"""The ask/tell core: trials in flight, tells in any order, an exact journal resume."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.algorithms import PPO, Random, RegularizedEvolution, Reinforce
from morphax.tuning import StoreError

SPACE = {"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}


def reward(dna: mx.DNA) -> float:
    return float(sum(dna.values)) + 0.01 * dna.values[0]


def algorithms() -> dict[str, Any]:
    return {
        "Random": lambda: Random(seed=3),
        "RegularizedEvolution": lambda: RegularizedEvolution(
            population_size=6, tournament_size=3, seed=3
        ),
        "Reinforce": lambda: Reinforce(seed=3),
        "PPO": lambda: PPO(seed=3),
    }


def drive(search: mx.tuning.Search, width: int, *, stop_after: int | None = None) -> None:
    """Keeps `width` trials in flight; which one finishes next depends only on
    the trials in flight, so a resumed run continues as an uninterrupted one."""
    flight: list[Any] = []
    told = 0
    while True:
        while len(flight) < width and (t := search.ask()) is not None:
            flight.append(t)
        if not flight:
            return
        flight.sort(key=lambda t: t.id)
        pick = flight[0] if sum(t.id for t in flight) % 3 else flight[-1]
        flight.remove(pick)
        search.tell(pick, reward(pick.dna))
        told += 1
        if stop_after is not None and told >= stop_after:
            return  # the rest stay in flight: pending in the study


def table(path: Path, name: str = "default") -> list[tuple[Any, ...]]:
    return [(t.id, t.dna, t.status, t.reward) for t in mx.load_study(path, name).trials]


def test_ask_hands_out_many_before_any_tell() -> None:
    s = mx.search(SPACE, Random(seed=0), num_trials=5)
    trials = [s.ask() for _ in range(5)]
    assert all(t is not None for t in trials) and s.ask() is None  # in flight count
    assert [t.id for t in trials] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    for t in reversed(trials):
        s.tell(t, reward(t.dna))  # type: ignore[union-attr]
    assert [t.status for t in s.trials] == ["completed"] * 5
    s.close()
    with pytest.raises(RuntimeError, match="this search is closed"):
        s.ask()


def test_tell_refuses_a_stranger_and_none_fails() -> None:
    s = mx.search(SPACE, Random(seed=0), num_trials=3)
    other = mx.search(SPACE, Random(seed=0), num_trials=3)
    t = other.ask()
    with pytest.raises(ValueError, match="was not handed out by this search's ask"):
        s.tell(t, 1.0)  # type: ignore[arg-type]
    u = s.ask()
    s.tell(u, None)  # type: ignore[arg-type]
    assert u is not None and u.status == "failed" and u.reason == "told None"


@pytest.mark.parametrize("width", [1, 2, 8])
@pytest.mark.parametrize("name", list(algorithms()))
def test_resume_with_trials_in_flight_is_exact(tmp_path: Path, width: int, name: str) -> None:
    make = algorithms()[name]
    full = tmp_path / "full.db"
    with mx.search(SPACE, make(), num_trials=24, store=full) as s:
        drive(s, width)
    cut = tmp_path / "cut.db"
    for stop in (5, 11):  # interrupted twice, each time with trials in flight
        with mx.search(SPACE, make(), num_trials=24, store=cut) as s:
            drive(s, width, stop_after=stop)
    with mx.search(SPACE, make(), num_trials=24, store=cut) as s:
        drive(s, width)
    assert table(cut) == table(full)
    if width > 1:
        assert max(t.attempts for t in mx.load_study(cut).trials) >= 2  # re-runs happened


def test_two_pending_rows_both_run_again(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = mx.search(SPACE, Random(seed=0), num_trials=6, store=path)
    first, second = s.ask(), s.ask()
    s.close()  # both left pending
    s = mx.search(SPACE, Random(seed=0), num_trials=6, store=path)
    again = [s.ask(), s.ask()]
    assert [(t.id, t.dna, t.attempts) for t in again] == [  # type: ignore[union-attr]
        (first.id, first.dna, 2),  # type: ignore[union-attr]
        (second.id, second.dna, 2),  # type: ignore[union-attr]
    ]
    for t in again:
        s.tell(t, 1.0)  # type: ignore[arg-type]
    while (t := s.ask()) is not None:
        s.tell(t, 1.0)
    s.close()
    trials = mx.load_study(path).trials
    assert len(trials) == 6 and all(t.status == "completed" for t in trials)


def test_a_trial_that_keeps_crashing_is_failed_after_max_attempts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    for _ in range(2):
        s = mx.search(SPACE, Random(seed=0), num_trials=3, store=path, max_attempts=2)
        assert s.ask() is not None  # runs, then "crashes"
        s.close()
    s = mx.search(SPACE, Random(seed=0), num_trials=3, store=path, max_attempts=2)
    rest = []
    while (t := s.ask()) is not None:
        rest.append(t.id)
        s.tell(t, 1.0)
    s.close()
    first = mx.load_study(path).trials[0]
    assert first.status == "failed" and "died 2 times (max_attempts=2)" in (first.reason or "")
    assert rest == [2, 3]


def test_one_writer_per_search_even_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    a = mx.search(SPACE, Random(seed=0), num_trials=10, store=path)
    it = iter(a)
    next(it).report(1.0)
    b = mx.search(SPACE, Random(seed=0), num_trials=10, store=path)
    with pytest.raises(StoreError, match="being searched by another search"):
        b.ask()
    del it, a
    gc.collect()  # the abandoned generator closes its own search, and its lease only
    c = mx.search(SPACE, Random(seed=0), num_trials=10, store=path)
    assert c.ask() is not None
    stale = mx.search(SPACE, Random(seed=0), num_trials=10, store=path, takeover=True)
    assert stale.ask() is not None  # an operator's takeover
    with pytest.raises(StoreError, match="being searched by another search"):
        mx.search(SPACE, Random(seed=0), num_trials=10, store=path).ask()
    c.close()  # c no longer holds the lease: closing it leaves stale's alone
    with pytest.raises(StoreError, match="being searched by another search"):
        mx.search(SPACE, Random(seed=0), num_trials=10, store=path).ask()
    stale.close()


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    a = mx.search(SPACE, Random(seed=0), num_trials=4, store=path, lease_s=0.3)
    t = a.ask()
    assert t is not None
    a._heartbeat.stop.set()  # type: ignore[union-attr]  # as if its process hung
    import time

    time.sleep(0.5)
    b = mx.search(SPACE, Random(seed=0), num_trials=4, store=path, lease_s=0.3)
    again = b.ask()
    assert again is not None and again.id == t.id and again.attempts == 2
    b.close()


def test_input_gaps_are_refused() -> None:
    with pytest.raises(ValueError, match="`store` is an empty path"):
        mx.search(SPACE, Random(seed=0), num_trials=3, store="")
    with pytest.raises(TypeError, match="`objective` must be the name of a reported metric"):
        mx.search(SPACE, Random(seed=0), num_trials=3, objective=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`max_attempts` must be an int >= 1"):
        mx.search(SPACE, Random(seed=0), num_trials=3, max_attempts=0)


_KILLED = """
import sys, time
sys.path.insert(0, {tests!r})
import morphax as mx
from test_ask_tell import SPACE, drive, algorithms, reward
import test_ask_tell
slow = test_ask_tell.reward
def timed(dna):  # trials take time; the first says the search is under way
    print("searching", flush=True)
    time.sleep(0.01)
    return slow(dna)
test_ask_tell.reward = timed
s = mx.search(SPACE, algorithms()[{name!r}](), num_trials=60, store={path!r})
drive(s, 4)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("name", ["RegularizedEvolution", "Reinforce"])
def test_sigkill_at_random_points_with_four_in_flight(tmp_path: Path, name: str) -> None:
    import random
    import time

    full = tmp_path / "full.db"
    with mx.search(SPACE, algorithms()[name](), num_trials=60, store=full) as s:
        drive(s, 4)
    path = tmp_path / "killed.db"
    code = textwrap.dedent(
        _KILLED.format(tests=os.path.dirname(__file__), name=name, path=str(path))
    )
    rng = random.Random(7)
    kept = interrupted = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        if proc.stdout.readline() != b"searching\n":  # it had nothing left to do
            proc.wait()
            break
        time.sleep(rng.uniform(0.05, 0.6))  # anywhere: mid-transaction, mid-trial, ...
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            break  # it finished before the kill
        now = [t for t in mx.load_study(path).trials if t.status == "completed"]
        assert len(now) >= kept  # every reported trial is kept
        kept = len(now)
        trials = mx.load_study(path).trials
        interrupted += any(t.status == "pending" for t in trials)  # killed with trials in flight
    assert interrupted >= 2
    with mx.search(SPACE, algorithms()[name](), num_trials=60, store=path) as s:
        drive(s, 4)
    assert table(path) == table(full)


def test_reports_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    s = mx.search(SPACE, Random(seed=0), num_trials=3, store=tmp_path / "s.db")
    t = s.ask()
    assert t is not None
    with pytest.raises(TypeError, match="must be a number, but got the bool True"):
        t.report(True)
    with pytest.raises(ValueError, match="is too large for a float"):
        t.report(10**400)
    with pytest.raises(TypeError, match="must be a number, but got 'high'"):
        t.report({"reward": "high"})
    t.report(2.0)  # the trial still takes a good report
    s.close()
    study = mx.load_study(tmp_path / "s.db")
    assert study.trials[0].reward == 2.0
    with pytest.raises(ValueError, match=r"best\(k\) needs a positive int k, but got k=-1"):
        study.best(-1)


def test_a_resumed_trial_duration_leaves_out_the_downtime(tmp_path: Path) -> None:
    import time

    path = tmp_path / "s.db"
    s = mx.search(SPACE, Random(seed=0), num_trials=1, store=path)
    assert s.ask() is not None
    s.close()  # "crashed"
    time.sleep(0.5)  # the downtime
    s = mx.search(SPACE, Random(seed=0), num_trials=1, store=path)
    again = s.ask()
    assert again is not None and again.attempts == 2
    s.tell(again, 1.0)
    s.close()
    (trial,) = mx.load_study(path).trials
    assert trial.finished is not None and trial.created is not None
    assert trial.finished - trial.created < 0.4


def test_a_trial_shows_its_choices_by_name() -> None:
    import flax.linen as nn

    space = {"act": mx.oneof([nn.relu, nn.gelu]), "d": nn.Dense(features=mx.oneof([4, 8]))}
    search = mx.search(space, Random(seed=0), num_trials=1)
    trial = search.ask()
    assert trial is not None
    text = repr(trial)
    assert "program={'act': " in text and "Dense(features=" in text and " at 0x" not in text
    assert trial.values["act"] in ("relu", "gelu")
    search.close()


def test_a_live_search_keeps_its_lease_while_a_trial_runs(tmp_path: Path) -> None:
    import time

    path = tmp_path / "s.db"
    a = mx.search(SPACE, Random(seed=0), num_trials=4, store=path, lease_s=1.0)
    t = a.ask()  # a long trial: no ask or tell for longer than the lease
    time.sleep(2.5)  # the heartbeat renews the lease meanwhile (every lease_s / 3)
    with pytest.raises(StoreError, match="being searched by another search"):
        mx.search(SPACE, Random(seed=0), num_trials=4, store=path, lease_s=1.0).ask()
    a.tell(t, 1.0)  # type: ignore[arg-type]
    a.close()


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_tell_dates_a_trial_from_when_its_work_started(tmp_path: Path, backend: str) -> None:
    import time

    store = tmp_path / "s.db" if backend == "sqlite" else None
    s = mx.search(SPACE, Random(seed=0), num_trials=3, store=store)
    began = time.time() - 30.0  # the work began before the trial was asked for
    t = s.ask()
    assert t is not None
    s.tell(t, 1.0, started=began)
    assert t.created == began and t.finished is not None and t.finished - began >= 30.0
    u = s.ask()
    assert u is not None
    for bad in (time.time() + 3600, float("nan"), "yesterday", True, -1.0):
        with pytest.raises(ValueError, match=r"`started` must be a time.time\(\) of the past"):
            s.tell(u, 1.0, started=bad)  # type: ignore[arg-type]
    assert u.status == "pending"  # a refused tell changes nothing
    s.tell(u, 2.0)
    with pytest.raises(ValueError, match=r"trial #2 is finished"):
        s.tell(u, 2.0, started=began)
    first = s.study().trials[0]  # as stored
    s.close()
    assert first.created == pytest.approx(began) and first.finished - first.created >= 30.0
