"""Parallel trials on Ray: one driver, N workers, nothing lost."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._base import Evaluate, settle
from ._ray_worker import Channel, Context, Payload, Result, run_trial

if TYPE_CHECKING:
    from ..tuning import Search, Trial

ERRORS = ("raise", "fail")
_INSTALL = "pip install 'morphax[ray]'"
#: The study option that holds an ordered search's window.
WINDOW_OPTION = "ordered_window"


def import_ray() -> Any:
    """The `ray` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            f"mx.backends.Ray needs Ray, which is not installed ({e}); install it with "
            f"{_INSTALL}, or run trials in this process with mx.backends.Local()"
        ) from None
    return ray


def _number(value: Any, name: str, *, low: float, strict: bool, fix: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        rule = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"`{name}` must be a number {rule}, but got {value!r}; {fix}")
    return float(value)


def _count(value: Any, name: str, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, but got {value!r}; {fix}")
    return value


@dataclass
class _Run:
    """A trial in flight on the cluster, and how often its worker died."""

    trial: Trial
    key: str
    deaths: int = 0


@dataclass
class _Driver:
    """The state of one `Ray.map` call: tasks in flight, the channel, and
    (ordered mode) the trials waiting to be told in trial order."""

    ray: Any
    search: Search
    channel: Any
    run: str  # the channel actor's name
    task: Any  # the remote function, with the trial's resources
    running: dict[Any, _Run] = field(default_factory=dict)  # task ref -> run
    by_key: dict[str, Trial] = field(default_factory=dict)
    drained: Counter[str] = field(default_factory=Counter)  # step reports stored, by key
    order: deque[Trial] = field(default_factory=deque)  # asked, not told (ordered mode)
    ready: dict[int, Callable[[], None]] = field(default_factory=dict)  # id(trial) -> tell

    def submit(self, trial: Trial) -> None:
        key = f"{trial.id}.{trial.attempts}"
        self.submit_run(_Run(trial, key))

    def submit_run(self, run: _Run) -> None:
        t = run.trial
        payload = Payload(run.key, t.id, t.dna, list(t.steps), t.attempts, t.checkpoint_dir)
        ref = self.task.remote(self.run, payload)
        self.running[ref] = run
        self.by_key[run.key] = t

    def handle(self, news: tuple[list[Any], list[Any]]) -> None:
        """Stores step reports that arrived and answers `should_stop()` questions."""
        reports, questions = news
        for key, step, metrics in reports:
            self.drained[key] += 1
            trial = self.by_key.get(key)
            if trial is not None and not trial.done:
                trial.report(metrics, step=step)
        answers = []
        for key, count in questions:
            trial = self.by_key.get(key)
            stop = trial is None or trial.done or trial.should_stop()
            answers.append((key, count, bool(stop)))
        if answers:
            self.channel.answer.remote(answers)

    def cancel(self) -> None:
        for ref in self.running:  # a task may have finished meanwhile, or the cluster gone
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.running.clear()
        with contextlib.suppress(Exception):
            self.ray.kill(self.channel)


_REMOTE: dict[str, Any] = {}


def _task(ray: Any) -> Any:
    if "task" not in _REMOTE:
        _REMOTE["task"] = ray.remote(max_retries=0)(run_trial)
        _REMOTE["channel"] = ray.remote(num_cpus=0, max_restarts=0)(Channel)
    return _REMOTE["task"]


class Ray:
    """Runs trials on a Ray cluster: `search.run(evaluate, backend=mx.backends.Ray())`.

    The driver (the process calling `run`/`map`) is the only one that opens
    the study: each trial goes to a worker as its DNA (the space is shipped
    once, with `ray.put`), `evaluate(trial)` runs there on a stand-in trial
    whose `report(value, step=...)` and `should_stop()` go through a small
    actor (`num_cpus=0`) that the driver drains into the study and the
    early-stopping policy, and the final report comes back as the task's
    value. A driver killed at any point leaves pending trials, which running
    the same script again re-runs under their numbers (with the same DNA).

    Failures: Ray's own task retries are off, so the study records every
    attempt. A trial whose worker died (SIGKILL, out of memory, a lost node)
    runs again up to `retries` times, then is failed with "worker died: ..."
    and fed back as None. An exception raised by `evaluate` follows `catch`
    of `run`/`map` as on the Local backend: one that `catch` names fails the
    trial with the worker's traceback and the search goes on; any other is
    re-raised in the driver (`errors="raise"`, the default), with the trials
    still in flight cancelled and left pending. `errors="fail"` is
    `catch=(Exception,)`: every exception fails its trial.

    Ordered mode (`ordered=True`): results are fed back in trial order, and
    proposal k waits until the feedback of trials 1..k-W has arrived (W:
    the trials in flight), so the study is a function of the seed and W alone
    for any timing, crash or retry; with W=1 it is the serial study. W is
    stored with the study, and resuming with another W is refused.
    (Early-stopping decisions compare trials running at the same time, which
    depends on timing.) Async mode (the default) feeds each result back as it
    arrives: no worker waits for a slow one.

    CPU threads: each worker process is pinned to its share of the node's
    CPUs (`num_cpus_per_trial`, at least one; `xla_threads` overrides it),
    because XLA sizes its CPU thread pool by the process's CPU affinity:
    two trials on two cores then use a core each instead of both fighting
    over both.

    Args:
        address: the Ray cluster to join ("auto": the one `ray start` runs on
            this host; "ray://host:10001": a remote one); None starts a local
            Ray when this process runs none. A Ray already initialized in this
            process is used as it is.
        num_cpus_per_trial: CPUs Ray reserves for each trial (may be a fraction).
        num_gpus_per_trial: GPUs Ray reserves for each trial (may be a fraction).
        max_in_flight: trials running at once (W); None: the cluster's CPUs
            (or GPUs) divided by the resources per trial, at most the
            algorithm's `max_pending`.
        retries: how many times a trial whose worker died runs again.
        ordered: feed results back in trial order (see above).
        errors: "raise" (default: `catch` decides) or "fail" (every exception
            in `evaluate` fails its trial).
        xla_threads: CPUs (threads) per worker; "auto" (default): from
            `num_cpus_per_trial`; None: leave the worker's affinity alone.

    Raises:
        ImportError: if Ray is not installed (`pip install 'morphax[ray]'`).
        ValueError: for a bad argument, naming it.

    Examples:
        >>> import morphax as mx
        >>> mx.backends.Ray(num_cpus_per_trial=1, max_in_flight=2, ordered=True)
        Ray(address=None, num_cpus_per_trial=1, num_gpus_per_trial=0, max_in_flight=2, retries=1, ordered=True, errors='raise', xla_threads='auto')
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus_per_trial: float = 1,
        num_gpus_per_trial: float = 0,
        max_in_flight: int | None = None,
        retries: int = 1,
        ordered: bool = False,
        errors: str = "raise",
        xla_threads: int | str | None = "auto",
    ) -> None:
        import_ray()
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(
                f"`address` must be None (start a local Ray), 'auto' (the cluster `ray start` "
                f"runs here) or a cluster address like 'ray://head:10001', but got {address!r}"
            )
        _number(num_cpus_per_trial, "num_cpus_per_trial", low=0, strict=True,
                fix="give the CPUs each trial needs, e.g. 1 (or 0.5 to share a core)")  # fmt: skip
        _number(num_gpus_per_trial, "num_gpus_per_trial", low=0, strict=False,
                fix="give the GPUs each trial needs, e.g. 0, 1 or 0.5")  # fmt: skip
        if max_in_flight is not None:
            _count(max_in_flight, "max_in_flight", 1,
                   "give how many trials run at once, or None for the cluster's CPUs per trial")  # fmt: skip
        _count(retries, "retries", 0, "give how many times a trial whose worker died runs again")
        if not isinstance(ordered, bool):
            raise TypeError(f"`ordered` must be True or False, but got {ordered!r}")
        if errors not in ERRORS:
            raise ValueError(
                f"`errors` must be 'raise' (an exception in evaluate ends the search, unless "
                f"`catch` of run/map names it) or 'fail' (it fails the trial and the search "
                f"goes on), but got {errors!r}"
            )
        if xla_threads is not None and xla_threads != "auto":
            _count(xla_threads, "xla_threads", 1,
                   "give the CPUs per worker, 'auto' (from num_cpus_per_trial) or None")  # fmt: skip
        self.address = address
        self.num_cpus_per_trial = num_cpus_per_trial
        self.num_gpus_per_trial = num_gpus_per_trial
        self.max_in_flight = max_in_flight
        self.retries = retries
        self.ordered = ordered
        self.errors = errors
        self.xla_threads = xla_threads

    def __repr__(self) -> str:
        return (
            f"Ray(address={self.address!r}, num_cpus_per_trial={self.num_cpus_per_trial!r}, "
            f"num_gpus_per_trial={self.num_gpus_per_trial!r}, max_in_flight={self.max_in_flight!r}, "
            f"retries={self.retries!r}, ordered={self.ordered!r}, errors={self.errors!r}, "
            f"xla_threads={self.xla_threads!r})"
        )

    # -- setting up: the cluster, the width, the shipped context ------------------------

    def _connect(self) -> Any:
        ray = import_ray()
        if ray.is_initialized():
            if ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
                raise RuntimeError(
                    "mx.backends.Ray was used inside a Ray worker (a trial's evaluate runs a "
                    "search on Ray): a Ray task cannot drive other tasks' studies; run the inner "
                    "search with backend=mx.backends.Local(), or make it the outer search"
                )
            return ray
        if self.address is None:
            ray.init(include_dashboard=False, logging_level="WARNING")
        else:
            ray.init(address=self.address, logging_level="WARNING")
        return ray

    def width(self, ray: Any, search: Search) -> int:
        """W: the trials in flight, from `max_in_flight` or the cluster."""
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if self.num_cpus_per_trial > cpus:
            raise ValueError(
                f"`num_cpus_per_trial`={self.num_cpus_per_trial!r} is more than the Ray "
                f"cluster's {cpus:g} CPUs: no trial could start; ask for at most {cpus:g}, "
                "or add nodes to the cluster"
            )
        if self.num_gpus_per_trial > gpus:
            raise ValueError(
                f"`num_gpus_per_trial`={self.num_gpus_per_trial!r} is more than the Ray "
                f"cluster's {gpus:g} GPUs: no trial could start; ask for at most {gpus:g} "
                "(0: CPU trials), or add GPU nodes"
            )
        if self.max_in_flight is not None:
            width = self.max_in_flight
        else:
            width = int(cpus // self.num_cpus_per_trial)
            if self.num_gpus_per_trial:
                width = min(width, int(gpus // self.num_gpus_per_trial))
        limit = getattr(search.algorithm, "max_pending", None)
        return max(1, width if limit is None else min(width, limit))

    def _threads(self) -> int | None:
        if self.xla_threads is None:
            return None
        if self.xla_threads == "auto":
            return max(1, int(self.num_cpus_per_trial))
        return int(self.xla_threads)

    def _context(self, ray: Any, search: Search, evaluate: Evaluate) -> list[Any]:
        """[the Context, put once]: the channel actor hands it to workers."""
        try:
            ray.cloudpickle.dumps(evaluate)
        except Exception as e:
            raise TypeError(
                f"`evaluate` must be picklable to run on Ray workers, but {evaluate!r} is not "
                f"({type(e).__name__}: {e}); define it at module level, or keep open files, "
                "locks, connections and the search itself out of what it refers to"
            ) from None
        context = Context(
            search.space,
            evaluate,
            search.objective,
            search.early_stopping is not None,
            self._threads(),
        )
        return [ray.put(context)]  # in a list: a reference, not the value

    # -- the driver loop ---------------------------------------------------------------

    def map(
        self,
        search: Search,
        evaluate: Evaluate,
        *,
        catch: tuple[type[BaseException], ...],
    ) -> Iterator[Trial]:
        ray = self._connect()
        width = self.width(ray, search)
        if self.ordered:
            search.claim_option(
                WINDOW_OPTION,
                str(width),
                fix="an ordered study's results depend on its window W (trials in flight); "
                "resume it with max_in_flight set to the stored W, with ordered=False, or use "
                "another study name",
            )
        box = self._context(ray, search, evaluate)
        if self.errors == "fail":
            catch = (Exception,)
        task = _task(ray).options(
            num_cpus=self.num_cpus_per_trial, num_gpus=self.num_gpus_per_trial
        )
        run = f"morphax-{uuid.uuid4().hex}"
        channel = _REMOTE["channel"].options(name=run).remote(box)
        driver = _Driver(ray, search, channel, run, task)
        try:
            yield from self._drive(driver, width, catch)
        finally:
            driver.cancel()

    def _drive(
        self, d: _Driver, width: int, catch: tuple[type[BaseException], ...]
    ) -> Iterator[Trial]:
        ray, search = d.ray, d.search
        poll = d.channel.poll.remote()
        exhausted = False

        def fill() -> None:
            """Asks for trials up to W in flight (ordered: W asked and not told)."""
            nonlocal exhausted
            while not exhausted and (len(d.order) if self.ordered else len(d.running)) < width:
                trial = search.ask()
                if trial is None:
                    exhausted = True
                    return
                d.submit(trial)
                if self.ordered:
                    d.order.append(trial)

        while True:
            fill()
            if not d.running:
                return
            ready, _ = ray.wait([poll, *d.running], num_returns=1)
            if ready[0] is poll or ready[0] == poll:
                d.handle(ray.get(poll))
                poll = d.channel.poll.remote()
                continue
            ref = ready[0]
            run = d.running.pop(ref)
            try:
                result: Result = ray.get(ref)
            except ray.exceptions.RayTaskError:
                raise  # the task itself failed (not evaluate): a setup problem to fix
            except ray.exceptions.RayError as e:
                tell = self._died(d, run, e)
                if tell is None:
                    continue
            else:
                while d.drained[run.key] < result.sent:  # its step reports first
                    d.handle(ray.get(poll))
                    poll = d.channel.poll.remote()

                def tell(trial: Trial = run.trial, result: Result = result) -> None:
                    _tell(trial, result, catch)

            d.by_key.pop(run.key, None)
            if not self.ordered:
                tell()
                yield run.trial
                continue
            d.ready[id(run.trial)] = tell
            while d.order and id(d.order[0]) in d.ready:
                trial = d.order.popleft()
                d.ready.pop(id(trial))()
                fill()  # proposal k right after feedback k - W, before feedback k - W + 1
                yield trial

    def _died(self, d: _Driver, run: _Run, error: BaseException) -> Callable[[], None] | None:
        """A trial whose worker died: run again (None), or the tell that fails it."""
        d.channel.forget.remote(run.key)
        run.deaths += 1
        summary = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
        if run.deaths <= self.retries:
            d.by_key.pop(run.key, None)
            attempts = d.search.retry(run.trial)
            d.submit_run(_Run(run.trial, f"{run.trial.id}.{attempts}", run.deaths))
            return None
        trial = run.trial
        reason = (
            f"worker died: {summary} (attempt {trial.attempts}; it ran {run.deaths} time(s) "
            f"in this search, retries={self.retries})"
        )
        return lambda: None if trial.done else trial.fail(reason)


def _tell(trial: Trial, result: Result, catch: tuple[type[BaseException], ...]) -> None:
    """Finishes the search's `trial` as its worker's twin ended (see `settle`)."""
    from ..tuning import tell_outcome

    if result.outcome.status != "pending":
        tell_outcome(trial, result.outcome)
    if result.error is not None:
        error = result.error
        if not isinstance(error, catch) and result.text:
            error.add_note(f"raised in a Ray worker, trial #{trial.id}:\n{result.text}")
        settle(trial, error=error, catch=catch, text=result.text)
    else:
        settle(trial, result.returned, catch=catch)
