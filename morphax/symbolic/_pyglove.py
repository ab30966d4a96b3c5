"""Interoperability with PyGlove: DNASpecs, DNA and hyper-value programs.

PyGlove (`pyglove`, imported as `pg`) describes a space with a tree of
`pg.geno` specs: a `pg.geno.Space` holds decision points (`pg.geno.Choices`
for `pg.oneof`/`pg.manyof`, `pg.geno.Float` for `pg.floatv`), and every
candidate of a choice is a `pg.geno.Space` of its own (conditional decisions).
A morphax :class:`DNASpec` has the same structure, flattened into columns:

* a `pg.geno.Choices` with `num_choices=1` is a morphax :class:`Choice`;
  one with `num_choices=k > 1` is `k` consecutive :class:`Choice` picks (a
  `manyof`), each with its own copy of the candidates' sub-spaces;
* a `pg.geno.Float` is a morphax :class:`Float` (scale `None`/"linear" or
  "log"; PyGlove's "rlog" has no morphax equivalent);
* PyGlove has no int decision, so a morphax :class:`Int` becomes a
  `pg.geno.Choices` over the candidates `low, ..., high` (its DNA value is
  the index `value - low`), marked in `hints` so that it converts back to an
  :class:`Int`.

PyGlove DNA is a tree (`pg.DNA(value, children)`); morphax DNA is the flat,
depth-first list of the same values, which is what `pg.DNA.to_numbers()`
gives (except for the `Int` offset above).

Decision ids follow morphax's rules (`a[=1].x` for decision `x` in candidate 1
of choice `a`, where PyGlove writes `a[=1/2].x`); the morphax facts a PyGlove
spec has no field for (ids and locations of define-by-run decisions, int
decisions, a name that a define-by-run decision repeats under several
branches, where PyGlove needs unique names) travel in the decision point's
`hints` under the key `"__morphax__"`, so that
`from_pyglove_spec(to_pyglove_spec(spec)) == spec`. Candidate literals are
kept as text; they agree with PyGlove's for plain-value candidates (`"'relu'"`,
`16`), while PyGlove writes out a structured candidate where morphax names its
type, so specs with such candidates agree in structure but not in
fingerprint.

:func:`from_pyglove` converts a PyGlove program (hyper-values inside
`pg.Dict`, `pg.List` and `pg.Object`) into a morphax program whose DNA has the
same layout. PyGlove is imported only when one of these functions is called.
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._dna import DNA, DNAValue
from ._hyper import floatv, manyof, oneof
from ._json import register
from ._keypath import Key, parse_path
from ._space import _Cand, _format_id
from ._spec import Choice, DecisionPoint, DNASpec, Float, Int, Subspace
from ._tree import Call, SymbolicFactory, symbolic

if TYPE_CHECKING:
    import pyglove as pg

_META = "__morphax__"
#: The most values an int decision may have to be converted to a PyGlove choice.
MAX_INT_CANDIDATES = 10_000


def _pyglove() -> Any:
    try:
        import pyglove
    except ImportError as e:  # pragma: no cover - pyglove is a test dependency
        raise ImportError(
            "morphax's PyGlove interoperability needs the `pyglove` package: pip install pyglove"
        ) from e
    return pyglove


def _short(obj: Any) -> str:
    text = repr(obj)
    text = text if len(text) < 160 else text[:157] + "..."
    return f"{text} ({type(obj).__name__})"


# ---------------------------------------------------------------------------
# Specs: PyGlove -> morphax.


def from_pyglove_spec(pg_spec: pg.DNASpec) -> DNASpec:
    """The morphax :class:`DNASpec` with the structure of a PyGlove DNASpec.

    Args:
        pg_spec: a `pg.DNASpec`, as made by `pg.dna_spec(space)`: a
            `pg.geno.Space`, or a single `pg.geno.Choices`/`pg.geno.Float`.

    Returns:
        A DNASpec whose columns follow PyGlove's decision points in order; a
        `num_choices=k` choice becomes `k` manyof picks. Its `space_size`
        equals PyGlove's (`math.inf` where PyGlove says -1).

    Raises:
        TypeError: if `pg_spec` is not a PyGlove DNASpec, or holds a custom
            decision point (`pg.geno.CustomDecisionPoint`).
        ValueError: for a float decision with scale "rlog", a sub-choice of a
            multi-choice given on its own, or an int marker that does not
            match its choice.

    Examples:
        >>> import pyglove as pg
        >>> from morphax.symbolic._pyglove import from_pyglove_spec
        >>> space = pg.Dict(op=pg.oneof(["id", pg.Dict(k=pg.oneof([3, 5]))]), lr=pg.floatv(0.1, 1.0))
        >>> spec = from_pyglove_spec(pg.dna_spec(space))
        >>> [p.id for p in spec.columns]
        ['op', 'op[=1].k', 'lr']
        >>> from_pyglove_spec(pg.dna_spec(pg.manyof(2, [1, 2, 3]))).space_size
        6
    """
    pg = _pyglove()
    if not isinstance(pg_spec, pg.DNASpec):
        hint = ""
        if isinstance(pg_spec, (pg.Symbolic, pg.hyper.HyperValue)):
            hint = "; for a PyGlove search space, pass pg.dna_spec(space), or use from_pyglove"
        raise TypeError(
            f"from_pyglove_spec needs a PyGlove DNASpec (from pg.dna_spec(space)), "
            f"but got {_short(pg_spec)}{hint}"
        )
    if isinstance(pg_spec, pg.geno.Space):
        elements = list(pg_spec.elements)
    else:
        if isinstance(pg_spec, pg.geno.Choices) and pg_spec.is_subchoice:
            raise ValueError(
                f"from_pyglove_spec got {pg_spec.id!r}, one pick of a PyGlove multi-choice; "
                "pass the whole spec (pg.dna_spec(space)) instead"
            )
        elements = [pg_spec]
    return DNASpec(_from_elements(pg, elements, (), ()))


def _meta_of(pg_point: Any) -> dict[str, Any]:
    hints = pg_point.hints
    meta = hints.get(_META) if isinstance(hints, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def _mx_literals(literal_values: Any) -> tuple[str, ...]:
    if not literal_values:
        return ()
    return tuple(v if isinstance(v, str) else repr(v) for v in literal_values)


def _from_elements(
    pg: Any, elements: Sequence[Any], idkeys: tuple[Any, ...], lockeys: tuple[Key, ...]
) -> Subspace:
    """Morphax decision points for the elements of a PyGlove space."""
    points: list[DecisionPoint] = []
    for e in elements:
        rel = tuple(e.location.keys)
        ids, locs = idkeys + rel, lockeys + rel
        meta = _meta_of(e)
        name = meta.get("name", e.name)
        loc = str(meta.get("location", _format_id(locs)))
        pid = str(meta.get("id") or name or _format_id(ids))
        if isinstance(e, pg.geno.Choices):
            cands = list(e.candidates)
            if "intv" in meta:
                low, high = (int(x) for x in meta["intv"])
                if high - low + 1 != len(cands):
                    raise ValueError(
                        f"PyGlove choice {str(e.id)!r} is marked as the int decision "
                        f"intv({low}, {high}) but has {len(cands)} candidates"
                    )
                branches = _from_candidates(pg, cands, ids, locs)
                keep = meta.get("branching") or any(branches)
                points.append(
                    Int(pid, loc, name, low=low, high=high, subspaces=branches if keep else ())
                )
            elif e.num_choices == 1:
                points.append(
                    Choice(
                        pid,
                        loc,
                        name,
                        num_candidates=len(cands),
                        distinct=bool(e.distinct),
                        sorted=bool(e.sorted),
                        manyof_id=str(meta.get("manyof_id", "")),
                        subspaces=_from_candidates(pg, cands, ids, locs),
                        literals=_mx_literals(e.literal_values),
                    )
                )
            else:
                k = e.num_choices
                pick_ids = meta.get("ids")
                for p in range(k):
                    if pick_ids is not None:
                        qid = str(pick_ids[p])
                    elif name or "id" in meta:
                        qid = f"{pid}[{p}]"
                    else:
                        qid = _format_id(ids + (p,))
                    points.append(
                        Choice(
                            qid,
                            loc,
                            name,
                            num_candidates=len(cands),
                            k=k,
                            distinct=bool(e.distinct),
                            sorted=bool(e.sorted),
                            pick=p,
                            manyof_id=pid,
                            subspaces=_from_candidates(pg, cands, ids + (p,), locs),
                            literals=_mx_literals(e.literal_values),
                        )
                    )
        elif isinstance(e, pg.geno.Float):
            if e.scale in (None, "linear"):
                scale = "linear"
            elif e.scale == "log":
                scale = "log"
            else:
                raise ValueError(
                    f"PyGlove float decision {str(e.id)!r} has scale {e.scale!r}, which morphax "
                    "does not have (it has 'linear' and 'log')"
                )
            points.append(
                Float(pid, loc, name, low=float(e.min_value), high=float(e.max_value), scale=scale)
            )
        else:
            raise TypeError(
                f"cannot convert PyGlove decision point {str(e.id)!r} of type "
                f"{type(e).__name__}: morphax has choices (pg.oneof, pg.manyof) and floats "
                "(pg.floatv), but no custom decision points"
            )
    return tuple(points)


def _from_candidates(
    pg: Any, cands: list[Any], ids: tuple[Any, ...], locs: tuple[Key, ...]
) -> tuple[Subspace, ...]:
    return tuple(
        _from_elements(pg, c.elements, ids + (_Cand(j),), locs + ("candidates", j))
        for j, c in enumerate(cands)
    )


# ---------------------------------------------------------------------------
# Specs: morphax -> PyGlove.


def to_pyglove_spec(spec: DNASpec) -> pg.DNASpec:
    """The PyGlove DNASpec (a `pg.geno.Space`) with the structure of a morphax spec.

    For a space made of `oneof`, `manyof` and `floatv` over plain values, the
    result equals (`pg.eq`) `pg.dna_spec` of the same space written with
    PyGlove. An int decision becomes a `pg.geno.Choices` over `low, ..., high`,
    marked in its `hints`. `from_pyglove_spec` reverses the conversion
    exactly. PyGlove specs are slow to make (about as slow as `pg.dna_spec`).

    Args:
        spec: a morphax DNASpec (`mx.dna_spec(program)`, or a traced space's
            `.spec`).

    Returns:
        A `pg.geno.Space` with the same `space_size` (-1 where morphax says
        `math.inf`) and the same DNA layout.

    Raises:
        TypeError: if `spec` is not a morphax DNASpec.
        ValueError: if an int decision has more than `MAX_INT_CANDIDATES`
            values, or PyGlove rejects the spec (clashing names).

    Examples:
        >>> import morphax as mx
        >>> import pyglove as pg
        >>> from morphax.symbolic._pyglove import from_pyglove_spec, to_pyglove_spec
        >>> spec = mx.dna_spec({"act": mx.oneof(["relu", "gelu"]), "n": mx.intv(1, 3)})
        >>> pg_spec = to_pyglove_spec(spec)
        >>> pg_spec.space_size
        6
        >>> pg.eq(pg_spec.elements[0], pg.dna_spec(pg.Dict(act=pg.oneof(["relu", "gelu"]))).elements[0])
        True
        >>> from_pyglove_spec(pg_spec) == spec
        True
    """
    pg = _pyglove()
    if not isinstance(spec, DNASpec):
        raise TypeError(
            f"to_pyglove_spec needs a morphax DNASpec (from mx.dna_spec(program)), "
            f"but got {_short(spec)}"
        )
    for p in spec.columns:
        if isinstance(p, Int) and p.high - p.low + 1 > MAX_INT_CANDIDATES:
            raise ValueError(
                f"int decision {p.id!r} ({p.describe()}) has {p.high - p.low + 1} values; PyGlove "
                f"has no int decision, and a choice of more than {MAX_INT_CANDIDATES} candidates "
                "is too large to build: use a float, or a oneof over fewer values"
            )
    try:
        return pg.geno.Space(elements=_to_elements(pg, spec.root, (), (), set()))
    except ValueError:
        pass
    # A name PyGlove reads as another decision's id: keep all names in the hints.
    try:
        return pg.geno.Space(elements=_to_elements(pg, spec.root, (), (), None))
    except ValueError as e:
        raise ValueError(f"PyGlove rejects the converted spec: {e}") from None


def _relative(location: str, lockeys: tuple[Key, ...]) -> tuple[Key, ...] | None:
    """The keys of `location` under `lockeys`, or None when it is not under them."""
    if location == "<root>":
        keys: tuple[Key, ...] = ()
    else:
        try:
            keys = parse_path(location)
        except (TypeError, ValueError):
            return None
    if keys[: len(lockeys)] != lockeys:
        return None
    return keys[len(lockeys) :]


def _pg_literal(text: str) -> str | int | float:
    """A literal as PyGlove writes it: numbers as numbers, other values as text."""
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if repr(value) == text and math.isfinite(value):
            return value
    return text


def _to_elements(
    pg: Any,
    points: Subspace,
    idkeys: tuple[Any, ...],
    lockeys: tuple[Key, ...],
    names: set[str] | None,
) -> list[Any]:
    """PyGlove decision points for a morphax sub-space (manyof picks grouped).

    `names` holds the names given to PyGlove so far: PyGlove needs unique
    names, but a define-by-run decision may sit under several branches, so
    a repeated name (all names, when `names` is None) goes in the hints.
    """
    out: list[Any] = []
    i = 0
    while i < len(points):
        p = points[i]
        rel = _relative(p.location, lockeys)
        if rel is None:
            rel = (p.id,)
        ids, locs = idkeys + rel, lockeys + rel
        meta: dict[str, Any] = {}
        if _format_id(locs) != p.location:
            meta["location"] = p.location
        pg_name = p.name
        if p.name is not None and (names is None or p.name in names):
            meta["name"], pg_name = p.name, None
        elif p.name is not None and names is not None:
            names.add(p.name)
        common: dict[str, Any] = {"location": pg.KeyPath(list(rel)), "name": pg_name}
        if isinstance(p, Choice) and p.k > 1:
            group = points[i : i + p.k]
            if p.name:
                derived = [f"{p.name}[{q}]" for q in range(p.k)]
            else:
                derived = [_format_id(ids + (q,)) for q in range(p.k)]
            if (p.name or _format_id(ids)) != p.manyof_id:
                meta["id"] = p.manyof_id
                derived = [f"{p.manyof_id}[{q}]" for q in range(p.k)]
            if [q.id for q in group] != derived:
                meta["ids"] = [q.id for q in group]
            cands = _pg_candidates(pg, p.subspaces, ids + (0,), locs, names)
            out.append(
                pg.geno.Choices(
                    num_choices=p.k,
                    candidates=cands,
                    literal_values=_pg_literals(p),
                    distinct=p.distinct,
                    sorted=p.sorted,
                    hints={_META: meta} if meta else None,
                    **common,
                )
            )
            i += p.k
            continue
        if (p.name or _format_id(ids)) != p.id:
            meta["id"] = p.id
        if isinstance(p, Choice):
            if p.manyof_id:
                meta["manyof_id"] = p.manyof_id
            out.append(
                pg.geno.Choices(
                    num_choices=1,
                    candidates=_pg_candidates(pg, p.subspaces, ids, locs, names),
                    literal_values=_pg_literals(p),
                    distinct=p.distinct,
                    sorted=p.sorted,
                    hints={_META: meta} if meta else None,
                    **common,
                )
            )
        elif isinstance(p, Int):
            n = p.high - p.low + 1
            meta["intv"] = [p.low, p.high]
            if p.subspaces:
                meta["branching"] = True
                cands = _pg_candidates(pg, p.subspaces, ids, locs, names)
            else:
                cands = [pg.geno.Space() for _ in range(n)]
            out.append(
                pg.geno.Choices(
                    num_choices=1,
                    candidates=cands,
                    literal_values=list(range(p.low, p.high + 1)),
                    hints={_META: meta},
                    **common,
                )
            )
        else:
            assert isinstance(p, Float)
            out.append(
                pg.geno.Float(
                    min_value=float(p.low),
                    max_value=float(p.high),
                    scale=None if p.scale == "linear" else p.scale,
                    hints={_META: meta} if meta else None,
                    **common,
                )
            )
        i += 1
    return out


def _pg_candidates(
    pg: Any,
    subspaces: tuple[Subspace, ...],
    ids: tuple[Any, ...],
    locs: tuple[Key, ...],
    names: set[str] | None,
) -> list[Any]:
    return [
        pg.geno.Space(
            elements=_to_elements(pg, sub, ids + (_Cand(j),), locs + ("candidates", j), names)
        )
        for j, sub in enumerate(subspaces)
    ]


def _pg_literals(p: Choice) -> list[str | int | float] | None:
    if not p.literals or len(p.literals) != p.num_candidates:
        return None
    return [_pg_literal(text) for text in p.literals]


# ---------------------------------------------------------------------------
# DNA.


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
        >>> from morphax.symbolic._pyglove import to_pyglove_dna
        >>> pg_space = pg.Dict(op=pg.oneof(["id", pg.Dict(k=pg.oneof([3, 5]))]), n=pg.oneof([1, 2]))
        >>> pg_dna = to_pyglove_dna(mx.DNA([1, 0, 1]), pg.dna_spec(pg_space))
        >>> pg_dna
        DNA([(1, 0), 1])
        >>> pg.materialize(pg_space, pg_dna) == {"op": {"k": 3}, "n": 2}
        True
    """
    pg = _pyglove()
    if not isinstance(dna, DNA):
        raise TypeError(f"to_pyglove_dna needs a morphax DNA (mx.DNA), but got {_short(dna)}")
    if isinstance(pg_spec, DNASpec):
        spec, pg_spec = pg_spec, _cached_pg_spec(pg_spec)
    elif isinstance(pg_spec, pg.DNASpec):
        spec = from_pyglove_spec(pg_spec)
    else:
        raise TypeError(
            f"to_pyglove_dna needs a PyGlove DNASpec (pg.dna_spec(space)) or a morphax "
            f"DNASpec, but got {_short(pg_spec)}"
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
    i = 0
    while i < len(points):
        p = points[i]
        if isinstance(p, Choice) and p.k > 1:
            picks = []
            for q in points[i : i + p.k]:
                assert isinstance(q, Choice)
                j = int(next(numbers))
                picks.append(_pg_node(make, j, _pg_elements(make, q.subspaces[j], numbers)))
            out.append(picks)
            i += p.k
            continue
        v = next(numbers)
        if isinstance(p, Float):
            out.append(make(float(v), []))
        else:
            assert isinstance(p, Choice | Int)
            j = int(v)
            sub = p.subspaces[j] if p.subspaces else ()
            out.append(_pg_node(make, j, _pg_elements(make, sub, numbers)))
        i += 1
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
        A morphax DNA tied to `spec` (to the converted spec for a PyGlove one).

    Raises:
        TypeError: if `pg_dna` is not a PyGlove DNA or `spec` not a spec.
        ValueError: if `pg_dna` does not fit `spec`: too few or too many
            values, a value out of range, or a tree of the wrong shape.

    Examples:
        >>> import morphax as mx
        >>> import pyglove as pg
        >>> from morphax.symbolic._pyglove import from_pyglove_dna
        >>> space = {"op": mx.oneof(["id", {"k": mx.oneof([3, 5])}]), "n": mx.intv(1, 2)}
        >>> dna = from_pyglove_dna(pg.DNA([(1, 0), 1]), mx.dna_spec(space))
        >>> dna
        DNA([1, 0, 2])
        >>> mx.materialize(space, dna)
        {'op': {'k': 3}, 'n': 2}
    """
    pg = _pyglove()
    if not isinstance(pg_dna, pg.DNA):
        raise TypeError(f"from_pyglove_dna needs a PyGlove DNA (pg.DNA), but got {_short(pg_dna)}")
    if isinstance(spec, pg.DNASpec):
        spec = from_pyglove_spec(spec)
    elif not isinstance(spec, DNASpec):
        raise TypeError(
            f"from_pyglove_dna needs a morphax DNASpec or a PyGlove DNASpec, but got {_short(spec)}"
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
        dna = DNA(values, spec=spec)
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


# ---------------------------------------------------------------------------
# Programs.


def from_pyglove(value: Any) -> Any:
    """The morphax program of a PyGlove value or search space.

    Conversions, applied through the whole tree:

    * `pg.oneof`, `pg.manyof` (and `pg.permutate`), `pg.floatv` become
      :func:`morphax.oneof`, :func:`morphax.manyof`, :func:`morphax.floatv`
      with the same candidates (converted), flags and name;
    * a `pg.Object` (a class that subclasses it or is made with
      `pg.symbolize`, functors included) becomes a :class:`Call` of its class
      with its init arguments, so :func:`morphax.build` of a child gives the
      PyGlove object that `pg.materialize` gives;
    * `pg.Dict` becomes a dict, `pg.List` a list (also inside plain dicts,
      lists and tuples); a `pg.template` is replaced by its value;
    * other values are kept as they are.

    The decisions come in PyGlove's order, so a DNA of the result is the
    flat form of the PyGlove DNA (see :func:`from_pyglove_dna`).

    Raises:
        TypeError: for a PyGlove hyper-value morphax has no equivalent of
            (custom hyper-values, `pg.evolve`, dynamic evaluation, ...).
        ValueError: for a `pg.floatv` with scale "rlog" or an empty range, a
            choice with a `where` filter, or a `pg.manyof` with no fixed `k`.

    Examples:
        >>> import morphax as mx
        >>> import pyglove as pg
        >>> from morphax.symbolic._pyglove import from_pyglove
        >>> class Layer(pg.Object):
        ...     units: int
        ...     act: str = "relu"
        >>> pg_space = pg.Dict(layer=Layer(units=pg.oneof([8, 16])), lr=pg.floatv(0.1, 1.0))
        >>> space = from_pyglove(pg_space)
        >>> space
        {'layer': Layer(units=oneof([8, 16]), act='relu'), 'lr': floatv(0.1, 1.0)}
        >>> mx.dna_spec(space).space_size
        inf
        >>> mx.build(mx.materialize(space, mx.DNA([1, 0.5]))) == pg.materialize(pg_space, pg.DNA([1, 0.5]))
        True
    """
    pg = _pyglove()
    return _from_pg_value(pg, value, ())


def _where(path: tuple[Key, ...]) -> str:
    return _format_id(path)


def _from_pg_value(pg: Any, v: Any, path: tuple[Key, ...]) -> Any:
    if isinstance(v, pg.hyper.ObjectTemplate):
        return _from_pg_value(pg, v.value, path)
    if isinstance(v, pg.hyper.HyperValue):
        return _from_pg_hyper(pg, v, path)
    if isinstance(v, pg.Dict) or type(v) is dict:
        return {k: _from_pg_value(pg, x, path + (k,)) for k, x in v.items()}
    if isinstance(v, pg.List) or type(v) is list:
        return [_from_pg_value(pg, x, path + (i,)) for i, x in enumerate(v)]
    if type(v) is tuple:
        return tuple(_from_pg_value(pg, x, path + (i,)) for i, x in enumerate(v))
    if isinstance(v, pg.Object):
        return _from_pg_object(pg, v, path)
    return v


def _from_pg_hyper(pg: Any, v: Any, path: tuple[Key, ...]) -> Any:
    where = _where(path)
    name = v.name if v.name else None
    if isinstance(v, (pg.hyper.OneOf, pg.hyper.ManyOf)):
        if v.where is not None:
            raise ValueError(
                f"the PyGlove choice at {where!r} filters its nested hyper-values with "
                f"`where`={v.where!r}, which morphax does not have; remove the filter"
            )
        cands = [
            _from_pg_value(pg, c, path + ("candidates", j)) for j, c in enumerate(v.candidates)
        ]
        if isinstance(v, pg.hyper.OneOf):
            return oneof(cands, name=name)
        if v.num_choices is None:
            raise ValueError(
                f"the PyGlove choice at {where!r} has no fixed number of choices "
                "(num_choices=None); morphax's manyof needs an int k"
            )
        return manyof(
            int(v.num_choices),
            cands,
            distinct=bool(v.choices_distinct),
            sorted=bool(v.choices_sorted),
            name=name,
        )
    if isinstance(v, pg.hyper.Float):
        if v.scale in (None, "linear"):
            scale = "linear"
        elif v.scale == "log":
            scale = "log"
        else:
            raise ValueError(
                f"the PyGlove floatv at {where!r} has scale {v.scale!r}, which morphax does "
                "not have (it has 'linear' and 'log')"
            )
        if not v.min_value < v.max_value:
            raise ValueError(
                f"the PyGlove floatv at {where!r} has the empty range [{v.min_value}, "
                f"{v.max_value}]; morphax's floatv needs min_value < max_value"
            )
        return floatv(float(v.min_value), float(v.max_value), scale=scale, name=name)
    raise TypeError(
        f"cannot convert the PyGlove hyper-value at {where!r}, {_short(v)}: morphax has "
        "equivalents of pg.oneof, pg.manyof and pg.floatv only"
    )


_WRAPPERS: dict[tuple[type, tuple[str, ...]], SymbolicFactory] = {}
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _factory_for(cls: type, keys: tuple[str, ...]) -> SymbolicFactory:
    """A factory whose calls with `keys` as keywords build `cls(**kwargs)`.

    The class itself when its signature names every key; else (PyGlove
    functors, whose `__signature__` is PyGlove's own; varargs and varkw) a
    wrapper with exactly these keyword parameters, which calls `cls(**kwargs)`
    as PyGlove does when it copies an object.
    """
    try:
        factory = symbolic(cls)
    except TypeError:
        factory = None
    if factory is not None:
        params = factory.signature.parameters
        if all(k in params and params[k].kind in _NAMED for k in keys):
            return factory
    cached = _WRAPPERS.get((cls, keys))
    if cached is not None:
        return cached
    try:
        sig = inspect.Signature(
            [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in keys]
        )
    except ValueError as e:
        raise TypeError(
            f"cannot make a morphax call of PyGlove class {cls.__qualname__} with arguments "
            f"{list(keys)}: {e}"
        ) from None

    def make(**kwargs: Any) -> Any:
        return cls(**kwargs)

    make.__signature__ = sig  # type: ignore[attr-defined]
    make.__name__ = cls.__name__
    make.__qualname__ = cls.__qualname__
    make.__module__ = cls.__module__
    make.__doc__ = cls.__doc__
    factory = SymbolicFactory(make)
    # For JSON: a name of its own, not the class's (the user may register that).
    register(
        make, name=f"pyglove:{cls.__module__}.{cls.__qualname__}({','.join(keys)})", _default=True
    )
    _WRAPPERS[(cls, keys)] = factory
    return factory


def _from_pg_object(pg: Any, obj: Any, path: tuple[Key, ...]) -> Call:
    args = {str(k): _from_pg_value(pg, x, path + (str(k),)) for k, x in obj.sym_init_args.items()}
    factory = _factory_for(type(obj), tuple(args))
    try:
        factory.signature.bind(**args)
    except TypeError as e:
        raise TypeError(
            f"cannot make a morphax call of the PyGlove object at {_where(path)!r} "
            f"({type(obj).__qualname__}): {e}"
        ) from None
    # Arguments in PyGlove's field order, which is the order of its decisions.
    return Call(factory, args)
