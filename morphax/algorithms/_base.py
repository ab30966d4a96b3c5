"""The algorithm interface: propose DNA, take feedback, rebuild from history.

An algorithm sees only a DNASpec and DNA, never the program. Its lifecycle:

1. `setup(spec)` binds it to a space and resets its state from its seed.
2. `propose()` returns the next DNA to evaluate.
3. `feedback(dna, reward)` reports the reward of a proposed DNA: a float
   (maximized), a tuple of floats for multi-objective algorithms (each
   maximized), or None for a trial that failed or was skipped.
4. `recover(history)` rebuilds the state after a crash: it replays the
   history, so the next proposal is exactly the one an uninterrupted run
   with the same seed would make.

All state is derivable from the seed and the history; a subclass keeps its
randomness in a seeded `numpy.random.Generator` (or a JAX key) made in `reset`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._typing import History, Reward
from ..symbolic import DNA, DNASpec

#: A journal event: `("propose", dna)` or `("feedback", dna, reward)`.
Event = tuple[Any, ...]

__all__ = ["Algorithm", "Configurable", "History", "Reward"]


class Configurable:
    """The `config()` / `describe()` convention of algorithms, operators and
    stopping policies.

    A subclass lists the JSON-ready constructor arguments that rebuild it in
    `config()` (so `type(x)(**x.config())` is an equal object); `describe()`
    (and `repr`) is the one-line summary `Name(arg=value, ...)` made from
    them, with nested operators shown the same way.

    Examples:
        >>> import morphax as mx
        >>> mx.algorithms.RegularizedEvolution(population_size=20, tournament_size=10).describe()
        'RegularizedEvolution(population_size=20, tournament_size=10, mutator=Uniform(), recombinator=UniformCrossover(), recombination_prob=0.0, seed=0)'
    """

    def config(self) -> dict[str, Any]:
        """The JSON-ready constructor arguments that rebuild this object."""
        return {}

    def describe(self) -> str:
        """A one-line readable summary with the settings: `Name(arg=value, ...)`."""
        return _call(type(self).__name__, self.config())

    def __repr__(self) -> str:
        return _call(type(self).__name__, self.config())


def _call(name: str, args: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={_show(v)}' for k, v in args.items())})"


def _show(value: Any) -> str:
    """A config value as code: operator descriptions as `Name(args)`."""
    if (
        isinstance(value, dict)
        and set(value) == {"name", "args"}
        and isinstance(value["name"], str)
        and isinstance(value["args"], dict)
    ):
        return _call(value["name"], value["args"])
    if isinstance(value, list):
        return f"[{', '.join(_show(v) for v in value)}]"
    return repr(value)


class Algorithm(Configurable):
    """Base class of search algorithms (see the module docstring).

    The public `propose()` and `feedback()` check that the algorithm is set
    up and count the calls; subclasses implement the steps in `_propose()`
    and `_feedback()` (and `reset()` for their own state), and list the
    constructor arguments that define them in `config()`.

    Attributes:
        seed: the seed of the algorithm's randomness.
        spec: the DNASpec it is bound to (after `setup`).
        objectives: the metric names a multi-objective algorithm reads from a
            dict report, in order; None for single-objective algorithms.
        max_pending: at most this many proposals outstanding (proposed, not
            yet fed back) that the algorithm can take; a search asks for no
            more before feedback comes. None (the default): any number, with
            feedback in any order. A class attribute; set it in a subclass
            that cannot propose again before feedback (e.g. `max_pending = 1`).
        num_proposed: how many proposals it made since `setup`.
        num_feedback: how many feedbacks it took since `setup`.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.Random(seed=1)
        >>> algo.propose()
        Traceback (most recent call last):
        ...
        RuntimeError: Random is not set up: call setup(spec) first (before propose())
        >>> algo.setup(mx.dna_spec([mx.oneof([1, 2, 3])]))
        >>> algo.feedback(algo.propose(), 1.0)
        >>> algo.num_proposed, algo.num_feedback
        (1, 1)
    """

    objectives: tuple[str, ...] | None = None
    max_pending: int | None = None

    def __init__(self, *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"`seed` must be an int, but got {seed!r}")
        self.seed = int(seed)
        self._spec: DNASpec | None = None
        self.rng = np.random.default_rng(self.seed)
        self.num_proposed = 0
        self.num_feedback = 0
        self._issued: Counter[DNA] = Counter()  # proposed, not yet fed back

    @property
    def spec(self) -> DNASpec:
        if self._spec is None:
            raise RuntimeError(f"{type(self).__name__} is not set up: call setup(spec) first")
        return self._spec

    def _check_setup(self, method: str) -> None:
        if self._spec is None:
            raise RuntimeError(
                f"{type(self).__name__} is not set up: call setup(spec) first (before {method}())"
            )

    def setup(self, spec: DNASpec) -> None:
        """Binds the algorithm to `spec` and resets its state from its seed."""
        if not isinstance(spec, DNASpec):
            raise TypeError(f"setup needs a DNASpec, but got {spec!r}")
        self._spec = spec
        self.rng = np.random.default_rng(self.seed)
        self.num_proposed = 0
        self.num_feedback = 0
        self._issued = Counter()
        self.reset()

    def reset(self) -> None:
        """Resets the algorithm's own state (called by `setup`)."""

    def propose(self) -> DNA:
        """The next DNA to evaluate.

        Raises:
            RuntimeError: if the algorithm is not set up (call `setup(spec)`).
            StopIteration: if it has nothing left to propose (e.g. `Grid`).
        """
        self._check_setup("propose")
        dna = self._propose()
        self.num_proposed += 1
        self._issued[dna] += 1
        return dna

    def _propose(self) -> DNA:
        """The step of `propose` (the algorithm is set up): subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement _propose()")

    def feedback(self, dna: DNA, reward: Reward) -> None:
        """Takes the reward of a proposed DNA (None: the trial failed).

        A DNA this algorithm proposed is taken as it is (the search checked it
        when it was proposed); any other DNA is checked against the spec once.

        Raises:
            RuntimeError: if the algorithm is not set up (call `setup(spec)`).
            ValueError: if a DNA it did not propose does not fit the spec.
        """
        self._check_setup("feedback")
        if self._issued[dna]:
            self._issued[dna] -= 1
            if not self._issued[dna]:
                del self._issued[dna]
        else:
            self.spec.validate(dna)
        self._feedback(dna, reward)
        self.num_feedback += 1

    def _feedback(self, dna: DNA, reward: Reward) -> None:
        """The step of `feedback` (the algorithm is set up); the default ignores it."""

    def recover(self, history: History) -> None:
        """Rebuilds the state from `history` by replaying it from the seed.

        Each entry is proposed again and fed back, so the random state ends as
        in an uninterrupted run. Entries the algorithm would not have proposed
        (trials from elsewhere) are fed back without replaying proposals.

        Raises:
            RuntimeError: if the algorithm is not set up (call `setup(spec)`).
        """
        self._check_setup("recover")
        self.setup(self.spec)
        replaying = True
        for dna, reward in history:
            if replaying:
                proposed = self.propose()
                if proposed != dna:
                    replaying = False
            self.feedback(dna, reward)

    def replay(self, events: Iterable[Event]) -> None:
        """Rebuilds the state from a journal: the events in the order it saw them.

        Each event is `("propose", dna)` or `("feedback", dna, reward)`, with
        any number of proposals outstanding between them and feedback in any
        order. The algorithm is set up afresh and each proposal is made again,
        so its random state ends as in the run that wrote the journal.

        Raises:
            RuntimeError: if the algorithm is not set up (call `setup(spec)`).
            ValueError: if a proposal made again differs from the journal's
                (the algorithm, its seed or its code changed), naming both.

        Examples:
            >>> import morphax as mx
            >>> spec = mx.dna_spec({"a": mx.oneof([1, 2, 3])})
            >>> algo = mx.algorithms.Random(seed=0)
            >>> algo.setup(spec)
            >>> a, b = algo.propose(), algo.propose()
            >>> algo.feedback(b, 1.0)
            >>> again = mx.algorithms.Random(seed=0)
            >>> again.setup(spec)
            >>> again.replay([("propose", a), ("propose", b), ("feedback", b, 1.0)])
            >>> again.propose() == algo.propose()
            True
        """
        self._check_setup("replay")
        self.setup(self.spec)
        for i, event in enumerate(events):
            if event[0] == "propose":
                try:
                    proposed = self.propose()
                except StopIteration:
                    proposed = None
                if proposed != event[1]:
                    raise ValueError(
                        f"{type(self).__name__} cannot replay its journal: proposal at event {i} "
                        f"is {proposed!r} where the journal has {event[1]!r}; the algorithm, its "
                        "seed or its code changed since the journal was written"
                    )
            elif event[0] == "feedback":
                self.feedback(event[1], event[2])
            else:
                raise ValueError(f"unknown journal event {event!r} at {i}")

    def config(self) -> dict[str, Any]:
        """The JSON-ready arguments that rebuild this algorithm (with its seed)."""
        return {"seed": self.seed}

    def to_json_value(self) -> dict[str, Any]:
        """`{"algorithm": class name, **config()}`: what a study stores to
        recognize the algorithm it was run with."""
        return {"algorithm": type(self).__name__, **self.config()}


def scalar_reward(reward: Reward, who: str) -> float | None:
    """The float of a single-objective reward (None stays None)."""
    if reward is None:
        return None
    if isinstance(reward, tuple):
        if len(reward) != 1:
            raise TypeError(f"{who} is single-objective but got the reward tuple {reward!r}")
        reward = reward[0]
    return float(reward)
