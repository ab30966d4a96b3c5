"""Hyper-values: `oneof`, `manyof`, `floatv` and `intv`.

A hyper-value marks a choice in a program. In space mode (no resolver in
force) the functions return a hyper-value object that sits in the program and
makes it a search space. Called while a resolver is in force (tracing a
define-by-run space, or running a child), they return the resolver's value.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ._context import current_resolver

SCALES = ("linear", "log")


def _call_site(depth: int) -> str:
    """`qualname:line` of the user code that created a hyper-value."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_qualname}:{frame.f_lineno}"


def _check_name(name: Any, site: str) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"`name` must be a non-empty str or None, but got {name!r} (at {site})")


def _real(value: Any, what: str, site: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{what}` must be a real number, but got {value!r} (at {site})")
    if not math.isfinite(value):
        raise ValueError(f"`{what}` must be finite, but got {value!r} (at {site})")
    return value  # type: ignore[return-value]


class HyperValue:
    """Base class of hyper-values: a decision to be made in a program.

    Attributes:
        name: the user-given decision name, or None. Places with one name share
            one decision.
        site: where the hyper-value was created (`qualname:line`).
    """

    __slots__ = ("name", "site")
    kind = "hyper"
    name: str | None
    site: str

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        from ._tree import sym_eq

        return sym_eq(self, other)

    def __hash__(self) -> int:
        from ._tree import sym_hash

        return sym_hash(self)

    def __repr__(self) -> str:
        from ._tree import format_program

        return format_program(self)


class OneOf(HyperValue):
    """Picks one of `candidates`. Created by :func:`oneof`."""

    __slots__ = ("candidates",)
    kind = "oneof"

    def __init__(self, candidates: list[Any], name: str | None, site: str) -> None:
        self.candidates = candidates
        self.name = name
        self.site = site

    def _fields(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "name": self.name}


class ManyOf(HyperValue):
    """Picks `k` of `candidates`. Created by :func:`manyof`."""

    __slots__ = ("k", "candidates", "distinct", "sorted")
    kind = "manyof"

    def __init__(
        self,
        k: int,
        candidates: list[Any],
        distinct: bool,
        sorted: bool,
        name: str | None,
        site: str,
    ) -> None:
        self.k = k
        self.candidates = candidates
        self.distinct = distinct
        self.sorted = sorted
        self.name = name
        self.site = site

    def _fields(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "candidates": self.candidates,
            "distinct": self.distinct,
            "sorted": self.sorted,
            "name": self.name,
        }


class FloatV(HyperValue):
    """A float in `[low, high]`. Created by :func:`floatv`."""

    __slots__ = ("low", "high", "scale")
    kind = "floatv"

    def __init__(self, low: float, high: float, scale: str, name: str | None, site: str) -> None:
        self.low = low
        self.high = high
        self.scale = scale
        self.name = name
        self.site = site

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "scale": self.scale, "name": self.name}


class IntV(HyperValue):
    """An int in `[low, high]` (both included). Created by :func:`intv`."""

    __slots__ = ("low", "high")
    kind = "intv"

    def __init__(self, low: int, high: int, name: str | None, site: str) -> None:
        self.low = low
        self.high = high
        self.name = name
        self.site = site

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "name": self.name}


def _resolve(hyper: HyperValue) -> Any:
    resolver = current_resolver()
    return hyper if resolver is None else resolver.resolve(hyper)


def _candidate_list(candidates: Any, fn: str, site: str) -> list[Any]:
    if isinstance(candidates, str | bytes | dict) or not isinstance(candidates, Iterable):
        raise TypeError(
            f"`{fn}` takes a list of candidates, but got {candidates!r} (at {site}); "
            f"write {fn}([a, b, c])"
        )
    cands = list(candidates)
    if not cands:
        raise ValueError(f"`{fn}` needs at least one candidate, but got an empty list (at {site})")
    return cands


def oneof(candidates: Sequence[Any], *, name: str | None = None) -> Any:
    """Marks a choice of one of `candidates`.

    Candidates may be plain values, symbolic objects, Flax modules, functions,
    or sub-spaces with hyper-values of their own (conditional decisions).

    Args:
        candidates: a non-empty list of candidates.
        name: a decision name; places that use one name share one decision.

    Returns:
        A :class:`OneOf` in space mode; the chosen candidate when a resolver is
        in force (define-by-run).

    Raises:
        ValueError: if `candidates` is empty.

    Examples:
        >>> import morphax as mx
        >>> space = {"act": mx.oneof(["relu", "gelu"]), "width": mx.oneof([16, 32])}
        >>> mx.dna_spec(space).space_size
        4
    """
    site = _call_site(2)
    _check_name(name, site)
    return _resolve(OneOf(_candidate_list(candidates, "oneof", site), name, site))


def manyof(
    k: int,
    candidates: Sequence[Any],
    *,
    distinct: bool = True,
    sorted: bool = False,
    name: str | None = None,
) -> Any:
    """Marks a choice of `k` of `candidates`; it materializes to a list.

    Args:
        k: how many to pick (at least 1).
        candidates: a non-empty list of candidates.
        distinct: whether one candidate may be picked at most once.
        sorted: whether the picks come in candidate order (a set rather than a
            sequence: `[a, b]` and `[b, a]` are then one choice).
        name: a decision name; places that use one name share one decision.

    Raises:
        ValueError: if `k < 1`, or `distinct` and `k` exceeds the candidates.

    Examples:
        >>> import morphax as mx
        >>> mx.dna_spec(mx.manyof(2, ["a", "b", "c"], sorted=True)).space_size
        3
        >>> mx.dna_spec(mx.manyof(2, ["a", "b", "c"])).space_size
        6
    """
    site = _call_site(2)
    _check_name(name, site)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"`manyof` needs an int `k`, but got k={k!r} (at {site})")
    cands = _candidate_list(candidates, "manyof", site)
    if k < 1:
        raise ValueError(f"`manyof` needs k >= 1, but got k={k} (at {site})")
    if distinct and k > len(cands):
        raise ValueError(
            f"`manyof` with distinct=True needs k <= len(candidates), but got k={k} "
            f"with {len(cands)} candidates {cands!r} (at {site}); pass distinct=False "
            "to allow repeats"
        )
    return _resolve(ManyOf(k, cands, bool(distinct), bool(sorted), name, site))


def floatv(low: float, high: float, *, scale: str = "linear", name: str | None = None) -> Any:
    """Marks a float choice in `[low, high]`.

    Args:
        low: the lower bound.
        high: the upper bound; `low < high` must hold.
        scale: "linear", or "log" (sampled uniformly in log space; `low > 0`).
        name: a decision name; places that use one name share one decision.

    Raises:
        ValueError: if `low >= high`, the scale is unknown, or `low <= 0` on a
            log scale.

    Examples:
        >>> import morphax as mx
        >>> lr = mx.floatv(1e-4, 1e-1, scale="log")
        >>> mx.dna_spec(lr).space_size
        inf
    """
    site = _call_site(2)
    _check_name(name, site)
    lo, hi = _real(low, "low", site), _real(high, "high", site)
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
            f"`floatv` with scale='log' needs low > 0, but got low={low!r}, high={high!r} (at {site})"
        )
    return _resolve(FloatV(float(lo), float(hi), scale, name, site))


def intv(low: int, high: int, *, name: str | None = None) -> Any:
    """Marks an int choice in `[low, high]`, both ends included.

    Raises:
        ValueError: if `low > high`.

    Examples:
        >>> import morphax as mx
        >>> mx.dna_spec([mx.intv(1, 4), mx.intv(0, 1)]).space_size
        8
    """
    site = _call_site(2)
    _check_name(name, site)
    for what, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`intv` needs int bounds, but got {what}={v!r} (at {site})")
    if low > high:
        raise ValueError(
            f"`intv` needs low <= high, but got low={low!r}, high={high!r} (at {site})"
        )
    return _resolve(IntV(int(low), int(high), name, site))
