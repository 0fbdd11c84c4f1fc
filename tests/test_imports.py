"""The import graph of ``lavimo/``, read from the source with ``ast``: no cycles, and the renderer never reaches torch.

Every import of a ``lavimo`` module counts, wherever it sits in a file (module level, inside a function, under
``if TYPE_CHECKING``): a lazy import hides a cycle from Python but not from the reader.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "lavimo"
TORCH_PACKAGES = frozenset({"torch", "torchvision"})
# the render process: the renderer package, the CLI group that drives it and the render benchmark
RENDER_PROCESS = ("lavimo.render", "lavimo.commands.render", "lavimo.bench.render")
# the retrieval metrics: `lavimo metrics` and the trainer's validation
NUMPY_ONLY = ("lavimo.evaluate", "lavimo.commands.metrics")


@dataclass
class ModuleImports:
    """The imports of one lavimo module: lavimo modules (all, and those run at import time), third-party roots."""

    lavimo: set[str] = field(default_factory=set)
    lavimo_eager: set[str] = field(default_factory=set)
    external: set[str] = field(default_factory=set)
    external_eager: set[str] = field(default_factory=set)


def module_name(path: Path) -> str:
    """Dotted name of a source file under ``lavimo/`` (a package's ``__init__.py`` is the package)."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def module_files() -> dict[str, Path]:
    """Every lavimo module by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def is_package(name: str) -> bool:
    return module_files()[name].name == "__init__.py"


def with_parents(name: str) -> Iterator[str]:
    """``name`` and the packages Python runs to import it (``lavimo.a.b`` -> ``lavimo.a.b``, ``lavimo.a``)."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        yield ".".join(parts[:end])


def eager_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """The nodes run when the module is imported: skips function bodies and ``if TYPE_CHECKING`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imported_names(node: ast.AST, importer: str) -> Iterator[str]:
    """Absolute names of what an import statement imports (``from a import b`` gives ``a.b`` if that is a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = importer if is_package(importer) else importer.rpartition(".")[0]
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        yield base
        for alias in node.names:
            if f"{base}.{alias.name}" in module_files():
                yield f"{base}.{alias.name}"


@cache
def module_imports(name: str) -> ModuleImports:
    """What module ``name`` imports, read from its source."""
    tree = ast.parse(module_files()[name].read_text(), filename=str(module_files()[name]))
    eager = {id(node) for node in eager_nodes(tree)}
    found = ModuleImports()
    own_packages = set(with_parents(name))
    for node in ast.walk(tree):
        for target in imported_names(node, name):
            root = target.partition(".")[0]
            if root != "lavimo":
                found.external.add(root)
                if id(node) in eager:
                    found.external_eager.add(root)
                continue
            modules = {parent for parent in with_parents(target) if parent in module_files()} - own_packages
            found.lavimo |= modules
            if id(node) in eager:
                found.lavimo_eager |= modules
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the lavimo modules it imports anywhere in its file."""
    return {name: module_imports(name).lavimo for name in module_files()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """The shortest import chain from ``start`` back to itself (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(previous[chain[-1]])
                    return [start, *reversed(chain[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    next_frontier.append(child)
        frontier = next_frontier
    raise AssertionError(f"{start} is on no cycle")


def import_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """(a shortest cycle, every node tangled in it) for each tangle of mutually importing nodes."""
    tangles = [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    return [(shortest_cycle(graph, tangle[0]), tangle) for tangle in sorted(tangles)]


def cycles_message(what: str, graph: dict[str, set[str]]) -> str:
    """Every cycle of ``graph``, one line each ('' if none)."""
    lines = [
        " -> ".join(cycle) + (f"   (tangled: {', '.join(tangle)})" if len(tangle) > 2 else "")
        for cycle, tangle in import_cycles(graph)
    ]
    return f"import cycles between {what}:\n" + "\n".join(lines) if lines else ""


def component(name: str) -> str:
    """The part of lavimo a module belongs to: its subpackage (``lavimo.video``) or itself (``lavimo.train``)."""
    parts = name.split(".")
    return name if len(parts) < 3 else ".".join(parts[:2])


def component_graph() -> dict[str, set[str]]:
    """Part -> the other parts it imports (the module graph with each subpackage drawn as one node)."""
    graph: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        graph.setdefault(component(name), set()).update(component(t) for t in targets)
    return {part: targets - {part} for part, targets in graph.items()}


def torch_reach(roots: list[str], follow_lazy: Callable[[str], bool]) -> list[str]:
    """Chains by which importing ``roots`` reaches torch (empty: it never does).

    Every module's import-time imports are followed; a module's lazy ones (inside functions) too where
    ``follow_lazy(module)``.
    """
    reached: dict[str, str] = {}  # module -> the module that imports it
    todo = [(name, name) for name in roots]
    chains = []
    while todo:
        name, via = todo.pop()
        if name in reached:
            continue
        reached[name] = via
        imports = module_imports(name)
        lazy = follow_lazy(name)
        torch_imports = (imports.external if lazy else imports.external_eager) & TORCH_PACKAGES
        if torch_imports:
            chain = [name]
            while reached[chain[-1]] != chain[-1]:
                chain.append(reached[chain[-1]])
            chains.append(" <- ".join(chain) + f" imports {', '.join(sorted(torch_imports))}")
        todo.extend((child, name) for child in sorted(imports.lavimo if lazy else imports.lavimo_eager))
    return chains


def in_packages(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_graph_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    assert "lavimo.io" in graph["lavimo.render.clip"]
    assert "lavimo.render.floor" in graph["lavimo.render.clip"]  # `from lavimo.render import floor`
    assert "lavimo.datasets" in graph["lavimo.render.shard"]  # the package runs before its submodule
    assert "lavimo.datasets.manifest" in graph["lavimo.render.shard"]  # imported inside a function
    assert "lavimo.motion.skeleton" in graph["lavimo.motion.humanml3d"]  # `from lavimo.motion import skeleton`
    assert component("lavimo.video.cache") == "lavimo.video" and component("lavimo.io") == "lavimo.io"
    assert component("lavimo.bench.render") == "lavimo.bench"


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert import_cycles(graph) == [(["a", "b", "c", "a"], ["a", "b", "c"]), (["e", "e"], ["e"])]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    assert "a -> b -> c -> a   (tangled: a, b, c)" in cycles_message("nodes", graph)


def test_no_import_cycles_between_modules() -> None:
    message = cycles_message("lavimo modules", import_graph())
    assert not message, message


def test_no_import_cycles_between_packages() -> None:
    """Subpackages and top-level modules form layers too: datasets -> text -> video -> datasets is a cycle."""
    message = cycles_message("lavimo packages (and top-level modules)", component_graph())
    assert not message, message


def test_render_process_never_imports_torch() -> None:
    """The render modules never import torch, nor anything they import (only import-time imports of the rest)."""
    roots = [name for name in module_files() if in_packages(name, RENDER_PROCESS)]
    chains = torch_reach(roots, lambda name: in_packages(name, RENDER_PROCESS))
    assert not chains, "the render process would import torch:\n" + "\n".join(chains)


def test_metrics_stay_numpy_only() -> None:
    """What `lavimo metrics` and the trainer's validation use never imports torch, lazily or not."""
    chains = torch_reach(list(NUMPY_ONLY), lambda name: True)
    assert not chains, "the metrics would import torch:\n" + "\n".join(chains)
