"""The `Backend` protocol of `Search.run` / `Search.map`, and the rule that
turns what `evaluate(trial)` did into the trial's outcome.

A backend runs `evaluate(trial)` for the trials that `search.ask()` hands out
and yields each trial once it is finished. The search stays the only writer:
a backend that runs trials elsewhere (Ray workers) calls :func:`settle` in the
driver with what came back (the returned value, or the exception), so that
every report and journal event is written by the process that holds the lease.

What a backend must do, so that every backend gives the serial study:

1. Ask with `search.ask()` (None: the study has all its trials) and never
   write the store itself; at most as many trials in flight as it can run.
2. Finish each trial with :func:`settle` (in the driver), then yield it.
3. On an exception that `catch` does not name: stop asking, leave the trials
   in flight pending (a later search of the study runs them again), and
   re-raise it.
4. Close nothing: `Search.run`/`map` close the search when the backend's
   iterator ends, raises or is closed.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..tuning import Search, Trial

#: `evaluate(trial)`: reports through `trial.report(...)` or returns the result.
Evaluate = Callable[["Trial"], Any]


class Backend(Protocol):
    """Runs a search's trials: see the module docstring for the contract."""

    def map(
        self,
        search: Search,
        evaluate: Evaluate,
        *,
        catch: tuple[type[BaseException], ...],
    ) -> Iterator[Trial]:
        """Evaluates the trials that `search.ask()` hands out; yields each one
        once it is finished (completed, failed or skipped), in finishing order."""
        ...


def settle(
    trial: Trial,
    returned: Any = None,
    error: BaseException | None = None,
    *,
    catch: tuple[type[BaseException], ...] = (),
    text: str | None = None,
) -> None:
    """Finishes `trial` from what `evaluate(trial)` did.

    - It raised an exception named by `catch`: the trial is failed, its reason
      the traceback (a trial that had reported already stays as it is).
    - It raised another exception: re-raised; the trial stays pending (a later
      search of the study runs it again).
    - It returned a value and did not report: the value is reported (a float,
      or a dict of metrics).
    - It neither reported nor returned a value: RuntimeError, the trial stays
      pending.

    `text`: the traceback of an `error` raised in another process (a worker),
    recorded instead of the local one.

    Raises:
        BaseException: `error`, if `catch` does not name it.
        RuntimeError: if the trial was left without a result.
    """
    if error is not None:
        if not isinstance(error, catch) or not isinstance(error, Exception):
            raise error
        if not trial.done:
            if text is None:
                text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            trial.fail(f"evaluate raised {type(error).__name__}: {error}\n{text}")
        return
    if trial.done:
        return
    if returned is None:
        raise RuntimeError(
            f"trial #{trial.id} was left without a result: evaluate(trial) must call "
            "trial.report(value) (or trial.skip/fail) or return the value (a float or a dict "
            "of metrics); the trial stays pending and runs again on resume"
        )
    trial.report(returned)
