"""`sn.verify`: does the one-hot supernet compute what each child computes?

A model decomposes when the supernet, run with a one-hot architecture, gives
the child's output and batch statistics from the child's variables. Where
it does not (a norm layer after a masked width, a width used in arithmetic),
the weights a search trains are not the child's: verify names the first
module whose output differs and the decision before it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import DNA
from ._arch import Arch
from ._mixed import SCOPE

if TYPE_CHECKING:
    from ._supernet import Supernet

#: Differences up to this count as equal when naming where a model differs.
TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class Verification:
    """What :meth:`Supernet.verify` found.

    Attributes:
        max_diff: the largest |supernet - child| over outputs and updated
            state (batch statistics), all DNAs and modes.
        eval_diff: the largest difference in eval mode.
        train_diff: the largest in train mode (0.0 when the model takes no
            `train` argument).
        worst_dna: the DNA where `max_diff` occurred.
        decision: the decision at or before the first module whose output
            differs for `worst_dna` (None when all agree within 1e-5).
        module: that module's path (None when all agree).
        dnas: the DNAs checked.
    """

    max_diff: float
    eval_diff: float
    train_diff: float
    worst_dna: DNA | None
    decision: str | None
    module: str | None
    dnas: tuple[DNA, ...]

    @property
    def ok(self) -> bool:
        """Whether every difference is within 1e-5."""
        return self.max_diff <= TOLERANCE


def _maxdiff(a: Any, b: Any) -> float:
    """The largest |a - b| (inf where one side only is NaN); where `a` (the supernet's)
    is wider, `b` padded with zeros.

    The supernet's arrays are at the largest width: the child's channels are
    the first ones, and the others must be zeros (a following layer sees
    them).
    """
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        return float("inf")
    out = 0.0
    for x, y in zip(la, lb, strict=True):
        sx, sy = np.shape(x), np.shape(y)
        if len(sx) != len(sy) or any(c > s for c, s in zip(sy, sx, strict=True)):
            return float("inf")
        if sx != sy:
            y = jnp.pad(jnp.asarray(y), [(0, s - c) for s, c in zip(sx, sy, strict=True)])
        if np.size(x):
            x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
            d = jnp.abs(x - y)  # NaN on one side only is a difference; on both, none
            same = (x == y) | (jnp.isnan(x) & jnp.isnan(y))
            d = jnp.where(same, 0.0, jnp.where(jnp.isnan(d), jnp.inf, d))
            out = max(out, float(jnp.max(d)))
    return out


def verify(sn: Supernet, variables: Any, x: Any, *, num: int, seed: int) -> Verification:
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"`num` must be an int >= 1, but got num={num!r}")
    rng = np.random.default_rng(seed)
    dnas: list[DNA] = []
    for _ in range(num * 4):
        dna = sn.random_dna(rng)
        if dna not in dnas:
            dnas.append(dna)
        if len(dnas) == num:
            break
    state = [c for c in _plain(variables) if c != "params"]
    modes = [False, True] if sn._takes_train else [None]

    worst: tuple[float, DNA | None, Any] = (0.0, None, None)
    diffs = {False: 0.0, True: 0.0, None: 0.0}
    for train in modes:
        kw: dict[str, Any] = {} if train is None else {"train": train}
        if state:
            kw["mutable"] = state
        run = jax.jit(lambda v, x, w, kw=kw: sn.apply(v, x, arch=Arch(weights=w), **kw))
        for dna in dnas:
            child = sn.child(dna)
            cv = sn.child_variables(variables, dna)
            got = run(variables, x, jnp.asarray(sn.one_hot(dna)))
            want = jax.jit(lambda v, x, child=child, kw=kw: child.apply(v, x, **kw))(cv, x)
            if state:
                (y_sn, upd_sn), (y_c, upd_c) = got, want
                merged = {**_plain(variables), **_plain(upd_sn)}
                upd_sn = {c: sn.child_variables(merged, dna)[c] for c in _plain(upd_c)}
                d = max(_maxdiff(y_sn, y_c), _maxdiff(upd_sn, _plain(upd_c)))
            else:
                d = _maxdiff(got, want)
            diffs[train] = max(diffs[train], d)
            if d > worst[0] or worst[1] is None:
                worst = (d, dna, kw)
    decision = module = None
    if worst[0] > TOLERANCE and worst[1] is not None:
        decision, module = _locate(sn, variables, x, worst[1], worst[2])
    return Verification(
        max_diff=worst[0],
        eval_diff=max(diffs[False], diffs[None]),
        train_diff=diffs[True],
        worst_dna=worst[1],
        decision=decision,
        module=module,
        dnas=tuple(dnas),
    )


def _plain(tree: Any) -> dict[str, Any]:
    return flax.core.unfreeze(tree) if isinstance(tree, flax.core.FrozenDict) else dict(tree)


def _locate(
    sn: Supernet, variables: Any, x: Any, dna: DNA, kw: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The decision at or before, and the path of, the first module whose output differs."""
    mutable = ["intermediates", *(kw.get("mutable") or [])]
    kw = {**kw, "mutable": mutable, "capture_intermediates": True}
    child = sn.child(dna)
    _, got = sn.apply(variables, x, arch=Arch(weights=jnp.asarray(sn.one_hot(dna))), **kw)
    _, want = child.apply(sn.child_variables(variables, dna), x, **kw)
    choice = sn.row_values(dna)
    flat_sn = flax.traverse_util.flatten_dict(_plain(got["intermediates"]))
    by_child: dict[tuple[str, ...], tuple[Any, int | None]] = {}
    for path, value in flat_sn.items():
        rows = [(int(m.group(1)), int(m.group(2))) for p in path if (m := SCOPE.match(str(p)))]
        if all(choice.get(r) == j for r, j in rows):
            kept = tuple(p for p in path if not SCOPE.match(str(p)))
            by_child.setdefault(kept, (value, rows[-1][0] if rows else None))
    width_sites = sn._width_sites
    last: str | None = None
    for path, value in flax.traverse_util.flatten_dict(_plain(want["intermediates"])).items():
        module_path = "/".join(str(p) for p in path[:-1])
        mine, row = by_child.get(path, (None, None))
        if row is None:
            row = width_sites.get(module_path)
        if row is not None:
            last = sn.row_ids[row]
        if mine is None or _maxdiff(mine, value) > TOLERANCE:
            return last, module_path or "<root>"
    return last, None
