"""The package's layers, checked on the source (AST, nothing imported).

* (a) the symbolic core (`morphax/symbolic/`) imports no other morphax
  sub-package (the shared types of `morphax/_typing.py` are allowed);
* (b) no module imports a private module (`_name`) or a private name of
  another sub-package: it uses the sub-package's public names;
* (c) `morphax/spaces/` does not import the package root (`import morphax`,
  `from .. import x`) at module level: it imports `..symbolic` names;
* (d) no module is over `MAX_LINES` lines.

Known offenders are listed below, each with why; the lead shrinks these lists.
A new offender fails the test; an entry that no longer offends is reported
with a warning (remove it).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "morphax"
MAX_LINES = 500

#: Root-level private modules every layer may import (shared domain types).
SHARED = {"morphax._typing"}

#: (a) `(file, imported module)`: the symbolic core importing another sub-package.
KNOWN_CORE_IMPORTS: dict[tuple[str, str], str] = {}

#: (b) `(file, imported private module or name)`: private imports across sub-packages.
KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}

#: (c) `(file, imported name)`: module-level imports of the package root in spaces.
KNOWN_ROOT_IMPORTS: dict[tuple[str, str], str] = {}

#: (d) modules over MAX_LINES lines.
KNOWN_LONG: dict[str, str] = {}


def _modules() -> Iterator[tuple[str, str, ast.Module, int]]:
    """`(file relative to the repo, dotted module name, AST, line count)`."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        text = path.read_text(encoding="utf-8")
        yield rel, ".".join(parts), ast.parse(text, filename=rel), len(text.splitlines())


def _package_of(rel: str, module: str) -> str:
    """The package a module's relative imports start from."""
    return module if rel.endswith("__init__.py") else module.rpartition(".")[0]


def _imports(rel: str, module: str, node: ast.AST) -> Iterator[tuple[str, str | None, ast.stmt]]:
    """`(absolute module, imported name or None, statement)` for each import."""
    for stmt in ast.walk(node):
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                yield alias.name, None, stmt
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                base = _package_of(rel, module).split(".")
                base = base[: len(base) - (stmt.level - 1)]
                target = ".".join(base + ([stmt.module] if stmt.module else []))
            else:
                target = stmt.module or ""
            for alias in stmt.names:
                yield target, alias.name, stmt


def _sub_package(module: str) -> str:
    """`morphax.<sub>` of a morphax module ("" for the root's own modules)."""
    parts = module.split(".")
    if len(parts) < 2 or (len(parts) == 2 and not (PACKAGE / parts[1]).is_dir()):
        return ""
    return parts[1]


def _private_target(target: str, name: str | None) -> str | None:
    """The private part of an import of a morphax module, as a dotted name."""
    parts = target.split(".") + ([name] if name and name != "*" else [])
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: i + 1])
    return None


def _core_offenders() -> set[tuple[str, str]]:
    out = set()
    for rel, module, tree, _ in _modules():
        if not module.startswith("morphax.symbolic"):
            continue
        for target, name, _ in _imports(rel, module, tree):
            full = f"{target}.{name}" if target == "morphax" and name else target
            if not full.startswith("morphax") or full in SHARED:
                continue
            if _sub_package(full) != "symbolic":
                out.add((rel, full))
    return out


def _private_offenders() -> set[tuple[str, str]]:
    out = set()
    for rel, module, tree, _ in _modules():
        own = _sub_package(module)
        for target, name, _ in _imports(rel, module, tree):
            if target != "morphax" and not target.startswith("morphax."):
                continue
            private = _private_target(target, name)
            if private is None or private in SHARED:
                continue
            theirs = _sub_package(private)
            if theirs != own or theirs == "":  # another sub-package, or a root-private module
                out.add((rel, private))
    return out


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The import statements run at import time (not inside functions or classes)."""
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt
        elif isinstance(stmt, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(stmt, field, []))
            for handler in getattr(stmt, "handlers", []):
                yield from _module_level(handler.body)


def _root_offenders() -> set[tuple[str, str]]:
    out = set()
    for rel, module, tree, _ in _modules():
        if not module.startswith("morphax.spaces"):
            continue
        for stmt in _module_level(tree.body):
            for target, name, _ in _imports(rel, module, stmt):
                if target == "morphax":
                    out.add((rel, f"morphax.{name}" if name else "morphax"))
    return out


def _long_offenders() -> set[str]:
    return {rel for rel, _, _, n in _modules() if n > MAX_LINES}


CHECKS = {
    "core imports another sub-package": (_core_offenders, KNOWN_CORE_IMPORTS),
    "private import across sub-packages": (_private_offenders, KNOWN_PRIVATE_IMPORTS),
    "spaces imports the package root": (_root_offenders, KNOWN_ROOT_IMPORTS),
    f"module over {MAX_LINES} lines": (_long_offenders, KNOWN_LONG),
}


@pytest.mark.parametrize("rule", sorted(CHECKS))
def test_no_new_offender(rule: str) -> None:
    find, known = CHECKS[rule]
    new = sorted(find() - set(known))
    assert not new, (
        f"{rule}: {new}. Import the public name instead (the sub-package's __init__ "
        "re-exports it; shared types live in morphax/_typing.py), or split the module"
    )


@pytest.mark.parametrize("rule", sorted(CHECKS))
def test_known_offenders_that_are_fixed_are_reported(rule: str) -> None:
    # A warning, not a failure: the owner of the fixed file may not own this list.
    find, known = CHECKS[rule]
    fixed = sorted(set(known) - find())
    if fixed:
        warnings.warn(
            f"{rule}: {fixed} no longer offend; remove them from the allowlist", stacklevel=1
        )


def test_the_checks_see_offenders() -> None:
    code = (
        "import morphax as mx\n"
        "from ..tuning._trial import Trial\n"
        "from ..algorithms import _policy\n"
        "from .._typing import Reward\n"
        "from ._spec import DNASpec\n"
    )
    tree = ast.parse(code)
    got = {(t, n) for t, n, _ in _imports("morphax/symbolic/_x.py", "morphax.symbolic._x", tree)}
    assert got == {
        ("morphax", None),
        ("morphax.tuning._trial", "Trial"),
        ("morphax.algorithms", "_policy"),
        ("morphax._typing", "Reward"),
        ("morphax.symbolic._spec", "DNASpec"),
    }
    assert _private_target("morphax.algorithms", "_policy") == "morphax.algorithms._policy"
    assert _private_target("morphax.algorithms", "Algorithm") is None
    assert _sub_package("morphax.algorithms._policy") == "algorithms"
    assert _sub_package("morphax._typing") == "" and _sub_package("morphax") == ""
    lazy = ast.parse("if True:\n    import morphax\ndef f():\n    import morphax as mx\n")
    assert [type(s).__name__ for s in _module_level(lazy.body)] == ["Import"]
