"""The NAS-Bench-201 network as a trainable Flax model, over the tabular cell space.

:mod:`morphax.spaces.nasbench201` searches the NAS-Bench-201 cell by table
lookup; this module builds the network that the table was made with, so a
searched cell can be trained for real. :func:`net_space` makes the same 6
decisions as :func:`~morphax.spaces.nasbench201.cell_space` (same ids, same
candidate order, equal DNASpecs), so a DNA found on the table materializes
directly into a trainable :class:`NB201Net`.

The network (the "TinyNetwork" of the NAS-Bench-201 code):

- a stem: 3x3 convolution to `C` channels, then batch norm;
- three stages of `N` cells with `C`, `2C` and `4C` channels, separated by
  residual reduction blocks (a ResNet basic block of stride 2);
- a final batch norm and ReLU, global average pooling and a dense classifier.

The cell is a DAG of 4 nodes: node 0 is the cell input, node `j` is the sum
of `op(node_i)` over its incoming edges `(i, j)`, and node 3 is the output.
The 6 edges come in the order of :data:`~morphax.spaces.nasbench201.EDGES`,
and each carries one of :data:`~morphax.spaces.nasbench201.OPS`:

- `none`: zeros (the edge is absent; it has no parameters);
- `skip_connect`: the identity;
- `nor_conv_1x1`, `nor_conv_3x3`: ReLU, convolution (no bias), batch norm;
- `avg_pool_3x3`: 3x3 average pooling, stride 1, padded (padding not counted).

Convolutions have no bias and use PyTorch-style symmetric padding, so the
parameter counts match the reference implementation's.

References:
    Xuanyi Dong and Yi Yang. NAS-Bench-201: Extending the Scope of
    Reproducible Neural Architecture Search. ICLR 2020.
    https://arxiv.org/abs/2001.00326. Reference code: `xautodl`,
    `models/cell_infers/tiny_network.py` and `cells.py` (the network and
    cell), `models/cell_operations.py` (the ops).

Examples:
    >>> import jax, jax.numpy as jnp
    >>> import morphax as mx
    >>> from morphax.spaces import nasbench201 as nb
    >>> from morphax.spaces.nasbench201_net import net_space
    >>> space = net_space(channels=4, cells_per_stage=1)
    >>> mx.dna_spec(space) == mx.dna_spec(nb.cell_space())
    True
    >>> net = mx.materialize(space, mx.DNA([3, 3, 3, 1, 3, 2]))
    >>> nb.arch_string(net.cell)
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
    >>> x = jnp.zeros((2, 32, 32, 3))
    >>> variables = jax.eval_shape(net.init, jax.random.key(0), x)  # shapes only
    >>> jax.eval_shape(net.apply, variables, x).shape
    (2, 10)

    Train it with :func:`morphax.train.fit` (it takes `train` and keeps the
    batch-norm statistics); `net.init` and `net.apply` work as for any Flax
    model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..symbolic import HyperValue, register
from .nasbench201 import EDGES, OPS, Cell, arch_string, cell_space, parse_arch_string

__all__ = ["NB201Cell", "NB201Net", "net_space", "to_net"]

#: Flax's momentum is PyTorch's `1 - momentum` (0.1 in the reference code).
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _batch_norm(x: jax.Array, train: bool, name: str) -> jax.Array:
    bn = nn.BatchNorm(
        use_running_average=not train, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name
    )
    return bn(x)


class _ReLUConvBN(nn.Module):
    """ReLU, a square convolution without bias (padding `kernel_size // 2`), batch norm."""

    features: int
    kernel_size: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        k, pad = self.kernel_size, self.kernel_size // 2
        x = nn.relu(x)
        x = nn.Conv(
            self.features,
            (k, k),
            strides=(self.strides, self.strides),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            name="conv",
        )(x)
        return _batch_norm(x, train, name="bn")


class _ReductionBlock(nn.Module):
    """The ResNet basic block of stride 2 between stages: halves the image.

    Two ReLU-Conv-BN 3x3 layers (the first of stride 2) plus a shortcut of
    2x2 average pooling and a 1x1 convolution to the new width.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = _ReLUConvBN(self.features, 3, strides=2, name="conv_a")(x, train)
        y = _ReLUConvBN(self.features, 3, name="conv_b")(y, train)
        shortcut = nn.avg_pool(x, (2, 2), strides=(2, 2))
        shortcut = nn.Conv(self.features, (1, 1), use_bias=False, name="shortcut")(shortcut)
        return shortcut + y


def _edge(op: str, x: jax.Array, train: bool, name: str) -> jax.Array | None:
    """The op of one edge on its input node; None for `none` (nothing to add)."""
    if op == "none":
        return None
    if op == "skip_connect":
        return x
    if op == "nor_conv_1x1":
        return _ReLUConvBN(x.shape[-1], 1, name=name)(x, train)
    if op == "nor_conv_3x3":
        return _ReLUConvBN(x.shape[-1], 3, name=name)(x, train)
    if op == "avg_pool_3x3":
        return nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {op!r}; the ops are {OPS}")


def _check_ops(ops: Any, where: str) -> tuple[str, ...]:
    """`ops` as a tuple of 6 op names, or a ValueError that names the bad edge."""
    if isinstance(ops, str | bytes) or not isinstance(ops, Sequence):
        raise TypeError(f"{where} takes {len(EDGES)} op names from {OPS}, but got {ops!r}")
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise ValueError(
            f"{where} needs {len(EDGES)} op names, one per edge {EDGES}, but got "
            f"{len(ops)}: {ops!r}"
        )
    for i, op in enumerate(ops):
        if op not in OPS:
            s, d = EDGES[i]
            raise ValueError(
                f"{where}: edge {i} ({s}->{d}) has op {op!r}, which is not one of the "
                f"NAS-Bench-201 ops {OPS}"
            )
    return ops


class NB201Cell(nn.Module):
    """The NAS-Bench-201 cell: a DAG of 4 nodes whose 6 edges carry `ops`.

    Node 0 is the input; node `j` sums `op(node_i)` over its edges `(i, j)`
    (zeros when all of them are `none`); node 3 is the output. The cell keeps
    the image size and the number of channels.

    Attributes:
        ops: 6 op names from :data:`~morphax.spaces.nasbench201.OPS`, edge
            `i` being `EDGES[i]`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> skips = NB201Cell(ops=("skip_connect",) * 6)  # node 1 = x, 2 = 2x, 3 = 4x
        >>> x = jnp.ones((1, 4, 4, 2))
        >>> skips.apply(skips.init(jax.random.key(0), x), x)[0, 0, 0]
        Array([4., 4.], dtype=float32)
        >>> cell = NB201Cell(ops=("nor_conv_3x3", "none", "skip_connect", "none", "none", "avg_pool_3x3"))
        >>> variables = jax.eval_shape(cell.init, jax.random.key(0), x)
        >>> jax.tree.map(lambda p: p.shape, variables["params"])  # `none` has no parameters
        {'edge_0_1': {'bn': {'bias': (2,), 'scale': (2,)}, 'conv': {'kernel': (3, 3, 2, 2)}}}
    """

    ops: tuple[str, ...]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        ops = _check_ops(self.ops, "NB201Cell")
        nodes = [x]
        for dst in (1, 2, 3):
            terms = []
            for (src, d), op in zip(EDGES, ops, strict=True):
                if d == dst:
                    y = _edge(op, nodes[src], train, name=f"edge_{src}_{d}")
                    if y is not None:
                        terms.append(y)
            if not terms:  # zeros hidden from XLA's constant folding (nasbench201_search._op)
                terms = [jax.lax.optimization_barrier(jnp.zeros_like(x))]
            nodes.append(sum(terms[1:], terms[0]))
        return nodes[-1]


class NB201Net(nn.Module):
    """The NAS-Bench-201 network with one cell architecture, for `[N, H, W, C]` images.

    NAS-Bench-201 trains it with `channels=16, cells_per_stage=5`; smaller
    settings make quick runs. Image sides must be divisible by 4 (two
    reductions halve them).

    Attributes:
        cell: the cell: a :class:`~morphax.spaces.nasbench201.Cell` or 6 op
            names (stored as a `Cell`); in a search space, a `Cell` holding
            hyper-values (see :func:`net_space`).
        channels: `C`, the width of the first stage (then `2C`, `4C`).
        cells_per_stage: `N`, the cells in each of the 3 stages.
        num_classes: the outputs of the classifier.

    Raises:
        ValueError: for op names outside :data:`~morphax.spaces.nasbench201.OPS`
            (naming the edge) or non-positive sizes.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> net = NB201Net(cell=["nor_conv_3x3"] * 6, channels=4, cells_per_stage=1)
        >>> net.cell.edges[0]
        'nor_conv_3x3'
        >>> x = jnp.zeros((2, 8, 8, 1))
        >>> variables = jax.eval_shape(net.init, jax.random.key(0), x)  # shapes only
        >>> sum(p.size for p in jax.tree.leaves(variables["params"]))
        23302
        >>> logits, updates = jax.eval_shape(
        ...     lambda v, x: net.apply(v, x, train=True, mutable=["batch_stats"]), variables, x
        ... )
        >>> logits.shape
        (2, 10)
        >>> NB201Net(cell=["conv"] * 6)
        Traceback (most recent call last):
        ...
        ValueError: NB201Net(cell=...): edge 0 (0->1) has op 'conv', which is not one of the NAS-Bench-201 ops ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
    """

    cell: Cell | Sequence[str]
    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10

    def __post_init__(self) -> None:
        # A space holds hyper-values here: they are checked once materialized.
        if not isinstance(self.cell, Cell | HyperValue):
            object.__setattr__(
                self, "cell", Cell(edges=_check_ops(self.cell, "NB201Net(cell=...)"))
            )
        for field in ("channels", "cells_per_stage", "num_classes"):
            value = getattr(self, field)
            if isinstance(value, HyperValue):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NB201Net needs {field} >= 1 (an int), but got {field}={value!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if not isinstance(self.cell, Cell) or any(
            isinstance(op, HyperValue) for op in self.cell.edges
        ):
            raise ValueError(
                "NB201Net.cell still holds hyper-values: this is a search space, not a "
                "network; materialize it with a DNA first (mx.materialize(space, dna))"
            )
        if x.ndim != 4 or x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(
                f"NB201Net takes images [N, H, W, C] with H and W divisible by 4 (two "
                f"reductions halve them), but got shape {x.shape}"
            )
        ops = self.cell.edges
        x = nn.Conv(self.channels, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="stem")(x)
        x = _batch_norm(x, train, name="stem_bn")
        for stage in range(3):
            width = self.channels * 2**stage
            if stage > 0:
                x = _ReductionBlock(width, name=f"reduce{stage}")(x, train)
            for i in range(self.cells_per_stage):
                x = NB201Cell(ops, name=f"stage{stage}_cell{i}")(x, train)
        x = nn.relu(_batch_norm(x, train, name="last_bn"))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="classifier")(x)


for _cls in (NB201Cell, NB201Net):
    register(_cls, name=f"morphax.spaces.{_cls.__name__}")


def net_space(*, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10) -> NB201Net:
    """The NAS-Bench-201 search space as a trainable network.

    The decisions are those of :func:`~morphax.spaces.nasbench201.cell_space`
    (the DNASpecs are equal), so a DNA searched on the tabular benchmark
    materializes directly into an :class:`NB201Net` to train.

    Args:
        channels: `C`, the width of the first stage.
        cells_per_stage: `N`, the cells in each stage.
        num_classes: the outputs of the classifier.

    Returns:
        An `NB201Net` whose `cell` is `cell_space()`.

    Examples:
        >>> import morphax as mx
        >>> from morphax.spaces import nasbench201 as nb
        >>> space = net_space(channels=8, cells_per_stage=2)
        >>> mx.dna_spec(space).space_size, mx.dna_spec(space) == mx.dna_spec(nb.cell_space())
        (15625, True)
        >>> mx.materialize(space, mx.DNA([1, 0, 0, 2, 3, 4])).cell.edges
        ('skip_connect', 'none', 'none', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
    """
    return NB201Net(
        cell=cell_space(),
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
    )


def to_net(
    arch: Any, *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10
) -> NB201Net:
    """The trainable network of one NAS-Bench-201 architecture.

    Args:
        arch: an architecture in any form the tabular benchmark takes: an arch
            string, a materialized :class:`~morphax.spaces.nasbench201.Cell`, a
            DNA of `cell_space()` (or of :func:`net_space`), 6 op names or op
            indices, or a table index.
        channels: `C`, the width of the first stage.
        cells_per_stage: `N`, the cells in each stage.
        num_classes: the outputs of the classifier.

    Raises:
        ValueError, TypeError: if `arch` is not an architecture of the space.

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> net = to_net(nb.load().best("cifar10").arch, channels=4, cells_per_stage=1)
        >>> net.cell.edges
        ('nor_conv_3x3', 'nor_conv_3x3', 'nor_conv_3x3', 'skip_connect', 'nor_conv_3x3', 'nor_conv_1x1')
    """
    ops = parse_arch_string(arch_string(arch))
    return NB201Net(
        cell=Cell(edges=ops),
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
    )
