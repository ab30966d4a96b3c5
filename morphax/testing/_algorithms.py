"""The contract every search algorithm keeps, as checks a user's test suite runs.

A check takes `make_algorithm`, a function `seed -> Algorithm` that returns a
fresh algorithm that is not set up yet, and a DNASpec, and raises an
AssertionError that says what broke and how to look into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import morphax as mx
from morphax.algorithms import Algorithm, Reward

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
