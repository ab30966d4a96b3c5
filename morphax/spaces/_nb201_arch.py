"""The NAS-Bench-201 cell and its architecture encodings (no table needed).

The public names are re-exported by :mod:`morphax.spaces.nasbench201`, whose
module the classes claim (`Cell.__module__`), so pickles and JSON name
`morphax.spaces.nasbench201.Cell` as before.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..symbolic import DNA, HyperValue, oneof, register

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
_NODE = re.compile(r"\|(?:[a-z0-9_]+~[0-9]+\|)+")


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


Cell.__module__ = "morphax.spaces.nasbench201"  # its public home (pickles, JSON, docs)
register(Cell)


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


for _f in (cell_space, parse_arch_string):
    _f.__module__ = "morphax.spaces.nasbench201"
