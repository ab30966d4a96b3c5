"""Numerics of the RL controllers: a factorized policy over a DNASpec, in JAX.

The policy has one independent distribution per column of the spec's flat
array form (see :class:`morphax.DNAArray`):

* a categorical over the candidates of each choice; the picks of a distinct
  `manyof` are drawn one after the other without replacement (Gumbel-max with
  the earlier picks masked out), and a sorted `manyof` is sorted after the
  draw (its log-probability is that of the draw order);
* a categorical over the `high - low + 1` values of each int decision;
* a Gaussian with a learned mean and log-std for each float decision, on the
  `[0, 1]`-normalized coordinate (log-normalized for `scale="log"`), clipped
  into the bounds.

A sample draws every column; the log-probability counts only the *active*
ones (a column is active when its parent is active and takes the value that
enables it), so inactive draws are free and ignored by `DNASpec.from_array`.

Everything here is a pure function of arrays. A :class:`Controller` bundles
the jitted `init`, `sample`, `update` and `observe` functions of one learning
rule (:func:`reinforce`, :func:`ppo`); its :class:`ControllerState` is a
named pytree of arrays, so it checkpoints with `jax.tree` and numpy.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, ParamSpec

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from ..symbolic import DNA, Choice, DNASpec, Float, Int

Params = dict[str, jax.Array]

_NEG = -1e9  # logit of an impossible category (finite: no NaN in gradients)
_INIT_STD = 0.25  # initial std of float decisions, in normalized units
_LOG_STD_RANGE = (math.log(1e-3), 0.0)
_MEAN_RANGE = (-1.0, 2.0)


@dataclass(frozen=True, eq=False)
class PolicyLayout:
    """The static structure of a factorized policy over a DNASpec.

    Made by :meth:`from_spec`; equal (and hashed) by the spec's structure, so
    two equal specs share compiled functions. Categorical columns are padded
    to the widest one (`K`), so a wide int range (`intv(1, 10_000)`) makes
    every draw pay for `K` categories per column: give such a decision a
    `floatv` or a coarser `oneof`.

    Attributes:
        num_columns: columns of the flat array form (`n`).
        num_categories: the largest number of categories of a column (`K`).
        valid: `[n, K]`, which categories of each column exist.
        is_float: `[n]`, the float columns.
        offset: `[n]`, the value of category 0 (an int decision's `low`).
        parent: `[n]`, the column that enables each column (-1: top level).
        parent_value: `[n]`, the value of `parent` that enables it.
        depth: the deepest nesting of conditional columns.
        float_columns: `[f]`, the float columns, in order.
        float_low: `[f]`, the lower bound (its log for log-scale columns).
        float_high: `[f]`, the upper bound (its log for log-scale columns).
        float_log: `[f]`, which float columns have log scale.
        pick: `[n]`, the pick number of a `manyof` column (else 0).
        before: `[n, n]`, `before[c, d]` when `d` is an earlier pick of the
            same distinct `manyof` as `c` (its category is excluded for `c`).
        same_sorted: `[n, n]`, `same_sorted[c, d]` when `c` and `d` are picks
            of the same sorted `manyof`.
        num_passes: the largest `k` of a distinct `manyof` (1 if none).
    """

    key: tuple[Any, ...]
    num_columns: int
    num_categories: int
    valid: np.ndarray
    is_float: np.ndarray
    offset: np.ndarray
    parent: np.ndarray
    parent_value: np.ndarray
    depth: int
    float_columns: np.ndarray
    float_low: np.ndarray
    float_high: np.ndarray
    float_log: np.ndarray
    pick: np.ndarray
    before: np.ndarray
    same_sorted: np.ndarray
    num_passes: int

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyLayout) and other.key == self.key

    @property
    def has_sorted(self) -> bool:
        return bool(self.same_sorted.any())

    @classmethod
    def from_spec(cls, spec: DNASpec) -> PolicyLayout:
        """The layout of the factorized policy over `spec`'s columns."""
        cols = spec.columns
        n = len(cols)
        sizes = [_num_categories(p) for p in cols]
        k_max = max(sizes, default=1)
        valid = np.arange(k_max)[None, :] < np.asarray(sizes, np.int32).reshape(n, 1)
        parent = np.asarray([p.parent for p in cols], np.int32).reshape(n)
        depth = 0
        for p in cols:
            d, q = 0, p
            while q.parent >= 0:
                d, q = d + 1, cols[q.parent]
            depth = max(depth, d)
        floats = [p for p in cols if isinstance(p, Float)]
        log = [p.scale == "log" for p in floats]
        low = [math.log(p.low) if lg else p.low for p, lg in zip(floats, log, strict=True)]
        high = [math.log(p.high) if lg else p.high for p, lg in zip(floats, log, strict=True)]
        pick = np.zeros(n, np.int32)
        before = np.zeros((n, n), bool)
        same_sorted = np.zeros((n, n), bool)
        passes = 1
        for p in cols:
            if isinstance(p, Choice) and p.k > 1:
                pick[p.column] = p.pick
                for c in p.group:
                    if p.distinct and getattr(cols[c], "pick", 0) < p.pick:
                        before[p.column, c] = True
                    if p.sorted:
                        same_sorted[p.column, c] = True
                if p.distinct:
                    passes = max(passes, p.k)
        return cls(
            key=tuple(_column_key(p) for p in cols),
            num_columns=n,
            num_categories=k_max,
            valid=valid,
            is_float=np.asarray([isinstance(p, Float) for p in cols], bool).reshape(n),
            offset=np.asarray([p.low if isinstance(p, Int) else 0 for p in cols], np.int32),
            parent=parent,
            parent_value=np.asarray([p.parent_value for p in cols], np.int32).reshape(n),
            depth=depth,
            float_columns=np.asarray([p.column for p in floats], np.int32).reshape(len(floats)),
            float_low=np.asarray(low, np.float32).reshape(len(floats)),
            float_high=np.asarray(high, np.float32).reshape(len(floats)),
            float_log=np.asarray(log, bool).reshape(len(floats)),
            pick=pick,
            before=before,
            same_sorted=same_sorted,
            num_passes=passes,
        )

    def to_actions(self, spec: DNASpec, dna: DNA) -> tuple[np.ndarray, np.ndarray]:
        """The actions (`[n]` categories, `[f]` normalized floats) that give `dna`.

        For a DNA the policy did not sample itself (a sorted `manyof` counts
        as drawn in sorted order; a float at a bound as drawn at the bound).
        """
        arr = spec.to_array(dna)
        actions = np.where(arr.mask & ~self.is_float, arr.indices - self.offset, 0)
        x = arr.values[self.float_columns].astype(np.float64)
        x = np.where(self.float_log, np.log(np.maximum(x, 1e-30)), x)
        raw = (x - self.float_low) / np.maximum(self.float_high - self.float_low, 1e-30)
        return actions.astype(np.int32), raw.astype(np.float32)


def _num_categories(p: Any) -> int:
    if isinstance(p, Choice):
        return p.num_candidates
    if isinstance(p, Int):
        return p.high - p.low + 1
    return 1


def _column_key(p: Any) -> tuple[Any, ...]:
    head = (type(p).__name__, p.parent, p.parent_value)
    if isinstance(p, Choice):
        return (*head, p.num_candidates, p.k, p.pick, p.distinct, p.sorted, p.group)
    if isinstance(p, Int):
        return (*head, p.low, p.high)
    return (*head, p.low, p.high, p.scale)


class Sample(NamedTuple):
    """One draw of the policy.

    Attributes:
        actions: `[n]` int32, the category drawn for each column (for a
            sorted `manyof`, in draw order; for an int, `value - low`).
        raw: `[f]` float32, the Gaussian draw of each float column
            (normalized coordinate, before clipping).
        log_prob: the log-probability of the draw (active columns only).
        indices: `[n]` int32, the DNA's array form (`DNAArray.indices`).
        values: `[n]` float32, the DNA's array form (`DNAArray.values`).
    """

    actions: jax.Array
    raw: jax.Array
    log_prob: jax.Array
    indices: jax.Array
    values: jax.Array


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


# -- the policy ------------------------------------------------------------------


def init_params(layout: PolicyLayout) -> Params:
    """Uniform categoricals; floats centered in their range with std 0.25."""
    f = layout.float_columns.shape[0]
    return {
        "logits": jnp.zeros((layout.num_columns, layout.num_categories), jnp.float32),
        "mean": jnp.full((f,), 0.5, jnp.float32),
        "log_std": jnp.full((f,), math.log(_INIT_STD), jnp.float32),
    }


def _excluded(layout: PolicyLayout, actions: jax.Array) -> jax.Array:
    """`[n, K]`: categories taken by earlier picks of the same distinct manyof."""
    onehot = jax.nn.one_hot(actions, layout.num_categories, dtype=jnp.float32)
    return (jnp.asarray(layout.before, jnp.float32) @ onehot) > 0


def _dna_indices(layout: PolicyLayout, actions: jax.Array) -> jax.Array:
    """The value of each column (sorted `manyof` picks sorted)."""
    v = actions + layout.offset
    if not layout.has_sorted:
        return v
    same = jnp.asarray(layout.same_sorted)
    pick = jnp.asarray(layout.pick)
    earlier = (v[None, :] < v[:, None]) | (
        (v[None, :] == v[:, None]) & (pick[None, :] < pick[:, None])
    )
    rank = jnp.sum(same & earlier, axis=1)
    at = same & (rank[None, :] == pick[:, None])  # at[c, d]: d's value goes to c
    sorted_v = jnp.sum(jnp.where(at, v[None, :], 0), axis=1)
    return jnp.where(same.any(axis=1), sorted_v, v)


def _active(layout: PolicyLayout, values: jax.Array) -> jax.Array:
    top = jnp.asarray(layout.parent < 0)
    parent = jnp.asarray(np.maximum(layout.parent, 0))
    enabled = values[parent] == layout.parent_value
    active = top
    for _ in range(layout.depth):
        active = top | (active[parent] & enabled)
    return active


def evaluate(
    layout: PolicyLayout, params: Params, actions: jax.Array, raw: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Log-probability and entropy of a draw, with its DNA values and active mask.

    Args:
        layout: the policy's structure.
        params: the policy's parameters.
        actions: `[n]` int32 categories (see :class:`Sample`).
        raw: `[f]` float32 normalized Gaussian draws.

    Returns:
        `(log_prob, entropy, dna_indices, active)`: the log-probability and the
        entropy (of each active column's distribution, summed), the `[n]`
        values of the columns, and the `[n]` active mask.
    """
    logits = jnp.where(layout.valid, params["logits"], _NEG)
    if layout.num_passes > 1:
        logits = jnp.where(_excluded(layout, actions), _NEG, logits)
    logp_all = jax.nn.log_softmax(logits, axis=-1)
    logp_cat = jnp.take_along_axis(logp_all, actions[:, None], axis=-1)[:, 0]
    ent_cat = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    values = _dna_indices(layout, actions)
    active = _active(layout, values)
    cat = active & ~jnp.asarray(layout.is_float)
    log_std = params["log_std"]
    z = (raw - params["mean"]) * jnp.exp(-log_std)
    logp_f = -0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
    ent_f = log_std + 0.5 * (1.0 + math.log(2 * math.pi))
    f_active = active[layout.float_columns]
    logp = jnp.sum(jnp.where(cat, logp_cat, 0.0)) + jnp.sum(jnp.where(f_active, logp_f, 0.0))
    ent = jnp.sum(jnp.where(cat, ent_cat, 0.0)) + jnp.sum(jnp.where(f_active, ent_f, 0.0))
    return logp, ent, values, active


def num_random_words(layout: PolicyLayout) -> int:
    """How many uint32 random words one draw of the policy uses."""
    return layout.num_columns * layout.num_categories + layout.float_columns.shape[0]


def _uniform(bits: jax.Array) -> jax.Array:
    """Floats in [0, 1) from uint32 words (23 random mantissa bits)."""
    one = jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type((bits >> 9) | one, jnp.float32) - 1.0


def draw(layout: PolicyLayout, params: Params, bits: jax.Array) -> Sample:
    """One draw of the policy from `num_random_words(layout)` uint32 random words.

    All columns are drawn (Gumbel-max for categoricals, inverse-CDF normals
    for floats); the log-probability counts the active ones.
    """
    n, k = layout.num_columns, layout.num_categories
    u = _uniform(bits)
    tiny = jnp.finfo(jnp.float32).tiny
    gumbel = -jnp.log(-jnp.log(jnp.maximum(u[: n * k], tiny))).reshape(n, k)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    eps = math.sqrt(2.0) * jax.lax.erf_inv(jnp.maximum(2.0 * u[n * k :] - 1.0, lo))
    logits = jnp.where(layout.valid, params["logits"], _NEG)
    scores = logits + gumbel
    actions = jnp.argmax(scores, axis=-1).astype(jnp.int32)
    for t in range(1, layout.num_passes):  # later picks of distinct manyofs
        masked = jnp.where(_excluded(layout, actions), _NEG, scores)
        actions = jnp.where(layout.pick == t, jnp.argmax(masked, axis=-1), actions)
    raw = params["mean"] + jnp.exp(params["log_std"]) * eps
    logp, _, values, active = evaluate(layout, params, actions, raw)
    x = layout.float_low + jnp.clip(raw, 0.0, 1.0) * (layout.float_high - layout.float_low)
    x = jnp.where(layout.float_log, jnp.exp(x), x)
    floats = jnp.zeros(layout.num_columns, jnp.float32).at[layout.float_columns].set(x)
    indices = jnp.where(active & ~layout.is_float, values, 0).astype(jnp.int32)
    return Sample(actions, raw, logp, indices, floats)


def sample(layout: PolicyLayout, params: Params, key: jax.Array) -> Sample:
    """One draw of the policy with `key` (see :func:`draw`).

    Examples:
        >>> import jax, morphax as mx
        >>> from morphax.algorithms._policy import PolicyLayout, init_params, sample
        >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.floatv(1e-3, 1.0, scale="log")])
        >>> layout = PolicyLayout.from_spec(spec)
        >>> s = sample(layout, init_params(layout), jax.random.PRNGKey(0))
        >>> spec.validate(spec.from_array((s.indices, s.values)))
    """
    return draw(layout, params, jax.random.bits(key, (num_random_words(layout),), jnp.uint32))


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
        >>> from morphax.algorithms._policy import PolicyLayout, reinforce
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
        >>> from morphax.algorithms._policy import PolicyLayout, ppo
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
