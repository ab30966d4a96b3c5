"""Key paths: the location of a node in a program, written `a.b[2].c`."""

from __future__ import annotations

import re
from typing import Any

Key = Any  # a str (name, dict key) or an int (index)
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z_0-9]*)|\[(-?\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def format_key(key: Key, first: bool) -> str:
    """Formats one key: `.name` for identifiers, `[i]` for ints, `['k']` otherwise."""
    if isinstance(key, str) and key.isidentifier():
        return key if first else "." + key
    if isinstance(key, int) and not isinstance(key, bool):
        return f"[{key}]"
    return "[" + repr(key) + "]"


def format_path(keys: tuple[Key, ...]) -> str:
    """Formats a tuple of keys as a path string; the root is the empty string.

    Examples:
        >>> format_path(("layers", 2, "features"))
        'layers[2].features'
    """
    return "".join(format_key(k, i == 0) for i, k in enumerate(keys))


def parse_path(path: str) -> tuple[Key, ...]:
    """Parses `a.b[2].c` or `d['x y']` into a tuple of keys.

    Raises:
        ValueError: if `path` is not a well-formed path.

    Examples:
        >>> parse_path("layers[2].features")
        ('layers', 2, 'features')
    """
    if not isinstance(path, str):
        raise TypeError(f"a path must be a str like 'a.b[2].c', but got {path!r}")
    keys: list[Key] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or (pos == 0 and path.startswith(".")):
            raise ValueError(
                f"malformed path {path!r} at character {pos}: use names separated by '.', "
                "list indices as [i] and other dict keys as ['key']"
            )
        name, index, quoted = m.groups()
        if name is not None:
            keys.append(name)
        elif index is not None:
            keys.append(int(index))
        else:
            keys.append(quoted.replace("\\'", "'"))
        pos = m.end()
    return tuple(keys)
