"""Ready-made search spaces and tabular benchmarks (numpy only; no JAX at import).

- :mod:`morphax.spaces.nasbench201`: the NAS-Bench-201 cell space and its
  table of accuracies (shipped as package data, loaded on first use).
- :mod:`morphax.spaces.cnn`: plain Flax CNN and MLP models and their spaces
  (`cnn_space`, `mlp_space`; imported on first use, since they need Flax).
- :mod:`morphax.spaces.nasbench201_net`: the NAS-Bench-201 network as a
  trainable Flax model over the same DNA space as the table (`net_space`,
  `to_net`; imported on first use).
- :mod:`morphax.spaces.nasbench201_search`: the same network written
  define-by-run for weight-sharing search (`search_net`, also
  `nasbench201.search_net`; imported on first use).

Examples:
    >>> import morphax as mx
    >>> from morphax.spaces import nasbench201
    >>> mx.dna_spec(nasbench201.cell_space()).space_size
    15625
"""

from typing import Any

from . import nasbench201 as nasbench201

_LAZY = {
    "cnn": {"cnn_space", "mlp_space", "ConvNet", "MLP", "Block"},
    "nasbench201_net": {"NB201Net", "NB201Cell", "net_space", "to_net"},
    "nasbench201_search": {"NB201SearchNet", "search_net"},
}


def __getattr__(name: str) -> Any:
    import importlib

    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module 'morphax.spaces' has no attribute {name!r}")
