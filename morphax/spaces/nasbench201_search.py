"""The NAS-Bench-201 network as one model code for weight-sharing search.

:func:`search_net` is the network of :mod:`~morphax.spaces.nasbench201_net`
with its cell written define-by-run: each edge is
`mx.oneof(OPS, name="edge_s_d")`, the names of
:func:`~morphax.spaces.nasbench201.cell_space` (the DNASpecs are equal, and
all cells share the 6 decisions), and the op runs through
:func:`morphax.dispatch`. So the same model is a space (`mx.trace`), a child
(`mx.materialize` of a DNA: a trainable network) and a supernet
(`mx.oneshot.supernet`), and a searched DNA is scored by the shipped table
(`nasbench201.load().test_accuracy(dna, "cifar10")`).

`none` gives zeros (its term is added, so the child is the same sum).
`batch_norm="search"` is the DARTS / NAS-Bench-201 search convention: the
batch norms of the cell's ops have no affine parameters and always
normalize with the batch's statistics (no running averages); "train" gives
the affine batch norm with running averages of the trained networks. The
stem, the reduction blocks and the last batch norm are the trained
network's in both.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> import morphax as mx
    >>> from morphax.spaces import nasbench201 as nb
    >>> net = nb.search_net(channels=4, cells_per_stage=1)
    >>> x = jnp.zeros((2, 8, 8, 3))
    >>> mx.trace(net, x).spec == mx.dna_spec(nb.cell_space())
    True
    >>> child = mx.materialize(mx.trace(net, x), mx.DNA([3, 0, 1, 2, 4, 3]))
    >>> jax.eval_shape(child.apply, jax.eval_shape(child.init, jax.random.key(0), x), x).shape
    (2, 10)
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..symbolic import DNA, DNASpec, dispatch, dna_spec, oneof, register
from ._nb201_arch import EDGES, OPS, cell_space

__all__ = ["BATCH_NORMS", "NB201SearchNet", "search_net"]

#: The batch-norm conventions of :func:`search_net`.
BATCH_NORMS = ("search", "train")
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _norm(x: jax.Array, train: bool, mode: str, name: str) -> jax.Array:
    if mode == "search":  # no parameters, no running averages: the batch's statistics
        mean = jnp.mean(x, axis=(0, 1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2), keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + _BN_EPSILON)
    return nn.BatchNorm(
        use_running_average=not train, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name
    )(x)


class _ReLUConvBN(nn.Module):
    features: int
    kernel_size: int
    strides: int = 1
    batch_norm: str = "train"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        k, pad = self.kernel_size, self.kernel_size // 2
        x = nn.Conv(
            self.features,
            (k, k),
            strides=(self.strides, self.strides),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            name="conv",
        )(nn.relu(x))
        return _norm(x, train, self.batch_norm, name="bn")


class _Reduction(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = _ReLUConvBN(self.features, 3, strides=2, name="conv_a")(x, train)
        y = _ReLUConvBN(self.features, 3, name="conv_b")(y, train)
        shortcut = nn.avg_pool(x, (2, 2), strides=(2, 2))
        return nn.Conv(self.features, (1, 1), use_bias=False, name="shortcut")(shortcut) + y


def _op(op: str, x: jax.Array, train: bool, batch_norm: str, name: str) -> jax.Array:
    if op == "none":
        # Zeros that XLA does not see as a constant: an avg-pool of a node that is
        # all `none` would be constant-folded at every compile of such a child
        # (about 36 s of a 70 s one-epoch fit on a CPU core, in one measurement).
        return jax.lax.optimization_barrier(jnp.zeros_like(x))
    if op == "skip_connect":
        return x
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        k = 1 if op == "nor_conv_1x1" else 3
        return _ReLUConvBN(x.shape[-1], k, batch_norm=batch_norm, name=name)(x, train)
    if op == "avg_pool_3x3":
        return nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {op!r}; the ops are {OPS}")


class _SearchCell(nn.Module):
    """The NAS-Bench-201 cell with each edge a define-by-run decision."""

    batch_norm: str = "search"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        nodes = [x]
        for dst in (1, 2, 3):
            total = None
            for src, d in EDGES:
                if d != dst:
                    continue
                name = f"edge_{src}_{d}"
                op = oneof(list(OPS), name=name)

                def run(o: str, h: jax.Array, name: str = name) -> jax.Array:
                    return _op(o, h, train, self.batch_norm, name)

                y = dispatch(op, run, nodes[src])
                total = y if total is None else total + y
            assert total is not None
            nodes.append(total)
        return nodes[-1]


class _CellBody(nn.Module):
    """One search cell with `train` as a field: the body that `nn.remat` and
    `nn.scan` wrap (scan's carry is the feature map)."""

    batch_norm: str
    train: bool

    @nn.compact
    def __call__(self, x: jax.Array, _: None = None) -> tuple[jax.Array, None]:
        return _SearchCell(self.batch_norm, name="cell")(x, self.train), None


def _zero_output(ops: Sequence[int]) -> bool:
    """Whether the cell's output is identically zero: node 3 reached only through `none`."""
    zero = [False, True, True, True]
    for dst in (1, 2, 3):
        zero[dst] = all(ops[e] == 0 or zero[src] for e, (src, d) in enumerate(EDGES) if d == dst)
    return zero[3]


class NB201SearchNet(nn.Module):
    """The NAS-Bench-201 network whose cells decide their edges define-by-run.

    Made by :func:`search_net`; see there. Images `[N, H, W, C]` with `H`, `W`
    divisible by 4.
    """

    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    batch_norm: str = "search"
    scan: bool = False
    remat: bool = False

    def __mx_dna_spec__(self) -> DNASpec:
        """The DNASpec (that of `cell_space()`), so a supernet need not trace the network."""
        return dna_spec(cell_space())

    def __mx_is_valid__(self, dna: DNA) -> bool:
        """False for cells whose output is identically zero (single paths resample them)."""
        return not _zero_output([int(v) for v in dna])

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4 or x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(
                f"NB201SearchNet takes images [N, H, W, C] with H and W divisible by 4, but "
                f"got shape {x.shape}"
            )
        x = nn.Conv(self.channels, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="stem")(x)
        x = _norm(x, train, "train", name="stem_bn")
        for stage in range(3):
            width = self.channels * 2**stage
            if stage > 0:
                x = _Reduction(width, name=f"reduce{stage}")(x, train)
            x = self._cells(stage, x, train)
        x = nn.relu(_norm(x, train, "train", name="last_bn"))
        return nn.Dense(self.num_classes, name="classifier")(jnp.mean(x, axis=(1, 2)))

    def _cells(self, stage: int, x: jax.Array, train: bool) -> jax.Array:
        """The stage's cells: unrolled, or one `nn.scan` over them; `remat` recomputes
        each cell's activations in the backward pass instead of keeping them."""
        if not (self.scan or self.remat):
            for i in range(self.cells_per_stage):
                x = _SearchCell(self.batch_norm, name=f"stage{stage}_cell{i}")(x, train)
            return x
        body: type[_CellBody] = nn.remat(_CellBody) if self.remat else _CellBody
        if self.scan:
            cells = nn.scan(
                body,
                variable_axes={"params": 0, "batch_stats": 0},
                split_rngs={"params": True},
                length=self.cells_per_stage,
            )
            return cells(self.batch_norm, train, name=f"stage{stage}_cells")(x, None)[0]
        for i in range(self.cells_per_stage):
            x = body(self.batch_norm, train, name=f"stage{stage}_cell{i}")(x)[0]
        return x


register(NB201SearchNet, name="morphax.spaces.NB201SearchNet")


def search_net(
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    batch_norm: str = "search",
    *,
    scan: bool = False,
    remat: bool = False,
) -> NB201SearchNet:
    """The NAS-Bench-201 network for weight-sharing search (one model code, three modes).

    Args:
        channels: `C`, the width of the first stage (then `2C`, `4C`).
        cells_per_stage: `N`, the cells in each of the 3 stages.
        num_classes: the outputs of the classifier.
        batch_norm: "search" (the cells' batch norms without affine
            parameters, always on batch statistics: the DARTS / NAS-Bench-201
            search convention) or "train" (affine, running averages).
        scan: run each stage's cells as one `nn.scan` (parameters stacked on
            a leading axis): the supernet compiles several times faster, but
            on CPU its steps were 2-7x slower (issue 10's prototype), so the
            default is unrolled.
        remat: recompute each cell's activations in the backward pass
            (`nn.remat`): much less temporary memory, more compute per step.

    Returns:
        An :class:`NB201SearchNet`; `mx.oneshot.supernet(net, x)` makes its
        supernet (with `sn.is_valid` refusing cells whose output is zero).

    Raises:
        ValueError: for non-positive sizes or an unknown `batch_norm`.

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.search_net(channels=8, batch_norm="train").batch_norm
        'train'
        >>> nb.search_net(batch_norm="affine")
        Traceback (most recent call last):
        ...
        ValueError: search_net needs batch_norm in ('search', 'train'), but got batch_norm='affine'
    """
    for field, value in (
        ("channels", channels),
        ("cells_per_stage", cells_per_stage),
        ("num_classes", num_classes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"search_net needs {field} >= 1 (an int), but got {field}={value!r}")
    if batch_norm not in BATCH_NORMS:
        raise ValueError(
            f"search_net needs batch_norm in {BATCH_NORMS}, but got batch_norm={batch_norm!r}"
        )
    for field, flag in (("scan", scan), ("remat", remat)):
        if not isinstance(flag, bool):
            raise TypeError(f"search_net needs {field} True or False, but got {field}={flag!r}")
    return NB201SearchNet(
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
        batch_norm=batch_norm,
        scan=scan,
        remat=remat,
    )
