"""DNA converted between PyGlove (a tree) and morphax (a flat list)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..symbolic import DNA, Choice, DecisionPoint, DNASpec, Float, Int, ManyChoice
from ._core import DNAValue, Subspace
from ._pg_base import pyglove, short
from ._pg_spec import from_pyglove_spec, to_pyglove_spec

if TYPE_CHECKING:
    import pyglove as pg


def to_pyglove_dna(dna: DNA, pg_spec: pg.DNASpec | DNASpec) -> pg.DNA:
    """The PyGlove DNA (a tree) of a morphax DNA (a flat list), tied to `pg_spec`.

    Args:
        dna: a morphax DNA of a space with the structure of `pg_spec`.
        pg_spec: the PyGlove DNASpec (`pg.dna_spec(space)` or
            `to_pyglove_spec(spec)`), or a morphax DNASpec, which is converted
            with :func:`to_pyglove_spec` (once per spec object).

    Returns:
        A `pg.DNA` with `pg_spec` attached; `pg.materialize(pg_space, pg_dna)`
        gives the child of the PyGlove space.

    Raises:
        TypeError: if `dna` is not a morphax DNA or `pg_spec` not a spec.
        ValueError: if `dna` does not fit the spec (naming the decision).

    Examples:
        >>> import morphax as mx
        >>> import pyglove as pg
        >>> from morphax.interop import to_pyglove_dna
        >>> pg_space = pg.Dict(op=pg.oneof(["id", pg.Dict(k=pg.oneof([3, 5]))]), n=pg.oneof([1, 2]))
        >>> pg_dna = to_pyglove_dna(mx.DNA([1, 0, 1]), pg.dna_spec(pg_space))
        >>> pg_dna
        DNA([(1, 0), 1])
        >>> pg.materialize(pg_space, pg_dna) == {"op": {"k": 3}, "n": 2}
        True
    """
    pg = pyglove()
    if not isinstance(dna, DNA):
        raise TypeError(f"to_pyglove_dna needs a morphax DNA (mx.DNA), but got {short(dna)}")
    if isinstance(pg_spec, DNASpec):
        spec, pg_spec = pg_spec, _cached_pg_spec(pg_spec)
    elif isinstance(pg_spec, pg.DNASpec):
        spec = from_pyglove_spec(pg_spec)
    else:
        raise TypeError(
            f"to_pyglove_dna needs a PyGlove DNASpec (pg.dna_spec(space)) or a morphax "
            f"DNASpec, but got {short(pg_spec)}"
        )
    try:
        pairs = spec.decode(dna.values)  # by value: DNA of an equal-structure space is fine
    except ValueError as e:
        raise ValueError(f"cannot convert {dna!r} to PyGlove DNA: {e}") from None
    numbers = [_pg_number(p, v) for p, v in pairs]
    tree = _pg_tree(pg.DNA, spec.root, iter(numbers))
    return tree.use_spec(pg_spec)


_PG_SPECS: dict[int, tuple[weakref.ref[DNASpec], Any]] = {}


def _cached_pg_spec(spec: DNASpec) -> Any:
    """`to_pyglove_spec(spec)`, made once per spec object (PyGlove specs are slow to make)."""
    key = id(spec)
    hit = _PG_SPECS.get(key)
    if hit is not None and hit[0]() is spec:
        return hit[1]
    pg_spec = to_pyglove_spec(spec)

    def forget(ref: weakref.ref[DNASpec]) -> None:
        if _PG_SPECS.get(key, (None,))[0] is ref:
            del _PG_SPECS[key]

    _PG_SPECS[key] = (weakref.ref(spec, forget), pg_spec)
    return pg_spec


def _pg_number(p: DecisionPoint, v: DNAValue) -> DNAValue:
    if isinstance(p, Int):
        return int(v) - p.low
    if isinstance(p, Float):
        return float(v)
    return v


Node = Callable[[DNAValue | None, list[Any]], Any]


def _pg_tree(make: Node, root: Subspace, numbers: Iterator[DNAValue]) -> Any:
    """The PyGlove DNA tree of flat (PyGlove-valued) numbers, made with `make`.

    `make(value, children)` is `pg.DNA`, or a plain tuple maker for checking
    a tree's shape. The tree comes out in PyGlove's normal form (a space of
    one element is that element; a choice whose candidate space is one
    multi-choice holds the picks), built without nodes that PyGlove would
    collapse, which it does by copying.
    """
    elements = _pg_elements(make, root, numbers)
    if len(elements) == 1:
        only = elements[0]
        return make(None, only) if isinstance(only, list) else only
    return make(None, [make(None, e) if isinstance(e, list) else e for e in elements])


def _pg_node(make: Node, value: DNAValue, elements: list[Any]) -> Any:
    if len(elements) == 1 and isinstance(elements[0], list):
        return make(value, elements[0])
    return make(value, [make(None, e) if isinstance(e, list) else e for e in elements])


def _pg_elements(make: Node, points: Subspace, numbers: Iterator[DNAValue]) -> list[Any]:
    """One node per element; a multi-choice as the list of its picks' nodes."""
    out: list[Any] = []
    for point in points:
        p: Any = point
        if isinstance(p, ManyChoice) and p.k == 1:
            p = p.picks[0]  # PyGlove has one choice here, not a list of picks
        if isinstance(p, ManyChoice):
            picks = []
            for q in p.picks:
                j = int(next(numbers))
                picks.append(_pg_node(make, j, _pg_elements(make, q.subspaces[j], numbers)))
            out.append(picks)
            continue
        v = next(numbers)
        if isinstance(p, Float):
            out.append(make(float(v), []))
        else:
            assert isinstance(p, Choice | Int)
            j = int(v)
            sub = p.subspaces[j] if p.subspaces else ()
            out.append(_pg_node(make, j, _pg_elements(make, sub, numbers)))
    return out


def _tuple_node(value: DNAValue | None, children: list[Any]) -> Any:
    return (value, children)


def from_pyglove_dna(pg_dna: pg.DNA, spec: DNASpec | pg.DNASpec) -> DNA:
    """The morphax DNA (a flat list) of a PyGlove DNA (a tree).

    Args:
        pg_dna: a `pg.DNA` of a space with the structure of `spec`.
        spec: the morphax DNASpec to read the DNA with, or a PyGlove DNASpec,
            which is converted with :func:`from_pyglove_spec`.

    Returns:
        The morphax DNA, read with `spec` (with the converted spec for a PyGlove one).

    Raises:
        TypeError: if `pg_dna` is not a PyGlove DNA or `spec` not a spec.
        ValueError: if `pg_dna` does not fit `spec`: too few or too many
            values, a value out of range, or a tree of the wrong shape.

    Examples:
        >>> import morphax as mx
        >>> import pyglove as pg
        >>> from morphax.interop import from_pyglove_dna
        >>> space = {"op": mx.oneof(["id", {"k": mx.oneof([3, 5])}]), "n": mx.intv(1, 2)}
        >>> dna = from_pyglove_dna(pg.DNA([(1, 0), 1]), mx.dna_spec(space))
        >>> dna
        DNA([1, 0, 2])
        >>> mx.materialize(space, dna)
        {'op': {'k': 3}, 'n': 2}
    """
    pg = pyglove()
    if not isinstance(pg_dna, pg.DNA):
        raise TypeError(f"from_pyglove_dna needs a PyGlove DNA (pg.DNA), but got {short(pg_dna)}")
    if isinstance(spec, pg.DNASpec):
        spec = from_pyglove_spec(spec)
    elif not isinstance(spec, DNASpec):
        raise TypeError(
            f"from_pyglove_dna needs a morphax DNASpec or a PyGlove DNASpec, but got {short(spec)}"
        )
    numbers = list(pg_dna.to_numbers())
    values: list[DNAValue] = []
    try:
        end = _from_pg_numbers(spec.root, numbers, 0, values)
        if end != len(numbers):
            raise ValueError(
                f"it has {len(numbers)} values but the decisions it picks use {end}: "
                f"{numbers[end:]!r} are left over"
            )
        dna = DNA(values)
        spec.validate(dna)
    except ValueError as e:
        raise ValueError(f"PyGlove {pg_dna!r} does not fit the morphax spec: {e}") from None
    numbers = [_pg_number(p, v) for p, v in spec.decode(dna)]
    if not _same_tree(_pg_tree(_tuple_node, spec.root, iter(numbers)), pg_dna):
        expected = _pg_tree(pg.DNA, spec.root, iter(numbers))
        raise ValueError(
            f"PyGlove {pg_dna!r} has the values of a DNA of this spec but not its tree shape "
            f"(expected {expected!r}); was it made for another space?"
        )
    return dna


def _from_pg_numbers(points: Subspace, numbers: list[Any], pos: int, out: list[DNAValue]) -> int:
    for p in points:
        if isinstance(p, ManyChoice):
            pos = _from_pg_numbers(p.picks, numbers, pos, out)
            continue
        if pos >= len(numbers):
            raise ValueError(
                f"it is too short: no value for decision {p.id!r} ({p.describe()}) "
                f"at position {pos}"
            )
        v = numbers[pos]
        pos += 1
        if isinstance(p, Float):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(
                    f"it has {v!r} at position {pos - 1} for float decision {p.id!r}, "
                    "which needs a number"
                )
            out.append(float(v))
            continue
        n = p.num_candidates if isinstance(p, Choice) else p.high - p.low + 1  # type: ignore[attr-defined]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise ValueError(
                f"it has {v!r} at position {pos - 1} for decision {p.id!r} ({p.describe()}), "
                f"which needs a candidate index in [0, {n - 1}]"
            )
        if isinstance(p, Int):
            out.append(p.low + v)
            sub = p.subspaces[v] if p.subspaces else ()
        else:
            assert isinstance(p, Choice)
            out.append(v)
            sub = p.subspaces[v]
        if sub:
            pos = _from_pg_numbers(sub, numbers, pos, out)
    return pos


def _same_tree(node: tuple[Any, list[Any]], pg_dna: Any) -> bool:
    value, children = node
    if value != pg_dna.value or len(children) != len(pg_dna.children):
        return False
    return all(_same_tree(x, y) for x, y in zip(children, pg_dna.children, strict=True))
