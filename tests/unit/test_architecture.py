"""The import graph runs one way: no cycle anywhere, and each package only imports downwards.

The graph is built by grimp (import-linter's engine) from the source, offline, and includes every
import: module level, inside functions and under ``TYPE_CHECKING`` (a cycle hidden in a function
is still a cycle for the reader).

    tools  →  crawler, replica         (the demo: the only place that needs both)
    pipelines  →  crawler              (never the reverse)
    crawler, replica                   (import neither each other nor anything above)

Inside ``crawler``: the frontier does not know the concrete spider (``crawler.spiders``: the spider
implements the frontier's protocol) and the page objects know neither the frontier nor the
spider.
"""

from __future__ import annotations

import functools

import grimp
import pytest

PACKAGES = ("crawler", "pipelines", "replica", "tools")


@functools.cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def cycles(g: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), plus self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(g.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in g.find_modules_directly_imported_by(node):
                        found.append(sorted(component))

    for module in sorted(g.modules):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    """The check itself can fail: a graph with a cycle (and one without) gives the answer."""
    g = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z", "b"):
        g.add_module(name)
    g.add_import(importer="a.x", imported="a.y")
    g.add_import(importer="a.y", imported="a.z")
    g.add_import(importer="a.z", imported="a.x")
    g.add_import(importer="b", imported="a.x")
    assert cycles(g) == [["a.x", "a.y", "a.z"]]
    g.remove_import(importer="a.z", imported="a.x")
    assert cycles(g) == []


def test_no_import_cycle_anywhere() -> None:
    found = cycles(graph())
    chains = [
        " -> ".join(graph().find_shortest_chain(importer=c[0], imported=c[1]) or c) for c in found
    ]
    assert found == [], f"import cycles: {found}; e.g. {chains}"


FORBIDDEN = [
    ("crawler", "pipelines"),
    ("crawler", "replica"),
    ("crawler", "tools"),
    ("replica", "crawler"),
    ("replica", "pipelines"),
    ("replica", "tools"),
    ("pipelines", "replica"),
    ("pipelines", "tools"),
    ("crawler.frontier", "crawler.spiders"),
    ("crawler.pages", "crawler.frontier"),
    ("crawler.pages", "crawler.spiders"),
]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_packages_import_one_way(importer: str, imported: str) -> None:
    chains = graph().find_shortest_chains(importer=importer, imported=imported)
    assert not chains, f"{importer} must not import {imported}: {sorted(chains)}"


MAX_FUNCTION_LINES = 60


def test_no_function_in_the_frontier_is_longer_than_sixty_lines() -> None:
    import ast
    from pathlib import Path

    import crawler.frontier

    root = Path(crawler.frontier.__file__).parent
    long = [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(root.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


CORE = (
    "crawler.batch",
    "crawler.outcome",
    "crawler.retrying",
    "crawler.frontier.counters",
    "crawler.frontier.health",
    "crawler.frontier.known",
    "crawler.frontier.lifecycle",
    "crawler.frontier.queue",
    "crawler.frontier.run",
    "crawler.frontier.siteslots",
    "crawler.frontier.window",
)


@pytest.mark.parametrize("module", CORE)
def test_the_frontier_core_runs_without_scrapy(module: str) -> None:
    """The core is unit-tested without an engine: at run time it imports nothing of Scrapy or
    Twisted (type hints under ``TYPE_CHECKING`` do not count)."""
    g = runtime_graph()
    assert "scrapy" in g.modules, "the graph sees Scrapy (the check can fail)"
    for external in ("scrapy", "twisted"):
        if external not in g.modules:
            continue  # nothing of ours imports it at run time
        chain = g.find_shortest_chain(importer=module, imported=external)
        assert chain is None, f"{module} imports {external} at run time: {chain}"


@functools.cache
def runtime_graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *PACKAGES,
        include_external_packages=True,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )
