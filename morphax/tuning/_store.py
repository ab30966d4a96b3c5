"""The study store: SQLite (stdlib sqlite3, WAL), one file holds many studies.

Every change is its own transaction, so a process killed at any point (even
SIGKILL) leaves a file that opens, with every reported trial kept. Several
processes may append to one file: trial numbers are taken inside
`BEGIN IMMEDIATE` transactions and SQLite's locking serializes writers. A
study has one writer at a time: a search claims its study, and a second
search of the same study on this host is refused while the first process
lives (a crashed writer's claim is taken over on resume).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

FORMAT = "morphax-study"
SCHEMA_VERSION = "1"
STATUSES = ("pending", "completed", "failed", "skipped", "abandoned")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS morphax_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    spec_fingerprint TEXT NOT NULL,
    space_json TEXT,
    algorithm_json TEXT NOT NULL,
    objective_json TEXT NOT NULL,
    created REAL NOT NULL,
    writer TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    dna_json TEXT NOT NULL,
    program_json TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed', 'skipped', 'abandoned')),
    metrics_json TEXT,
    reason TEXT,
    created REAL NOT NULL,
    finished REAL,
    UNIQUE (study_id, number)
);
CREATE TABLE IF NOT EXISTS reports (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (trial_id, step)
);
"""


def _writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(writer: str) -> bool:
    """Whether the process named `host:pid` runs (other hosts: assumed alive)."""
    host, _, pid = writer.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class StoreError(ValueError):
    """A study file that cannot be used: not SQLite, foreign, or corrupted."""


@dataclass
class StudyRow:
    id: int
    name: str
    spec_fingerprint: str
    space_json: str | None
    algorithm: dict[str, Any]
    objective: dict[str, Any]
    created: float


@dataclass
class TrialRow:
    id: int
    number: int
    dna_json: str
    program_json: str | None
    status: str
    metrics: dict[str, float] | None
    reason: str | None
    created: float
    finished: float | None
    steps: list[tuple[int, dict[str, float]]]


class Store:
    """A study file. Open with `Store(path)`; it is created when missing."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise StoreError(
                f"study store {self.path!r} is a directory; give a file path like 'study.db'"
            )
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise StoreError(
                f"cannot create study store {self.path!r}: folder {parent!r} does not exist"
            )
        existed = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self._check(existed)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if not existed:
                with self._write():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self.conn.execute(statement)
                    self.conn.execute(
                        "INSERT OR IGNORE INTO morphax_meta VALUES ('format', ?), ('schema_version', ?)",
                        (FORMAT, SCHEMA_VERSION),
                    )
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open study store {self.path!r}: {e}") from None

    def _check(self, existed: bool) -> None:
        if not existed:
            return
        try:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{self.path!r} is not a morphax study file: SQLite cannot read it ({e}); "
                "give a new file name, or restore the file"
            ) from None
        if "morphax_meta" not in tables:
            raise StoreError(
                f"{self.path!r} is a SQLite database but not a morphax study store "
                f"(its tables: {sorted(tables)}); give another file name"
            )
        meta = dict(self.conn.execute("SELECT key, value FROM morphax_meta").fetchall())
        if meta.get("format") != FORMAT or meta.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path!r} has format {meta.get('format')!r} version {meta.get('schema_version')!r}; "
                f"this morphax reads {FORMAT!r} version {SCHEMA_VERSION!r}"
            )
        problems = [r[0] for r in self.conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"study store {self.path!r} is corrupted: {problems[:3]}")

    @contextmanager
    def _write(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # -- studies -----------------------------------------------------------------

    def study(self, name: str) -> StudyRow | None:
        row = self.conn.execute(
            "SELECT id, name, spec_fingerprint, space_json, algorithm_json, objective_json, created "
            "FROM studies WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        return StudyRow(
            row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6]
        )

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
        with self._write():
            existing = self.study(name)
            if existing is not None:
                return existing
            self.conn.execute(
                "INSERT INTO studies (name, spec_fingerprint, space_json, algorithm_json, objective_json, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
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

    def claim(self, study_id: int, name: str) -> None:
        """Makes this process the study's writer, unless a live process on
        this host is (then raises StoreError naming it)."""
        me = _writer_id()
        with self._write():
            (writer,) = self.conn.execute(
                "SELECT writer FROM studies WHERE id = ?", (study_id,)
            ).fetchone()
            if writer and writer != me and _alive(writer):
                raise StoreError(
                    f"study {name!r} in {self.path!r} is being searched by another process "
                    f"({writer}); a study has one writer at a time: wait for it, or use another "
                    "study name"
                )
            self.conn.execute("UPDATE studies SET writer = ? WHERE id = ?", (me, study_id))

    def release(self, study_id: int) -> None:
        with self._write():
            self.conn.execute(
                "UPDATE studies SET writer = NULL WHERE id = ? AND writer = ?",
                (study_id, _writer_id()),
            )

    # -- trials ------------------------------------------------------------------

    def add_trial(self, study_id: int, dna_json: str, program_json: str | None) -> tuple[int, int]:
        """Inserts a pending trial; returns (row id, trial number)."""
        with self._write():
            (number,) = self.conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM trials WHERE study_id = ?", (study_id,)
            ).fetchone()
            cur = self.conn.execute(
                "INSERT INTO trials (study_id, number, dna_json, program_json, status, created) "
                "VALUES (?, ?, ?, ?, 'pending', ?)",
                (study_id, number, dna_json, program_json, time.time()),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid, number

    def finish_trial(
        self, trial_id: int, status: str, metrics: dict[str, float] | None, reason: str | None
    ) -> None:
        assert status in STATUSES
        with self._write():
            cur = self.conn.execute(
                "UPDATE trials SET status = ?, metrics_json = ?, reason = ?, finished = ? "
                "WHERE id = ? AND status = 'pending'",
                (
                    status,
                    None if metrics is None else json.dumps(metrics),
                    reason,
                    time.time(),
                    trial_id,
                ),
            )
            if cur.rowcount != 1:
                raise StoreError(
                    f"trial row {trial_id} is not pending in {self.path!r}; it was finished elsewhere"
                )

    def add_report(self, trial_id: int, step: int, metrics: dict[str, float]) -> None:
        with self._write():
            self.conn.execute(
                "INSERT OR REPLACE INTO reports (trial_id, step, metrics_json, time) VALUES (?, ?, ?, ?)",
                (trial_id, step, json.dumps(metrics), time.time()),
            )

    def trials(self, study_id: int) -> list[TrialRow]:
        rows = self.conn.execute(
            "SELECT id, number, dna_json, program_json, status, metrics_json, reason, created, finished "
            "FROM trials WHERE study_id = ? ORDER BY number",
            (study_id,),
        ).fetchall()
        steps: dict[int, list[tuple[int, dict[str, float]]]] = {}
        for tid, step, mj in self.conn.execute(
            "SELECT r.trial_id, r.step, r.metrics_json FROM reports r JOIN trials t ON t.id = r.trial_id "
            "WHERE t.study_id = ? ORDER BY r.trial_id, r.step",
            (study_id,),
        ):
            steps.setdefault(tid, []).append((step, json.loads(mj)))
        return [
            TrialRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                None if r[5] is None else json.loads(r[5]),
                r[6],
                r[7],
                r[8],
                steps.get(r[0], []),
            )
            for r in rows
        ]
