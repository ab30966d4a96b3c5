"""The shared domain types of morphax (this module imports nothing from morphax).

- `DNAValue`: one value of a DNA (a choice index or an int decision is an
  `int`, a float decision a `float`).
- `Reward`: what an algorithm is fed back for a proposal: a float (maximized),
  a tuple of floats for multi-objective algorithms (each maximized), or None
  for a trial that failed or was skipped.
- `History`: the `(dna, reward)` pairs of a search, oldest first, that
  `Algorithm.recover` replays.

Examples:
    >>> from morphax.algorithms import Reward
    >>> r: Reward = (0.9, -3.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .symbolic import DNA

DNAValue: TypeAlias = int | float
Reward: TypeAlias = float | tuple[float, ...] | None
History: TypeAlias = Sequence[tuple["DNA", Reward]]

__all__ = ["DNAValue", "History", "Reward"]
