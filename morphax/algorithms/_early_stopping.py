"""Early-stopping policies for step-wise reports (rewards are maximized).

A policy answers two ways, with the same decisions:

* incrementally, as a search uses it: `observe(trial, step, value)` on each
  step report, in order (a step reported again replaces the old value), and
  `stop(trial)`, whether that trial should stop now. The policy keeps, per
  step, the sorted values of the trials at that step, so both cost
  O(log n) plus a list insertion, where n is the number of trials: the cost
  per trial stays flat as a study grows (when the trials share their steps,
  as epochs do);
* as a pure function of all the reports: `should_stop(steps, others)`, where
  `steps` is the trial's own `[(step, value), ...]` in report order and
  `others` the same lists of the other trials (O(all reports) per call).

Its `config()` lists the arguments that rebuild it and `describe()` is the
one-line summary made from them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Configurable

Steps = Sequence[tuple[int, float]]


class _Trial:
    """One trial's reports: its steps sorted, the best value up to each, and
    the step it reported last."""

    __slots__ = ("best", "last", "steps", "values")

    def __init__(self) -> None:
        self.values: dict[int, float] = {}
        self.steps: list[int] = []
        self.best: list[float] = []  # best[i]: the max of the values at steps[: i + 1]
        self.last = 0

    def add(self, step: int, value: float) -> None:
        self.last = step
        if step in self.values:
            self.values[step] = value
            self._refresh(bisect.bisect_left(self.steps, step))
        elif not self.steps or step > self.steps[-1]:
            self.values[step] = value
            self.steps.append(step)
            self.best.append(max(self.best[-1], value) if self.best else value)
        else:
            self.values[step] = value
            i = bisect.bisect_left(self.steps, step)
            self.steps.insert(i, step)
            self.best.insert(i, value)
            self._refresh(i)

    def _refresh(self, i: int) -> None:
        for j in range(i, len(self.steps)):
            value = self.values[self.steps[j]]
            self.best[j] = max(self.best[j - 1], value) if j else value

    def value_at(self, step: int) -> float | None:
        """The best value at or before `step`, if the trial reached `step`
        (reported at or before it and at or after it); else None."""
        if not self.steps or not self.steps[0] <= step <= self.steps[-1]:
            return None
        return self.best[bisect.bisect_right(self.steps, step) - 1]


class _Column:
    """The values of the trials that reached one step, sorted."""

    __slots__ = ("of", "sorted")

    def __init__(self) -> None:
        self.of: dict[int, float] = {}
        self.sorted: list[float] = []

    def set(self, trial: int, value: float | None) -> None:
        old = self.of.get(trial)
        if old == value:
            return
        if old is not None:
            del self.sorted[bisect.bisect_left(self.sorted, old)]
            del self.of[trial]
        if value is not None:
            bisect.insort(self.sorted, value)
            self.of[trial] = value


class _Incremental(Configurable):
    """The incremental face of a policy: `observe` and `stop` over per-step
    columns of sorted values, made when a step is first asked about."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forgets every observed report (a fresh search)."""
        self._trials: dict[int, _Trial] = {}
        self._columns: dict[int, _Column] = {}
        self._column_steps: list[int] = []  # sorted keys of _columns

    def observe(self, trial: int, step: int, value: float) -> None:
        """Takes a step report of `trial` (a step reported again replaces the
        old value); call it on each report, in order.

        Raises:
            ValueError: for a negative step or a value that is not finite.
        """
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise ValueError(f"`step` must be a non-negative int, but got {step!r} (trial {trial})")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(
                f"`value` must be finite, but got {value!r} (trial {trial}, step {step}); "
                "a search fails such a trial instead of reporting it"
            )
        step = int(step)
        record = self._trials.get(trial)
        if record is None:
            record = self._trials[trial] = _Trial()
        # The steps whose value for this trial may change: from the step on (the
        # best so far), and those newly reached between the old last step and it.
        low = min(step, record.steps[-1] + 1) if record.steps else step
        record.add(step, value)
        i = bisect.bisect_left(self._column_steps, low)
        j = bisect.bisect_right(self._column_steps, record.steps[-1])
        for t in self._column_steps[i:j]:
            self._columns[t].set(trial, record.value_at(t))

    def _column(self, step: int) -> _Column:
        column = self._columns.get(step)
        if column is None:
            column = self._columns[step] = _Column()
            bisect.insort(self._column_steps, step)
            for trial, record in self._trials.items():
                column.set(trial, record.value_at(step))
        return column

    def stop(self, trial: int) -> bool:
        """Whether `trial` should stop now, given the reports observed: the
        answer of `should_stop` on the same reports."""
        record = self._trials.get(trial)
        if record is None:
            return False
        return self._stop(trial, record)

    def _stop(self, trial: int, record: _Trial) -> bool:
        raise NotImplementedError


def _without(values: list[float], value: float, k: int) -> float:
    """The `k`-th of the sorted `values` less one occurrence of `value`."""
    p = bisect.bisect_left(values, value)
    return values[k] if k < p else values[k + 1]


def _value_at(steps: Steps, step: int) -> float | None:
    """The best value a trial reported at or before `step`."""
    values = [v for s, v in steps if s <= step]
    return max(values) if values else None


class MedianStopping(_Incremental):
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

        Incrementally, as a search asks (the same decisions):

        >>> for trial, reports in enumerate(others + [[(1, 0.5), (2, 0.6)]]):
        ...     for step, value in reports:
        ...         policy.observe(trial, step, value)
        >>> policy.stop(2), policy.stop(0)
        (True, False)

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
        super().__init__()

    def _stop(self, trial: int, record: _Trial) -> bool:
        step = record.last
        if step < self.min_steps:
            return False
        own = record.value_at(step)
        assert own is not None  # the trial reported at its last step
        values = self._column(step).sorted
        n = len(values) - 1  # the peers: the trial itself is in the column
        if n < self.min_trials:
            return False
        if n % 2:
            median = _without(values, own, n // 2)
        else:
            median = (_without(values, own, n // 2 - 1) + _without(values, own, n // 2)) / 2
        return own < median

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


class SuccessiveHalving(_Incremental):
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
        super().__init__()

    def _stop(self, trial: int, record: _Trial) -> bool:
        rung = self._rung(record.last)
        if rung is None:
            return False
        own = record.value_at(rung)
        if own is None:
            return False
        values = self._column(rung).sorted  # the peers and the trial itself
        if len(values) - 1 < self.min_trials:
            return False
        keep = max(1, len(values) // self.reduction_factor)
        return own < values[len(values) - keep]

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
