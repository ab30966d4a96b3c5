"""mx.backends.Ray when processes die: a SIGKILLed worker (retried, or failed),
a SIGKILLed driver (resumed, nothing lost or run twice), a live or stale lease.
Processes are killed by PID, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.algorithms import Random, RegularizedEvolution
from morphax.tuning import StoreError

ray = pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'morphax[ray]'")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
pytestmark = [
    pytest.mark.xdist_group("ray"),
    pytest.mark.usefixtures("ray_cluster"),
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
]

SPACE = {"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}


def reward(trial: mx.Trial) -> float:
    return float(sum(trial.dna.values)) + 0.01 * trial.dna.values[0]


def killed_once(trial: mx.Trial) -> float:
    """Trial #2's worker is SIGKILLed (by its PID) mid-trial on its first attempt."""
    trial.report(0.5, step=1)
    if trial.id == 2 and trial.attempts == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return reward(trial)


def test_a_killed_worker_s_trial_completes_on_its_second_attempt(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, Random(seed=0), num_trials=4, store=path)
    search.run(killed_once, backend=mx.backends.Ray(max_in_flight=2, retries=1))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 4
    assert [t.attempts for t in trials] == [1, 2, 1, 1]  # every attempt recorded
    assert trials[1].steps == [(1, {"reward": 0.5})]


def test_with_no_retries_a_killed_worker_s_trial_fails_and_the_search_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, RegularizedEvolution(seed=0), num_trials=4, store=path)
    search.run(killed_once, backend=mx.backends.Ray(max_in_flight=2, retries=0))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed", "failed", "completed", "completed"]
    assert trials[1].reason is not None and trials[1].reason.startswith("worker died: ")
    assert "retries=0" in trials[1].reason


def _rows(path: Path) -> list[tuple[Any, ...]]:
    return [(t.id, t.dna, t.status, t.reward) for t in mx.load_study(path).trials]


def _evolution() -> RegularizedEvolution:
    return RegularizedEvolution(population_size=4, tournament_size=2, seed=7)


class _Stop(Exception):
    """Raised by an evaluate to end a search with trials in flight (a crash)."""


def crashing_at_5(trial: mx.Trial) -> float:
    time.sleep(0.05 * (trial.id % 3))
    if trial.id == 5:
        raise _Stop("the driver goes down at trial #5")
    return reward(trial)


def killed_at_3(trial: mx.Trial) -> float:
    if trial.id == 3 and trial.attempts == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05 * (trial.id % 3))
    return reward(trial)


def test_ordered_mode_is_the_same_study_through_a_retry_and_a_crash(tmp_path: Path) -> None:
    backend = mx.backends.Ray(max_in_flight=2, ordered=True, retries=1)
    clean = tmp_path / "clean.db"
    mx.search(SPACE, _evolution(), num_trials=10, store=clean).run(reward, backend=backend)
    # A worker SIGKILLed on trial #3: retried, and the study is unchanged.
    retried = tmp_path / "retried.db"
    mx.search(SPACE, _evolution(), num_trials=10, store=retried).run(killed_at_3, backend=backend)
    assert _rows(retried) == _rows(clean)
    assert mx.load_study(retried).trials[2].attempts == 2
    # The search ends on an exception with trials in flight; a rerun resumes to the same study.
    crashed = tmp_path / "crashed.db"
    with pytest.raises(_Stop):
        mx.search(SPACE, _evolution(), num_trials=10, store=crashed).run(
            crashing_at_5, backend=backend
        )
    assert any(t.status == "pending" for t in mx.load_study(crashed).trials)
    mx.search(SPACE, _evolution(), num_trials=10, store=crashed).run(reward, backend=backend)
    assert _rows(crashed) == _rows(clean)


_DRIVER = """
import random, sys, time
import morphax as mx
SPACE = {{"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}}

def evaluate(trial):
    time.sleep(random.Random(trial.id * 31 + trial.attempts).uniform(0.02, 0.12))
    return float(sum(trial.dna.values)) + 0.01 * trial.dna.values[0]

algorithm = mx.algorithms.RegularizedEvolution(population_size=6, tournament_size=3, seed=3)
search = mx.search(SPACE, algorithm, num_trials=30, store={path!r}, max_attempts=20)
print("searching", flush=True)
search.run(evaluate, backend=mx.backends.Ray(address={address!r}, max_in_flight=2))
print("done", flush=True)
"""


@pytest.mark.slow
def test_a_driver_killed_five_times_resumes_without_loss_or_duplicates(
    tmp_path: Path, ray_cluster: str
) -> None:
    import random

    path = tmp_path / "s.db"
    code = textwrap.dedent(_DRIVER.format(path=str(path), address=ray_cluster))
    rng = random.Random(11)
    kills = 0
    started: list[int] = []
    try:
        for _ in range(5):
            proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
            started.append(proc.pid)
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"searching\n"
            time.sleep(rng.uniform(0.3, 2.5))  # connecting, mid-trial, mid-transaction, ...
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += proc.returncode == -signal.SIGKILL
        final = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert final.returncode == 0, final.stderr[-3000:]
    finally:
        for pid in started:  # leftovers, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert kills >= 3
    trials = mx.load_study(path).trials
    numbers = [t.id for t in trials]
    assert numbers == list(range(1, len(numbers) + 1))  # every number once
    assert all(t.status != "pending" for t in trials)
    assert sum(t.status == "completed" for t in trials) >= 30
    assert any(t.attempts > 1 for t in trials)  # pending trials re-ran under their number
    # The journal replays: every stored proposal is the algorithm's, made again.
    algorithm = RegularizedEvolution(population_size=6, tournament_size=3, seed=3)
    again = mx.search(SPACE, algorithm, num_trials=30, store=path, max_attempts=20)
    assert again.ask() is None
    again.close()


def test_a_live_driver_is_refused_and_a_stale_one_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = mx.search(SPACE, Random(seed=0), num_trials=3, store=path, lease_s=1.5)
    hung = first.ask()  # the first driver holds the study, then hangs
    assert hung is not None
    second = mx.search(SPACE, Random(seed=0), num_trials=3, store=path, lease_s=1.5)
    with pytest.raises(
        StoreError, match=r"is being searched by another search .* \(\d+\.\d s from now\)"
    ):
        second.run(reward, backend=mx.backends.Ray(max_in_flight=2))
    assert first._heartbeat is not None
    first._heartbeat.stop.set()  # it stops renewing: its lease goes stale
    time.sleep(1.7)
    third = mx.search(SPACE, Random(seed=0), num_trials=3, store=path, lease_s=1.5)
    third.run(reward, backend=mx.backends.Ray(max_in_flight=2))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 3
    assert trials[0].attempts == 2  # the hung driver's trial ran again under its number


def unpicklable_evaluate() -> Any:
    import threading

    lock = threading.Lock()

    def evaluate(trial: mx.Trial) -> float:
        with lock:
            return 1.0

    return evaluate


def test_bad_input_is_named(ray_cluster: str) -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=2)
    with pytest.raises(TypeError, match=r"`evaluate` must be picklable to run on Ray workers.*"
                       r"define it at module level"):  # fmt: skip
        search.run(unpicklable_evaluate(), backend=mx.backends.Ray())
    search = mx.search(SPACE, Random(seed=0), num_trials=2)
    with pytest.raises(ValueError, match=r"`num_cpus_per_trial`=3 is more than the Ray cluster's "
                       r"2 CPUs: no trial could start; ask for at most 2"):  # fmt: skip
        search.run(reward, backend=mx.backends.Ray(num_cpus_per_trial=3))
    search = mx.search(SPACE, Random(seed=0), num_trials=2)
    with pytest.raises(
        ValueError, match=r"`num_gpus_per_trial`=1 is more than the Ray cluster's 0"
    ):
        search.run(reward, backend=mx.backends.Ray(num_gpus_per_trial=1))
    with pytest.raises(TypeError, match=r"`evaluate` must be a function of a trial"):
        search.run(3.0, backend=mx.backends.Ray())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`backend` must be an mx.backends backend "
                       r"\(mx.backends.Local\(\) or mx.backends.Ray\(...\)\), but got 'ray'"):  # fmt: skip
        search.run(reward, backend="ray")  # type: ignore[arg-type]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"max_in_flight": 0}, r"`max_in_flight` must be an int >= 1, but got 0; give how many"),
        ({"retries": -1}, r"`retries` must be an int >= 0, but got -1"),
        ({"num_cpus_per_trial": 0}, r"`num_cpus_per_trial` must be a number > 0, but got 0"),
        ({"num_gpus_per_trial": -1}, r"`num_gpus_per_trial` must be a number >= 0"),
        ({"errors": "ignore"}, r"`errors` must be 'raise' .* or 'fail' .* but got 'ignore'"),
        ({"xla_threads": 0}, r"`xla_threads` must be an int >= 1, but got 0"),
        ({"address": ""}, r"`address` must be None .* 'auto' .* but got ''"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            mx.backends.Ray(**kwargs)
    with pytest.raises(TypeError, match=r"`ordered` must be True or False, but got 1"):
        mx.backends.Ray(ordered=1)  # type: ignore[arg-type]


def test_ray_missing_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import morphax as mx\n"
        "try:\n    mx.backends.Ray()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "mx.backends.Ray needs Ray" in out.stdout
    assert "pip install 'morphax[ray]'" in out.stdout
