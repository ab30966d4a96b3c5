"""The one-shot strategies' shared core: one state pytree and its pure steps.

A strategy (:class:`~morphax.oneshot.DARTS`, :class:`~morphax.oneshot.GDAS`,
:class:`~morphax.oneshot.SPOS`, :class:`~morphax.oneshot.ENAS`,
:class:`~morphax.oneshot.RSPS`) is a configuration; :meth:`Strategy.program`
binds it to a supernet and gives a :class:`Program`: its pure functions over
one :class:`SearchState` (the supernet's parameters and model state, the
architecture logits `[n, K]`, the weight and architecture optimizer states,
the controller state, the step and the key). :func:`morphax.oneshot.search`
runs them; a user may run them in a loop of their own.

Architecture logits are aligned with the supernet's rows and candidates
(`sn.mask`, False = padding): padding takes no weight (its logit is replaced
by -inf before the softmax) and gets exactly zero gradient, and its logit
stays 0.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import DNA

#: DARTS's weight optimizer (Liu et al. 2019, also NAS-Bench-201's one-shot
#: baselines): SGD, momentum 0.9, lr 0.025 cosine-annealed to 0.001, weight
#: decay 3e-4, gradients clipped to norm 5.
WEIGHT_LR, WEIGHT_LR_MIN, WEIGHT_MOMENTUM, WEIGHT_DECAY, GRAD_CLIP = 0.025, 0.001, 0.9, 3e-4, 5.0
#: DARTS's architecture optimizer: Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
ARCH_LR, ARCH_BETAS, ARCH_DECAY = 3e-4, (0.5, 0.999), 1e-3


class SearchState(NamedTuple):
    """The whole state of a one-shot search: a pytree of arrays (checkpointable).

    Attributes:
        params: the supernet's parameters.
        model_state: its other variable collections (e.g. `batch_stats`).
        alpha: `[n, K]` float32 architecture logits (0 at padding).
        weight_opt: the optax state of `params`.
        arch_opt: the optax state of `alpha` (`()` when not trained).
        controller: the controller's state (ENAS), else `()`.
        projection: `[n, K]` float32, the one-hot rows that DARTS-PT fixed.
        decided: `[n]` bool, which rows `projection` fixes.
        step: the number of training steps taken (int32).
        key: the PRNG key of the next step (raw uint32 `[2]`).
    """

    params: Any
    model_state: Any
    alpha: jax.Array
    weight_opt: Any
    arch_opt: Any
    controller: Any
    projection: jax.Array
    decided: jax.Array
    step: jax.Array
    key: jax.Array


Batch = tuple[Any, Any]


def masked_softmax(logits: jax.Array, mask: np.ndarray) -> jax.Array:
    """Softmax over each row's real candidates; padding gets weight 0 (and no gradient)."""
    return jax.nn.softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)


def arch_weights(state: SearchState, mask: np.ndarray) -> jax.Array:
    """The mixing weights: softmax of the logits, rows fixed by DARTS-PT one-hot."""
    return jnp.where(state.decided[:, None], state.projection, masked_softmax(state.alpha, mask))


def arch_cls() -> Any:
    from . import Arch  # the supernet's architecture input (defined beside it)

    return Arch


def weight_optimizer(
    total_steps: int,
    *,
    learning_rate: float = WEIGHT_LR,
    learning_rate_min: float = WEIGHT_LR_MIN,
    momentum: float = WEIGHT_MOMENTUM,
    weight_decay: float = WEIGHT_DECAY,
    grad_clip: float | None = GRAD_CLIP,
) -> optax.GradientTransformation:
    """DARTS's weight optimizer: clip, L2 weight decay, SGD with momentum, cosine lr."""
    schedule = optax.cosine_decay_schedule(
        learning_rate, max(int(total_steps), 1), alpha=learning_rate_min / learning_rate
    )
    parts = [] if grad_clip is None else [optax.clip_by_global_norm(grad_clip)]
    parts += [optax.add_decayed_weights(weight_decay), optax.sgd(schedule, momentum=momentum)]
    return optax.chain(*parts)


def arch_optimizer(
    *,
    learning_rate: float = ARCH_LR,
    betas: tuple[float, float] = ARCH_BETAS,
    weight_decay: float = ARCH_DECAY,
) -> optax.GradientTransformation:
    """DARTS's architecture optimizer: L2 weight decay then Adam (as torch's Adam does)."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.adam(learning_rate, b1=betas[0], b2=betas[1]),
    )


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = True) -> float:
    """`value` as a float, or a ValueError naming `name`, the value and the rule."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        rule = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"`{name}` must be a finite number {rule}, but got {name}={value!r}")
    return float(value)


def check_int(name: str, value: Any, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, but got {name}={value!r}")
    return int(value)


@dataclass(frozen=True)
class Optimizers:
    """The weight and architecture optimizer settings of a strategy (DARTS's defaults).

    References:
        Liu, Simonyan & Yang, DARTS: Differentiable Architecture Search, ICLR
        2019 (Section 3.1 and the released code: SGD 0.025 cosine to 0.001,
        momentum 0.9, weight decay 3e-4, clip 5; Adam 3e-4, betas (0.5, 0.999),
        weight decay 1e-3).
    """

    learning_rate: float = WEIGHT_LR
    learning_rate_min: float = WEIGHT_LR_MIN
    momentum: float = WEIGHT_MOMENTUM
    weight_decay: float = WEIGHT_DECAY
    grad_clip: float | None = GRAD_CLIP
    arch_learning_rate: float = ARCH_LR
    arch_betas: tuple[float, float] = ARCH_BETAS
    arch_weight_decay: float = ARCH_DECAY

    def __post_init__(self) -> None:
        check_number("learning_rate", self.learning_rate)
        check_number("learning_rate_min", self.learning_rate_min, strict=False)
        check_number("momentum", self.momentum, strict=False)
        check_number("weight_decay", self.weight_decay, strict=False)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip)
        check_number("arch_learning_rate", self.arch_learning_rate)
        check_number("arch_weight_decay", self.arch_weight_decay, strict=False)
        b = self.arch_betas
        if not (isinstance(b, tuple | list) and len(b) == 2 and all(0 <= v < 1 for v in b)):
            raise ValueError(f"`arch_betas` must be two numbers in [0, 1), but got {b!r}")

    def weights(self, total_steps: int) -> optax.GradientTransformation:
        return weight_optimizer(
            total_steps,
            learning_rate=self.learning_rate,
            learning_rate_min=self.learning_rate_min,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
        )

    def arch(self) -> optax.GradientTransformation:
        return arch_optimizer(
            learning_rate=self.arch_learning_rate,
            betas=(float(self.arch_betas[0]), float(self.arch_betas[1])),
            weight_decay=self.arch_weight_decay,
        )


class Strategy:
    """Base class of the one-shot strategies (see the module docstring).

    Subclasses set `weighted` (a DARTS-like mixture trained by gradient) and
    implement :meth:`program`; `config()` gives the JSON-ready constructor
    arguments (stored with a search's checkpoint and study).
    """

    weighted = False
    #: whether each training step also takes a batch of the validation set
    uses_valid_batches = False
    partial_channels: int | None = None

    def __init__(self, optimizers: Optimizers | None) -> None:
        if optimizers is not None and not isinstance(optimizers, Optimizers):
            raise TypeError(
                "`optimizers` must be an mx.oneshot.Optimizers(...) or None, but got "
                f"{optimizers!r}"
            )
        self.optimizers = optimizers or Optimizers()

    def config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def program(self, sn: Any, *, steps_per_epoch: int, epochs: int) -> Program:
        raise NotImplementedError


class Program:
    """A strategy bound to a supernet: its pure, jitted functions.

    Attributes:
        sn: the supernet.
        strategy: the strategy.
        steps_per_epoch: training steps per epoch (static: the schedules use it).
        epochs: training epochs (static).
    """

    def __init__(self, strategy: Strategy, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        self.strategy, self.sn = strategy, sn
        self.steps_per_epoch, self.epochs = int(steps_per_epoch), int(epochs)
        self.mask = np.asarray(sn.mask, bool)
        self.n, self.k = self.mask.shape
        self.w_opt = strategy.optimizers.weights(self.steps_per_epoch * self.epochs)
        self.a_opt = strategy.optimizers.arch()
        self._eval_fns: dict[str, Any] = {}
        self._calibrate: Any = None
        model = getattr(sn, "model", None)
        self.takes_train = not callable(model) or "train" in inspect.signature(model).parameters

    # -- pieces the strategies share -------------------------------------------

    def forward(
        self, params: Any, model_state: Any, arch: Any, x: Any, *, train: bool, key: Any = None
    ) -> tuple[jax.Array, Any]:
        """(logits, updated model state) of the supernet on `x` with `arch`."""
        variables = {"params": params, **model_state}
        mutable = list(model_state) if (train and model_state) else False
        rngs = None if key is None else {"dropout": key}
        kw = {"train": train} if self.takes_train else {}
        out = self.sn.apply(variables, x, arch=arch, mutable=mutable, rngs=rngs, **kw)
        if mutable:
            logits, updates = out
            return logits, {**model_state, **updates}
        return out, model_state

    def loss(
        self, params: Any, model_state: Any, arch: Any, x: Any, y: Any, key: Any
    ) -> tuple[jax.Array, tuple[Any, jax.Array]]:
        logits, new_state = self.forward(params, model_state, arch, x, train=True, key=key)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        return jnp.mean(loss), (new_state, acc)

    def weight_step(
        self, state: SearchState, arch: Any, x: Any, y: Any, key: Any
    ) -> tuple[SearchState, dict[str, jax.Array]]:
        """One SGD step of the shared weights on (x, y) with `arch`."""
        grad_fn = jax.value_and_grad(self.loss, has_aux=True)
        (loss, (model_state, acc)), grads = grad_fn(
            state.params, state.model_state, arch, x, y, key
        )
        updates, w_opt = self.w_opt.update(grads, state.weight_opt, state.params)
        params = optax.apply_updates(state.params, updates)
        state = state._replace(params=params, model_state=model_state, weight_opt=w_opt)
        return state, {"loss": loss, "accuracy": acc}

    def arch_update(self, state: SearchState, grads: jax.Array) -> SearchState:
        """One Adam step of the logits; padding's gradient and logit stay exactly 0."""
        grads = jnp.where(self.mask, grads, 0.0)
        updates, a_opt = self.a_opt.update(grads, state.arch_opt, state.alpha)
        alpha = jnp.where(self.mask, optax.apply_updates(state.alpha, updates), 0.0)
        return state._replace(alpha=alpha, arch_opt=a_opt)

    def init(self, key: jax.Array, x: Any) -> SearchState:
        """The initial state: the supernet's variables, logits `1e-3 * N(0, 1)` (DARTS)."""
        if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)  # a typed key: the state keeps raw key data
        key = jnp.asarray(key, jnp.uint32)
        k_init, k_alpha, k_next = jax.random.split(key, 3)
        init = jax.jit(self.sn.init)  # one compile, not one per eager op
        variables = dict(init(k_init, jnp.asarray(x)))
        params = variables.pop("params", {})
        alpha = 1e-3 * jax.random.normal(k_alpha, (self.n, self.k), jnp.float32)
        alpha = jnp.where(self.mask, alpha, 0.0)
        return SearchState(
            params=params,
            model_state=variables,
            alpha=alpha,
            weight_opt=self.w_opt.init(params),
            arch_opt=self.a_opt.init(alpha),
            controller=(),
            projection=jnp.zeros((self.n, self.k), jnp.float32),
            decided=jnp.zeros((self.n,), bool),
            step=jnp.zeros((), jnp.int32),
            key=k_next,
        )

    # -- what the loop calls ------------------------------------------------------

    #: `train_step(state, batch, valid_batch, sample) -> (state, metrics)`, jitted.
    train_step: Callable[..., tuple[SearchState, dict[str, jax.Array]]]

    def sample(self, state: SearchState, rng: np.random.Generator) -> tuple[SearchState, Any]:
        """Host-side inputs of the next train step (a sampled path, noise; () if
        none), and the state (a controller's draw advances its key)."""
        del rng
        return state, ()

    def end_epoch(self, state: SearchState, valid: Any, batch_size: int, epoch: int) -> SearchState:
        """Work after each epoch's training steps (ENAS trains its controller here)."""
        del valid, batch_size, epoch
        return state

    def export(
        self, state: SearchState, valid: Any, batch_size: int
    ) -> tuple[DNA, dict[str, float]]:
        """The architecture the state stands for now, with metrics on `valid`."""
        raise NotImplementedError

    # -- evaluation with one compiled step per kind of architecture input ------------

    def eval_fn(self, kind: str) -> Any:
        """A jitted `(params, model_state, arch_array, x, y, weight) -> sums`,
        with `arch_array` the weights `[n, K]` (kind "weights") or a path `[n]`
        (kind "index"); compiled once each per batch shape (a last partial
        batch is a second shape)."""
        if kind not in self._eval_fns:
            Arch = arch_cls()

            def evaluate(params: Any, model_state: Any, a: Any, x: Any, y: Any, w: Any) -> Any:
                arch = Arch(weights=a) if kind == "weights" else Arch(index=a)
                logits, _ = self.forward(params, model_state, arch, x, train=False)
                ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y)
                correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
                return jnp.sum(correct * w), jnp.sum(ce * w), jnp.sum(w)

            evaluate.__name__ = f"oneshot_eval_{kind}"
            self._eval_fns[kind] = jax.jit(evaluate)
        return self._eval_fns[kind]

    #: Training batches `[K, B, ...]` over which a single path's batch statistics
    #: are recomputed before it is scored (set by `search`); None: scored with
    #: the supernet's running averages.
    calibration: Any = None

    def calibrated(self, state: SearchState, path: Any) -> Any:
        """The model state with its `batch_stats` recomputed for the single path
        `path` over :attr:`calibration` (SPOS's recalibration).

        The supernet's running averages are those of the paths it trained, so
        a single path scored with them is scored with another network's
        statistics. Each entry becomes the mean over the calibration batches
        of the path's batch statistic. The running-average update of each
        entry (`m * old + (1 - m) * batch`, Flax's batch norm) is read off
        two passes of the first batch from all-0 and all-1 entries, so any
        momentum works; an entry that a training pass leaves as it was
        (m = 1) keeps its value. No calibration or no `batch_stats`: the
        state's own.
        """
        model_state = state.model_state
        if self.calibration is None or not model_state.get("batch_stats"):
            return model_state
        if self._calibrate is None:
            Arch = arch_cls()

            def calibrate(params: Any, model_state: Any, path: Any, xs: Any) -> Any:
                arch, key = Arch(index=path), jax.random.PRNGKey(0)
                old = model_state["batch_stats"]

                def stats(fill: float, x: Any) -> Any:
                    filled = jax.tree.map(lambda v: jnp.full_like(v, fill), old)
                    ms = {**model_state, "batch_stats": filled}
                    return self.forward(params, ms, arch, x, train=True, key=key)[1]["batch_stats"]

                first = stats(0.0, xs[0])
                keep = jax.tree.map(jnp.subtract, stats(1.0, xs[0]), first)  # m per entry

                def add(total: Any, x: Any) -> tuple[Any, None]:
                    return jax.tree.map(jnp.add, total, stats(0.0, x)), None

                total, _ = jax.lax.scan(add, first, xs[1:])
                n = xs.shape[0]

                def fix(o: Any, t: Any, m: Any) -> Any:
                    return jnp.where(1.0 - m > 1e-6, t / n / jnp.maximum(1.0 - m, 1e-6), o)

                return {**model_state, "batch_stats": jax.tree.map(fix, old, total, keep)}

            calibrate.__name__ = "oneshot_calibrate"
            self._calibrate = jax.jit(calibrate)
        return self._calibrate(state.params, model_state, jnp.asarray(path), self.calibration)

    def accuracy(
        self,
        state: SearchState,
        arch_array: Any,
        kind: str,
        data: Any,
        batch_size: int,
        *,
        calibrate: bool = True,
    ) -> tuple[float, float]:
        """(accuracy, loss) on `data` with one architecture input; a single
        path (kind "index") with its recomputed batch statistics
        (:meth:`calibrated`) unless `calibrate` is False.

        A last partial batch runs at its own size (a second executable), not
        padded: a model that normalizes with batch statistics (NAS-Bench-201's
        search-mode batch norm) would normalize the real examples with the
        padding's zeros.
        """
        fn = self.eval_fn(kind)
        sums = []
        arch_array = jnp.asarray(arch_array)
        model_state = state.model_state
        if kind == "index" and calibrate:
            model_state = self.calibrated(state, arch_array)
        for i in range(0, len(data), batch_size):
            x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
            w = np.ones(len(y), np.float32)
            sums.append(fn(state.params, model_state, arch_array, x, y, w))
        correct, loss, count = np.sum(np.asarray(jax.device_get(sums), np.float64), axis=0)
        return float(correct / max(count, 1.0)), float(loss / max(count, 1.0))

    def path_of(self, dna: DNA) -> np.ndarray:
        """The `[n]` path (candidate per row) of a DNA; inactive rows 0."""
        return np.asarray(self.sn.path(dna), np.int32)

    def dna_of(self, path: np.ndarray) -> DNA:
        """The DNA of a `[n]` path (what `sn.export` gives for its one-hot)."""
        onehot = np.asarray(path)[:, None] == np.arange(self.k)[None, :]
        dna: DNA = self.sn.export(np.where(self.mask, onehot.astype(np.float32), -np.inf))
        return dna

    def child_metrics(
        self, state: SearchState, dna: DNA, valid: Any, batch_size: int
    ) -> dict[str, float]:
        acc, loss = self.accuracy(state, self.path_of(dna), "index", valid, batch_size)
        return {"valid_accuracy": acc, "valid_loss": loss}

    def uniform_path(self, rng: np.random.Generator) -> np.ndarray:
        """The path of a uniformly drawn DNA that `sn.is_valid` accepts (invalid
        ones, e.g. an all-`none` NAS-Bench-201 cell, are drawn again)."""
        return self.path_of(self.sn.random_dna(rng))
