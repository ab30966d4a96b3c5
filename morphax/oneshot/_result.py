"""What a one-shot search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from ..symbolic import DNA
from ._strategies import Program, SearchState


@dataclass
class SearchResult:
    """The result of :func:`morphax.oneshot.search`.

    Attributes:
        dna: the architecture found, a DNA of the model's DNASpec.
        history: one dict of metrics per epoch (and per DARTS-PT projection):
            `epoch`, `phase_select` (0.0 for a training epoch, 1.0 for a
            DARTS-PT projection: metrics are floats, as study trials store), the exported DNA's
            `valid_accuracy` with the shared weights, `train_loss`, ...
        dnas: the exported DNA of each history entry.
        state: the final :class:`~morphax.oneshot.SearchState`.
        supernet: the supernet searched.
        strategy: the strategy.
    """

    dna: DNA
    history: list[dict[str, float]]
    dnas: list[DNA]
    state: SearchState
    supernet: Any
    strategy: Any
    _program: Program = field(repr=False, default=None)  # type: ignore[assignment]
    _batch_size: int = field(repr=False, default=64)

    @property
    def variables(self) -> dict[str, Any]:
        """The supernet's trained variables (`{"params": ..., **model_state}`)."""
        return {"params": self.state.params, **self.state.model_state}

    @property
    def child(self) -> Any:
        """The materialized child of :attr:`dna` (a plain model to train or ship)."""
        return self.supernet.child(self.dna)

    @property
    def child_variables(self) -> Any:
        """The child's variables inherited from the supernet (shapes of the child's).

        Their `batch_stats` are recomputed for the child's path (see
        `recalibrate` of :func:`~morphax.oneshot.search`), so the child
        evaluated with them scores what the search reported. Fresh copies:
        training them (`morphax.train.fit(..., variables=)` donates its
        inputs' buffers) leaves this result's state intact.
        """
        path = self._program.path_of(self.dna)
        model_state = self._program.calibrated(self.state, path)
        variables = {"params": self.state.params, **model_state}
        inherited = self.supernet.child_variables(variables, self.dna)
        return jax.tree.map(jnp.array, inherited)

    def score(
        self,
        dnas: list[DNA],
        data: Any,
        *,
        batch_size: int | None = None,
        recalibrate: bool = True,
    ) -> list[float]:
        """The accuracy of each DNA on `data` as a single path of the trained
        supernet (one compiled evaluation for all of them), each with its
        batch statistics recomputed over the search's calibration batches
        (`recalibrate` of :func:`~morphax.oneshot.search`); False: with the
        supernet's running averages."""
        for d in dnas:
            self.supernet.spec.validate(d)
        bs = batch_size or self._batch_size
        prog = self._program
        return [
            prog.accuracy(self.state, prog.path_of(d), "index", data, bs, calibrate=recalibrate)[0]
            for d in dnas
        ]
