"""PyGlove programs (hyper-values in `pg.Dict`, `pg.List`, `pg.Object`) as morphax programs."""

from __future__ import annotations

import inspect
from typing import Any

from ..symbolic import Call, SymbolicFactory, floatv, manyof, oneof, symbolic
from ..symbolic import format_id as _format_id
from ._core import Key, register_default
from ._pg_base import pyglove, short


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
        >>> from morphax.interop import from_pyglove
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
    pg = pyglove()
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
        f"cannot convert the PyGlove hyper-value at {where!r}, {short(v)}: morphax has "
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
    register_default(make, f"pyglove:{cls.__module__}.{cls.__qualname__}({','.join(keys)})")
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
