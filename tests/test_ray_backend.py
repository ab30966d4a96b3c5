"""mx.backends.Ray: the serial DNA order, ordered mode, early stopping through
the actor, errors, nesting. All Ray tests share one local Ray (conftest's
`ray_cluster`) in one xdist group."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.algorithms import MedianStopping, Random, RegularizedEvolution

ray = pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'morphax[ray]'")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.usefixtures("ray_cluster")]

SPACE = {"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}


def reward(trial: mx.Trial) -> float:
    return float(sum(trial.dna.values)) + 0.01 * trial.dna.values[0]


def table(path: Path, name: str = "default") -> list[tuple[Any, ...]]:
    return [(t.id, t.dna, t.status, t.reward) for t in mx.load_study(path, name).trials]


def evolution() -> RegularizedEvolution:
    return RegularizedEvolution(population_size=4, tournament_size=2, seed=5)


def jittered(seed: int, most: float = 0.06) -> Any:
    """An evaluate whose trial times are shuffled by `seed`."""

    def evaluate(trial: mx.Trial) -> float:
        time.sleep(random.Random(seed * 1000 + trial.id).uniform(0.0, most))
        return reward(trial)

    return evaluate


def test_random_on_ray_gives_the_serial_dna_order(tmp_path: Path) -> None:
    for t in mx.search(SPACE, Random(seed=3), num_trials=10, store=tmp_path / "s.db"):
        t.report(reward(t))
    search = mx.search(SPACE, Random(seed=3), num_trials=10, store=tmp_path / "r.db")
    seen = list(search.map(jittered(1), backend=mx.backends.Ray(max_in_flight=2)))
    assert sorted(t.id for t in seen) == list(range(1, 11))
    assert table(tmp_path / "r.db") == table(tmp_path / "s.db")
    assert search._state == "closed"


def test_ordered_mode_is_a_function_of_the_seed_and_w(tmp_path: Path) -> None:
    backend = mx.backends.Ray(max_in_flight=2, ordered=True)
    for run in (1, 2):
        search = mx.search(SPACE, evolution(), num_trials=12, store=tmp_path / f"{run}.db")
        seen = [t.id for t in search.map(jittered(run), backend=backend)]
        assert seen == sorted(seen)  # fed back, and yielded, in trial order
    assert table(tmp_path / "1.db") == table(tmp_path / "2.db")
    # W=1 is the serial study.
    for t in mx.search(SPACE, evolution(), num_trials=8, store=tmp_path / "serial.db"):
        t.report(reward(t))
    search = mx.search(SPACE, evolution(), num_trials=8, store=tmp_path / "w1.db")
    search.run(jittered(3), backend=mx.backends.Ray(max_in_flight=1, ordered=True))
    assert table(tmp_path / "w1.db") == table(tmp_path / "serial.db")


def test_ordered_resume_with_another_w_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, evolution(), num_trials=4, store=path)
    search.run(reward, backend=mx.backends.Ray(max_in_flight=2, ordered=True))
    again = mx.search(SPACE, evolution(), num_trials=6, store=path)
    with pytest.raises(ValueError, match=r"was run with ordered_window=2, but this search has "
                       r"ordered_window=1: .*resume it with max_in_flight set to the stored W"):  # fmt: skip
        again.run(reward, backend=mx.backends.Ray(max_in_flight=1, ordered=True))
    unordered = mx.search(SPACE, Random(seed=0), num_trials=2, store=tmp_path / "u.db")
    unordered.run(reward, backend=mx.backends.Ray(max_in_flight=2))
    later = mx.search(SPACE, Random(seed=0), num_trials=3, store=tmp_path / "u.db")
    with pytest.raises(ValueError, match=r"has 2 trials run without ordered_window"):
        later.run(reward, backend=mx.backends.Ray(max_in_flight=2, ordered=True))
    more = mx.search(SPACE, evolution(), num_trials=6, store=path)  # the stored W resumes
    more.run(reward, backend=mx.backends.Ray(max_in_flight=2, ordered=True))
    assert [t.status for t in mx.load_study(path).trials] == ["completed"] * 6


def staged(trial: mx.Trial) -> float:
    value = reward(trial)
    for epoch in range(1, 6):
        trial.report({"reward": value * epoch / 5, "loss": 1.0 / epoch}, step=epoch)
        if trial.should_stop():
            break
    return value


def test_early_stopping_through_the_actor(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    policy = MedianStopping(min_steps=1, min_trials=2)
    search = mx.search(SPACE, Random(seed=1), num_trials=10, store=path, early_stopping=policy)
    search.run(staged, backend=mx.backends.Ray(max_in_flight=2))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 10
    assert all(t.steps and t.steps[0] == (1, t.steps[0][1]) for t in trials)  # stored
    assert trials[0].steps[0][1]["loss"] == 1.0
    lengths = [len(t.steps) for t in trials]
    assert 5 in lengths and min(lengths) < 5, lengths  # some ran on, some were stopped


class Diverged(Exception):
    pass


def flaky(trial: mx.Trial) -> float:
    if trial.id == 3:
        raise Diverged(f"loss is nan at trial {trial.id}")
    return reward(trial)


def test_an_exception_reraises_in_the_driver_and_leaves_trials_pending(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, Random(seed=0), num_trials=6, store=path)
    with pytest.raises(Diverged, match="loss is nan at trial 3") as info:
        search.run(flaky, backend=mx.backends.Ray(max_in_flight=2))
    assert any("raised in a Ray worker, trial #3" in n for n in info.value.__notes__)
    assert search._state == "closed"
    statuses = {t.id: t.status for t in mx.load_study(path).trials}
    assert statuses[3] == "pending"
    again = mx.search(SPACE, Random(seed=0), num_trials=6, store=path)  # resumes, runs #3 again
    again.run(reward, backend=mx.backends.Ray(max_in_flight=2))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 6 and trials[2].attempts == 2


@pytest.mark.parametrize("how", ["errors", "catch"])
def test_errors_fail_records_the_worker_traceback(tmp_path: Path, how: str) -> None:
    path = tmp_path / "s.db"
    search = mx.search(SPACE, Random(seed=0), num_trials=5, store=path)
    if how == "errors":
        search.run(flaky, backend=mx.backends.Ray(max_in_flight=2, errors="fail"))
    else:
        search.run(flaky, backend=mx.backends.Ray(max_in_flight=2), catch=(Diverged,))
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 2 + ["failed"] + ["completed"] * 2
    reason = trials[2].reason
    assert reason is not None and reason.startswith("evaluate raised Diverged: loss is nan")
    assert 'in flaky\n    raise Diverged(f"loss is nan' in reason  # the worker's traceback


def inner_search(trial: mx.Trial) -> float:
    inner = mx.search(SPACE, Random(seed=trial.id), num_trials=3, name=f"inner-{trial.id}")
    inner.run(reward, backend=mx.backends.Ray(max_in_flight=2))
    best = inner.best()
    assert isinstance(best, mx.Trial) and best.reward is not None
    return float(best.reward)


def test_a_serial_outer_search_with_parallel_inner_searches(tmp_path: Path) -> None:
    outer = mx.search({"k": mx.oneof([1, 2])}, Random(seed=0), num_trials=2)
    for trial in outer:
        trial.report(inner_search(trial))
    assert [t.status for t in outer.trials] == ["completed"] * 2


def test_ray_inside_a_ray_worker_is_refused() -> None:
    search = mx.search({"k": mx.oneof([1, 2])}, Random(seed=0), num_trials=1)
    with pytest.raises(RuntimeError, match=r"mx.backends.Ray was used inside a Ray worker"):
        search.run(inner_search, backend=mx.backends.Ray(max_in_flight=1))


def test_a_returned_value_and_a_report_in_the_worker(tmp_path: Path) -> None:
    def evaluate(trial: mx.Trial) -> Any:
        if trial.id == 1:
            trial.skip("not this one")
        elif trial.id == 2:
            trial.report({"reward": 2.0, "loss": 0.5})
        elif trial.id == 3:
            trial.report(float("nan"))  # rejected in the worker: failed
        else:
            return {"reward": 4.0}
        return None

    search = mx.search(SPACE, Random(seed=0), num_trials=4, store=tmp_path / "s.db")
    search.run(evaluate, backend=mx.backends.Ray(max_in_flight=2, ordered=True))
    trials = mx.load_study(tmp_path / "s.db").trials
    assert [t.status for t in trials] == ["skipped", "completed", "failed", "completed"]
    assert trials[0].reason == "not this one" and trials[1].metrics == {"reward": 2.0, "loss": 0.5}
    assert trials[2].reason == "non-finite reward nan" and trials[3].reward == 4.0


def busy(trial: mx.Trial) -> dict[str, float]:
    import os

    return {"reward": 1.0, "cpus": float(len(os.sched_getaffinity(0)))}


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="Linux only")
def test_workers_are_pinned_to_their_cpu_share() -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=4)
    search.run(busy, backend=mx.backends.Ray(max_in_flight=2))
    assert {t.metrics["cpus"] for t in search.trials if t.metrics} == {1.0}


def train_one_epoch(program: Any) -> float:
    """The README's stand-in for a user's epoch: a deterministic score of the child."""
    return float(program["a"] + program["b"]) / 10


def test_the_readme_ray_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme[readme.index("### Parallel trials on Ray") :]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    assert "num_trials=200" in code
    code = code.replace("num_trials=200", "num_trials=12")  # the same code, a shorter study
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"mx": mx, "space": SPACE, "train_one_epoch": train_one_epoch}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    study = mx.load_study(tmp_path / "study.db", "nas")
    assert len(study.trials) == 12 and all(t.status == "completed" for t in study.trials)
    assert any(t.steps for t in study.trials)  # step reports went through the actor
