"""NNX modules in the pure steps: split into a graph definition and state.

:class:`NNXModel` gives an `nnx.Module` the `init`/`apply` face that the
steps call on Linen modules: `apply` merges the graph definition with the
parameters and the other state (batch statistics, RNG counts), runs the
module in train or eval mode and, when asked, returns the updated state. It
compares and hashes by the graph definition, so modules of one structure
share compiled steps and a new structure compiles anew; the weights are not
part of that key. A module built by `fit` from a program (a symbolic call or
a define-by-run child) is keyed by that program's value instead: a graph
definition holds static attributes such as a `functools.partial`, which
compare by identity, so two concrete modules built apart may compile twice.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


class NNXModel:
    """An NNX module's graph definition and its (copied) initial state."""

    __slots__ = ("graphdef", "key", "_params", "_rest")
    #: `apply` takes `train` (the steps pass it; the module's mode is set from it).
    takes_train = True

    def __init__(self, module: nnx.Module, key: Any = None) -> None:
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)  # type: ignore[misc]
        self.graphdef = graphdef
        self.key = ("graphdef", graphdef) if key is None else ("program", key)
        # copies: the train step donates its state, never the user's module
        self._params = jax.tree.map(jnp.copy, params)
        self._rest = jax.tree.map(jnp.copy, rest)

    def variables(self) -> tuple[Any, Any]:
        """(params, non-parameter collections) as the steps hold them."""
        return self._params, {"nnx": self._rest}

    def init(self, key: jax.Array, *args: Any, train: bool = False, **kwargs: Any) -> Any:
        del key, args, train, kwargs  # an NNX module is initialized when it is built
        return {"params": self._params, "nnx": self._rest}

    def apply(
        self,
        variables: Any,
        *args: Any,
        train: bool = False,
        mutable: Any = False,
        rngs: Any = None,
        **kwargs: Any,
    ) -> Any:
        del rngs  # an NNX module carries its own RNG streams in its state
        module = self.merge(variables)
        if train:
            module.train()
        else:
            module.eval()
        out = module(*args, **kwargs)
        if mutable:
            return out, {"nnx": nnx.state(module, nnx.Not(nnx.Param))}
        return out

    def merge(self, variables: Any) -> nnx.Module:
        """The concrete module with these variables."""
        return nnx.merge(
            self.graphdef, variables["params"], variables.get("nnx", nnx.State({})), copy=True
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NNXModel) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"NNXModel({type(self.graphdef).__name__})"


def is_nnx(model: Any) -> bool:
    return isinstance(model, nnx.Module)
