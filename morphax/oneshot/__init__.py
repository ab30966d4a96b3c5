"""Weight sharing: one model code run as a supernet (DARTS, GDAS, ENAS, SPOS, ...).

`supernet(model, x)` runs a model that is a space (hyper-values in its
fields or `mx.oneof` in its `@nn.compact` code) with every decision mixed;
:class:`Arch` holds the architecture arrays a jitted step takes as inputs.
Importing this package imports no JAX; its names load on first use.

Examples:
    >>> import morphax as mx
    >>> mx.oneshot.Arch.__name__
    'Arch'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._arch import Arch as Arch
    from ._supernet import Supernet as Supernet
    from ._supernet import supernet as supernet
    from ._verify import Verification as Verification

#: Public name -> private module that defines it (loaded on first use).
_LAZY = {
    "Arch": "_arch",
    "Supernet": "_supernet",
    "supernet": "_supernet",
    "Verification": "_verify",
}

# -- the strategies and the search loop --------------------------------------------
if TYPE_CHECKING:
    from ._checkpoints import enable_compilation_cache as enable_compilation_cache
    from ._darts import DARTS as DARTS
    from ._darts import GDAS as GDAS
    from ._enas import ENAS as ENAS
    from ._result import SearchResult as SearchResult
    from ._search import search as search
    from ._spos import RSPS as RSPS
    from ._spos import SPOS as SPOS
    from ._strategies import Optimizers as Optimizers
    from ._strategies import Program as Program
    from ._strategies import SearchState as SearchState
    from ._strategies import Strategy as Strategy

_LAZY.update(
    {
        "DARTS": "_darts",
        "GDAS": "_darts",
        "ENAS": "_enas",
        "RSPS": "_spos",
        "SPOS": "_spos",
        "Optimizers": "_strategies",
        "Program": "_strategies",
        "SearchState": "_strategies",
        "Strategy": "_strategies",
        "SearchResult": "_result",
        "search": "_search",
        "enable_compilation_cache": "_checkpoints",
    }
)

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'morphax.oneshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
