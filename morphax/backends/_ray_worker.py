"""What runs on the Ray side of `mx.backends.Ray`: the trial task and the
channel actor that carries step reports and `should_stop()` to the driver.

Nothing here writes a study: a task returns its trial's outcome as its value
(a :class:`Result`), and the driver tells the search. Ray is imported by the
driver (`_ray.py`) and by Ray's own worker processes, never at morphax import.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import traceback
from dataclasses import dataclass
from typing import Any, NamedTuple

#: How long one `Channel.poll` waits for news before it returns empty.
POLL_S = 1.0


@dataclass(frozen=True)
class Context:
    """What every trial of a search needs, shipped once with `ray.put`."""

    space: Any
    evaluate: Any
    objective: Any
    early_stopping: bool
    threads: int | None  # CPUs a worker is pinned to (XLA sizes its thread pool by them)


class Payload(NamedTuple):
    """One trial, as a task's argument: its DNA, not its program."""

    key: str  # "<number>.<attempt>": unique in a run of the backend
    number: int
    dna: Any
    steps: list[tuple[int, dict[str, float]]]
    attempts: int
    checkpoint_dir: str | None


class Result(NamedTuple):
    """A task's value: how the trial ended, and what `evaluate` returned or raised."""

    outcome: Any  # morphax.tuning.Outcome
    returned: Any  # None once the trial reported
    error: BaseException | None
    text: str | None  # the error's traceback, as the worker formatted it
    sent: int  # step reports sent through the channel


class Channel:
    """The actor (`num_cpus=0`) between a search's workers and its driver.

    Workers call `report` for each step report and `ask_stop` for
    `trial.should_stop()`; the driver calls `poll` for what arrived and
    `answer` with the early-stopping policy's decisions. It also hands out
    CPU slots, so that workers on one node pin distinct CPUs.
    """

    def __init__(self, box: list[Any]) -> None:
        self.box = box  # [the search's Context, put once]
        self.reports: list[tuple[str, int, dict[str, float]]] = []
        self.questions: list[tuple[str, int]] = []
        self.waiting: dict[tuple[str, int], asyncio.Future[bool]] = {}
        self.news = asyncio.Event()
        self.slots: dict[str, dict[int, int]] = {}  # node -> {pid: slot}
        self.pids: dict[str, tuple[str, int]] = {}  # trial key -> (node, pid)

    async def context(self) -> list[Any]:
        return self.box

    async def report(self, key: str, step: int, metrics: dict[str, float]) -> None:
        self.reports.append((key, step, metrics))
        self.news.set()

    async def ask_stop(self, key: str, count: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[(key, count)] = future
        self.questions.append((key, count))
        self.news.set()
        return await future

    async def poll(
        self, timeout: float = POLL_S
    ) -> tuple[list[tuple[str, int, dict[str, float]]], list[tuple[str, int]]]:
        if not self.reports and not self.questions:
            self.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), timeout)
        reports, questions = self.reports, self.questions
        self.reports, self.questions = [], []
        return reports, questions

    async def answer(self, answers: list[tuple[str, int, bool]]) -> None:
        for key, count, stop in answers:
            future = self.waiting.pop((key, count), None)
            if future is not None and not future.done():
                future.set_result(stop)

    async def slot(self, key: str, node: str, pid: int) -> int:
        """The CPU slot of worker `pid` on `node`: its own, or the lowest free."""
        taken = self.slots.setdefault(node, {})
        self.pids[key] = (node, pid)
        if pid not in taken:
            used = set(taken.values())
            taken[pid] = next(i for i in range(len(taken) + 1) if i not in used)
        return taken[pid]

    async def forget(self, key: str) -> None:
        """Frees the slot of the worker that ran `key` (it died)."""
        node, pid = self.pids.pop(key, ("", -1))
        self.slots.get(node, {}).pop(pid, None)


_CONTEXTS: dict[str, tuple[Context, Any]] = {}  # by run, in a worker process
_PINNED: dict[str, Any] = {}  # "run": the run this process was pinned for
_ALL_CPUS: list[int] = []


def _context(ray: Any, run: str) -> tuple[Context, Any]:
    """The context of run `run` and its channel, fetched once per worker process."""
    found = _CONTEXTS.get(run)
    if found is None:
        _CONTEXTS.clear()  # one search at a time per worker process
        channel = ray.get_actor(run)
        (ref,) = ray.get(channel.context.remote())
        found = _CONTEXTS[run] = (ray.get(ref), channel)
    return found


def pin(ray: Any, threads: int, channel: Any, key: str, run: str) -> None:
    """Pins this worker process to `threads` CPUs of its node, distinct from
    the other workers of the search: XLA sizes its CPU thread pool by the
    affinity mask (its flags no longer do), and the OS keeps two trials on two
    cores from sharing one."""
    if not hasattr(os, "sched_setaffinity"):
        return
    if _PINNED.get("run") == run:
        return
    if not _ALL_CPUS:
        _ALL_CPUS.extend(sorted(os.sched_getaffinity(0)))
    node = ray.get_runtime_context().get_node_id()
    slot = ray.get(channel.slot.remote(key, node, os.getpid()))
    groups = max(1, len(_ALL_CPUS) // threads)
    start = (slot % groups) * threads
    os.sched_setaffinity(0, _ALL_CPUS[start : start + threads])
    _PINNED["run"] = run


def _portable(error: BaseException) -> BaseException:
    """`error`, or a RuntimeError with its text when it does not pickle back."""
    import ray.cloudpickle as cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error} (the exception does not pickle)")
    return error


def run_trial(run: str, payload: Payload) -> Result:
    """The body of one trial's task: `evaluate(trial)` on a live stand-in trial.

    `run` names the run's channel actor, which holds the context: a task's
    arguments are two small values."""
    import ray

    from ..tuning import RemoteSink, outcome, remote_trial

    context, channel = _context(ray, run)
    if context.threads is not None:
        pin(ray, context.threads, channel, payload.key, run)
    sent = 0

    def on_step(step: int, metrics: dict[str, float]) -> None:
        nonlocal sent
        ray.get(channel.report.remote(payload.key, step, metrics))
        sent += 1

    def ask_stop() -> bool:
        return bool(ray.get(channel.ask_stop.remote(payload.key, sent)))

    sink = RemoteSink(
        context.objective,
        on_step=on_step,
        ask_stop=ask_stop,
        early_stopping=context.early_stopping,
    )
    program = context.space.materialize(payload.dna)
    trial = remote_trial(
        payload.number,
        payload.dna,
        program,
        sink=sink,
        steps=payload.steps,
        attempts=payload.attempts,
        checkpoint_dir=payload.checkpoint_dir,
        spec=context.space.spec,
    )
    try:
        returned = context.evaluate(trial)
    except BaseException as e:
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        return Result(outcome(trial), None, _portable(e), text, sent)
    return Result(outcome(trial), None if trial.done else returned, None, None, sent)
