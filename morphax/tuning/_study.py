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

from ..symbolic import DNA, format_program, from_json
from ._plots import plot_decisions, plot_history, plot_pareto
from ._records import best_trials, record, row_fields
from ._storage import Storage
from ._store import Store, StoreError, TrialRow
from ._trial import Objective, Trial, checkpoint_dir

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
        super().__init__(row.number, _PENDING, _PENDING, *row_fields(row, objective))

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
            program = format_program(self.program)  # choices by name: relu, not an address
        except ValueError as e:
            program = f"<not loadable: {e}>"
        return (
            f"StoredTrial(id={self.id}, status={self.status!r}, reward={self.reward!r}, "
            f"metrics={self.metrics!r}, reason={self.reason!r}, program={program})"
        )


class Study:
    """A study: its trials, the best ones, a dataframe and plots.

    Made by :func:`load_study` (a study file) or `search.study()` (any
    search, also one without a store).
    """

    def __init__(self, store: Storage, name: str, *, spec: Any = None) -> None:
        row = store.study(name)
        if row is None:
            raise ValueError(
                f"no study named {name!r} in {store.path!r}; it has {store.study_names()}"
            )
        self.path = store.path
        self.name = name
        self.algorithm = row.algorithm
        self.spec_fingerprint = row.spec_fingerprint
        self.objective = Objective.from_json(row.objective)
        self._space_json = row.space_json
        self._spec = spec
        # Programs are decoded lazily, when `trial.program` is read.
        self.trials: list[Trial] = [self._record(store, r) for r in store.trials(row.id)]
        for t in self.trials:
            t._spec = self.spec
            t.checkpoint_dir = checkpoint_dir(store.path, name, t.id)

    @property
    def direction(self) -> str | tuple[str, ...]:
        """ "maximize" or "minimize" (a tuple of them with several objectives)."""
        d = self.objective.directions
        return d if self.objective.names is not None else d[0]

    @property
    def spec(self) -> Any:
        """The DNASpec of the study's space, or None when the space cannot be
        loaded here (a define-by-run space read from a file, an unregistered class)."""
        if self._spec is None:
            from ..symbolic import space as compile_space

            with contextlib.suppress(ValueError, TypeError):
                loaded = self.space
                spec = None if loaded is None else compile_space(loaded).spec
                if spec is not None and spec.fingerprint == self.spec_fingerprint:
                    self._spec = spec
        return self._spec

    def _record(self, store: Storage, row: TrialRow) -> Trial:
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
        if self.path == ":memory:":
            raise ValueError(
                f"study {self.name!r} is in memory; search with store='study.db' to keep a file"
            )
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

    def best(self, k: int | None = None) -> list[Trial]:
        """The best completed trials in the study's direction, best first: `k`
        of them (default 1); with several objectives, the Pareto front (all of
        it, or up to `k`, ordered by the first objective).

        Raises:
            ValueError: if `k` is not a positive int.
        """
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"best(k) needs a positive int k, but got k={k!r}")
        return best_trials(self.trials, self.objective, k)

    def to_dataframe(self) -> Any:
        """A pandas DataFrame: one row per trial: its status, metrics, one
        column per decision with its readable value (`relu`, `64`; see
        `Trial.values`), the DNA and the duration."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"trial": t.id, "status": t.status, "reason": t.reason}
            row.update(t.metrics or {})
            try:
                row.update({k: v for k, v in t.values.items() if k not in row})
                row["dna"] = str(list(t.dna.values))
            except ValueError as e:
                row["dna"] = f"<not loadable: {e}>"
            row["duration_s"] = (
                None if t.finished is None or t.created is None else t.finished - t.created
            )
            rows.append(row)
        return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()

    def best_so_far(self) -> tuple[list[int], list[float]]:
        """(trial ids, best value up to each trial) for a single objective, in
        the study's direction."""
        ids, best, current = [], [], -np.inf
        sign = -1.0 if self.objective.directions[0] == "minimize" else 1.0
        for t in self.trials:
            if t.status == "completed" and isinstance(t.reward, float):
                current = max(current, sign * t.reward)
            if np.isfinite(current):
                ids.append(t.id)
                best.append(float(sign * current))
        return ids, best

    def plot(self, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
        """The best-so-far curve (one objective) or the Pareto front (two), as a
        matplotlib Figure (Jupyter shows it inline); drawn into `ax` when given;
        written to `path` (PNG, SVG, PDF by its suffix) only when given. Never
        touches matplotlib's global state (backend, pyplot figures)."""
        if self.objective.names is not None and len(self.objective.names) == 2:
            return plot_pareto(self, path, ax=ax)
        return plot_history(self, path, ax=ax)

    def plot_decisions(self, path: str | os.PathLike[str] | None = None) -> Any:
        """One panel per decision: the (first) objective against the decision's
        values, so you see which choices matter; a Figure, written to `path`
        when given."""
        return plot_decisions(self, path)

    def __repr__(self) -> str:
        best = self.best()
        shown = (
            f", best={best[0].reward!r} (trial #{best[0].id})"
            if best and self.objective.names is None
            else (f", front={len(best)}" if best else "")
        )
        return (
            f"Study({self.name!r}, trials={len(self.trials)}, completed={len(self.completed)}, "
            f"direction={self.direction!r}{shown}, path={self.path!r})"
        )


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
