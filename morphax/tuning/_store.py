"""The study store: SQLite (stdlib sqlite3, WAL), one file holds many studies.

`Store` implements the :class:`~morphax.tuning._storage.Storage` protocol
(`MemoryStorage` is the reference behaviour). Every change is one
transaction, and a trial's row change and its journal event (`propose_seq`,
`feedback_seq`, taken from the study's event counter) share it, so a process
killed at any point (even SIGKILL) leaves a file that opens, with every
reported trial and the exact order the algorithm saw them. A KeyboardInterrupt
inside a transaction rolls it back and leaves the connection usable.

Several processes may append to one file: numbers and sequence numbers are
taken inside `BEGIN IMMEDIATE` transactions. A study has one writer at a time,
held by a lease (an owner token per search, an expiry by wall time): any host
takes over a lease that was not renewed in time, and `takeover=True` takes it
at once. A lease whose owner token (`owner_token()`) names a process of this
machine that has certainly exited is taken over at once too (see
`_store_owner`). `Store(path, readonly=True)` never writes the file (see
`_store_schema.open_reader`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._storage import STATUSES, StoreError, StudyRow, TrialRow
from ._store_owner import owner_token, provably_dead
from ._store_rows import dumps_metrics, report, study_row, trial_row
from ._store_schema import FORMAT, SCHEMA_VERSION, V1_JOURNAL, V2_JOURNAL, open_reader, open_writer

_FEEDBACK_STATUSES = ("completed", "failed", "skipped")
_STUDY_COLUMNS = "id, name, spec_fingerprint, space_json, algorithm_json, objective_json, created"
_TRIAL_COLUMNS = (
    "id, number, dna_json, program_json, status, metrics_json, reason, created, finished"
)


def _option_key(study_id: int, name: str) -> str:
    return f"study-option:{study_id}:{name}"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class Store:
    """A study file. `Store(path)` may write it (it is created when missing);
    `Store(path, readonly=True)` only reads an existing study file."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        if readonly:
            self.conn, self.schema_version = open_reader(self.path)
        else:
            self.conn = open_writer(self.path)
            self.schema_version = SCHEMA_VERSION

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the file; a writer's close merges the write-ahead log into it."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.ProgrammingError:
            return  # closed already
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One `BEGIN IMMEDIATE` transaction, rolled back on any exception
        (KeyboardInterrupt included), so none is ever left open."""
        if self.readonly:
            raise StoreError(f"study store {self.path!r} was opened read-only")
        with self._transaction("BEGIN IMMEDIATE"):
            yield

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One read transaction: a consistent snapshot across its SELECTs."""
        with self._transaction("BEGIN"):
            yield

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        if self.conn.in_transaction:  # left by an interrupt outside this manager
            self.conn.execute("ROLLBACK")
        try:
            self.conn.execute(begin)
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # -- studies -----------------------------------------------------------------

    def study(self, name: str) -> StudyRow | None:
        row = self.conn.execute(
            f"SELECT {_STUDY_COLUMNS} FROM studies WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else study_row(row, self.path)

    def study_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM studies ORDER BY id")]

    def create_study(
        self,
        name: str,
        fingerprint: str,
        space_json: str | None,
        algorithm: dict[str, Any],
        objective: dict[str, Any],
    ) -> StudyRow:
        """The study `name`, created with these facts if it does not exist."""
        with self._write():
            existing = self.study(name)
            if existing is not None:
                return existing
            self.conn.execute(
                "INSERT INTO studies (name, spec_fingerprint, space_json, algorithm_json, "
                "objective_json, created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    fingerprint,
                    space_json,
                    json.dumps(algorithm),
                    json.dumps(objective),
                    time.time(),
                ),
            )
        row = self.study(name)
        assert row is not None
        return row

    def _study_name(self, study_id: int) -> str:
        row = self.conn.execute("SELECT name FROM studies WHERE id = ?", (study_id,)).fetchone()
        if row is None:
            raise StoreError(f"no study with id {study_id} in {self.path!r}")
        return str(row[0])

    # -- the lease -----------------------------------------------------------------

    def acquire_lease(
        self, study_id: int, name: str, owner: str, ttl: float, *, takeover: bool = False
    ) -> None:
        """Takes the study for `owner` until now + `ttl` seconds.

        Raises:
            StoreError: if another owner holds a lease that has not expired
                (unless `takeover`), naming it and when it expires.
        """
        with self._write():
            row = self.conn.execute(
                "SELECT lease_owner, lease_expires FROM studies WHERE id = ?", (study_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no study {name!r} (id {study_id}) in {self.path!r}")
            held, expires = row
            now = time.time()
            live = isinstance(expires, (int, float)) and expires > now
            live = live and not (isinstance(held, str) and provably_dead(held))
            if held is not None and held != owner and live and not takeover:
                raise StoreError(
                    f"study {name!r} in {self.path!r} is being searched by another search "
                    f"({held}), whose lease runs until {_when(expires)} ({expires - now:.1f} s "
                    "from now); a study has one writer at a time: wait for that search to "
                    "finish, rerun after its lease expires if it died (any host takes an "
                    "expired lease over), take it over now with takeover=True if you know it "
                    "is dead, or use another study name"
                )
            self.conn.execute(
                "UPDATE studies SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                (owner, now + ttl, study_id),
            )

    def renew_lease(self, study_id: int, owner: str, ttl: float) -> None:
        """Extends `owner`'s lease; StoreError if another owner took it over."""
        with self._write():
            row = self.conn.execute(
                "SELECT name, lease_owner FROM studies WHERE id = ?", (study_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no study with id {study_id} in {self.path!r}")
            if row[1] is not None and row[1] != owner:
                raise StoreError(
                    f"the lease of study {row[0]!r} in {self.path!r} was taken over by {row[1]}; "
                    "this search no longer writes it"
                )
            self.conn.execute(
                "UPDATE studies SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                (owner, time.time() + ttl, study_id),
            )

    def delete_study(self, name: str) -> None:
        """Deletes study `name` with its trials and reports (one transaction).

        Raises:
            StoreError: if there is no such study, or a live search holds its
                lease (naming the holder and when the lease expires).
        """
        with self._write():
            row = self.conn.execute(
                "SELECT id, lease_owner, lease_expires FROM studies WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"no study {name!r} in {self.path!r}; its studies: {self.study_names()}"
                )
            study_id, held, expires = row
            now = time.time()
            live = isinstance(expires, (int, float)) and expires > now
            if held is not None and live and not (isinstance(held, str) and provably_dead(held)):
                raise StoreError(
                    f"study {name!r} in {self.path!r} is being searched by {held}, whose lease "
                    f"runs until {_when(expires)} ({expires - now:.1f} s from now): a live "
                    "search's study is not deleted; stop that search first, or wait for its "
                    "lease to expire if it died"
                )
            trials = "SELECT id FROM trials WHERE study_id = ?"
            self.conn.execute(f"DELETE FROM reports WHERE trial_id IN ({trials})", (study_id,))
            self.conn.execute("DELETE FROM trials WHERE study_id = ?", (study_id,))
            self.conn.execute("DELETE FROM studies WHERE id = ?", (study_id,))
            self.conn.execute(
                "DELETE FROM morphax_meta WHERE key LIKE ?", (_option_key(study_id, "%"),)
            )

    def release_lease(self, study_id: int, owner: str) -> None:
        """Gives the lease up, if `owner` still holds it (else does nothing)."""
        with self._write():
            self.conn.execute(
                "UPDATE studies SET lease_owner = NULL, lease_expires = NULL "
                "WHERE id = ? AND lease_owner = ?",
                (study_id, owner),
            )

    def claim(self, study_id: int, name: str) -> None:
        """Deprecated: a 60 s lease for this process (see `owner_token`)."""
        self.acquire_lease(study_id, name, owner_token("process"), 60.0)

    def release(self, study_id: int) -> None:
        """Deprecated: releases this process's lease (see `claim`)."""
        self.release_lease(study_id, owner_token("process"))

    # -- trials ------------------------------------------------------------------

    def _next_seq(self, study_id: int) -> int:
        """The study's next journal event number (inside a write transaction)."""
        row = self.conn.execute(
            "UPDATE studies SET event_seq = event_seq + 1 WHERE id = ? RETURNING event_seq",
            (study_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no study with id {study_id} in {self.path!r}")
        return int(row[0])

    def add_trial(
        self, study_id: int, dna_json: str, program_json: str | None, *, proposed: bool = True
    ) -> tuple[int, int, int | None]:
        """A new pending trial and its propose event: (row id, number, propose_seq);
        `proposed=False` (an enqueued trial): no propose event, propose_seq None."""
        with self._write():
            (number,) = self.conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM trials WHERE study_id = ?", (study_id,)
            ).fetchone()
            seq = self._next_seq(study_id) if proposed else None
            cur = self.conn.execute(
                "INSERT INTO trials (study_id, number, dna_json, program_json, status, created, "
                "attempts, propose_seq) VALUES (?, ?, ?, ?, 'pending', ?, 1, ?)",
                (study_id, number, dna_json, program_json, time.time(), seq),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid, int(number), seq

    def _pending(self, trial_id: int) -> tuple[int, int]:
        """(study id, attempts) of a pending trial; StoreError otherwise."""
        row = self.conn.execute(
            "SELECT study_id, number, status, attempts FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no trial row {trial_id} in {self.path!r}")
        if row[2] != "pending":
            raise StoreError(
                f"trial #{row[1]} is {row[2]}, not pending; it was finished "
                f"(study file {self.path!r})"
            )
        return int(row[0]), int(row[3])

    def retry_trial(self, trial_id: int) -> int:
        """Counts one more attempt of a pending trial (its run starts now, so
        its duration leaves out the downtime); returns the attempts now."""
        with self._write():
            _, attempts = self._pending(trial_id)
            self.conn.execute(
                "UPDATE trials SET attempts = ?, created = ? WHERE id = ?",
                (attempts + 1, time.time(), trial_id),
            )
        return attempts + 1

    def set_trial_start(self, trial_id: int, started: float) -> None:
        with self._write():
            self._pending(trial_id)
            self.conn.execute("UPDATE trials SET created = ? WHERE id = ?", (started, trial_id))

    def finish_trial(
        self, trial_id: int, status: str, metrics: dict[str, float] | None, reason: str | None
    ) -> int:
        """Finishes a pending trial and records its feedback event; returns
        the feedback_seq. `status` is completed, failed or skipped."""
        if status not in _FEEDBACK_STATUSES:
            raise StoreError(
                f"a trial is finished as completed, failed or skipped, not {status!r} "
                "(abandon_trial marks one abandoned)"
            )
        text = None if metrics is None else dumps_metrics(metrics)
        with self._write():
            study_id, _ = self._pending(trial_id)
            seq = self._next_seq(study_id)
            self.conn.execute(
                "UPDATE trials SET status = ?, metrics_json = ?, reason = ?, finished = ?, "
                "feedback_seq = ? WHERE id = ?",
                (status, text, reason, time.time(), seq, trial_id),
            )
        return seq

    def abandon_trial(self, trial_id: int, reason: str) -> None:
        """Marks a pending trial abandoned (never fed back)."""
        with self._write():
            self._pending(trial_id)
            self.conn.execute(
                "UPDATE trials SET status = 'abandoned', reason = ?, finished = ? WHERE id = ?",
                (reason, time.time(), trial_id),
            )

    def add_report(self, trial_id: int, step: int, metrics: dict[str, float]) -> None:
        """Stores a step report (a step reported again replaces the old one)."""
        text = dumps_metrics(metrics)
        with self._write():
            self.conn.execute(
                "INSERT OR REPLACE INTO reports (trial_id, step, metrics_json, time) "
                "VALUES (?, ?, ?, ?)",
                (trial_id, step, text, time.time()),
            )

    def option(self, study_id: int, name: str) -> str | None:
        """The study's stored option `name` (see :meth:`set_option`), or None."""
        row = self.conn.execute(
            "SELECT value FROM morphax_meta WHERE key = ?", (_option_key(study_id, name),)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_option(self, study_id: int, name: str, value: str) -> None:
        """Stores option `name` of the study (replacing an older value); kept in
        the `morphax_meta` table, so files of older morphax versions take it."""
        with self._write():
            self._study_name(study_id)
            self.conn.execute(
                "INSERT OR REPLACE INTO morphax_meta (key, value) VALUES (?, ?)",
                (_option_key(study_id, name), str(value)),
            )

    def trials(self, study_id: int) -> list[TrialRow]:
        """The study's trials by number, with their step reports (a version-1
        file read read-only gets the journal its migration would write)."""
        journal = ", ".join(V1_JOURNAL if self.schema_version == "1" else V2_JOURNAL)
        with self._read():
            study = self._study_name(study_id)
            rows = self.conn.execute(
                f"SELECT {_TRIAL_COLUMNS}, {journal} FROM trials WHERE study_id = ? "
                "ORDER BY number",
                (study_id,),
            ).fetchall()
            reports = self.conn.execute(
                "SELECT r.trial_id, t.number, r.step, r.metrics_json FROM reports r "
                "JOIN trials t ON t.id = r.trial_id WHERE t.study_id = ? ORDER BY r.trial_id, r.step",
                (study_id,),
            ).fetchall()
        steps: dict[int, list[tuple[int, dict[str, float]]]] = {}
        for tid, number, step, mj in reports:
            steps.setdefault(tid, []).append(report(tid, number, step, mj, self.path, study))
        return [trial_row(r, steps.get(r[0], []), self.path, study) for r in rows]


__all__ = [
    "owner_token",
    "FORMAT",
    "SCHEMA_VERSION",
    "STATUSES",
    "Store",
    "StoreError",
    "StudyRow",
    "TrialRow",
]
