"""The search loop: any algorithm drives it through DNA."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..algorithms import Algorithm
from ..symbolic import DNA, DynamicSpace, Space, from_json, space, to_json
from ._heartbeat import _Heartbeat
from ._records import _program_json, _reward_of, record
from ._storage import MemoryStorage, Storage, StoreError, StudyRow, TrialRow
from ._store import Store
from ._store_owner import owner_token
from ._trial import Objective, Trial

_DEFAULT_LEASE_S = 60.0


class Search:
    """A running search: `ask()` for trials and `tell()` their results, or
    iterate it (see :func:`search`)."""

    def __init__(
        self,
        program: Any,
        algorithm: Algorithm,
        *,
        num_trials: int,
        store: str | os.PathLike[str] | Storage | None,
        name: str | None,
        early_stopping: Any,
        objective: str | None,
        max_attempts: int = 3,
        lease_s: float = _DEFAULT_LEASE_S,
        takeover: bool = False,
    ) -> None:
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"mx.search needs an mx.algorithms.Algorithm, but got {algorithm!r}")
        if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 0:
            raise ValueError(f"`num_trials` must be a non-negative int, but got {num_trials!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"`name` must be a non-empty str, but got {name!r}")
        if objective is not None and (not isinstance(objective, str) or not objective):
            raise TypeError(
                f"`objective` must be the name of a reported metric (a non-empty str), "
                f"but got {objective!r}"
            )
        if isinstance(store, str | os.PathLike) and not os.fspath(store):
            raise ValueError(
                "`store` is an empty path: give a file path like 'study.db', or store=None "
                "to keep the study in memory"
            )
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"`max_attempts` must be an int >= 1, but got {max_attempts!r}")
        if isinstance(lease_s, bool) or not isinstance(lease_s, int | float) or not lease_s > 0:
            raise ValueError(f"`lease_s` must be a positive number of seconds, but got {lease_s!r}")
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
        self.max_attempts = max_attempts
        self.lease_s = float(lease_s)
        self.takeover = bool(takeover)
        self._owns_store = isinstance(store, str | os.PathLike)
        if store is None:
            self.store: Storage = MemoryStorage()
        elif isinstance(store, str | os.PathLike):
            self.store = Store(store)
        else:
            self.store = store
        self.owner = owner_token()  # one per search: host, pid and the process's identity
        self.study: StudyRow | None = None
        self.trials: list[Trial] = []
        self._in_flight: dict[int, Trial] = {}
        self._rerun: list[TrialRow] = []
        self._asked = 0
        self._exhausted = False
        self._state = "new"  # "new" -> "open" -> "closed"
        self._lock = threading.RLock()
        self._heartbeat: _Heartbeat | None = None

    # -- opening: the study, its lease, and the journal replayed -------------------

    def _open(self) -> None:
        if self._state == "open":
            return
        if self._state == "closed":
            raise RuntimeError("this search is closed; call mx.search(...) again to resume it")
        row = self._open_study()
        self.store.acquire_lease(
            row.id, self.name, self.owner, self.lease_s, takeover=self.takeover
        )
        self.study = row
        self._state = "open"
        try:
            self._replay(self.store.trials(row.id))
        except BaseException:
            self.close()
            raise
        self._heartbeat = _Heartbeat(self)
        self._heartbeat.start()

    def _open_study(self) -> StudyRow:
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
                f"search uses {self.algorithm.to_json_value()}; resume with the same algorithm and "
                "seed, or use another study name"
            )
        if row.objective != self.objective.to_json():
            raise ValueError(
                f"study {self.name!r} optimizes {row.objective}, but this search asks for "
                f"{self.objective.to_json()}"
            )
        return row

    def _replay(self, rows: list[TrialRow]) -> None:
        """Rebuilds the algorithm from the study's journal; queues pending trials."""
        events: list[tuple[int, int, TrialRow]] = []
        for r in rows:
            if r.propose_seq is not None:
                events.append((r.propose_seq, 0, r))
            if r.feedback_seq is not None:
                events.append((r.feedback_seq, 1, r))
        events.sort(key=lambda e: (e[0], e[1]))
        dnas = {r.id: from_json(r.dna_json) for r in rows if r.propose_seq is not None}
        journal = [
            ("propose", dnas[r.id])
            if kind == 0
            else ("feedback", dnas[r.id], _reward_of(r, self.objective))
            for _, kind, r in events
        ]
        self.algorithm.setup(self.spec)
        try:
            self.algorithm.replay(journal)
        except ValueError as e:
            raise ValueError(
                f"study {self.name!r} in {self.store.path!r} cannot be resumed exactly: {e}"
            ) from None
        self.trials = [record(r, self.objective) for r in rows if r.status not in _OPEN]
        reset = getattr(self.early_stopping, "reset", None)
        if reset is not None:
            reset()
        for r in rows:  # the stored step reports, again, for an incremental policy
            if r.status != "abandoned":
                for step, metrics in r.steps:
                    self._observe(r.number, step, metrics)
        self._rerun = sorted(
            (r for r in rows if r.status == "pending" and r.propose_seq is not None),
            key=lambda r: r.propose_seq or 0,
        )
        self._asked = sum(1 for r in rows if r.status != "abandoned")

    def _renew(self) -> None:
        with self._lock:
            if self._state == "open" and self.study is not None:
                # A lost lease is reported by the next write, not by this thread.
                with contextlib.suppress(Exception):
                    self.store.renew_lease(self.study.id, self.owner, self.lease_s)

    # -- ask / tell --------------------------------------------------------------------

    def ask(self) -> Trial | None:
        """The next trial to evaluate, or None when the study has all its trials.

        May be called again before earlier trials are told: each call hands out
        another trial. Trials left pending by a crashed run come first, run
        again under their number and DNA (`trial.attempts` counts the runs);
        one that already ran `max_attempts` times is marked failed instead.
        None once `num_trials` trials have been asked for (those in flight
        included) or the algorithm has nothing left to propose.
        """
        with self._lock:
            self._open()
            while self._rerun:
                row = self._rerun.pop(0)
                if row.attempts >= self.max_attempts:
                    self._give_up(row)
                    continue
                attempts = self.store.retry_trial(row.id)
                dna = from_json(row.dna_json)
                return self._hand_out(
                    row.id, row.number, dna, list(row.steps), row.created, attempts
                )
            if self._exhausted or self._asked >= self.num_trials:
                return None
            limit = self.algorithm.max_pending if hasattr(self.algorithm, "max_pending") else None
            if limit is not None and len(self._in_flight) >= limit:
                raise RuntimeError(
                    f"{type(self.algorithm).__name__} takes at most {limit} trials in flight, and "
                    f"{len(self._in_flight)} are: tell one first"
                )
            try:
                dna = self.algorithm.propose()
            except StopIteration:
                self._exhausted = True
                return None
            self._check(dna)
            program = self.space.materialize(dna)
            assert self.study is not None
            row_id, number, _ = self.store.add_trial(
                self.study.id, to_json(dna), _program_json(program)
            )
            self._asked += 1
            return self._hand_out(row_id, number, dna, [], time.time(), 1, program)

    def _hand_out(
        self,
        row_id: int,
        number: int,
        dna: DNA,
        steps: list[Any],
        created: float,
        attempts: int,
        program: Any = None,
    ) -> Trial:
        if program is None:
            program = self.space.materialize(dna)
        trial = Trial(number, dna, program, steps=steps, created=created, _sink=self)
        trial.attempts, trial._row_id = attempts, row_id
        self.trials.append(trial)
        self._in_flight[row_id] = trial
        return trial

    def _give_up(self, row: TrialRow) -> None:
        reason = (
            f"its process died {row.attempts} times (max_attempts={self.max_attempts}) before it "
            "reported; it is not run again"
        )
        self.store.finish_trial(row.id, "failed", None, reason)
        self.algorithm.feedback(from_json(row.dna_json), None)
        failed = record(
            TrialRow(
                row.id,
                row.number,
                row.dna_json,
                row.program_json,
                "failed",
                None,
                reason,
                row.created,
                time.time(),
                list(row.steps),
                row.attempts,
            ),  # fmt: skip
            self.objective,
        )
        self.trials.append(failed)

    def tell(self, trial: Trial, result: float | dict[str, float] | None) -> None:
        """Reports the result of a trial handed out by :meth:`ask`, in any order.

        `result` is the reward (a float) or a dict of metrics, as for
        `trial.report(result)`; None marks the trial failed.
        """
        if not isinstance(trial, Trial) or trial._sink is not self:
            raise ValueError(f"{trial!r} was not handed out by this search's ask()")
        if result is None:
            trial.fail("told None")
        else:
            trial.report(result)

    # -- the sink the live trials report to ------------------------------------------

    def on_step(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self.store.add_report(trial._row_id, step, metrics)
            self._observe(trial.id, step, metrics)

    def _stop_key(self) -> str:
        return self.objective.names[0] if self.objective.names else self.objective.name

    def _observe(self, number: int, step: int, metrics: dict[str, float]) -> None:
        """Feeds a step report to an incremental early-stopping policy."""
        observe = getattr(self.early_stopping, "observe", None)
        value = metrics.get(self._stop_key())
        if observe is not None and value is not None:
            observe(number, step, value)

    def on_finish(self, trial: Trial) -> None:
        with self._lock:
            trial.finished = time.time()
            self.store.finish_trial(trial._row_id, trial.status, trial.metrics, trial.reason)
            self._in_flight.pop(trial._row_id, None)
            self.algorithm.feedback(
                trial.dna, trial.reward if trial.status == "completed" else None
            )

    def should_stop(self, trial: Trial) -> bool:
        stop = getattr(self.early_stopping, "stop", None)
        if stop is not None:  # incremental: the cost does not grow with the study
            return bool(stop(trial.id))
        key = self._stop_key()
        own = [(s, m[key]) for s, m in trial.steps if key in m]
        others = [
            [(s, m[key]) for s, m in t.steps if key in m] for t in self.trials if t is not trial
        ]
        return bool(self.early_stopping.should_stop(own, others))

    # -- the serial loop and closing ------------------------------------------------------

    def __iter__(self) -> Iterator[Trial]:
        if self._state != "new":
            raise RuntimeError("a Search runs once; call mx.search(...) again to resume it")
        return self._serial()

    def _serial(self) -> Iterator[Trial]:
        try:
            while (trial := self.ask()) is not None:
                yield trial
                if not trial.done:
                    raise RuntimeError(
                        f"trial #{trial.id} of study {self.name!r} was left without a report: "
                        "call trial.report(value), trial.skip(reason) or trial.fail(reason) before "
                        "the loop moves on (it stays pending and runs again on resume)"
                    )
        finally:
            self.close()

    def close(self) -> None:
        """Gives up the study's lease and closes a store this search opened.

        Trials still in flight stay pending: a later search of the study runs
        them again. Closing twice does nothing.
        """
        with self._lock:
            if self._state == "closed":
                return
            was_open, self._state = self._state == "open", "closed"
        if self._heartbeat is not None:
            self._heartbeat.stop.set()
        if was_open and self.study is not None:
            with contextlib.suppress(Exception):
                self.store.release_lease(self.study.id, self.owner)
        if self._owns_store:
            self.store.close()  # merges the write-ahead log into the file

    def __enter__(self) -> Search:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self._state == "open" and self._heartbeat is not None:
                self._heartbeat.stop.set()

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


_OPEN = ("pending", "abandoned")


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
    max_attempts: int = 3,
    lease_s: float = _DEFAULT_LEASE_S,
    takeover: bool = False,
) -> Search:
    """Searches a space with an algorithm: `ask()` and `tell()`, or iterate.

    Each trial carries a child (`trial.program`) and its DNA; report its
    reward with `trial.report(value)` (maximized) or a dict of named metrics,
    or `search.tell(trial, value)`. `for trial in search:` asks for one trial
    at a time; `search.ask()` may be called again before earlier trials are
    told (trials in flight, e.g. on several workers), and tells may come in any
    order.

    With `store`, every trial is kept in a SQLite file, with a journal of the
    order in which the algorithm saw each proposal and each result. Running the
    same search again resumes it: the journal is replayed into the algorithm,
    trials that were in flight run again under their numbers and DNA, and the
    study goes on exactly as an uninterrupted run with the same finishing order.

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
        max_attempts: how many times a trial whose process died is run in all
            before it is marked failed.
        lease_s: one search writes a study at a time: it holds a lease that it
            renews while it runs; another search may take the study over once
            the lease has not been renewed for this many seconds.
        takeover: take the study's lease at once, even from a live search (an
            operator's decision, e.g. after moving a study to another host).

    Raises:
        ValueError: if the study exists for another space or algorithm, or
            its journal does not replay.
        StoreError: if the file is not a study store, or another search holds
            the study's lease.

    Examples:
        >>> import morphax as mx
        >>> space = {"x": mx.oneof([1, 2, 3, 4]), "y": mx.floatv(-1.0, 1.0)}
        >>> for trial in mx.search(space, mx.algorithms.Random(seed=0), num_trials=20):
        ...     trial.report(trial.program["x"] - trial.program["y"] ** 2)

        Several trials in flight, told in any order:

        >>> s = mx.search(space, mx.algorithms.RegularizedEvolution(seed=0), num_trials=8)
        >>> a, b = s.ask(), s.ask()
        >>> s.tell(b, 1.0); s.tell(a, 0.5)
        >>> while (t := s.ask()) is not None:
        ...     s.tell(t, float(t.program["x"]))
        >>> s.close(); len(s.trials)
        8
    """
    return Search(
        program,
        algorithm,
        num_trials=num_trials,
        store=store,
        name=name,
        early_stopping=early_stopping,
        objective=objective,
        max_attempts=max_attempts,
        lease_s=lease_s,
        takeover=takeover,
    )


__all__ = ["Search", "StoreError", "search"]
