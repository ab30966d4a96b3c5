"""Opening a study and replaying its journal: the half of the search loop that
turns stored rows back into an algorithm's state, and answers duplicates."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from typing import Any

from .._typing import Reward
from ..algorithms import Algorithm
from ..symbolic import DNA, DynamicSpace, Space, from_json, to_json
from ._options import DUPLICATE_REASON, MAX_DUPLICATES_IN_A_ROW, duplicate_of
from ._records import _program_json, _reward_of, record
from ._storage import Storage, StudyRow, TrialRow
from ._trial import Objective, Trial


class _Journal:
    """The study-facing methods of :class:`Search` (a mixin)."""

    space: Space | DynamicSpace
    spec: Any
    algorithm: Algorithm
    name: str
    store: Storage
    objective: Objective
    early_stopping: Any
    num_trials: int
    max_attempts: int
    duplicates: str
    trials: list[Trial]
    _row: StudyRow | None
    _rerun: list[TrialRow]
    _asked: int
    _exhausted: bool
    _evaluated: dict[DNA, TrialRow | Trial]
    _dup_run: int
    _queue: list[DNA]
    _stored_enqueued: Counter[DNA]
    _lock: Any

    # -- early stopping: step reports, also the stored ones on a resume -------------

    def _stop_key(self) -> str:
        return self.objective.names[0] if self.objective.names else self.objective.name

    def _observe(self, number: int, step: int, metrics: dict[str, float]) -> None:
        """Feeds a step report to an incremental early-stopping policy."""
        observe = getattr(self.early_stopping, "observe", None)
        value = metrics.get(self._stop_key())
        if observe is not None and value is not None:
            observe(number, step, self._stop_sign * value)

    @property
    def _stop_sign(self) -> float:
        """Early stopping maximizes: the first objective, negated when minimized."""
        return -1.0 if self.objective.directions[0] == "minimize" else 1.0

    def should_stop(self, trial: Trial) -> bool:
        stop = getattr(self.early_stopping, "stop", None)
        if stop is not None:  # incremental: the cost does not grow with the study
            return bool(stop(trial.id))
        key, sign = self._stop_key(), self._stop_sign
        own = [(s, sign * m[key]) for s, m in trial.steps if key in m]
        others = [
            [(s, sign * m[key]) for s, m in t.steps if key in m]
            for t in self.trials
            if t is not trial
        ]
        return bool(self.early_stopping.should_stop(own, others))

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
            import json

            absent = object()

            def show(value: Any) -> str:
                text = "(absent)" if value is absent else json.dumps(value)
                return text if len(text) <= 200 else text[:197] + "..."

            def diff(old: Any, new: Any, path: str, out: list[str]) -> None:
                """The first paths where two spaces' JSON trees differ, old and new values."""
                if len(out) >= 4 or old == new:
                    return
                if isinstance(old, dict) and isinstance(new, dict):
                    typed = "$type" in old and old.get("$type") == new.get("$type")
                    for k in [*old, *(k for k in new if k not in old)]:
                        skip = typed and k in ("fields", "items")  # containers, not decisions
                        sub = path if skip else f"{path}.{k}" if path else str(k)
                        diff(old.get(k, absent), new.get(k, absent), sub, out)
                elif isinstance(old, list) and isinstance(new, list):
                    for i in range(max(len(old), len(new))):
                        a = old[i] if i < len(old) else absent
                        b = new[i] if i < len(new) else absent
                        diff(a, b, f"{path}[{i}]", out)
                else:
                    out.append(f"{path or 'the space'}: {show(old)} -> {show(new)}")

            changes: list[str] = []
            if not unknown:
                diff(
                    json.loads(row.space_json or "null"),
                    json.loads(space_json or "null"),
                    "",
                    changes,
                )
            what = (
                "{" + "; ".join(changes[:3]) + ("; ..." if len(changes) > 3 else "") + "}"
                if changes
                else _short(row.space_json)
            )
            theirs = "" if changes else f": {_short(space_json)}"
            raise ValueError(
                f"study {self.name!r} in {self.store.path!r} was made for another space "
                f"(spec {row.spec_fingerprint}: {what}); this search's space is "
                f"spec {self.spec.fingerprint}{theirs}; use another study name, or the same "
                "space (and settings) to resume it"
            )
        if row.algorithm != self.algorithm.to_json_value():
            raise ValueError(
                f"study {self.name!r} in {self.store.path!r} was run with {row.algorithm}, but this "
                f"search uses {self.algorithm.to_json_value()}; resume with the same algorithm and "
                "seed, or use another study name"
            )
        if Objective.from_json(row.objective) != self.objective:
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
        # An enqueued trial (no propose_seq) has a feedback event and no propose event:
        # the algorithm is fed a DNA it did not propose, as in the run that wrote it.
        dnas = {r.id: from_json(r.dna_json) for r in rows}
        by_number = {r.number: r for r in rows}
        journal = [
            ("propose", dnas[r.id])
            if kind == 0
            else ("feedback", dnas[r.id], self.objective.signed(self._answer(r, by_number)))
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
        for t in self.trials:
            t._spec = self.spec
        self._evaluated = {}
        for r in rows:
            if r.status == "completed":
                self._evaluated.setdefault(dnas[r.id], r)
        self._stored_enqueued = Counter(dnas[r.id] for r in rows if r.propose_seq is None)
        reset = getattr(self.early_stopping, "reset", None)
        if reset is not None:
            reset()
        for r in rows:  # the stored step reports, again, for an incremental policy
            if r.status != "abandoned":
                for step, metrics in r.steps:
                    self._observe(r.number, step, metrics)
        self._rerun = sorted(  # enqueued trials first, as they were asked first
            (r for r in rows if r.status == "pending"),
            key=lambda r: (r.propose_seq is not None, r.propose_seq or r.number),
        )
        self._asked = sum(
            1 for r in rows if r.status != "abandoned" and duplicate_of(r.reason) is None
        )

    # -- warm starts ------------------------------------------------------------------

    def enqueue(self, trial: Any) -> DNA:
        """Queues a known DNA, or a child program of the space (encoded with
        `space.encode`), to be evaluated before the algorithm's proposals.

        The trial counts toward `num_trials`; the algorithm is fed its result
        as a trial it did not propose (an evolution's population takes it in).
        A resumed search makes the same `enqueue` calls again: the study's
        journal keeps which trials were enqueued, so an enqueued DNA that the
        study already holds is not evaluated again (a second `enqueue` of the
        same DNA is a second trial).

        Returns:
            The DNA queued.

        Raises:
            ValueError: if the DNA does not fit the space, or the program is
                not a child of it.

        Examples:
            >>> import morphax as mx
            >>> space = {"x": mx.oneof([1, 2, 3]), "lr": mx.floatv(0.0, 1.0)}
            >>> s = mx.search(space, mx.algorithms.Random(seed=0), num_trials=3)
            >>> s.enqueue({"x": 2, "lr": 0.5})
            DNA([1, 0.5])
            >>> s.ask().program
            {'x': 2, 'lr': 0.5}
        """
        if isinstance(trial, DNA):
            try:
                self.spec.validate(trial)
            except ValueError as e:
                raise ValueError(f"search.enqueue: the DNA does not fit the space: {e}") from None
            dna = trial
        else:
            try:
                dna = self.space.encode(trial)
            except ValueError as e:
                raise ValueError(
                    f"search.enqueue takes a DNA or a child program of the search's space: {e}"
                ) from None
        with self._lock:
            self._queue.append(dna)
        return dna

    def _next_enqueued(self) -> DNA | None:
        """The next enqueued DNA this study does not hold yet (after a resume,
        the study's enqueued trials answer the same enqueue calls)."""
        while self._queue:
            dna = self._queue.pop(0)
            if self._stored_enqueued[dna] > 0:
                self._stored_enqueued[dna] -= 1
                continue
            return dna
        return None

    def _answer(self, row: TrialRow, by_number: dict[int, TrialRow]) -> Reward:
        """The reward the algorithm was fed for `row` (a duplicate: its original's)."""
        number = duplicate_of(row.reason) if row.status == "skipped" else None
        if number is not None and number in by_number:
            return _reward_of(by_number[number], self.objective)
        return _reward_of(row, self.objective)

    def _check(self, dna: Any) -> None:
        """Refuses a proposal that is not a DNA of the search's spec."""
        if not isinstance(dna, DNA):
            raise TypeError(f"{self.algorithm!r} proposed {dna!r}, which is not a DNA")
        try:
            self.spec.validate(dna)
        except ValueError as e:
            raise ValueError(f"{self.algorithm!r} proposed an invalid DNA: {e}") from None

    def _answered(self, dna: DNA) -> bool:
        """With duplicates="reuse": a DNA the study completed before is answered
        with that trial's result (a skipped row naming it) without running."""
        seen = self._evaluated.get(dna) if self.duplicates == "reuse" else None
        if seen is None:
            return False
        assert self._row is not None
        number = seen.number if isinstance(seen, TrialRow) else seen.id
        reward = seen.reward if isinstance(seen, Trial) else _reward_of(seen, self.objective)
        program = self.space.materialize(dna)
        row_id, dup_number, _ = self.store.add_trial(
            self._row.id, to_json(dna), _program_json(program)
        )
        reason = DUPLICATE_REASON.format(number=number)
        self.store.finish_trial(row_id, "skipped", None, reason)
        self.algorithm.feedback(dna, self.objective.signed(reward))
        now = time.time()
        self.trials.append(
            Trial(
                dup_number,
                dna,
                program,
                "skipped",
                reason=reason,
                created=now,
                finished=now,
                _spec=self.spec,
            )
        )
        self._dup_run += 1
        space_size = self.spec.space_size
        distinct = len(self._evaluated)
        if self._dup_run >= MAX_DUPLICATES_IN_A_ROW or distinct >= space_size:
            self._exhausted = True
            warnings.warn(
                f"study {self.name!r}: the search ends with {self._asked} of {self.num_trials} "
                f"trials, because the space looks exhausted: {distinct} distinct DNA of "
                f"{space_size} are evaluated and the algorithm proposed {self._dup_run} "
                "duplicate(s) in a row; pass duplicates='rerun' to evaluate duplicates again",
                UserWarning,
                stacklevel=4,
            )
        return True

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


_OPEN = ("pending", "abandoned")


def _short(text: str | None) -> str:
    if text is None:
        return "<not serializable>"
    return text if len(text) <= 160 else text[:157] + "..."
