"""Warm starts (`search.enqueue`) and study housekeeping (list, delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.algorithms import PPO, Random, RegularizedEvolution, Reinforce
from morphax.tuning import StoreError

SPACE = {"a": mx.oneof(list(range(6))), "b": mx.oneof(list(range(6))), "c": mx.intv(0, 5)}
BASELINE = mx.DNA([5, 5, 5])
ALGORITHMS = {
    "Random": lambda: Random(seed=3),
    "RegularizedEvolution": lambda: RegularizedEvolution(
        population_size=4, tournament_size=2, seed=3
    ),
    "Reinforce": lambda: Reinforce(seed=3),
    "PPO": lambda: PPO(seed=3),
}


def reward(trial: mx.Trial) -> float:
    return float(sum(trial.dna.values)) + 0.01 * trial.dna.values[0]


def rows(path: Path, name: str = "default") -> list[tuple[Any, ...]]:
    return [(t.id, t.dna, t.status, t.reward) for t in mx.load_study(path, name).trials]


def make(name: str, path: Path, **kw: Any) -> mx.tuning.Search:
    search = mx.search(SPACE, ALGORITHMS[name](), num_trials=10, store=path, progress=False, **kw)
    search.enqueue(BASELINE)
    search.enqueue({"a": 0, "b": 1, "c": 2})  # a child program: encoded by the space
    return search


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_enqueued_trials_run_first_and_resume_exactly(tmp_path: Path, name: str) -> None:
    whole = make(name, tmp_path / "whole.db")
    whole.run(reward)
    trials = mx.load_study(tmp_path / "whole.db").trials
    assert [t.dna for t in trials[:2]] == [BASELINE, mx.DNA([0, 1, 2])]
    assert len(trials) == 10  # the enqueued trials count toward num_trials

    for crash_at in (1, 2, 5):  # inside each enqueued trial, and after them
        path = tmp_path / f"crash{crash_at}.db"

        def crashing(trial: mx.Trial, at: int = crash_at) -> float:
            if trial.id == at:
                raise KeyboardInterrupt
            return reward(trial)

        with pytest.raises(KeyboardInterrupt):
            make(name, path).run(crashing)
        make(name, path).run(reward)  # the same script again: the same enqueue calls
        assert rows(path) == rows(tmp_path / "whole.db"), crash_at


def test_evolution_takes_the_baseline_into_its_population() -> None:
    algo = RegularizedEvolution(population_size=2, tournament_size=1, seed=0)
    search = mx.search(SPACE, algo, num_trials=6, progress=False)
    search.enqueue(BASELINE)
    search.run(lambda t: 100.0 if t.dna == BASELINE else 0.0)
    children = [t.dna for t in search.trials[3:]]  # proposed after the population filled
    near = [sum(x != y for x, y in zip(d.values, BASELINE.values, strict=True)) for d in children]
    assert min(near) <= 1  # a mutant of the baseline: the algorithm saw its result


def test_enqueue_refuses_what_does_not_fit() -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=3)
    with pytest.raises(ValueError, match=r"search.enqueue: the DNA does not fit the space"):
        search.enqueue(mx.DNA([9, 0, 0]))
    with pytest.raises(ValueError, match=r"search.enqueue takes a DNA or a child program"):
        search.enqueue({"a": 7, "b": 0, "c": 0})


def test_enqueued_first_in_a_memory_study(tmp_path: Path) -> None:
    search = mx.search(SPACE, Random(seed=0), num_trials=3, store=tmp_path / "s.db")
    search.enqueue(BASELINE)
    seen = []
    search.run(lambda t: seen.append(t.dna) or 1.0)
    assert seen[0] == BASELINE and len(seen) == 3


def test_list_and_delete_studies(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    for name in ("a", "b", "c"):
        search = mx.search(SPACE, Random(seed=0), num_trials=2, store=path, name=name)
        search.run(reward)
    assert mx.list_studies(path) == ["a", "b", "c"]
    weights = Path(f"{path}.ckpt") / "b"
    weights.mkdir(parents=True)
    mx.delete_study(path, "b")
    assert mx.list_studies(path) == ["a", "c"]
    assert not weights.exists()
    assert [t.id for t in mx.load_study(path, "c").trials] == [1, 2]
    with pytest.raises(StoreError, match=r"no study 'b' in .*; its studies: \['a', 'c'\]"):
        mx.delete_study(path, "b")
    with pytest.raises(StoreError, match=r"no study file"):
        mx.list_studies(tmp_path / "missing.db")

    live = mx.search(SPACE, Random(seed=0), num_trials=2, store=path, name="a")
    live.ask()  # holds the lease
    with pytest.raises(StoreError, match=r"study 'a' in .* is being searched by .*: a live"):
        mx.delete_study(path, "a")
    live.close()
    mx.delete_study(path, "a")
    assert mx.list_studies(path) == ["c"]
    again = mx.search(SPACE, Random(seed=0), num_trials=2, store=path, name="b")
    again.run(reward)  # a deleted name starts afresh
    assert [t.id for t in mx.load_study(path, "b").trials] == [1, 2]
