"""The incremental face of the early-stopping policies (`observe` / `stop`)
gives the decisions of `should_stop(own, others)` on the same reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import morphax as mx
from morphax import testing as mxt

A = mx.algorithms

POLICIES = [
    A.MedianStopping(),
    A.MedianStopping(min_steps=0, min_trials=1),
    A.MedianStopping(min_steps=3, min_trials=5),
    A.SuccessiveHalving(),
    A.SuccessiveHalving(min_step=1, reduction_factor=2, min_trials=1),
    A.SuccessiveHalving(min_step=2, reduction_factor=4, min_trials=3),
]


class Reference:
    """The reports as a search keeps them (a step reported again replaces the
    old one and moves to the end), asked through `should_stop`."""

    def __init__(self) -> None:
        self.steps: dict[int, list[tuple[int, float]]] = {}

    def observe(self, trial: int, step: int, value: float) -> None:
        own = [(s, v) for s, v in self.steps.get(trial, []) if s != step]
        self.steps[trial] = own + [(step, value)]

    def decide(self, policy: Any, trial: int) -> bool:
        own = self.steps.get(trial, [])
        others = [steps for t, steps in self.steps.items() if t != trial]
        return bool(policy.should_stop(own, others))


def random_stream(seed: int, *, num_trials: int, in_flight: int, max_step: int) -> Any:
    """Reports of trials `in_flight` at a time, in a random interleaving; each
    trial mostly counts its steps up, sometimes reports a step again (a new
    value), skips steps or goes back; values are rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    live: dict[int, int] = {}
    started = 0
    while started < num_trials or live:
        while started < num_trials and len(live) < in_flight:
            live[started] = int(rng.integers(0, 3))
            started += 1
        trial = list(live)[int(rng.integers(len(live)))]
        last = live[trial]
        u = rng.random()
        if u < 0.15 and last > 0:
            step = last  # reported again: replaces the old value
        elif u < 0.25:
            step = int(rng.integers(0, max_step + 1))  # out of order
        else:
            step = last + int(rng.integers(1, 3))
        live[trial] = max(last, step)
        yield trial, step, float(np.round(rng.normal(0.5 + 0.01 * trial, 0.2), 2))
        if live[trial] >= max_step or rng.random() < 0.05:
            del live[trial]


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
@pytest.mark.parametrize("in_flight", [1, 2, 8])
def test_observe_and_stop_agree_with_should_stop(policy: Any, in_flight: int) -> None:
    for seed in range(3):
        policy.reset()
        reference = Reference()
        rng = np.random.default_rng(100 + seed)
        asked = stopped = 0
        for trial, step, value in random_stream(
            seed, num_trials=40, in_flight=in_flight, max_step=12
        ):
            policy.observe(trial, step, value)
            reference.observe(trial, step, value)
            # The trial that reported, and one other trial chosen at random.
            for t in (trial, int(rng.integers(0, max(reference.steps) + 2))):
                want = reference.decide(policy, t)
                assert policy.stop(t) is want, (seed, trial, step, t, reference.steps.get(t))
                asked += 1
                stopped += want
        assert 0 < stopped < asked  # the streams exercise both answers


def test_stop_without_reports_is_false_and_reset_forgets() -> None:
    policy = A.MedianStopping(min_steps=1, min_trials=1)
    assert policy.stop(0) is False
    policy.observe(0, 1, 0.9)
    policy.observe(1, 1, 0.1)
    assert policy.stop(1) is True and policy.stop(0) is False
    policy.reset()
    assert policy.stop(1) is False


def test_a_step_reported_again_replaces_the_old_value() -> None:
    policy = A.MedianStopping(min_steps=1, min_trials=1)
    policy.observe(0, 1, 0.5)
    policy.observe(1, 1, 0.9)
    assert policy.stop(0) is True
    policy.observe(1, 1, 0.1)  # trial 1 re-ran step 1
    assert policy.stop(0) is False and policy.stop(1) is True


def test_observe_rejects_bad_reports() -> None:
    policy = A.MedianStopping()
    with pytest.raises(
        ValueError, match=r"`value` must be finite, but got nan \(trial 3, step 2\)"
    ):
        policy.observe(3, 2, float("nan"))
    with pytest.raises(ValueError, match=r"`step` must be a non-negative int, but got -1"):
        policy.observe(3, -1, 0.5)


def test_many_trials_stay_cheap() -> None:
    """20,000 trials of 5 steps: the columns are made once per step."""
    policy = A.MedianStopping()
    rng = np.random.default_rng(0)
    for trial in range(20_000):
        for step in range(1, 6):
            policy.observe(trial, step, float(rng.random()))
            policy.stop(trial)
    assert sorted(policy._columns) == [1, 2, 3, 4, 5]
    assert len(policy._columns[5].sorted) == 20_000


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
def test_the_contract_covers_the_incremental_face(policy: Any) -> None:
    mxt.check_stopping_policy(policy)


class Forgets(A.MedianStopping):
    """Its incremental face never stops: it disagrees with should_stop."""

    def stop(self, trial: int) -> bool:
        return False


def test_incremental_check_messages_teach() -> None:
    with pytest.raises(
        AssertionError,
        match=r"Forgets.stop\(\d+\) is False after observe\(...\) of the reports, but "
        r"should_stop on the same reports is True \(1 trials in flight",
    ):
        mxt.check_incremental_stopping(Forgets(min_trials=1))
