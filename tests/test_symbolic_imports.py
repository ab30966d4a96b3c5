"""The symbolic core's modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SYMBOLIC = Path(__file__).resolve().parent.parent / "morphax" / "symbolic"


def _imports(path: Path) -> set[str]:
    """The sibling modules `path` imports at run time (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in typing_only and node.level == 1:
            out.add(node.module or "__init__")
    return out


def test_no_import_cycle_inside_symbolic() -> None:
    graph = {p.stem: _imports(p) - {"__init__"} for p in SYMBOLIC.glob("*.py")}
    assert "_tree" in graph and "_nodes" in graph
    state: dict[str, int] = {}

    def visit(mod: str, stack: list[str]) -> None:
        if state.get(mod) == 2:
            return
        assert state.get(mod) != 1, f"import cycle: {' -> '.join([*stack, mod])}"
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            visit(dep, [*stack, mod])
        state[mod] = 2

    for mod in sorted(graph):
        visit(mod, [])


def test_symbolic_imports_no_other_morphax_package() -> None:
    for path in SYMBOLIC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                # The shared domain types are the one module above the core it may use.
                assert node.level == 2 and node.module == "_typing", (path.name, node.module)
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                mods = names + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not any(m and m.startswith("morphax") for m in mods), path.name
