"""ENAS: an RL controller samples the single path; its reward is the path's
validation accuracy with the shared weights."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..algorithms import PPO, Reinforce
from ..symbolic import DNA
from ._spos import SinglePathProgram
from ._strategies import Optimizers, Program, SearchState, Strategy, check_int


class ENAS(Strategy):
    """Efficient NAS: a controller's sampled paths train the shared weights.

    Each epoch trains the supernet with one controller-drawn path per step,
    then takes `controller_steps` controller updates: a drawn path's reward
    is its accuracy on one validation batch. The controller is one of the
    existing RL controllers (`mx.algorithms.Reinforce`, `mx.algorithms.PPO`):
    its pure functions (:mod:`morphax.algorithms.policy`) run on its
    :class:`~morphax.algorithms.ControllerState`, kept in the search state;
    its sampled indices are the path. A path that `sn.is_valid` rejects is
    drawn again (and not rewarded). Each epoch exports the controller's most
    likely path (if invalid, the best of `derive_samples` draws).

    Args:
        controller: a `Reinforce(...)` or `PPO(...)` (its settings; its seed
            is replaced by the search's); None: `Reinforce(learning_rate=3.5e-4,
            entropy_weight=1e-4, baseline_decay=0.99)` (ENAS's).
        controller_steps: controller updates per epoch (None: as many as the
            validation set has batches, at most 50).
        derive_samples: draws scored when the most likely path is invalid.
        optimizers: the weight optimizer settings (default: DARTS's).

    Raises:
        TypeError, ValueError: if an option is out of range.

    Examples:
        >>> import morphax as mx
        >>> mx.oneshot.ENAS(controller=mx.algorithms.Reinforce(learning_rate=0.01)).controller
        Reinforce(learning_rate=0.01, baseline_decay=0.9, batch_size=1, entropy_weight=0.0, seed=0)

    References:
        Pham, Guan, Zoph, Le & Dean, Efficient Neural Architecture Search via
        Parameter Sharing, ICML 2018.
    """

    def __init__(
        self,
        *,
        controller: Reinforce | PPO | None = None,
        controller_steps: int | None = None,
        derive_samples: int = 10,
        optimizers: Optimizers | None = None,
    ) -> None:
        super().__init__(optimizers)
        if controller is None:
            controller = Reinforce(learning_rate=3.5e-4, entropy_weight=1e-4, baseline_decay=0.99)
        if not isinstance(controller, Reinforce | PPO):
            raise TypeError(
                "`controller` must be mx.algorithms.Reinforce(...) or mx.algorithms.PPO(...), "
                f"but got controller={controller!r}"
            )
        if controller_steps is not None:
            check_int("controller_steps", controller_steps)
        self.controller = controller
        self.controller_steps = controller_steps
        self.derive_samples = check_int("derive_samples", derive_samples)

    def config(self) -> dict[str, Any]:
        return {
            "controller": self.controller.describe(),
            "controller_steps": self.controller_steps,
            "derive_samples": self.derive_samples,
        }

    def program(self, sn: Any, *, steps_per_epoch: int, epochs: int) -> Program:
        return EnasProgram(self, sn, steps_per_epoch, epochs)


class EnasProgram(SinglePathProgram):
    strategy: ENAS

    def __init__(self, strategy: ENAS, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        super().__init__(strategy, sn, steps_per_epoch, epochs)
        from ..algorithms import policy

        self.layout = policy.PolicyLayout.from_spec(sn.spec)
        args = strategy.controller.config()
        del args["seed"]
        build = policy.reinforce if isinstance(strategy.controller, Reinforce) else policy.ppo
        self.ctrl = build(self.layout, **args)

    def init(self, key: jax.Array, x: Any) -> SearchState:
        state = super().init(key, x)
        key, k_ctrl = jax.random.split(state.key)
        return state._replace(controller=self.ctrl.init(k_ctrl), key=key)

    def draw(self, state: SearchState, *, tries: int = 1000) -> tuple[SearchState, Any]:
        """A valid path drawn by the controller (its key advances), with the draw."""
        c = state.controller
        for _ in range(tries):
            key, s = self.ctrl.draw(c.params, c.key)
            c = c._replace(key=key)
            dna = self.sn.spec.from_array((np.asarray(s.indices), np.asarray(s.values)))
            if self.sn.is_valid(dna):
                return state._replace(controller=c), (self.path_of(dna), s)
        raise RuntimeError(f"the ENAS controller drew no valid path in {tries} draws")

    def sample(self, state: SearchState, rng: np.random.Generator) -> tuple[SearchState, Any]:
        del rng
        state, (path, _) = self.draw(state)
        return state, path

    def end_epoch(self, state: SearchState, valid: Any, batch_size: int, epoch: int) -> SearchState:
        steps = self.strategy.controller_steps or min(max(len(valid) // batch_size, 1), 50)
        batches = _cycle(valid, batch_size, epoch)
        fn = self.eval_fn("index")
        for _ in range(steps):
            state, (path, s) = self.draw(state)
            x, y = next(batches)
            w = np.ones(len(y), np.float32)
            correct, _, count = fn(state.params, state.model_state, jnp.asarray(path), x, y, w)
            reward = jnp.float32(correct / count)
            c = self.ctrl.observe(state.controller, s.actions, s.raw, s.log_prob, reward)
            state = state._replace(controller=c)
        return state

    def export(
        self, state: SearchState, valid: Any, batch_size: int
    ) -> tuple[DNA, dict[str, float]]:
        logits = np.asarray(state.controller.params["logits"])
        best = np.argmax(np.where(self.layout.valid, logits, -np.inf), axis=-1) + self.layout.offset
        dna = self.sn.spec.from_array((best.astype(np.int32), np.zeros(len(best), np.float32)))
        if not self.sn.is_valid(dna):
            draws = []
            for _ in range(self.strategy.derive_samples):
                state, (p, _) = self.draw(state)
                draws.append(self.dna_of(p))
            scores = self.score(state, draws, valid, batch_size)
            dna = draws[int(np.argmax(scores))]
        return dna, self.child_metrics(state, dna, valid, batch_size)


def _cycle(data: Any, batch_size: int, epoch: int) -> Any:
    size = min(batch_size, len(data))
    seed = epoch
    while True:
        yield from data.batches(size, seed=seed)
        seed += 1_000_003
