"""Stored rows as trials, and programs as the JSON a study keeps."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from .._typing import Reward
from ..symbolic import from_json, to_json
from ._storage import TrialRow
from ._trial import Objective, Trial


def _program_json(program: Any) -> str:
    """The JSON of a program or space; when it cannot be serialized (an
    unregistered class), `{"$unstored": reason}`, which loading reports."""
    try:
        return to_json(program)
    except (TypeError, ValueError) as e:
        # Without memory addresses, so that the same space gives the same text.
        return json.dumps({"$unstored": re.sub(r" at 0x[0-9a-fA-F]+", "", str(e))})


def record(row: TrialRow, objective: Objective, *, load_program: bool = False) -> Trial:
    """A read-only Trial of a stored row; with `load_program`, a StoredTrial
    that decodes its program (and DNA) from the row on first access."""
    if load_program:
        from ._study import StoredTrial

        return StoredTrial(row, objective)
    return Trial(row.number, from_json(row.dna_json), None, *row_fields(row, objective))


def row_fields(row: TrialRow, objective: Objective) -> tuple[Any, ...]:
    """The Trial fields after (id, dna, program) that a stored row gives:
    status, metrics, reward, steps, reason, created, finished, attempts."""
    reward = _reward_of(row, objective)
    return (row.status, row.metrics, reward, list(row.steps), row.reason, row.created,
            row.finished, row.attempts)  # fmt: skip


def _reward_of(row: TrialRow, objective: Objective) -> Reward:
    if row.status != "completed" or row.metrics is None:
        return None
    if objective.names is not None:
        return tuple(row.metrics[n] for n in objective.names)
    return row.metrics.get(objective.name)


def pareto(points: np.ndarray) -> list[int]:
    """Indices of the non-dominated rows of `points` (all maximized)."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1))
        if not dominated:
            keep.append(i)
    return keep


def best_trials(trials: list[Trial], objective: Objective, k: int | None) -> list[Trial]:
    """The best completed trials in the objective's direction, best first (`k`
    of them, or all); with several objectives, the Pareto front (up to `k`),
    ordered by the first objective."""
    done = [t for t in trials if t.status == "completed" and t.reward is not None]
    if not done:
        return []
    if objective.names is None:
        ranked = sorted(done, key=lambda t: -objective.signed(t.reward))  # type: ignore[operator]
        return ranked[: 1 if k is None else k]
    first: dict[Any, Trial] = {}  # a DNA evaluated twice is one point of the front
    for t in done:
        first.setdefault(_dna_key(t), t)
    done = list(first.values())
    points = np.array([objective.signed(t.reward) for t in done], dtype=float)
    order = sorted(pareto(points), key=lambda i: -points[i, 0])
    front = [done[i] for i in order]
    return front if k is None else front[:k]


def _dna_key(trial: Trial) -> Any:
    try:
        return trial.dna
    except ValueError:  # a stored row whose DNA cannot be decoded: its own point
        return id(trial)
