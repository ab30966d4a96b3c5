"""Ready-made search spaces and tabular benchmarks (numpy only; no JAX at import).

- :mod:`morphax.spaces.nasbench201`: the NAS-Bench-201 cell space and its
  table of accuracies (shipped as package data, loaded on first use).
- :mod:`morphax.spaces.cnn`: plain Flax CNN and MLP models and their spaces
  (`cnn_space`, `mlp_space`; imported on first use, since they need Flax).

Examples:
    >>> import morphax as mx
    >>> from morphax.spaces import nasbench201
    >>> mx.dna_spec(nasbench201.cell_space()).space_size
    15625
"""

from typing import Any

from . import nasbench201 as nasbench201

_LAZY = {"cnn_space", "mlp_space", "ConvNet", "MLP", "Block"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import cnn

        return getattr(cnn, name)
    raise AttributeError(f"module 'morphax.spaces' has no attribute {name!r}")
