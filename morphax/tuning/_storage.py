"""Where a search keeps its study: the `Storage` protocol, and memory.

A storage holds studies, their trials (frozen rows), the step reports, the
journal and the writer's lease:

- **Journal.** Each trial row carries `propose_seq`, the place in its study's
  event order at which the algorithm proposed it, and `feedback_seq`, where
  the algorithm was fed its result (None while pending). Both are written in
  the same transaction as the row change, so replaying events in seq order
  rebuilds the algorithm exactly, with any number of trials in flight.
- **Attempts.** A pending trial whose process died is run again under the
  same number and DNA; `retry_trial` counts the attempt.
- **Lease.** One search writes a study at a time: `acquire_lease` takes the
  study for an owner token (one per search) until `now + ttl`, refused while
  another owner's lease is live; `renew_lease` extends it; any host may take
  over a lease that was not renewed in time, and `takeover=True` takes it at
  once (an operator's decision).
- **Options.** A study may hold named settings that a resumed search must
  match (`option` / `set_option`), such as the window of an ordered parallel
  search.

:class:`MemoryStorage` keeps all of this in memory (a search without a store);
the SQLite `Store` (`_store.py`) keeps it in a file. The search loop talks to
either through this protocol only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

STATUSES = ("pending", "completed", "failed", "skipped", "abandoned")


class StoreError(ValueError):
    """A study file that cannot be used: not SQLite, foreign, corrupted, or
    held by another search."""


@dataclass(frozen=True)
class StudyRow:
    id: int
    name: str
    spec_fingerprint: str
    space_json: str | None
    algorithm: dict[str, Any]
    objective: dict[str, Any]
    created: float


@dataclass(frozen=True)
class TrialRow:
    """One stored trial, as it was when read (a value: never changes)."""

    id: int
    number: int
    dna_json: str
    program_json: str | None
    status: str
    metrics: dict[str, float] | None
    reason: str | None
    created: float
    finished: float | None
    steps: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    attempts: int = 1
    propose_seq: int | None = None
    feedback_seq: int | None = None


class Storage(Protocol):
    """What the search loop needs of a place that keeps studies."""

    path: str

    def study(self, name: str) -> StudyRow | None: ...

    def study_names(self) -> list[str]: ...

    def create_study(
        self,
        name: str,
        fingerprint: str,
        space_json: str | None,
        algorithm: dict[str, Any],
        objective: dict[str, Any],
    ) -> StudyRow:
        """The study `name`, created with these facts if it does not exist."""
        ...

    def acquire_lease(
        self, study_id: int, name: str, owner: str, ttl: float, *, takeover: bool = False
    ) -> None:
        """Takes the study for `owner` until now + `ttl` seconds.

        Raises:
            StoreError: if another owner holds a lease that has not expired
                (unless `takeover`), naming it and when it expires.
        """
        ...

    def renew_lease(self, study_id: int, owner: str, ttl: float) -> None:
        """Extends `owner`'s lease; StoreError if another owner took it over."""
        ...

    def release_lease(self, study_id: int, owner: str) -> None:
        """Gives the lease up, if `owner` still holds it (else does nothing)."""
        ...

    def add_trial(
        self, study_id: int, dna_json: str, program_json: str | None, *, proposed: bool = True
    ) -> tuple[int, int, int | None]:
        """A new pending trial and its propose event: (row id, number, propose_seq).

        `proposed=False`: a trial the algorithm did not propose (enqueued by
        the user): no propose event, its propose_seq is None."""
        ...

    def delete_study(self, name: str) -> None:
        """Deletes study `name` with its trials and reports.

        Raises:
            StoreError: if there is no such study, or a live search holds its
                lease (naming the holder).
        """
        ...

    def retry_trial(self, trial_id: int) -> int:
        """Counts one more attempt of a pending trial, whose run starts now (its
        `created`, so a duration leaves out the downtime); returns the attempts."""
        ...

    def set_trial_start(self, trial_id: int, started: float) -> None:
        """Dates a pending trial's run from `started` (a time.time()): for a
        trial whose work was done before it was asked for, such as a one-shot
        search's epoch, so its duration is the work's."""
        ...

    def finish_trial(
        self, trial_id: int, status: str, metrics: dict[str, float] | None, reason: str | None
    ) -> int:
        """Finishes a pending trial and records its feedback event; returns
        the feedback_seq. `status` is completed, failed or skipped."""
        ...

    def abandon_trial(self, trial_id: int, reason: str) -> None:
        """Marks a pending trial abandoned (never fed back)."""
        ...

    def add_report(self, trial_id: int, step: int, metrics: dict[str, float]) -> None:
        """Stores a step report (a step reported again replaces the old one)."""
        ...

    def trials(self, study_id: int) -> list[TrialRow]:
        """The study's trials by number, with their step reports."""
        ...

    def option(self, study_id: int, name: str) -> str | None:
        """The study's stored option `name` (see :meth:`set_option`), or None."""
        ...

    def set_option(self, study_id: int, name: str, value: str) -> None:
        """Stores option `name` of the study (replacing an older value)."""
        ...

    def close(self) -> None: ...


class MemoryStorage:
    """A :class:`Storage` in memory: the studies of a search without a file."""

    path = ":memory:"

    def __init__(self) -> None:
        self._studies: dict[str, StudyRow] = {}
        self._trials: dict[int, list[TrialRow]] = {}
        self._seq: dict[int, int] = {}
        self._leases: dict[int, tuple[str, float]] = {}
        self._options: dict[tuple[int, str], str] = {}

    def study(self, name: str) -> StudyRow | None:
        return self._studies.get(name)

    def study_names(self) -> list[str]:
        return list(self._studies)

    def create_study(
        self,
        name: str,
        fingerprint: str,
        space_json: str | None,
        algorithm: dict[str, Any],
        objective: dict[str, Any],
    ) -> StudyRow:
        row = self._studies.get(name)
        if row is None:
            row = StudyRow(
                max((r.id for r in self._studies.values()), default=0) + 1,
                name,
                fingerprint,
                space_json,
                json.loads(json.dumps(algorithm)),
                json.loads(json.dumps(objective)),
                time.time(),
            )
            self._studies[name] = row
            self._trials[row.id] = []
            self._seq[row.id] = 0
        return row

    def acquire_lease(
        self, study_id: int, name: str, owner: str, ttl: float, *, takeover: bool = False
    ) -> None:
        held = self._leases.get(study_id)
        now = time.time()
        if held is not None and held[0] != owner and held[1] > now and not takeover:
            raise StoreError(
                f"study {name!r} in memory is being searched by another search ({held[0]}); "
                "a study has one writer at a time: finish that search first, or use another name"
            )
        self._leases[study_id] = (owner, now + ttl)

    def renew_lease(self, study_id: int, owner: str, ttl: float) -> None:
        held = self._leases.get(study_id)
        if held is not None and held[0] != owner:
            raise StoreError(f"the study's lease was taken over by {held[0]}")
        self._leases[study_id] = (owner, time.time() + ttl)

    def release_lease(self, study_id: int, owner: str) -> None:
        held = self._leases.get(study_id)
        if held is not None and held[0] == owner:
            del self._leases[study_id]

    def _next_seq(self, study_id: int) -> int:
        self._seq[study_id] += 1
        return self._seq[study_id]

    def _find(self, trial_id: int) -> tuple[list[TrialRow], int]:
        study_id, index = divmod(trial_id, 1 << 32)
        return self._trials[study_id], index

    def add_trial(
        self, study_id: int, dna_json: str, program_json: str | None, *, proposed: bool = True
    ) -> tuple[int, int, int | None]:
        rows = self._trials[study_id]
        number = len(rows) + 1
        seq = self._next_seq(study_id) if proposed else None
        trial_id = (study_id << 32) + len(rows)
        rows.append(
            TrialRow(
                trial_id,
                number,
                dna_json,
                program_json,
                "pending",
                None,
                None,
                time.time(),
                None,
                [],
                1,
                seq,
                None,
            )  # fmt: skip
        )
        return trial_id, number, seq

    def _pending(self, trial_id: int) -> tuple[list[TrialRow], int, TrialRow]:
        rows, i = self._find(trial_id)
        row = rows[i]
        if row.status != "pending":
            raise StoreError(f"trial #{row.number} is {row.status}, not pending; it was finished")
        return rows, i, row

    def retry_trial(self, trial_id: int) -> int:
        rows, i, row = self._pending(trial_id)
        rows[i] = replace(row, attempts=row.attempts + 1, created=time.time())
        return row.attempts + 1

    def set_trial_start(self, trial_id: int, started: float) -> None:
        rows, i, row = self._pending(trial_id)
        rows[i] = replace(row, created=started)

    def finish_trial(
        self, trial_id: int, status: str, metrics: dict[str, float] | None, reason: str | None
    ) -> int:
        assert status in ("completed", "failed", "skipped"), status
        rows, i, row = self._pending(trial_id)
        seq = self._next_seq(trial_id >> 32)
        rows[i] = replace(
            row,
            status=status,
            metrics=None if metrics is None else dict(metrics),
            reason=reason,
            finished=time.time(),
            feedback_seq=seq,
        )
        return seq

    def abandon_trial(self, trial_id: int, reason: str) -> None:
        rows, i, row = self._pending(trial_id)
        rows[i] = replace(row, status="abandoned", reason=reason, finished=time.time())

    def add_report(self, trial_id: int, step: int, metrics: dict[str, float]) -> None:
        rows, i = self._find(trial_id)
        row = rows[i]
        steps = [(s, m) for s, m in row.steps if s != step] + [(step, dict(metrics))]
        rows[i] = replace(row, steps=sorted(steps, key=lambda sm: sm[0]))

    def trials(self, study_id: int) -> list[TrialRow]:
        return list(self._trials.get(study_id, []))

    def option(self, study_id: int, name: str) -> str | None:
        return self._options.get((study_id, name))

    def set_option(self, study_id: int, name: str, value: str) -> None:
        self._options[(study_id, name)] = str(value)

    def delete_study(self, name: str) -> None:
        row = self._studies.get(name)
        if row is None:
            raise StoreError(f"no study {name!r} in memory; studies: {self.study_names()}")
        held = self._leases.get(row.id)
        if held is not None and held[1] > time.time():
            raise StoreError(
                f"study {name!r} in memory is being searched by {held[0]}: close that search "
                "first (a live search's study is not deleted)"
            )
        del self._studies[name]
        self._trials.pop(row.id, None)
        self._leases.pop(row.id, None)
        for key in [k for k in self._options if k[0] == row.id]:
            del self._options[key]

    def close(self) -> None:
        pass
