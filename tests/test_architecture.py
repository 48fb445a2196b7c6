"""The walls of ARCHITECTURE.md, read from the source with `ast` (no import of the package, no
third-party tool):

(a) the import graph of `batch/` has no cycle (module-level and function-level imports, and
    those under `if TYPE_CHECKING:`: a circle of types is still two ideas that lean on each
    other, and issue 10 counted `auth` <-> `graph.client`, a TYPE_CHECKING import, as one);
(b) the emulator is Graph, not us: it imports nothing of `batch` outside `batch/emulator/`
    (no exception), and only the CLI chooses it: nothing outside
    `batch/emulator/` and `batch/cli/` imports `batch.emulator`;
(c) only the CLI (`batch/cli/`, `batch/__main__.py`) prints, exits, calls `asyncio.run`,
    installs signal handlers, prompts, or reads the environment; `batch/config.py` is the one
    other place that reads the environment, and `batch/emulator/` is a server program of its own.
    A library function that wraps one of these (as `batch.interrupts.run` wraps `asyncio.run`)
    passes it on to its callers.

What the code still does against (b) and (c) is listed in `ALLOWED`, each entry with why and
who removes it. The list may only shrink: an entry that is no longer true fails the test, so
that whoever removes a violation also removes its entry.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "batch"

# --- what is allowed today ------------------------------------------------------------------

# (module, rule) → why it is still there. Rules: "imports batch.emulator", "print", "exit",
# "asyncio.run", "signal handler", "input", "environment". Issue 10, item 2 ("a library with a
# thin CLI") moves each of these into batch/cli; delete the entry with the violation.
ALLOWED: dict[tuple[str, str], str] = {}

# --- reading the package ------------------------------------------------------------------------

RULES = ("imports batch.emulator", "print", "exit", "asyncio.run", "signal handler", "input", "environment")
WRAPPED = ("exit", "asyncio.run", "signal handler", "input", "environment")  # passed on by a wrapper


@dataclass
class Module:
    name: str  # batch.run.lifecycle; a package is named by its __init__: batch.graph
    path: Path
    tree: ast.Module
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # module imported → first line
    names: dict[str, str] = field(default_factory=dict)  # local name → what it stands for (dotted)


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def read_package() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name, is_package = module_name(path)
        modules[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)), is_package)
    for module in modules.values():
        collect_imports(module, modules)
    return modules


def resolve_from(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect_imports(module: Module, modules: dict[str, Module]) -> None:
    """Every import of `module` (at any depth, `if TYPE_CHECKING:` included), as the most
    specific module of the package it names: `from batch.graph import client` is batch.graph.client
    when that is a module, batch.graph otherwise. Also remembers what each local name stands
    for (`import asyncio as aio` → aio: asyncio; `from os import environ` → environ: os.environ)."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                    alias.name.split(".")[0]
                if alias.name.split(".")[0] == "batch":
                    module.imports.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = resolve_from(module, node)
            for alias in node.names:
                module.names[alias.asname or alias.name] = f"{source}.{alias.name}"
                if source.split(".")[0] == "batch":
                    target = f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    module.imports.setdefault(target, node.lineno)


def dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """`os.environ.get` → "os.environ.get", with the first name replaced by what it was
    imported as; None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([names.get(node.id, node.id), *reversed(parts)])


DIRECT = {
    "print": "print", "builtins.print": "print",
    "sys.exit": "exit", "os._exit": "exit", "exit": "exit", "quit": "exit",
    "asyncio.run": "asyncio.run", "asyncio.Runner": "asyncio.run",
    "signal.signal": "signal handler",
    "input": "input", "builtins.input": "input", "getpass.getpass": "input",
    "os.getenv": "environment", "os.putenv": "environment", "os.unsetenv": "environment",
}


def uses(module: Module) -> Iterator[tuple[str, int, str]]:
    """(rule, line, what) for each direct use in `module` of what only the CLI may do."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func, module.names)
            if name in DIRECT:
                yield DIRECT[name], node.lineno, name
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "add_signal_handler":
                yield "signal handler", node.lineno, "add_signal_handler"
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if dotted(exc, module.names) in ("SystemExit", "builtins.SystemExit"):
                yield "exit", node.lineno, "raise SystemExit"
        elif isinstance(node, (ast.Attribute, ast.Name)) and dotted(node, module.names) in ("os.environ", "os.environb"):
            yield "environment", node.lineno, "os.environ"


def functions(module: Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in module.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def with_local_functions(module: Module) -> dict[str, str]:
    """The module's names, plus its own top-level functions under their full names."""
    return {**{f.name: f"{module.name}.{f.name}" for f in functions(module)}, **module.names}


def wrappers(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Top-level functions that do a CLI thing, themselves or through another such function
    ("batch.interrupts.run" → {"asyncio.run", "signal handler"}): calling them does it too.
    What a module may do (config reading the environment, anything in the CLI or the
    emulator) is not passed on: reading the environment through batch.config is the design."""
    found: dict[str, set[str]] = {}
    changed = True
    while changed:
        changed = False
        for module in modules.values():
            names = with_local_functions(module)
            for function in functions(module):
                body = Module(module.name, module.path, ast.Module(body=[function], type_ignores=[]),
                              module.is_package, names=names)
                rules = {rule for rule, _, _ in [*uses(body), *wrapped_uses(body, found)]
                         if rule in WRAPPED and not exempt(module.name, rule)}
                key = f"{module.name}.{function.name}"
                if rules - found.get(key, set()):
                    found[key] = found.get(key, set()) | rules
                    changed = True
    return found


def wrapped_uses(module: Module, wrapped: dict[str, set[str]]) -> Iterator[tuple[str, int, str]]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func, module.names)
            for rule in sorted(wrapped.get(name or "", ())):
                yield rule, node.lineno, f"{name}()"


def exempt(module: str, rule: str) -> bool:
    if module == "batch.cli" or module.startswith("batch.cli.") or module == "batch.__main__":
        return True
    if module == "batch.emulator" or module.startswith("batch.emulator."):
        return True  # a server program of its own; its rooms import each other freely
    return module == "batch.config" and rule == "environment"


def in_emulator(name: str) -> bool:
    return name == "batch.emulator" or name.startswith("batch.emulator.")


def violations(modules: dict[str, Module]) -> dict[tuple[str, str], list[str]]:
    """(module, rule) → where (line and what), for every rule of (b) and (c) broken."""
    found: dict[tuple[str, str], list[str]] = {}
    wrapped = wrappers(modules)
    for module in modules.values():
        for target, line in module.imports.items():
            if in_emulator(target) and not exempt(module.name, "imports batch.emulator"):
                found.setdefault((module.name, "imports batch.emulator"), []).append(f"line {line}: {target}")
        local = Module(module.name, module.path, module.tree, module.is_package, names=with_local_functions(module))
        for rule, line, what in [*uses(module), *wrapped_uses(local, wrapped)]:
            if not exempt(module.name, rule):
                found.setdefault((module.name, rule), []).append(f"line {line}: {what}")
    return found


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return read_package()


# --- (a) no cycle ---------------------------------------------------------------------------

def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing
    itself), by Tarjan's algorithm, each as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(path_through(sorted(component), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One cycle inside `component`, from its first module back to it (breadth first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, set()) & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return component


def test_the_import_graph_of_batch_has_no_cycle(modules: dict[str, Module]) -> None:
    graph = {name: {t for t in m.imports if t in modules and t != name} for name, m in modules.items()}
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# The floors of the house, lowest first (ARCHITECTURE.md): a module may import its own floor
# and those below it, never one above. The emulator stands apart (its walls: below).
LAYERS = (
    ("batch.version", "batch.errors", "batch.outcome", "batch.config", "batch.profiles", "batch.rules",
     "batch.userschema", "batch.passwords"),
    ("batch.io", "batch.graph", "batch.auth"),
    ("batch.verbs",),
    ("batch.run", "batch.export", "batch.doctor"),
    ("batch.cli", "batch.__main__", "batch"),
)


def floor(name: str) -> int | None:
    """The floor of a module: that of the longest prefix in LAYERS that names it."""
    found: tuple[int, int] | None = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and (found is None or len(prefix) > found[1]):
                found = (level, len(prefix))
    return None if found is None else found[0]


def test_no_import_runs_from_a_lower_floor_up(modules: dict[str, Module]) -> None:
    upward = [f"{name} (floor {floor(name)}) imports {target} (floor {floor(target)}), line {line}"
              for name, module in modules.items() if not name.startswith("batch.emulator")
              for target, line in module.imports.items()
              if target in modules and not target.startswith("batch.emulator")
              and (floor(name) or 0) < (floor(target) or 0)]
    assert upward == [], "\n".join(upward)


def test_every_module_has_a_floor(modules: dict[str, Module]) -> None:
    assert [name for name in modules if not name.startswith("batch.emulator") and floor(name) is None] == []


def test_the_floors_tell_up_from_down() -> None:
    assert floor("batch.verbs.create") == 2 and floor("batch.run.lifecycle") == 3 and floor("batch") == 4
    assert floor("batch.errors") == 0 and floor("batch.graph.client") == 1


# --- (b) the emulator's walls ---------------------------------------------------------------

def emulator_imports_outside(modules: dict[str, Module]) -> set[str]:
    """Every import by a module of batch/emulator/ of a module of `batch` outside that folder.
    There is no exception: issue 11 gave the emulator its own user schema and rules
    (batch/emulator/schema.py, written from Graph's documentation), so that a wrong belief of
    the client's validator fails a test instead of being copied into both."""
    return {f"{m.name} line {line}: {target}" for m in modules.values() if in_emulator(m.name)
            for target, line in m.imports.items() if not in_emulator(target) and target.split(".")[0] == "batch"}


def test_the_emulator_imports_nothing_of_batch_outside_its_folder(modules: dict[str, Module]) -> None:
    assert emulator_imports_outside(modules) == set()


@pytest.mark.parametrize("source", ["from .. import rules", "from ..userschema import USER_PROPERTIES",
                                    "from batch.rules import is_email", "import batch.userschema",
                                    "def late():\n    from ...batch import errors"])
def test_the_emulator_wall_sees_every_way_out(modules: dict[str, Module], source: str) -> None:
    """The wall test can fail: an emulator module importing the client's rules, relatively,
    absolutely or inside a function, is reported."""
    name = "batch.emulator.sneaky"
    sneaky = Module(name, PACKAGE / "emulator" / "sneaky.py", ast.parse(source), is_package=False)
    collect_imports(sneaky, modules)
    assert emulator_imports_outside({**modules, name: sneaky}) != set()


def test_only_the_cli_chooses_the_emulator(modules: dict[str, Module]) -> None:
    found = {k: v for k, v in violations(modules).items() if k[1] == "imports batch.emulator"}
    assert set(found) <= set(ALLOWED), unexpected(found)


# --- (c) only the CLI prints, exits, runs the loop, handles signals, prompts, reads the env ----

def unexpected(found: dict[tuple[str, str], list[str]]) -> str:
    return "\n".join(f"{module}: {rule} ({'; '.join(where)})" for (module, rule), where in sorted(found.items())
                     if (module, rule) not in ALLOWED)


def test_only_the_cli_does_what_a_program_does(modules: dict[str, Module]) -> None:
    found = {k: v for k, v in violations(modules).items() if k[1] != "imports batch.emulator"}
    assert set(found) <= set(ALLOWED), "only batch/cli may do these:\n" + unexpected(found)


def test_every_allowed_violation_still_exists(modules: dict[str, Module]) -> None:
    """The allow-list only shrinks: remove an entry once its module stops doing that."""
    found = violations(modules)
    stale = sorted(set(ALLOWED) - set(found))
    assert stale == [], f"no longer true, remove from ALLOWED: {stale}"


def test_the_checks_see_what_they_look_for() -> None:
    source = (
        "import os, sys, signal\nimport asyncio as aio\nfrom os import environ\nfrom batch import interrupts\n"
        "def f(loop):\n    print('x')\n    sys.exit(1)\n    aio.run(None)\n    signal.signal(2, None)\n"
        "    loop.add_signal_handler(15, None)\n    input()\n    os.getenv('A')\n    environ.get('B')\n"
        "    raise SystemExit(2)\n"
        "def g():\n    interrupts.run(None)\n"
    )
    module = Module("batch.example", PACKAGE / "example.py", ast.parse(source), False)
    collect_imports(module, {})
    assert {rule for rule, _, _ in uses(module)} == {"print", "exit", "asyncio.run", "signal handler", "input",
                                                       "environment"}
    assert [(rule, line) for rule, line, _ in wrapped_uses(module, {"batch.interrupts.run": {"asyncio.run"}})] == \
        [("asyncio.run", 16)]
    assert module.imports == {"batch": 4}
    assert set(RULES) >= {rule for _, rule in ALLOWED}
