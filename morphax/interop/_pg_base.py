"""What all the PyGlove converters share: the lazy import and error text."""

from __future__ import annotations

from typing import Any

#: The key, in a PyGlove decision point's `hints`, of the morphax facts it carries.
META = "__morphax__"


def pyglove() -> Any:
    """The `pyglove` module, imported on first use (importing morphax does not)."""
    try:
        import pyglove
    except ImportError as e:  # pragma: no cover - pyglove is a test dependency
        raise ImportError(
            "morphax's PyGlove interoperability needs the `pyglove` package: pip install pyglove"
        ) from e
    return pyglove


def short(obj: Any) -> str:
    """`repr(obj)`, cut to a line, and its type, for error messages."""
    text = repr(obj)
    text = text if len(text) < 160 else text[:157] + "..."
    return f"{text} ({type(obj).__name__})"
