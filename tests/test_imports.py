"""No two modules of a package import each other, directly or through others.

`import_cycles(package_dir)` reads every module of a package with `ast` (nothing is
imported), collects the imports of each, at the top and inside functions alike (a lazy
import is an import), and returns the cycles of that graph. Imports under
`if TYPE_CHECKING:` count too unless `type_checking=False`. `from package import name`
is an edge to the submodule `package.name` where there is one, else to the package's
`__init__`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def module_names(package_dir: Path) -> dict[str, Path]:
    """Return the dotted name of every module under a package directory (its __init__ as the package)."""
    root = package_dir.parent
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_names(tree: ast.Module, module: str, is_package: bool, type_checking: bool) -> set[str]:
    """Return the dotted names a module's code imports (`a.b.c` for `from a.b import c`: c may be a name in a.b)."""
    found: set[str] = set()
    skipped = set() if type_checking else {id(node) for node in _type_checking_blocks(tree)}

    def visit(node: ast.AST) -> None:
        if id(node) in skipped:
            for child in node.orelse if isinstance(node, ast.If) else ():
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # the submodule, else base
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _type_checking_blocks(tree: ast.Module) -> list[ast.If]:
    """Return the `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) statements of a module."""
    def is_flag(test: ast.expr) -> bool:
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")

    return [node for node in ast.walk(tree) if isinstance(node, ast.If) and is_flag(node.test)]


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Return the absolute module name of a `from ... import` (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[:len(anchor) - node.level + 1]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def import_graph(package_dir: Path, type_checking: bool = True) -> dict[str, set[str]]:
    """Return, for each module of the package, the modules of the same package it imports."""
    modules = module_names(package_dir)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        wanted = imported_names(tree, name, path.name == "__init__.py", type_checking)
        graph[name] = {_target(candidate, modules) for candidate in wanted if _target(candidate, modules)} - {name}
    return graph


def _target(name: str, modules: dict[str, Path]) -> str:
    """Return the module of the package an imported name loads: the longest known prefix ('' if none)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in modules:
            return prefix
    return ""


def import_cycles(package_dir: Path, type_checking: bool = True) -> list[list[str]]:
    """Return the import cycles of a package, each as a path `a -> b -> ... -> a` (none: [])."""
    graph = import_graph(package_dir, type_checking)
    return [_cycle_in(component, graph) for component in _components(graph) if len(component) > 1]


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Return the strongly connected components of a graph (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
            elif step not in index:
                index[step] = low[step] = len(index)
                stack.append(step)
                on_stack.add(step)
                work.append((step, iter(sorted(graph[step]))))
            elif step in on_stack:
                low[node] = min(low[node], index[step])
    return components


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """Return one cycle through the first module of a strongly connected component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first within the component: the shortest way back to start
        node = frontier.pop(0)
        for step in sorted(graph[node] & component):
            if step == start:
                return [*paths[node], start]
            if step not in paths:
                paths[step] = [*paths[node], step]
                frontier.append(step)
    raise AssertionError(f"{sorted(component)} is not strongly connected")


@pytest.mark.parametrize("package", ["axq", "entries/lib/axq_mlperf"])
def test_no_import_cycle(package: str) -> None:
    graph = import_graph(REPO / package)
    assert len(graph) > 5  # the package was found and read
    cycles = import_cycles(REPO / package)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_axq_mlperf_modules_import_each_other() -> None:  # the graph is read: the test above can fail
    graph = import_graph(REPO / "entries" / "lib" / "axq_mlperf")
    assert "axq_mlperf.logs" in graph["axq_mlperf.results"]  # `from axq_mlperf import logs`
    assert "axq_mlperf.scenarios" in graph["axq_mlperf.results"]  # `from axq_mlperf.scenarios import ...`
    assert "axq_mlperf.remote" in graph["axq_mlperf.backends"]  # an import inside a function


@pytest.mark.parametrize("type_checking", [True, False])
def test_a_cycle_is_found_through_lazy_and_relative_imports(tmp_path: Path, type_checking: bool) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg import a  # the package's own import of a submodule\n")
    (package / "a.py").write_text("import os\nfrom pkg.b import thing\n")
    (package / "b.py").write_text("def later():\n    from . import c\n")
    (package / "c.py").write_text("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import pkg.a\n"
                                  "else:\n    import json\n")
    (package / "d.py").write_text("from .a import thing\n")
    expected = [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]] if type_checking else []
    assert import_cycles(package, type_checking) == expected
    assert import_graph(package, type_checking)["pkg.d"] == {"pkg.a"}
