"""Optimizer hyperparameters as values of the jitted step, not constants.

A symbolic optimizer such as `mx.symbolic(optax.adam)(learning_rate=1e-3)`
is split into a template (the program with each float argument replaced by
a slot) and the floats. The template keys the compile cache; the floats are
an array argument of the compiled step, so children that differ only in
their learning rate, weight decay, momentum or schedule constants share one
executable. Ints, bools and strings stay in the template (they may change
shapes or Python control flow). An optimizer whose code needs a float as a
Python value (`if decay_rate == 0: ...`) is compiled with its floats as
constants, as a plain optax object always is.
"""

from __future__ import annotations

import collections
import typing
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import Call, build
from ._steps import _Key


class _Slot:
    """Where float number `index` of an optimizer program goes."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Slot) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("slot", self.index))

    def __repr__(self) -> str:
        return f"<hyperparameter {self.index}>"


def _is_float(v: Any) -> bool:
    return type(v) is float or isinstance(v, np.floating)


def _map(node: Any, fn: Callable[[Any], Any]) -> Any:
    """`node` with `fn` applied to each leaf under symbolic calls, lists,
    tuples and dicts (what optimizer programs are made of)."""
    if isinstance(node, Call):
        return Call(node.factory, {k: _map(v, fn) for k, v in node.args.items()})
    if type(node) in (list, tuple):
        return type(node)(_map(v, fn) for v in node)
    if type(node) is dict:
        return {k: _map(v, fn) for k, v in node.items()}
    return fn(node)


def split_floats(program: Any) -> tuple[Any, tuple[float, ...]]:
    """(template with slots, the floats in preorder)."""
    values: list[float] = []

    def slot(leaf: Any) -> Any:
        if not _is_float(leaf):
            return leaf
        values.append(float(leaf))
        return _Slot(len(values) - 1)

    return _map(program, slot), tuple(values)


def fill(template: Any, values: Any) -> Any:
    """The template with slot `i` replaced by `values[i]` (floats or tracers)."""
    return _map(template, lambda v: values[v.index] if isinstance(v, _Slot) else v)


@dataclass(frozen=True)
class Optimizer:
    """An optimizer ready for the steps.

    Attributes:
        key: what the compiled steps depend on (the template, for an
            optimizer whose floats are step arguments).
        values: the floats passed to the steps (float32, maybe empty).
        make: `values -> GradientTransformation`, called inside the steps.
    """

    key: Hashable
    values: np.ndarray
    make: Callable[[Any], optax.GradientTransformation]


_TRACEABLE: collections.OrderedDict[Hashable, bool] = collections.OrderedDict()


def _traceable(key: Hashable, make: Callable[[Any], Any], n: int) -> bool:
    """Whether the optimizer builds, inits and updates with traced floats."""
    hit = _TRACEABLE.get(key)
    if hit is not None:
        return hit

    def probe(hp: jax.Array) -> Any:
        tx = make(hp)
        params = {"w": jnp.zeros(3)}
        state = tx.init(params)
        return tx.update(params, state, params)

    try:
        jax.eval_shape(probe, jax.ShapeDtypeStruct((n,), jnp.float32))
        ok = True
    except Exception:  # a float used as a Python value: keep it a constant
        ok = False
    _TRACEABLE[key] = ok
    while len(_TRACEABLE) > 256:
        _TRACEABLE.popitem(last=False)
    return ok


def _checked(optimizer: Call) -> optax.GradientTransformation:
    tx = build(optimizer)
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(
            f"the optimizer program must build an optax GradientTransformation, "
            f"but {optimizer!r} built {tx!r}"
        )
    return tx


def prepare(optimizer: Any, *, as_values: bool = True) -> Optimizer:
    """The optimizer of `fit`: a symbolic program's floats become step values
    (unless `as_values` is False or its code needs them as constants)."""
    none = np.zeros((0,), np.float32)
    if isinstance(optimizer, Call):
        tx = _checked(optimizer)
        template, values = split_floats(optimizer)
        if as_values and values:
            key = _Key(template)

            def make(hp: Any) -> optax.GradientTransformation:
                return typing.cast(
                    optax.GradientTransformation,
                    build(fill(template, [hp[i] for i in range(len(values))])),
                )

            if _traceable(key, make, len(values)):
                return Optimizer(("values", key), np.asarray(values, np.float32), make)
        return Optimizer(_Key(optimizer), none, lambda hp: tx)
    if isinstance(optimizer, optax.GradientTransformation):
        return Optimizer(("object", optimizer), none, lambda hp: optimizer)
    raise TypeError(
        "the optimizer must be an optax GradientTransformation or a symbolic program that "
        f"builds one (e.g. mx.symbolic(optax.adam)(learning_rate=1e-3)), but got {optimizer!r}"
    )
