"""RL controllers: REINFORCE and PPO over a factorized policy, as Algorithms.

The classes here are the mutable face (`propose` / `feedback` / `recover`);
the numerics are the pure, jitted functions of :mod:`morphax.algorithms.policy`
(imported when an algorithm is set up, so that importing morphax does not
import JAX).
"""

from __future__ import annotations

import math
import typing
from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import Reward
from ..symbolic import DNA
from ._base import Algorithm, scalar_reward

if TYPE_CHECKING:
    from ._learning import Controller, ControllerState
    from ._policy import PolicyLayout, Sample


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kind = "an int" if integer else "a number"
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not value > 0:
        raise ValueError(f"`{name}` must be {kind} > 0, but got {name}={value!r}")
    if not integer and not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, but got {name}={value!r}")


def _in_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be in [0, 1), but got {name}={value!r}")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"`{name}` must be a finite number >= 0, but got {name}={value!r}")


class _RLController(Algorithm):
    """Shared machinery: one jitted `draw` per proposal, one `observe` per reward.

    Attributes:
        state: the :class:`~morphax.algorithms.ControllerState` (a
            pytree of arrays; assign a restored one to resume from a checkpoint).
    """

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self._controller: Controller | None = None
        self._layout: PolicyLayout | None = None
        self.state: ControllerState | None = None
        self._pending: dict[DNA, list[Sample]] = {}

    #: The name of the learning rule in :mod:`morphax.algorithms.policy` that builds this controller from
    #: a layout and the constructor arguments (`config()` less the seed).
    _builder: str

    def _make(self, layout: PolicyLayout) -> Controller:
        from . import _learning

        args = self.config()
        del args["seed"]
        return typing.cast("Controller", getattr(_learning, self._builder)(layout, **args))

    def reset(self) -> None:
        from ._policy import PolicyLayout

        self._layout = PolicyLayout.from_spec(self.spec)
        self._controller = self._make(self._layout)
        # A raw threefry key: `jax.random.PRNGKey(seed)` for 32-bit seeds, and
        # the high bits of larger seeds in the first word (no JAX op: no compile).
        key = np.asarray([(self.seed >> 32) & 0xFFFFFFFF, self.seed & 0xFFFFFFFF], np.uint32)
        self.state = self._controller.init(key)
        self._pending = {}

    def _ready(self) -> tuple[Controller, ControllerState]:
        if self._controller is None or self.state is None:
            raise RuntimeError(f"{type(self).__name__} is not set up: call setup(spec) first")
        return self._controller, self.state

    def _propose(self) -> DNA:
        controller, state = self._ready()
        key, s = controller.draw(state.params, state.key)
        self.state = state._replace(key=key)
        dna: DNA = self.spec.from_array((np.asarray(s.indices), np.asarray(s.values)))
        self._pending.setdefault(dna, []).append(s)
        return dna

    def _feedback(self, dna: DNA, reward: Reward) -> None:
        """Learns from `reward` (None or non-finite: the trial is skipped).

        A DNA that this controller did not propose (or whose proposal was
        already fed back) is learned from as if it had been drawn.
        """
        controller, state = self._ready()
        r = scalar_reward(reward, type(self).__name__)
        drawn = self._pending.get(dna)
        s = drawn.pop(0) if drawn else None
        if drawn is not None and not drawn:
            del self._pending[dna]
        if r is None or not math.isfinite(r):
            return
        if s is None:
            actions, raw, log_prob = self._as_drawn(controller, state, dna)
        else:
            actions, raw, log_prob = s.actions, s.raw, s.log_prob
        self.state = controller.observe(state, actions, raw, log_prob, np.float32(r))

    def _as_drawn(self, controller: Controller, state: ControllerState, dna: DNA) -> tuple:
        assert self._layout is not None
        actions, raw = self._layout.to_actions(self.spec, dna)
        return actions, raw, controller.log_prob(state.params, actions, raw)


class Reinforce(_RLController):
    """REINFORCE with a moving-average reward baseline over a factorized policy.

    One categorical per choice (distinct `manyof` picks drawn without
    replacement) and per int decision, one Gaussian per float decision (on
    its normalized coordinate, clipped into bounds); only active decisions
    count. After every `batch_size` rewards, one Adam step on
    `-mean((r - b) * log_prob)`, where `b` is the bias-corrected exponential
    moving average of the rewards, updated with each reward first (as in the
    REINFORCE baseline of NAS-Bench-201). Rewards are maximized; None (a failed
    trial) and non-finite rewards are skipped. The numerics are the jitted
    pure functions of `morphax.algorithms.policy.reinforce`; `state` is
    their checkpointable pytree.

    Args:
        learning_rate: Adam's learning rate.
        baseline_decay: momentum of the baseline's moving average, in [0, 1).
        batch_size: rewards per update.
        entropy_weight: weight of an entropy bonus (>= 0).
        seed: the seed of the policy's draws.

    Raises:
        ValueError: if an argument is out of range.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.Reinforce(learning_rate=0.1, seed=0)
        >>> algo.setup(mx.dna_spec([mx.oneof(range(4)) for _ in range(3)]))
        >>> for _ in range(100):
        ...     dna = algo.propose()
        ...     algo.feedback(dna, sum(v == 2 for v in dna.values) / 3)
        >>> algo.propose().values
        (2, 2, 2)

    References:
        Williams, Simple statistical gradient-following algorithms for
        connectionist reinforcement learning, Machine Learning 1992.
        Dong & Yang, NAS-Bench-201: Extending the Scope of Reproducible Neural
        Architecture Search, ICLR 2020.
    """

    _builder = "reinforce"

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        baseline_decay: float = 0.9,
        batch_size: int = 1,
        entropy_weight: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        _positive("learning_rate", learning_rate)
        _in_unit("baseline_decay", baseline_decay)
        _positive("batch_size", batch_size, integer=True)
        _non_negative("entropy_weight", entropy_weight)
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.batch_size = int(batch_size)
        self.entropy_weight = float(entropy_weight)

    def config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "baseline_decay": self.baseline_decay,
            "batch_size": self.batch_size,
            "entropy_weight": self.entropy_weight,
            "seed": self.seed,
        }


class PPO(_RLController):
    """Proximal policy optimization over a factorized policy.

    The policy is that of :class:`Reinforce`. Rewards are collected in
    batches of `batch_size`; each batch gets `epochs` full-batch Adam steps
    on the clipped surrogate objective, with advantages centered and scaled
    within the batch (or, with `normalize_advantages=False`, the rewards
    minus a moving average of earlier batches' mean rewards). Rewards are
    maximized; None (a failed trial) and non-finite rewards are skipped.

    Args:
        learning_rate: Adam's learning rate.
        clip: the clipping range of the probability ratio (> 0).
        epochs: gradient steps per batch.
        batch_size: rewards per update.
        baseline_decay: momentum of the moving-average baseline, in [0, 1).
        normalize_advantages: center and scale advantages per batch.
        entropy_weight: weight of an entropy bonus (>= 0).
        seed: the seed of the policy's draws.

    Raises:
        ValueError: if an argument is out of range.

    Examples:
        >>> import morphax as mx
        >>> algo = mx.algorithms.PPO(batch_size=4, seed=0)
        >>> algo.setup(mx.dna_spec({"lr": mx.floatv(1e-4, 1e-1, scale="log")}))
        >>> dna = algo.propose()
        >>> algo.feedback(dna, 1.0)
        >>> algo.config()["clip"]
        0.2

    References:
        Schulman, Wolski, Dhariwal, Radford & Klimov, Proximal Policy
        Optimization Algorithms, arXiv:1707.06347, 2017.
        Zoph, Vasudevan, Shlens & Le, Learning Transferable Architectures for
        Scalable Image Recognition, CVPR 2018.
    """

    _builder = "ppo"

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        clip: float = 0.2,
        epochs: int = 4,
        batch_size: int = 8,
        baseline_decay: float = 0.9,
        normalize_advantages: bool = True,
        entropy_weight: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        _positive("learning_rate", learning_rate)
        _positive("clip", clip)
        _positive("epochs", epochs, integer=True)
        _positive("batch_size", batch_size, integer=True)
        _in_unit("baseline_decay", baseline_decay)
        if not isinstance(normalize_advantages, bool):
            raise TypeError(
                f"`normalize_advantages` must be a bool, but got {normalize_advantages!r}"
            )
        _non_negative("entropy_weight", entropy_weight)
        self.learning_rate = float(learning_rate)
        self.clip = float(clip)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.baseline_decay = float(baseline_decay)
        self.normalize_advantages = normalize_advantages
        self.entropy_weight = float(entropy_weight)

    def config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "clip": self.clip,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "baseline_decay": self.baseline_decay,
            "normalize_advantages": self.normalize_advantages,
            "entropy_weight": self.entropy_weight,
            "seed": self.seed,
        }
