"""No two modules of a package import each other, directly or through others.

The import graph is read from the source with `ast`: every `import` and `from ... import`
counts, at the top of a module or inside a function (a lazy import is still a dependency),
except those under `if TYPE_CHECKING:` (never run). A cycle shows as the modules around it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# entries/lib/axq_mlperf joins this list once its backends <-> remote circle is gone (issue 21, §3).
PACKAGES = [ROOT / "axq"]


def module_names(package: Path) -> dict[str, Path]:
    """Return the dotted name of every module of a package (`axq.cli`), the package itself included."""
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Return the dotted names a module imports (relative imports made absolute), outside TYPE_CHECKING."""
    found: set[str] = set()
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Return the module a `from X import ...` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join([*parts[:keep], *([node.module] if node.module else [])])


def import_graph(package: Path) -> dict[str, set[str]]:
    """Return, for each module of the package, the package's modules it imports."""
    modules = module_names(package)
    graph = {}
    for name, path in modules.items():
        names = imported(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py")
        graph[name] = {n for n in names if n in modules and n != name and not name.startswith(n + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the import cycles: each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_cycles(package: Path) -> None:
    graph = import_graph(package)
    assert len(graph) > 5  # the package was found and read
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle_through_a_third_module() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_reads_lazy_and_relative_imports_but_not_type_checking_ones() -> None:
    source = ("from . import sibling\nfrom .other import x\nif TYPE_CHECKING:\n    import pkg.typing_only\n"
              "def f():\n    import pkg.lazy\n")
    found = imported(ast.parse(source), "pkg.mod", False)
    assert {"pkg", "pkg.sibling", "pkg.other", "pkg.lazy"} <= found
    assert "pkg.typing_only" not in found
