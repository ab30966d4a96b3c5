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

Everything here is a pure function of arrays; the learning rules that update
the policy (:func:`reinforce`, :func:`ppo`, as a :class:`Controller` over a
:class:`ControllerState`) are in `_learning`. Both are public through
:mod:`morphax.algorithms.policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import DNA, Choice, DNASpec, Float, Int

Params = dict[str, jax.Array]

_NEG = -1e9  # logit of an impossible category (finite: no NaN in gradients)
_INIT_STD = 0.25  # initial std of float decisions, in normalized units


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
        >>> from morphax.algorithms.policy import PolicyLayout, init_params, sample
        >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.floatv(1e-3, 1.0, scale="log")])
        >>> layout = PolicyLayout.from_spec(spec)
        >>> s = sample(layout, init_params(layout), jax.random.PRNGKey(0))
        >>> _ = spec.validate(spec.from_array((s.indices, s.values)))
    """
    return draw(layout, params, jax.random.bits(key, (num_random_words(layout),), jnp.uint32))
