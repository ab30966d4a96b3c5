"""The search loop's options: their checks, duplicate answers and the progress bar."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

DUPLICATES = ("reuse", "rerun")
#: The reason of a trial answered from an earlier trial's result (never run).
DUPLICATE_REASON = "duplicate of trial #{number}: answered with its stored result, not run again"
_DUPLICATE = re.compile(r"duplicate of trial #(\d+): answered with its stored result")
#: How many proposals in a row may be duplicates before a search ends as exhausted.
MAX_DUPLICATES_IN_A_ROW = 100


def duplicate_of(reason: str | None) -> int | None:
    """The trial number a duplicate row was answered from, else None."""
    match = _DUPLICATE.match(reason or "")
    return int(match.group(1)) if match else None


def check_options(
    *,
    num_trials: Any,
    name: Any,
    objective: Any,
    store: Any,
    max_attempts: Any,
    lease_s: Any,
    early_stopping: Any,
    duplicates: Any,
    progress: Any,
) -> None:
    """Raises a ValueError or TypeError naming the first bad option of mx.search."""
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
    if early_stopping is not None and not callable(getattr(early_stopping, "should_stop", None)):
        raise TypeError(
            f"`early_stopping` must have a should_stop method, but got {early_stopping!r}"
        )
    if duplicates not in DUPLICATES:
        raise ValueError(
            f"`duplicates` must be 'reuse' (a DNA the study already evaluated gets its stored "
            f"result) or 'rerun' (it is evaluated again: noisy objectives), but got {duplicates!r}"
        )
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True, False or None (automatic), but got {progress!r}")


def check_catch(catch: Any) -> tuple[type[BaseException], ...]:
    """`catch` as a tuple of exception types; TypeError naming a bad one."""
    if isinstance(catch, type):
        catch = (catch,)
    if not isinstance(catch, tuple | list) or not all(
        isinstance(c, type) and issubclass(c, Exception) for c in catch
    ):
        raise TypeError(
            "`catch` must be a tuple of exception types (subclasses of Exception), like "
            f"catch=(ValueError,), but got {catch!r}"
        )
    return tuple(catch)


def interactive() -> bool:
    """Whether a person is likely watching: a notebook, a REPL or a terminal."""
    if hasattr(sys, "ps1"):  # a REPL
        return True
    ipython = sys.modules.get("IPython")  # a notebook: a running IPython kernel
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class ProgressBar:
    """A tqdm bar (`tqdm.auto`: a widget in notebooks) over a search's trials,
    with the best result so far."""

    def __init__(self, total: int, done: int, label: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=min(done, total), desc=label, unit="trial")

    def update(self, done: int, best: str | None, note: str = "") -> None:
        self.bar.n = min(done, self.bar.total)
        postfix = {"best": best if best is not None else "-"}
        if note:
            postfix["last"] = note
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
