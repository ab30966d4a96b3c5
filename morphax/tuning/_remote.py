"""Trials evaluated away from their search (a Ray worker), and the search's
side of running them in parallel.

A remote trial is a real :class:`Trial` whose sink is a :class:`RemoteSink`:
`trial.report(value, step=...)` and `trial.should_stop()` go to the driver
through callbacks, and the final report, `fail` or `skip` stays on the trial,
where :func:`outcome` reads it to send back. The driver, the only process
that writes the study, then tells the search's own trial with
:func:`tell_outcome`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..symbolic import DNA
from ._trial import Objective, Trial


class Outcome(NamedTuple):
    """How a remote trial ended: `status` is "completed", "failed", "skipped",
    or "pending" when `evaluate` neither reported nor failed it."""

    status: str
    metrics: dict[str, float] | None = None
    reason: str | None = None


class RemoteSink:
    """The sink of a trial evaluated away from its search.

    Args:
        objective: the search's objective (reports are checked as in the driver).
        on_step: `on_step(step, metrics)`, called for each step report.
        ask_stop: `ask_stop()`, whether the driver's early-stopping policy
            stops the trial now (called after the trial's reports reached it).
        early_stopping: whether the search has an early-stopping policy (without
            one, `should_stop()` is False and asks nothing).
    """

    def __init__(
        self,
        objective: Objective,
        *,
        on_step: Callable[[int, dict[str, float]], None],
        ask_stop: Callable[[], bool],
        early_stopping: bool,
    ) -> None:
        self.objective = objective
        self.early_stopping: Any = True if early_stopping else None
        self._on_step = on_step
        self._ask_stop = ask_stop

    def on_step(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        self._on_step(step, metrics)

    def on_finish(self, trial: Trial) -> None:
        trial.finished = time.time()

    def should_stop(self, trial: Trial) -> bool:
        return bool(self._ask_stop())


def remote_trial(
    number: int,
    dna: DNA,
    program: Any,
    *,
    sink: RemoteSink,
    steps: Sequence[tuple[int, dict[str, float]]] = (),
    attempts: int = 1,
    checkpoint_dir: str | None = None,
    spec: Any = None,
) -> Trial:
    """A live trial for `evaluate(trial)` in a worker, reporting to `sink`."""
    trial = Trial(number, dna, program, steps=list(steps), created=time.time(), _sink=sink)
    trial.attempts, trial._spec, trial.checkpoint_dir = attempts, spec, checkpoint_dir
    return trial


def outcome(trial: Trial) -> Outcome:
    """What a remote trial's final report (or fail/skip) was, to send back."""
    return Outcome(trial.status, trial.metrics, trial.reason)


def tell_outcome(trial: Trial, result: Outcome) -> None:
    """Finishes the search's own `trial` (in the driver) as its remote twin
    ended; a "pending" outcome leaves it as it is."""
    if result.status == "completed":
        assert result.metrics is not None
        trial.report(result.metrics)
    elif result.status == "failed":
        trial.fail(result.reason or "failed")
    elif result.status == "skipped":
        trial.skip(result.reason or "skipped")
