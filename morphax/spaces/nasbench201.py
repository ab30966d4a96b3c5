"""The NAS-Bench-201 cell space and its tabular benchmark, shipped with morphax.

NAS-Bench-201 (Dong & Yang, ICLR 2020) fixes a network skeleton and searches
one cell: a DAG of 4 nodes where each of the 6 edges `(src, dst)` with
`src < dst` carries one of 5 ops, 5^6 = 15,625 architectures in all. Every
architecture was trained on CIFAR-10, CIFAR-100 and ImageNet16-120, so a
search algorithm can be benchmarked by table lookup instead of training.

The shipped table (`morphax/spaces/data/nasbench201.npz`, built by
`tools/build_nasbench201_data.py`; provenance in
`morphax/spaces/data/NASBENCH201_SOURCES.md`) holds, per architecture index:

- the 12-epoch **validation** accuracy: the search signal, as in the
  NAS-Bench-201 / NATS-Bench protocol (`valid_accuracy`);
- the 200-epoch **test** accuracy: what a search reports for its final
  choice (`test_accuracy`).

Accuracies are in percent. Architectures can be given as a materialized cell
program (a :class:`Cell`), a DNA of :func:`cell_space`, a sequence of 6 op
names or 6 op indices (edge order :data:`EDGES`), an NB201 arch string, or a
table index.

Examples:
    >>> import morphax as mx
    >>> from morphax.spaces import nasbench201 as nb
    >>> space = nb.cell_space()
    >>> mx.dna_spec(space).space_size
    15625
    >>> cell = mx.materialize(space, mx.DNA([3, 3, 3, 1, 3, 3]))
    >>> nb.arch_string(cell)
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    >>> bench = nb.load()
    >>> bench.arch_index(cell)
    9930
    >>> round(bench.valid_accuracy(cell, "cifar10"), 2), round(bench.test_accuracy(cell, "cifar100"), 4)
    (84.75, 73.5133)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, DNAArray
from ._nb201_arch import _POWERS, DATASETS, EDGES, NUM_ARCHS, OPS, Cell, _format, _op_indices
from ._nb201_arch import cell_space as cell_space
from ._nb201_arch import parse_arch_string as parse_arch_string

__all__ = [
    "DATASETS",
    "EDGES",
    "NUM_ARCHS",
    "OPS",
    "Best",
    "Cell",
    "NASBench201",
    "arch_index",
    "arch_string",
    "cell_space",
    "dna_to_index",
    "load",
    "parse_arch_string",
]

_DATA_FILE = "data/nasbench201.npz"


def arch_string(arch: Any) -> str:
    """The NB201 arch string of an architecture.

    Args:
        arch: a materialized :class:`Cell`, a DNA of :func:`cell_space`, 6 op
            names or op indices, an arch string (checked and returned), or a
            table index (looked up in the shipped table).

    Raises:
        ValueError: if `arch` is not an architecture of the space.

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.arch_string(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"])
        '|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|'
        >>> nb.arch_string(6111)
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
    """
    ops = _op_indices(arch)
    if isinstance(ops, int):
        return load().arch_string(ops)
    return _format(ops)


def arch_index(arch: Any) -> int:
    """The index of an architecture in the NAS-Bench-201 table.

    The index is looked up from the op indices in the shipped table (the
    table order is NAS-Bench-201's own, not the base-5 order of the ops).

    Args:
        arch: anything :func:`arch_string` takes.

    Raises:
        ValueError: if `arch` is not an architecture of the space.

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.arch_index("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
        6111
    """
    return load().arch_index(arch)


def dna_to_index(dna: DNA | Sequence[int]) -> int:
    """The table index of a DNA of :func:`cell_space`: the fast path (~1 µs).

    Equivalent to `arch_index(mx.materialize(cell_space(), dna))`, without
    materializing: the DNA values are the op indices, looked up in a dict.

    Raises:
        ValueError: if `dna` is not a DNA of :func:`cell_space`.

    Examples:
        >>> import morphax as mx
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.dna_to_index(mx.DNA([3, 3, 3, 1, 3, 3]))
        9930
    """
    return load().dna_to_index(dna)


# ---------------------------------------------------------------------------
# The benchmark table.


@dataclasses.dataclass(frozen=True)
class Best:
    """The best architecture of a dataset by 200-epoch test accuracy.

    Attributes:
        index: the table index.
        arch: the arch string.
        test_accuracy: the 200-epoch test accuracy (%).
    """

    index: int
    arch: str
    test_accuracy: float


class NASBench201:
    """The NAS-Bench-201 table: accuracies of all 15,625 cells on 3 datasets.

    Load it with :func:`load` (cached); it reads the shipped package data
    and needs no network. Architectures (`arch` arguments) may be a
    :class:`Cell`, a DNA of :func:`cell_space`, 6 op names or op indices, an
    arch string or a table index. Accuracies are in percent.

    Attributes:
        datasets: the dataset names (:data:`DATASETS`).
        ops: `[15625, 6]` uint8 op indices of each architecture (read-only).
        code_to_index: `[15625]` int64, the table index of the cell whose op
            indices, read as base-5 digits (first edge most significant), are
            the position; for lookups inside `jax.jit` (read-only).

    Examples:
        >>> import numpy as np
        >>> from morphax.spaces import nasbench201 as nb
        >>> bench = nb.load()
        >>> len(bench), bench.datasets
        (15625, ('cifar10', 'cifar100', 'ImageNet16-120'))
        >>> batch = np.array([[3, 3, 3, 1, 3, 3], [0, 0, 0, 0, 0, 0]])
        >>> bench.indices(batch)
        array([9930, 1651])
        >>> bench.test_accuracies(batch, "cifar10").round(2)
        array([94.36, 10.  ])
        >>> bench.valid_accuracy(0, "imagenet")
        Traceback (most recent call last):
        ...
        ValueError: unknown NAS-Bench-201 dataset 'imagenet'; the datasets are ('cifar10', 'cifar100', 'ImageNet16-120')
    """

    datasets = DATASETS

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        ops = np.asarray(arrays["ops"], dtype=np.uint8)
        valid = np.asarray(arrays["valid_12ep"], dtype=np.float32)
        test = np.asarray(arrays["test_200ep"], dtype=np.float64)
        if (
            ops.shape != (NUM_ARCHS, len(EDGES))
            or valid.shape != (NUM_ARCHS, len(DATASETS))
            or test.shape != (NUM_ARCHS, len(DATASETS))
            or tuple(arrays["datasets"].tolist()) != DATASETS
            or tuple(arrays["op_names"].tolist()) != OPS
        ):
            raise ValueError("the NAS-Bench-201 data file has an unexpected layout")
        codes = ops.astype(np.int64) @ _POWERS
        code_to_index = np.full(NUM_ARCHS, -1, dtype=np.int64)
        code_to_index[codes] = np.arange(NUM_ARCHS)
        if (code_to_index < 0).any():
            raise ValueError("the NAS-Bench-201 data file does not list every cell once")
        for a in (ops, code_to_index):
            a.flags.writeable = False
        self.ops = ops
        self.code_to_index = code_to_index
        self._columns = {ds: j for j, ds in enumerate(DATASETS)}
        self._valid = [_readonly(valid[:, j]) for j in range(len(DATASETS))]
        self._test = [_readonly(test[:, j]) for j in range(len(DATASETS))]
        self._index_by_ops: dict[tuple[int, ...], int] = {
            tuple(row): i for i, row in enumerate(ops.tolist())
        }

    def __len__(self) -> int:
        return NUM_ARCHS

    def __repr__(self) -> str:
        return f"NASBench201({NUM_ARCHS} architectures, datasets={DATASETS})"

    # -- architectures -------------------------------------------------------

    def arch_index(self, arch: Any) -> int:
        """The table index of `arch` (see :func:`arch_index`)."""
        if arch.__class__ is DNA:  # the fast path of a search loop
            i = self._index_by_ops.get(arch.values)  # type: ignore[arg-type]
            if i is not None:
                return i
        ops = _op_indices(arch)
        if isinstance(ops, int):
            if not 0 <= ops < NUM_ARCHS:
                raise ValueError(
                    f"architecture index {ops} is out of range: it needs [0, {NUM_ARCHS - 1}]"
                )
            return ops
        return self._index_by_ops[ops]

    def arch_string(self, arch: Any) -> str:
        """The arch string of `arch` (see :func:`arch_string`)."""
        return _format(self.ops[self.arch_index(arch)].tolist())

    def dna_to_index(self, dna: DNA | Sequence[int]) -> int:
        """The table index of a DNA of :func:`cell_space` (see :func:`dna_to_index`)."""
        try:
            key: Any = dna.values if isinstance(dna, DNA) else tuple(dna)
            return self._index_by_ops[key]
        except (KeyError, TypeError):
            raise ValueError(
                f"{dna!r} is not a DNA of nasbench201.cell_space(): it needs {len(EDGES)} "
                f"op indices in [0, {len(OPS) - 1}]"
            ) from None

    def indices(self, ops: Any) -> np.ndarray:
        """The table indices of a batch of op-index arrays (vectorized).

        Args:
            ops: int array-like of shape `[..., 6]` (numpy, JAX, lists), or a
                :class:`morphax.DNAArray` of :func:`cell_space` (its `indices`).

        Returns:
            An int64 array of shape `[...]`.

        Raises:
            ValueError: for a wrong shape or op indices outside `[0, 4]`.
        """
        if isinstance(ops, DNAArray):
            ops = ops.indices
        arr = np.asarray(ops)
        if arr.ndim == 0 or arr.shape[-1] != len(EDGES) or arr.dtype.kind not in "iub":
            raise ValueError(
                f"expected int op indices of shape [..., {len(EDGES)}], but got an array "
                f"of shape {arr.shape} and dtype {arr.dtype}"
            )
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= len(OPS)):
            raise ValueError(f"op indices must be in [0, {len(OPS) - 1}], but got {arr.tolist()}")
        return self.code_to_index[arr @ _POWERS]

    # -- accuracies ----------------------------------------------------------

    def _column(self, dataset: str) -> int:
        try:
            return self._columns[dataset]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown NAS-Bench-201 dataset {dataset!r}; the datasets are {DATASETS}"
            ) from None

    def valid_accuracy(self, arch: Any, dataset: str) -> float:
        """The 12-epoch validation accuracy of `arch`: the search signal.

        Examples:
            >>> from morphax.spaces import nasbench201 as nb
            >>> round(nb.load().valid_accuracy(13714, "cifar10"), 3)
            84.892
        """
        return self._valid[self._column(dataset)].item(self.arch_index(arch))

    def test_accuracy(self, arch: Any, dataset: str) -> float:
        """The 200-epoch test accuracy of `arch`: what a search reports.

        Examples:
            >>> from morphax.spaces import nasbench201 as nb
            >>> round(nb.load().test_accuracy("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", "cifar10"), 4)
            94.3633
        """
        return self._test[self._column(dataset)].item(self.arch_index(arch))

    def valid_accuracies(self, ops: Any, dataset: str) -> np.ndarray:
        """12-epoch validation accuracies (float32) of a `[..., 6]` op-index batch."""
        col = self._column(dataset)
        return self._valid[col][self.indices(ops)]

    def test_accuracies(self, ops: Any, dataset: str) -> np.ndarray:
        """200-epoch test accuracies (float64) of a `[..., 6]` op-index batch."""
        col = self._column(dataset)
        return self._test[col][self.indices(ops)]

    def valid_table(self, dataset: str) -> np.ndarray:
        """The `[15625]` 12-epoch validation accuracies by table index (read-only)."""
        return self._valid[self._column(dataset)]

    def test_table(self, dataset: str) -> np.ndarray:
        """The `[15625]` 200-epoch test accuracies by table index (read-only)."""
        return self._test[self._column(dataset)]

    def best(self, dataset: str) -> Best:
        """The architecture with the best 200-epoch test accuracy on `dataset`.

        Ties go to the lowest index (on CIFAR-10, 6111 and 13714 tie at 94.3733).

        Examples:
            >>> from morphax.spaces import nasbench201 as nb
            >>> best = nb.load().best("cifar10")
            >>> best.index, round(best.test_accuracy, 4)
            (6111, 94.3733)
            >>> best.arch
            '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
        """
        table = self._test[self._column(dataset)]
        i = int(np.argmax(table))
        return Best(i, self.arch_string(i), table.item(i))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@functools.cache
def load() -> NASBench201:
    """The NAS-Bench-201 table, read once from the package data (no network).

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.load() is nb.load()
        True
    """
    ref = importlib.resources.files(__package__ or "morphax.spaces").joinpath(_DATA_FILE)
    with ref.open("rb") as f, np.load(f) as z:
        arrays = {name: z[name] for name in z.files}
    return NASBench201(arrays)


def __getattr__(name: str) -> Any:
    # `search_net` needs Flax: imported on first use, so this module stays numpy-only.
    if name in ("search_net", "NB201SearchNet"):
        from . import nasbench201_search

        return getattr(nasbench201_search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
