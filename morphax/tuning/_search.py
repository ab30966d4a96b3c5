"""The search loop: any algorithm drives it through DNA."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from .._typing import Reward
from ..algorithms import Algorithm
from ..symbolic import DNA, DynamicSpace, Space, from_json, space, to_json
from ._store import Store, StoreError, StudyRow, TrialRow
from ._trial import Objective, Trial


def _program_json(program: Any) -> str:
    """The JSON of a program or space; when it cannot be serialized (an
    unregistered class), `{"$unstored": reason}`, which loading reports."""
    try:
        return to_json(program)
    except (TypeError, ValueError) as e:
        # Without memory addresses, so that the same space gives the same text.
        return json.dumps({"$unstored": re.sub(r" at 0x[0-9a-fA-F]+", "", str(e))})


def record(row: TrialRow, objective: Objective, *, load_program: bool = False) -> Trial:
    """A read-only Trial of a stored row; with `load_program`, a StoredTrial
    that decodes its program (and DNA) from the row on first access."""
    if load_program:
        from ._study import StoredTrial

        return StoredTrial(row, objective)
    return Trial(
        row.number,
        from_json(row.dna_json),
        None,
        row.status,
        row.metrics,
        _reward_of(row, objective),
        list(row.steps),
        row.reason,
        row.created,
        row.finished,
    )


def _reward_of(row: TrialRow, objective: Objective) -> Reward:
    if row.status != "completed" or row.metrics is None:
        return None
    if objective.names is not None:
        return tuple(row.metrics[n] for n in objective.names)
    return row.metrics.get(objective.name)


class Search:
    """A running search: iterate it to get trials (see :func:`search`)."""

    def __init__(
        self,
        program: Any,
        algorithm: Algorithm,
        *,
        num_trials: int,
        store: str | os.PathLike[str] | Store | None,
        name: str | None,
        early_stopping: Any,
        objective: str | None,
    ) -> None:
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"mx.search needs an mx.algorithms.Algorithm, but got {algorithm!r}")
        if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 0:
            raise ValueError(f"`num_trials` must be a non-negative int, but got {num_trials!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"`name` must be a non-empty str, but got {name!r}")
        if early_stopping is not None and not callable(
            getattr(early_stopping, "should_stop", None)
        ):
            raise TypeError(
                f"`early_stopping` must have a should_stop method, but got {early_stopping!r}"
            )
        self.space: Space | DynamicSpace = space(program)
        self.spec = self.space.spec
        self.algorithm = algorithm
        self.num_trials = num_trials
        self.name = name or "default"
        self.early_stopping = early_stopping
        names = algorithm.objectives
        self.objective = Objective(objective or (names[0] if names else "reward"), names)
        self._owns_store = store is not None and not isinstance(store, Store)
        self.store = store if isinstance(store, Store) or store is None else Store(store)
        self.study: StudyRow | None = None
        self.trials: list[Trial] = []
        self._started = False

    # -- study bookkeeping --------------------------------------------------------

    def _open_study(self) -> list[TrialRow]:
        if self.store is None:
            return []
        space_json = _program_json(self.space.program) if isinstance(self.space, Space) else None
        row = self.store.create_study(
            self.name,
            self.spec.fingerprint,
            space_json,
            self.algorithm.to_json_value(),
            self.objective.to_json(),
        )
        # A space that could not be stored (`{"$unstored": ...}`) is compared by its spec
        # alone, so registering the missing class afterwards still resumes the study.
        unknown = [t for t in (row.space_json, space_json) if t is None or '"$unstored"' in t[:16]]
        same_program = bool(unknown) or row.space_json == space_json
        if row.spec_fingerprint != self.spec.fingerprint or not same_program:
            raise ValueError(
                f"study {self.name!r} in {self.store.path!r} was made for another space "
                f"(spec {row.spec_fingerprint}: {_short(row.space_json)}); this search's space is "
                f"spec {self.spec.fingerprint}: {_short(space_json)}; use another study name"
            )
        if row.algorithm != self.algorithm.to_json_value():
            raise ValueError(
                f"study {self.name!r} in {self.store.path!r} was run with {row.algorithm}, but this "
                f"search uses {self.algorithm.to_json_value()}; resume with the same algorithm and seed, "
                "or use another study name"
            )
        if row.objective != self.objective.to_json():
            raise ValueError(
                f"study {self.name!r} optimizes {row.objective}, but this search asks for "
                f"{self.objective.to_json()}"
            )
        self.store.claim(row.id, self.name)
        self.study = row
        return [r for r in self.store.trials(row.id) if r.status != "abandoned"]

    # -- the sink the trials report to ----------------------------------------------

    def on_step(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        if self.store is not None:
            self.store.add_report(trial._row_id, step, metrics)  # type: ignore[attr-defined]

    def on_finish(self, trial: Trial) -> None:
        trial.finished = time.time()
        if self.store is not None:
            self.store.finish_trial(trial._row_id, trial.status, trial.metrics, trial.reason)  # type: ignore[attr-defined]

    def should_stop(self, trial: Trial) -> bool:
        key = self.objective.names[0] if self.objective.names else self.objective.name
        own = [(s, m[key]) for s, m in trial.steps if key in m]
        others = [
            [(s, m[key]) for s, m in t.steps if key in m] for t in self.trials if t is not trial
        ]
        return bool(self.early_stopping.should_stop(own, others))

    # -- the loop --------------------------------------------------------------------

    def __iter__(self) -> Iterator[Trial]:
        if self._started:
            raise RuntimeError("a Search runs once; call mx.search(...) again to resume it")
        self._started = True
        try:
            yield from self._loop()
        finally:
            if self.store is not None and self.study is not None:
                self.store.release(self.study.id)
            if self._owns_store and self.store is not None:
                self.store.close()  # merges the write-ahead log into the file

    def _loop(self) -> Iterator[Trial]:
        rows = self._open_study()
        tail = rows[-1] if rows and rows[-1].status == "pending" else None
        history = [
            (from_json(r.dna_json), _reward_of(r, self.objective)) for r in rows if r is not tail
        ]
        self.trials = [record(r, self.objective) for r in rows if r is not tail]
        self.algorithm.setup(self.spec)
        self.algorithm.recover(history)
        done = sum(1 for r in rows if r.status != "pending")
        while done < self.num_trials:
            try:
                dna = self.algorithm.propose()
            except StopIteration:
                return
            self._check(dna)
            program = self.space.materialize(dna)
            if tail is not None and from_json(tail.dna_json) == dna:
                row_id, number, steps, created = (
                    tail.id,
                    tail.number,
                    list(tail.steps),
                    tail.created,
                )
            else:
                if tail is not None and self.store is not None:
                    self.store.finish_trial(
                        tail.id, "abandoned", None, "interrupted, and not proposed again on resume"
                    )
                row_id, number, steps, created = self._new_row(dna, program)
            tail = None
            trial = Trial(number, dna, program, steps=steps, created=created, _sink=self)
            trial._row_id = row_id  # type: ignore[attr-defined]
            self.trials.append(trial)
            yield trial
            if not trial.done:
                raise RuntimeError(
                    f"trial #{trial.id} of study {self.name!r} was left without a report: call "
                    "trial.report(value), trial.skip(reason) or trial.fail(reason) before the loop "
                    "moves on (it stays pending and is proposed again on resume)"
                )
            self.algorithm.feedback(dna, trial.reward if trial.status == "completed" else None)
            done += 1

    def _new_row(self, dna: DNA, program: Any) -> tuple[int, int, list[Any], float]:
        now = time.time()
        if self.store is None:
            number = len(self.trials) + 1
            return number, number, [], now
        assert self.study is not None
        row_id, number = self.store.add_trial(self.study.id, to_json(dna), _program_json(program))
        return row_id, number, [], now

    def _check(self, dna: Any) -> None:
        if not isinstance(dna, DNA):
            raise TypeError(f"{self.algorithm!r} proposed {dna!r}, which is not a DNA")
        try:
            self.spec.validate(dna)
        except ValueError as e:
            raise ValueError(f"{self.algorithm!r} proposed an invalid DNA: {e}") from None

    # -- results -------------------------------------------------------------------

    def best(self) -> Trial | None:
        """The completed trial with the highest reward so far (single objective)."""
        done = [t for t in self.trials if t.status == "completed" and isinstance(t.reward, float)]
        return max(done, key=lambda t: t.reward) if done else None  # type: ignore[arg-type,return-value]


def _short(text: str | None) -> str:
    if text is None:
        return "<not serializable>"
    return text if len(text) <= 160 else text[:157] + "..."


def search(
    program: Any,
    algorithm: Algorithm,
    *,
    num_trials: int,
    store: str | os.PathLike[str] | None = None,
    name: str | None = None,
    early_stopping: Any = None,
    objective: str | None = None,
) -> Search:
    """Searches a space with an algorithm; iterate the result to get trials.

    Each trial carries a child (`trial.program`) and its DNA; report its
    reward with `trial.report(value)` (maximized) or a dict of named metrics.
    With `store`, every trial is kept in a SQLite file: running the same
    search again resumes it, replaying finished trials into the algorithm and
    proposing an interrupted trial again, so the trials are exactly those of
    an uninterrupted run with the same seed.

    Args:
        program: the space (a program with hyper-values, `mx.space(...)` or
            `mx.trace(...)`).
        algorithm: an `mx.algorithms` algorithm.
        num_trials: how many trials the study should hold in all.
        store: a study file path (SQLite), or None to keep trials in memory.
        name: the study's name in the file ("default"); nested searches use
            their own names.
        early_stopping: a policy with `should_stop(steps, others)` (see
            `mx.algorithms.MedianStopping`), used by `trial.should_stop()`.
        objective: the metric a single-objective algorithm maximizes when
            reports are dicts (default "reward").

    Raises:
        ValueError: if the study exists for another space or algorithm.

    Examples:
        >>> import morphax as mx
        >>> space = {"x": mx.oneof([1, 2, 3, 4]), "y": mx.floatv(-1.0, 1.0)}
        >>> for trial in mx.search(space, mx.algorithms.Random(seed=0), num_trials=20):
        ...     trial.report(trial.program["x"] - trial.program["y"] ** 2)
    """
    return Search(
        program,
        algorithm,
        num_trials=num_trials,
        store=store,
        name=name,
        early_stopping=early_stopping,
        objective=objective,
    )


__all__ = ["Search", "StoreError", "search"]
