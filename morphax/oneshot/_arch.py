"""`Arch`: the architecture arrays a supernet runs with (inputs of the jitted step)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@jax.tree_util.register_pytree_node_class
class Arch:
    """The architecture a supernet runs: mixing weights, a single path, or both.

    Rows follow the supernet's rows (one per `oneof` decision, in DNASpec
    order: `sn.row_ids`), columns its candidates (padded to `K`; see
    `sn.mask`). An `Arch` is a pytree: pass it to a jitted step as an input,
    so new weights or a new path never recompile.

    - `weights` only (`[n, K]`): each decision gives the weighted sum of its
      candidates (DARTS: pass `softmax(logits)` over the valid candidates).
    - `index` only (`[n]` ints): each decision runs its chosen candidate
      (SPOS, ENAS).
    - both: the forward pass is the one-hot path of `index`, the gradient
      flows to the chosen candidate's weight (GDAS's straight-through hard
      sample: `(1 - stop_gradient(w_i) + w_i) * y_i` for `i = index`), and
      through the softmax that made `weights` to every logit; "onehot" and
      "switch" give the same value and gradient.

    `sn.apply` checks shapes and dtypes always; index ranges and zeros on
    padding only for concrete arrays: under `jit` an out-of-range index
    gives zeros ("onehot") or a clamped candidate ("switch").

    Args:
        weights: `[n, K]` floats, or None.
        index: `[n]` ints, or None.

    Raises:
        ValueError: if both are None.

    Examples:
        >>> import jax.numpy as jnp
        >>> from morphax.oneshot import Arch
        >>> arch = Arch(index=jnp.array([0, 2]))
        >>> arch.weights is None, arch.index.shape
        (True, (2,))
        >>> import jax
        >>> len(jax.tree.leaves(Arch(weights=jnp.ones((2, 3)), index=jnp.array([0, 1]))))
        2
    """

    __slots__ = ("weights", "index")
    weights: Any
    index: Any

    def __init__(self, weights: Any = None, index: Any = None) -> None:
        if weights is None and index is None:
            raise ValueError(
                "Arch needs weights=[n, K] (a weighted sum), index=[n] (a single path) or "
                "both (a straight-through hard sample), but got neither"
            )
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Arch is immutable; make a new Arch")

    def tree_flatten(self) -> tuple[tuple[Any, Any], None]:
        return (self.weights, self.index), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: Sequence[Any]) -> Arch:
        del aux
        out = object.__new__(cls)
        object.__setattr__(out, "weights", children[0])
        object.__setattr__(out, "index", children[1])
        return out

    def __repr__(self) -> str:
        def shape(a: Any) -> str:
            return "None" if a is None else f"{getattr(a, 'dtype', '?')}{list(np.shape(a))}"

        return f"Arch(weights={shape(self.weights)}, index={shape(self.index)})"


def _concrete(a: Any) -> np.ndarray | None:
    """`a` as a numpy array when it is a concrete value (not a tracer)."""
    if isinstance(a, jax.core.Tracer):
        return None
    try:
        return np.asarray(a)
    except Exception:  # noqa: BLE001 - not convertible: checked by shape only
        return None


def check_arch(arch: Any, ids: Sequence[str], sizes: Sequence[int], k: int) -> Arch:
    """`arch` if its arrays fit a supernet of rows `ids` with `sizes` candidates (max `k`).

    Shapes and dtypes are checked always (also under `jit`); index ranges and
    weights on padding when the values are concrete (outside `jit`).

    Raises:
        TypeError, ValueError: naming the decision and the value.
    """
    if not isinstance(arch, Arch):
        raise TypeError(
            f"`arch` must be a morphax.oneshot.Arch (weights=[n, K] and/or index=[n]), but "
            f"got {arch!r}; write arch=mx.oneshot.Arch(weights=...) or Arch(index=...)"
        )
    n = len(ids)
    if arch.weights is not None:
        shape = tuple(np.shape(arch.weights))
        if shape != (n, k):
            raise ValueError(
                f"Arch weights must have shape [n, K] = [{n}, {k}] (one row per decision "
                f"{list(ids)[:6]}{'...' if n > 6 else ''}, one column per candidate), but got "
                f"shape {list(shape)}"
            )
        if not jnp.issubdtype(jnp.result_type(arch.weights), jnp.floating):
            raise TypeError(
                f"Arch weights must be floats, but got dtype {jnp.result_type(arch.weights)}"
            )
        weights = _concrete(arch.weights)
        if weights is not None:
            for r, size in enumerate(sizes):
                if np.any(weights[r, size:] != 0):
                    raise ValueError(
                        f"Arch weights for decision {ids[r]!r} (row {r}) are {weights[r].tolist()}"
                        f", but it has {size} candidates: columns {size}..{k - 1} are padding and"
                        " must be 0 (mask the logits with sn.mask before the softmax)"
                    )
    if arch.index is not None:
        shape = tuple(np.shape(arch.index))
        if shape != (n,):
            raise ValueError(
                f"Arch index must have shape [n] = [{n}] (one candidate per decision "
                f"{list(ids)[:6]}{'...' if n > 6 else ''}), but got shape {list(shape)}"
            )
        if not jnp.issubdtype(jnp.result_type(arch.index), jnp.integer):
            raise TypeError(
                f"Arch index must be ints (candidate indices), but got dtype "
                f"{jnp.result_type(arch.index)}"
            )
        index = _concrete(arch.index)
        if index is not None:
            for r, (i, size) in enumerate(zip(index.tolist(), sizes, strict=True)):
                if not 0 <= i < size:
                    raise ValueError(
                        f"Arch index {i} for decision {ids[r]!r} (row {r}) is out of range: it "
                        f"has {size} candidates, so the index must be in [0, {size - 1}]"
                    )
    return arch
