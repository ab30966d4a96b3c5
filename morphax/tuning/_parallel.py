"""The methods of :class:`Search` that backends running trials in parallel
need: a trial run again after its worker died, and study options that a
resumed search must match."""

from __future__ import annotations

import math
import time
from typing import Any

from ._storage import Storage, StudyRow
from ._trial import Trial


class _Parallel:
    """Backend-facing methods of :class:`Search` (a mixin)."""

    name: str
    store: Storage
    trials: list[Trial]
    _row: StudyRow | None
    _in_flight: dict[int, Trial]
    _rerun: list[Any]
    _lock: Any

    def _open(self) -> None: ...

    def _start_at(self, trial: Trial, started: float) -> None:
        """Dates a trial in flight from `started` (a past `time.time()`), when
        its work began before it was asked for."""
        ok = isinstance(started, int | float) and not isinstance(started, bool)
        if not (ok and math.isfinite(started) and 0 < started <= time.time()):
            raise ValueError(
                "`started` must be a time.time() of the past (when the trial's work "
                f"began), but got started={started!r} for trial #{trial.id}"
            )
        if trial.done:
            raise ValueError(f"trial #{trial.id} is finished: `started` dates a live trial")
        with self._lock:
            self.store.set_trial_start(trial._row_id, float(started))
        trial.created = float(started)

    def retry(self, trial: Trial) -> int:
        """Counts one more attempt of a trial in flight whose run was lost (its
        worker died): the trial stays in flight under its number and DNA, its
        run starts now. Returns `trial.attempts`.

        Raises:
            ValueError: if the trial is not in flight in this search.

        Examples:
            >>> import morphax as mx
            >>> s = mx.search({"x": mx.oneof([1, 2])}, mx.algorithms.Random(seed=0), num_trials=1)
            >>> t = s.ask()
            >>> s.retry(t)
            2
            >>> s.tell(t, 1.0); t.attempts, t.status
            (2, 'completed')
        """
        with self._lock:
            if trial.done or self._in_flight.get(trial._row_id) is not trial:
                raise ValueError(
                    f"search.retry takes a trial in flight in this search, but got {trial!r}"
                )
            trial.attempts = self.store.retry_trial(trial._row_id)
            trial.created = time.time()
            return trial.attempts

    def claim_option(self, name: str, value: str, *, fix: str) -> None:
        """Stores `value` as the study's option `name`, or checks that the
        study holds that value: a backend's setting that decides the study
        (an ordered search's window) must not change across resumes.

        A study that has trials but not the option was run without it, and is
        refused too.

        Raises:
            ValueError: naming the study, the stored value and `fix`.
        """
        with self._lock:
            self._open()
            assert self._row is not None
            stored = self.store.option(self._row.id, name)
            if stored is None and (self.trials or self._rerun):
                raise ValueError(
                    f"study {self.name!r} in {self.store.path!r} has {len(self.trials) + len(self._rerun)} "
                    f"trials run without {name}; this search sets {name}={value}: {fix}"
                )
            if stored is not None and stored != value:
                raise ValueError(
                    f"study {self.name!r} in {self.store.path!r} was run with {name}={stored}, "
                    f"but this search has {name}={value}: {fix}"
                )
            if stored is None:
                self.store.set_option(self._row.id, name, value)
