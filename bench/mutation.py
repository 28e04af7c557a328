"""Mutation testing of the diagnosis: would the fast tests notice a wrong ranking? (prints)

An AST mutator: one mutant at a time, it changes one thing in a module (swaps two adjacent
ids of a tuple -- strings or enum members like `K.CONFIG` --, puts the next member of its enum
in place of a member, deletes a dict entry, a rule or an advice variant, drops or renames a
`when` fact of a variant, renames an id or a placeholder, flips a comparison or a boolean,
moves a number by one, swaps `and`/`or`, drops a `not` or a return branch), writes it into
a temporary copy of the package, and runs the fast unit tests there in a subprocess. A mutant
the tests fail on is killed; one they pass on survived: the tests would not have noticed
that wrong diagnosis. Prose (titles, advice sentences) is not mutated; the placeholders in it
are.

Decorators are not mutated: their options (a dataclass's `frozen`, a cache's size) are
declarations that mypy holds the code to, not behaviour. A number or a boolean given as a
keyword argument is described with its keyword (`timeout=1.0 -> 2.0`).

Some mutants cannot change behaviour (the order of a cache key's parts, a branch no input
takes); some change what the fast tests cannot reach (a route loopback lacks, a race no test
can hold still). bench/equivalents.py names each (EQUIVALENT, UNREACHED), by module,
description and source line, with the reason. They are listed apart; the equivalent are left
out of the survival rate, the unreached count as survivors in its strict figure. A named one
that the tests kill, or that no longer exists, is reported as stale.

The worktree is never written: each worker has its own copy of the package and the tests.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from bench.equivalents import EQUIVALENT, UNREACHED

ROOT = Path(__file__).resolve().parent.parent
# Each module and the fast unit tests of it (a mutant runs only its module's tests): test
# files or pytest node ids (`file::test`), in-process only, so that a mutant takes seconds.
RANKING_TESTS = ("tests/test_ranking_full.py", "tests/test_ranking.py", "tests/test_advice.py")
TESTS: dict[str, tuple[str, ...]] = {
    "assure_doctor/ranking.py": RANKING_TESTS,
    "assure_doctor/causes.py": RANKING_TESTS,
    "assure_doctor/probes/netclass.py": ("tests/test_netclass.py", "tests/test_pure.py"),
    "assure_doctor/probes/certinfo.py": ("tests/test_certinfo.py", "tests/test_pure.py"),
    "assure_doctor/probes/dns.py": ("tests/test_dns_diagnosis.py", "tests/test_mutants_dns.py"),
    "assure_doctor/probes/tcp.py": (
        "tests/test_mutants_tcp.py", "tests/test_reset_after_accept.py",
        *(f"tests/test_families.py::{name}" for name in (
            "test_ipv6_refused_while_ipv4_works_is_a_warning_naming_ipv6",
            "test_happy_order_interleaves_and_caps_each_family", "test_one_family_only",
            "test_five_hundred_addresses_are_reported_but_only_a_few_connected_to"))),
    "assure_doctor/probes/proxy.py": (
        "tests/test_proxy_pure.py", "tests/test_mutants_proxy.py",
        "tests/test_http1.py::test_connect_answers_are_read_by_the_codec",
        "tests/test_http1.py::test_a_superscript_status_is_not_http_not_a_crash",
        "tests/test_http1.py::test_five_thousand_schemes_are_cut_to_a_readable_few",
        "tests/test_http1.py::test_an_error_page_title_is_read_within_its_caps"),
    "assure_doctor/probes/tls.py": ("tests/test_mutants_tls.py",
                                    "tests/test_reset_after_accept.py"),
    "assure_doctor/probes/clock.py": (
        "tests/test_pure.py", "tests/test_mutants_clock.py",
        "tests/test_parsers.py::test_any_date_gives_a_clock_sample_or_none"),
    "assure_doctor/probes/ping.py": (
        "tests/test_pure.py", "tests/test_mutants_ping.py",
        *(f"tests/test_parsers.py::{name}" for name in (
            "test_retry_after_of_the_ping_survives_hostile_values",
            "test_malformed_locations_still_classify", "test_any_response_classifies"))),
    "assure_doctor/monitor/budget.py": ("tests/test_budget.py", "tests/test_budget_state.py",
                                        "tests/test_mutants_budget.py"),
    "assure_doctor/monitor/ledger.py": (
        "tests/test_mutants_ledger.py",
        *(f"tests/test_fleet.py::{name}" for name in (
            "test_a_good_answer_is_read", "test_a_bad_answer_is_an_error_never_a_number",
            "test_any_answer_is_read_or_refused_never_crashes",
            "test_the_cap_is_the_customer_budget_less_the_other_sites",
            "test_an_oversized_answer_is_refused", "test_the_spender_id_survives_a_restart")),
        *(f"tests/test_ledger_answers.py::{name}" for name in (
            "test_a_hostile_answer_is_a_ledger_error",
            "test_brackets_inside_strings_are_no_nesting",
            "test_any_bytes_are_rows_or_a_ledger_error",
            "test_the_cap_falls_back_to_the_local_budget"))),
}
TIMEOUT = 60.0  # seconds for one mutant's test run; longer counts as killed (a hang)

_ENUM_BASES = frozenset({"Enum", "StrEnum", "IntEnum", "Flag", "IntFlag"})
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")  # a name, not a count (\d{4})
_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
    ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    """One changed module: where, what, and the whole mutated source."""

    path: str  # relative to the project root
    line: int
    description: str
    source: str
    where: str = ""  # the (first) source line it changes, stripped

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.description}"

    @property
    def key(self) -> tuple[str, str]:
        """What names it in EQUIVALENT, whatever line it moves to: (description, where)."""
        return re.sub(r" \(line \d+\)\Z", "", self.description), self.where

    @property
    def equivalent(self) -> str | None:
        """Why it cannot change behaviour, when it is named as equivalent."""
        return EQUIVALENT.get(self.path, {}).get(self.key)

    @property
    def unreached(self) -> str | None:
        """Why the fast tests cannot reach what it changes, when it is named so."""
        return UNREACHED.get(self.path, {}).get(self.key)


# A mutation replaces fields of the node it was found on: field name -> new value.
Edit = dict[str, object]


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 50 else text[:47] + "..."


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_id(node: ast.AST) -> bool:
    """An identifier-like constant (an id, a kind, a name) or a number: not prose."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_IDENTIFIER.match(node.value))
    return isinstance(node, ast.Constant | ast.Attribute)


def _likeness(node: ast.AST) -> str | None:
    """The kind of element a literal holds, for deletions: an id, a tuple, a dict, a call of
    one function (an advice variant), "*" (a spread, like anything), or None."""
    if _is_id(node):
        return "id"
    if isinstance(node, ast.Starred):
        return "*"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}()"
    return type(node).__name__ if isinstance(node, ast.Tuple | ast.Dict) else None


def _alike(elts: Sequence[ast.AST]) -> bool:
    kinds = {_likeness(elt) for elt in elts} - {"*"}
    return len(kinds) == 1 and None not in kinds


def _skipped(tree: ast.AST) -> set[int]:
    """Nodes not worth mutating: docstrings, annotations, f-string parts, tuples of ids' items
    (their swaps and deletions cover them)."""
    skip: set[int] = set()

    def under(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and _is_str(body[0].value):
            under(body[0])
        if isinstance(node, ast.arg | ast.AnnAssign):
            under(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            under(node.returns)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:  # declarations (frozen, maxsize)
                under(decorator)
        if isinstance(node, ast.JoinedStr):
            under(node)
        if isinstance(node, ast.Tuple | ast.List) and len(node.elts) > 1 \
                and all(_is_id(elt) and _is_str(elt) for elt in node.elts):
            skip.update(id(elt) for elt in node.elts)
    return skip


@dataclass(frozen=True)
class Scope:
    """What a module's names mean, for the mutations that need it."""

    enums: Mapping[str, tuple[str, ...]]  # a name the module uses for an enum -> its members
    open_calls: frozenset[str]  # the module's functions that take **facts (like `_a`)


def _enum_members(root: Path) -> dict[str, tuple[str, ...]]:
    """Every enum class of the package by name, with its members in order (a name two
    modules give different enums is left out: it would be a guess)."""
    found: dict[str, tuple[str, ...]] = {}
    clashes: set[str] = set()
    for module in sorted((root / "assure_doctor").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            bases = {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                     for base in getattr(node, "bases", ())}
            if not isinstance(node, ast.ClassDef) or not bases & _ENUM_BASES:
                continue
            members = tuple(target.id for stmt in node.body if isinstance(stmt, ast.Assign)
                            for target in stmt.targets if isinstance(target, ast.Name)
                            and not target.id.startswith("_"))
            if found.get(node.name, members) != members:
                clashes.add(node.name)
            found[node.name] = members
    return {name: members for name, members in found.items() if name not in clashes}


def scope_of(tree: ast.Module, root: Path = ROOT) -> Scope:
    """The enums a module names (directly or through aliases like `C, K = Condition,
    CauseId`) and its functions that take **facts."""
    enums = _enum_members(root)
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = zip(target.elts, value.elts, strict=False) \
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) \
            else [(target, value)]
        for alias, name in pairs:
            if isinstance(alias, ast.Name) and isinstance(name, ast.Name) and name.id in enums:
                enums[alias.id] = enums[name.id]
    open_calls = frozenset(node.name for node in tree.body
                           if isinstance(node, ast.FunctionDef) and node.args.kwarg)
    return Scope(enums, open_calls)


def _edits(node: ast.AST, scope: Scope) -> Iterator[tuple[str, Edit]]:
    """Every mutation of this one node: (description, the fields it replaces)."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and isinstance(
            getattr(node, "ctx", ast.Load()), ast.Load) and len(node.elts) > 1:
        elts = node.elts
        for i in range(len(elts) - 1):
            if not isinstance(node, ast.Set) and _is_id(elts[i]) and _is_id(elts[i + 1]):
                swapped = [*elts[:i], elts[i + 1], elts[i], *elts[i + 2:]]
                yield f"swap {_short(elts[i])} and {_short(elts[i + 1])}", {"elts": swapped}
        # Only where the elements are alike (rules, ids): dropping half of a (facts, causes)
        # pair would only break the unpacking, which any test notices.
        if _alike(elts):
            for i, elt in enumerate(elts):
                yield f"delete {_short(elt)}", {"elts": elts[:i] + elts[i + 1:]}
    elif isinstance(node, ast.Dict):
        for i, key in enumerate(node.keys):
            if key is not None:
                yield (f"delete entry {_short(key)}: {_short(node.values[i])}",
                       {"keys": node.keys[:i] + node.keys[i + 1:],
                        "values": node.values[:i] + node.values[i + 1:]})
    elif isinstance(node, ast.Constant):
        yield from _constant_edits(node.value)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.attr in scope.enums.get(node.value.id, ()):
        members = scope.enums[node.value.id]
        member = members[(members.index(node.attr) + 1) % len(members)]
        if member != node.attr:
            yield f"{_short(node)} -> {node.value.id}.{member}", {"attr": member}
    elif isinstance(node, ast.Call):
        yield from _call_edits(node, scope)
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            flipped = _FLIP.get(type(op))
            if flipped is not None:
                yield (f"{_short(node)}: {type(op).__name__} -> {flipped.__name__}",
                       {"ops": [*node.ops[:i], flipped(), *node.ops[i + 1:]]})
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{_short(node)}: {type(node.op).__name__} -> {type(other).__name__}", \
            {"op": other}
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield f"drop `not` in {_short(node)}", {  # not x -> not not x
            "operand": ast.UnaryOp(ast.Not(), node.operand)}
    elif isinstance(node, ast.IfExp):
        yield f"{_short(node)}: always the if branch", {"test": ast.Constant(True)}
        yield f"{_short(node)}: always the else branch", {"test": ast.Constant(False)}
    yield from _branch_edits(node)


def _call_edits(node: ast.Call, scope: Scope) -> Iterator[tuple[str, Edit]]:
    """all() <-> any(); drop a keyword argument; rename a fact given to a **facts function
    (a variant's `when`: dropped, it holds always; renamed, never)."""
    name = node.func.id if isinstance(node.func, ast.Name) else ""
    if name in ("all", "any"):
        other = "any" if name == "all" else "all"
        yield f"{name}() -> {other}()", {"func": ast.Name(other)}
    for i, keyword in enumerate(node.keywords):
        if keyword.arg is None:
            continue
        rest = node.keywords[:i] + node.keywords[i + 1:]
        yield f"drop {keyword.arg}={_short(keyword.value)} from {name}()", {"keywords": rest}
        if name in scope.open_calls:
            renamed = ast.keyword(keyword.arg + "X", keyword.value)
            yield (f"fact {keyword.arg}= -> {keyword.arg}X= in {name}()",
                   {"keywords": [*rest[:i], renamed, *rest[i:]]})


def _constant_edits(value: object) -> Iterator[tuple[str, Edit]]:
    if isinstance(value, bool):
        yield f"{value} -> {not value}", {"value": not value}
    elif isinstance(value, int | float):
        yield f"{value} -> {value + 1}", {"value": value + 1}
    elif isinstance(value, str) and _IDENTIFIER.match(value):
        yield f"{value!r} -> {value + 'X'!r}", {"value": value + "X"}
    elif isinstance(value, str):
        for name in dict.fromkeys(_PLACEHOLDER.findall(value)):
            yield (f"placeholder {{{name}}} -> {{{name}X}}",
                   {"value": value.replace(f"{{{name}}}", f"{{{name}X}}")})


def _branch_edits(node: ast.AST) -> Iterator[tuple[str, Edit]]:
    """Delete an `if` whose branch returns or raises: that case then falls through."""
    body = getattr(node, "body", None)
    if not isinstance(body, list):
        return
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.If) and isinstance(stmt.body[-1], ast.Return | ast.Raise):
            yield (f"delete the branch `if {_short(stmt.test)}:` (line {stmt.lineno})",
                   {"body": body[:i] + body[i + 1:] or [ast.Pass()]})


def mutants_of(path: str, root: Path = ROOT) -> list[Mutant]:
    """Every mutant of one module, in source order."""
    source = (root / path).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    skip = _skipped(tree)
    scope = scope_of(tree, root)
    keywords = {id(node.value): node.arg for node in ast.walk(tree)
                if isinstance(node, ast.keyword) and node.arg is not None}
    unchanged = ast.unparse(tree)
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        for description, edit in list(_edits(node, scope)):
            if isinstance(node, ast.Constant) and id(node) in keywords:
                description = f"{keywords[id(node)]}={description}"
            saved = {field: getattr(node, field) for field in edit}
            for field, value in edit.items():
                setattr(node, field, value)
            text = ast.unparse(tree)
            for field, value in saved.items():
                setattr(node, field, value)
            if text != unchanged:
                line = re.search(r"\(line (\d+)\)\Z", description)
                number = int(line[1]) if line else getattr(node, "lineno", 0)
                where = lines[number - 1].strip() if 0 < number <= len(lines) else ""
                found.append(Mutant(path, number, description, text, where))
    found.sort(key=lambda mutant: mutant.line)  # stable: a line's mutants in walk order
    # The same change written the same way twice (`range(1, n + 1)`): the second is "(#2)".
    seen: dict[tuple[str, str], int] = {}
    for index, mutant in enumerate(found):
        seen[mutant.key] = count = seen.get(mutant.key, 0) + 1
        if count > 1:
            found[index] = replace(mutant, description=f"{mutant.description} (#{count})")
    return found


class Workspace:
    """A private copy of the package and the tests, where mutants are written and tested."""

    def __init__(self, tests: Sequence[str], root: Path = ROOT) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="assure-mutant-"))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(root / "assure_doctor", self.dir / "assure_doctor", ignore=ignore)
        (self.dir / "tests").mkdir()
        # The tests' helpers (tests.waiting, tests.conftest's functions), then the tests.
        helpers = [p.relative_to(root).as_posix() for p in (root / "tests").glob("*.py")
                   if not p.name.startswith("test_")]
        for test in {*helpers, *(test.split("::")[0] for test in tests)}:
            shutil.copy2(root / test, self.dir / test)

    def passes(self, tests: Sequence[str], mutant: Mutant | None = None) -> bool:
        """Whether `tests` pass with `mutant` in place (None: the code as it is)."""
        target = self.dir / mutant.path if mutant else None
        original = target.read_text() if target else ""
        if target and mutant:
            target.write_text(mutant.source)
        env = {**os.environ, "PYTHONPATH": str(self.dir), "PYTHONDONTWRITEBYTECODE": "1",
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 "--noconftest", "-m", "not slow", "--rootdir", str(self.dir), *tests],
                cwd=self.dir, env=env, capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return False
        finally:
            if target:
                target.write_text(original)
        return done.returncode == 0

    def imports_its_copy(self) -> bool:
        """The tests must import this copy, not the installed package."""
        done = subprocess.run(
            [sys.executable, "-c", "import assure_doctor; print(assure_doctor.__file__)"],
            cwd=self.dir, env={**os.environ, "PYTHONPATH": str(self.dir)},
            capture_output=True, text=True, check=True)
        return Path(done.stdout.strip()).is_relative_to(self.dir)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def workspaces(count: int, tests: Sequence[str]) -> Iterator[queue.Queue[Workspace]]:
    """`count` checked workspaces, in a queue that workers borrow them from."""
    made = [Workspace(tests) for _ in range(count)]
    try:
        for space in made:
            if not space.imports_its_copy():
                raise SystemExit("the tests would not import the mutated copy")
        if not made[0].passes(tests):
            raise SystemExit("the tests fail without any mutant: fix them first")
        pool: queue.Queue[Workspace] = queue.Queue()
        for space in made:
            pool.put(space)
        yield pool
    finally:
        for space in made:
            space.close()


def killed(pool: queue.Queue[Workspace], mutant: Mutant, tests: Sequence[str]) -> bool:
    space = pool.get()
    try:
        return not space.passes(tests, mutant)
    finally:
        pool.put(space)


class Progress:
    """A line on stderr every `every` mutants, so a long run shows it is moving."""

    def __init__(self, total: int, every: int = 50) -> None:
        self.total, self.every, self.done = total, every, 0
        self.lock = threading.Lock()
        self.start = time.perf_counter()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            if self.done % self.every == 0:
                print(f"  {self.done}/{self.total} in {time.perf_counter() - self.start:.0f} s",
                      file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=list(TESTS), help="modules to mutate")
    parser.add_argument("--tests", nargs="+", help="the fast tests to run for every mutant "
                        "(default: the module's own, see TESTS)")
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = parser.parse_args()
    everything = [mutant for path in args.files for mutant in mutants_of(path)]
    if args.list:
        for mutant in everything:
            print(f"{mutant}  [{mutant.where}]")
        return
    start = time.perf_counter()
    progress = Progress(len(everything))

    def tests_of(path: str) -> Sequence[str]:
        return args.tests or TESTS.get(path) or sorted(
            {test for tests in TESTS.values() for test in tests})

    def run(mutant: Mutant) -> bool:
        dead = killed(pool, mutant, tests_of(mutant.path))
        progress.tick()
        return dead

    needed = sorted({test for path in args.files for test in tests_of(path)})
    with workspaces(args.workers, needed) as pool, \
            ThreadPoolExecutor(args.workers) as executor:
        outcomes = list(executor.map(run, everything))
    seconds = time.perf_counter() - start
    print(report(args.files, list(zip(everything, outcomes, strict=True))))
    print(f"in {seconds:.0f} s with {args.workers} workers")


def report(files: Sequence[str], outcomes: Sequence[tuple[Mutant, bool]]) -> str:
    """Per module: mutants, killed, survived, unreached and equivalent (bench/equivalents.py);
    the survivors, the named ones with their reasons, stale names, and the survival rate of the
    mutants not equivalent, strict (the unreached survive too) and of the tests' reach."""
    def tally(mine: Sequence[tuple[Mutant, bool]]) -> tuple[int, int, int, int, str]:
        alive = sum(1 for m, dead in mine if not dead and not (m.equivalent or m.unreached))
        unreached = sum(1 for m, dead in mine if not dead and m.unreached)
        same = sum(1 for m, dead in mine if not dead and m.equivalent)
        counted = len(mine) - same
        strict = (alive + unreached) / counted if counted else 0.0
        reach = alive / (counted - unreached) if counted - unreached else 0.0
        return (len(mine) - alive - unreached - same, alive, unreached, same,
                f"{strict:.1%}, {reach:.1%} in reach")

    lines = []
    for path in files:
        killed, alive, unreached, same, rates = tally([o for o in outcomes if o[0].path == path])
        lines.append(f"{path:36}: {killed + alive + unreached + same:4} mutants, {killed:4} "
                     f"killed, {alive:3} survived, {unreached:2} unreached, {same:3} "
                     f"equivalent ({rates})")
    killed, alive, unreached, same, rates = tally(outcomes)
    lines.append(f"mutants {len(outcomes)}, killed {killed}, survived {alive}, unreached "
                 f"{unreached}, equivalent {same}")
    for m, dead in outcomes:
        if not dead and not (m.equivalent or m.unreached):
            lines.append(f"  survived    {m}  [{m.where}]")
    lines.extend(f"  unreached   {m}: {m.unreached}" for m, dead in outcomes
                 if not dead and m.unreached)
    lines.extend(f"  equivalent  {m}: {m.equivalent}" for m, dead in outcomes
                 if not dead and m.equivalent)
    lines.extend(f"  stale: named, but the tests kill it: {m}" for m, dead in outcomes
                 if dead and (m.equivalent or m.unreached))
    seen = {(m.path, m.key) for m, _ in outcomes}
    for path in files:
        for key in (*EQUIVALENT.get(path, {}), *UNREACHED.get(path, {})):
            if (path, key) not in seen:
                lines.append(f"  stale: named, but no such mutant: {path} {key}")
    lines.append(f"survival rate: {rates} of {len(outcomes) - same} mutants not equivalent "
                 "(aim: under 10%)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
