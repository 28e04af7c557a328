"""Imports: a path imports only what it uses (measured in a fresh interpreter), and no module
of the package imports itself through others (read from the source, lazy imports included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env

# Runs cli.main in a fresh interpreter and writes the top-level modules it newly imported
# (the interpreter's own start-up imports are not the CLI's doing).
WRAPPER = """
import sys
out, argv = sys.argv[1], sys.argv[2:]
before = {name.split(".")[0] for name in sys.modules}
from assure_doctor import cli
try:
    cli.main(argv)
except SystemExit:
    pass
after = {name.split(".")[0] for name in sys.modules}
open(out, "w").write("\\n".join(sorted(after - before)))
"""
CHECK_NEVER = {"textual", "apscheduler", "prometheus_client"}
LIGHT_NEVER = CHECK_NEVER | {"httpx", "dns", "cryptography"}
# --help builds the parser and nothing else: no TLS, event loop, logging or dataclasses.
HELP_NEVER = LIGHT_NEVER | {"ssl", "asyncio", "logging", "dataclasses", "inspect"}


def imported(tmp_path: Path, *argv: str) -> set[str]:
    out = tmp_path / "modules"
    subprocess.run([sys.executable, "-c", WRAPPER, str(out), *argv], env=clean_env(),
                   capture_output=True, timeout=60, check=False)
    modules = set(out.read_text().split())
    assert "assure_doctor" in modules  # the wrapper ran and saw the CLI's own imports
    return modules


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    assert not imported(tmp_path, "--help") & HELP_NEVER
    assert not imported(tmp_path, "check", "--help") & HELP_NEVER


def test_an_argument_error_imports_no_heavy_library(tmp_path: Path) -> None:
    assert not imported(tmp_path, "check", "--stak", "x") & LIGHT_NEVER
    assert not imported(tmp_path, "check", "--url", "http://plain.example/") & LIGHT_NEVER


def test_check_imports_no_face(tmp_path: Path, healthy: Sandbox) -> None:
    modules = imported(tmp_path, "check", *healthy.check_args(), "--json")
    assert not modules & CHECK_NEVER
    assert {"h11", "dns", "cryptography"} <= modules  # it did run the check
    # The ping frames its request with the one HTTP/1.1 codec (h11): no HTTP client library.
    assert not modules & {"httpx", "httpcore", "anyio", "trio"}
    assert healthy.traffic.keyed == 1


def test_the_engine_does_not_load_textual() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, assure_doctor.engine; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'apscheduler'}))"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# --- no import cycles ------------------------------------------------------------------------
PACKAGE = Path(__file__).resolve().parent.parent / "assure_doctor"


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under `root`, by its dotted name (a package by its
    __init__.py)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _runs(node: ast.AST) -> bool:
    """False for `if TYPE_CHECKING:`, whose imports never run."""
    test = getattr(node, "test", None)
    return not (isinstance(node, ast.If) and isinstance(test, ast.Name | ast.Attribute)
                and (getattr(test, "id", None) or getattr(test, "attr", None))
                == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import that can run: at module level and inside functions (lazy ones) alike."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if _runs(node):
            pending.extend(ast.iter_child_nodes(node))
        else:
            pending.extend(getattr(node, "orelse", []))
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing `name` executes, directly: each imported module
    and the packages above it (their __init__ runs first); `from a.b import c` counts a.b.c
    when c is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from the package, one level up per extra dot
            anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names)
    executed = set()
    for target in targets:
        parts = target.split(".")
        executed.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {module for module in executed if module in modules and module != name}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """In each group of modules that import each other (Tarjan's strongly connected
    components), the shortest cycle through each module, as a path that ends where it
    starts; each cycle once."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # recursive: the package is a few dozen modules deep
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found: dict[frozenset[str], list[str]] = {}
    for group in groups:
        for start in sorted(group):
            path = _path_within(start, group, graph)
            found.setdefault(frozenset(path), path)
    return list(found.values())


def _path_within(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest cycle from `start` back to itself, inside its group."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle in {group}")


def test_the_cycle_finder_sees_a_lazy_import_and_a_package_init(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.sub import c\n")  # lazy
    (pkg / "sub" / "__init__.py").write_text("from pkg import a\n")  # runs before sub.c
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from pkg import a\n")
    (pkg / "d.py").write_text("from . import e\n")
    (pkg / "e.py").write_text("import pkg.d\n")
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg", "pkg.sub", "pkg.sub.c"}  # each __init__ runs first
    assert graph["pkg.sub.c"] == set()  # a type-only import never runs
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub", "pkg.a"], ["pkg.d", "pkg.e", "pkg.d"]]
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "e.py").write_text("")
    assert cycles(import_graph(pkg)) == []


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["assure_doctor.cli"]  # it read the real package
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)
