"""The SQLite study store against the Storage protocol, and the store holes of
issue 8 (1, 2, 5), each pinned by a test (7, 8, 10 and 11: in
test_store_readers.py)."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax.tuning._storage import MemoryStorage, Storage
from morphax.tuning._store import Store, StoreError, StudyRow, TrialRow
from morphax.tuning._store_owner import owner_token, provably_dead

OBJECTIVE = {"name": "reward", "names": None}
ROOT = Path(__file__).resolve().parents[1]


def _study(store: Storage, name: str = "s") -> StudyRow:
    return store.create_study(name, "fp", None, {"algo": "random", "seed": 0}, OBJECTIVE)


def _script(store: Storage) -> list[Any]:
    """A run with three trials in flight, finished out of order; what it returned."""
    sid = _study(store).id
    out: list[Any] = []
    ids = []
    for i in range(4):
        tid, number, seq = store.add_trial(sid, f"[{i}]", None)
        ids.append(tid)
        out.append(("add", number, seq))
    store.set_trial_start(ids[2], 1000.0)
    out.append(("fin", store.finish_trial(ids[2], "completed", {"reward": 0.5}, None)))
    out.append(("retry", store.retry_trial(ids[0])))
    store.add_report(ids[0], 1, {"reward": 0.1})
    store.add_report(ids[0], 0, {"reward": 0.0})
    store.add_report(ids[0], 1, {"reward": 0.2})
    out.append(("fin", store.finish_trial(ids[0], "failed", None, "boom")))
    store.abandon_trial(ids[1], "gone")
    out.append(("fin", store.finish_trial(ids[3], "skipped", None, "dull")))
    for tid in (ids[0], ids[1]):
        with pytest.raises(StoreError, match=r"trial #\d is (failed|abandoned), not pending"):
            store.finish_trial(tid, "completed", {"reward": 1.0}, None)
        with pytest.raises(StoreError, match="not pending"):
            store.retry_trial(tid)
        with pytest.raises(StoreError, match="not pending"):
            store.set_trial_start(tid, 0.0)
    tid, number, seq = store.add_trial(sid, "[9]", "{}")
    out.append(("add", number, seq))
    for r in store.trials(sid):
        out.append(
            (r.number, r.dna_json, r.program_json, r.status, r.metrics, r.reason, r.steps)
            + (r.attempts, r.propose_seq, r.feedback_seq, r.finished is None)
            + (r.created == 1000.0,)
        )
    out.append(store.study_names())
    return out


def test_sqlite_store_behaves_as_memory_storage(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert _script(store) == _script(MemoryStorage())
    assert _study(store) == _study(store)  # create_study returns the existing study
    assert store.study("nope") is None
    store.close()
    again = Store(tmp_path / "s.db", readonly=True)
    assert [r.status for r in again.trials(1)] == [
        "failed",
        "abandoned",
        "completed",
        "skipped",
        "pending",
    ]
    assert all(isinstance(r, TrialRow) for r in again.trials(1))
    with pytest.raises(StoreError, match="opened read-only"):
        again.add_trial(1, "[1]", None)
    again.close()


def test_finish_takes_feedback_statuses_only(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        tid, _, _ = store.add_trial(_study(store).id, "[1]", None)
        with pytest.raises(StoreError, match="not 'abandoned'"):
            store.finish_trial(tid, "abandoned", None, "x")
        with pytest.raises(StoreError, match="no trial row 99"):
            store.finish_trial(99, "completed", {"reward": 1.0}, None)


# -- leases --------------------------------------------------------------------


def test_a_live_lease_refuses_another_owner_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first, second = Store(path), Store(path)  # two searches, maybe two hosts
    sid = _study(first).id
    first.acquire_lease(sid, "s", "host-a:1:search-1", 0.3)
    first.acquire_lease(sid, "s", "host-a:1:search-1", 0.3)  # its own lease: renewed
    with pytest.raises(StoreError) as info:
        second.acquire_lease(sid, "s", "host-b:1:search-2", 60)
    text = str(info.value)
    assert "host-a:1:search-1" in text and "runs until" in text and "takeover=True" in text
    time.sleep(0.4)  # not renewed in time: any host takes it over
    second.acquire_lease(sid, "s", "host-b:1:search-2", 60)
    with pytest.raises(StoreError, match="taken over by host-b:1:search-2"):
        first.renew_lease(sid, "host-a:1:search-1", 60)
    first.release_lease(sid, "host-a:1:search-1")  # not its lease: nothing happens
    with pytest.raises(StoreError, match="host-b:1:search-2"):
        first.acquire_lease(sid, "s", "host-a:1:search-3", 60)
    first.acquire_lease(sid, "s", "operator", 60, takeover=True)
    with pytest.raises(StoreError, match="taken over by operator"):
        second.renew_lease(sid, "host-b:1:search-2", 60)
    first.release_lease(sid, "operator")
    second.acquire_lease(sid, "s", "host-b:1:search-2", 60)  # released: free
    second.renew_lease(sid, "host-b:1:search-2", 60)
    first.close()
    second.close()


def test_the_deprecated_claim_is_a_process_lease(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        sid = _study(store).id
        store.claim(sid, "s")
        store.claim(sid, "s")
        with pytest.raises(StoreError, match="another search"):
            store.acquire_lease(sid, "s", "other", 60)
        store.release(sid)
        store.acquire_lease(sid, "s", "other", 60)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _untouched(before: dict[str, bytes], folder: Path) -> bool:
    """Every file as it was; a reader of a WAL file may only have added SQLite's
    shared-memory index and an empty -wal (never written into the study)."""
    after = _snapshot(folder)
    added = {k: v for k, v in after.items() if k not in before}
    return all(after.get(k) == v for k, v in before.items()) and all(
        k.endswith("-shm") or (k.endswith("-wal") and not v) for k, v in added.items()
    )


# -- schema version 1 ------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE morphax_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, spec_fingerprint TEXT NOT NULL,
    space_json TEXT, algorithm_json TEXT NOT NULL, objective_json TEXT NOT NULL,
    created REAL NOT NULL, writer TEXT
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL, dna_json TEXT NOT NULL, program_json TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed', 'skipped', 'abandoned')),
    metrics_json TEXT, reason TEXT, created REAL NOT NULL, finished REAL,
    UNIQUE (study_id, number)
);
CREATE TABLE reports (
    trial_id INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL,
    metrics_json TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (trial_id, step)
);
INSERT INTO morphax_meta VALUES ('format', 'morphax-study'), ('schema_version', '1');
"""  # the schema of morphax before the journal (_store.py at 5bae8bb)


def _v1_file(path: Path) -> None:
    """A version-1 study as the old store wrote it (WAL, `NaN` tokens, a writer claim)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO studies VALUES (1, 'default', 'fp', NULL, '{}', ?, 1.0, 'oldhost:1')",
            (json.dumps(OBJECTIVE),),
        )
        statuses = ["completed", "failed", "abandoned", "skipped", "completed", "pending"]
        for n, status in enumerate(statuses, 1):
            metrics = {"reward": float(n), "side": math.nan} if status == "completed" else None
            db.execute(
                "INSERT INTO trials VALUES (?, 1, ?, ?, NULL, ?, ?, NULL, ?, ?)",
                (
                    n,
                    n,
                    mx.to_json(mx.DNA([n % 4])),
                    status,
                    None if metrics is None else json.dumps(metrics),  # `NaN`, as v1 did
                    float(n),
                    None if status == "pending" else float(n) + 0.5,
                ),
            )
        db.execute("INSERT INTO reports VALUES (1, 0, ?, 1.2)", (json.dumps({"x": math.nan}),))


def _rows(store: Store) -> list[Any]:
    return [
        (r.number, r.status, r.attempts, r.propose_seq, r.feedback_seq, r.reason, r.finished)
        + (json.dumps(r.metrics), json.dumps(r.steps), r.dna_json, r.created)
        for r in store.trials(1)
    ]


def test_a_version_1_file_is_read_as_it_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _v1_file(path)
    before = _snapshot(tmp_path)
    with Store(path, readonly=True) as reader:
        assert reader.schema_version == "1"
        derived = _rows(reader)
    assert [r[:5] for r in derived] == [
        (1, "completed", 1, 1, 2),
        (2, "failed", 1, 3, 4),
        (3, "abandoned", 1, None, None),
        (4, "skipped", 1, 7, 8),
        (5, "completed", 1, 9, 10),
        (6, "pending", 1, 11, None),
    ]
    assert len(mx.load_study(path).completed) == 2
    assert _untouched(before, tmp_path)  # readers never write
    with Store(path) as writer:  # migrates, in one transaction
        assert _rows(writer) == derived
        meta = dict(writer.conn.execute("SELECT key, value FROM morphax_meta"))
        assert meta == {"format": "morphax-study", "schema_version": "2"}
        assert writer.conn.execute(
            "SELECT MIN(json_valid(metrics_json)) FROM trials WHERE metrics_json NOT NULL "
            "UNION ALL "
            "SELECT MIN(json_valid(metrics_json)) FROM reports"
        ).fetchall() == [(1,), (1,)]
        assert writer.add_trial(1, "[0]", None)[1:] == (7, 12)  # after the last event
        writer.acquire_lease(1, "default", "new-search", 60)  # the old claim is ignored
        assert writer.retry_trial(6) == 2
        assert writer.finish_trial(6, "completed", {"reward": 6.0}, None) == 13
    with Store(path, readonly=True) as reader:
        assert reader.schema_version == "2"
        assert _rows(reader)[:5] == derived[:5]
        (steps,) = [r.steps for r in reader.trials(1) if r.number == 1]
        assert math.isnan(steps[0][1]["x"])


# -- hole 1: atomic creation ---------------------------------------------------


def test_a_file_with_no_tables_is_a_new_store(tmp_path: Path) -> None:
    for name, make in (
        ("empty.db", lambda p: p.write_bytes(b"")),
        ("wal-header.db", lambda p: sqlite3.connect(p).execute("PRAGMA journal_mode=WAL")),
    ):
        path = tmp_path / name
        make(path)
        with Store(path) as store:
            assert store.study_names() == []
            _study(store)
        with Store(path, readonly=True) as store:
            assert store.study_names() == ["s"]


def test_a_crash_while_the_schema_is_made_leaves_a_file_that_opens(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    code = f"""
        import os
        from morphax.tuning import _store_schema
        class Crash(list):
            def __iter__(self):
                yield from self[:2]
                os._exit(9)  # killed between two CREATE TABLEs
        _store_schema.STATEMENTS = Crash(_store_schema.STATEMENTS)
        from morphax.tuning._store import Store
        Store({str(path)!r})
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True
    )
    assert proc.returncode == 9, proc.stderr.decode()
    assert path.exists()
    with Store(path) as store:  # the half-made schema was rolled back: a new file
        assert store.study_names() == []
        assert store.add_trial(_study(store).id, "[1]", None) == (1, 1, 1)


# -- hole 2: processes opening a new file at once ------------------------------


def test_eight_processes_create_one_new_file_at_once(tmp_path: Path) -> None:
    path, go = tmp_path / "new.db", tmp_path / "go"
    code = f"""
        import os, sys, time
        from morphax.tuning._store import Store
        open({str(tmp_path)!r} + f"/ready-{{sys.argv[1]}}", "w").close()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        store = Store({str(path)!r})
        study = store.create_study("s", "fp", None, {{}}, {{"name": "reward", "names": None}})
        store.add_trial(study.id, "[1]", None)
        store.close()
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(i)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    with Store(path, readonly=True) as store:
        assert [(r.number, r.propose_seq) for r in store.trials(1)] == [(i, i) for i in range(1, 9)]


# -- hole 5: Ctrl-C inside a transaction ---------------------------------------


def test_a_keyboard_interrupt_in_a_write_rolls_it_back(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    sid = _study(store).id
    with pytest.raises(KeyboardInterrupt), store._write():
        store.conn.execute(
            "INSERT INTO trials (study_id, number, dna_json, status, created) "
            "VALUES (?, 1, '[1]', 'pending', 0)",
            (sid,),
        )
        raise KeyboardInterrupt
    assert not store.conn.in_transaction

    def interrupted(study_id: int) -> int:
        raise KeyboardInterrupt

    store._next_seq = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.add_trial(sid, "[1]", None)
    del store._next_seq
    assert not store.conn.in_transaction
    with Store(path) as other:  # the file is not write-locked for other processes
        other.conn.execute("PRAGMA busy_timeout = 100")
        assert other.add_trial(sid, "[2]", None) == (1, 1, 1)
    store.conn.execute("BEGIN IMMEDIATE")  # an interrupt right after BEGIN, outside _write
    assert store.add_trial(sid, "[3]", None)[1:] == (2, 2)  # no nested-transaction error
    assert [r.dna_json for r in store.trials(sid)] == ["[2]", "[3]"]
    store.close()


# -- lease owner tokens ----------------------------------------------------------


def test_a_lease_of_a_process_that_certainly_exited_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    code = "from morphax.tuning._store_owner import owner_token; print(owner_token('s'))"
    dead = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    mine = owner_token()
    if "@" not in mine:
        pytest.skip("no /proc: only the expiry frees a lease")
    assert provably_dead(dead) and not provably_dead(mine)
    boot = mine.split("@")[1].split(".")[0]
    assert not provably_dead(dead.replace(boot, "0" * 32))  # another machine: unknown
    assert not provably_dead("host:1:tag") and not provably_dead("operator")
    reused = mine.rsplit(".", 1)[0] + ".1"  # this PID, but a process started earlier
    assert provably_dead(reused)
    with Store(tmp_path / "s.db") as store:
        sid = _study(store).id
        store.acquire_lease(sid, "s", dead, 60)
        store.acquire_lease(sid, "s", mine, 60)  # not renewed by a dead process: taken
        with pytest.raises(StoreError, match="another search"):
            store.acquire_lease(sid, "s", owner_token(), 60)  # a live one is not
        assert store.conn.execute("SELECT lease_owner FROM studies").fetchone() == (mine,)
