"""The contract every search algorithm keeps, as checks a user's test suite runs.

A check takes `make_algorithm`, a function `seed -> Algorithm` that returns a
fresh algorithm that is not set up yet, and a DNASpec, and raises an
AssertionError that says what broke and how to look into it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

import morphax as mx
from morphax.algorithms import Algorithm, Random, Reward

AlgorithmFactory = Callable[[int], Algorithm]
RewardFn = Callable[[Algorithm, mx.DNA], Reward]


def example_spaces() -> dict[str, Any]:
    """Small search spaces that exercise every kind of decision.

    Fresh programs on each call (programs are mutable): `"flat"` (six
    independent choices), `"conditional"` (a choice whose candidates hold
    their own decisions), `"floats"` (linear and log floats and an int) and
    `"manyof"` (a sorted multi-choice).

    Returns:
        `{name: program}`.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import example_spaces
        >>> sorted(example_spaces())
        ['conditional', 'flat', 'floats', 'manyof']
        >>> mx.dna_spec(example_spaces()["conditional"]).space_size
        24
    """
    return {
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


def default_reward(algorithm: Algorithm, dna: mx.DNA) -> Reward:
    """A deterministic reward for contract runs: the sum of the DNA's numbers
    plus a tenth of its length; a tuple (that value, then minus half of it,
    alternating) for a multi-objective algorithm.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import default_reward
        >>> default_reward(mx.algorithms.Random(), mx.DNA([1, 2]))
        3.2
        >>> default_reward(mx.algorithms.NSGA2(objectives=("a", "b")), mx.DNA([1, 2]))
        (3.2, -1.6)
    """
    value = float(sum(float(v) for v in dna.values)) + 0.1 * len(dna)
    if algorithm.objectives:
        return tuple(value if i % 2 == 0 else -value / 2 for i in range(len(algorithm.objectives)))
    return value


def _name(algorithm: Algorithm) -> str:
    return type(algorithm).__name__


def _check_type(algorithm: Any) -> None:
    if not isinstance(algorithm, Algorithm):
        raise TypeError(
            "make_algorithm(seed) must return a morphax.algorithms.Algorithm, but got "
            f"{algorithm!r}; pass e.g. `lambda seed: MyAlgorithm(seed=seed)`"
        )


def _fresh(make_algorithm: AlgorithmFactory, seed: int, spec: mx.DNASpec) -> Algorithm:
    algorithm = make_algorithm(seed)
    _check_type(algorithm)
    algorithm.setup(spec)
    return algorithm


def _propose(algorithm: Algorithm, spec: mx.DNASpec, i: int) -> mx.DNA:
    dna = algorithm.propose()
    if not isinstance(dna, mx.DNA):
        raise AssertionError(
            f"{_name(algorithm)}.propose() must return a morphax DNA, but proposal #{i} "
            f"is {dna!r}; wrap the values: `mx.DNA(values)`"
        )
    try:
        spec.validate(dna)
    except ValueError as e:
        raise AssertionError(
            f"{_name(algorithm)} proposed invalid DNA at proposal #{i}: {e}; "
            f"every proposal must pass spec.validate(dna) for the spec given to setup:\n{spec!r}"
        ) from e
    return dna


def _steps(
    algorithm: Algorithm, spec: mx.DNASpec, n: int, reward: RewardFn, start: int = 0
) -> list[mx.DNA]:
    """`n` rounds of propose then feedback."""
    out = []
    for i in range(start, start + n):
        dna = _propose(algorithm, spec, i)
        algorithm.feedback(dna, reward(algorithm, dna))
        out.append(dna)
    return out


def run_algorithm(
    algorithm: Algorithm,
    spec: mx.DNASpec,
    num_proposals: int,
    *,
    reward: RewardFn = default_reward,
) -> list[mx.DNA]:
    """Sets `algorithm` up on `spec`, then proposes and feeds back
    `num_proposals` times, checking every proposal with `spec.validate`.

    Returns:
        The proposals, in order.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import run_algorithm
        >>> spec = mx.dna_spec([mx.oneof([1, 2]), mx.oneof([3, 4])])
        >>> [d.values for d in run_algorithm(mx.algorithms.Grid(), spec, 3)]
        [(0, 0), (0, 1), (1, 0)]
    """
    _check_type(algorithm)
    algorithm.setup(spec)
    return _steps(algorithm, spec, num_proposals, reward)


def check_valid_dna(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    num_proposals: int = 40,
    reward: RewardFn = default_reward,
) -> None:
    """Every proposal is DNA that `spec.validate` accepts, and the algorithm
    does not propose one point over and over on a space with several.

    Raises:
        AssertionError: naming the proposal and the rule it breaks.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_valid_dna
        >>> spec = mx.dna_spec([mx.oneof([1, 2, 3]), mx.floatv(0.0, 1.0)])
        >>> check_valid_dna(lambda seed: mx.algorithms.Random(seed=seed), spec)
    """
    algorithm = make_algorithm(0)
    dnas = run_algorithm(algorithm, spec, num_proposals, reward=reward)
    if spec.space_size > 1 and num_proposals > 1 and len(set(dnas)) == 1:
        raise AssertionError(
            f"{_name(algorithm)} proposed only {dnas[0]!r} in {num_proposals} proposals on a "
            f"space of size {spec.space_size}; a search must explore"
        )


def check_deterministic(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    num_proposals: int = 40,
    seed_matters: bool = True,
    reward: RewardFn = default_reward,
) -> None:
    """The same seed gives the same proposals; with `seed_matters` (False for
    a deterministic algorithm such as Grid), another seed gives others.

    Raises:
        AssertionError: with the first proposal that differs.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_deterministic
        >>> spec = mx.dna_spec([mx.oneof(list(range(5))) for _ in range(4)])
        >>> check_deterministic(lambda seed: mx.algorithms.Random(seed=seed), spec)
    """
    a = run_algorithm(make_algorithm(7), spec, num_proposals, reward=reward)
    b = run_algorithm(make_algorithm(7), spec, num_proposals, reward=reward)
    if a != b:
        i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        raise AssertionError(
            f"two runs of {_name(make_algorithm(7))} with seed=7 differ at proposal #{i}: "
            f"{a[i]!r} != {b[i]!r}; keep all randomness in generators made from the seed "
            "in reset() (never the global random or np.random state, never a clock)"
        )
    if seed_matters and run_algorithm(make_algorithm(8), spec, num_proposals, reward=reward) == a:
        raise AssertionError(
            f"{_name(make_algorithm(7))} proposes the same {num_proposals} DNA with seed=7 and "
            "seed=8; derive its random state from its seed (or pass seed_matters=False "
            "for an algorithm that is deterministic by design)"
        )


def _first_difference(expected: Sequence[mx.DNA], got: Sequence[mx.DNA]) -> str:
    for i, (x, y) in enumerate(zip(expected, got, strict=True)):
        if x != y:
            return f"next proposal #{i}: uninterrupted {x!r}, recovered {y!r}"
    return "none"


def check_recover(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    num_history: int = 30,
    num_next: int = 5,
    reward: RewardFn = default_reward,
) -> None:
    """`recover(history)` on a fresh algorithm gives the next proposals of an
    uninterrupted run with the same seed.

    Raises:
        AssertionError: with the first next proposal that differs.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_recover
        >>> spec = mx.dna_spec([mx.oneof(list(range(5))) for _ in range(4)])
        >>> check_recover(lambda seed: mx.algorithms.RegularizedEvolution(
        ...     population_size=8, seed=seed), spec)
    """
    algorithm = make_algorithm(3)
    dnas = run_algorithm(algorithm, spec, num_history, reward=reward)
    history = [(d, reward(algorithm, d)) for d in dnas]
    expected = _steps(algorithm, spec, num_next, reward, start=num_history)
    fresh = _fresh(make_algorithm, 3, spec)
    fresh.recover(history)
    got = _steps(fresh, spec, num_next, reward, start=num_history)
    if got != expected:
        raise AssertionError(
            f"{_name(algorithm)}.recover(history of {num_history} trials) does not continue "
            f"the uninterrupted run: {_first_difference(expected, got)}; recover must rebuild "
            "all state from the seed and the history (replay it)"
        )


def check_recover_with_outstanding(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    num_history: int = 30,
    num_outstanding: int = 4,
    num_next: int = 5,
    reward: RewardFn = default_reward,
) -> None:
    """Like :func:`check_recover`, but with proposals outstanding: after
    `num_history` sequential trials the run proposes `num_outstanding` times
    before any feedback (as parallel workers do), then feeds them back in
    order; `recover` of that history must give the same next proposals.

    Raises:
        AssertionError: with the first next proposal that differs.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_recover_with_outstanding
        >>> spec = mx.dna_spec([mx.oneof(list(range(5))) for _ in range(4)])
        >>> check_recover_with_outstanding(lambda seed: mx.algorithms.Random(seed=seed), spec)
    """
    algorithm = make_algorithm(5)
    dnas = run_algorithm(algorithm, spec, num_history, reward=reward)
    batch = [_propose(algorithm, spec, num_history + i) for i in range(num_outstanding)]
    for dna in batch:
        algorithm.feedback(dna, reward(algorithm, dna))
    history = [(d, reward(algorithm, d)) for d in dnas + batch]
    start = num_history + num_outstanding
    expected = _steps(algorithm, spec, num_next, reward, start=start)
    fresh = _fresh(make_algorithm, 5, spec)
    fresh.recover(history)
    got = _steps(fresh, spec, num_next, reward, start=start)
    if got != expected:
        raise AssertionError(
            f"{_name(algorithm)}.recover(history) does not continue a run that had "
            f"{num_outstanding} proposals outstanding before their feedback: "
            f"{_first_difference(expected, got)}; replaying propose/feedback pairs one by one "
            "is not what happened: the state must not depend on when feedback came"
        )


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
) -> None:
    """On OneMax (10 decisions of 4 candidates; reward: how many hit a hidden
    target) the best reward found in `budget` trials beats random search by
    `margin` on average over `seeds`. For algorithms that claim to learn.

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

    def best_found(algorithm: Algorithm) -> float:
        dnas = run_algorithm(algorithm, spec, budget, reward=reward)
        rewards = [reward(algorithm, d) for d in dnas]
        return max(float(r) for r in rewards if isinstance(r, float | int))

    seeds = list(seeds)
    ours = float(np.mean([best_found(make_algorithm(s)) for s in seeds]))
    rand = float(np.mean([best_found(Random(seed=s)) for s in seeds]))
    if not ours >= rand + margin:
        raise AssertionError(
            f"{_name(make_algorithm(0))} finds a best OneMax reward of {ours:.2f} on average "
            f"over seeds {seeds} in {budget} trials, but random search finds {rand:.2f}; "
            f"a learning algorithm must beat it by {margin}"
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
    "recover_with_outstanding": check_recover_with_outstanding,
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

    The checks: valid DNA, determinism under a seed, `recover(history)`
    (also with proposals outstanding), the `config()` round trip, and, when
    asked, learning on OneMax and pinned proposals.

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
    if "recover_with_outstanding" not in skip:
        check_recover_with_outstanding(make_algorithm, main)
    if "config_round_trip" not in skip:
        check_config_round_trip(make_algorithm, main, rebuild=rebuild)
    if learns:
        check_improves(make_algorithm)
    if pinned is not None:
        check_pinned_proposals(make_algorithm, main, pinned)
