"""The algorithm contract, continued: config round trips, learning, pinned
proposals, and :func:`check_algorithm`, which runs every check."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

import morphax as mx
from morphax.algorithms import Algorithm, Random, Reward

from ._algorithms import (
    AlgorithmFactory,
    RewardFn,
    _first_difference,
    _name,
    check_deterministic,
    check_recover,
    check_valid_dna,
    default_reward,
    example_spaces,
    run_algorithm,
)
from ._in_flight import best_found_in_flight, check_replay_in_flight


def _json_round_trip(config: Any, who: str) -> Any:
    try:
        return json.loads(json.dumps(config))
    except TypeError as e:
        raise AssertionError(
            f"{who}.config() must be JSON-ready (a store saves it), but json.dumps fails: {e}; "
            f"config() = {config!r}"
        ) from e


def check_config_round_trip(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    rebuild: Callable[[dict[str, Any]], Algorithm] | None = None,
    num_proposals: int = 20,
    reward: RewardFn = default_reward,
) -> None:
    """`config()` is JSON-ready and rebuilds an equal algorithm: the one built
    from the config (after a JSON round trip) has the same config and proposes
    the same DNA.

    Args:
        make_algorithm: `seed -> Algorithm`.
        spec: the space.
        rebuild: `config -> Algorithm`; by default `type(algorithm)(**config)`.
        num_proposals: how many proposals to compare.
        reward: the reward of a DNA.

    Raises:
        AssertionError: naming what differs.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_config_round_trip
        >>> spec = mx.dna_spec([mx.oneof(list(range(5))) for _ in range(4)])
        >>> check_config_round_trip(lambda seed: mx.algorithms.RegularizedEvolution(
        ...     population_size=6, recombination_prob=0.5, seed=seed), spec)
    """
    original = make_algorithm(11)
    who = _name(original)
    config = _json_round_trip(original.config(), who)
    build = rebuild or (lambda c: type(original)(**c))
    try:
        rebuilt = build(config)
    except TypeError as e:
        raise AssertionError(
            f"{who} cannot be rebuilt from its config() {config!r}: {e}; list exactly the "
            "constructor arguments in config(), or pass rebuild="
        ) from e
    again = _json_round_trip(rebuilt.config(), who)
    if again != config:
        raise AssertionError(f"{who} rebuilt from its config has config {again!r} != {config!r}")
    a = run_algorithm(original, spec, num_proposals, reward=reward)
    b = run_algorithm(rebuilt, spec, num_proposals, reward=reward)
    if a != b:
        raise AssertionError(
            f"{who} rebuilt from its config() {config!r} proposes differently: "
            f"{_first_difference(a, b)}; config() is missing an argument that changes proposals"
        )


def onemax_reward(target: Sequence[int]) -> RewardFn:
    """How many decisions of a DNA hit `target` (the OneMax objective).

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import onemax_reward
        >>> onemax_reward([1, 0, 2])(mx.algorithms.Random(), mx.DNA([1, 1, 2]))
        2.0
    """
    goal = np.asarray(target)

    def reward(algorithm: Algorithm, dna: mx.DNA) -> Reward:
        del algorithm
        return float((np.asarray(dna.values) == goal).sum())

    return reward


ONEMAX_TARGET = (3, 1, 0, 2, 2, 1, 3, 0, 1, 2)


def check_improves(
    make_algorithm: AlgorithmFactory,
    *,
    budget: int = 300,
    seeds: Iterable[int] = range(4),
    margin: float = 1.0,
    in_flight: int = 1,
) -> None:
    """On OneMax (10 decisions of 4 candidates; reward: how many hit a hidden
    target) the best reward found in `budget` trials beats random search by
    `margin` on average over `seeds`. For algorithms that claim to learn.

    With `in_flight` > 1 the trials run as an ask/tell search runs them:
    proposals until `in_flight` are outstanding, then the feedback of a
    random outstanding one (the order seeded by the seed), and so on; the
    algorithm must still learn from feedback that comes late and out of order.

    Raises:
        AssertionError: with both averages.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_improves
        >>> check_improves(lambda seed: mx.algorithms.RegularizedEvolution(
        ...     population_size=20, tournament_size=5, seed=seed), budget=150, seeds=[0])
    """
    spec = mx.dna_spec([mx.oneof(list(range(4))) for _ in ONEMAX_TARGET])
    reward = onemax_reward(ONEMAX_TARGET)

    def best_found(algorithm: Algorithm, seed: int) -> float:
        return best_found_in_flight(
            algorithm, spec, budget, width=in_flight, order_seed=seed, reward=reward
        )

    seeds = list(seeds)
    ours = float(np.mean([best_found(make_algorithm(s), s) for s in seeds]))
    rand = float(np.mean([best_found(Random(seed=s), s) for s in seeds]))
    if not ours >= rand + margin:
        flight = f" with {in_flight} trials in flight" if in_flight > 1 else ""
        raise AssertionError(
            f"{_name(make_algorithm(0))} finds a best OneMax reward of {ours:.2f} on average "
            f"over seeds {seeds} in {budget} trials{flight}, but random search finds "
            f"{rand:.2f}; a learning algorithm must beat it by {margin}"
        )


def record_proposals(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    num_proposals: int,
    *,
    seed: int = 0,
    reward: RewardFn = default_reward,
) -> list[tuple[Any, ...]]:
    """The values of the first proposals for `seed`: the data to pin with
    :func:`check_pinned_proposals`.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import record_proposals
        >>> spec = mx.dna_spec([mx.oneof([1, 2]), mx.oneof([3, 4])])
        >>> record_proposals(lambda seed: mx.algorithms.Grid(), spec, 2)
        [(0, 0), (0, 1)]
    """
    dnas = run_algorithm(make_algorithm(seed), spec, num_proposals, reward=reward)
    return [d.values for d in dnas]


def _same_values(x: Sequence[Any], y: Sequence[Any]) -> bool:
    if len(x) != len(y):
        return False
    for a, b in zip(x, y, strict=True):
        if isinstance(a, float) or isinstance(b, float):
            if not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12):
                return False
        elif a != b:
            return False
    return True


def check_pinned_proposals(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    expected: Sequence[Sequence[Any]],
    *,
    seed: int = 0,
    reward: RewardFn = default_reward,
) -> None:
    """The first proposals for `seed` are still `expected` (choices exactly,
    floats to a relative 1e-6), so an accidental change of the random stream
    (a new draw, a reordered draw, a new default) is caught. Record them once
    with :func:`record_proposals`; when a change is on purpose, record anew
    and say so in the change log: resumed studies propose differently.

    Raises:
        AssertionError: with the recorded proposals, to paste if the change
            is intended.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_pinned_proposals
        >>> spec = mx.dna_spec([mx.oneof([1, 2]), mx.oneof([3, 4])])
        >>> check_pinned_proposals(lambda seed: mx.algorithms.Grid(), spec, [(0, 0), (0, 1)])
    """
    got = record_proposals(make_algorithm, spec, len(expected), seed=seed, reward=reward)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        if not _same_values(tuple(want), have):
            raise AssertionError(
                f"{_name(make_algorithm(seed))} with seed={seed} changed its proposals: "
                f"#{i} is {have!r}, pinned {tuple(want)!r}. If the change of its random "
                f"stream is intended, pin the new proposals:\n{got!r}"
            )


#: The checks of :func:`check_algorithm`, by name (to parametrize a suite).
ALGORITHM_CHECKS: dict[str, Callable[..., None]] = {
    "valid_dna": check_valid_dna,
    "deterministic": check_deterministic,
    "recover": check_recover,
    "replay_in_flight": check_replay_in_flight,
    "config_round_trip": check_config_round_trip,
}


def check_algorithm(
    make_algorithm: AlgorithmFactory,
    *,
    spec: mx.DNASpec | None = None,
    learns: bool = False,
    seed_matters: bool = True,
    rebuild: Callable[[dict[str, Any]], Algorithm] | None = None,
    pinned: Sequence[Sequence[Any]] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """Runs the whole algorithm contract on `make_algorithm`.

    The checks: valid DNA, determinism under a seed, `recover(history)`,
    exact `replay(journal)` with 1, 2 and 8 trials in flight finishing in a
    random order (what a resumed search relies on), the `config()` round
    trip, and, when asked, learning on OneMax and pinned proposals.
    (:func:`check_recover_with_outstanding` is not run: `recover` replays
    propose/feedback pairs, which cannot be exact with proposals outstanding;
    the journal replay is.)

    Args:
        make_algorithm: `seed -> Algorithm`, fresh and not set up.
        spec: the space to run on; by default each of :func:`example_spaces`
            for the validity and determinism checks and the conditional one
            for the others.
        learns: also run :func:`check_improves` (for algorithms that learn).
        seed_matters: False for an algorithm that is deterministic by design.
        rebuild: `config -> Algorithm` for the config round trip.
        pinned: proposals recorded with :func:`record_proposals` (seed 0, on
            `spec`, which is then required).
        skip: names of :data:`ALGORITHM_CHECKS` not to run.

    Raises:
        AssertionError: from the first check that fails.
        ValueError: for `pinned` without `spec`, or an unknown name in `skip`.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_algorithm
        >>> check_algorithm(lambda seed: mx.algorithms.Random(seed=seed))
    """
    skip = set(skip)
    if skip - set(ALGORITHM_CHECKS):
        raise ValueError(
            f"unknown checks in skip: {sorted(skip - set(ALGORITHM_CHECKS))}; "
            f"the checks are {sorted(ALGORITHM_CHECKS)}"
        )
    if pinned is not None and spec is None:
        raise ValueError("pinned proposals belong to one space: pass spec= with pinned=")
    specs = [spec] if spec is not None else [mx.dna_spec(p) for p in example_spaces().values()]
    main = spec if spec is not None else mx.dna_spec(example_spaces()["conditional"])
    for s in specs:
        if "valid_dna" not in skip:
            check_valid_dna(make_algorithm, s)
        if "deterministic" not in skip:
            check_deterministic(make_algorithm, s, seed_matters=seed_matters)
    if "recover" not in skip:
        check_recover(make_algorithm, main)
    if "replay_in_flight" not in skip:
        check_replay_in_flight(make_algorithm, main)
    if "config_round_trip" not in skip:
        check_config_round_trip(make_algorithm, main, rebuild=rebuild)
    if learns:
        check_improves(make_algorithm)
    if pinned is not None:
        check_pinned_proposals(make_algorithm, main, pinned)
