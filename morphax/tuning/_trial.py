"""Trials: one evaluation of one child, with its reports."""

from __future__ import annotations

import ast
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._typing import Reward
from ..symbolic import DNA, format_program


class RewardWarning(UserWarning):
    """A report was rejected (NaN or infinite): the trial is marked failed."""


DIRECTIONS = ("maximize", "minimize")


def directions_of(direction: Any, count: int) -> tuple[str, ...]:
    """`direction` ("maximize", "minimize", or one per objective) as a tuple of
    `count` directions; ValueError naming the rule otherwise."""
    given = (direction,) if isinstance(direction, str) else direction
    if not isinstance(given, tuple | list) or not all(d in DIRECTIONS for d in given):
        raise ValueError(
            f"`direction` must be 'maximize' or 'minimize' (or a tuple of them, one per "
            f"objective), but got {direction!r}"
        )
    if len(given) == 1:
        return tuple(given) * count
    if len(given) != count:
        raise ValueError(
            f"`direction` has {len(given)} entries {tuple(given)}, but the search has {count} "
            "objective(s); give one direction, or one per objective"
        )
    return tuple(given)


@dataclass
class Objective:
    """How a report becomes the reward an algorithm sees.

    `names`: the metrics a multi-objective algorithm reads, in order; None
    for a single objective, read from `name` (a float report is stored under
    `name`). `directions`: "maximize" or "minimize" per objective (one for a
    single objective); algorithms maximize, so they are fed :meth:`signed`.
    """

    name: str = "reward"
    names: tuple[str, ...] | None = None
    directions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        count = 1 if self.names is None else len(self.names)
        self.directions = directions_of(self.directions or "maximize", count)

    @property
    def labels(self) -> tuple[str, ...]:
        """The objectives' metric names (one for a single objective)."""
        return (self.name,) if self.names is None else self.names

    def signed(self, reward: Reward) -> Reward:
        """`reward` as the algorithm sees it: minimized objectives negated."""
        if reward is None:
            return None
        if isinstance(reward, tuple):
            return tuple(
                -v if d == "minimize" else v for v, d in zip(reward, self.directions, strict=True)
            )
        return -reward if self.directions[0] == "minimize" else reward

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Objective:
        """An objective stored with a study; one stored without directions maximizes."""
        names = value.get("names")
        return cls(
            value["name"],
            None if names is None else tuple(names),
            tuple(value.get("directions") or ()),
        )

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
        return {
            "name": self.name,
            "names": None if self.names is None else list(self.names),
            "directions": list(self.directions),
        }


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


def readable(text: str, index: int) -> Any:
    """A candidate's literal (see `mx.symbolic` fingerprints) as a short value:
    `'x'` -> 'x', `3` -> 3, `jax._src.nn.functions.relu` -> 'relu', a
    sub-space -> 'dict(...)#4' (its type and index)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    head, paren, _ = text.partition("(")
    short = head.rsplit(".", 1)[-1]
    if not paren and short.isidentifier():
        return short  # a function or class: its name
    return f"{short}(...)#{index}" if short.isidentifier() else f"#{index}"


def readable_values(spec: Any, dna: DNA) -> dict[str, Any]:
    """`{decision id: readable value}` for the decisions `dna` sets in `spec`."""
    out: dict[str, Any] = {}
    for point, value in spec.decode(dna):
        literals = getattr(point, "literals", ())
        shown = (
            readable(literals[value], value)
            if literals and isinstance(value, int) and value < len(literals)
            else value
        )
        if getattr(point, "is_manyof", False):
            out.setdefault(point.manyof_id, []).append(shown)
        else:
            out[point.id] = shown
    return out


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
    _spec: Any = field(default=None, repr=False)
    checkpoint_dir: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Trial(id={self.id}, status={self.status!r}, reward={self.reward!r}, "
            f"dna={self.dna!r}, program={format_program(self.program)})"
        )

    @property
    def checkpoint(self) -> str | None:
        """Where this trial's trained weights are, once saved, else None.

        A trial of a stored study has a folder of its own beside the study
        file, `checkpoint_dir` (`<study file>.ckpt/<study>/trial-<n>`): pass
        it to `morphax.train.fit(..., checkpoint_dir=trial.checkpoint_dir)`,
        and `load_study(path).best()[0].checkpoint` gives the weights back
        (`morphax.train.load_variables(...)`, or `load_module` for NNX). The
        folder moves with the study if both are copied.
        """
        d = self.checkpoint_dir
        return d if d is not None and os.path.exists(os.path.join(d, "morphax.json")) else None

    @property
    def values(self) -> dict[str, Any]:
        """`{decision id: readable value}`: the chosen candidate (`'relu'`, `64`,
        `'conv'`), not its index; floats and ints as they are; a manyof as a
        list. Empty when the study's space is not known (a study file whose
        space cannot be loaded in this process)."""
        if self._spec is None:
            return {}
        return readable_values(self._spec, self.dna)

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


def checkpoint_dir(store_path: str, study: str, number: int) -> str | None:
    """The weights folder of trial `number` of a study stored at `store_path`
    (None for a study in memory)."""
    if store_path == ":memory:":
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    return os.path.join(os.path.abspath(store_path) + ".ckpt", safe, f"trial-{number}")
