"""Rows of a study file, to and from Python: standard JSON, checked on read.

Metrics are stored as standard JSON (so SQLite's own `json_valid` accepts
every row): a non-finite number is the string `"NaN"`, `"Infinity"` or
`"-Infinity"`, read back as that float. Reading checks every value a row
holds; a hand-edited or damaged row raises a StoreError naming the file and
the trial instead of an AttributeError, TypeError or KeyError later on.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._storage import STATUSES, StoreError, StudyRow, TrialRow

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _standard(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def dumps_metrics(metrics: dict[str, float]) -> str:
    """Standard JSON of a metrics dict (non-finite numbers as strings)."""
    out = {
        k: _standard(v) if isinstance(v, float) and not isinstance(v, bool) else v
        for k, v in metrics.items()
    }
    return json.dumps(out, allow_nan=False)


def reencode(text: str) -> str | None:
    """`text` (metrics JSON, maybe with `NaN` tokens) as standard JSON; None
    when it is not a metrics dict (left as it is, for the reader to name)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    try:
        return dumps_metrics(value)
    except (TypeError, ValueError):
        return None


class _Where:
    """Names a row in errors: the file, the study and the trial."""

    def __init__(self, path: str, study: str, number: object, row_id: object) -> None:
        if isinstance(number, int) and not isinstance(number, bool):
            trial = f"trial #{number}"
        else:
            trial = f"the trial in row {row_id} (its number is {number!r})"
        self.text = f"study file {path!r}, study {study!r}: {trial}"

    def error(self, what: str) -> StoreError:
        return StoreError(
            f"{self.text} {what}; the row was edited by hand or damaged: fix it, or delete the "
            "row to run that trial again"
        )


def loads_metrics(text: object, where: _Where, what: str = "metrics") -> dict[str, float]:
    if not isinstance(text, str):
        raise where.error(f"has {what} of type {type(text).__name__}, not JSON text")
    try:
        value = json.loads(text)
    except ValueError as e:
        raise where.error(f"has {what} that are not JSON ({e})") from None
    if not isinstance(value, dict):
        raise where.error(f"has {what} that are a JSON {type(value).__name__}, not an object")
    out: dict[str, float] = {}
    for key, v in value.items():
        if v is None:
            out[key] = math.nan
        elif isinstance(v, str) and v in _NON_FINITE:
            out[key] = _NON_FINITE[v]
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
        else:
            raise where.error(f"has {what} whose {key!r} is {v!r}, not a number")
    return out


def _opt(value: object, kinds: tuple[type, ...], name: str, where: _Where) -> Any:
    if value is None or (isinstance(value, kinds) and not isinstance(value, bool)):
        return value
    raise where.error(f"has {name} {value!r} ({type(value).__name__})")


def _req(value: object, kinds: tuple[type, ...], name: str, where: _Where) -> Any:
    if value is None:
        raise where.error(f"has no {name} (NULL)")
    return _opt(value, kinds, name, where)


def trial_row(
    r: tuple[Any, ...], steps: list[tuple[int, dict[str, float]]], path: str, study: str
) -> TrialRow:
    """A checked TrialRow of a `SELECT` of the trial columns (store order)."""
    tid, number, dna, program, status, mj, reason, created, finished, att, pseq, fseq = r
    where = _Where(path, study, number, tid)
    _req(number, (int,), "number", where)
    _req(dna, (str,), "DNA JSON", where)
    _opt(program, (str,), "program JSON", where)
    if status not in STATUSES:
        raise where.error(f"has status {status!r}, not one of {', '.join(STATUSES)}")
    _opt(reason, (str,), "reason", where)
    _req(created, (int, float), "creation time", where)
    _opt(finished, (int, float), "finish time", where)
    _req(att, (int,), "attempt count", where)
    if att < 1:
        raise where.error(f"has attempt count {att}")
    _opt(pseq, (int,), "propose_seq", where)
    _opt(fseq, (int,), "feedback_seq", where)
    metrics = None if mj is None else loads_metrics(mj, where)
    if status == "completed" and metrics is None:
        raise where.error("is completed but has no metrics (NULL)")
    return TrialRow(
        tid,
        number,
        dna,
        program,
        status,
        metrics,
        reason,
        float(created),
        None if finished is None else float(finished),
        steps,
        att,
        pseq,
        fseq,
    )  # fmt: skip


def report(
    tid: int, number: object, step: object, mj: object, path: str, study: str
) -> tuple[int, dict[str, float]]:
    """A checked (step, metrics) of a report row."""
    where = _Where(path, study, number, tid)
    _req(step, (int,), "a report step", where)
    assert isinstance(step, int)
    return step, loads_metrics(mj, where, f"a step-{step} report")


def study_row(r: tuple[Any, ...], path: str) -> StudyRow:
    """A checked StudyRow of a `SELECT` of the study columns."""
    sid, name, fingerprint, space_json, algorithm_json, objective_json, created = r
    where = f"study file {path!r}: study {name!r} (row {sid})"

    def bad(what: str) -> StoreError:
        return StoreError(f"{where} {what}; the row was edited by hand or damaged")

    if not isinstance(name, str) or not isinstance(fingerprint, str):
        raise bad("has no name or spec fingerprint text")
    if space_json is not None and not isinstance(space_json, str):
        raise bad(f"has a space of type {type(space_json).__name__}")
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise bad(f"has creation time {created!r}")
    parsed = []
    for label, text in (("algorithm", algorithm_json), ("objective", objective_json)):
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError as e:
            raise bad(f"has {label} JSON that is not JSON ({e})") from None
        if not isinstance(value, dict):
            raise bad(f"has {label} {text!r}, not a JSON object")
        parsed.append(value)
    objective = parsed[1]
    names = objective.get("names")
    if not isinstance(objective.get("name"), str) or not (
        names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))
    ):
        raise bad(f"has objective {objective!r}, not {{'name': str, 'names': [str] or null}}")
    return StudyRow(sid, name, fingerprint, space_json, parsed[0], objective, float(created))
