"""Mutators, recombinators, regularized evolution and NSGA-II."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import spaces
from hypothesis import given
from hypothesis import strategies as st

import morphax as mx
from morphax.algorithms import (
    NSGA2,
    Evolution,
    Member,
    RegularizedEvolution,
    TournamentSelector,
    crowding_distance,
    non_dominated_sort,
    operator_from_json_value,
    pareto_front,
)
from morphax.algorithms.mutators import (
    Chain,
    Gaussian,
    RandomChoice,
    Uniform,
    UniformCrossover,
)

SPACES: dict[str, Any] = {
    "categorical": [mx.oneof(["a", "b", "c"]) for _ in range(3)],
    "conditional": mx.oneof(["a", {"k": mx.oneof([3, 5])}]),
    "nested": {
        "op": mx.oneof(["skip", {"k": mx.oneof([3, 5, {"d": mx.intv(1, 3)}])}, "pool"]),
        "w": mx.oneof([8, 16]),
    },
    "floats": [mx.floatv(-1.0, 1.0), mx.floatv(1e-5, 1e-1, scale="log")],
    "ints": [mx.intv(0, 3), mx.intv(-2, -1), mx.intv(5, 5)],
    "mixed": {"op": mx.oneof(["a", {"lr": mx.floatv(0.1, 1.0)}]), "n": mx.intv(1, 4)},
    "manyof": mx.manyof(3, ["a", {"z": mx.intv(1, 3)}, "c", "d"]),
    "manyof_full": mx.manyof(3, ["a", {"z": mx.oneof([1, 2])}, "c"]),
    "manyof_sorted": mx.manyof(3, ["a", {"z": mx.intv(1, 3)}, "c", "d", "e"], sorted=True),
    "manyof_repeat": mx.manyof(3, ["a", "b", "c"], distinct=False),
    "manyof_repeat_sorted": mx.manyof(3, ["a", "b", "c"], distinct=False, sorted=True),
    "single_point": [mx.oneof(["only"]), mx.intv(2, 2)],
}

MUTATORS: dict[str, Callable[[], Any]] = {
    "uniform": Uniform,
    "gaussian": lambda: Gaussian(scale=0.2),
    "chain": lambda: Chain([Uniform(), Gaussian()]),
    "random_choice": lambda: RandomChoice([Uniform(), Gaussian()], weights=[2, 1]),
}


def _numeric_active(spec: mx.DNASpec, dna: mx.DNA) -> bool:
    return any(
        isinstance(p, mx.Float) or (isinstance(p, mx.Int) and p.high > p.low)
        for p, _ in spec.decode(dna)
    )


def _check_mutators(spec: mx.DNASpec, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        parent = spec.random_dna(rng)
        for name, make in MUTATORS.items():
            child = make()(spec, parent, rng)
            spec.validate(child)
            if name == "uniform" and spec.space_size > 1:
                assert child != parent, (name, parent)
            if name == "gaussian" and _numeric_active(spec, parent):
                assert child != parent, (name, parent)
        other = spec.random_dna(rng)
        child = UniformCrossover()(spec, parent, other, rng)
        spec.validate(child)
        spec.validate(UniformCrossover()(spec, parent, Uniform()(spec, parent, rng), rng))


# -- mutators -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPACES))
def test_mutators_make_valid_different_dna(name: str) -> None:
    _check_mutators(mx.dna_spec(SPACES[name]), np.random.default_rng(0), 150)


@given(spaces, st.integers(0, 2**32 - 1))
def test_mutators_on_random_spaces(space: Any, seed: int) -> None:
    _check_mutators(mx.dna_spec(space), np.random.default_rng(seed), 5)


def test_mutators_on_a_define_by_run_depth() -> None:
    def net(x: float) -> float:
        for i in range(mx.intv(1, 3, name="depth")):
            x = x * mx.oneof([1, 2, 3], name=f"m{i}") + mx.floatv(0.0, 1.0, name=f"b{i}")
        return x

    spec = mx.trace(net, 1.0).spec
    _check_mutators(spec, np.random.default_rng(0), 100)
    rng = np.random.default_rng(0)
    depths = {Gaussian(scale=0.5)(spec, spec.random_dna(rng), rng)[0] for _ in range(50)}
    assert depths == {1, 2, 3}


def _neighbours(spec: mx.DNASpec, dna: mx.DNA, n: int = 400) -> set[mx.DNA]:
    rng = np.random.default_rng(0)
    return {Uniform()(spec, dna, rng) for _ in range(n)}


def test_uniform_reaches_every_single_change() -> None:
    spec = mx.dna_spec(SPACES["categorical"])
    parent = mx.DNA([0, 1, 2])
    expected = {
        mx.DNA([*parent.values[:i], v, *parent.values[i + 1 :]])
        for i in range(3)
        for v in range(3)
        if v != parent[i]
    }
    assert _neighbours(spec, parent) == expected


def test_uniform_samples_newly_active_decisions() -> None:
    spec = mx.dna_spec(SPACES["conditional"])
    assert _neighbours(spec, mx.DNA([0])) == {mx.DNA([1, 0]), mx.DNA([1, 1])}
    assert _neighbours(spec, mx.DNA([1, 0])) == {mx.DNA([0]), mx.DNA([1, 1])}


def test_uniform_keeps_manyof_rules() -> None:
    spec = mx.dna_spec(mx.manyof(2, ["a", "b", "c", "d"], sorted=True))
    assert _neighbours(spec, mx.DNA([0, 1])) == {mx.DNA(v) for v in ([0, 2], [0, 3])}
    assert _neighbours(spec, mx.DNA([1, 3])) == {mx.DNA(v) for v in ([0, 3], [2, 3], [1, 2])}
    # Distinct and unsorted with every candidate picked: only swaps change it.
    spec = mx.dna_spec(mx.manyof(3, ["a", "b", "c"]))
    assert _neighbours(spec, mx.DNA([0, 1, 2])) == {
        mx.DNA(v) for v in ([1, 0, 2], [2, 1, 0], [0, 2, 1])
    }
    spec = mx.dna_spec(mx.manyof(2, ["a", "b"], distinct=False, sorted=True))
    assert _neighbours(spec, mx.DNA([0, 1])) == {mx.DNA([0, 0]), mx.DNA([1, 1])}


def test_swapped_picks_keep_their_sub_decisions() -> None:
    spec = mx.dna_spec(mx.manyof(2, ["a", {"k": mx.oneof([3, 5, 7])}]))
    # Pick 0 holds candidate 1 with k=2; the only change is the swap.
    assert _neighbours(spec, mx.DNA([1, 2, 0])) >= {mx.DNA([0, 1, 2])}
    assert mx.DNA([0, 1, 2]) in _neighbours(spec, mx.DNA([1, 2, 0]))


def test_single_point_space_is_returned_unchanged() -> None:
    spec = mx.dna_spec(SPACES["single_point"])
    dna = spec.random_dna(0)
    assert Uniform()(spec, dna, np.random.default_rng(0)) == dna


def test_gaussian_stays_local_and_in_bounds() -> None:
    spec = mx.dna_spec([mx.floatv(0.0, 10.0), mx.floatv(1e-4, 1.0, scale="log")])
    rng = np.random.default_rng(0)
    moves = []
    for _ in range(300):
        child = Gaussian(scale=0.01)(spec, mx.DNA([5.0, 1e-2]), rng)
        moves.append(abs(child[0] - 5.0) + abs(math.log10(child[1]) + 2.0))
        spec.validate(child)
    assert 0 < float(np.mean(moves)) < 0.2
    edge = [Gaussian(scale=0.5)(spec, mx.DNA([10.0, 1.0]), rng) for _ in range(100)]
    for child in edge:
        spec.validate(child)


def test_gaussian_moves_ints_by_at_least_one_step() -> None:
    spec = mx.dna_spec(mx.intv(0, 100))
    rng = np.random.default_rng(0)
    steps = [Gaussian(scale=1e-6)(spec, mx.DNA([0]), rng)[0] for _ in range(20)]
    assert set(steps) == {1}


def test_crossover_takes_each_decision_from_a_parent() -> None:
    spec = mx.dna_spec([mx.oneof(range(5)) for _ in range(8)])
    rng = np.random.default_rng(0)
    a, b = mx.DNA([0] * 8), mx.DNA([1] * 8)
    children = [UniformCrossover()(spec, a, b, rng) for _ in range(50)]
    assert all(set(c.values) <= {0, 1} for c in children)
    assert len(set(children)) > 20
    cond = mx.dna_spec(SPACES["conditional"])
    kids = {UniformCrossover()(cond, mx.DNA([0]), mx.DNA([1, 1]), rng) for _ in range(50)}
    assert kids == {mx.DNA([0]), mx.DNA([1, 1])}
    kids = {UniformCrossover()(cond, mx.DNA([1, 0]), mx.DNA([1, 1]), rng) for _ in range(50)}
    assert kids == {mx.DNA([1, 0]), mx.DNA([1, 1])}


def test_crossover_keeps_manyof_rules() -> None:
    spec = mx.dna_spec(mx.manyof(2, ["a", "b", "c"]))
    rng = np.random.default_rng(0)
    kids = {UniformCrossover()(spec, mx.DNA([0, 1]), mx.DNA([1, 2]), rng) for _ in range(100)}
    assert kids == {mx.DNA(v) for v in ([0, 1], [1, 2], [0, 2])}  # [1, 1] would repeat


def test_operator_descriptions_round_trip() -> None:
    ops: list[Any] = [
        Uniform(),
        Gaussian(scale=0.3),
        Chain([Uniform(), RandomChoice([Gaussian(), Uniform()], weights=[1, 3])]),
        UniformCrossover(),
        TournamentSelector(4),
    ]
    for op in ops:
        text = json.dumps(op.to_json_value())
        assert operator_from_json_value(json.loads(text)).to_json_value() == op.to_json_value()
    assert repr(Gaussian(scale=0.3)) == "Gaussian(scale=0.3)"


def test_operator_errors() -> None:
    with pytest.raises(ValueError, match=r"Gaussian needs a `scale` > 0, but got scale=0"):
        Gaussian(scale=0)
    with pytest.raises(ValueError, match="Chain needs at least one mutator, but got an empty"):
        Chain([])
    with pytest.raises(TypeError, match=r"Chain takes a list of mutators, but got Uniform\(\)"):
        Chain(Uniform())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes Mutator instances \(e.g. Uniform\(\)\), but got"):
        RandomChoice([Uniform(), UniformCrossover()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"one non-negative weight per mutator.*weights=\[1\]"):
        RandomChoice([Uniform(), Gaussian()], weights=[1])
    with pytest.raises(ValueError, match="RandomChoice needs one non-negative weight"):
        RandomChoice([Uniform(), Gaussian()], weights=[0, 0])
    with pytest.raises(ValueError, match="unknown operator 'Nope'; known: "):
        operator_from_json_value({"name": "Nope", "args": {}})
    with pytest.raises(ValueError, match=r"TournamentSelector needs an int `size` >= 1"):
        TournamentSelector(0)


# -- regularized evolution ---------------------------------------------------------

ONEMAX = mx.dna_spec([mx.oneof(range(4)) for _ in range(10)])


def _onemax(seed: int) -> Callable[[mx.DNA], float]:
    target = np.random.default_rng(1000 + seed).integers(0, 4, 10).tolist()
    return lambda dna: float(sum(a == b for a, b in zip(dna.values, target, strict=True)))


def _run(
    algo: mx.algorithms.Algorithm,
    spec: mx.DNASpec,
    reward: Callable[[mx.DNA], Any],
    budget: int,
) -> list[tuple[mx.DNA, Any]]:
    algo.setup(spec)
    history = []
    for _ in range(budget):
        dna = algo.propose()
        spec.validate(dna)
        r = reward(dna)
        algo.feedback(dna, r)
        history.append((dna, r))
    return history


def test_first_proposals_are_random_then_mutants_of_the_population() -> None:
    algo = RegularizedEvolution(population_size=5, tournament_size=2, seed=3)
    history = _run(algo, ONEMAX, _onemax(0), 5)
    rand = mx.algorithms.Random(seed=3)
    assert [d for d, _ in history] == [d for d, _ in _run(rand, ONEMAX, _onemax(0), 5)]
    for _ in range(20):
        child = algo.propose()
        parents = [m.dna for m in algo.population]
        distance = min(sum(a != b for a, b in zip(child, p, strict=True)) for p in parents)
        assert distance == 1  # one decision changed
        algo.feedback(child, _onemax(0)(child))
    assert len(algo.population) == 5


def test_evolution_beats_random_search_on_onemax() -> None:
    seeds = range(6)
    evo = [
        max(r for _, r in _run(RegularizedEvolution(seed=s), ONEMAX, _onemax(s), 300))
        for s in seeds
    ]
    rnd = [
        max(r for _, r in _run(mx.algorithms.Random(seed=s), ONEMAX, _onemax(s), 300))
        for s in seeds
    ]
    # Random search finds about 7 of 10, evolution about 9 (measured over 8 seeds).
    assert np.mean(evo) >= np.mean(rnd) + 1.0, (evo, rnd)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RegularizedEvolution(population_size=6, tournament_size=3, seed=7),
        lambda: RegularizedEvolution(
            population_size=6, mutator=Chain([Uniform(), Uniform()]), recombination_prob=0.5, seed=7
        ),
        lambda: Evolution(population_size=4, selector=TournamentSelector(2), mutator=Uniform()),
    ],
)
def test_evolution_is_deterministic_and_recovers(make: Callable[[], Any]) -> None:
    spec = mx.dna_spec(SPACES["mixed"])

    def reward() -> Callable[[mx.DNA], float | None]:
        fails = itertools.cycle([False, False, False, True])  # every 4th trial fails
        return lambda dna: None if next(fails) else float(sum(dna.values))

    a = _run(make(), spec, reward(), 40)
    algo = make()
    b = _run(algo, spec, reward(), 40)
    assert a == b
    resumed = make()
    resumed.setup(spec)
    resumed.recover(b)
    for _ in range(5):
        dna = algo.propose()
        assert resumed.propose() == dna
        algo.feedback(dna, 1.0)
        resumed.feedback(dna, 1.0)
    config = json.loads(json.dumps(algo.config()))
    assert type(algo)(**config).config() == algo.config()


def test_failed_trials_do_not_join_and_random_phase_refills() -> None:
    algo = RegularizedEvolution(population_size=3, tournament_size=2, seed=0)
    algo.setup(ONEMAX)
    for _ in range(3):
        algo.feedback(algo.propose(), None)
    assert algo.population == []
    # Still in the random phase: a fourth random DNA, as Random would propose it.
    rand = mx.algorithms.Random(seed=0)
    rand.setup(ONEMAX)
    expected = [rand.propose() for _ in range(4)]
    assert algo.propose() == expected[3]
    algo.feedback(expected[3], float("nan"))
    assert algo.population == []


def test_proposals_in_flight_and_foreign_feedback() -> None:
    algo = RegularizedEvolution(population_size=4, tournament_size=2, seed=0)
    algo.setup(ONEMAX)
    proposed = [algo.propose() for _ in range(8)]  # no feedback yet: all random
    for dna in proposed:
        ONEMAX.validate(dna)
    stranger = mx.DNA([3] * 10)
    algo.feedback(stranger, 10.0)  # not proposed by it: joins the population
    algo.feedback(proposed[0], 1.0)
    assert [m.dna for m in algo.population] == [stranger, proposed[0]]
    child = algo.propose()  # 2 members + 7 pending >= 4: evolves from what it has
    assert min(sum(a != b for a, b in zip(child, m.dna, strict=True)) for m in algo.population) == 1
    with pytest.raises(ValueError, match="too short for this space"):
        algo.feedback(mx.DNA([0]), 1.0)


def test_tournament_picks_the_best_sampled() -> None:
    pop = [Member(mx.DNA([i]), float(i % 3)) for i in range(6)]
    rng = np.random.default_rng(0)
    assert {TournamentSelector(1)(pop, rng).dna for _ in range(200)} == {m.dna for m in pop}
    assert {TournamentSelector(50)(pop, rng).reward for _ in range(20)} == {2.0}


def test_evolution_argument_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"tournament_size <= population_size, but got tournament_size=5, population_size=3",
    ):
        RegularizedEvolution(population_size=3, tournament_size=5)
    with pytest.raises(
        ValueError, match=r"needs an int `population_size` >= 1, but got population_size=0"
    ):
        RegularizedEvolution(population_size=0)
    with pytest.raises(
        ValueError, match=r"needs an int `tournament_size` >= 1, but got tournament_size=2.5"
    ):
        RegularizedEvolution(tournament_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"`recombination_prob` in \[0, 1\], but got recombination_prob=2"
    ):
        RegularizedEvolution(recombination_prob=2)
    with pytest.raises(
        TypeError, match=r"needs a Mutator as `mutator` \(e.g. Uniform\(\)\), but got"
    ):
        RegularizedEvolution(mutator=UniformCrossover())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a Selector as `selector`"):
        Evolution(population_size=3, selector=Uniform(), mutator=Uniform())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not set up: call setup"):
        RegularizedEvolution().propose()
    algo = RegularizedEvolution()
    algo.setup(ONEMAX)
    with pytest.raises(TypeError, match="single-objective but got the reward tuple"):
        algo.feedback(algo.propose(), (1.0, 2.0))


# -- NSGA-II ---------------------------------------------------------------------------


def _dominates(p: np.ndarray, q: np.ndarray) -> bool:
    return bool(np.all(p >= q) and np.any(p > q))


def test_pareto_front_on_hand_made_points() -> None:
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 2.0)]) == [0]
    assert pareto_front([(1, 5), (2, 2), (3, 1), (1, 1), (3, 1), (0, 5)]) == [0, 1, 2, 4]
    assert pareto_front([(1, 1, 1), (2, 0, 0), (0, 0, 2), (1, 1, 0), (0, 0, 0)]) == [0, 1, 2]
    assert pareto_front(np.array([[0.5], [0.7], [0.7]])) == [1, 2]
    with pytest.raises(ValueError, match=r"list of points of equal length \(\[n, m\]\)"):
        pareto_front([1.0, 2.0])  # type: ignore[list-item]


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 2)), max_size=30))
def test_pareto_front_and_fronts_match_brute_force(points: list[tuple[int, int, int]]) -> None:
    f = np.array(points, dtype=float).reshape(len(points), 3)
    brute = [i for i in range(len(f)) if not any(_dominates(f[j], f[i]) for j in range(len(f)))]
    assert pareto_front(f) == brute
    fronts = non_dominated_sort(f)
    assert sorted(fronts[0]) == brute if points else fronts == []
    assert sorted(i for fr in fronts for i in fr) == list(range(len(f)))
    for k, fr in enumerate(fronts[1:], start=1):  # each member is dominated by the front above
        assert all(any(_dominates(f[j], f[i]) for j in fronts[k - 1]) for i in fr)


def test_crowding_distance() -> None:
    d = crowding_distance([(0, 4), (1, 2), (4, 0), (3, 1)])
    assert np.isinf(d[0]) and np.isinf(d[2])
    assert d[1] == pytest.approx(3 / 4 + 3 / 4) and d[3] == pytest.approx(3 / 4 + 2 / 4)
    assert np.isinf(crowding_distance([(1, 1), (2, 2)])).all()


ZDT = mx.dna_spec([mx.floatv(0.0, 1.0) for _ in range(6)])


def _zdt1(dna: mx.DNA) -> tuple[float, float]:
    """ZDT1 (both objectives negated, so both are maximized)."""
    x = dna.values
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return (-x[0], -g * (1 - math.sqrt(x[0] / g)))


def _hypervolume(
    points: list[tuple[float, ...]], ref: tuple[float, float] = (-1.0, -10.0)
) -> float:
    front = sorted({tuple(points[i]) for i in pareto_front(points)}, key=lambda p: -p[0])
    area, floor = 0.0, ref[1]
    for a, b in front:
        if a > ref[0] and b > floor:
            area += (a - ref[0]) * (b - floor)
            floor = b
    return area


def test_hypervolume_helper() -> None:
    assert _hypervolume([(0.0, 0.0)], ref=(-1.0, -1.0)) == 1.0
    assert _hypervolume([(0.0, -0.5), (-0.5, 0.0), (-0.6, -0.6)], ref=(-1.0, -1.0)) == 0.75


@pytest.mark.parametrize("mutator", [Uniform(), RandomChoice([Uniform(), Gaussian(scale=0.1)])])
def test_nsga2_improves_the_front(mutator: Any) -> None:
    for seed in range(3):
        algo = NSGA2(objectives=("f1", "f2"), population_size=20, mutator=mutator, seed=seed)
        history = _run(algo, ZDT, _zdt1, 300)
        initial = _hypervolume([r for _, r in history[:20]])
        final = _hypervolume([ind.objectives for ind in algo.population])
        # Measured: about 6.4-7.4 at first, about 9.0-9.3 after 15 generations (max ~9.67).
        assert final > initial + 1.0, (seed, initial, final)
        assert len(algo.population) == 20
        assert {ind.rank for ind in algo.population} >= {0}


def test_nsga2_is_deterministic_and_recovers() -> None:
    spec = mx.dna_spec(SPACES["nested"])

    def reward() -> Callable[[mx.DNA], tuple[float, float] | None]:
        fails = itertools.cycle([False] * 6 + [True])  # every 7th trial fails
        return lambda dna: None if next(fails) else (float(sum(dna.values)), float(-len(dna)))

    def make() -> NSGA2:
        return NSGA2(objectives=("a", "b"), population_size=5, seed=4)

    algo = make()
    history = _run(algo, spec, reward(), 33)
    assert _run(make(), spec, reward(), 33) == history
    resumed = make()
    resumed.setup(spec)
    resumed.recover(history)
    for _ in range(6):
        dna = algo.propose()
        assert resumed.propose() == dna
        algo.feedback(dna, (1.0, 2.0))
        resumed.feedback(dna, (1.0, 2.0))
    assert resumed.population == algo.population
    config = json.loads(json.dumps(algo.config()))
    assert NSGA2(**config).config() == algo.config()
    assert algo.objectives == ("a", "b") and mx.algorithms.Random().objectives is None


def test_nsga2_generations_and_selection() -> None:
    spec = mx.dna_spec([mx.oneof(range(10))])
    algo = NSGA2(objectives=("x", "y"), population_size=4, seed=0)
    algo.setup(spec)
    for v in range(4):  # generation 0 from given DNA: one dominated point
        algo.feedback(mx.DNA([v]), [(0.0, 3.0), (1.0, 2.0), (0.0, 0.0), (3.0, 0.0)][v])
    assert [(i.dna[0], i.rank) for i in algo.population] == [(0, 0), (1, 0), (3, 0), (2, 1)]
    for v in range(4, 8):  # four better points push the old front out
        algo.feedback(mx.DNA([v]), (float(v), float(v)))
    assert sorted(i.dna[0] for i in algo.population) == [4, 5, 6, 7]
    assert [i.rank for i in algo.population if i.dna[0] == 7] == [0]


def test_nsga2_argument_errors() -> None:
    with pytest.raises(
        TypeError, match=r"`objectives` as a list of metric names, e.g. objectives="
    ):
        NSGA2(objectives="acc")
    with pytest.raises(
        ValueError,
        match=r"at least one objective name, without repeats, but got objectives=\('a', 'a'\)",
    ):
        NSGA2(objectives=("a", "a"))
    with pytest.raises(
        ValueError, match=r"needs an int `population_size` >= 2, but got population_size=1"
    ):
        NSGA2(objectives=("a", "b"), population_size=1)
    with pytest.raises(TypeError, match=r"needs metric names \(str\) as objectives, but got 1"):
        NSGA2(objectives=("a", 1))  # type: ignore[arg-type]
    algo = NSGA2(objectives=("a", "b"))
    algo.setup(ONEMAX)
    with pytest.raises(
        TypeError, match=r"reads 2 objectives \('a', 'b'\) and needs a tuple of 2 floats"
    ):
        algo.feedback(algo.propose(), 1.0)


# -- the lifecycle every algorithm shares, and describe() --------------------------

ALGORITHMS: dict[str, Callable[[], mx.algorithms.Algorithm]] = {
    "Random": lambda: mx.algorithms.Random(seed=3),
    "Grid": mx.algorithms.Grid,
    "Evolution": lambda: Evolution(
        population_size=4, selector=TournamentSelector(2), mutator=Gaussian(scale=0.2)
    ),
    "RegularizedEvolution": lambda: RegularizedEvolution(population_size=6, tournament_size=3),
    "NSGA2": lambda: NSGA2(objectives=("a",), population_size=4),
    "Reinforce": lambda: mx.algorithms.Reinforce(learning_rate=0.1),
    "PPO": lambda: mx.algorithms.PPO(batch_size=4),
}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_propose_and_feedback_before_setup_say_to_call_setup(name: str) -> None:
    algo = ALGORITHMS[name]()
    with pytest.raises(
        RuntimeError,
        match=rf"{name} is not set up: call setup\(spec\) first \(before propose\(\)\)",
    ):
        algo.propose()
    with pytest.raises(
        RuntimeError, match=rf"{name} is not set up: call setup\(spec\) first \(before feedback"
    ):
        algo.feedback(mx.DNA([0]), 1.0)
    with pytest.raises(RuntimeError, match=rf"{name} is not set up: call setup\(spec\) first"):
        algo.recover([])
    assert algo.num_proposed == algo.num_feedback == 0


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_proposals_and_feedbacks_are_counted(name: str) -> None:
    spec = mx.dna_spec([mx.oneof(range(3)) for _ in range(2)])
    algo = ALGORITHMS[name]()
    algo.setup(spec)
    history = []
    for i in range(5):
        history.append((algo.propose(), float(i)))
        algo.feedback(*history[-1])
    algo.propose()
    assert (algo.num_proposed, algo.num_feedback) == (6, 5)
    algo.recover(history)
    assert (algo.num_proposed, algo.num_feedback) == (5, 5)
    algo.setup(spec)
    assert (algo.num_proposed, algo.num_feedback) == (0, 0)


def test_an_old_style_subclass_overriding_propose_still_works() -> None:
    class Fixed(mx.algorithms.Algorithm):
        def propose(self) -> mx.DNA:
            return mx.DNA([1])

    algo = Fixed()
    algo.setup(mx.dna_spec([mx.oneof([1, 2])]))
    algo.recover([(mx.DNA([1]), 1.0)])
    assert algo.propose() == mx.DNA([1]) and algo.num_feedback == 1


DESCRIPTIONS: list[tuple[Any, str]] = [
    (mx.algorithms.Random(seed=3), "Random(seed=3)"),
    (mx.algorithms.Grid(), "Grid()"),
    (
        Evolution(population_size=4, selector=TournamentSelector(2), mutator=Gaussian(scale=0.2)),
        "Evolution(population_size=4, selector=TournamentSelector(size=2), "
        "mutator=Gaussian(scale=0.2), recombinator=UniformCrossover(), recombination_prob=0.0, "
        "seed=0)",
    ),
    (
        RegularizedEvolution(population_size=20, tournament_size=10),
        "RegularizedEvolution(population_size=20, tournament_size=10, mutator=Uniform(), "
        "recombinator=UniformCrossover(), recombination_prob=0.0, seed=0)",
    ),
    (
        NSGA2(objectives=("acc", "speed")),
        "NSGA2(objectives=['acc', 'speed'], population_size=20, mutator=Uniform(), "
        "recombinator=UniformCrossover(), recombination_prob=0.9, seed=0)",
    ),
    (
        mx.algorithms.Reinforce(),
        "Reinforce(learning_rate=0.05, baseline_decay=0.9, batch_size=1, entropy_weight=0.0, "
        "seed=0)",
    ),
    (
        mx.algorithms.PPO(seed=2),
        "PPO(learning_rate=0.05, clip=0.2, epochs=4, batch_size=8, baseline_decay=0.9, "
        "normalize_advantages=True, entropy_weight=0.0, seed=2)",
    ),
    (Uniform(), "Uniform()"),
    (Gaussian(scale=0.3), "Gaussian(scale=0.3)"),
    (Chain([Uniform(), Gaussian()]), "Chain(mutators=[Uniform(), Gaussian(scale=0.1)])"),
    (
        RandomChoice([Uniform(), Chain([Gaussian()])], weights=[3, 1]),
        "RandomChoice(mutators=[Uniform(), Chain(mutators=[Gaussian(scale=0.1)])], "
        "weights=[0.75, 0.25])",
    ),
    (UniformCrossover(), "UniformCrossover()"),
    (TournamentSelector(4), "TournamentSelector(size=4)"),
    (
        mx.algorithms.MedianStopping(min_steps=2, min_trials=4),
        "MedianStopping(min_steps=2, min_trials=4)",
    ),
    (
        mx.algorithms.SuccessiveHalving(),
        "SuccessiveHalving(min_step=1, reduction_factor=3, min_trials=2)",
    ),
]


@pytest.mark.parametrize(("obj", "text"), DESCRIPTIONS, ids=lambda x: type(x).__name__)
def test_describe_is_one_line_with_the_settings(obj: Any, text: str) -> None:
    assert obj.describe() == text == repr(obj)
    assert "\n" not in text
    if isinstance(obj, mx.algorithms.mutators.Operator):
        rebuilt = operator_from_json_value(json.loads(json.dumps(obj.to_json_value())))
    else:
        rebuilt = type(obj)(**json.loads(json.dumps(obj.config())))
    assert rebuilt.describe() == text or isinstance(obj, mx.algorithms.Grid)  # Grid: no seed


def test_every_configurable_class_is_described() -> None:
    def subclasses(cls: type) -> set[type]:
        out = set(cls.__subclasses__())
        return out.union(*(subclasses(c) for c in out)) if out else out

    public = {
        c
        for c in subclasses(mx.algorithms.Configurable)
        if c.__module__.startswith("morphax.") and not c.__name__.startswith("_")
    }
    bases = {
        mx.algorithms.Algorithm,
        mx.algorithms.Selector,
        mx.algorithms.mutators.Operator,
        mx.algorithms.mutators.Mutator,
        mx.algorithms.mutators.Recombinator,
    }
    assert public - bases == {type(obj) for obj, _ in DESCRIPTIONS}


def test_the_earlier_mutator_name_still_loads() -> None:
    with pytest.warns(DeprecationWarning, match="OneOf is now RandomChoice"):
        assert mx.algorithms.mutators.OneOf is RandomChoice
    old = {
        "name": "OneOf",
        "args": {"mutators": [{"name": "Uniform", "args": {}}], "weights": None},
    }
    assert repr(operator_from_json_value(old)) == "RandomChoice(mutators=[Uniform()], weights=None)"
    assert mx.algorithms.operator_from_description is operator_from_json_value
