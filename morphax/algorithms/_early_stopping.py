"""Early-stopping policies for step-wise reports (rewards are maximized).

A policy answers `should_stop(steps, others)`: `steps` is the trial's own
`[(step, value), ...]`, `others` the same lists of the search's other trials.
Its `config()` lists the arguments that rebuild it and `describe()` is the
one-line summary made from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Configurable

Steps = Sequence[tuple[int, float]]


def _value_at(steps: Steps, step: int) -> float | None:
    """The best value a trial reported at or before `step`."""
    values = [v for s, v in steps if s <= step]
    return max(values) if values else None


class MedianStopping(Configurable):
    """Stops a trial whose best value so far is below the median of the others
    at the same step (the median stopping rule).

    Args:
        min_steps: no stopping before this step.
        min_trials: no stopping until this many other trials reached the step.

    Examples:
        >>> import morphax as mx
        >>> policy = mx.algorithms.MedianStopping(min_steps=1, min_trials=2)
        >>> others = [[(1, 0.8), (2, 0.9)], [(1, 0.7), (2, 0.85)]]
        >>> policy.should_stop([(1, 0.5), (2, 0.6)], others)
        True
        >>> policy.should_stop([(1, 0.9)], others)
        False
        >>> policy.describe()
        'MedianStopping(min_steps=1, min_trials=2)'

    References:
        Golovin et al., Google Vizier: A Service for Black-Box Optimization, KDD 2017.
    """

    def __init__(self, *, min_steps: int = 1, min_trials: int = 3) -> None:
        if min_steps < 0 or min_trials < 1:
            raise ValueError(
                f"need min_steps >= 0 and min_trials >= 1, but got {min_steps}, {min_trials}"
            )
        self.min_steps = min_steps
        self.min_trials = min_trials

    def should_stop(self, steps: Steps, others: Sequence[Steps]) -> bool:
        if not steps:
            return False
        step = steps[-1][0]
        if step < self.min_steps:
            return False
        own = _value_at(steps, step)
        peers = [
            v
            for o in others
            if o and max(s for s, _ in o) >= step and (v := _value_at(o, step)) is not None
        ]
        if len(peers) < self.min_trials or own is None:
            return False
        return own < float(np.median(peers))

    def config(self) -> dict[str, Any]:
        return {
            "min_steps": self.min_steps,
            "min_trials": self.min_trials,
        }


class SuccessiveHalving(Configurable):
    """Asynchronous successive halving (ASHA): at each rung, a trial goes on
    only if it is in the top `1 / reduction_factor` of the trials that reached
    that rung.

    Rungs are at steps `min_step * reduction_factor**k`.

    Args:
        min_step: the first rung.
        reduction_factor: how many trials per rung for each promoted one (>= 2).
        min_trials: no stopping until this many trials reached the rung.

    Examples:
        >>> import morphax as mx
        >>> asha = mx.algorithms.SuccessiveHalving(min_step=1, reduction_factor=2, min_trials=1)
        >>> asha.should_stop([(1, 0.2)], [[(1, 0.9)], [(1, 0.8)], [(1, 0.1)]])
        True
        >>> asha.should_stop([(1, 0.95)], [[(1, 0.9)], [(1, 0.8)], [(1, 0.1)]])
        False

    References:
        Li et al., A System for Massively Parallel Hyperparameter Tuning, MLSys 2020.
    """

    def __init__(
        self, *, min_step: int = 1, reduction_factor: int = 3, min_trials: int = 2
    ) -> None:
        if min_step < 1 or reduction_factor < 2 or min_trials < 1:
            raise ValueError(
                f"need min_step >= 1, reduction_factor >= 2, min_trials >= 1, but got "
                f"{min_step}, {reduction_factor}, {min_trials}"
            )
        self.min_step = min_step
        self.reduction_factor = reduction_factor
        self.min_trials = min_trials

    def _rung(self, step: int) -> int | None:
        if step < self.min_step:
            return None
        k = int(math.floor(math.log(step / self.min_step, self.reduction_factor) + 1e-9))
        return self.min_step * self.reduction_factor**k

    def should_stop(self, steps: Steps, others: Sequence[Steps]) -> bool:
        if not steps:
            return False
        rung = self._rung(steps[-1][0])
        if rung is None:
            return False
        own = _value_at(steps, rung)
        peers = [
            v
            for o in others
            if o and max(s for s, _ in o) >= rung and (v := _value_at(o, rung)) is not None
        ]
        if own is None or len(peers) < self.min_trials:
            return False
        values = sorted(peers + [own], reverse=True)
        keep = max(1, len(values) // self.reduction_factor)
        return own < values[keep - 1]

    def config(self) -> dict[str, Any]:
        return {
            "min_step": self.min_step,
            "reduction_factor": self.reduction_factor,
            "min_trials": self.min_trials,
        }
