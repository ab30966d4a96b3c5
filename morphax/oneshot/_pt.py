"""DARTS-PT's perturbation-based architecture selection over a trained supernet.

After the search, the decisions are visited in a random order; for each one,
every candidate is removed in turn (its weight in the mixture set to 0) and
the supernet's validation accuracy measured; the candidate whose removal
hurts most is kept, the decision fixed to it (one-hot), and the supernet
fine-tuned for `pt_epochs` before the next decision. All perturbations run
through one compiled evaluation (the mixture weights are its input).

References:
    Wang, Cheng, Chen, Tang & Hsieh, Rethinking Architecture Selection in
    Differentiable NAS, ICLR 2021 (Algorithm 1).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ._strategies import Program, SearchState, arch_weights


def order(prog: Program, seed: int) -> list[int]:
    """The rows to project (those with more than one candidate), in a seeded random order."""
    rows = [int(r) for r in np.flatnonzero(prog.mask.sum(axis=1) > 1)]
    rng = np.random.default_rng([int(seed), 0x5054])  # "PT"
    return [rows[i] for i in rng.permutation(len(rows))]


def completable(prog: Program, state: SearchState, row: int, c: int, *, tries: int = 64) -> bool:
    """Whether fixing `row` to `c` (beside the rows fixed already) leaves a path
    that `sn.is_valid` accepts (so the selection never ends on, e.g., an
    all-`none` NAS-Bench-201 cell)."""
    decided = np.asarray(state.decided)
    fixed = np.argmax(np.asarray(state.projection), axis=-1)
    rng = np.random.default_rng([row, c])
    for _ in range(tries):
        path = prog.uniform_path(rng)
        path = np.where(decided, fixed, path)
        path[row] = c
        if prog.sn.is_valid(prog.dna_of(path)):
            return True
    return False


def perturbations(
    prog: Program, state: SearchState, row: int, valid: Any, batch_size: int
) -> dict[int, float]:
    """`{candidate: validation accuracy of the supernet without it}` for one row
    (candidates that would leave no valid path are left out)."""
    base = np.asarray(arch_weights(state, prog.mask))
    out = {}
    for c in np.flatnonzero(prog.mask[row]):
        if not completable(prog, state, row, int(c)):
            continue
        w = base.copy()
        w[row, c] = 0.0
        out[int(c)] = prog.accuracy(state, w, "weights", valid, batch_size)[0]
    return out


def project(
    prog: Program, state: SearchState, row: int, valid: Any, batch_size: int
) -> tuple[SearchState, dict[str, float]]:
    """Fixes `row` to the candidate whose removal lowers validation accuracy most."""
    accs = perturbations(prog, state, row, valid, batch_size)
    keep = min(accs, key=lambda c: (accs[c], c))
    onehot = np.zeros(prog.k, np.float32)
    onehot[keep] = 1.0
    state = state._replace(
        projection=state.projection.at[row].set(jnp.asarray(onehot)),
        decided=state.decided.at[row].set(True),
    )
    return state, {"pt_row": float(row), "pt_kept": float(keep), "pt_removed_accuracy": accs[keep]}
