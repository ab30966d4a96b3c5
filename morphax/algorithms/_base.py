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

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, DNASpec

Reward = float | tuple[float, ...] | None
History = Sequence[tuple[DNA, Reward]]


class Algorithm:
    """Base class of search algorithms (see the module docstring).

    Subclasses implement `reset`, `propose` and `feedback`, and list the
    constructor arguments that define them in `config()`.

    Attributes:
        seed: the seed of the algorithm's randomness.
        spec: the DNASpec it is bound to (after `setup`).
        objectives: the metric names a multi-objective algorithm reads from a
            dict report, in order; None for single-objective algorithms.
    """

    objectives: tuple[str, ...] | None = None

    def __init__(self, *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"`seed` must be an int, but got {seed!r}")
        self.seed = int(seed)
        self._spec: DNASpec | None = None
        self.rng = np.random.default_rng(self.seed)
        self.num_proposed = 0
        self.num_feedback = 0

    @property
    def spec(self) -> DNASpec:
        if self._spec is None:
            raise RuntimeError(f"{type(self).__name__} is not set up: call setup(spec) first")
        return self._spec

    def setup(self, spec: DNASpec) -> None:
        """Binds the algorithm to `spec` and resets its state from its seed."""
        if not isinstance(spec, DNASpec):
            raise TypeError(f"setup needs a DNASpec, but got {spec!r}")
        self._spec = spec
        self.rng = np.random.default_rng(self.seed)
        self.num_proposed = 0
        self.num_feedback = 0
        self.reset()

    def reset(self) -> None:
        """Resets the algorithm's own state (called by `setup`)."""

    def propose(self) -> DNA:
        """The next DNA to evaluate."""
        raise NotImplementedError

    def feedback(self, dna: DNA, reward: Reward) -> None:
        """Takes the reward of a proposed DNA (None: the trial failed)."""

    def recover(self, history: History) -> None:
        """Rebuilds the state from `history` by replaying it from the seed.

        Each entry is proposed again and fed back, so the random state ends as
        in an uninterrupted run. Entries the algorithm would not have proposed
        (trials from elsewhere) are fed back without replaying proposals.
        """
        self.setup(self.spec)
        replaying = True
        for dna, reward in history:
            if replaying:
                proposed = self._propose_counted()
                if proposed != dna:
                    replaying = False
            self._feedback_counted(dna, reward)

    def _propose_counted(self) -> DNA:
        dna = self.propose()
        self.num_proposed += 1
        return dna

    def _feedback_counted(self, dna: DNA, reward: Reward) -> None:
        self.feedback(dna, reward)
        self.num_feedback += 1

    def config(self) -> dict[str, Any]:
        """The JSON-ready arguments that rebuild this algorithm (with its seed)."""
        return {"seed": self.seed}

    def describe(self) -> dict[str, Any]:
        return {"algorithm": type(self).__name__, **self.config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def scalar_reward(reward: Reward, who: str) -> float | None:
    """The float of a single-objective reward (None stays None)."""
    if reward is None:
        return None
    if isinstance(reward, tuple):
        if len(reward) != 1:
            raise TypeError(f"{who} is single-objective but got the reward tuple {reward!r}")
        reward = reward[0]
    return float(reward)
