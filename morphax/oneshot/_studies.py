"""Each unit of a one-shot search as a trial of a study, through the tuning API."""

from __future__ import annotations

import os
from typing import Any

from ..algorithms import Random
from ..symbolic import DNA
from ..tuning import search as mx_search


def record_unit(
    space: Any,
    store: str | os.PathLike[str],
    name: str,
    seed: int,
    dnas: list[DNA],
    metrics: dict[str, float],
) -> None:
    """Writes the last of `dnas` with `metrics` as trial `len(dnas)` of study `name`.

    Every exported DNA so far is enqueued in order: the study's journal
    answers those it holds already, so a resumed search (which may have
    written its last unit before it died) writes each unit exactly once.
    """
    s = mx_search(
        space,
        Random(seed=seed),
        num_trials=len(dnas),
        store=store,
        name=name,
        objective="valid_accuracy",
        duplicates="rerun",
        progress=False,
    )
    try:
        s.study()  # opens the study: its trials so far are in s.trials
        for t in s.trials:
            if t.id <= len(dnas) and t.status == "completed" and t.dna != dnas[t.id - 1]:
                raise ValueError(
                    f"study {name!r} in {s.store.path!r} holds another search: its trial "
                    f"#{t.id} has DNA {t.dna!r} where this search exported {dnas[t.id - 1]!r}; "
                    "pass another `name` (or `store`) for this search"
                )
        for dna in dnas:
            s.enqueue(dna)
        trial = s.ask()
        if trial is not None:
            s.tell(trial, dict(metrics))
    finally:
        s.close()
