"""DNASpec: the decision points of a space, in a fixed order, with stable ids.

Order: depth first. At the top level, decision points come in the order of
the program's tree walk (call arguments and dataclass fields in declaration
order, lists by index, dicts by insertion order). A choice is followed by the
decision points of its candidates' sub-spaces (conditional decisions); a
`manyof` has one column per pick, each with its own copy of the sub-spaces.

Ids: a user-given `name`, else the location of the hyper-value in the program
(`layers[2].features`); a decision inside candidate `j` of the choice at `a`
has an id under `a[=j]` (for a manyof pick `p`: `a[p][=j]`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._dna import DNA, DNAArray, DNAValue
from ._points import Choice, DecisionPoint, Int, ManyChoice, Pick, Subspace, subspace_size


class DNASpec:
    """The decision points of a space, their order, names and sizes.

    Made by :func:`morphax.dna_spec`. `len(spec)` is the number of columns of
    the flat array form (all decision points, conditional ones included; a
    manyof counts once per pick).

    Examples:
        >>> import morphax as mx
        >>> space = {"op": mx.oneof(["conv", {"k": mx.oneof([3, 5])}]), "lr": mx.floatv(0.1, 1.0)}
        >>> spec = mx.dna_spec(space)
        >>> [p.id for p in spec.columns]
        ['op', 'op[=1].k', 'lr']
        >>> spec.space_size
        inf
        >>> dna = spec.random_dna(0)
        >>> spec.from_array(spec.to_array(dna)) == dna
        True
    """

    def __init__(self, root: Subspace) -> None:
        self.columns: list[DecisionPoint] = []
        self.root = self._number(tuple(root), -1, -1)
        self._by_id: dict[str, list[DecisionPoint]] = {}
        for p in self.columns:
            self._by_id.setdefault(p.id, []).append(p)
        self._fingerprint: str | None = None

    def _number(self, points: Subspace, parent: int, parent_value: int) -> Subspace:
        """Numbered copies of `points` (depth-first preorder: a decision, then
        its candidates' sub-spaces; a manyof pick by pick); the points given
        are never changed."""
        out: list[DecisionPoint] = []
        for p in points:
            if isinstance(p, ManyChoice):
                out.append(self._number_manyof(p, parent, parent_value))
                continue
            column = len(self.columns)
            self.columns.append(p)  # its place; the numbered copy replaces it
            changes: dict[str, Any] = {
                "column": column,
                "parent": parent,
                "parent_value": parent_value,
            }
            if isinstance(p, Choice | Int) and p.subspaces:
                changes["subspaces"] = tuple(
                    self._number(sub, column, v) for v, sub in p.branches()
                )
            q = dataclasses.replace(p, **changes)
            self.columns[column] = q
            out.append(q)
        return tuple(out)

    def _number_manyof(self, m: ManyChoice, parent: int, parent_value: int) -> ManyChoice:
        columns, subspaces = [], []
        for p in range(m.k):
            column = len(self.columns)
            columns.append(column)
            self.columns.append(m)  # its place; the pick replaces it below
            subspaces.append(
                tuple(self._number(sub, column, j) for j, sub in enumerate(m.subspaces[p]))
            )
        numbered = dataclasses.replace(
            m,
            column=columns[0],
            parent=parent,
            parent_value=parent_value,
            subspaces=tuple(subspaces),
            columns=tuple(columns),
        )
        picks = tuple(
            Pick(
                m.pick_ids[p],
                m.location,
                m.name,
                column=c,
                parent=parent,
                parent_value=parent_value,
                num_candidates=m.num_candidates,
                subspaces=numbered.subspaces[p],
                literals=m.literals,
                owner=numbered,
                pick=p,
            )
            for p, c in enumerate(columns)
        )
        object.__setattr__(numbered, "picks", picks)  # the one link back, made here
        for q in picks:
            self.columns[q.column] = q
        return numbered

    # -- basic facts ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def space_size(self) -> int | float:
        """The exact number of distinct children (a Python int), or `math.inf`."""
        return subspace_size(self.root)

    @property
    def is_finite(self) -> bool:
        return not math.isinf(self.space_size)

    @property
    def fingerprint(self) -> str:
        """A short hash of the structure: specs with equal fingerprints are equal."""
        if self._fingerprint is None:
            text = "|".join(
                f"{p.id}:{p.parent}:{p.parent_value}:{p.describe()}:{getattr(p, 'literals', '')}"
                for p in self.columns
            )
            self._fingerprint = hashlib.sha1(text.encode()).hexdigest()[:16]
        return self._fingerprint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DNASpec) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        lines = [f"DNASpec(space_size={self.space_size}, columns={len(self)})"]
        for p in self.columns:
            depth = 0
            q = p
            while q.parent >= 0:
                depth += 1
                q = self.columns[q.parent]
            cond = f"  if {self.columns[p.parent].id}={p.parent_value}" if p.parent >= 0 else ""
            lines.append(f"  {'  ' * depth}[{p.column}] {p.id}: {p.describe()}{cond}")
        return "\n".join(lines)

    def __getitem__(self, key: int | str) -> DecisionPoint:
        if isinstance(key, int):
            return self.columns[key]
        points = self._by_id.get(key)
        if not points:
            raise KeyError(f"no decision point with id {key!r}; ids: {list(self._by_id)}")
        return points[0]

    # -- walking a DNA ---------------------------------------------------------

    def decode(self, dna: DNA | Sequence[DNAValue]) -> list[tuple[DecisionPoint, DNAValue]]:
        """The (decision point, value) pairs that `dna` sets, validated.

        Raises:
            ValueError: if `dna` does not fit this spec (naming the decision).
        """
        values = dna.values if isinstance(dna, DNA) else tuple(dna)
        out: list[tuple[DecisionPoint, DNAValue]] = []
        pos = _decode(self.root, values, 0, out, dna)
        if pos != len(values):
            raise ValueError(
                f"{_dna_repr(dna)} is too long for this space: it has {len(values)} values "
                f"but the decisions it picks use {pos}"
            )
        return out

    def validate(self, dna: DNA | Sequence[DNAValue]) -> DNA:
        """`dna` as a DNA, if it fits this spec; ValueError naming the decision otherwise."""
        self.decode(dna)
        return dna if isinstance(dna, DNA) else DNA(dna)

    def to_dict(self, dna: DNA) -> dict[str, DNAValue | list[int]]:
        """`{id: value}` for the active decisions (a manyof gives a list of indices).

        Examples:
            >>> import morphax as mx
            >>> spec = mx.dna_spec({"a": mx.oneof([1, 2]), "b": mx.manyof(2, ["x", "y", "z"])})
            >>> spec.to_dict(mx.DNA([1, 2, 0]))
            {'a': 1, 'b': [2, 0]}
        """
        out: dict[str, Any] = {}
        for p, v in self.decode(dna):
            if isinstance(p, Choice) and p.is_manyof:
                out.setdefault(p.manyof_id, []).append(v)
            else:
                out[p.id] = v
        return out

    # -- random DNA --------------------------------------------------------------

    def random_dna(self, rng: np.random.Generator | int | None = None) -> DNA:
        """A uniformly random DNA (each decision uniform, given its parents).

        Args:
            rng: a numpy Generator or an int seed.
        """
        gen = _as_rng(rng)
        u = gen.random(len(self.columns)).tolist() if self.columns else []
        out: list[DNAValue] = []
        _random(self.root, u, gen, out)
        return DNA(out)

    def random_arrays(self, batch: int, rng: np.random.Generator | int | None = None) -> DNAArray:
        """`batch` random DNAs in array form, sampled with vectorized numpy.

        Examples:
            >>> import morphax as mx
            >>> spec = mx.dna_spec([mx.oneof(range(5)) for _ in range(20)])
            >>> spec.random_arrays(1000, 0).indices.shape
            (1000, 20)
        """
        gen = _as_rng(rng)
        n = len(self.columns)
        idx = np.zeros((batch, n), np.int32)
        val = np.zeros((batch, n), np.float32)
        mask = np.zeros((batch, n), bool)
        done: set[int] = set()
        for p in self.columns:
            c = p.column
            mask[:, c] = (
                True if p.parent < 0 else mask[:, p.parent] & (idx[:, p.parent] == p.parent_value)
            )
            if c in done:
                continue
            if isinstance(p, Pick):
                cols = list(p.group)
                idx[:, cols] = p.sample_picks(gen, batch)
                done.update(cols)
            elif p.in_indices:
                idx[:, c] = p.sample(gen.random(batch))
            else:
                val[:, c] = p.sample(gen.random(batch))
        idx *= mask
        val *= mask
        return DNAArray(idx, val, mask)

    # -- array form ----------------------------------------------------------------

    def to_array(self, dna: DNA | Sequence[DNA]) -> DNAArray:
        """The flat array form of a DNA (`[n]`) or of a list of DNA (`[batch, n]`)."""
        if isinstance(dna, DNA):
            return self._fill([dna], batched=False)
        return self._fill(list(dna), batched=True)

    def _fill(self, dnas: list[DNA], batched: bool) -> DNAArray:
        n = len(self.columns)
        idx = np.zeros((len(dnas), n), np.int32)
        val = np.zeros((len(dnas), n), np.float32)
        mask = np.zeros((len(dnas), n), bool)
        for b, dna in enumerate(dnas):
            if not isinstance(dna, DNA):
                raise TypeError(f"to_array takes DNA or a list of DNA, but got {dna!r} at {b}")
            for p, v in self.decode(dna):
                mask[b, p.column] = True
                (idx if p.in_indices else val)[b, p.column] = v
        if batched:
            return DNAArray(idx, val, mask)
        return DNAArray(idx[0], val[0], mask[0])

    def from_array(
        self, array: DNAArray | tuple[Any, Any] | tuple[Any, Any, Any], *, check: bool = True
    ) -> Any:
        """The DNA of an array form; a list of DNA for a `[batch, n]` array.

        Only `indices` and `values` are read: which decisions are active
        follows from the choices, so arrays made by an algorithm need no mask.
        Float values are clipped to their bounds (float32 rounding).

        Args:
            array: `(indices, values)` or a :class:`DNAArray`.
            check: validate each DNA (ValueError naming the decision). Code
                whose arrays keep the rules by construction (the mutators)
                passes False: the search validates every proposal once.
        """
        indices, values = np.asarray(array[0]), np.asarray(array[1])
        n = len(self.columns)
        if (
            indices.shape[-1:] != (n,)
            or values.shape != indices.shape
            or indices.ndim not in (1, 2)
        ):
            raise ValueError(
                f"from_array needs indices and values of shape [n] or [batch, n] with n={n}, "
                f"but got {indices.shape} and {values.shape}"
            )
        if indices.ndim == 1:
            return self._read(indices.tolist(), values.tolist(), check)
        pairs = zip(indices.tolist(), values.tolist(), strict=True)
        return [self._read(i, v, check) for i, v in pairs]

    def _read(self, idx: list[int], val: list[float], check: bool) -> DNA:
        out: list[DNAValue] = []
        _read(self.root, idx, val, out)
        dna = DNA(out)
        if check:
            self.validate(dna)
        return dna

    # -- enumeration -----------------------------------------------------------

    def iter_dna(self) -> Iterator[DNA]:
        """Every DNA of a finite space, in lexicographic (depth-first) order."""
        if not self.is_finite:
            raise ValueError(
                f"cannot enumerate a space with float decisions "
                f"({[p.id for p in self.columns if not p.in_indices]}); "
                "use random_sample or give the floats a grid with oneof"
            )
        for values in _grid(self.root):
            yield DNA(values)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator or an int seed, but got {rng!r}")


def _random(
    points: Subspace, u: list[float], gen: np.random.Generator, out: list[DNAValue]
) -> None:
    for p in points:
        if isinstance(p, ManyChoice):
            for q, j in zip(p.picks, p.sample_picks(gen), strict=True):
                out.append(j)
                sub = q.subspace(j)
                if sub:
                    _random(sub, u, gen, out)
            continue
        v = p.sample(u[p.column])
        out.append(v)
        sub = p.subspace(v)
        if sub:
            _random(sub, u, gen, out)


def _dna_repr(dna: Any) -> str:
    return repr(dna) if isinstance(dna, DNA) else f"DNA({list(dna)!r})"


def _decode(
    points: Subspace, values: tuple[DNAValue, ...], pos: int, out: list[Any], dna: Any
) -> int:
    for p in points:
        if isinstance(p, ManyChoice):
            start = len(out)
            pos = _decode(p.picks, values, pos, out, dna)
            picks = [v for q, v in out[start:] if q.column in p.columns]
            why = p.check_picks(picks)
            if why is not None:
                raise ValueError(
                    f"{_dna_repr(dna)} picks {picks} for manyof {p.location!r}, which {why}"
                )
            continue
        if pos >= len(values):
            raise ValueError(
                f"{_dna_repr(dna)} is too short for this space: no value for decision "
                f"{p.id!r} ({p.describe()}) at position {pos}"
            )
        v = p.check(values[pos])
        if v is None:
            raise ValueError(
                f"{_dna_repr(dna)} has value {values[pos]!r} at position {pos} for decision "
                f"{p.id!r}, which needs {p.rule()}"
            )
        pos += 1
        out.append((p, v))
        sub = p.subspace(v)
        if sub:
            pos = _decode(sub, values, pos, out, dna)
    return pos


def _read(points: Subspace, idx: list[int], val: list[float], out: list[DNAValue]) -> None:
    for p in points:
        if isinstance(p, ManyChoice):
            _read(p.picks, idx, val, out)
            continue
        c = p.column
        if not p.in_indices:
            out.append(min(max(float(val[c]), p.low), p.high))  # type: ignore[attr-defined]
            continue
        v = int(idx[c])
        out.append(v)
        if p.check(v) is not None:
            sub = p.subspace(v)
            if sub:
                _read(sub, idx, val, out)


def _grid(points: Subspace) -> Iterator[list[DNAValue]]:
    if not points:
        yield []
        return
    p, rest = points[0], points[1:]
    if isinstance(p, ManyChoice):
        for picks in p.iter_picks():
            heads = [
                [[j] + tail for tail in _grid(q.subspace(j))]
                for q, j in zip(p.picks, picks, strict=True)
            ]
            for combo in itertools.product(*heads):
                head = [v for part in combo for v in part]
                for tail in _grid(rest):
                    yield head + tail
        return
    for v in p.options():
        for mid in _grid(p.subspace(v)):
            for tail in _grid(rest):
                yield [v] + mid + tail
