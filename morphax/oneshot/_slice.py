"""A child's variables out of a supernet's: its candidates' scopes, widths sliced."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flax
import jax
import numpy as np

from ..symbolic import DNA
from ._mixed import SCOPE

if TYPE_CHECKING:
    from ._supernet import Supernet

Path = tuple[str, ...]


def _plain(tree: Any) -> dict[str, Any]:
    return flax.core.unfreeze(tree) if isinstance(tree, flax.core.FrozenDict) else dict(tree)


def _index(variables: Any) -> dict[Path, list[tuple[Path, tuple[tuple[int, int], ...]]]]:
    """Supernet paths by their child path (candidate scopes removed), with the scopes."""
    flat = flax.traverse_util.flatten_dict(_plain(variables))
    out: dict[Path, list[tuple[Path, tuple[tuple[int, int], ...]]]] = {}
    for path in flat:
        scopes: list[tuple[int, int]] = []
        kept: list[str] = []
        for part in path:
            m = SCOPE.match(str(part))
            if m:
                scopes.append((int(m.group(1)), int(m.group(2))))
            else:
                kept.append(part)
        out.setdefault(tuple(kept), []).append((path, tuple(scopes)))
    return out


def _fmt(path: Path) -> str:
    return "/".join(str(p) for p in path)


def child_variables(sn: Supernet, variables: Any, dna: DNA) -> Any:
    choice = sn.row_values(dna)
    shapes = sn.child_shapes(dna)
    index = _index(variables)
    flat = flax.traverse_util.flatten_dict(_plain(variables))
    out: dict[Path, Any] = {}
    for path, leaf in flax.traverse_util.flatten_dict(_plain(shapes)).items():
        entries = [
            full
            for full, scopes in index.get(path, [])
            if all(choice.get(r) == j for r, j in scopes)
        ]
        if len(entries) != 1:
            found = [_fmt(full) for full, _ in index.get(path, [])]
            raise ValueError(
                f"the child of {dna!r} has variable {_fmt(path)!r} {tuple(leaf.shape)}, but the "
                f"supernet has {'no' if not entries else 'several'} matching variables for its "
                f"choices (candidates there: {found or 'none'}); modules made inside candidates "
                "need the same names in the supernet and the child: give them explicit names"
            )
        value = flat[entries[0]]
        out[path] = _slice(value, tuple(leaf.shape), path)
    return flax.traverse_util.unflatten_dict(out)


def _slice(value: Any, shape: tuple[int, ...], path: Path) -> Any:
    have = tuple(np.shape(value))
    if have == shape:
        return value
    if len(have) != len(shape) or any(c > s for c, s in zip(shape, have, strict=True)):
        raise ValueError(
            f"the child's variable {_fmt(path)!r} has shape {shape}, which is not a slice of "
            f"the supernet's {have} (a width decision gives the first channels of the "
            "largest width)"
        )
    return (
        jax.lax.slice(value, (0,) * len(shape), shape)
        if isinstance(value, jax.Array)
        else np.asarray(value)[tuple(slice(0, c) for c in shape)]
    )
