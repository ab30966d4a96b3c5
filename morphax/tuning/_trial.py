"""Trials: one evaluation of one child, with its reports."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._typing import Reward
from ..symbolic import DNA


class RewardWarning(UserWarning):
    """A report was rejected (NaN or infinite): the trial is marked failed."""


@dataclass
class Objective:
    """How a report becomes the reward an algorithm sees.

    `names`: the metrics a multi-objective algorithm reads, in order; None
    for a single objective, read from `name` (a float report is stored under
    `name`).
    """

    name: str = "reward"
    names: tuple[str, ...] | None = None

    def metrics_and_reward(self, value: Any, where: str) -> tuple[dict[str, float], Reward]:
        if isinstance(value, dict):
            metrics: dict[str, float] = {}
            for key, v in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"{where}: metric names must be str, but got {key!r}")
                metrics[key] = _number(v, f"{where}: metric {key!r}")
            if self.names is not None:
                missing = [n for n in self.names if n not in metrics]
                if missing:
                    raise ValueError(
                        f"{where}: the report lacks the metric(s) {missing} that the multi-objective "
                        f"algorithm optimizes {list(self.names)}; it has {sorted(metrics)}"
                    )
                return metrics, tuple(metrics[n] for n in self.names)
            if self.name not in metrics:
                raise ValueError(
                    f"{where}: the report {sorted(metrics)} lacks the objective {self.name!r}; "
                    f"report it, or pass objective=<one of {sorted(metrics)}> to mx.search"
                )
            return metrics, metrics[self.name]
        if self.names is not None:
            raise TypeError(
                f"{where}: a multi-objective search needs a dict report with {list(self.names)}, "
                f"but got {value!r}"
            )
        v = _number(value, f"{where}: the reward")
        return {self.name: v}, v

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "names": None if self.names is None else list(self.names)}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{what} must be a number, but got the bool {value!r}; report a float "
            "(e.g. float(correct)) if you mean 0 or 1"
        )
    try:  # ints, floats, numpy and JAX scalars
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} is too large for a float: {value!r}") from None
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, but got {value!r}") from None


def finite(reward: Reward) -> bool:
    if reward is None:
        return False
    values = reward if isinstance(reward, tuple) else (reward,)
    return all(math.isfinite(v) for v in values)


@dataclass(eq=False)
class Trial:
    """One child evaluated in a search.

    Attributes:
        id: the trial number in its study (1, 2, ...).
        dna: the child's DNA.
        program: the materialized child (for define-by-run spaces a
            DynamicChild).
        status: "pending", "completed", "failed" or "skipped".
        metrics: the final report as a dict of named metrics.
        reward: what the algorithm sees: a float, a tuple (multi-objective),
            or None.
        steps: step-wise reports `[(step, metrics), ...]`.
        reason: why a trial failed or was skipped.
        attempts: how many times the trial was run (more than 1 when a
            process died while it ran and a resumed search ran it again).
    """

    id: int
    dna: DNA
    program: Any
    status: str = "pending"
    metrics: dict[str, float] | None = None
    reward: Reward = None
    steps: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    reason: str | None = None
    created: float | None = None
    finished: float | None = None
    attempts: int = 1
    _sink: Any = field(default=None, repr=False)
    _row_id: Any = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def _where(self) -> str:
        return f"trial #{self.id}"

    def _live(self) -> Any:
        if self._sink is None:
            raise RuntimeError(
                f"{self._where()} is a stored record; only trials of a running search take reports"
            )
        if self.done:
            raise RuntimeError(
                f"{self._where()} is already {self.status} (metrics {self.metrics}, reason {self.reason!r}); "
                "report once per trial"
            )
        return self._sink

    def report(self, value: float | dict[str, float], *, step: int | None = None) -> None:
        """Reports a reward (a float, or a dict of named metrics).

        With `step`, the report is an intermediate one (for early stopping);
        without, it is final and completes the trial. A NaN or infinite reward
        is rejected: the trial is marked failed (a RewardWarning says why) and
        the search goes on.
        """
        sink = self._live()
        metrics, reward = sink.objective.metrics_and_reward(value, self._where())
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise ValueError(
                    f"{self._where()}: `step` must be a non-negative int, but got {step!r}"
                )
            if not finite(reward):
                self._fail(f"non-finite reward {reward!r} at step {step}")
                return
            # A step reported again (a resumed trial re-runs) replaces the old one.
            self.steps = [(s, m) for s, m in self.steps if s != step] + [(step, metrics)]
            sink.on_step(self, step, metrics)
            return
        if not finite(reward):
            self._fail(f"non-finite reward {reward!r}")
            return
        self.metrics, self.reward = metrics, reward
        self.status = "completed"
        sink.on_finish(self)

    def _fail(self, reason: str) -> None:
        warnings.warn(
            f"{self._where()} rejected a report: {reason}; the trial is marked failed and the search goes on",
            RewardWarning,
            stacklevel=3,
        )
        self.fail(reason)

    def fail(self, reason: str) -> None:
        """Marks the trial failed (for example when training diverged)."""
        sink = self._live()
        self.status, self.reason = "failed", str(reason)
        sink.on_finish(self)

    def skip(self, reason: str) -> None:
        """Skips the trial: it counts toward `num_trials` and gives no reward."""
        sink = self._live()
        self.status, self.reason = "skipped", str(reason)
        sink.on_finish(self)

    def should_stop(self) -> bool:
        """Whether the search's early-stopping policy stops this trial now."""
        sink = self._live()
        policy: Callable[..., bool] | None = sink.early_stopping
        if policy is None or not self.steps:
            return False
        return bool(sink.should_stop(self))
