"""The study file's schema: creating it atomically, checking it, migrating it.

A new file gets its whole schema in one transaction, so a process killed
while it creates a file leaves either a complete store or a database with no
tables, which the next opener treats as new. Several processes may create
one file at the same moment: the tables are checked again inside the
`BEGIN IMMEDIATE` transaction that would create them, and a `database is
locked` while the file is set up is retried with a bounded backoff.

Schema versions: 1 (morphax up to the ask/tell core: serial history, a
host:pid `writer` claim) and 2 (the journal's `propose_seq`/`feedback_seq`,
`attempts`, a per-study event counter and a lease). A writer migrates a
version-1 file in one transaction; a reader reads it as it is, deriving the
same sequence numbers (`V1_JOURNAL`).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable

from ._storage import StoreError

FORMAT = "morphax-study"
SCHEMA_VERSION = "2"
READABLE_VERSIONS = ("1", "2")

STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS morphax_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    spec_fingerprint TEXT NOT NULL,
    space_json TEXT,
    algorithm_json TEXT NOT NULL,
    objective_json TEXT NOT NULL,
    created REAL NOT NULL,
    event_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL
)""",
    """CREATE TABLE IF NOT EXISTS trials (
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
    attempts INTEGER NOT NULL DEFAULT 1,
    propose_seq INTEGER,
    feedback_seq INTEGER,
    UNIQUE (study_id, number)
)""",
    """CREATE TABLE IF NOT EXISTS reports (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (trial_id, step)
)""",
]

# The journal of a version-1 file: its history is the serial order, one
# proposal and then its feedback per trial number; abandoned rows were never
# part of it (and pending ones were not fed back).
V1_JOURNAL = (
    "1",
    "CASE WHEN status = 'abandoned' THEN NULL ELSE 2 * number - 1 END",
    "CASE WHEN status IN ('completed', 'failed', 'skipped') THEN 2 * number END",
)
V2_JOURNAL = ("attempts", "propose_seq", "feedback_seq")

_MIGRATE_V1 = [
    "ALTER TABLE trials ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE trials ADD COLUMN propose_seq INTEGER",
    "ALTER TABLE trials ADD COLUMN feedback_seq INTEGER",
    "ALTER TABLE studies ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE studies ADD COLUMN lease_owner TEXT",
    "ALTER TABLE studies ADD COLUMN lease_expires REAL",
    f"UPDATE trials SET propose_seq = {V1_JOURNAL[1]}, feedback_seq = {V1_JOURNAL[2]}",
    "UPDATE studies SET event_seq = (SELECT COALESCE(MAX(MAX(COALESCE(propose_seq, 0), "
    "COALESCE(feedback_seq, 0))), 0) FROM trials WHERE trials.study_id = studies.id)",
    "UPDATE morphax_meta SET value = '2' WHERE key = 'schema_version'",
]

_SETUP_TIMEOUT_S = 30.0  # the bounded retry of `database is locked` while a file is set up


def _locked(e: sqlite3.OperationalError) -> bool:
    text = str(e)
    return "locked" in text or "busy" in text


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _unreadable(path: str, e: sqlite3.DatabaseError) -> StoreError:
    return StoreError(
        f"{path!r} is not a morphax study file: SQLite cannot read it ({e}); "
        "give a new file name, or restore the file"
    )


def _foreign(path: str, tables: Iterable[str]) -> StoreError:
    return StoreError(
        f"{path!r} is a SQLite database but not a morphax study store "
        f"(its tables: {sorted(tables)}); give another file name"
    )


def _version(conn: sqlite3.Connection, path: str) -> str:
    meta = dict(conn.execute("SELECT key, value FROM morphax_meta").fetchall())
    if meta.get("format") != FORMAT or meta.get("schema_version") not in READABLE_VERSIONS:
        raise StoreError(
            f"{path!r} has format {meta.get('format')!r} version {meta.get('schema_version')!r}; "
            f"this morphax reads {FORMAT!r} versions {', '.join(READABLE_VERSIONS)}"
        )
    return str(meta["schema_version"])


def _quick_check(conn: sqlite3.Connection, path: str) -> None:
    problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise StoreError(f"study store {path!r} is corrupted: {problems[:3]}")


def _create(conn: sqlite3.Connection, path: str) -> None:
    """Creates the schema in one transaction, unless another process did first."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        tables = _tables(conn)  # again, now that no other writer can run
        if not tables:
            for statement in STATEMENTS:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO morphax_meta VALUES ('format', ?), ('schema_version', ?)",
                (FORMAT, SCHEMA_VERSION),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if tables and "morphax_meta" not in tables:
        raise _foreign(path, tables)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Brings a version-1 file to version 2 in one transaction."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        if _version(conn, path) == "1":  # not migrated by another process meanwhile
            for statement in _MIGRATE_V1:
                conn.execute(statement)
            _standard_json(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _standard_json(conn: sqlite3.Connection) -> None:
    """Rewrites the `NaN`/`Infinity` tokens that version 1 stored as standard JSON."""
    from ._store_rows import reencode

    for table, key in (("trials", "id"), ("reports", "rowid")):
        rows = conn.execute(
            f"SELECT {key}, metrics_json FROM {table} WHERE metrics_json LIKE '%NaN%' "
            "OR metrics_json LIKE '%Infinity%'"
        ).fetchall()
        for rid, text in rows:
            new = reencode(text)
            if new is not None and new != text:
                conn.execute(f"UPDATE {table} SET metrics_json = ? WHERE {key} = ?", (new, rid))


def _setup_writer(conn: sqlite3.Connection, path: str) -> None:
    tables = _tables(conn)
    if tables and "morphax_meta" not in tables:
        raise _foreign(path, tables)  # before anything is written to it
    # WAL first, so that the schema is one cheap append to the log; a crash
    # before it commits leaves a file with no tables, which is a new file.
    (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError("database is locked (journal mode not set)")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if not tables:  # a new file, an empty one, or one left by a crash during creation
        _create(conn, path)
    version = _version(conn, path)
    _quick_check(conn, path)
    if version == "1":
        _migrate(conn, path)


def _check_path(path: str) -> None:
    if not path:
        raise StoreError("the study store path is empty; give a file path like 'study.db'")
    if os.path.isdir(path):
        raise StoreError(f"study store {path!r} is a directory; give a file path like 'study.db'")


def open_writer(path: str) -> sqlite3.Connection:
    """A connection that may write the study file `path`, created when missing."""
    _check_path(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreError(f"cannot create study store {path!r}: folder {parent!r} does not exist")
    deadline = time.monotonic() + _SETUP_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            conn = sqlite3.connect(
                path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open study store {path!r}: {e}") from None
        try:
            _setup_writer(conn, path)
            return conn
        except sqlite3.OperationalError as e:
            conn.close()
            if not _locked(e) or time.monotonic() > deadline:
                raise StoreError(f"cannot open study store {path!r}: {e}") from None
        except sqlite3.DatabaseError as e:
            conn.close()
            raise _unreadable(path, e) from None
        except BaseException:
            conn.close()
            raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.25)


def _ro_connect(path: str, immutable: bool) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    if immutable:
        uri += "&immutable=1"
    return sqlite3.connect(
        uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False
    )


def open_reader(path: str) -> tuple[sqlite3.Connection, str]:
    """A read-only connection to the study file `path` and its schema version.

    Nothing is ever written to the file: no schema for an empty or foreign
    file, no checkpoint of a `-wal` when the connection closes.
    """
    _check_path(path)
    if not os.path.exists(path):
        raise StoreError(f"no study file at {path!r}: it does not exist")
    immutable = False
    while True:
        try:
            conn = _ro_connect(path, immutable)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open study store {path!r}: {e}") from None
        try:
            tables = _tables(conn)
            if not tables:
                raise StoreError(
                    f"{path!r} is not a morphax study file: it is empty (no tables); "
                    "a search creates a study file, load_study only reads one"
                )
            if "morphax_meta" not in tables:
                raise _foreign(path, tables)
            version = _version(conn, path)
            _quick_check(conn, path)
            return conn, version
        except sqlite3.OperationalError as e:
            conn.close()
            # A read-only folder where the -shm cannot be made: with no -wal
            # to read, the main file alone is the whole study.
            if "unable to open" in str(e) and not immutable and not os.path.exists(path + "-wal"):
                immutable = True
                continue
            raise StoreError(f"cannot read study store {path!r}: {e}") from None
        except sqlite3.DatabaseError as e:
            conn.close()
            raise _unreadable(path, e) from None
        except BaseException:
            conn.close()
            raise
