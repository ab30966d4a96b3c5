"""Each unit of a one-shot search as a trial of a study, through the tuning API."""

from __future__ import annotations

import math
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
    history: list[dict[str, float]],
    started: float,
) -> None:
    """Writes the last of `dnas` with the last of `history` as trial `len(dnas)`
    of study `name`, its run dated from `started` (when the unit began, a
    time.time()) so the study shows how long each unit took.

    Every exported DNA so far is enqueued in order: the study's journal
    answers those it holds already, so a resumed search (which may have
    written its last unit before it died) writes each unit exactly once. A
    stored trial whose DNA or metrics differ from this search's unit is of
    another search (another strategy, seed or data): refused.
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
            if t.id > len(dnas) or t.status != "completed":
                continue
            ours, theirs = history[t.id - 1], t.metrics or {}
            if t.dna != dnas[t.id - 1]:
                what = f"DNA {t.dna!r} where this search exported {dnas[t.id - 1]!r}"
            else:
                differ = [
                    k
                    for k in sorted(set(theirs) & set(ours))
                    if not math.isclose(theirs[k], ours[k], rel_tol=1e-6, abs_tol=1e-9)
                ]
                if not differ:
                    continue
                k = differ[0]
                what = f"{k}={theirs[k]!r} where this search measured {ours[k]!r}"
            raise ValueError(
                f"study {name!r} in {s.store.path!r} holds another search: its trial "
                f"#{t.id} has {what}; pass another `name` (or `store`) for this search"
            )
        for dna in dnas:
            s.enqueue(dna)
        trial = s.ask()
        if trial is not None:
            s.tell(trial, dict(history[-1]), started=started)
    finally:
        s.close()
