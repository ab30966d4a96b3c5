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

import contextlib
import hashlib
import itertools
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dna import DNA, DNAArray, DNAValue

Subspace = tuple["DecisionPoint", ...]


@dataclass(eq=False)
class DecisionPoint:
    """One decision of a space (a column of the flat array form).

    Attributes:
        id: stable identifier: the user-given name or the location.
        location: where the hyper-value sits (path in the program, or the
            define-by-run call site).
        name: the user-given name, or None.
        column: the column of this decision in the flat array form.
        parent: the column of the choice that enables this decision, or -1.
        parent_value: the index (or int value) of `parent` that enables it.
    """

    id: str
    location: str
    name: str | None
    column: int = -1
    parent: int = -1
    parent_value: int = -1

    def size(self) -> int | float:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(eq=False)
class Choice(DecisionPoint):
    """A categorical decision: `k` picks of `num_candidates` (one per column).

    `slots[p][j]` is the sub-space of candidate `j` for pick `p`.
    """

    num_candidates: int = 1
    k: int = 1
    distinct: bool = True
    sorted: bool = False
    pick: int = 0
    group: tuple[int, ...] = ()  # the columns of all picks of this manyof
    manyof_id: str = ""  # the id of the whole manyof (its picks have ids `manyof_id[p]`)
    subspaces: tuple[Subspace, ...] = ()
    literals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.subspaces:
            self.subspaces = ((),) * self.num_candidates
        if len(self.subspaces) != self.num_candidates:
            raise ValueError(
                f"choice {self.id!r} has {self.num_candidates} candidates but "
                f"{len(self.subspaces)} sub-spaces"
            )

    def size(self) -> int | float:
        return sum(_subspace_size(s) for s in self.subspaces)

    def describe(self) -> str:
        if self.k == 1:
            return f"oneof({self.num_candidates})"
        rules = ("distinct" if self.distinct else "repeats") + (", sorted" if self.sorted else "")
        return f"manyof({self.k} of {self.num_candidates}, {rules}, pick {self.pick})"


@dataclass(eq=False)
class Float(DecisionPoint):
    """A float decision in `[low, high]` (`scale` "linear" or "log")."""

    low: float = 0.0
    high: float = 1.0
    scale: str = "linear"

    def size(self) -> int | float:
        return math.inf

    def describe(self) -> str:
        return f"floatv({self.low}, {self.high}{', log' if self.scale == 'log' else ''})"


@dataclass(eq=False)
class Int(DecisionPoint):
    """An int decision in `[low, high]`.

    In define-by-run spaces, an int that controls which decisions run (a
    depth) has one sub-space per value: `subspaces[v - low]`.
    """

    low: int = 0
    high: int = 0
    subspaces: tuple[Subspace, ...] = field(default_factory=tuple)

    def size(self) -> int | float:
        if self.subspaces:
            return sum(_subspace_size(s) for s in self.subspaces)
        return self.high - self.low + 1

    def describe(self) -> str:
        return f"intv({self.low}, {self.high})"


def _subspace_size(points: Subspace) -> int | float:
    size: int | float = 1
    i = 0
    while i < len(points):
        p = points[i]
        if isinstance(p, Choice) and p.k > 1:
            group = points[i : i + p.k]
            size *= _manyof_size(group)
            i += p.k
            continue
        size *= p.size()
        i += 1
    return size


def _manyof_size(group: Sequence[DecisionPoint]) -> int | float:
    """Exact size of a manyof: picks share candidate sub-space sizes."""
    first = group[0]
    assert isinstance(first, Choice)
    s = [_subspace_size(sub) for sub in first.subspaces]
    k = first.k
    if any(math.isinf(x) for x in s):
        return math.inf
    if not first.distinct and not first.sorted:
        return sum(s) ** k
    # e[j] / h[j]: elementary / complete homogeneous symmetric polynomials.
    poly: list[int | float] = [1]
    poly += [0] * k
    for x in s:
        for j in range(k, 0, -1):
            if first.distinct:
                poly[j] += x * poly[j - 1]
            else:
                poly[j] += sum(x**i * poly[j - i] for i in range(1, j + 1))
    size = poly[k]
    return size * math.factorial(k) if not first.sorted else size


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
        self.root = root
        self.columns: list[DecisionPoint] = []
        self._number(root, -1, -1)
        self._by_id: dict[str, list[DecisionPoint]] = {}
        for p in self.columns:
            self._by_id.setdefault(p.id, []).append(p)
        self._fingerprint: str | None = None

    def _number(self, points: Subspace, parent: int, parent_value: int) -> None:
        # Depth-first preorder: a decision, then its candidates' sub-spaces.
        for p in points:
            p.column = len(self.columns)
            p.parent, p.parent_value = parent, parent_value
            self.columns.append(p)
            if isinstance(p, Choice):
                for j, sub in enumerate(p.subspaces):
                    self._number(sub, p.column, j)
            elif isinstance(p, Int):
                for j, sub in enumerate(p.subspaces):
                    self._number(sub, p.column, p.low + j)
        for i, p in enumerate(points):
            if isinstance(p, Choice) and p.k > 1 and p.pick == 0:
                group = tuple(q.column for q in points[i : i + p.k])
                for q in points[i : i + p.k]:
                    q.group = group  # type: ignore[attr-defined]

    # -- basic facts ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def space_size(self) -> int | float:
        """The exact number of distinct children (a Python int), or `math.inf`."""
        return _subspace_size(self.root)

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
        if (
            isinstance(dna, DNA)
            and dna.spec is not None
            and dna.spec is not self
            and dna.spec != self
        ):
            raise ValueError(
                f"{dna!r} was made for another space (spec {dna.spec.fingerprint} with "
                f"{len(dna.spec)} decision points) and cannot be used with this one "
                f"(spec {self.fingerprint} with {len(self)} decision points: "
                f"{[p.id for p in self.columns][:8]}...)"
            )
        out: list[tuple[DecisionPoint, DNAValue]] = []
        pos = _decode(self.root, values, 0, out, dna)
        if pos != len(values):
            raise ValueError(
                f"{_dna_repr(dna)} is too long for this space: it has {len(values)} values "
                f"but the decisions it picks use {pos}"
            )
        return out

    def validate(self, dna: DNA | Sequence[DNAValue]) -> None:
        """Raises ValueError if `dna` does not fit this spec."""
        self.decode(dna)

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
            if isinstance(p, Choice) and p.k > 1:
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
        return DNA(out, spec=self)

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
            if isinstance(p, Choice) and p.k > 1:
                cols = list(p.group)
                if p.distinct:
                    picks = np.argsort(gen.random((batch, p.num_candidates)), axis=1)[:, : p.k]
                else:
                    picks = gen.integers(0, p.num_candidates, (batch, p.k))
                if p.sorted:
                    picks = np.sort(picks, axis=1)
                idx[:, cols] = picks
                done.update(cols)
            elif isinstance(p, Choice):
                idx[:, c] = gen.integers(0, p.num_candidates, batch)
            elif isinstance(p, Int):
                idx[:, c] = gen.integers(p.low, p.high + 1, batch)
            else:
                assert isinstance(p, Float)
                val[:, c] = _float_sample(p, gen.random(batch))
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
                if isinstance(p, Float):
                    val[b, p.column] = v
                else:
                    idx[b, p.column] = v
        if batched:
            return DNAArray(idx, val, mask)
        return DNAArray(idx[0], val[0], mask[0])

    def from_array(self, array: DNAArray | tuple[Any, Any] | tuple[Any, Any, Any]) -> Any:
        """The DNA of an array form; a list of DNA for a `[batch, n]` array.

        Only `indices` and `values` are read: which decisions are active
        follows from the choices, so arrays made by an algorithm need no mask.
        Float values are clipped to their bounds (float32 rounding).
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
            return self._read(indices.tolist(), values.tolist())
        return [self._read(i, v) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]

    def _read(self, idx: list[int], val: list[float]) -> DNA:
        out: list[DNAValue] = []
        _read(self.root, idx, val, out)
        dna = DNA(out, spec=self)
        self.validate(dna)
        return dna

    # -- enumeration -----------------------------------------------------------

    def iter_dna(self) -> Iterator[DNA]:
        """Every DNA of a finite space, in lexicographic (depth-first) order."""
        if not self.is_finite:
            raise ValueError(
                f"cannot enumerate a space with float decisions "
                f"({[p.id for p in self.columns if isinstance(p, Float)]}); "
                "use random_sample or give the floats a grid with oneof"
            )
        for values in _grid(self.root):
            yield DNA(values, spec=self)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator or an int seed, but got {rng!r}")


def _float_sample(p: Float, u: Any) -> Any:
    if p.scale == "log":
        lo, hi = math.log(p.low), math.log(p.high)
        return np.exp(lo + u * (hi - lo))
    return p.low + u * (p.high - p.low)


_F32 = struct.Struct("f")


def _f32(p: Float, x: float) -> float:
    """Rounds to float32 (so the array form round-trips), within bounds."""
    with contextlib.suppress(OverflowError):  # beyond float32: the bounds decide
        x = _F32.unpack(_F32.pack(x))[0]
    return min(max(x, p.low), p.high)


def _random(
    points: Subspace, u: list[float], gen: np.random.Generator, out: list[DNAValue]
) -> None:
    i = 0
    while i < len(points):
        p = points[i]
        if isinstance(p, Choice):
            if p.k > 1:
                if p.distinct:
                    picks = gen.choice(p.num_candidates, p.k, replace=False).tolist()
                else:
                    picks = gen.integers(0, p.num_candidates, p.k).tolist()
                if p.sorted:
                    picks.sort()
                for q, j in zip(points[i : i + p.k], picks, strict=True):
                    out.append(j)
                    sub = q.subspaces[j]  # type: ignore[attr-defined]
                    if sub:
                        _random(sub, u, gen, out)
                i += p.k
                continue
            j = int(u[p.column] * p.num_candidates)
            j = min(j, p.num_candidates - 1)
            out.append(j)
            if p.subspaces[j]:
                _random(p.subspaces[j], u, gen, out)
        elif isinstance(p, Float):
            out.append(_f32(p, float(_float_sample(p, u[p.column]))))
        else:
            assert isinstance(p, Int)
            v = min(p.low + int(u[p.column] * (p.high - p.low + 1)), p.high)
            out.append(v)
            if p.subspaces and p.subspaces[v - p.low]:
                _random(p.subspaces[v - p.low], u, gen, out)
        i += 1


def _dna_repr(dna: Any) -> str:
    return repr(dna) if isinstance(dna, DNA) else f"DNA({list(dna)!r})"


def _decode(
    points: Subspace, values: tuple[DNAValue, ...], pos: int, out: list[Any], dna: Any
) -> int:
    i = 0
    picks: list[int] = []
    while i < len(points):
        p = points[i]
        if pos >= len(values):
            raise ValueError(
                f"{_dna_repr(dna)} is too short for this space: no value for decision "
                f"{p.id!r} ({p.describe()}) at position {pos}"
            )
        v = values[pos]
        pos += 1
        if isinstance(p, Choice):
            if not isinstance(v, int) or not 0 <= v < p.num_candidates:
                raise ValueError(
                    f"{_dna_repr(dna)} has value {v!r} at position {pos - 1} for decision {p.id!r}, "
                    f"which needs a candidate index in [0, {p.num_candidates - 1}]"
                )
            out.append((p, v))
            if p.subspaces[v]:
                pos = _decode(p.subspaces[v], values, pos, out, dna)
            if p.k > 1:
                if p.pick == 0:
                    picks = []
                picks.append(v)
                if p.pick == p.k - 1:
                    _check_picks(p, picks, dna)
        elif isinstance(p, Float):
            if isinstance(v, bool) or not isinstance(v, int | float) or not p.low <= v <= p.high:
                raise ValueError(
                    f"{_dna_repr(dna)} has value {v!r} at position {pos - 1} for decision {p.id!r}, "
                    f"which needs a float in [{p.low}, {p.high}]"
                )
            out.append((p, float(v)))
        else:
            assert isinstance(p, Int)
            if not isinstance(v, int) or not p.low <= v <= p.high:
                raise ValueError(
                    f"{_dna_repr(dna)} has value {v!r} at position {pos - 1} for decision {p.id!r}, "
                    f"which needs an int in [{p.low}, {p.high}]"
                )
            out.append((p, v))
            if p.subspaces and p.subspaces[v - p.low]:
                pos = _decode(p.subspaces[v - p.low], values, pos, out, dna)
        i += 1
    return pos


def _check_picks(p: Choice, picks: list[int], dna: Any) -> None:
    if p.distinct and len(set(picks)) != len(picks):
        raise ValueError(
            f"{_dna_repr(dna)} picks {picks} for manyof {p.location!r}, which needs distinct picks"
        )
    if p.sorted and picks != sorted(picks):
        raise ValueError(
            f"{_dna_repr(dna)} picks {picks} for manyof {p.location!r}, which needs sorted picks"
        )


def _read(points: Subspace, idx: list[int], val: list[float], out: list[DNAValue]) -> None:
    for p in points:
        c = p.column
        if isinstance(p, Float):
            out.append(min(max(float(val[c]), p.low), p.high))
            continue
        v = int(idx[c])
        out.append(v)
        subs = p.subspaces if isinstance(p, Choice | Int) else ()
        j = v - p.low if isinstance(p, Int) else v
        if subs and 0 <= j < len(subs) and subs[j]:
            _read(subs[j], idx, val, out)


def _grid(points: Subspace) -> Iterator[list[DNAValue]]:
    if not points:
        yield []
        return
    p = points[0]
    if isinstance(p, Choice) and p.k > 1:
        group, rest = points[: p.k], points[p.k :]
        n, k = p.num_candidates, p.k
        if p.distinct:
            picks_iter: Any = (
                itertools.combinations(range(n), k)
                if p.sorted
                else itertools.permutations(range(n), k)
            )
        else:
            picks_iter = (
                itertools.combinations_with_replacement(range(n), k)
                if p.sorted
                else itertools.product(range(n), repeat=k)
            )
        for picks in picks_iter:
            heads = [
                [[j] + tail for tail in _grid(q.subspaces[j])]  # type: ignore[attr-defined]
                for q, j in zip(group, picks, strict=True)
            ]
            for combo in itertools.product(*heads):
                head = [v for part in combo for v in part]
                for tail in _grid(rest):
                    yield head + tail
        return
    rest = points[1:]
    if isinstance(p, Choice):
        options = [(j, p.subspaces[j]) for j in range(p.num_candidates)]
    else:
        assert isinstance(p, Int)
        options = [
            (v, p.subspaces[v - p.low] if p.subspaces else ()) for v in range(p.low, p.high + 1)
        ]
    for v, sub in options:
        for mid in _grid(sub):
            for tail in _grid(rest):
                yield [v] + mid + tail
