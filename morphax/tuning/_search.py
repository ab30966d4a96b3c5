"""The search loop: any algorithm drives it through DNA."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..algorithms import Algorithm
from ..backends import Backend, Evaluate, Local
from ..symbolic import DNA, DynamicSpace, Space, from_json, space, to_json
from ._heartbeat import _Heartbeat
from ._journal import _Journal
from ._options import ProgressBar, check_catch, check_options, duplicate_of, interactive
from ._parallel import _Parallel
from ._records import _program_json, best_trials
from ._storage import MemoryStorage, Storage, StoreError, StudyRow, TrialRow
from ._store import Store
from ._store_owner import owner_token
from ._study import Study
from ._trial import Objective, Trial, checkpoint_dir, directions_of

_DEFAULT_LEASE_S = 60.0


class Search(_Journal, _Parallel):
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
        direction: str | tuple[str, ...] = "maximize",
        duplicates: str = "reuse",
        progress: bool | None = None,
        max_attempts: int = 3,
        lease_s: float = _DEFAULT_LEASE_S,
        takeover: bool = False,
        catch: tuple[type[BaseException], ...] = (),
    ) -> None:
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"mx.search needs an mx.algorithms.Algorithm, but got {algorithm!r}")
        check_options(
            num_trials=num_trials,
            name=name,
            objective=objective,
            store=store,
            max_attempts=max_attempts,
            lease_s=lease_s,
            early_stopping=early_stopping,
            duplicates=duplicates,
            progress=progress,
        )
        self.catch = check_catch(catch)
        self.space: Space | DynamicSpace = space(program)
        self.spec = self.space.spec
        self.algorithm = algorithm
        self.num_trials = num_trials
        self.name = name or "default"
        self.early_stopping = early_stopping
        names = algorithm.objectives
        self.objective = Objective(
            objective or (names[0] if names else "reward"),
            names,
            directions_of(direction, len(names) if names else 1),
        )
        self.duplicates = duplicates
        self.progress = interactive() if progress is None else progress
        self._bar: ProgressBar | None = None
        self._evaluated: dict[DNA, TrialRow | Trial] = {}  # completed, for duplicates
        self._dup_run = 0  # duplicates proposed in a row
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
        self._row: StudyRow | None = None
        self.trials: list[Trial] = []
        self._in_flight: dict[int, Trial] = {}
        self._rerun: list[TrialRow] = []
        self._queue: list[DNA] = []  # enqueued, not asked yet
        self._stored_enqueued: Counter[DNA] = Counter()  # the study's enqueued trials
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
        self._row = row
        self._state = "open"
        try:
            self._replay(self.store.trials(row.id))
        except BaseException:
            self.close()
            raise
        if self.progress:
            self._bar = ProgressBar(self.num_trials, self._finished(), f"study {self.name!r}")
        self._heartbeat = _Heartbeat(self)
        self._heartbeat.start()

    def _finished(self) -> int:
        return sum(1 for t in self.trials if t.done and duplicate_of(t.reason) is None)

    def _renew(self) -> None:
        with self._lock:
            if self._state == "open" and self._row is not None:
                # A lost lease is reported by the next write, not by this thread.
                with contextlib.suppress(Exception):
                    self.store.renew_lease(self._row.id, self.owner, self.lease_s)

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
                    row.id, row.number, dna, list(row.steps), time.time(), attempts
                )
            if self._exhausted or self._asked >= self.num_trials:
                return None
            limit = self.algorithm.max_pending if hasattr(self.algorithm, "max_pending") else None
            if limit is not None and len(self._in_flight) >= limit:
                raise RuntimeError(
                    f"{type(self.algorithm).__name__} takes at most {limit} trials in flight, and "
                    f"{len(self._in_flight)} are: tell one first"
                )
            if (dna := self._next_enqueued()) is not None:  # warm starts: no propose event
                return self._add(dna, proposed=False)
            while True:
                try:
                    dna = self.algorithm.propose()
                except StopIteration:
                    self._exhausted = True
                    return None
                self._check(dna)
                if not self._answered(dna):
                    break
                if self._exhausted:
                    return None
            self._dup_run = 0
            return self._add(dna)

    def _add(self, dna: DNA, *, proposed: bool = True) -> Trial:
        program = self.space.materialize(dna)
        assert self._row is not None
        row_id, number, _ = self.store.add_trial(
            self._row.id, to_json(dna), _program_json(program), proposed=proposed
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
        trial = Trial(
            number, dna, program, steps=steps, created=created, _sink=self, _spec=self.spec
        )
        trial.attempts, trial._row_id = attempts, row_id
        trial.checkpoint_dir = checkpoint_dir(self.store.path, self.name, number)
        self.trials.append(trial)
        self._in_flight[row_id] = trial
        return trial

    def tell(
        self, trial: Trial, result: float | dict[str, float] | None, *, started: float | None = None
    ) -> None:
        """Reports the result of a trial handed out by :meth:`ask`, in any order.

        `result` is the reward (a float) or a dict of metrics, as for
        `trial.report(result)`; None marks the trial failed. `started`, a past
        `time.time()`, dates the trial's run from when its work began (before
        :meth:`ask`, as a one-shot search's epoch); by default, from :meth:`ask`.
        """
        if not isinstance(trial, Trial) or trial._sink is not self:
            raise ValueError(f"{trial!r} was not handed out by this search's ask()")
        if started is not None:
            self._start_at(trial, started)
        if result is None:
            trial.fail("told None")
        else:
            trial.report(result)

    # -- the sink the live trials report to ------------------------------------------

    def on_step(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self.store.add_report(trial._row_id, step, metrics)
            self._observe(trial.id, step, metrics)

    def on_finish(self, trial: Trial) -> None:
        with self._lock:
            trial.finished = time.time()
            self.store.finish_trial(trial._row_id, trial.status, trial.metrics, trial.reason)
            self._in_flight.pop(trial._row_id, None)
            completed = trial.status == "completed"
            self.algorithm.feedback(
                trial.dna, self.objective.signed(trial.reward) if completed else None
            )
            if completed:
                self._evaluated.setdefault(trial.dna, trial)
            if self._bar is not None:
                self._bar.update(self._finished(), self._best_text(), f"#{trial.id} {trial.status}")

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

    def run(
        self,
        evaluate: Evaluate,
        *,
        backend: Backend | None = None,
        catch: tuple[type[BaseException], ...] | None = None,
    ) -> None:
        """Runs the whole search: `evaluate(trial)` for each trial, then closes it.

        `evaluate` reports through `trial.report(...)` (step reports,
        `trial.should_stop()`) or returns the result (a float or a dict of
        metrics), which is reported for it. An exception that `catch` names
        marks the trial failed with its traceback and the search goes on; any
        other ends the search, re-raised, with the trial left pending (running
        the search again resumes the study and runs it again).

        Args:
            evaluate: a function of a trial (one a worker can run, for remote backends).
            backend: where trials run; `mx.backends.Local()` (default): here, one at a
                time; `mx.backends.Ray(...)`: on Ray workers, several at once.
            catch: exception types that fail a trial instead of ending the
                search; None (default): the `catch` given to `mx.search`.
        """
        for _ in self.map(evaluate, backend=backend, catch=catch):
            pass

    def map(
        self,
        evaluate: Evaluate,
        *,
        backend: Backend | None = None,
        catch: tuple[type[BaseException], ...] | None = None,
    ) -> Iterator[Trial]:
        """Like :meth:`run`, and yields each trial once it is finished (in
        finishing order); stopping the iteration early closes the search."""
        catch = self.catch if catch is None else check_catch(catch)
        backend = Local() if backend is None else backend
        if not callable(getattr(backend, "map", None)):
            raise TypeError(
                "`backend` must be an mx.backends backend (mx.backends.Local() or "
                f"mx.backends.Ray(...)), but got {backend!r}"
            )
        if not callable(evaluate):
            raise TypeError(f"`evaluate` must be a function of a trial, but got {evaluate!r}")
        return self._mapped(backend, evaluate, catch)

    def _mapped(
        self, backend: Backend, evaluate: Evaluate, catch: tuple[type[BaseException], ...]
    ) -> Iterator[Trial]:
        try:
            yield from backend.map(self, evaluate, catch=catch)
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
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if was_open and self._row is not None:
            with contextlib.suppress(Exception):
                self.store.release_lease(self._row.id, self.owner)
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

    # -- results -------------------------------------------------------------------

    def best(self) -> Trial | list[Trial] | None:
        """The best completed trial so far in the search's direction (None before
        any); with several objectives, the Pareto front (a list)."""
        front = best_trials(self.trials, self.objective, None)
        if self.objective.names is not None:
            return front
        return front[0] if front else None

    def _best_text(self) -> str | None:
        best = self.best()
        if isinstance(best, list):
            return f"{len(best)} on the front" if best else None
        return None if best is None else f"{best.reward:.4g}"

    def study(self) -> Study:
        """The study this search writes, as :func:`mx.load_study` reads one (also
        for a search without a store): repr, `best(k)`, `to_dataframe()`, plots."""
        with self._lock:
            if self._state == "new":
                self._open()
            return Study(self.store, self.name, spec=self.spec)


def search(
    program: Any,
    algorithm: Algorithm,
    *,
    num_trials: int,
    store: str | os.PathLike[str] | None = None,
    name: str | None = None,
    early_stopping: Any = None,
    objective: str | None = None,
    direction: str | tuple[str, ...] = "maximize",
    duplicates: str = "reuse",
    progress: bool | None = None,
    max_attempts: int = 3,
    lease_s: float = _DEFAULT_LEASE_S,
    takeover: bool = False,
    catch: tuple[type[BaseException], ...] = (),
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
        objective: the metric a single-objective algorithm optimizes when
            reports are dicts (default "reward").
        direction: "maximize" (default) or "minimize", or one per objective
            of a multi-objective algorithm (`("maximize", "minimize")`);
            stored with the study. Algorithms maximize: they are fed the
            negated value of a minimized objective.
        duplicates: "reuse" (default): a DNA that the study already completed is
            answered with that trial's result without running your code (a
            skipped trial that names it, not counted in `num_trials`), and the
            algorithm proposes again; a search whose proposals are all
            duplicates (an exhausted space) ends with a warning. "rerun":
            duplicates are evaluated again (noisy objectives).
        progress: a tqdm bar with the best result so far; None (default):
            on in a notebook, a REPL or a terminal, off otherwise.
        max_attempts: how many times a trial whose process died is run in all
            before it is marked failed.
        lease_s: one search writes a study at a time: it holds a lease that it
            renews while it runs; another search may take the study over once
            the lease has not been renewed for this many seconds.
        takeover: take the study's lease at once, even from a live search (an
            operator's decision, e.g. after moving a study to another host).
        catch: exception types raised by `evaluate` that `search.run(...)` /
            `search.map(...)` turn into a failed trial (its reason the
            traceback) instead of ending the search (the default for their
            own `catch`). A `for trial in search:` body is your own code: catch
            there yourself and call `trial.fail(...)`.

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
        direction=direction,
        duplicates=duplicates,
        progress=progress,
        max_attempts=max_attempts,
        lease_s=lease_s,
        takeover=takeover,
        catch=catch,
    )


__all__ = ["Search", "StoreError", "search"]
