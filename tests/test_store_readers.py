"""Readers of study files never write them, and name what they cannot read:
the store holes 7, 8, 10 and 11 of issue 8, each pinned by a test."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from pathlib import Path

import pytest

import morphax as mx
from morphax.tuning import _store_schema
from morphax.tuning._store import Store, StoreError

OBJECTIVE = {"name": "reward", "names": None}


def _study(store: Store, name: str = "s") -> int:
    return store.create_study(name, "fp", None, {"algo": "random", "seed": 0}, OBJECTIVE).id


# -- holes 7 and 8: readers never write -----------------------------------------


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


def _search_file(path: Path, n: int = 3) -> None:
    with Store(path) as store:
        sid = _study(store, "default")
        for i in range(n):
            tid, _, _ = store.add_trial(sid, mx.to_json(mx.DNA([i])), None)
            store.finish_trial(tid, "completed", {"reward": float(i)}, None)


def test_a_read_only_study_is_read_and_a_missing_one_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "study.db"
    _search_file(path)
    before = _snapshot(folder)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        study = mx.load_study(path)
        assert [t.reward for t in study.trials] == [0.0, 1.0, 2.0]
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert _untouched(before, folder)
    with pytest.raises(StoreError, match=r"no study file at .*missing\.db.*: it does not exist"):
        mx.load_study(tmp_path / "missing.db")


def test_a_folder_where_no_shm_can_be_made_is_read_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "study.db"
    _search_file(path)
    calls: list[bool] = []
    real_connect, real_tables = _store_schema._ro_connect, _store_schema._tables

    def connect(p: str, immutable: bool) -> sqlite3.Connection:
        calls.append(immutable)
        return real_connect(p, immutable)

    def tables(conn: sqlite3.Connection) -> set[str]:
        if not calls[-1]:  # what SQLite says in a read-only folder with no -shm to open
            raise sqlite3.OperationalError("unable to open database file")
        return real_tables(conn)

    monkeypatch.setattr(_store_schema, "_ro_connect", connect)
    monkeypatch.setattr(_store_schema, "_tables", tables)
    with Store(path, readonly=True) as store:
        assert calls == [False, True]
        assert len(store.trials(1)) == 3
    Path(f"{path}-wal").write_bytes(b"")  # a -wal it would miss: no immutable read
    with pytest.raises(StoreError, match="cannot read study store .*unable to open"):
        Store(path, readonly=True)


def test_load_study_of_an_empty_or_foreign_file_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "e.db").write_bytes(b"")
    with pytest.raises(StoreError, match="it is empty"):
        mx.load_study(empty / "e.db")
    assert _snapshot(empty) == {"e.db": b""}
    # A copied-in foreign database with a stale -wal: refused, and the -wal is not merged.
    source = tmp_path / "source.db"
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE users (id INTEGER)")
    writer.execute("INSERT INTO users VALUES (1)")
    copied = tmp_path / "copied"
    copied.mkdir()
    for suffix in ("", "-wal"):
        (copied / f"c.db{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
    writer.close()
    before = _snapshot(copied)
    with pytest.raises(StoreError, match=r"not a morphax study store \(its tables: \['users'\]\)"):
        mx.load_study(copied / "c.db")
    assert _untouched(before, copied)


def test_a_study_with_a_stale_wal_is_read_without_merging_it(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    _search_file(source)
    writer = Store(source)  # a live search: its last trials are only in the -wal
    writer.conn.execute("PRAGMA wal_autocheckpoint=0")
    tid, _, _ = writer.add_trial(1, mx.to_json(mx.DNA([3])), None)
    writer.finish_trial(tid, "completed", {"reward": 3.0}, None)
    copied = tmp_path / "copied"
    copied.mkdir()
    for suffix in ("", "-wal"):
        (copied / f"c.db{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
    before = _snapshot(copied)["c.db"]
    assert len(mx.load_study(copied / "c.db").trials) == 4
    assert _snapshot(copied)["c.db"] == before
    # Study.backup: one self-contained, consistent file, even while the writer is open.
    backup = mx.load_study(source).backup(tmp_path / "backup.db")
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("backup")) == [
        "backup.db"
    ]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "b.db").write_bytes(Path(backup).read_bytes())
    assert [t.reward for t in mx.load_study(alone / "b.db").trials] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="onto itself"):
        mx.load_study(source).backup(source)


# -- hole 10: hand-edited rows -------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("UPDATE trials SET metrics_json = '{\"reward\": 1' WHERE number = 2", "not JSON"),
        ("UPDATE trials SET metrics_json = NULL WHERE number = 2", "no metrics"),
        ("UPDATE trials SET metrics_json = '[1]' WHERE number = 2", "not an object"),
        ('UPDATE trials SET metrics_json = \'{"reward": "hi"}\' WHERE number = 2', "not a num"),
        ("UPDATE trials SET status = 'running' WHERE number = 2", "status 'running'"),
        ("UPDATE trials SET dna_json = X'5B315D' WHERE number = 2", "DNA JSON b'"),
        ("UPDATE trials SET created = 'noon' WHERE number = 2", "creation time 'noon'"),
        ("UPDATE trials SET attempts = 0 WHERE number = 2", "attempt count 0"),
        ("UPDATE trials SET metrics_json = '{\"loss\": 1}' WHERE number = 2", "no 'reward'"),
    ],
)
def test_a_hand_edited_row_is_named(tmp_path: Path, edit: str, message: str) -> None:
    path = tmp_path / "study.db"
    _search_file(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA ignore_check_constraints = ON")
        db.execute(edit)
    with pytest.raises(StoreError, match=rf"study\.db.*trial #2 .*{message}"):
        mx.load_study(path).best()
    if "reward" not in message:  # the store's own check (the missing objective is the study's)
        with Store(path, readonly=True) as store, pytest.raises(StoreError, match="trial #2"):
            store.trials(1)


def test_hand_edited_study_rows_and_reports_are_named(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    _search_file(path)
    with Store(path) as store:
        store.add_report(2, 0, {"reward": 1.0})
    for edit, message in (
        ("UPDATE reports SET metrics_json = 'x'", r"trial #2 has a step-0 report that are not"),
        ("UPDATE studies SET objective_json = '{\"name\": 3}'", r"study 'default' .*objective"),
        ("UPDATE studies SET algorithm_json = 'nope'", "study 'default' .*algorithm JSON"),
    ):
        copy = tmp_path / "copy.db"
        copy.write_bytes(path.read_bytes())
        with contextlib.closing(sqlite3.connect(copy)) as db, db:
            db.execute(edit)
        with pytest.raises(StoreError, match=rf"copy\.db.*{message}"):
            mx.load_study(copy)


# -- hole 11: standard JSON -----------------------------------------------------


def test_non_finite_side_metrics_are_standard_json(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        sid = _study(store)
        tid, _, _ = store.add_trial(sid, "[1]", None)
        metrics = {"reward": 1.0, "nan": math.nan, "up": math.inf, "down": -math.inf}
        store.add_report(tid, 0, metrics)
        store.finish_trial(tid, "completed", metrics, None)
        assert store.conn.execute(
            "SELECT MIN(json_valid(metrics_json)) FROM trials WHERE metrics_json NOT NULL "
            "UNION ALL "
            "SELECT MIN(json_valid(metrics_json)) FROM reports"
        ).fetchall() == [(1,), (1,)]
        (row,) = store.trials(sid)
    for got in (row.metrics, row.steps[0][1]):
        assert got is not None
        assert got["reward"] == 1.0 and math.isnan(got["nan"])
        assert got["up"] == math.inf and got["down"] == -math.inf
