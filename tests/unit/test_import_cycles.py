"""No import cycles among the project's modules (``sweeper``, ``trainables``, ``dashboards``).

The graph is read from the source with :mod:`ast`, without importing anything. An edge A -> B means
that running module A imports project module B: ``import x.y``, ``from x.y import z`` (to ``x.y.z``
when z is a submodule, else to ``x.y``), relative imports, and imports inside functions all count,
since a lazy import closes a cycle as surely as one at the top, only later. Importing ``x.y.z``
also runs the packages around it (``x.y``'s ``__init__``), so those are edges too, except the
importer's own packages, which have started before it runs. Imports under ``if TYPE_CHECKING:``
run only for type checkers and do not count. A strongly connected component of more than one
module, or a module importing itself, is a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sweeper", "trainables", "dashboards")

Graph = dict[str, set[str]]


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Module name -> source file, for every ``.py`` file of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in or under ``nodes``, except in the body of ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _runtime_imports(node.orelse)  # the else branch runs
        else:
            yield from _runtime_imports(ast.iter_child_nodes(node))


def _targets(statement: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: set[str]) -> list[str]:
    """The modules a statement in module ``name`` names, before mapping them to project modules."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    base = statement.module or ""
    if statement.level:  # relative: from the module's package, up level - 1 packages
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[: len(package) - (statement.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in statement.names]


def _project_module(target: str, known: set[str]) -> str | None:
    """The longest prefix of ``target`` that is a project module (``x.y.Name`` -> ``x.y``)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Module -> the project modules it imports at run time (see the module notes)."""
    sources = modules(root, packages)
    known = set(sources)
    graph: Graph = {name: set() for name in sources}
    for name, path in sources.items():
        is_package = path.name == "__init__.py"
        started = {".".join(name.split(".")[:end]) for end in range(1, name.count(".") + 1)}  # own packages
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for statement in _runtime_imports([tree]):
            for target in _targets(statement, name, is_package, known):
                module = _project_module(target, known)
                if module is None:
                    continue
                graph[name].add(module)
                parts = module.split(".")
                enclosing = {".".join(parts[:end]) for end in range(1, len(parts))}
                graph[name].update(p for p in enclosing if p in known and p not in started and p != name)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _cycle_through(graph: Graph, component: list[str]) -> list[str]:
    """One cycle inside ``component``, as ``[a, b, ..., a]`` (breadth first from its first module)."""
    start, inside = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & inside):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle in {component}")


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module, or per self-import."""
    return [_cycle_through(graph, c) for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def test_no_import_cycles_in_the_project() -> None:
    graph = import_graph(ROOT, PACKAGES)
    assert len(graph) > 100 and "sweeper.run.launch" in graph and "dashboards.report" in graph
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_graph_has_the_edges_the_rules_say() -> None:
    graph = import_graph(ROOT, PACKAGES)
    assert "sweeper.spec.checks" in graph["sweeper.spec.loading"]  # from sweeper.spec import checks
    assert "sweeper.run.trial" in graph["sweeper.run.trial_entry"]  # inside a function
    assert "sweeper.tracking.runs" not in graph["sweeper.run.trial_entry"]  # under TYPE_CHECKING
    assert "sweeper.spec" in graph["sweeper.run.launch"]  # the package around sweeper.spec.schema
    assert "sweeper.run" not in graph["sweeper.run.launch"]  # its own package has started already


def test_a_cycle_is_found(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",  # a submodule, named with from-import
        "pkg/b.py": "def late():\n    from .c import thing\n",  # relative, inside a function
        "pkg/c.py": "import pkg.a\nthing = 1\n",
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "pkg/e.py": "from pkg.d import TYPE_CHECKING\n",  # d -> e only for type checkers: no cycle
        "pkg/f.py": "import os\nfrom pkg import f\n",  # imports itself
        "pkg/sub/__init__.py": "from pkg.sub import g\n",  # a package importing its submodule ...
        "pkg/sub/g.py": "from pkg import a\n",  # ... which does not import it back
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set() and graph["pkg.e"] == {"pkg.d"}
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"], ["pkg.f", "pkg.f"]]
