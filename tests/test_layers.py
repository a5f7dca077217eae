"""The layers of studio/, read from its import graph: no loops, and providers kept apart.

The graph is built from the source with `ast`: every `import` and `from … import`, at module
level or inside a function (a lazy import is still a dependency), except those under
`if TYPE_CHECKING:`, which never run. Importing a module runs its packages' `__init__`
too, so those are edges as well; and the registry finds each provider's `client` and
`config` by name at run time, so those are added as the registry's edges.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from studio.providers.names import LABELS

ROOT = Path(__file__).resolve().parent.parent
STUDIO = ROOT / "studio"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name `tree` imports (as written; submodules for `from x import y`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def build_graph() -> dict[str, set[str]]:
    paths = {
        module_name(path): path for path in STUDIO.rglob("*.py") if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        names = imported_names(ast.parse(path.read_text()), module, path.name == "__init__.py")
        edges = set()
        for name in names:
            # `from studio.providers import http` names a module; `from studio.models import
            # Job` names a class in one: keep the longest prefix that is a module of ours.
            while name and name not in paths:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    for provider in LABELS:
        graph["studio.providers.registry"] |= {
            f"studio.providers.{provider}.client",
            f"studio.providers.{provider}.config",
        }
    for module in list(graph):
        # Importing a module first runs every package above it.
        parent = module.rpartition(".")[0]
        while parent:
            graph.setdefault(parent, set())
            if parent != module:
                graph[module].add(parent)
            parent = parent.rpartition(".")[0]
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in sorted(graph.get(node, ())):
            if edge not in index:
                connect(edge)
                low[node] = min(low[node], low[edge])
            elif edge in on_stack:
                low[node] = min(low[node], index[edge])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for edge in graph.get(todo.pop(), ()):
            if edge not in seen:
                seen.add(edge)
                todo.append(edge)
    return seen


GRAPH = build_graph()
PROVIDER_LAYER = sorted(
    m for m in GRAPH if m.startswith("studio.providers.") or m == "studio.providers"
)


def test_the_graph_sees_lazy_imports_and_the_registry():
    # The dynamic edges and a lazy import inside a function are in the graph, so the
    # checks below would see a loop made through them.
    assert "studio.providers.local.client" in GRAPH["studio.providers.registry"]
    assert "studio.pricing" in GRAPH["studio.apps"]  # imported inside AppConfig.ready


def test_studio_has_no_import_cycle():
    assert cycles(GRAPH) == []


def test_a_cycle_would_be_found():
    looped = {**GRAPH, "studio.models": GRAPH["studio.models"] | {"studio.providers.registry"}}
    assert cycles(looped) != []


@pytest.mark.parametrize("module", PROVIDER_LAYER)
def test_the_provider_layer_stays_below_the_engine_and_the_web(module):
    forbidden = {"studio.jobs", "studio.following", "studio.webhooks", "studio.urls"}
    imports = GRAPH[module]
    assert not imports & forbidden
    assert not {m for m in imports if m.startswith(("studio.web", "studio.admin"))}
    source = (STUDIO.parent / (module.replace(".", "/"))).with_suffix(".py")
    if not source.exists():
        source = STUDIO.parent / module.replace(".", "/") / "__init__.py"
    names = imported_names(ast.parse(source.read_text()), module, source.name == "__init__.py")
    assert "django.urls" not in names  # no URL names: jobs.py gives providers their webhook URL


def test_models_name_providers_from_a_plain_constant():
    assert reaches(GRAPH, "studio.models") <= {
        "studio", "studio.options", "studio.frames", "studio.providers",
        "studio.providers.names",
    }  # fmt: skip
    assert GRAPH["studio.providers.names"] <= {"studio", "studio.providers"}


def test_the_provider_interface_does_not_import_the_renderer():
    for module in ("studio.providers.base", "studio.providers.http", "studio.options"):
        assert "studio.providers.local.renderer" not in reaches(GRAPH, module)
        assert "studio.video" not in reaches(GRAPH, module)


HOSTED = [name for name in LABELS if name != "local"]  # the local renderer runs the worker


@pytest.mark.parametrize("name", HOSTED)
def test_a_hosted_provider_is_named_only_in_its_package_and_its_line_in_names(name):
    # What makes adding one need nothing else in studio/: no other module, template or
    # script names it or imports its package; everything finds it through the registry.
    named = re.compile(rf"""["']{name}["']|studio\.providers\.{name}\b|providers import {name}\b""")
    own = STUDIO / "providers" / name
    places = [
        path
        for folder in (STUDIO, ROOT / "templates", ROOT / "static" / "js")
        for path in folder.rglob("*")
        if path.suffix in (".py", ".html", ".js")
        and own not in path.parents
        and "migrations" not in path.parts
        and path != STUDIO / "providers" / "names.py"
    ]
    assert len(places) > 50
    assert [str(path) for path in places if named.search(path.read_text())] == []
