"""DNASpecs converted between PyGlove (`pg.geno` trees) and morphax (columns)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..symbolic import Cand as _Cand
from ..symbolic import Choice, DecisionPoint, DNASpec, Float, Int, ManyChoice, parse_path
from ..symbolic import format_id as _format_id
from ._core import Key, Subspace
from ._pg_base import META, pyglove, short

if TYPE_CHECKING:
    import pyglove as pg

#: The most values an int decision may have to be converted to a PyGlove choice.
MAX_INT_CANDIDATES = 10_000

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
        >>> from morphax.interop import from_pyglove_spec
        >>> space = pg.Dict(op=pg.oneof(["id", pg.Dict(k=pg.oneof([3, 5]))]), lr=pg.floatv(0.1, 1.0))
        >>> spec = from_pyglove_spec(pg.dna_spec(space))
        >>> [p.id for p in spec.columns]
        ['op', 'op[=1].k', 'lr']
        >>> from_pyglove_spec(pg.dna_spec(pg.manyof(2, [1, 2, 3]))).space_size
        6
    """
    pg = pyglove()
    if not isinstance(pg_spec, pg.DNASpec):
        hint = ""
        if isinstance(pg_spec, (pg.Symbolic, pg.hyper.HyperValue)):
            hint = "; for a PyGlove search space, pass pg.dna_spec(space), or use from_pyglove"
        raise TypeError(
            f"from_pyglove_spec needs a PyGlove DNASpec (from pg.dna_spec(space)), "
            f"but got {short(pg_spec)}{hint}"
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
    meta = hints.get(META) if isinstance(hints, dict) else None
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
                    Int(
                        id=pid,
                        location=loc,
                        name=name,
                        low=low,
                        high=high,
                        subspaces=branches if keep else (),
                    )
                )
            elif e.num_choices == 1 and not meta.get("manyof_id"):
                points.append(
                    Choice(
                        id=pid,
                        location=loc,
                        name=name,
                        num_candidates=len(cands),
                        subspaces=_from_candidates(pg, cands, ids, locs),
                        literals=_mx_literals(e.literal_values),
                    )
                )
            else:
                k = e.num_choices
                pick_ids = meta.get("ids")
                qids = []
                for p in range(k):
                    if pick_ids is not None:
                        qids.append(str(pick_ids[p]))
                    elif k == 1:
                        qids.append(pid)  # a manyof of one pick, marked by its manyof_id
                    elif name or "id" in meta:
                        qids.append(f"{pid}[{p}]")
                    else:
                        qids.append(_format_id(ids + (p,)))
                points.append(
                    ManyChoice(
                        id=str(meta.get("manyof_id") or pid) if k == 1 else pid,
                        location=loc,
                        name=name,
                        num_candidates=len(cands),
                        k=k,
                        distinct=bool(e.distinct),
                        sorted=bool(e.sorted),
                        subspaces=tuple(
                            _from_candidates(pg, cands, ids + (p,) if k > 1 else ids, locs)
                            for p in range(k)
                        ),
                        literals=_mx_literals(e.literal_values),
                        pick_ids=tuple(qids),
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
                Float(
                    id=pid,
                    location=loc,
                    name=name,
                    low=float(e.min_value),
                    high=float(e.max_value),
                    scale=scale,
                )
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
        >>> from morphax.interop import from_pyglove_spec, to_pyglove_spec
        >>> spec = mx.dna_spec({"act": mx.oneof(["relu", "gelu"]), "n": mx.intv(1, 3)})
        >>> pg_spec = to_pyglove_spec(spec)
        >>> pg_spec.space_size
        6
        >>> pg.eq(pg_spec.elements[0], pg.dna_spec(pg.Dict(act=pg.oneof(["relu", "gelu"]))).elements[0])
        True
        >>> from_pyglove_spec(pg_spec) == spec
        True
    """
    pg = pyglove()
    if not isinstance(spec, DNASpec):
        raise TypeError(
            f"to_pyglove_spec needs a morphax DNASpec (from mx.dna_spec(program)), "
            f"but got {short(spec)}"
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
    for point in points:
        p: Any = point
        if isinstance(p, ManyChoice) and p.k == 1:
            p = p.picks[0]  # one pick: a choice that knows its manyof
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
        if isinstance(p, ManyChoice):
            group = p.picks
            if p.name:
                derived = [f"{p.name}[{q}]" for q in range(p.k)]
            else:
                derived = [_format_id(ids + (q,)) for q in range(p.k)]
            if (p.name or _format_id(ids)) != p.id:
                meta["id"] = p.id
                derived = [f"{p.id}[{q}]" for q in range(p.k)]
            if [q.id for q in group] != derived:
                meta["ids"] = [q.id for q in group]
            cands = _pg_candidates(pg, p.subspaces[0], ids + (0,), locs, names)
            out.append(
                pg.geno.Choices(
                    num_choices=p.k,
                    candidates=cands,
                    literal_values=_pg_literals(p),
                    distinct=p.distinct,
                    sorted=p.sorted,
                    hints={META: meta} if meta else None,
                    **common,
                )
            )
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
                    hints={META: meta} if meta else None,
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
                    hints={META: meta},
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
                    hints={META: meta} if meta else None,
                    **common,
                )
            )
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


def _pg_literals(p: Choice | ManyChoice) -> list[str | int | float] | None:
    if not p.literals or len(p.literals) != p.num_candidates:
        return None
    return [_pg_literal(text) for text in p.literals]
