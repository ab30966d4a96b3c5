"""The contract of early-stopping policies (`should_stop(steps, others)`,
and `observe(trial, step, value)` / `stop(trial)` where a policy has them)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

Policy = Any


def _default_rebuild(policy: Policy) -> Callable[[dict[str, Any]], Policy]:
    def rebuild(config: dict[str, Any]) -> Policy:
        return type(policy)(**{k: v for k, v in config.items() if k != "policy"})

    return rebuild


def check_stopping_policy(
    policy: Policy,
    *,
    rebuild: Callable[[dict[str, Any]], Policy] | None = None,
    num_steps: int = 30,
    num_others: int = 8,
) -> None:
    """Runs the early-stopping contract on `policy`.

    The rules: `should_stop` returns a bool, never stops a trial that has not
    reported, is pure (the same answer twice, the arguments unchanged), never
    stops a trial that leads every other at every step, and stops one that
    trails every other at every step by `num_steps`. With a `config()`, it is
    JSON-ready and rebuilds a policy with the same config and answers. With
    `observe` and `stop` (the incremental face a search uses), a copy of the
    policy fed the reports of trials run 1, 2 and 8 at a time, in a random
    interleaving and with steps reported again, answers `stop` as
    `should_stop` does on the same reports (see :func:`check_incremental_stopping`).

    Args:
        policy: an object with `should_stop(steps, others)`.
        rebuild: `config -> policy`; by default the policy's type called with
            the config, less a `"policy"` entry naming the type.
        num_steps: how many steps the trials report.
        num_others: how many other trials there are.

    Raises:
        AssertionError: naming the rule and the reports that break it.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_stopping_policy
        >>> check_stopping_policy(mx.algorithms.MedianStopping(min_steps=1, min_trials=3))
    """
    name = type(policy).__name__
    others = [
        [(s, 0.5 + 0.01 * i + 0.001 * s) for s in range(1, num_steps + 1)]
        for i in range(num_others)
    ]
    leader = [(s, 0.9 + 0.001 * s) for s in range(1, num_steps + 1)]
    trailer = [(s, 0.1 + 0.001 * s) for s in range(1, num_steps + 1)]

    answer = policy.should_stop([], others)
    if answer is not False:
        raise AssertionError(
            f"{name}.should_stop([], others) must be False (nothing reported yet), got {answer!r}"
        )
    snapshot = copy.deepcopy((trailer, others))
    first = policy.should_stop(trailer, others)
    if not isinstance(first, bool):
        raise AssertionError(f"{name}.should_stop must return a bool, but got {first!r}")
    if policy.should_stop(trailer, others) != first or (trailer, others) != snapshot:
        raise AssertionError(
            f"{name}.should_stop must be pure: the same reports give the same answer and "
            "are left unchanged (keep no state between calls)"
        )
    for n in range(1, num_steps + 1):
        if policy.should_stop(leader[:n], [o[:n] for o in others]):
            raise AssertionError(
                f"{name} stops a trial that leads all {num_others} others at every step, at "
                f"step {n}: {leader[:n]!r}"
            )
    if not any(
        policy.should_stop(trailer[:n], [o[:n] for o in others]) for n in range(1, num_steps + 1)
    ):
        raise AssertionError(
            f"{name} never stops a trial that trails all {num_others} others at every one of "
            f"{num_steps} steps"
        )
    if callable(getattr(policy, "observe", None)) and callable(getattr(policy, "stop", None)):
        check_incremental_stopping(policy, num_steps=num_steps)
    if not hasattr(policy, "config"):
        return
    config = policy.config()
    try:
        config = json.loads(json.dumps(config))
    except TypeError as e:
        raise AssertionError(f"{name}.config() must be JSON-ready, but got {config!r}: {e}") from e
    rebuilt = (rebuild or _default_rebuild(policy))(config)
    if rebuilt.config() != config:
        raise AssertionError(f"{name} rebuilt from {config!r} has config {rebuilt.config()!r}")
    for n in range(1, num_steps + 1):
        mine = [o[:n] for o in others]
        if rebuilt.should_stop(trailer[:n], mine) != policy.should_stop(trailer[:n], mine):
            raise AssertionError(
                f"{name} rebuilt from its config {config!r} answers differently at step {n}"
            )


def check_incremental_stopping(
    policy: Policy,
    *,
    widths: Iterable[int] = (1, 2, 8),
    num_trials: int = 24,
    num_steps: int = 30,
    seed: int = 0,
) -> None:
    """`observe(trial, step, value)` then `stop(trial)` give the decisions of
    `should_stop(own, others)` on the same reports, for trials run `width` at a
    time whose reports interleave in a seeded random order; a trial sometimes
    reports a step again, which replaces the old value (and moves it last, as
    a search keeps it). Runs on a copy of `policy` (after its `reset()`, if any).

    Raises:
        AssertionError: with the trial, its reports and both answers.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_incremental_stopping
        >>> check_incremental_stopping(mx.algorithms.SuccessiveHalving(min_trials=1))
    """
    name = type(policy).__name__
    for width in widths:
        mine = copy.deepcopy(policy)
        if callable(getattr(mine, "reset", None)):
            mine.reset()
        rng = np.random.default_rng([seed, width])
        reports: dict[int, list[tuple[int, float]]] = {}
        live: list[int] = []
        started = 0
        while started < num_trials or live:
            while started < num_trials and len(live) < width:
                live.append(started)
                reports[started] = []
                started += 1
            trial = live[int(rng.integers(len(live)))]
            own = reports[trial]
            last = own[-1][0] if own else 0
            step = last if own and rng.random() < 0.2 else last + 1
            value = float(np.round(rng.normal(0.5 + 0.01 * trial, 0.1), 2))
            reports[trial] = [(s, v) for s, v in own if s != step] + [(step, value)]
            mine.observe(trial, step, value)
            others = [r for t, r in reports.items() if t != trial]
            want = bool(policy.should_stop(reports[trial], others))
            got = mine.stop(trial)
            if got is not want:
                raise AssertionError(
                    f"{name}.stop({trial}) is {got!r} after observe(...) of the reports, but "
                    f"should_stop on the same reports is {want!r} ({width} trials in flight; "
                    f"the trial's reports {reports[trial]!r}): keep both faces to one rule"
                )
            if step >= num_steps or want:
                live.remove(trial)
