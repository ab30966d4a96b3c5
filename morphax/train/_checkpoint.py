"""Kept weights: a trained child's variables saved with orbax-checkpoint.

`fit(..., checkpoint_dir=path)` writes, under `path`:

* `variables/`: an orbax checkpoint (``StandardCheckpointer``) of the
  trained variables as host (numpy) arrays, so it restores on any device:
  for a Linen model the variables dict that `model.apply` takes
  (``{"params": ..., "batch_stats": ...}``); for an NNX module its whole
  state as a pure dict (``nnx.state(module).to_pure_dict()``, PRNG keys as
  their raw ``uint32`` key data);
* `morphax.json`: what was saved (``"linen"`` or ``"nnx"``) and the final
  metrics, written last (after orbax has finished), so its presence means
  the checkpoint is complete.

:func:`load_variables` gives the variables back; :func:`load_module` builds
an NNX child and puts its trained state in.
"""

from __future__ import annotations

import json
import os
import typing
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import Call, DynamicChild, build

_META = "morphax.json"
_VARIABLES = "variables"
FORMAT = 1


def _host(tree: Any) -> Any:
    """Numpy copies of every leaf; PRNG keys as their raw key data."""

    def leaf(a: Any) -> Any:
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(jax.device_get(a))

    return jax.tree.map(leaf, tree)


def save_variables(
    path: str | os.PathLike[str],
    variables: Any,
    *,
    kind: str,
    metrics: dict[str, float] | None = None,
) -> str:
    """Saves `variables` (a pytree of arrays) under `path`, replacing what a
    previous run saved there; returns the absolute path.

    Raises:
        ValueError: if `path` is an existing file, or a directory holding
            something other than a morphax checkpoint.
    """
    import orbax.checkpoint as ocp

    root = os.path.abspath(os.fspath(path))
    if os.path.isfile(root):
        raise ValueError(f"checkpoint_dir={root!r} is a file; pass a directory path")
    if os.path.isdir(root):
        unknown = sorted(set(os.listdir(root)) - {_META, _VARIABLES})
        if unknown:
            raise ValueError(
                f"checkpoint_dir={root!r} holds files that are not a morphax checkpoint "
                f"({unknown[:3]}); pass an empty or new directory (a run replaces only its "
                "own checkpoint)"
            )
        if os.path.exists(os.path.join(root, _META)):
            os.remove(os.path.join(root, _META))  # incomplete until written again
    os.makedirs(root, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(root, _VARIABLES), _host(variables), force=True)
    meta = {"format": FORMAT, "kind": kind, "metrics": dict(metrics or {})}
    tmp = os.path.join(root, _META + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, allow_nan=True)
    os.replace(tmp, os.path.join(root, _META))
    return root


def _meta(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    root = os.path.abspath(os.fspath(path))
    try:
        with open(os.path.join(root, _META)) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no morphax checkpoint at {root!r} (no {_META}): pass the directory that "
            "fit(..., checkpoint_dir=...) wrote (FitResult.checkpoint); a checkpoint whose "
            "save was interrupted has no "
            f"{_META}"
        ) from None
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"the checkpoint at {root!r} has format {meta.get('format')!r}; this morphax "
            f"reads format {FORMAT}"
        )
    return root, meta


def load_variables(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The trained variables that `fit(..., checkpoint_dir=path)` saved, as
    numpy arrays: for a Linen model the dict that `model.apply` takes; for an
    NNX module the pure dict of its state (:func:`load_module` builds the
    module).

    Raises:
        FileNotFoundError: if `path` holds no complete morphax checkpoint.

    Examples:
        >>> import tempfile, optax
        >>> from morphax.spaces.cnn import MLP
        >>> from morphax.train import fit, load_digits, load_variables
        >>> train, test = load_digits()
        >>> model = MLP(hidden=(16,))
        >>> result = fit(model, optax.adam(1e-2), train, epochs=1,
        ...              checkpoint_dir=tempfile.mkdtemp() + "/best")
        >>> variables = load_variables(result.checkpoint)
        >>> model.apply(variables, test.x[:3]).shape
        (3, 10)
    """
    import orbax.checkpoint as ocp

    root, _ = _meta(path)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(os.path.join(root, _VARIABLES))
    return typing.cast(dict[str, Any], restored)


def load_module(child: Any, path: str | os.PathLike[str]) -> Any:
    """The trained NNX module: `child` (a symbolic call, a define-by-run NNX
    child or an `nnx.Module` of the same structure) built, with the state
    saved under `path` in place of its initial one (a module passed in is
    left as it is: the result is a new module).

    Raises:
        FileNotFoundError: if `path` holds no complete morphax checkpoint.
        ValueError: if the checkpoint is of a Linen model, or its state does
            not fit the child's structure.
    """
    from flax import nnx

    root, meta = _meta(path)
    if meta.get("kind") != "nnx":
        raise ValueError(
            f"the checkpoint at {root!r} holds Linen variables; use "
            "model.apply(load_variables(path), x) instead of load_module"
        )
    if isinstance(child, nnx.Module):
        abstract = child
    elif isinstance(child, Call | DynamicChild):
        abstract = build(child)  # its initial weights are replaced below
    else:
        raise TypeError(
            f"load_module needs the NNX child that was trained (a symbolic call, a "
            f"define-by-run child or an nnx.Module), but got {child!r}"
        )
    graphdef, state = nnx.split(abstract)
    restored = load_variables(root)
    target = state.to_pure_dict()
    expected: Any = jax.tree.structure(target)
    if expected != jax.tree.structure(restored):
        raise ValueError(
            f"the checkpoint at {root!r} does not fit {type(abstract).__name__}: its state has "
            f"another structure ({len(jax.tree.leaves(restored))} arrays saved, "
            f"{len(jax.tree.leaves(target))} expected); pass the child that was trained"
        )

    def leaf(where: Any, like: Any, saved: Any) -> Any:
        if jnp.issubdtype(like.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.asarray(saved), impl=jax.random.key_impl(like))
        if tuple(like.shape) != tuple(np.shape(saved)):
            raise ValueError(
                f"the checkpoint at {root!r} holds an array of shape {np.shape(saved)} at "
                f"{jax.tree_util.keystr(where)} where {type(abstract).__name__} has "
                f"{tuple(like.shape)}; pass the child that was trained"
            )
        return jnp.asarray(saved, like.dtype)

    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(leaf, target, restored))
    return nnx.merge(graphdef, state)
