"""Learning rules of the RL controllers over a factorized policy, in JAX.

A :class:`Controller` bundles the jitted `init`, `sample`, `update` and
`observe` functions of one learning rule (:func:`reinforce`, :func:`ppo`)
over a :class:`~morphax.algorithms.PolicyLayout`; its :class:`ControllerState`
is a named pytree of arrays, so it checkpoints with `jax.tree` and numpy.
All of it is public through :mod:`morphax.algorithms.policy`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple, ParamSpec

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from ._policy import Params, PolicyLayout, Sample, draw, evaluate, init_params, num_random_words

_LOG_STD_RANGE = (math.log(1e-3), 0.0)
_MEAN_RANGE = (-1.0, 2.0)


class Batch(NamedTuple):
    """Rewarded draws for an update (leading axis: the batch).

    Attributes:
        actions: `[b, n]` int32 (see :class:`Sample`).
        raw: `[b, f]` float32.
        log_prob: `[b]` float32, the log-probability when drawn (for PPO's ratio).
        reward: `[b]` float32, maximized.
    """

    actions: jax.Array
    raw: jax.Array
    log_prob: jax.Array
    reward: jax.Array


class ControllerState(NamedTuple):
    """The whole state of a controller: a pytree of arrays (checkpointable).

    Attributes:
        params: `{"logits": [n, K], "mean": [f], "log_std": [f]}`.
        opt_state: the optax (Adam) state of `params`.
        baseline: the moving average of the rewards (bias-corrected).
        baseline_weight: the weight of the moving average so far (0: no
            reward seen yet).
        key: the PRNG key of the next draw (uint32 `[2]`).
        buffer: rewarded draws waiting for the next update (`batch_size` rows).
        buffer_size: how many rows of `buffer` are filled.
    """

    params: Params
    opt_state: optax.OptState
    baseline: jax.Array
    baseline_weight: jax.Array
    key: jax.Array
    buffer: Batch
    buffer_size: jax.Array


class Controller(NamedTuple):
    """The pure functions of an RL controller over one layout (all jitted but `sample`).

    Attributes:
        init: `init(key) -> ControllerState`.
        sample: `sample(state) -> (state, Sample)`: draws with `state.key`
            and replaces it with a new key derived from it (calls `draw`).
        draw: `draw(params, key) -> (new_key, Sample)`: the jitted core of
            `sample` (it passes fewer arrays, so it is cheaper to call).
        update: `update(state, batch) -> state`: one learning step on a batch.
        observe: `observe(state, actions, raw, log_prob, reward) -> state`:
            buffers one rewarded draw, and calls `update` when `batch_size`
            are buffered.
        log_prob: `log_prob(params, actions, raw) -> float`: for draws that
            the controller did not make itself.
    """

    init: Callable[[ArrayLike], ControllerState]
    sample: Callable[[ControllerState], tuple[ControllerState, Sample]]
    draw: Callable[[Params, jax.Array], tuple[jax.Array, Sample]]
    update: Callable[[ControllerState, Batch], ControllerState]
    observe: Callable[..., ControllerState]
    log_prob: Callable[[Params, Any, Any], jax.Array]


def _batch_log_prob(
    layout: PolicyLayout, params: Params, batch: Batch
) -> tuple[jax.Array, jax.Array]:
    logp, ent, _, _ = jax.vmap(lambda a, r: evaluate(layout, params, a, r))(
        batch.actions, batch.raw
    )
    return logp, ent


def _ema(baseline: jax.Array, weight: jax.Array, rewards: jax.Array, decay: float) -> tuple:
    """Bias-corrected moving averages after each reward (as in NAS-Bench-201)."""

    def step(carry: tuple[jax.Array, jax.Array], r: jax.Array) -> tuple[Any, jax.Array]:
        b, w = carry
        w2 = decay * w + (1.0 - decay)
        b2 = (decay * w * b + (1.0 - decay) * r) / w2
        return (b2, w2), b2

    (b, w), after = jax.lax.scan(step, (baseline, weight), rewards)
    return b, w, after


# -- controllers -----------------------------------------------------------------

_P = ParamSpec("_P")


def _cached(fn: Callable[_P, Controller]) -> Callable[_P, Controller]:
    """Caches a controller factory by its full arguments (defaults filled in),
    so that equal configurations share jitted functions, whichever way called."""
    signature = inspect.signature(fn)
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Controller:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return cached(*bound.args, **bound.kwargs)

    return wrapper


def _make_controller(
    layout: PolicyLayout,
    *,
    learning_rate: float,
    batch_size: int,
    loss: Callable[[Params, Batch, jax.Array, jax.Array], jax.Array],
    advantages: Callable[[ControllerState, Batch], tuple[jax.Array, jax.Array, jax.Array]],
    steps: int,
) -> Controller:
    optimizer = optax.adam(learning_rate)
    f = layout.float_columns.shape[0]

    def init(key: ArrayLike) -> ControllerState:
        params = init_params(layout)
        buffer = Batch(
            jnp.zeros((batch_size, layout.num_columns), jnp.int32),
            jnp.zeros((batch_size, f), jnp.float32),
            jnp.zeros((batch_size,), jnp.float32),
            jnp.zeros((batch_size,), jnp.float32),
        )
        zero = jnp.zeros((), jnp.float32)
        key = jnp.asarray(key, jnp.uint32)
        return ControllerState(
            params, optimizer.init(params), zero, zero, key, buffer, jnp.zeros((), jnp.int32)
        )

    words = num_random_words(layout)

    @jax.jit
    def draw_fn(params: Params, key: jax.Array) -> tuple[jax.Array, Sample]:
        # One threefry call (it dominates compile time): words 0-1 are the
        # next key, the others this draw's noise (distinct counters: independent).
        bits = jax.random.bits(key, (2 + words,), jnp.uint32)
        return bits[:2], draw(layout, params, bits[2:])

    def sample_fn(state: ControllerState) -> tuple[ControllerState, Sample]:
        key, s = draw_fn(state.params, state.key)
        return state._replace(key=key), s

    def update(state: ControllerState, batch: Batch) -> ControllerState:
        adv, baseline, weight = advantages(state, batch)
        grad_fn = jax.grad(loss)

        def step(_: int, carry: tuple[Params, optax.OptState]) -> tuple[Params, optax.OptState]:
            params, opt_state = carry
            grads = grad_fn(params, batch, adv, batch.log_prob)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            params = {
                "logits": params["logits"],
                "mean": jnp.clip(params["mean"], *_MEAN_RANGE),
                "log_std": jnp.clip(params["log_std"], *_LOG_STD_RANGE),
            }
            return params, opt_state

        params, opt_state = jax.lax.fori_loop(0, steps, step, (state.params, state.opt_state))
        return state._replace(
            params=params, opt_state=opt_state, baseline=baseline, baseline_weight=weight
        )

    def observe(
        state: ControllerState,
        actions: jax.Array,
        raw: jax.Array,
        log_prob: jax.Array,
        reward: jax.Array,
    ) -> ControllerState:
        i = state.buffer_size
        row = Batch(actions, raw, log_prob, reward)
        buffer = jax.tree.map(lambda b, x: b.at[i].set(x), state.buffer, row)
        state = state._replace(buffer=buffer, buffer_size=i + 1)
        return jax.lax.cond(
            i + 1 >= batch_size,
            lambda s: update(s, s.buffer)._replace(buffer_size=jnp.zeros((), jnp.int32)),
            lambda s: s,
            state,
        )

    def log_prob(params: Params, actions: jax.Array, raw: jax.Array) -> jax.Array:
        return evaluate(layout, params, actions, raw)[0]

    return Controller(
        jax.jit(init),
        sample_fn,
        draw_fn,
        jax.jit(update),
        jax.jit(observe),
        jax.jit(log_prob),
    )


@_cached
def reinforce(
    layout: PolicyLayout,
    *,
    learning_rate: float = 0.05,
    baseline_decay: float = 0.9,
    batch_size: int = 1,
    entropy_weight: float = 0.0,
) -> Controller:
    """REINFORCE with a moving-average reward baseline, as a :class:`Controller`.

    The loss of a batch is `-mean((r - b) * log_prob) - entropy_weight *
    mean(entropy)`, where `b` is the bias-corrected exponential moving average
    of the rewards, updated with each reward before its advantage is taken
    (as in NAS-Bench-201's REINFORCE); one Adam step per batch.

    Args:
        layout: the policy's structure (:meth:`PolicyLayout.from_spec`).
        learning_rate: Adam's learning rate.
        baseline_decay: the momentum of the moving-average baseline.
        batch_size: rewards per update (`observe` buffers them).
        entropy_weight: weight of an entropy bonus.

    Returns:
        The jitted functions (cached: equal arguments give the same functions).

    Examples:
        >>> import jax, morphax as mx
        >>> from morphax.algorithms.policy import PolicyLayout, reinforce
        >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.intv(1, 4)])
        >>> ctrl = reinforce(PolicyLayout.from_spec(spec), learning_rate=0.1)
        >>> state = ctrl.init(jax.random.PRNGKey(0))
        >>> state, s = ctrl.sample(state)
        >>> state = ctrl.observe(state, s.actions, s.raw, s.log_prob, jax.numpy.float32(1.0))
        >>> int(state.buffer_size)
        0

    References:
        Williams, Simple statistical gradient-following algorithms for
        connectionist reinforcement learning, Machine Learning 1992.
        Dong & Yang, NAS-Bench-201: Extending the Scope of Reproducible Neural
        Architecture Search, ICLR 2020.
    """

    def loss(params: Params, batch: Batch, adv: jax.Array, old: jax.Array) -> jax.Array:
        logp, ent = _batch_log_prob(layout, params, batch)
        return -jnp.mean(adv * logp) - entropy_weight * jnp.mean(ent)

    def advantages(state: ControllerState, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
        b, w, after = _ema(state.baseline, state.baseline_weight, batch.reward, baseline_decay)
        return batch.reward - after, b, w

    return _make_controller(
        layout,
        learning_rate=learning_rate,
        batch_size=batch_size,
        loss=loss,
        advantages=advantages,
        steps=1,
    )


@_cached
def ppo(
    layout: PolicyLayout,
    *,
    learning_rate: float = 0.05,
    clip: float = 0.2,
    epochs: int = 4,
    batch_size: int = 8,
    baseline_decay: float = 0.9,
    normalize_advantages: bool = True,
    entropy_weight: float = 0.0,
) -> Controller:
    """Proximal policy optimization on batches of rewards, as a :class:`Controller`.

    Each batch of `batch_size` rewarded draws gets `epochs` full-batch Adam
    steps on the clipped surrogate `-mean(min(ratio * A, clip(ratio, 1 - clip,
    1 + clip) * A)) - entropy_weight * mean(entropy)`, where `ratio` is the
    probability of a draw now over when drawn. The advantages `A` are the
    rewards centered and scaled within the batch (`normalize_advantages`), or
    the rewards minus the moving-average baseline of earlier batches.

    Args:
        layout: the policy's structure (:meth:`PolicyLayout.from_spec`).
        learning_rate: Adam's learning rate.
        clip: the clipping range of the probability ratio.
        epochs: gradient steps per batch.
        batch_size: rewards per update.
        baseline_decay: momentum of the moving average of batch rewards.
        normalize_advantages: center and scale the advantages per batch.
        entropy_weight: weight of an entropy bonus.

    Returns:
        The jitted functions (cached: equal arguments give the same functions).

    Examples:
        >>> import jax, morphax as mx
        >>> from morphax.algorithms.policy import PolicyLayout, ppo
        >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.floatv(0.0, 1.0)])
        >>> ctrl = ppo(PolicyLayout.from_spec(spec), batch_size=2)
        >>> state = ctrl.init(jax.random.PRNGKey(0))
        >>> state, s = ctrl.sample(state)
        >>> state = ctrl.observe(state, s.actions, s.raw, s.log_prob, jax.numpy.float32(1.0))
        >>> int(state.buffer_size)
        1

    References:
        Schulman, Wolski, Dhariwal, Radford & Klimov, Proximal Policy
        Optimization Algorithms, arXiv:1707.06347, 2017.
        Zoph, Vasudevan, Shlens & Le, Learning Transferable Architectures for
        Scalable Image Recognition, CVPR 2018 (PPO for an architecture controller).
    """

    def loss(params: Params, batch: Batch, adv: jax.Array, old: jax.Array) -> jax.Array:
        logp, ent = _batch_log_prob(layout, params, batch)
        ratio = jnp.exp(logp - old)
        surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * adv)
        return -jnp.mean(surrogate) - entropy_weight * jnp.mean(ent)

    def advantages(state: ControllerState, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
        r = batch.reward
        mean = jnp.mean(r)
        if normalize_advantages and r.shape[0] > 1:
            adv = (r - mean) / (jnp.std(r) + 1e-8)
        else:
            prior = jnp.where(state.baseline_weight > 0, state.baseline, mean)
            adv = r - prior
        b, w, _ = _ema(state.baseline, state.baseline_weight, mean[None], baseline_decay)
        return adv, b, w

    return _make_controller(
        layout,
        learning_rate=learning_rate,
        batch_size=batch_size,
        loss=loss,
        advantages=advantages,
        steps=epochs,
    )
