"""Weighted strategies: DARTS (first and second order) and GDAS, with argmax
or perturbation (DARTS-PT) selection, fixed-alpha and partial channels."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import DNA
from ._strategies import (
    Optimizers,
    Program,
    SearchState,
    Strategy,
    arch_cls,
    arch_weights,
    check_int,
    check_number,
    masked_softmax,
)

_SELECTIONS = ("argmax", "pt")


class _Weighted(Strategy):
    """Options shared by the weighted strategies (DARTS, GDAS)."""

    weighted = True
    uses_valid_batches = True

    def __init__(
        self,
        *,
        selection: str,
        pt_epochs: int,
        fixed_alpha: bool,
        partial_channels: int | None,
        optimizers: Optimizers | None,
    ) -> None:
        super().__init__(optimizers)
        if selection not in _SELECTIONS:
            raise ValueError(
                f"`selection` must be one of {_SELECTIONS} ('argmax': the largest logit per "
                f"decision; 'pt': DARTS-PT's perturbation), but got selection={selection!r}"
            )
        if isinstance(pt_epochs, bool) or not isinstance(pt_epochs, int) or pt_epochs < 0:
            raise ValueError(f"`pt_epochs` must be an int >= 0, but got pt_epochs={pt_epochs!r}")
        if not isinstance(fixed_alpha, bool):
            raise TypeError(f"`fixed_alpha` must be a bool, but got fixed_alpha={fixed_alpha!r}")
        if fixed_alpha and selection != "pt":
            raise ValueError(
                "fixed_alpha=True trains no architecture logits, so selection='argmax' would "
                "pick candidate 0 everywhere; pass selection='pt' (the paper's fixed-alpha "
                "DARTS-PT)"
            )
        if partial_channels is not None:
            check_int("partial_channels", partial_channels, low=1)
        self.selection = selection
        self.pt_epochs = int(pt_epochs)
        self.fixed_alpha = fixed_alpha
        self.partial_channels = partial_channels

    def _options(self) -> dict[str, Any]:
        return {
            "selection": self.selection,
            "pt_epochs": self.pt_epochs,
            "fixed_alpha": self.fixed_alpha,
            "partial_channels": self.partial_channels,
        }


class DARTS(_Weighted):
    """DARTS: the supernet's mixing weights are a softmax of trained logits.

    Each step takes one Adam step of the logits on a validation batch, then
    one SGD step of the weights on a training batch with the new mixture.
    `order=1` takes the logits' gradient at the current weights; `order=2`
    differentiates exactly (by autodiff) through one unrolled step of the
    weight optimizer, `L_val(w - step(grad_w L_train(w, alpha)), alpha)`.

    Args:
        order: 1 (first order) or 2 (second order, unrolled).
        selection: "argmax" (the largest logit of each decision) or "pt"
            (DARTS-PT: after the search, decisions in random order, each fixed
            to the candidate whose removal hurts validation accuracy most,
            with `pt_epochs` of fine-tuning between projections).
        pt_epochs: fine-tuning epochs after each projection (selection="pt").
        fixed_alpha: keep the logits at 0 (uniform mixture; DARTS-PT's
            fixed-alpha variant); needs selection="pt".
        partial_channels: PC-DARTS: mix only 1/K of the channels (passed to
            the supernet).
        optimizers: the optimizer settings (default: DARTS's).

    Raises:
        ValueError: if an option is out of range.

    Examples:
        >>> import morphax as mx
        >>> mx.oneshot.DARTS(order=2)
        DARTS(order=2, selection='argmax', pt_epochs=1, fixed_alpha=False, partial_channels=None)

    References:
        Liu, Simonyan & Yang, DARTS: Differentiable Architecture Search, ICLR 2019.
        Wang, Cheng, Chen, Tang & Hsieh, Rethinking Architecture Selection in
        Differentiable NAS, ICLR 2021 (DARTS-PT).
        Xu et al., PC-DARTS: Partial Channel Connections for Memory-Efficient
        Architecture Search, ICLR 2020.
    """

    def __init__(
        self,
        *,
        order: int = 1,
        selection: str = "argmax",
        pt_epochs: int = 1,
        fixed_alpha: bool = False,
        partial_channels: int | None = None,
        optimizers: Optimizers | None = None,
    ) -> None:
        if order not in (1, 2) or isinstance(order, bool):
            raise ValueError(f"`order` must be 1 or 2, but got order={order!r}")
        super().__init__(
            selection=selection,
            pt_epochs=pt_epochs,
            fixed_alpha=fixed_alpha,
            partial_channels=partial_channels,
            optimizers=optimizers,
        )
        self.order = int(order)

    def config(self) -> dict[str, Any]:
        return {"order": self.order, **self._options()}

    def program(self, sn: Any, *, steps_per_epoch: int, epochs: int) -> Program:
        return DartsProgram(self, sn, steps_per_epoch, epochs)


class GDAS(_Weighted):
    """GDAS: one Gumbel-softmax hard sample per step, straight-through gradient.

    Each step draws a single path `argmax(alpha + g)` (Gumbel noise `g`; a
    path that `sn.is_valid` rejects is drawn again) and runs only it; the
    gradient reaches the logits through `softmax((log_softmax(alpha) + g) /
    tau)`. The weights and the logits take alternate steps on training and
    validation batches (one path each), and `tau` anneals linearly from
    `tau[0]` to `tau[1]` over the epochs.

    Args:
        tau: the (first, last) Gumbel-softmax temperature.
        selection, pt_epochs, fixed_alpha, partial_channels, optimizers: as
            for :class:`DARTS`.

    Raises:
        ValueError: if an option is out of range.

    Examples:
        >>> import morphax as mx
        >>> mx.oneshot.GDAS(tau=(10, 0.1)).tau
        (10.0, 0.1)

    References:
        Dong & Yang, Searching for A Robust Neural Architecture in Four GPU
        Hours, CVPR 2019 (tau 10 to 0.1; NAS-Bench-201's GDAS baseline).
    """

    def __init__(
        self,
        *,
        tau: tuple[float, float] = (10.0, 0.1),
        selection: str = "argmax",
        pt_epochs: int = 1,
        fixed_alpha: bool = False,
        partial_channels: int | None = None,
        optimizers: Optimizers | None = None,
    ) -> None:
        super().__init__(
            selection=selection,
            pt_epochs=pt_epochs,
            fixed_alpha=fixed_alpha,
            partial_channels=partial_channels,
            optimizers=optimizers,
        )
        if not isinstance(tau, tuple | list) or len(tau) != 2:
            raise ValueError(f"`tau` must be a pair (first, last), but got tau={tau!r}")
        self.tau = (check_number("tau[0]", tau[0]), check_number("tau[1]", tau[1]))

    def config(self) -> dict[str, Any]:
        return {"tau": list(self.tau), **self._options()}

    def program(self, sn: Any, *, steps_per_epoch: int, epochs: int) -> Program:
        return GdasProgram(self, sn, steps_per_epoch, epochs)


class WeightedProgram(Program):
    """What DARTS and GDAS share: exports by argmax, metrics of the mixture."""

    strategy: _Weighted

    def effective_logits(self, state: SearchState) -> jax.Array:
        """Logits with DARTS-PT's fixed rows as +/-inf (what `export` reads)."""
        fixed = jnp.where(state.projection > 0, 1e9, -1e9)
        return jnp.where(state.decided[:, None], fixed, state.alpha)

    def export(
        self, state: SearchState, valid: Any, batch_size: int
    ) -> tuple[DNA, dict[str, float]]:
        logits = np.where(self.mask, np.asarray(self.effective_logits(state)), -np.inf)
        dna: DNA = self.sn.export(logits)
        metrics = self.child_metrics(state, dna, valid, batch_size)
        weights = arch_weights(state, self.mask)
        acc, loss = self.accuracy(state, weights, "weights", valid, batch_size)
        return dna, {**metrics, "supernet_accuracy": acc, "supernet_loss": loss}


class DartsProgram(WeightedProgram):
    strategy: DARTS

    def __init__(self, strategy: DARTS, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        super().__init__(strategy, sn, steps_per_epoch, epochs)
        Arch = arch_cls()
        mask = self.mask
        train_alpha = not strategy.fixed_alpha
        second = strategy.order == 2

        def mixed(state: SearchState, alpha: jax.Array) -> Any:
            w = masked_softmax(alpha, mask)
            return Arch(weights=jnp.where(state.decided[:, None], state.projection, w))

        def arch_objective(alpha: jax.Array, state: SearchState, batch: Any, valid: Any, key: Any):
            x, y = batch
            xv, yv = valid
            k_train, k_valid = jax.random.split(key)
            params = state.params
            if second:  # one unrolled step of the weight optimizer, differentiated exactly
                grads = jax.grad(
                    lambda p: self.loss(p, state.model_state, mixed(state, alpha), x, y, k_train)[0]
                )(params)
                updates, _ = self.w_opt.update(grads, state.weight_opt, params)
                params = optax.apply_updates(params, updates)
            return self.loss(params, state.model_state, mixed(state, alpha), xv, yv, k_valid)[0]

        self.arch_objective = arch_objective

        def train_step(state: SearchState, batch: Any, valid: Any, sample: Any) -> Any:
            del sample
            key, k_arch, k_w = jax.random.split(state.key, 3)
            metrics: dict[str, jax.Array] = {}
            if train_alpha:
                v_loss, g = jax.value_and_grad(arch_objective)(
                    state.alpha, state, batch, valid, k_arch
                )
                state = self.arch_update(state, g)
                metrics["arch_loss"] = v_loss
            state, m = self.weight_step(state, mixed(state, state.alpha), batch[0], batch[1], k_w)
            return state._replace(step=state.step + 1, key=key), {**metrics, **m}

        train_step.__name__ = "oneshot_darts_step"
        self.train_step = jax.jit(train_step)


class GdasProgram(WeightedProgram):
    strategy: GDAS

    def __init__(self, strategy: GDAS, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        super().__init__(strategy, sn, steps_per_epoch, epochs)
        Arch = arch_cls()
        mask = self.mask
        train_alpha = not strategy.fixed_alpha
        tau0, tau1 = strategy.tau
        last = max(self.epochs - 1, 1)
        per_epoch = self.steps_per_epoch

        def hard(state: SearchState, alpha: jax.Array, noise: jax.Array, index: jax.Array) -> Any:
            epoch = jnp.minimum(state.step // per_epoch, last).astype(jnp.float32)
            tau = tau0 - (tau0 - tau1) * epoch / last
            logp = jnp.where(mask, jax.nn.log_softmax(jnp.where(mask, alpha, -jnp.inf)), 0.0)
            soft = masked_softmax((logp + noise) / tau, mask)
            weights = jnp.where(state.decided[:, None], state.projection, soft)
            index = jnp.where(state.decided, jnp.argmax(state.projection, -1), index)
            return Arch(weights=weights, index=index)

        def train_step(state: SearchState, batch: Any, valid: Any, sample: Any) -> Any:
            (g_w, i_w), (g_a, i_a) = sample
            key, k_arch, k_w = jax.random.split(state.key, 3)
            metrics: dict[str, jax.Array] = {}
            if train_alpha:

                def objective(alpha: jax.Array) -> jax.Array:
                    return self.loss(
                        state.params,
                        state.model_state,
                        hard(state, alpha, g_a, i_a),
                        valid[0],
                        valid[1],
                        k_arch,
                    )[0]

                v_loss, g = jax.value_and_grad(objective)(state.alpha)
                state = self.arch_update(state, g)
                metrics["arch_loss"] = v_loss
            state, m = self.weight_step(
                state, hard(state, state.alpha, g_w, i_w), batch[0], batch[1], k_w
            )
            return state._replace(step=state.step + 1, key=key), {**metrics, **m}

        train_step.__name__ = "oneshot_gdas_step"
        self.train_step = jax.jit(train_step)

    def sample(self, state: SearchState, rng: np.random.Generator) -> tuple[SearchState, Any]:
        """Two Gumbel draws (weights, logits) with their valid hard paths."""
        alpha, decided, projection = jax.device_get((state.alpha, state.decided, state.projection))
        fixed = np.where(np.asarray(projection) > 0, 1e9, -1e9)
        alpha = np.where(np.asarray(decided)[:, None], fixed, alpha).astype(np.float32)
        return state, (self._draw(alpha, rng), self._draw(alpha, rng))

    def _draw(self, alpha: np.ndarray, rng: np.random.Generator, tries: int = 1000) -> Any:
        for _ in range(tries):
            u = rng.random(alpha.shape, dtype=np.float32)
            noise = -np.log(-np.log(np.maximum(u, np.finfo(np.float32).tiny))).astype(np.float32)
            noise = np.where(self.mask, noise, 0.0).astype(np.float32)
            index = np.argmax(np.where(self.mask, alpha + noise, -np.inf), axis=-1).astype(np.int32)
            if self.sn.is_valid(self.dna_of(index)):
                return noise, index
        raise RuntimeError(f"GDAS drew no valid path in {tries} Gumbel draws (sn.is_valid)")
