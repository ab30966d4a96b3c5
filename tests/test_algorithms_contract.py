"""One contract for every algorithm: valid DNA on several spaces, determinism
under a seed, exact recovery from history, and better than random search on a
known objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import morphax as mx
from morphax.algorithms import Algorithm

FACTORIES: dict[str, Callable[[int], Algorithm]] = {
    "random": lambda seed: mx.algorithms.Random(seed=seed),
    "evolution": lambda seed: mx.algorithms.RegularizedEvolution(
        population_size=20, tournament_size=5, seed=seed
    ),
    "evolution+crossover": lambda seed: mx.algorithms.RegularizedEvolution(
        population_size=20, tournament_size=5, recombination_prob=0.5, seed=seed
    ),
    "nsga2": lambda seed: mx.algorithms.NSGA2(objectives=("f", "g"), population_size=16, seed=seed),
}
if hasattr(mx.algorithms, "Reinforce"):
    FACTORIES["reinforce"] = lambda seed: mx.algorithms.Reinforce(seed=seed)
    FACTORIES["ppo"] = lambda seed: mx.algorithms.PPO(seed=seed)

SPACES: dict[str, Any] = {
    "flat": [mx.oneof(list(range(4))) for _ in range(6)],
    "conditional": {
        "op": mx.oneof(["skip", {"k": mx.oneof([3, 5, 7])}, {"w": mx.intv(1, 8)}]),
        "b": mx.oneof([0, 1]),
    },
    "floats": {
        "lr": mx.floatv(1e-4, 1e-1, scale="log"),
        "m": mx.floatv(0.0, 1.0),
        "n": mx.intv(2, 6),
    },
    "manyof": {"ops": mx.manyof(2, ["a", "b", "c", "d"], sorted=True), "x": mx.oneof([1, 2])},
}


def _reward(algo: Algorithm, dna: mx.DNA) -> Any:
    value = float(sum(v for v in dna.values if isinstance(v, int))) + 0.1 * len(dna)
    return (value, -value / 2) if algo.objectives else value


def _run(algo: Algorithm, space: Any, n: int) -> list[mx.DNA]:
    spec = mx.dna_spec(space)
    algo.setup(spec)
    out = []
    for _ in range(n):
        dna = algo.propose()
        spec.validate(dna)
        algo.feedback(dna, _reward(algo, dna))
        out.append(dna)
    return out


@pytest.mark.parametrize("space", SPACES, ids=list(SPACES))
@pytest.mark.parametrize("name", FACTORIES, ids=list(FACTORIES))
def test_valid_and_deterministic(name: str, space: str) -> None:
    a = _run(FACTORIES[name](7), SPACES[space], 40)
    b = _run(FACTORIES[name](7), SPACES[space], 40)
    assert a == b
    assert len(set(a)) > 1
    assert _run(FACTORIES[name](8), SPACES[space], 40) != a


@pytest.mark.parametrize("name", FACTORIES, ids=list(FACTORIES))
def test_recover_gives_the_same_next_proposal(name: str) -> None:
    space = SPACES["conditional"]
    spec = mx.dna_spec(space)
    algo = FACTORIES[name](3)
    history = [(dna, _reward(algo, dna)) for dna in _run(algo, space, 30)]
    expected = algo.propose()
    fresh = FACTORIES[name](3)
    fresh.setup(spec)
    fresh.recover(history)
    assert fresh.propose() == expected


@pytest.mark.parametrize("name", [n for n in FACTORIES if n not in ("random", "nsga2")])
def test_beats_random_search_on_onemax(name: str) -> None:
    """Reward: how many of 10 decisions (4 candidates each) hit a hidden target."""
    target = np.array([3, 1, 0, 2, 2, 1, 3, 0, 1, 2])
    space = [mx.oneof(list(range(4))) for _ in range(10)]
    spec = mx.dna_spec(space)

    def best_found(algo: Algorithm, budget: int = 300) -> float:
        algo.setup(spec)
        best = 0.0
        for _ in range(budget):
            dna = algo.propose()
            r = float((np.array(dna.values) == target).sum())
            algo.feedback(dna, r)
            best = max(best, r)
        return best

    seeds = range(4)
    ours = np.mean([best_found(FACTORIES[name](s)) for s in seeds])
    rand = np.mean([best_found(mx.algorithms.Random(seed=s)) for s in seeds])
    assert ours >= rand + 1.0, (ours, rand)
