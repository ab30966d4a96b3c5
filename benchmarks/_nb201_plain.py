"""A hand-written plain-JAX NAS-Bench-201 supernet and its search steps: the anchor of
`benchmarks/oneshot_nb201.py`.

Written from the papers' description, without Flax or optax: explicit parameter
pytrees, `lax.conv_general_dilated`, batch norm with batch statistics, the 5 ops
of each edge mixed by architecture weights, and the optimizers by hand.

The network (Dong & Yang, NAS-Bench-201, ICLR 2020, section 2; the DARTS search
network of their section 5):

- stem: 3x3 convolution (no bias) to `C` channels, batch norm;
- 3 stages of `N` cells with `C`, `2C`, `4C` channels, separated by a residual
  reduction block (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, shortcut 2x2 avg-pool +
  1x1 conv);
- batch norm, ReLU, global average pooling, dense classifier.

The search cell is a DAG of 4 nodes; node `j` sums its incoming edges `(i, j)`;
each edge is `sum_k w[e, k] * op_k(node_i)` over the ops `none` (zeros),
`skip_connect`, `nor_conv_1x1`, `nor_conv_3x3` (ReLU, conv, batch norm) and
`avg_pool_3x3` (stride 1, padding not counted). Every cell shares the same 6x5
architecture weights. Batch norm inside cells is the search kind: no affine
parameters, batch statistics, no running averages (`affine=False`,
`track_running_stats=False`); the stem, reduction and final batch norms are
affine and keep running averages (momentum 0.1 in PyTorch terms).

Steps (one "iteration" = what a search does per batch pair):

- `darts1`: DARTS first order (Liu et al., ICLR 2019, eq. 6-7 with xi = 0): an
  Adam step on the architecture logits from the validation loss at the current
  weights, then an SGD step on the weights from the training loss at
  `softmax(logits)`;
- `darts2`: second order: the architecture gradient is the exact autodiff
  gradient of `L_val(w - xi * dL_train/dw, alpha)` (xi = the weights' learning
  rate, the virtual step with weight decay, without momentum);
- `gdas`: GDAS (Dong & Yang, CVPR 2019): like `darts1`, but the weights are a
  Gumbel hard sample with a straight-through gradient, one sample per pass;
- `spos`: single path one-shot (Guo et al., ECCV 2020): a uniform op per edge as
  one-hot weights, an SGD step on the weights only.

Layouts: `unrolled` (a Python loop over the cells), `scan` (`lax.scan` over the
stacked parameters of a stage's cells) and `remat` (unrolled, each cell under
`jax.checkpoint`).

Hyper-parameters are the DARTS / NAS-Bench-201 ones: SGD momentum 0.9, lr
0.025, weight decay 3e-4, gradient norm clipped at 5 for the weights; Adam lr
3e-4, betas (0.5, 0.999), weight decay 1e-3 for the logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
STEPS = ("darts1", "darts2", "gdas", "spos")
LAYOUTS = ("unrolled", "scan", "remat")

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch's: running = (1 - m) * running + m * batch
W_LR, W_MOMENTUM, W_DECAY, W_CLIP = 0.025, 0.9, 3e-4, 5.0
A_LR, A_BETAS, A_DECAY, A_EPS = 3e-4, (0.5, 0.999), 1e-3, 1e-8
GDAS_TAU = (10.0, 0.1)

#: `forward(params, stats, x, arch) -> (logits, new_stats)`, training mode; `arch` is
#: `(weights [6, 5] or None, index [6] or None)`, as `mx.oneshot.Arch` takes them.
Forward = Callable[[Any, Any, jax.Array, tuple[Any, Any]], tuple[jax.Array, Any]]


# ---------------------------------------------------------------------------
# Layers.


def conv(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
    """A square convolution without bias, PyTorch padding `k // 2`, NHWC / HWIO."""
    pad = kernel.shape[0] // 2
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def batch_stats(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return mean, var


def search_bn(x: jax.Array) -> jax.Array:
    """Batch norm of the search cells: batch statistics, no affine parameters."""
    mean, var = batch_stats(x)
    return (x - mean) * lax.rsqrt(var + BN_EPS)


def affine_bn(
    x: jax.Array, p: dict[str, jax.Array], s: dict[str, jax.Array]
) -> tuple[jax.Array, Any]:
    """Batch norm in training mode: batch statistics, scale and bias, running averages updated."""
    mean, var = batch_stats(x)
    y = (x - mean) * lax.rsqrt(var + BN_EPS) * p["scale"] + p["bias"]
    n = x.shape[0] * x.shape[1] * x.shape[2]
    unbiased = var * (n / max(n - 1, 1))
    new = {
        "mean": (1 - BN_MOMENTUM) * s["mean"] + BN_MOMENTUM * lax.stop_gradient(mean),
        "var": (1 - BN_MOMENTUM) * s["var"] + BN_MOMENTUM * lax.stop_gradient(unbiased),
    }
    return y, new


def avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 average pooling, stride 1, padded by 1; the padding is not counted."""
    window, strides, pad = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
    total = lax.reduce_window(x, 0.0, lax.add, window, strides, pad)
    ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
    count = lax.reduce_window(ones, 0.0, lax.add, window, strides, pad)
    return total / count


def avg_pool_2x2(x: jax.Array) -> jax.Array:
    window = (1, 2, 2, 1)
    return lax.reduce_window(x, 0.0, lax.add, window, window, "VALID") / 4.0


# ---------------------------------------------------------------------------
# Parameters.


def _he(rng: np.random.Generator, shape: tuple[int, ...]) -> jax.Array:
    fan_in = math.prod(shape[:-1])
    return jnp.asarray(rng.standard_normal(shape, np.float32) * np.float32(math.sqrt(2.0 / fan_in)))


def _bn_params(c: int) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    return (
        {"scale": jnp.ones((c,)), "bias": jnp.zeros((c,))},
        {"mean": jnp.zeros((c,)), "var": jnp.ones((c,))},
    )


def _cell_params(rng: np.random.Generator, c: int) -> dict[str, Any]:
    return {
        f"edge{e}": {"conv1x1": _he(rng, (1, 1, c, c)), "conv3x3": _he(rng, (3, 3, c, c))}
        for e in range(len(EDGES))
    }


def _reduction_params(
    rng: np.random.Generator, c_in: int, c: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    bn_a, st_a = _bn_params(c)
    bn_b, st_b = _bn_params(c)
    params = {
        "conv_a": _he(rng, (3, 3, c_in, c)),
        "bn_a": bn_a,
        "conv_b": _he(rng, (3, 3, c, c)),
        "bn_b": bn_b,
        "shortcut": _he(rng, (1, 1, c_in, c)),
    }
    return params, {"bn_a": st_a, "bn_b": st_b}


def init(
    seed: int,
    *,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    in_channels: int = 3,
    layout: str = "unrolled",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, stats): the supernet's weights (He-normal convolutions, drawn with
    numpy: no compilation) and its batch-norm running averages.

    With `layout="scan"` the cells of a stage are stacked on a leading axis;
    otherwise each stage holds a list of cells.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, but got {layout!r}")
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {"stem": _he(rng, (3, 3, in_channels, channels))}
    stats: dict[str, Any] = {}
    params["stem_bn"], stats["stem_bn"] = _bn_params(channels)
    for stage in range(3):
        c = channels * 2**stage
        if stage:
            params[f"reduce{stage}"], stats[f"reduce{stage}"] = _reduction_params(rng, c // 2, c)
        cells = [_cell_params(rng, c) for _ in range(cells_per_stage)]
        if layout == "scan":
            params[f"stage{stage}"] = jax.tree.map(lambda *a: jnp.stack(a), *cells)
        else:
            params[f"stage{stage}"] = cells
    params["last_bn"], stats["last_bn"] = _bn_params(4 * channels)
    dense = rng.standard_normal((4 * channels, num_classes), np.float32) / math.sqrt(4 * channels)
    params["classifier"] = {"kernel": jnp.asarray(dense), "bias": jnp.zeros((num_classes,))}
    return params, stats


def num_params(params: Any) -> int:
    return sum(int(a.size) for a in jax.tree.leaves(params))


# ---------------------------------------------------------------------------
# Forward.


def _relu_conv_bn(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return search_bn(conv(jax.nn.relu(x), kernel))


def cell(p: dict[str, Any], x: jax.Array, w: jax.Array) -> jax.Array:
    """One search cell on `x` with architecture weights `w` [6, 5] (edge, op)."""
    nodes = [x]
    for dst in (1, 2, 3):
        total = None
        for e, (src, d) in enumerate(EDGES):
            if d != dst:
                continue
            h, pe = nodes[src], p[f"edge{e}"]
            # w[e, 0] is `none`: zeros times a weight adds nothing.
            y = (
                w[e, 1] * h
                + w[e, 2] * _relu_conv_bn(h, pe["conv1x1"])
                + w[e, 3] * _relu_conv_bn(h, pe["conv3x3"])
                + w[e, 4] * avg_pool_3x3(h)
            )
            total = y if total is None else total + y
        nodes.append(total)
    return nodes[-1]


def _reduction(p: dict[str, Any], s: dict[str, Any], x: jax.Array) -> tuple[jax.Array, Any]:
    y, sa = affine_bn(conv(jax.nn.relu(x), p["conv_a"], stride=2), p["bn_a"], s["bn_a"])
    y, sb = affine_bn(conv(jax.nn.relu(y), p["conv_b"]), p["bn_b"], s["bn_b"])
    shortcut = conv(avg_pool_2x2(x), p["shortcut"])
    return shortcut + y, {"bn_a": sa, "bn_b": sb}


def arch_weights(weights: jax.Array | None, index: jax.Array | None, num_ops: int) -> jax.Array:
    """The mixing weights [6, 5] of an architecture given as in `mx.oneshot.Arch`.

    Weights alone mix by them (DARTS); an index alone is its one-hot (a single
    path); both give the one-hot of the index in the forward pass and the
    gradient of the weights (GDAS's straight-through estimator).
    """
    if index is None:
        assert weights is not None
        return weights
    hard = jax.nn.one_hot(index, num_ops)
    if weights is None:
        return hard
    return hard - lax.stop_gradient(weights) + weights


def make_forward(layout: str = "unrolled") -> Forward:
    """`forward(params, stats, x, arch) -> (logits, new_stats)` in training mode."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, but got {layout!r}")
    cell_fn = jax.checkpoint(cell) if layout == "remat" else cell

    def forward(
        params: Any, stats: Any, x: jax.Array, arch: tuple[Any, Any]
    ) -> tuple[jax.Array, Any]:
        w = arch_weights(*arch, len(OPS))
        new: dict[str, Any] = {}
        h = conv(x, params["stem"])
        h, new["stem_bn"] = affine_bn(h, params["stem_bn"], stats["stem_bn"])
        for stage in range(3):
            if stage:
                h, new[f"reduce{stage}"] = _reduction(
                    params[f"reduce{stage}"], stats[f"reduce{stage}"], h
                )
            cells = params[f"stage{stage}"]
            if layout == "scan":
                h, _ = lax.scan(lambda carry, p: (cell_fn(p, carry, w), None), h, cells)
            else:
                for p in cells:
                    h = cell_fn(p, h, w)
        h, new["last_bn"] = affine_bn(h, params["last_bn"], stats["last_bn"])
        h = jnp.mean(jax.nn.relu(h), axis=(1, 2))
        logits = h @ params["classifier"]["kernel"] + params["classifier"]["bias"]
        return logits, new

    return forward


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


# ---------------------------------------------------------------------------
# Optimizers and steps.


class SearchState(NamedTuple):
    params: Any
    stats: Any
    logits: jax.Array  # architecture logits [6, 5]
    momentum: Any  # SGD momentum of the weights
    adam_m: jax.Array
    adam_v: jax.Array
    step: jax.Array
    key: jax.Array


def init_state(
    params: Any, stats: Any, seed: int, *, shape: tuple[int, int] = (6, 5)
) -> SearchState:
    """The search state: logits `1e-3 * N(0, 1)` (DARTS), zero optimizer states."""
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(1e-3 * rng.standard_normal(shape, np.float32))
    momentum = jax.tree.map(lambda p: jnp.asarray(np.zeros(p.shape, np.float32)), params)
    return SearchState(
        params, stats, logits, momentum, jnp.zeros(shape), jnp.zeros(shape),
        jnp.zeros((), jnp.int32), jax.random.key(seed),
    )  # fmt: skip


def sgd(params: Any, grads: Any, momentum: Any) -> tuple[Any, Any]:
    """SGD with momentum and weight decay (PyTorch's), the gradient norm clipped at 5."""
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    scale = jnp.minimum(1.0, W_CLIP / (norm + 1e-6))
    grads = jax.tree.map(lambda g, p: g * scale + W_DECAY * p, grads, params)
    momentum = jax.tree.map(lambda m, g: W_MOMENTUM * m + g, momentum, grads)
    return jax.tree.map(lambda p, m: p - W_LR * m, params, momentum), momentum


def adam(
    logits: jax.Array, grad: jax.Array, m: jax.Array, v: jax.Array, t: jax.Array
) -> tuple[jax.Array, ...]:
    """Adam with L2 weight decay folded into the gradient (PyTorch's `weight_decay`)."""
    b1, b2 = A_BETAS
    grad = grad + A_DECAY * logits
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * jnp.square(grad)
    tf = (t + 1).astype(jnp.float32)
    mhat, vhat = m / (1 - b1**tf), v / (1 - b2**tf)
    return logits - A_LR * mhat / (jnp.sqrt(vhat) + A_EPS), m, v


def _gumbel_sample(
    key: jax.Array, logits: jax.Array, tau: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """GDAS's sample: (the Gumbel softmax at temperature `tau`, its argmax)."""
    g = -jnp.log(-jnp.log(jax.random.uniform(key, logits.shape, minval=1e-20, maxval=1.0)))
    soft = jax.nn.softmax((logits + g) / tau, axis=-1)
    return soft, jnp.argmax(soft, axis=-1)


def make_step(
    forward: Forward, kind: str = "darts1", *, total_steps: int = 1000
) -> Callable[..., tuple[SearchState, jax.Array]]:
    """`step(state, x_train, y_train, x_valid, y_valid) -> (state, train_loss)`.

    `forward(params, stats, x, arch)` is any supernet forward in training mode:
    this module's (:func:`make_forward`) or another library's, so that both run
    the very same optimizer code.
    """
    if kind not in STEPS:
        raise ValueError(f"step kind must be one of {STEPS}, but got {kind!r}")

    def loss(params: Any, stats: Any, x: jax.Array, y: jax.Array, w: Any) -> tuple[jax.Array, Any]:
        logits, new_stats = forward(params, stats, x, w)
        return cross_entropy(logits, y), new_stats

    def weight_step(
        s: SearchState, x: jax.Array, y: jax.Array, w: Any
    ) -> tuple[Any, Any, Any, jax.Array]:
        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(s.params, s.stats, x, y, w)
        params, momentum = sgd(s.params, grads, s.momentum)
        return params, stats, momentum, value

    def step(
        s: SearchState, xt: jax.Array, yt: jax.Array, xv: jax.Array, yv: jax.Array
    ) -> tuple[SearchState, jax.Array]:
        key, k_arch, k_weights = jax.random.split(s.key, 3)
        logits, m, v = s.logits, s.adam_m, s.adam_v
        if kind == "spos":
            idx = jax.random.randint(k_weights, (logits.shape[0],), 0, logits.shape[1])
            params, stats, momentum, value = weight_step(s, xt, yt, (None, idx))
            return s._replace(
                params=params, stats=stats, momentum=momentum, step=s.step + 1, key=key
            ), value

        if kind == "gdas":
            frac = jnp.minimum(s.step.astype(jnp.float32) / max(total_steps - 1, 1), 1.0)
            tau = GDAS_TAU[0] + (GDAS_TAU[1] - GDAS_TAU[0]) * frac

            def weights(lg: jax.Array, k: jax.Array) -> tuple[Any, Any]:
                return _gumbel_sample(k, lg, tau)
        else:

            def weights(lg: jax.Array, k: jax.Array) -> tuple[Any, Any]:
                return jax.nn.softmax(lg, axis=-1), None

        def val_loss(lg: jax.Array) -> jax.Array:
            if kind == "darts2":  # the unrolled virtual weight step, differentiated exactly
                w = weights(lg, k_arch)
                g = jax.grad(lambda p: loss(p, s.stats, xt, yt, w)[0])(s.params)
                p2 = jax.tree.map(lambda p, gi: p - W_LR * (gi + W_DECAY * p), s.params, g)
                return loss(p2, s.stats, xv, yv, w)[0]
            return loss(s.params, s.stats, xv, yv, weights(lg, k_arch))[0]

        grad = jax.grad(val_loss)(logits)
        logits, m, v = adam(logits, grad, m, v, s.step)
        params, stats, momentum, value = weight_step(s, xt, yt, weights(logits, k_weights))
        new = SearchState(params, stats, logits, momentum, m, v, s.step + 1, key)
        return new, value

    return step
