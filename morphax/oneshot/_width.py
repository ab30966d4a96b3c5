"""Width decisions: a `oneof` over ints as a weight-entangled layer with channel masks.

In a supernet, `nn.Dense(features=mx.oneof([32, 64, 128]))` builds one
kernel of the largest width (128); candidate `j` uses its first `c_j`
output channels. The decision gives a :class:`Width`, an `int` of the
largest value that remembers its decision, and a method interceptor masks
the output of every module whose `features` field holds one (Flax's
`Dense`, `Conv`, ...): channel `c` is kept with weight
`sum_j w_j [c < c_j]`. A following layer sees zeros in the masked channels,
so its kernel's first input rows act as the child's; `child_variables`
slices every array to the child's shape (the first channels).

A width used otherwise (in arithmetic, as a kernel size or a loop count) is
the largest value, not mixed: `sn.verify` finds such places. A batch norm
right after a masked module (`Conv -> BatchNorm -> relu`) is masked as
well; one after an activation is not (its bias fills the masked channels),
and a norm across channels (`LayerNorm`, `GroupNorm`) sees the zeros: such
models do not decompose.

A one-hot supernet with widths equals the child within float32 rounding,
not bit for bit: the first `c` output columns of the supernet's wider
matmul or convolution are not summed in the same order as the child's
narrower one (on CPU, XLA's dot kernels block by the output width: plain
`(x @ w)[:, :8]` differs from `x @ w[:, :8]` in the last bits); zero padding
of the contracted axis alone was exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._mixed import SCOPE

if TYPE_CHECKING:
    from ._supernet import _Decider


class Width(int):
    """The largest width of a decision over ints, carrying the decision."""

    decider: _Decider
    row: int
    pid: str
    sizes: tuple[int, ...]

    def __new__(cls, decider: _Decider, row: int, pid: str, sizes: tuple[int, ...]) -> Width:
        out = super().__new__(cls, max(sizes))
        out.decider, out.row, out.pid, out.sizes = decider, row, pid, sizes
        return out

    def __reduce__(self) -> Any:
        return (int, (int(self),))

    def mask(self, dtype: Any) -> jax.Array:
        """The channel mask `[max width]` for the current architecture."""
        coefs = self.decider.coefs(self.row, len(self.sizes))
        channel = jnp.arange(int(self))
        keep = jnp.stack([channel < c for c in self.sizes]).astype(dtype)  # [K, C]
        return jnp.einsum("k,kc->c", coefs.astype(dtype), keep)


def is_width(candidates: list[Any]) -> bool:
    """Whether a `oneof` chooses a width: all candidates positive ints (no bools)."""
    return bool(candidates) and all(type(c) is int and c > 0 for c in candidates)


def interceptor(decider: _Decider, next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
    """Masks the output channels of a module whose `features` is a :class:`Width`.

    A batch norm over the last axis applied to such a masked output is
    masked too: it normalizes each channel alone, so the child's channels
    are unchanged, but its bias (and running mean) would fill the masked
    ones, which the next layer would see.
    """
    if context.method_name != "__call__":
        return next_fun(*args, **kwargs)
    module = context.module
    width = getattr(module, "features", None)
    follows = False
    if not isinstance(width, Width):
        width, follows = _masked_input(decider, module, args), True
    out = next_fun(*args, **kwargs)
    if width is None or not isinstance(out, jax.Array | jax.core.Tracer):
        return out
    if out.shape[-1] != int(width):
        if follows:
            return out
        raise ValueError(
            f"width decision {width.pid!r} (candidates {list(width.sizes)}) sets "
            f"{type(module).__name__}.features, but the module's output has "
            f"{out.shape[-1]} channels, not {int(width)}; a supernet masks the last axis "
            "of a module's output by its `features`"
        )
    path = "/".join(p for p in module.scope.path if not SCOPE.match(p))
    width.decider.net._width_sites.setdefault(path, width.row)
    masked = out * width.mask(out.dtype)
    decider.masked[id(masked)] = (masked, width)
    return masked


def _masked_input(decider: _Decider, module: Any, args: Any) -> Width | None:
    """The width that masked the input of a per-channel batch norm, if one did."""
    if not args or not isinstance(module, nn.BatchNorm):
        return None
    x = args[0]
    hit = decider.masked.get(id(x))
    if hit is None or hit[0] is not x or module.axis not in (-1, jnp.ndim(x) - 1):
        return None
    return hit[1]
