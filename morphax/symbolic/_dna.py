"""DNA: an immutable, hashable value that picks one value per active decision."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .._typing import DNAValue as DNAValue

if TYPE_CHECKING:
    from ._spec import DNASpec


class DNA:
    """The decisions of one child: a flat tuple of values, in DNASpec order.

    Values are listed for the *active* decision points only, in the spec's
    depth-first order: a choice's index is followed by the decisions of the
    chosen candidate's sub-space. A `manyof` contributes one index per pick.
    DNA is a plain value: it holds nothing but its values, so equal DNA
    behave alike everywhere; it hashes, pickles and serializes. Whether a DNA
    fits a space is checked where it enters a space (`spec.validate`,
    `materialize`), not carried along.

    Args:
        values: ints (choice indices, int values) and floats.

    Examples:
        >>> import morphax as mx
        >>> space = [mx.oneof([1, 2, 3]), mx.floatv(0.0, 1.0)]
        >>> dna = mx.DNA([2, 0.5])
        >>> mx.materialize(space, dna)
        [3, 0.5]
        >>> mx.from_json(mx.to_json(dna)) == dna
        True
    """

    __slots__ = ("values", "_hash")
    values: tuple[DNAValue, ...]
    _hash: int | None

    def __init__(self, values: Iterable[Any]) -> None:
        if isinstance(values, str | bytes | dict) or not isinstance(values, Iterable):
            raise TypeError(f"DNA takes a list of ints and floats, but got {values!r}")
        vals = tuple(values)
        if not all(type(v) is int or type(v) is float for v in vals):
            for i, v in enumerate(vals):
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise TypeError(
                        f"DNA values must be ints or floats, but got {v!r} at position {i} of {list(vals)}"
                    )
            vals = tuple(int(v) if isinstance(v, numbers.Integral) else float(v) for v in vals)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DNA is immutable; make a new DNA instead")

    def __reduce__(self) -> tuple[Any, ...]:
        return (DNA, (self.values,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DNA):
            return NotImplemented
        return self.values == other.values

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(self.values)
            object.__setattr__(self, "_hash", h)
        return h

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Any:
        return iter(self.values)

    def __getitem__(self, i: int) -> DNAValue:
        return self.values[i]

    def __repr__(self) -> str:
        return f"DNA({list(self.values)!r})"

    def use_spec(self, spec: DNASpec) -> DNA:
        """This DNA, validated against `spec` (ValueError naming the decision)."""
        spec.validate(self)
        return self

    def to_json_value(self) -> dict[str, Any]:
        vals: list[Any] = []
        for v in self.values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"DNA {self!r} holds a non-finite value {v!r}")
            vals.append(v)
        return {"$type": "DNA", "values": vals}


class DNAArray(NamedTuple):
    """The flat array form of one DNA (shape `[n]`) or a batch (`[batch, n]`).

    Column `c` is decision point `spec.columns[c]`. For a choice, `indices`
    holds the candidate index; for an int decision, the int value; for a
    float decision, `values` holds the value. `mask` is False for decision
    points that the other choices leave inactive (their entries are 0).
    """

    indices: np.ndarray  # int32
    values: np.ndarray  # float32
    mask: np.ndarray  # bool

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.indices.shape[:-1])
