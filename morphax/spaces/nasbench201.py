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
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, DNAArray, HyperValue, oneof, register

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

#: The candidate ops of every edge, in NAS-Bench-201 order (index = DNA value).
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The 6 edges `(src, dst)` of the cell, in the order of arch strings and DNA.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: The datasets of the benchmark.
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: The number of architectures: 5^6.
NUM_ARCHS = len(OPS) ** len(EDGES)

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_POWERS = np.array([5**5, 5**4, 5**3, 5**2, 5, 1], dtype=np.int64)
_DATA_FILE = "data/nasbench201.npz"
_NODE = re.compile(r"\|(?:[a-z0-9_]+~[0-9]+\|)+")


@register
@dataclasses.dataclass(frozen=True)
class Cell:
    """A NAS-Bench-201 cell: the op on each of its 6 edges, in :data:`EDGES` order.

    In a search space (see :func:`cell_space`) the edges hold hyper-values; in
    a materialized child they hold op names from :data:`OPS`.

    Attributes:
        edges: 6 op names (or hyper-values), edge `i` being `EDGES[i]`.

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> cell = nb.Cell(edges=["nor_conv_3x3"] * 6)
        >>> cell.edges[5]
        'nor_conv_3x3'
        >>> nb.Cell(edges=["conv"] * 6)
        Traceback (most recent call last):
        ...
        ValueError: Cell edge 0 (0->1) is 'conv', which is not one of the ops ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
    """

    edges: tuple[str, ...]

    def __post_init__(self) -> None:
        edges = self.edges
        if isinstance(edges, str | bytes) or not isinstance(edges, Sequence):
            raise TypeError(f"Cell takes a list of {len(EDGES)} ops, but got {edges!r}")
        edges = tuple(edges)
        if len(edges) != len(EDGES):
            raise ValueError(f"Cell needs {len(EDGES)} edges, one per {EDGES}, but got {edges!r}")
        for i, op in enumerate(edges):
            if not isinstance(op, HyperValue) and op not in _OP_INDEX:
                s, d = EDGES[i]
                raise ValueError(
                    f"Cell edge {i} ({s}->{d}) is {op!r}, which is not one of the ops {OPS}"
                )
        object.__setattr__(self, "edges", edges)


def cell_space() -> Cell:
    """The NAS-Bench-201 search space: a :class:`Cell` with one choice per edge.

    Edge `(s, d)` is the decision `mx.oneof(list(OPS), name=f"edge_{s}_{d}")`,
    so a DNA of this space is the 6 op indices in :data:`EDGES` order, and
    :func:`dna_to_index` maps it to the table index. The space is a program:
    compile it with `mx.space`, or nest it in a larger program (the decision
    names are fixed, so two copies in one program share their decisions).

    Examples:
        >>> import morphax as mx
        >>> from morphax.spaces import nasbench201 as nb
        >>> spec = mx.dna_spec(nb.cell_space())
        >>> spec.space_size, [p.id for p in spec.columns][:2]
        (15625, ['edge_0_1', 'edge_0_2'])
        >>> mx.materialize(nb.cell_space(), mx.DNA([1, 0, 0, 2, 3, 4])).edges
        ('skip_connect', 'none', 'none', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
    """
    return Cell(edges=tuple(oneof(list(OPS), name=f"edge_{s}_{d}") for s, d in EDGES))


# ---------------------------------------------------------------------------
# Arch strings and op indices.


def parse_arch_string(arch: str) -> tuple[str, ...]:
    """The 6 op names of an NB201 arch string, in :data:`EDGES` order.

    The string lists, for nodes 1, 2 and 3, the incoming edges as
    `op~source`, with nodes separated by `+`.

    Raises:
        TypeError: if `arch` is not a str.
        ValueError: if `arch` is not a well-formed arch string (naming it).

    Examples:
        >>> from morphax.spaces import nasbench201 as nb
        >>> nb.parse_arch_string("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
        ('none', 'skip_connect', 'none', 'none', 'none', 'avg_pool_3x3')
        >>> nb.parse_arch_string("|conv~0|")
        Traceback (most recent call last):
        ...
        ValueError: malformed NAS-Bench-201 arch string '|conv~0|': expected 3 nodes separated by '+', like '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    """
    if not isinstance(arch, str):
        raise TypeError(f"an arch string must be a str, but got {arch!r}")
    example = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    nodes = arch.split("+")
    if len(nodes) != 3 or not all(_NODE.fullmatch(n) for n in nodes):
        raise ValueError(
            f"malformed NAS-Bench-201 arch string {arch!r}: expected 3 nodes separated by "
            f"'+', like {example!r}"
        )
    ops: list[str] = []
    for dst, node in enumerate(nodes, start=1):
        entries = node[1:-1].split("|")
        if len(entries) != dst:
            raise ValueError(
                f"malformed NAS-Bench-201 arch string {arch!r}: node {dst} must list "
                f"{dst} input(s), but lists {len(entries)}"
            )
        for src, entry in enumerate(entries):
            op, _, source = entry.partition("~")
            if int(source) != src:
                raise ValueError(
                    f"malformed NAS-Bench-201 arch string {arch!r}: input {src} of node {dst} "
                    f"is {entry!r}, but must come from node {src}"
                )
            if op not in _OP_INDEX:
                raise ValueError(
                    f"malformed NAS-Bench-201 arch string {arch!r}: unknown op {op!r} (ops: {OPS})"
                )
            ops.append(op)
    return tuple(ops)


def _format(ops: Sequence[int]) -> str:
    nodes, k = [], 0
    for dst in range(1, 4):
        nodes.append("|" + "".join(f"{OPS[ops[k + s]]}~{s}|" for s in range(dst)))
        k += dst
    return "+".join(nodes)


def _is_int(x: Any) -> bool:
    return x.__class__ is int or (isinstance(x, numbers.Integral) and not isinstance(x, bool))


def _op_indices(arch: Any) -> tuple[int, ...] | int:
    """The op indices of `arch`, or its table index when `arch` is an int."""
    if _is_int(arch):
        return int(arch)
    if isinstance(arch, str):
        return tuple(_OP_INDEX[op] for op in parse_arch_string(arch))
    if isinstance(arch, Cell):
        for i, op in enumerate(arch.edges):
            if isinstance(op, HyperValue):
                raise ValueError(
                    f"the cell still has a hyper-value at edge {i} ({op!r}): it is a search "
                    "space, not an architecture; materialize it with a DNA first"
                )
        return tuple(_OP_INDEX[op] for op in arch.edges)
    vals: tuple[Any, ...]
    if isinstance(arch, DNA):
        vals = arch.values
        what = f"{arch!r} is not a DNA of nasbench201.cell_space()"
    elif isinstance(arch, np.ndarray) or (
        isinstance(arch, Sequence) and not isinstance(arch, bytes)
    ):
        vals = tuple(arch.tolist() if isinstance(arch, np.ndarray) else arch)
        what = f"{arch!r} is not an architecture"
        if vals and all(isinstance(v, str) for v in vals):
            if len(vals) != len(EDGES) or any(v not in _OP_INDEX for v in vals):
                raise ValueError(f"{what}: it needs {len(EDGES)} op names from {OPS}")
            return tuple(_OP_INDEX[v] for v in vals)
    elif hasattr(arch, "__array__"):  # a JAX array, say
        return _op_indices(np.asarray(arch))
    else:
        raise TypeError(
            f"expected an architecture (a Cell, a DNA of cell_space(), 6 op names or "
            f"op indices, an arch string or a table index), but got {arch!r} "
            f"({type(arch).__name__})"
        )
    if len(vals) != len(EDGES) or not all(_is_int(v) and 0 <= v < len(OPS) for v in vals):
        raise ValueError(f"{what}: it needs {len(EDGES)} op indices in [0, {len(OPS) - 1}]")
    return tuple(int(v) for v in vals)


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
