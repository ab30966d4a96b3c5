"""The morphax internals the PyGlove adapter needs, imported in one place.

`morphax.interop` uses the public names of `morphax.symbolic` everywhere
else; what is private today comes in here only, so that the names can be
replaced by public API in one spot.
"""

from __future__ import annotations

from typing import Any

from ..symbolic import DecisionPoint, register

#: A path key: a str (name, dict key) or an int (index); `symbolic._keypath.Key`.
Key = Any
#: One DNA value; `symbolic._dna.DNAValue`.
DNAValue = int | float
#: The decision points of one sub-space, in order; `symbolic._spec.Subspace`.
Subspace = tuple[DecisionPoint, ...]


def register_default(obj: Any, name: str) -> Any:
    """`register(obj, name=name)` as a default name, which a user's own registration beats."""
    # TODO(issue 7): public API (`_default` is a private argument of `register`)
    return register(obj, name=name, _default=True)
