"""Hyper-values: `oneof`, `manyof`, `floatv` and `intv`.

A hyper-value marks a choice in a program. In space mode (no resolver in
force) the functions return a hyper-value object that sits in the program and
makes it a search space. Called while a resolver is in force (tracing a
define-by-run space, running a child, a supernet), they return the
resolver's value.

Hyper-values are immutable and check their rules in their constructors, so
every path that makes one (the factories, `rebind`, JSON, pyglove) keeps
them; `rebind` of a field rebuilds the hyper-value through its constructor.
"""

from __future__ import annotations

import collections.abc
import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from ._context import current_resolver, decide
from ._format import format_program
from ._ids import call_id
from ._nodes import NodeType, register_node
from ._tree import sym_eq, sym_hash

SCALES = ("linear", "log")


def _call_site(depth: int) -> str:
    """`qualname:line` of the user code that created a hyper-value."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_qualname}:{frame.f_lineno}"


def _real(value: Any, what: str, fn: str, site: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{what}` must be a real number, but got {value!r} (at {site})")
    if not math.isfinite(value):
        raise ValueError(f"`{what}` must be finite, but got {value!r} (at {site})")
    return float(value)


class HyperValue:
    """Base class of hyper-values: a decision to be made in a program.

    Attributes:
        name: the user-given decision name, or None. Places with one name share
            one decision.
        site: where the hyper-value was created (`qualname:line`), for messages.
    """

    __slots__ = ("name", "site")
    kind: ClassVar[str] = "hyper"
    name: str | None
    site: str

    def __init__(self, *args: Any, site: str | None = None, **kwargs: Any) -> None:
        raise TypeError("HyperValue is abstract: use OneOf, ManyOf, FloatV or IntV")

    def _init(self, name: Any, site: str | None) -> str:
        site = site if site is not None else _call_site(3)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"`name` must be a non-empty str or None, but got {name!r} (at {site})")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "site", site)
        return site

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def replace(self, **changes: Any) -> HyperValue:
        """A copy with some fields changed, its rules checked again."""
        return type(self)(**{**self._fields(), **changes}, site=self.site)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"{self.kind} is immutable; use mx.rebind on the program or .replace({name}=...)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_remake, (type(self), self._fields(), self.site))

    def __eq__(self, other: object) -> bool:
        return sym_eq(self, other)

    def __hash__(self) -> int:
        return sym_hash(self)

    def __repr__(self) -> str:
        return format_program(self)


def _remake(cls: type[HyperValue], fields: dict[str, Any], site: str) -> HyperValue:
    return cls(**fields, site=site)


def _candidate_list(candidates: Any, fn: str, site: str) -> list[Any]:
    if isinstance(candidates, collections.abc.Set | collections.abc.KeysView):
        raise TypeError(
            f"`{fn}` needs candidates in a fixed order, but got a set {candidates!r} (at {site}), "
            "whose order may change from run to run and with it the meaning of a DNA; "
            "pass a list, e.g. sorted(...)"
        )
    if isinstance(candidates, str | bytes | dict) or not isinstance(candidates, Iterable):
        raise TypeError(
            f"`{fn}` takes a list of candidates, but got {candidates!r} (at {site}); "
            f"write {fn}([a, b, c])"
        )
    cands = list(candidates)
    if not cands:
        raise ValueError(f"`{fn}` needs at least one candidate, but got an empty list (at {site})")
    return cands


class OneOf(HyperValue):
    """Picks one of `candidates`. Created by :func:`oneof`."""

    __slots__ = ("candidates",)
    kind = "oneof"
    candidates: list[Any]

    def __init__(
        self, candidates: Sequence[Any], *, name: str | None = None, site: str | None = None
    ) -> None:
        site = self._init(name, site)
        object.__setattr__(self, "candidates", _candidate_list(candidates, "oneof", site))

    def _fields(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "name": self.name}


class ManyOf(HyperValue):
    """Picks `k` of `candidates`. Created by :func:`manyof`."""

    __slots__ = ("k", "candidates", "distinct", "sorted", "fixed")
    kind = "manyof"
    k: int
    candidates: list[Any]
    distinct: bool
    sorted: bool
    fixed: list[Any] | None

    def __init__(
        self,
        k: int,
        candidates: Sequence[Any],
        *,
        distinct: bool = True,
        sorted: bool = False,
        name: str | None = None,
        fixed: Sequence[Any] | None = None,
        site: str | None = None,
    ) -> None:
        site = self._init(name, site)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"`manyof` needs an int `k`, but got k={k!r} (at {site})")
        cands = _candidate_list(candidates, "manyof", site)
        if k < 1:
            raise ValueError(f"`manyof` needs k >= 1, but got k={k} (at {site})")
        for what, flag in (("distinct", distinct), ("sorted", sorted)):
            if not isinstance(flag, bool):
                raise TypeError(f"`manyof` needs a bool `{what}`, but got {flag!r} (at {site})")
        if distinct and k > len(cands):
            raise ValueError(
                f"`manyof` with distinct=True needs k <= len(candidates), but got k={k} "
                f"with {len(cands)} candidates {cands!r} (at {site}); pass distinct=False "
                "to allow repeats"
            )
        if fixed is not None:
            if isinstance(fixed, str | bytes) or not isinstance(fixed, Sequence):
                raise TypeError(
                    f"`manyof` fixed= takes a list of {k} candidates, but got {fixed!r}"
                )
            fixed = list(fixed)
            if len(fixed) != k or not all(any(f is c or _same(f, c) for c in cands) for f in fixed):
                raise ValueError(
                    f"`manyof` fixed= must be {k} of the candidates {cands!r}, but got "
                    f"fixed={fixed!r} (at {site})"
                )
        for attr, v in (("k", int(k)), ("candidates", cands), ("distinct", distinct)):
            object.__setattr__(self, attr, v)
        object.__setattr__(self, "sorted", sorted)
        object.__setattr__(self, "fixed", fixed)

    def _fields(self) -> dict[str, Any]:
        out = {
            "k": self.k,
            "candidates": self.candidates,
            "distinct": self.distinct,
            "sorted": self.sorted,
            "name": self.name,
        }
        return _with_fixed(out, self.fixed)


class FloatV(HyperValue):
    """A float in `[low, high]`. Created by :func:`floatv`."""

    __slots__ = ("low", "high", "scale", "fixed")
    kind = "floatv"
    low: float
    high: float
    scale: str
    fixed: float | None

    def __init__(
        self,
        low: float,
        high: float,
        *,
        scale: str = "linear",
        name: str | None = None,
        fixed: float | None = None,
        site: str | None = None,
    ) -> None:
        site = self._init(name, site)
        lo, hi = _real(low, "low", "floatv", site), _real(high, "high", "floatv", site)
        if not lo < hi:
            raise ValueError(
                f"`floatv` needs low < high, but got low={low!r}, high={high!r} (at {site})"
            )
        if scale not in SCALES:
            raise ValueError(
                f"`floatv` scale must be one of {SCALES}, but got scale={scale!r} (at {site})"
            )
        if scale == "log" and lo <= 0:
            raise ValueError(
                f"`floatv` with scale='log' needs low > 0, but got low={low!r}, high={high!r} "
                f"(at {site})"
            )
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "scale", scale)
        if fixed is not None:
            fixed = _real(fixed, "fixed", "floatv", site)
            if not lo <= fixed <= hi:
                raise ValueError(
                    f"`floatv` fixed= must lie in [low, high] = [{lo}, {hi}], but got "
                    f"fixed={fixed!r} (at {site})"
                )
        object.__setattr__(self, "fixed", fixed)

    def _fields(self) -> dict[str, Any]:
        out = {"low": self.low, "high": self.high, "scale": self.scale, "name": self.name}
        return _with_fixed(out, self.fixed)


class IntV(HyperValue):
    """An int in `[low, high]` (both included). Created by :func:`intv`."""

    __slots__ = ("low", "high", "fixed")
    kind = "intv"
    low: int
    high: int
    fixed: int | None

    def __init__(
        self,
        low: int,
        high: int,
        *,
        name: str | None = None,
        fixed: int | None = None,
        site: str | None = None,
    ) -> None:
        site = self._init(name, site)
        for what, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"`intv` needs int bounds, but got {what}={v!r} (at {site})")
        if low > high:
            raise ValueError(
                f"`intv` needs low <= high, but got low={low!r}, high={high!r} (at {site})"
            )
        object.__setattr__(self, "low", int(low))
        object.__setattr__(self, "high", int(high))
        if fixed is not None and (
            isinstance(fixed, bool)
            or not isinstance(fixed, numbers.Integral)
            or not low <= fixed <= high
        ):
            raise ValueError(
                f"`intv` fixed= must be an int in [low, high] = [{low}, {high}], but got "
                f"fixed={fixed!r} (at {site})"
            )
        object.__setattr__(self, "fixed", None if fixed is None else int(fixed))

    def _fields(self) -> dict[str, Any]:
        return _with_fixed({"low": self.low, "high": self.high, "name": self.name}, self.fixed)


def _with_fixed(fields: dict[str, Any], fixed: Any) -> dict[str, Any]:
    """`fields` plus `fixed` when it is set (an unpinned hyper-value has no such field)."""
    if fixed is not None:
        fields["fixed"] = fixed
    return fields


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and other values without a plain ==
        return False


def _parts(node: HyperValue, fmt: Any) -> tuple[str, str, list[str]]:
    fields = {k: v for k, v in node._fields().items() if v is not None}
    if isinstance(node, ManyOf):
        fields = {
            k: v for k, v in fields.items() if (k, v) not in (("distinct", True), ("sorted", False))
        }
    if isinstance(node, FloatV) and fields.get("scale") == "linear":
        del fields["scale"]
    items = [
        fmt(v) if k in ("candidates", "k", "low", "high") else f"{k}={v!r}"
        for k, v in fields.items()
    ]
    return node.kind + "(", ")", items


def _unflatten(node: HyperValue, values: dict[Any, Any]) -> HyperValue:
    return type(node)(**values, site=node.site)


HYPER = NodeType(
    "hyper",
    flatten=lambda h: list(h._fields().items()),
    unflatten=_unflatten,
    get=lambda h, k: h._fields()[k],
    placeholder=True,
    parts=_parts,
)
register_node(HyperValue, HYPER)


def _decided(hyper: HyperValue) -> Any:
    """`hyper` in space mode; else the resolver's value for it."""
    if current_resolver() is None:
        return hyper
    pid = hyper.name or call_id(hyper.kind, hyper.site.rsplit(":", 1)[0])
    return decide(hyper, pid)


def oneof(candidates: Sequence[Any], *, name: str | None = None) -> Any:
    """Marks a choice of one of `candidates`.

    Candidates may be plain values, symbolic objects, Flax modules, functions,
    or sub-spaces with hyper-values of their own (conditional decisions).

    Args:
        candidates: a non-empty list (or other ordered sequence) of candidates;
            sets are refused, their order is not fixed.
        name: a decision name; places that use one name share one decision.

    Returns:
        A :class:`OneOf` in space mode; the chosen candidate when a resolver is
        in force (define-by-run).

    Raises:
        ValueError: if `candidates` is empty.
        TypeError: if `candidates` is a set or not a sequence.

    Examples:
        >>> import morphax as mx
        >>> space = {"act": mx.oneof(["relu", "gelu"]), "width": mx.oneof([16, 32])}
        >>> mx.dna_spec(space).space_size
        4
    """
    return _decided(OneOf(candidates, name=name, site=_call_site(2)))


def manyof(
    k: int,
    candidates: Sequence[Any],
    *,
    distinct: bool = True,
    sorted: bool = False,
    name: str | None = None,
    fixed: Sequence[Any] | None = None,
) -> Any:
    """Marks a choice of `k` of `candidates`; it materializes to a list.

    Args:
        k: how many to pick (at least 1).
        candidates: a non-empty list of candidates.
        distinct: whether one candidate may be picked at most once.
        sorted: whether the picks come in candidate order (a set rather than a
            sequence: `[a, b]` and `[b, a]` are then one choice).
        name: a decision name; places that use one name share one decision.
        fixed: `k` of the candidates that a supernet (:mod:`morphax.oneshot`)
            uses for this decision, which it cannot mix; search and children
            are unchanged.

    Raises:
        ValueError: if `k < 1`, or `distinct` and `k` exceeds the candidates.

    Examples:
        >>> import morphax as mx
        >>> mx.dna_spec(mx.manyof(2, ["a", "b", "c"], sorted=True)).space_size
        3
        >>> mx.dna_spec(mx.manyof(2, ["a", "b", "c"])).space_size
        6
    """
    hyper = ManyOf(
        k,
        candidates,
        distinct=bool(distinct),
        sorted=bool(sorted),
        name=name,
        fixed=fixed,
        site=_call_site(2),
    )
    return _decided(hyper)


def floatv(
    low: float,
    high: float,
    *,
    scale: str = "linear",
    name: str | None = None,
    fixed: float | None = None,
) -> Any:
    """Marks a float choice in `[low, high]`.

    Args:
        low: the lower bound.
        high: the upper bound; `low < high` must hold.
        scale: "linear", or "log" (sampled uniformly in log space; `low > 0`).
        name: a decision name; places that use one name share one decision.
        fixed: the value a supernet (:mod:`morphax.oneshot`) uses, which
            cannot mix a float; search and children are unchanged.

    Raises:
        ValueError: if `low >= high`, the scale is unknown, or `low <= 0` on a
            log scale.

    Examples:
        >>> import morphax as mx
        >>> lr = mx.floatv(1e-4, 1e-1, scale="log")
        >>> mx.dna_spec(lr).space_size
        inf
    """
    return _decided(FloatV(low, high, scale=scale, name=name, fixed=fixed, site=_call_site(2)))


def intv(low: int, high: int, *, name: str | None = None, fixed: int | None = None) -> Any:
    """Marks an int choice in `[low, high]`, both ends included.

    `fixed` is the value a supernet (:mod:`morphax.oneshot`) uses, which
    cannot mix an int range; search and children are unchanged.

    Raises:
        ValueError: if `low > high`.

    Examples:
        >>> import morphax as mx
        >>> mx.dna_spec([mx.intv(1, 4), mx.intv(0, 1)]).space_size
        8
    """
    return _decided(IntV(low, high, name=name, fixed=fixed, site=_call_site(2)))
