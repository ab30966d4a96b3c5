"""The shipped algorithm contract (`morphax.testing`) over every built-in
algorithm and early-stopping policy, and the messages of its checks on
algorithms that break it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import morphax as mx
from morphax import testing as mxt
from morphax.algorithms import Algorithm


@dataclass(frozen=True)
class Case:
    make: Callable[[int], Algorithm]
    spaces: tuple[str, ...] = ("flat", "conditional", "floats", "manyof")
    main: str = "conditional"  # the space of the recover and config checks
    learns: bool = False
    seed_matters: bool = True


A = mx.algorithms
CASES: dict[str, Case] = {
    "random": Case(lambda seed: A.Random(seed=seed)),
    # Grid enumerates in DNA order: only "flat" has more than the 40 points a run proposes.
    "grid": Case(lambda seed: A.Grid(seed=seed), ("flat",), "flat", seed_matters=False),
    "evolution": Case(
        lambda seed: A.RegularizedEvolution(population_size=20, tournament_size=5, seed=seed),
        learns=True,
    ),
    "evolution+crossover": Case(
        lambda seed: A.RegularizedEvolution(
            population_size=20, tournament_size=5, recombination_prob=0.5, seed=seed
        ),
        learns=True,
    ),
    "nsga2": Case(lambda seed: A.NSGA2(objectives=("f", "g"), population_size=16, seed=seed)),
    "reinforce": Case(lambda seed: A.Reinforce(seed=seed), learns=True),
    "ppo": Case(lambda seed: A.PPO(seed=seed), learns=True),
}


def spec_of(space: str) -> mx.DNASpec:
    return mx.dna_spec(mxt.example_spaces()[space])


NAME_SPACE = [(n, s) for n, c in CASES.items() for s in c.spaces]


def with_marks(names: list[str], xfails: dict[str, str]) -> list[Any]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=xfails[n]))
        if n in xfails
        else n
        for n in names
    ]


@pytest.mark.parametrize(("name", "space"), NAME_SPACE, ids=[f"{n}-{s}" for n, s in NAME_SPACE])
def test_valid_dna(name: str, space: str) -> None:
    mxt.check_valid_dna(CASES[name].make, spec_of(space))


@pytest.mark.parametrize(("name", "space"), NAME_SPACE, ids=[f"{n}-{s}" for n, s in NAME_SPACE])
def test_deterministic(name: str, space: str) -> None:
    case = CASES[name]
    mxt.check_deterministic(case.make, spec_of(space), seed_matters=case.seed_matters)


@pytest.mark.parametrize("name", CASES)
def test_recover_gives_the_same_next_proposals(name: str) -> None:
    mxt.check_recover(CASES[name].make, spec_of(CASES[name].main))


OUTSTANDING_XFAILS = {
    "evolution": "RegularizedEvolution.recover replays propose/feedback pairs: "
    "with outstanding proposals the tournament saw fewer members",
    "evolution+crossover": "RegularizedEvolution.recover replays propose/feedback pairs: "
    "with outstanding proposals the tournament saw fewer members",
    "nsga2": "NSGA2.recover replays propose/feedback pairs",
    "ppo": "PPO.recover replays propose/feedback pairs: outstanding proposals were "
    "sampled from an older policy",
}


@pytest.mark.parametrize("name", with_marks(list(CASES), OUTSTANDING_XFAILS))
def test_recover_with_outstanding_proposals(name: str) -> None:
    mxt.check_recover_with_outstanding(CASES[name].make, spec_of(CASES[name].main))


# The contract with trials in flight: the journal replays exactly at 1, 2 and
# 8 in flight, on every space (the RL controllers on the main one: each space
# compiles anew).
REPLAY_NAME_SPACE = [
    (n, s)
    for n, c in CASES.items()
    for s in (c.spaces if n not in ("reinforce", "ppo") else (c.main,))
]


@pytest.mark.parametrize(
    ("name", "space"), REPLAY_NAME_SPACE, ids=[f"{n}-{s}" for n, s in REPLAY_NAME_SPACE]
)
def test_replay_with_trials_in_flight(name: str, space: str) -> None:
    mxt.check_replay_in_flight(CASES[name].make, spec_of(space))


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.learns])
def test_beats_random_search_with_8_in_flight(name: str) -> None:
    # Over 6 seeds random search averages about 6.6 of 10 in 300 trials, the
    # learners 9.6 to 10 (at 1 and at 8 in flight): a margin of 2 leaves room.
    mxt.check_improves(CASES[name].make, seeds=range(6), margin=2.0, in_flight=8)


class OneAtATime(Algorithm):
    """Cannot propose again before feedback, and says so."""

    max_pending = 1

    def reset(self) -> None:
        self.waiting = False

    def _propose(self) -> mx.DNA:
        assert not self.waiting, "proposed again before feedback"
        self.waiting = True
        return self.spec.random_dna(self.rng)

    def _feedback(self, dna: mx.DNA, reward: Any) -> None:
        self.waiting = False


def test_in_flight_runs_respect_max_pending() -> None:
    flat = spec_of("flat")
    journal = mxt.run_in_flight(OneAtATime(), flat, 5, width=8)
    assert [e[0] for e in journal] == ["propose", "feedback"] * 5
    mxt.check_replay_in_flight(lambda seed: OneAtATime(seed=seed), flat)
    assert Algorithm.max_pending is None and A.PPO.max_pending is None


def test_in_flight_journal_has_the_events_in_order() -> None:
    journal = mxt.run_in_flight(A.Random(seed=0), spec_of("flat"), 20, width=8, order_seed=1)
    proposed = [e[1] for e in journal if e[0] == "propose"]
    fed = [e[1] for e in journal if e[0] == "feedback"]
    assert len(proposed) == 20 and sorted(map(str, fed)) == sorted(map(str, proposed))
    assert fed != proposed  # a random finishing order, not first in first out
    outstanding = 0
    for e in journal:
        outstanding += 1 if e[0] == "propose" else -1
        assert 0 <= outstanding <= 8
    with pytest.raises(ValueError, match=r"`width` \(trials in flight\) must be >= 1, but got 0"):
        mxt.run_in_flight(A.Random(), spec_of("flat"), 3, width=0)


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip(name: str) -> None:
    mxt.check_config_round_trip(CASES[name].make, spec_of(CASES[name].main))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.learns])
def test_beats_random_search_on_onemax(name: str) -> None:
    mxt.check_improves(CASES[name].make)


def test_check_algorithm_runs_every_check() -> None:
    mxt.check_algorithm(lambda seed: A.Random(seed=seed))
    mxt.check_algorithm(lambda seed: A.Grid(seed=seed), spec=spec_of("flat"), seed_matters=False)


# ---------------------------------------------------------------------------
# Permanence: the first proposals of each built-in for seed 0 on one space. A
# change here changes what resumed studies propose: pin the new values on
# purpose only (the failure message prints them).

PIN_SPACE = {
    "op": mx.oneof(["skip", {"k": mx.oneof([3, 5, 7])}, {"w": mx.intv(1, 8)}]),
    "b": mx.oneof([0, 1]),
    "lr": mx.floatv(1e-3, 1e-1, scale="log"),
}
PIN_CASES: dict[str, Callable[[int], Algorithm]] = {
    "random": lambda seed: A.Random(seed=seed),
    "evolution": lambda seed: A.RegularizedEvolution(
        population_size=6, tournament_size=3, seed=seed
    ),
    "evolution+crossover": lambda seed: A.RegularizedEvolution(
        population_size=6, tournament_size=3, recombination_prob=0.5, seed=seed
    ),
    "nsga2": lambda seed: A.NSGA2(objectives=("f", "g"), population_size=6, seed=seed),
    "reinforce": lambda seed: A.Reinforce(seed=seed),
    "ppo": lambda seed: A.PPO(batch_size=4, seed=seed),
}
_RANDOM6 = [
    (1, 0, 0, 0.04231949523091316),
    (2, 6, 1, 0.07415575534105301),
    (2, 7, 0, 0.02879459038376808),
    (0, 0, 0.007004456594586372),
    (0, 1, 0.0170125812292099),
    (1, 2, 1, 0.019994867965579033),
]  # the first 6: random draws while a population of 6 fills
PINNED: dict[str, list[tuple[Any, ...]]] = {
    "random": _RANDOM6
    + [
        (2, 2, 1, 0.01123850792646408),
        (0, 1, 0.005195057950913906),
        (1, 0, 0, 0.006070689298212528),
        (2, 5, 0, 0.046268805861473083),
    ],
    "evolution": _RANDOM6
    + [
        (1, 1, 1, 0.019994867965579033),
        (2, 6, 1, 0.004173339810222387),
        (1, 2, 0, 0.019994867965579033),
        (1, 2, 1, 0.019994867965579033),
    ],
    "evolution+crossover": _RANDOM6
    + [
        (1, 2, 1, 0.02879459038376808),
        (2, 2, 0, 0.07415575534105301),
        (1, 2, 1, 0.001997831743210554),
        (2, 2, 1, 0.07415575534105301),
    ],
    "nsga2": _RANDOM6
    + [
        (1, 2, 0, 0.019994867965579033),
        (1, 2, 0, 0.019994867965579033),
        (1, 2, 1, 0.07415575534105301),
        (2, 1, 1, 0.007004456594586372),
    ],
    "reinforce": [
        (2, 4, 0, 0.014673968777060509),
        (0, 1, 0.020313432440161705),
        (2, 1, 0, 0.005656569264829159),
        (0, 0, 0.0034061626065522432),
        (2, 2, 1, 0.0032084137201309204),
        (0, 0, 0.04680289328098297),
        (2, 8, 0, 0.0010040468769147992),
        (0, 0, 0.0032563945278525352),
        (1, 2, 1, 0.0031384292524307966),
        (1, 1, 1, 0.006772119086235762),
    ],
    "ppo": [
        (2, 4, 0, 0.014673968777060509),
        (0, 1, 0.020313432440161705),
        (2, 1, 0, 0.006812175735831261),
        (0, 0, 0.004831403493881226),
        (2, 2, 1, 0.008177605457603931),
        (0, 0, 0.0946481004357338),
        (2, 8, 0, 0.0033871398773044348),
        (0, 0, 0.011287209577858448),
        (1, 2, 1, 0.007390358950942755),
        (1, 1, 1, 0.017247449606657028),
    ],
}
PINNED_GRID = [(0, 0), (0, 1), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (1, 2, 0), (1, 2, 1)]


@pytest.mark.parametrize("name", PIN_CASES)
def test_pinned_proposals(name: str) -> None:
    mxt.check_pinned_proposals(PIN_CASES[name], mx.dna_spec(PIN_SPACE), PINNED[name])


def test_pinned_grid_order() -> None:
    spec = mx.dna_spec({"op": PIN_SPACE["op"], "b": PIN_SPACE["b"]})
    mxt.check_pinned_proposals(lambda seed: A.Grid(seed=seed), spec, PINNED_GRID)


# ---------------------------------------------------------------------------
# Early-stopping policies.


@pytest.mark.parametrize(
    "policy",
    [
        A.MedianStopping(),
        A.MedianStopping(min_steps=3, min_trials=5),
        A.SuccessiveHalving(),
        A.SuccessiveHalving(min_step=2, reduction_factor=2, min_trials=3),
    ],
    ids=repr,
)
def test_stopping_policy_contract(policy: Any) -> None:
    mxt.check_stopping_policy(policy)


# ---------------------------------------------------------------------------
# Each check names what broke, on an algorithm that breaks it.


class GlobalRandom(Algorithm):
    """Draws from a generator it never resets: not deterministic."""

    shared = np.random.default_rng(0)

    def propose(self) -> mx.DNA:
        return self.spec.random_dna(self.shared)


class Invalid(Algorithm):
    def propose(self) -> mx.DNA:
        return mx.DNA([99] * len(self.spec))


class Stuck(Algorithm):
    def propose(self) -> mx.DNA:
        return self.spec.random_dna(0)


class Forgetful(Algorithm):
    """Proposes by how much feedback it had; its recover forgets that."""

    def reset(self) -> None:
        self.seen = 0

    def propose(self) -> mx.DNA:
        return self.spec.random_dna(self.seen)

    def feedback(self, dna: mx.DNA, reward: Any) -> None:
        self.seen += 1

    def recover(self, history: Any) -> None:
        self.setup(self.spec)


class Unconfigured(Algorithm):
    def __init__(self, *, width: int = 1, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.width = width

    def propose(self) -> mx.DNA:
        dna = self.spec.random_dna(self.rng)
        return dna if self.width == 1 else self.spec.random_dna(self.rng)


class Clocked(Algorithm):
    """Proposes from a counter that setup does not reset: replay differs."""

    calls = 0

    def _propose(self) -> mx.DNA:
        Clocked.calls += 1
        return self.spec.random_dna(Clocked.calls)


class NoReplay(Algorithm):
    """Proposes by how much feedback it had; its replay forgets that."""

    def reset(self) -> None:
        self.seen = 0

    def _propose(self) -> mx.DNA:
        return self.spec.random_dna(self.seen)

    def _feedback(self, dna: mx.DNA, reward: Any) -> None:
        self.seen += 1

    def replay(self, events: Any) -> None:
        self.setup(self.spec)


def test_in_flight_check_messages_teach() -> None:
    flat = spec_of("flat")
    with pytest.raises(
        AssertionError, match=r"Clocked cannot replay its own journal with 1 trials in flight"
    ):
        mxt.check_replay_in_flight(lambda seed: Clocked(seed=seed), flat)
    with pytest.raises(
        AssertionError,
        match=r"NoReplay.replay\(journal\) with 2 trials in flight does not continue .* "
        r"\(2 outstanding\): next proposal #0",
    ):
        mxt.check_replay_in_flight(lambda seed: NoReplay(seed=seed), flat, widths=[2])
    with pytest.raises(AssertionError, match=r"in 20 trials with 8 trials in flight, but random"):
        mxt.check_improves(lambda seed: Stuck(seed=seed), budget=20, seeds=[0], in_flight=8)


def test_check_messages_teach() -> None:
    flat = spec_of("flat")
    with pytest.raises(AssertionError, match=r"two runs of GlobalRandom with seed=7 differ"):
        mxt.check_deterministic(lambda seed: GlobalRandom(seed=seed), flat)
    with pytest.raises(AssertionError, match=r"the same 40 DNA with seed=7 and seed=8"):
        mxt.check_deterministic(lambda seed: Stuck(seed=seed), flat)
    with pytest.raises(AssertionError, match=r"Invalid proposed invalid DNA at proposal #0"):
        mxt.check_valid_dna(lambda seed: Invalid(seed=seed), flat)
    with pytest.raises(AssertionError, match=r"Stuck proposed only DNA\(.*\) in 40 proposals"):
        mxt.check_valid_dna(lambda seed: Stuck(seed=seed), flat)
    with pytest.raises(AssertionError, match=r"Forgetful.recover\(history of 30 trials\) does not"):
        mxt.check_recover(lambda seed: Forgetful(seed=seed), flat)
    with pytest.raises(AssertionError, match=r"config\(\) is missing an argument"):
        mxt.check_config_round_trip(lambda seed: Unconfigured(width=2, seed=seed), flat)
    with pytest.raises(AssertionError, match=r"cannot be rebuilt from its config"):
        mxt.check_config_round_trip(
            lambda seed: A.Grid(seed=seed), flat, rebuild=lambda c: A.Grid(**c, x=1)
        )
    with pytest.raises(AssertionError, match=r"random search finds .* must beat it by 1.0"):
        mxt.check_improves(lambda seed: Stuck(seed=seed), budget=20, seeds=[0])
    with pytest.raises(
        AssertionError, match=r"changed its proposals: #0 is \(0, 0, 0, 0, 0, 0\), pinned"
    ):
        mxt.check_pinned_proposals(lambda seed: A.Grid(seed=seed), flat, [(1, 0, 0, 0, 0, 0)])
    with pytest.raises(TypeError, match=r"make_algorithm\(seed\) must return"):
        mxt.check_recover(lambda seed: object(), flat)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"unknown checks in skip: \['recovr'\]"):
        mxt.check_algorithm(lambda seed: A.Random(seed=seed), skip=["recovr"])
    with pytest.raises(ValueError, match=r"pass spec= with pinned="):
        mxt.check_algorithm(lambda seed: A.Random(seed=seed), pinned=[(0,)])


class NeverStops:
    def should_stop(self, steps: Any, others: Any) -> bool:
        return False


def test_stopping_policy_messages_teach() -> None:
    with pytest.raises(AssertionError, match=r"NeverStops never stops a trial that trails all 8"):
        mxt.check_stopping_policy(NeverStops())


def test_importing_morphax_testing_imports_neither_jax_nor_hypothesis() -> None:
    code = (
        "import sys, morphax.testing\n"
        "print(sorted(m for m in ('jax', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out
