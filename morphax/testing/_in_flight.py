"""The algorithm contract with many trials in flight: proposals before
feedback, feedback in a random order, and exact replay of the journal.

A run here is what an ask/tell search does with `width` workers: propose
until `width` trials are outstanding (or the algorithm's `max_pending`), then
feed back one outstanding trial chosen by a seeded generator, and repeat.
Every event is recorded in the journal the search keeps, in the order the
algorithm saw it: `("propose", dna)` and `("feedback", dna, reward)`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

import morphax as mx
from morphax.algorithms import Algorithm

from ._algorithms import (
    AlgorithmFactory,
    RewardFn,
    _check_type,
    _first_difference,
    _fresh,
    _name,
    _propose,
    default_reward,
)

#: A journal event: `("propose", dna)` or `("feedback", dna, reward)`.
Event = tuple[object, ...]

#: The numbers of trials in flight the contract runs with.
IN_FLIGHT_WIDTHS = (1, 2, 8)


class InFlightRun:
    """Drives one algorithm with up to `width` trials in flight.

    Args:
        algorithm: an algorithm that is set up.
        spec: its space; every proposal must pass `spec.validate`.
        width: the most trials outstanding at once (lowered to the
            algorithm's `max_pending` when it declares one).
        order_seed: the seed of the order in which trials finish.
        reward: the reward of a DNA.

    Attributes:
        journal: the events so far, in the order the algorithm saw them.
        outstanding: the proposals not fed back yet, oldest first.
        proposals: every proposal, in order.
    """

    def __init__(
        self,
        algorithm: Algorithm,
        spec: mx.DNASpec,
        *,
        width: int,
        order_seed: int = 0,
        reward: RewardFn = default_reward,
    ) -> None:
        if width < 1:
            raise ValueError(f"`width` (trials in flight) must be >= 1, but got {width}")
        limit = algorithm.max_pending
        self.algorithm, self.spec, self.reward = algorithm, spec, reward
        self.width = width if limit is None else max(1, min(width, int(limit)))
        self.order = np.random.default_rng(order_seed)
        self.journal: list[Event] = []
        self.outstanding: list[mx.DNA] = []
        self.proposals: list[mx.DNA] = []
        self.exhausted = False

    def step(self, *, propose: bool = True) -> None:
        """Proposes if fewer than `width` are outstanding (and `propose`),
        else feeds back a random outstanding trial."""
        if propose and not self.exhausted and len(self.outstanding) < self.width:
            try:
                dna = _propose(self.algorithm, self.spec, len(self.proposals))
            except StopIteration:
                self.exhausted = True
                return
            self.journal.append(("propose", dna))
            self.outstanding.append(dna)
            self.proposals.append(dna)
            return
        if not self.outstanding:
            return
        dna = self.outstanding.pop(int(self.order.integers(len(self.outstanding))))
        reward = self.reward(self.algorithm, dna)
        self.algorithm.feedback(dna, reward)
        self.journal.append(("feedback", dna, reward))

    def run(self, num_proposals: int, *, drain: bool = False) -> InFlightRun:
        """Steps until `num_proposals` more proposals were made (or the
        algorithm has nothing left); with `drain`, then feeds back the rest."""
        goal = len(self.proposals) + num_proposals
        while len(self.proposals) < goal and not self.exhausted:
            self.step()
        while drain and self.outstanding:
            self.step(propose=False)
        return self


def _is_number(value: object) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


def run_in_flight(
    algorithm: Algorithm,
    spec: mx.DNASpec,
    num_proposals: int,
    *,
    width: int,
    order_seed: int = 0,
    reward: RewardFn = default_reward,
) -> list[Event]:
    """Sets `algorithm` up on `spec` and runs `num_proposals` trials with up
    to `width` in flight, finishing in a random order (seeded by
    `order_seed`), all fed back at the end.

    Returns:
        The journal: the events in the order the algorithm saw them.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import run_in_flight
        >>> spec = mx.dna_spec([mx.oneof([1, 2]), mx.oneof([3, 4])])
        >>> journal = run_in_flight(mx.algorithms.Grid(), spec, 3, width=2)
        >>> [e[0] for e in journal]
        ['propose', 'propose', 'feedback', 'propose', 'feedback', 'feedback']
    """
    _check_type(algorithm)
    algorithm.setup(spec)
    run = InFlightRun(algorithm, spec, width=width, order_seed=order_seed, reward=reward)
    return run.run(num_proposals, drain=True).journal


def check_replay_in_flight(
    make_algorithm: AlgorithmFactory,
    spec: mx.DNASpec,
    *,
    widths: Iterable[int] = IN_FLIGHT_WIDTHS,
    num_history: int = 30,
    num_next: int = 10,
    reward: RewardFn = default_reward,
) -> None:
    """With `width` trials in flight finishing in a random order, every
    proposal is valid, and a fresh algorithm (same seed) that replays the
    journal of the first `num_history` proposals (its last trials still in
    flight, as at a crash) continues exactly as the uninterrupted one: the
    next `num_next` proposals, made on the same schedule, are equal.

    An algorithm that cannot take several proposals before feedback declares
    `max_pending`; the runs respect it.

    Raises:
        AssertionError: naming the width and the first proposal that differs.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_replay_in_flight
        >>> spec = mx.dna_spec([mx.oneof(list(range(5))) for _ in range(4)])
        >>> check_replay_in_flight(lambda seed: mx.algorithms.RegularizedEvolution(
        ...     population_size=8, seed=seed), spec)
    """
    for width in widths:
        algorithm = _fresh(make_algorithm, 3, spec)
        run = InFlightRun(algorithm, spec, width=width, order_seed=width, reward=reward)
        run.run(num_history)
        journal, outstanding = list(run.journal), list(run.outstanding)
        state = run.order.bit_generator.state
        expected = run.run(num_next).proposals[num_history:]

        fresh = _fresh(make_algorithm, 3, spec)
        try:
            fresh.replay(journal)
        except ValueError as e:
            raise AssertionError(
                f"{_name(algorithm)} cannot replay its own journal with {width} trials in "
                f"flight: {e}; every proposal must depend only on the seed and the events "
                "before it (never on object identity, a clock or global state)"
            ) from e
        again = InFlightRun(fresh, spec, width=width, reward=reward)
        again.order.bit_generator.state = state
        again.outstanding = outstanding
        again.proposals = list(run.proposals[:num_history])
        got = again.run(num_next).proposals[num_history:]
        if got != expected:
            raise AssertionError(
                f"{_name(algorithm)}.replay(journal) with {width} trials in flight does not "
                f"continue the uninterrupted run after {num_history} proposals "
                f"({len(outstanding)} outstanding): "
                f"{_first_difference(expected, got) if len(got) == len(expected) else got}; "
                "replay must rebuild all state from the seed and the events in order"
            )


def best_found_in_flight(
    algorithm: Algorithm,
    spec: mx.DNASpec,
    budget: int,
    *,
    width: int,
    order_seed: int,
    reward: RewardFn,
) -> float:
    """The best reward of `budget` trials run with `width` in flight."""
    journal = run_in_flight(
        algorithm, spec, budget, width=width, order_seed=order_seed, reward=reward
    )
    return max(float(e[2]) for e in journal if e[0] == "feedback" and _is_number(e[2]))  # type: ignore[arg-type]
