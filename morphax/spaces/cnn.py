"""Ready search spaces over plain Flax models: a CNN and an MLP.

The models are ordinary Flax linen modules a user could write; the spaces put
hyper-values in their fields. Depth is a choice among tuples of blocks, so
each block's width and kernel size are conditional decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..symbolic import oneof, register

Activation = Callable[[jax.Array], jax.Array]
NORMS = ("none", "batch", "layer")


@dataclass(frozen=True)
class Block:
    """One convolution block: `features` channels, a square `kernel_size`."""

    features: int
    kernel_size: int = 3


register(Block, name="morphax.spaces.Block")


def _norm(kind: str, x: jax.Array, train: bool) -> jax.Array:
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    if kind == "layer":
        return nn.LayerNorm()(x)
    if kind != "none":
        raise ValueError(f"unknown normalization {kind!r}; known: {NORMS}")
    return x


class ConvNet(nn.Module):
    """A plain CNN: conv blocks (conv, norm, activation, optional residual),
    2x2 max pooling between blocks while the image is at least 4 pixels wide,
    global average pooling and a dense classifier.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> net = ConvNet(blocks=(Block(8), Block(16, 5)), num_classes=10)
        >>> params = net.init(jax.random.key(0), jnp.ones((2, 8, 8, 1)))
        >>> net.apply(params, jnp.ones((2, 8, 8, 1))).shape
        (2, 10)
    """

    blocks: Sequence[Block] = (Block(16), Block(32))
    num_classes: int = 10
    activation: Activation = nn.relu
    norm: str = "none"
    residual: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i, block in enumerate(self.blocks):
            y = nn.Conv(block.features, (block.kernel_size, block.kernel_size))(x)
            y = self.activation(_norm(self.norm, y, train))
            if self.residual:
                if x.shape[-1] != block.features:
                    x = nn.Conv(block.features, (1, 1), use_bias=False)(x)
                y = y + x
            x = y
            if i < len(self.blocks) - 1 and x.shape[1] >= 4:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


class MLP(nn.Module):
    """A plain multi-layer perceptron on flattened inputs."""

    hidden: Sequence[int] = (128,)
    num_classes: int = 10
    activation: Activation = nn.relu
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = self.activation(x)
        return nn.Dense(self.num_classes)(x)


for _cls in (ConvNet, MLP):
    register(_cls, name=f"morphax.spaces.{_cls.__name__}")

DEFAULT_ACTIVATIONS: tuple[Activation, ...] = (nn.relu, nn.gelu, nn.swish)


def cnn_space(
    *,
    num_classes: int = 10,
    max_depth: int = 3,
    widths: Sequence[int] = (16, 32, 64),
    kernel_sizes: Sequence[int] = (3, 5),
    activations: Sequence[Activation] = DEFAULT_ACTIVATIONS,
    norms: Sequence[str] = NORMS,
    residual: bool = True,
) -> ConvNet:
    """A CNN search space: depth, per-block widths and kernel sizes,
    activation, normalization and residual connections.

    Examples:
        >>> import morphax as mx
        >>> spec = mx.dna_spec(cnn_space())
        >>> spec.space_size
        4644
    """
    for name, values in (
        ("widths", widths),
        ("kernel_sizes", kernel_sizes),
        ("activations", activations),
        ("norms", norms),
    ):
        if not values:
            raise ValueError(f"cnn_space needs at least one of {name}, but got {values!r}")
    if max_depth < 1:
        raise ValueError(f"cnn_space needs max_depth >= 1, but got {max_depth}")
    depth_options = [
        tuple(Block(oneof(list(widths)), oneof(list(kernel_sizes))) for _ in range(depth))
        for depth in range(1, max_depth + 1)
    ]
    return ConvNet(
        blocks=oneof(depth_options, name="depth"),
        num_classes=num_classes,
        activation=oneof(list(activations), name="activation"),
        norm=oneof(list(norms), name="norm"),
        residual=oneof([False, True], name="residual") if residual else False,
    )


def mlp_space(
    *,
    num_classes: int = 10,
    max_depth: int = 3,
    widths: Sequence[int] = (32, 64, 128, 256),
    activations: Sequence[Activation] = DEFAULT_ACTIVATIONS,
) -> MLP:
    """An MLP search space: depth, per-layer widths, activation, layer norm.

    Examples:
        >>> import morphax as mx
        >>> mx.dna_spec(mlp_space()).space_size
        504
    """
    if max_depth < 1 or not widths or not activations:
        raise ValueError("mlp_space needs max_depth >= 1 and non-empty widths and activations")
    return MLP(
        hidden=oneof(
            [tuple(oneof(list(widths)) for _ in range(d)) for d in range(1, max_depth + 1)],
            name="depth",
        ),
        num_classes=num_classes,
        activation=oneof(list(activations), name="activation"),
        layer_norm=oneof([False, True], name="layer_norm"),
    )


__all__: list[str] = ["MLP", "Block", "ConvNet", "cnn_space", "mlp_space"]
