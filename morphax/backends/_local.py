"""The in-process backend: one trial at a time, in the calling thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._base import Evaluate, settle

if TYPE_CHECKING:
    from ..tuning import Search, Trial


class Local:
    """Runs each trial in this process, one at a time: the default backend of
    `Search.run` and `Search.map`. Its study is the serial loop's, row for row.

    Examples:
        >>> import morphax as mx
        >>> s = mx.search({"x": mx.floatv(0.0, 1.0)}, mx.algorithms.Random(seed=0),
        ...               num_trials=3)
        >>> s.run(lambda trial: trial.program["x"], backend=mx.backends.Local())
        >>> len(s.trials)
        3
    """

    def map(
        self,
        search: Search,
        evaluate: Evaluate,
        *,
        catch: tuple[type[BaseException], ...],
    ) -> Iterator[Trial]:
        while (trial := search.ask()) is not None:
            try:
                returned = evaluate(trial)
            except BaseException as e:  # settle re-raises what `catch` does not name
                settle(trial, error=e, catch=catch)
            else:
                settle(trial, returned, catch=catch)
            yield trial

    def __repr__(self) -> str:
        return "Local()"
