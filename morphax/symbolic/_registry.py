"""The names morphax JSON may use: what is registered, and what JSON may build.

What is registered:

- By default, the public callables of `flax.linen`, `flax.linen.initializers`,
  `jax.nn`, `jax.nn.initializers`, `jax.numpy`, `optax` and `optax.schedules`,
  under `<module>.<attribute>`, except input/output: names in
  :data:`IO_NAMES` (`jax.numpy.load`, `save`, `savez`, `fromfile`, ...) and any
  callable with a parameter that names a file or path (`file`, `fname`,
  `path`, ...) are left out. The defaults are read on first use.
- `mx.symbolic(target)` registers its target under `module.qualname`.
- :func:`register` registers a user's class or function.
- morphax's own registered classes (`morphax.spaces.ConvNet`, ...) resolve on
  first use: their module, from the fixed table :data:`OWN_MODULES`, is
  imported then. No other module is ever imported for a name.

What JSON may do with a name: a function is only a reference (`"ref"`) or the
target of a recorded call (`"call"`, which builds a `Call` node, never calls
it); an `"object"` or `"namedtuple"` record may construct only a data class
(see :func:`data_class`).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, overload

from ._call import ON_SYMBOLIC

T = TypeVar("T")
_BY_NAME: dict[str, Any] = {}
_NAME_OF: dict[int, str] = {}
_AUTO: set[int] = set()  # objects named by `module.qualname`, not by the user
_CHOSEN: set[str] = set()  # names registered by register() or mx.symbolic, not by the defaults
_DEFAULTS_LOADED = False
_DEFAULT_MODULES = (
    "flax.linen",
    "flax.linen.initializers",
    "jax.nn",
    "jax.nn.initializers",
    "jax.numpy",
    "optax",
    "optax.schedules",
)
#: Input/output callables that the default modules never register.
IO_NAMES = frozenset(
    {
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "fromregex",
        "memmap",
        "open",
        "DataSource",
    }
)
_PATH_PARAMS = frozenset(
    {"file", "fname", "fid", "path", "filename", "filepath", "file_path", "dirname", "directory"}
)
#: morphax's own registered names and the module that registers each; a
#: missing `morphax.` name is resolved by importing its module from here only.
OWN_MODULES: dict[str, str] = {
    "morphax.spaces.Block": "morphax.spaces.cnn",
    "morphax.spaces.ConvNet": "morphax.spaces.cnn",
    "morphax.spaces.MLP": "morphax.spaces.cnn",
    "morphax.spaces.NB201Cell": "morphax.spaces.nasbench201_net",
    "morphax.spaces.NB201Net": "morphax.spaces.nasbench201_net",
    "morphax.spaces.NB201SearchNet": "morphax.spaces.nasbench201_search",
    "morphax.spaces.nasbench201.Cell": "morphax.spaces.nasbench201",
}


def _auto_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not module or not qualname:
        raise TypeError(f"cannot derive a registry name for {obj!r}; pass name='...'")
    return f"{module}.{qualname}"


@overload
def register(obj: T, *, name: str | None = None, _default: bool = False) -> T: ...
@overload
def register(
    obj: None = None, *, name: str | None = None, _default: bool = False
) -> Callable[[T], T]: ...
def register(obj: Any = None, *, name: str | None = None, _default: bool = False) -> Any:
    """Registers a class or function for JSON, under `name` or `module.qualname`.

    Use it as a call (`mx.register(MyBlock)`) or as a decorator, with or
    without a name. A later registration of the same name replaces the
    earlier one. A registered function is stored by reference and is never
    called by `mx.from_json`; a registered class may be rebuilt from its
    fields. Register only what a study file may name: JSON from a study file
    or a colleague is data, not code.

    Examples:
        >>> import morphax as mx
        >>> @mx.register(name="my_project.swish")
        ... def swish(x):
        ...     return x
        >>> mx.to_json({"act": swish})
        '{"act": {"$type": "ref", "name": "my_project.swish"}}'
    """
    if obj is None:
        return lambda o: register(o, name=name, _default=_default)
    if not callable(obj):
        raise TypeError(f"mx.register takes a class or function, but got {obj!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"a registry name must be a non-empty str, but got {name!r}")
    key = name or _auto_name(obj)
    known = id(obj) in _NAME_OF
    replaced = _BY_NAME.get(key)
    if replaced is not None and replaced is not obj and _NAME_OF.get(id(replaced)) == key:
        # The old object may be collected and its id reused: forget its name.
        del _NAME_OF[id(replaced)]
        _AUTO.discard(id(replaced))
    _BY_NAME[key] = obj
    # A default registration of an object the registry already names (as
    # `mx.symbolic` does when from_json decodes a call) chooses nothing.
    if not _default or not known:
        _CHOSEN.add(key)
    if not _default:
        _NAME_OF[id(obj)] = key
        _AUTO.discard(id(obj))
    elif not known:
        _NAME_OF[id(obj)] = key
        _AUTO.add(id(obj))
    return obj


def _is_io(attr: str, value: Any) -> bool:
    """Whether a default-module callable reads or writes files."""
    if attr in IO_NAMES or "memmap" in attr.lower():
        return True
    try:
        params = inspect.signature(value).parameters
    except (TypeError, ValueError):
        return False
    return any(p.lower() in _PATH_PARAMS for p in params)


def _load_defaults() -> None:
    global _DEFAULTS_LOADED
    if _DEFAULTS_LOADED:
        return
    _DEFAULTS_LOADED = True
    for modname in _DEFAULT_MODULES:
        try:
            module = importlib.import_module(modname)
        except ImportError:  # pragma: no cover - all are dependencies
            continue
        for attr, value in vars(module).items():
            if attr.startswith("_") or not callable(value) or isinstance(value, ModuleType):
                continue
            if _is_io(attr, value):
                continue
            key = f"{modname}.{attr}"
            _BY_NAME.setdefault(key, value)
            # Library names win over automatic `module.qualname` names, so the
            # name of an object does not depend on what was registered first.
            if id(value) not in _NAME_OF or id(value) in _AUTO:
                _NAME_OF[id(value)] = key
                _AUTO.discard(id(value))


def registered_name(obj: Any) -> str | None:
    """The registry name of `obj`, or None."""
    if not _DEFAULTS_LOADED and (id(obj) not in _NAME_OF or id(obj) in _AUTO):
        module = getattr(obj, "__module__", None) or ""
        if id(obj) not in _NAME_OF or module.split(".")[0] in ("flax", "jax", "jaxlib", "optax"):
            _load_defaults()  # library names win; user classes need no JAX import
    name = _NAME_OF.get(id(obj))
    # An id is only a name while the registry still holds that very object.
    return name if name is not None and _BY_NAME.get(name) is obj else None


def lookup(name: str) -> Any:
    """The registered object of `name`; ValueError naming close matches otherwise.

    A missing name of morphax's own (in :data:`OWN_MODULES`) imports its
    module first; nothing else is imported.
    """
    if name not in _BY_NAME:
        own = OWN_MODULES.get(name)
        if own is not None:
            try:
                importlib.import_module(own)
            except ImportError as e:
                raise ValueError(
                    f"cannot load morphax's own name {name!r}: importing {own} failed: {e}"
                ) from None
        else:
            _load_defaults()
    try:
        return _BY_NAME[name]
    except KeyError:
        module, _, tail = name.rpartition(".")
        if module in _DEFAULT_MODULES and tail in IO_NAMES:
            raise ValueError(
                f"unknown name {name!r}: it is not registered, and from_json imports nothing; "
                "input/output functions are never registered by default, since loading a study "
                "file or a program must not read or write files"
            ) from None
        close = sorted(n for n in _BY_NAME if n.rsplit(".", 1)[-1] == tail)[:5]
        hint = f"; registered names ending in {tail!r}: {close}" if close else ""
        raise ValueError(
            f"unknown name {name!r}: it is not registered, and from_json imports nothing; "
            f"register it with mx.register(obj, name={name!r}) before loading{hint}"
        ) from None


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


def data_class(name: str, obj: Any, record: str, where: str) -> type:
    """`obj` (registered as `name`) when a JSON `record` ("object" or
    "namedtuple") at `where` may construct it; ValueError for anything else.

    Constructible: dataclasses (Flax linen modules are), named tuples (for
    "namedtuple"), and classes the user registered or made symbolic. Never a
    function, and never a default-module class whose construction is code.
    """
    if isinstance(obj, type):
        data = dataclasses.is_dataclass(obj) if record == "object" else _is_namedtuple(obj)
        if data or name in _CHOSEN:
            return obj
        what = f"the class {obj.__module__}.{obj.__qualname__}, which is not a " + (
            "dataclass" if record == "object" else "named tuple"
        )
    else:
        what = f"a {type(obj).__name__}, not a class"
    raise ValueError(
        f"refused morphax JSON at {where}: the {record!r} record names {name!r}, {what}; "
        "JSON constructs only registered data classes (dataclasses and Flax modules, named "
        "tuples, classes made symbolic or registered with mx.register) and never calls a "
        "function (a function is stored as a 'ref', a call as a 'call' node); if you trust "
        f"this class, register it with mx.register(cls, name={name!r})"
    )


def _on_symbolic(target: Any) -> None:
    register(target, _default=True)


ON_SYMBOLIC.append(_on_symbolic)  # `mx.symbolic(target)` registers its target
