"""Per-epoch checkpoints of a one-shot search, and JAX's persistent compilation cache.

A checkpoint directory holds `state-<unit>/` (an orbax checkpoint of the
state's leaves as host arrays) and `morphax-oneshot.json` (what the search
is, how many units are done, the history and the exported DNA), replaced
atomically after the state is written; older states are removed after.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import jax
import numpy as np

from ..symbolic import DNA, from_json, to_json

_META = "morphax-oneshot.json"
FORMAT = 1
#: where the persistent compilation cache goes unless told otherwise
DEFAULT_CACHE = os.path.join("~", ".cache", "morphax", "jax")


def enable_compilation_cache(path: str | os.PathLike[str] | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache, so a rerun does not compile again.

    Args:
        path: the cache directory; None: `$MORPHAX_COMPILATION_CACHE`, else
            `~/.cache/morphax/jax`. With None, a directory JAX already has
            configured (`jax_compilation_cache_dir`) is kept.

    Returns:
        The directory in use.

    Examples:
        >>> import tempfile
        >>> from morphax.oneshot import enable_compilation_cache
        >>> d = enable_compilation_cache(tempfile.mkdtemp())
    """
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if path is None:
        if current:
            return str(current)
        path = os.environ.get("MORPHAX_COMPILATION_CACHE") or os.path.expanduser(DEFAULT_CACHE)
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    if current != path:
        jax.config.update("jax_compilation_cache_dir", path)
    # Cache executables whose compile took 0.2 s or more (JAX's default: 1 s).
    min_secs = jax.config.jax_persistent_cache_min_compile_time_secs  # type: ignore[attr-defined]
    if min_secs > 0.2:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return path


class Checkpoint:
    """The checkpoint directory of one search (`identity`: what must match to resume)."""

    def __init__(self, path: str | os.PathLike[str], identity: dict[str, Any]) -> None:
        self.root = os.path.abspath(os.fspath(path))
        if os.path.isfile(self.root):
            raise ValueError(f"checkpoint={self.root!r} is a file; pass a directory")
        self.identity = json.loads(json.dumps(identity))

    def _meta(self) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.root, _META)) as f:
                meta: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return None
        return meta

    def restore(self, like: Any) -> tuple[Any, list[dict[str, float]], list[DNA]] | None:
        """(state, history, dnas) of the last saved unit, or None if none is saved.

        Raises:
            ValueError: if the checkpoint is of another search.
        """
        meta = self._meta()
        if meta is None:
            return None
        if meta.get("format") != FORMAT:
            raise ValueError(f"the checkpoint at {self.root!r} has format {meta.get('format')!r}")
        theirs = meta["identity"]
        diff = [
            k
            for k in sorted(set(theirs) | set(self.identity))
            if theirs.get(k) != self.identity.get(k)
        ]
        if diff:
            shown = "; ".join(
                f"{k}: saved {theirs.get(k)!r}, now {self.identity.get(k)!r}" for k in diff
            )
            raise ValueError(
                f"the checkpoint at {self.root!r} is of another search ({shown}); pass the same "
                "arguments to resume it, or another checkpoint directory"
            )
        import orbax.checkpoint as ocp

        leaves, treedef = jax.tree.flatten(like)
        with ocp.StandardCheckpointer() as c:
            saved = c.restore(os.path.join(self.root, meta["state"]))
        if len(saved) != sum(1 for a in leaves if np.size(a)):
            raise ValueError(f"the checkpoint at {self.root!r} does not fit this search's state")
        restored = [
            jax.numpy.asarray(np.asarray(saved[f"{i:05d}"]), dtype=a.dtype) if np.size(a) else a
            for i, a in enumerate(leaves)
        ]
        dnas = [from_json(d) for d in meta["dnas"]]
        return jax.tree.unflatten(treedef, restored), meta["history"], dnas

    def save(self, state: Any, history: list[dict[str, float]], dnas: list[DNA]) -> None:
        import orbax.checkpoint as ocp

        os.makedirs(self.root, exist_ok=True)
        name = f"state-{len(history):05d}"
        leaves = jax.device_get(jax.tree.leaves(state))
        # orbax refuses empty arrays: those come back from the state's shapes
        tree = {f"{i:05d}": np.asarray(a) for i, a in enumerate(leaves) if np.size(a)}
        with ocp.StandardCheckpointer() as c:
            c.save(os.path.join(self.root, name), tree, force=True)
        meta = {
            "format": FORMAT,
            "identity": self.identity,
            "state": name,
            "history": history,
            "dnas": [to_json(d) for d in dnas],
        }
        tmp = os.path.join(self.root, _META + ".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.root, _META))
        for entry in os.listdir(self.root):
            if entry.startswith("state-") and entry != name:
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)
