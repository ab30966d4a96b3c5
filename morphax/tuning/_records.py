"""Stored rows as trials, and programs as the JSON a study keeps."""

from __future__ import annotations

import json
import re
from typing import Any

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
    return Trial(
        row.number,
        from_json(row.dna_json),
        None,
        row.status,
        row.metrics,
        _reward_of(row, objective),
        list(row.steps),
        row.reason,
        row.created,
        row.finished,
        row.attempts,
    )


def _reward_of(row: TrialRow, objective: Objective) -> Reward:
    if row.status != "completed" or row.metrics is None:
        return None
    if objective.names is not None:
        return tuple(row.metrics[n] for n in objective.names)
    return row.metrics.get(objective.name)
