"""`--space MODULE:FUNCTION` or `--space FILE.py:FUNCTION`: a user's own space.

The user names the code on the command line, so importing it is the point
(unlike a study's JSON, which is never imported from).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any

from ._choices import SPACES, CLIError


def is_user_space(spec: str) -> bool:
    """Whether `--space` names a user's function (`MODULE:FN`, `FILE.py:FN`)."""
    return spec not in SPACES and ":" in spec


def _module(where: str, spec: str) -> Any:
    if where.endswith(".py"):
        if not os.path.isfile(where):
            raise CLIError(f"--space {spec!r}: no such file {where!r}")
        name = "morphax_user_space_" + os.path.splitext(os.path.basename(where))[0]
        loader = importlib.util.spec_from_file_location(name, where)
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        loader.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as e:
        raise CLIError(f"--space {spec!r}: cannot import module {where!r} ({e})") from None


def load_user_space(spec: str, *, num_classes: int) -> Any:
    """The program of a user's space: `FN()` (given `num_classes=` if it takes it).

    The function returns a program with hyper-values (or `mx.space(...)` of one)
    whose children are Flax modules the built-in training can fit.

    Raises:
        CLIError: if the module, file or function is missing, or the function
            does not return a space.
    """
    import morphax as mx

    where, _, fn_name = spec.rpartition(":")
    if not where or not fn_name:
        raise CLIError(f"--space {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    module = _module(where, spec)
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise CLIError(f"--space {spec!r}: {where!r} has no function {fn_name!r}")
    params = inspect.signature(fn).parameters
    takes = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    result = fn(num_classes=num_classes) if takes else fn()
    if isinstance(result, mx.DynamicSpace):
        raise CLIError(
            f"--space {spec!r}: {fn_name}() returned a define-by-run space (mx.trace); the "
            "command line takes a program with hyper-values (or mx.space(...) of one)"
        )
    program = result.program if isinstance(result, mx.Space) else result
    try:
        mx.space(program)
    except (TypeError, ValueError) as e:
        raise CLIError(f"--space {spec!r}: {fn_name}() did not return a space: {e}") from None
    return program
