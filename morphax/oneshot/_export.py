"""DNA <-> architecture rows: export (argmax over valid candidates), one-hot, paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..symbolic import DNA, Choice, DecisionPoint, Float, Int, ManyChoice, ManyOf

if TYPE_CHECKING:
    from ._supernet import Supernet


def row_values(sn: Supernet, dna: DNA) -> dict[int, int]:
    """`{row: candidate}` for the oneof decisions that `dna` makes active."""
    out: dict[int, int] = {}
    for p, v in sn.spec.decode(dna):
        if isinstance(p, Choice) and not p.is_manyof:
            assert isinstance(v, int)
            out.setdefault(sn._row_of[p.id], v)
    return out


def path_of(sn: Supernet, dna: DNA) -> np.ndarray:
    out = np.zeros(sn.rows, np.int32)
    for r, j in row_values(sn, dna).items():
        out[r] = j
    return out


def one_hot(sn: Supernet, dna: DNA) -> np.ndarray:
    out = np.zeros((sn.rows, sn.num_candidates), np.float32)
    out[np.arange(sn.rows), path_of(sn, dna)] = 1.0
    return out


def _fixed(sn: Supernet, p: DecisionPoint) -> Any:
    hyper = sn._met.get(p.id)
    fixed = getattr(hyper, "fixed", None)
    if fixed is None:
        raise ValueError(
            f"decision {p.id!r} ({p.describe()}) is not a oneof and the supernet never met it "
            "with a pinned value (fixed=), so export cannot set it"
        )
    return fixed


def export_dna(sn: Supernet, arr: np.ndarray) -> DNA:
    n, k = sn.rows, sn.num_candidates
    if arr.shape != (n, k):
        raise ValueError(
            f"export takes logits or weights of shape [n, K] = [{n}, {k}] (rows "
            f"{list(sn.row_ids)[:6]}{'...' if n > 6 else ''}), but got shape {list(arr.shape)}"
        )
    if not np.all(np.isfinite(np.where(sn.mask, arr, 0.0))):
        bad = int(np.argwhere(~np.isfinite(np.where(sn.mask, arr, 0.0)))[0][0])
        raise ValueError(
            f"export got a non-finite value for decision {sn.row_ids[bad]!r} (row {bad}): "
            f"{arr[bad].tolist()}"
        )
    best = np.where(sn.mask, arr, -np.inf).argmax(axis=1)
    out: list[Any] = []
    _walk(sn, sn.spec.root, best, out)
    return sn.spec.validate(DNA(out))


def _walk(sn: Supernet, points: Any, best: np.ndarray, out: list[Any]) -> None:
    for p in points:
        if isinstance(p, ManyChoice):
            hyper = sn._met.get(p.id)
            fixed = _fixed(sn, p)
            assert isinstance(hyper, ManyOf)
            for pick, f in enumerate(fixed):
                j = next(i for i, c in enumerate(hyper.candidates) if c is f or c == f)
                out.append(j)
                _walk(sn, p.subspaces[pick][j], best, out)
        elif isinstance(p, Choice):
            j = int(best[sn._row_of[p.id]])
            out.append(j)
            _walk(sn, p.subspace(j), best, out)
        elif isinstance(p, Int):
            v = int(_fixed(sn, p))
            out.append(v)
            _walk(sn, p.subspace(v), best, out)
        elif isinstance(p, Float):
            out.append(float(_fixed(sn, p)))
        else:  # pragma: no cover - a new decision kind
            raise TypeError(f"export cannot set decision {p.id!r} ({p.describe()})")
