"""Reading a study back: trials, the best ones, a dataframe and plots.

Stored programs are data: they are decoded only when `trial.program` (or
`study.space`) is read, by `mx.from_json`, which runs no code.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from typing import Any

import numpy as np

from ..symbolic import DNA, from_json
from ._records import _reward_of, record
from ._store import Store, StoreError, TrialRow
from ._trial import Objective, Trial

_PENDING: Any = object()  # not decoded yet


def _unstored_reason(text: str) -> str | None:
    """The reason of a `{"$unstored": reason}` record, else None."""
    if not text.startswith('{"$unstored"'):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value["$unstored"], str):
        return value["$unstored"]
    return None


def _load(text: str | None, what: str) -> Any:
    """A program or space of a study file; ValueError saying why it cannot be."""
    if text is None:
        return None  # not stored (a define-by-run space, or an older study file)
    reason = _unstored_reason(text)
    if reason is not None:
        raise ValueError(
            f"{what} was not stored: {reason}; register the class with mx.register before "
            "searching, so that the study stores it"
        )
    try:
        return from_json(text)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} cannot be loaded from the study file: {e}") from None


class StoredTrial(Trial):
    """A trial read back from a study file (read-only).

    Its program and DNA are decoded from the stored JSON when first read,
    so one row that cannot be decoded breaks neither `load_study`, `best()`
    nor `to_dataframe()`; reading `trial.program` of such a row raises a
    ValueError naming the trial and why (a class not registered in this
    process, a program that was not stored, a tampered row). `program` is
    None only for rows that hold no program (define-by-run spaces and study
    files of older morphax versions).
    """

    def __init__(self, row: TrialRow, objective: Objective) -> None:
        self._program_json = row.program_json
        self._dna_json = row.dna_json
        super().__init__(
            row.number,
            _PENDING,
            _PENDING,
            row.status,
            row.metrics,
            _reward_of(row, objective),
            list(row.steps),
            row.reason,
            row.created,
            row.finished,
            row.attempts,
        )

    @property
    def program(self) -> Any:
        value = self.__dict__.get("_program", _PENDING)
        if value is _PENDING:
            value = _load(self._program_json, f"the program of trial #{self.id}")
            self.__dict__["_program"] = value
        return value

    @program.setter
    def program(self, value: Any) -> None:
        if value is not _PENDING:
            self.__dict__["_program"] = value

    @property
    def dna(self) -> DNA:
        value = self.__dict__.get("_dna", _PENDING)
        if value is _PENDING:
            try:
                value = from_json(self._dna_json)
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"the DNA of trial #{self.id} cannot be loaded from the study file: {e}"
                ) from None
            if not isinstance(value, DNA):
                raise ValueError(
                    f"the DNA of trial #{self.id} cannot be loaded from the study file: it holds "
                    f"a {type(value).__name__}, not a DNA"
                )
            self.__dict__["_dna"] = value
        return value

    @dna.setter
    def dna(self, value: DNA) -> None:
        if value is not _PENDING:
            self.__dict__["_dna"] = value

    def __repr__(self) -> str:
        try:
            program = repr(self.program)
        except ValueError as e:
            program = f"<not loadable: {e}>"
        return (
            f"StoredTrial(id={self.id}, status={self.status!r}, reward={self.reward!r}, "
            f"metrics={self.metrics!r}, reason={self.reason!r}, program={program})"
        )


def _pareto(points: np.ndarray) -> list[int]:
    """Indices of the non-dominated rows of `points` (all maximized)."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1))
        if not dominated:
            keep.append(i)
    return keep


class Study:
    """A stored study: its trials, the best ones, a dataframe and plots.

    Made by :func:`load_study`.
    """

    def __init__(self, store: Store, name: str) -> None:
        row = store.study(name)
        if row is None:
            raise ValueError(
                f"no study named {name!r} in {store.path!r}; it has {store.study_names()}"
            )
        self.path = store.path
        self.name = name
        self.algorithm = row.algorithm
        self.spec_fingerprint = row.spec_fingerprint
        names = row.objective["names"]
        self.objective = Objective(row.objective["name"], None if names is None else tuple(names))
        self._space_json = row.space_json
        # Programs are decoded lazily, when `trial.program` is read.
        self.trials: list[Trial] = [self._record(store, r) for r in store.trials(row.id)]

    def _record(self, store: Store, row: TrialRow) -> Trial:
        where = f"study file {store.path!r}, study {self.name!r}: trial #{row.number}"
        try:
            trial = record(row, self.objective, load_program=True)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise StoreError(
                f"{where} cannot be read ({type(e).__name__}: {e}); the row was edited by hand "
                "or damaged"
            ) from None
        if trial.status == "completed" and trial.reward is None:
            raise StoreError(
                f"{where} is completed but its metrics {row.metrics} have no "
                f"{self.objective.name!r}; the row was edited by hand or damaged"
            )
        return trial

    def backup(self, path: str | os.PathLike[str]) -> str:
        """Copies the study file (every study in it) to `path` with SQLite's
        online backup: a consistent, self-contained copy even while a search
        writes the file. `path` is replaced atomically; returns it."""
        dest = os.fspath(path)
        if os.path.abspath(dest) == os.path.abspath(self.path):
            raise ValueError(f"cannot back {self.path!r} up onto itself; give another path")
        tmp = f"{dest}.backup-{os.getpid()}"
        source = Store(self.path, readonly=True)
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as out:
                source.conn.backup(out)
            os.replace(tmp, dest)
        finally:
            source.close()
            for leftover in (tmp, f"{tmp}-journal", f"{tmp}-wal", f"{tmp}-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        return dest

    @property
    def space(self) -> Any:
        """The study's space, decoded from the study file.

        None for a define-by-run space (not stored as JSON).

        Raises:
            ValueError: when the space was not stored (an unregistered class;
                the message says which) or cannot be loaded in this process.
        """
        return _load(self._space_json, f"the space of study {self.name!r}")

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "completed"]

    def best(self, k: int = 1) -> list[Trial]:
        """The `k` best completed trials (single objective), or up to `k`
        trials of the Pareto front (several objectives, first objective order).

        Raises:
            ValueError: if `k` is not a positive int.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"best(k) needs a positive int k, but got k={k!r}")
        done = self.completed
        if not done:
            return []
        if self.objective.names is None:
            return sorted(done, key=lambda t: -t.reward)[:k]  # type: ignore[operator]
        points = np.array([t.reward for t in done], dtype=float)
        front = [done[i] for i in _pareto(points)]
        return sorted(front, key=lambda t: -t.reward[0])[:k]  # type: ignore[index]

    def to_dataframe(self) -> Any:
        """A pandas DataFrame: one row per trial, its metrics and its DNA."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"trial": t.id, "status": t.status, "reason": t.reason}
            row.update(t.metrics or {})
            try:
                row["dna"] = str(list(t.dna.values))
            except ValueError as e:
                row["dna"] = f"<not loadable: {e}>"
            row["duration_s"] = (
                None if t.finished is None or t.created is None else t.finished - t.created
            )
            rows.append(row)
        return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()

    def best_so_far(self) -> tuple[list[int], list[float]]:
        """(trial ids, best reward up to each trial) for a single objective."""
        ids, best, current = [], [], -np.inf
        for t in self.trials:
            if t.status == "completed" and isinstance(t.reward, float):
                current = max(current, t.reward)
            if np.isfinite(current):
                ids.append(t.id)
                best.append(float(current))
        return ids, best

    def plot(self, path: str | os.PathLike[str] | None = None) -> str:
        """Saves a PNG: the best-so-far curve, or the Pareto front for two
        objectives. Returns the file path (default `<study file>.<name>.png`)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        out = (
            os.fspath(path)
            if path is not None
            else f"{os.path.splitext(self.path)[0]}.{self.name}.png"
        )
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        done = self.completed
        if self.objective.names is not None and len(self.objective.names) == 2:
            pts = np.array([t.reward for t in done], dtype=float).reshape(-1, 2)
            front = pts[_pareto(pts)] if len(pts) else pts
            front = front[np.argsort(front[:, 0])]
            ax.scatter(pts[:, 0], pts[:, 1], s=12, alpha=0.5, label="trials")
            ax.plot(front[:, 0], front[:, 1], "o-", color="C3", label="Pareto front")
            ax.set_xlabel(self.objective.names[0])
            ax.set_ylabel(self.objective.names[1])
            ax.set_title(f"{self.name}: {len(done)} trials, {len(front)} on the front")
        else:
            scored = [t for t in done if isinstance(t.reward, float)]
            xs = [t.id for t in scored]
            ys = [float(t.reward) for t in scored]  # type: ignore[arg-type]
            ax.scatter(xs, ys, s=10, alpha=0.5, label="trial reward")
            ids, best = self.best_so_far()
            ax.step(ids, best, where="post", color="C3", label="best so far")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("trial")
            ax.set_ylabel(self.objective.name)
            ax.set_title(f"{self.name}: {len(done)} completed of {len(self.trials)} trials")
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out)
        plt.close(fig)
        return out

    def __repr__(self) -> str:
        return f"Study({self.name!r}, trials={len(self.trials)}, completed={len(self.completed)}, path={self.path!r})"


def load_study(path: str | os.PathLike[str], name: str | None = None) -> Study:
    """Opens a stored study (read-only use).

    Args:
        path: the study file.
        name: the study's name; may be left out when the file holds one study.

    The file is opened read-only and never written: no schema is made in
    an empty file, no write-ahead log is merged into it.

    Raises:
        ValueError: if the file is missing, not a morphax study file, or has
            no such study (StoreError, a ValueError, for the file itself and
            for rows that cannot be read, naming the file and the trial).
    """
    store = Store(path, readonly=True)  # never writes the file
    try:
        if name is None:
            names = store.study_names()
            if len(names) != 1:
                raise ValueError(f"{os.fspath(path)!r} holds studies {names}; pass name=")
            name = names[0]
        return Study(store, name)
    finally:
        store.close()


__all__ = ["StoredTrial", "Study", "StoreError", "load_study"]
