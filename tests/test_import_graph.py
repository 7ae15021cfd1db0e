"""No import circles inside the package (the engine issue's "narrow views" item).

The graph counts every import between neurosim modules that runs: at module level and
inside functions (an import moved into a function still closes the circle; it only hides
it from Python until the function runs). Imports under ``if TYPE_CHECKING:`` are
annotations only and are left out of the circle check, but the layering test below still
reads them. ``neurosim/__init__.py`` imports lazily (PEP 562 ``_EXPORTS``), so it has no
edges of its own; ``from neurosim import X`` counts as importing the module that defines X.
Subpackage ``__init__`` files that re-export count like any module.
"""

import ast
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "neurosim")


def module_files() -> dict[str, str]:
    """Module name -> path, for every module of the package (a package is its __init__)."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = os.path.join(folder, name)
    return out


MODULES = module_files()


def lazy_exports() -> dict[str, str]:
    """The top-level package's ``_EXPORTS`` map: public name -> defining module."""
    tree = ast.parse(open(MODULES["neurosim"], encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


EXPORTS = lazy_exports()


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def known(name: str) -> str | None:
    """The longest prefix of a dotted name that is a neurosim module."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The neurosim modules an import statement in ``module`` loads by name."""
    out = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "neurosim" and known(alias.name):
                out.add(known(alias.name))
        return out
    if node.level:  # relative: from its package, one level up per extra dot
        package = module.split(".") if MODULES[module].endswith("__init__.py") else module.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "neurosim":
        return out
    for alias in node.names:
        if base == "neurosim" and alias.name in EXPORTS:
            out.add(EXPORTS[alias.name])  # what the lazy __getattr__ imports for this name
        elif f"{base}.{alias.name}" in MODULES:
            out.add(f"{base}.{alias.name}")
        elif known(base):
            out.add(known(base))
    return out


def with_packages(module: str, target: str) -> list[str]:
    """What importing ``target`` from ``module`` runs: Python runs every enclosing package's
    ``__init__`` first (``neurosim.rules.base`` runs ``neurosim/rules/__init__.py``, which
    imports every rule), except the packages ``module`` itself sits in, already running."""
    parts = target.split(".")
    loaded = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    inside = module if MODULES[module].endswith("__init__.py") else module.rpartition(".")[0]
    return [m for m in loaded if m != module and not (inside == m or inside.startswith(m + "."))]


def imports_of(module: str) -> tuple[dict[str, int], dict[str, int]]:
    """(runtime imports, type-only imports) of a module: target -> line of the first."""
    tree = ast.parse(open(MODULES[module], encoding="utf-8").read(), MODULES[module])
    runtime, typing_only = {}, {}

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in targets(module, node):
                for loaded in with_packages(module, target):
                    (typing_only if type_only else runtime).setdefault(loaded, node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return runtime, typing_only


def graph(include_type_only: bool = False) -> dict[str, dict[str, int]]:
    out = {}
    for module in MODULES:
        runtime, typing_only = imports_of(module)
        out[module] = {**typing_only, **runtime} if include_type_only else runtime
    return out


def strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components with more than one module (or a module importing itself)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def shortest_cycle(edges: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """The shortest circle through the component (breadth first from each member)."""
    members, best = set(component), None
    for start in component:
        previous, frontier, closed = {start: None}, [start], None
        while frontier and closed is None:
            following = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w == start and closed is None:
                        closed = v
                    elif w in members and w not in previous:
                        previous[w] = v
                        following.append(w)
            frontier = following
        if closed is not None:
            path = [closed]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            cycle = path[::-1] + [start]
            if best is None or len(cycle) < len(best):
                best = cycle
    return best or component


def describe(edges: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(steps + [cycle[-1]])


def test_the_graph_sees_the_package():
    # guard against a parser that silently finds nothing
    edges = graph()
    assert len(MODULES) > 50
    assert "neurosim.rules.base" in edges["neurosim.rules"]
    assert "neurosim.network" in edges["neurosim.networks.cuba"]
    assert edges["neurosim"] == {}  # the lazy map is not an import


def test_no_import_circles():
    edges = graph()
    circles = [describe(edges, shortest_cycle(edges, c)) for c in strongly_connected(edges)]
    assert not circles, "import circles (runtime and in-function imports):\n  " + "\n  ".join(circles)


def test_the_circle_finder_finds_circles():
    edges = {"a": {"b": 1}, "b": {"c": 2, "a": 5}, "c": {"a": 3}, "d": {"d": 4}, "e": {"a": 1}}
    components = strongly_connected(edges)
    assert sorted(components) == [["a", "b", "c"], ["d"]]
    assert shortest_cycle(edges, ["a", "b", "c"]) in (["a", "b", "a"], ["b", "a", "b"])
    assert describe(edges, ["a", "b", "a"]) == "a (line 1) -> b (line 5) -> a"


# The domain describes the model; backends run it; the network is the front door that
# holds them together. Below the front door nothing names it, not even in a type hint:
# the parts get the narrow views they need (neurosim.views, neurosim.rules.host,
# neurosim.backends.view), which the network satisfies; and the domain names no backend.
DOMAIN = ("neurosim.rules", "neurosim.population", "neurosim.projection", "neurosim.monitors",
          "neurosim.modulators", "neurosim.derived_signals", "neurosim.models", "neurosim.connectors",
          "neurosim.inputs", "neurosim.schedule", "neurosim.views")
FRONT = ("neurosim.network", "neurosim.networks")


def test_the_domain_imports_neither_backends_nor_the_network():
    edges = graph(include_type_only=True)
    offending = {m: sorted(t for t in edges[m] if t.startswith(FRONT + ("neurosim.backends",)))
                 for m in MODULES if m.startswith(DOMAIN)}
    offending = {m: t for m, t in offending.items() if t}
    assert not offending, offending


def test_the_backends_do_not_import_the_network():
    edges = graph(include_type_only=True)
    offending = {m: sorted(t for t in edges[m] if t.startswith(FRONT))
                 for m in MODULES if m.startswith("neurosim.backends")}
    offending = {m: t for m, t in offending.items() if t}
    assert not offending, offending


def test_every_module_imports_first_in_a_fresh_interpreter():
    # one interpreter per module would cost seconds each (torch, numba); instead one child
    # forgets every neurosim module before each import, so each is tried as the first
    code = ("import importlib, sys, traceback\n"
            "failed = {}\n"
            "for name in sys.argv[1:]:\n"
            "    for loaded in [m for m in sys.modules if m == 'neurosim' or m.startswith('neurosim.')]:\n"
            "        del sys.modules[loaded]\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception as error:\n"
            "        failed[name] = repr(error)\n"
            "print(failed)\n")
    modules = sorted(m for m in MODULES if not m.startswith("neurosim.plots"))
    out = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "{}", out.stdout


def test_the_main_modules_import_alone():
    # and truly fresh, in any order, for the modules people import first
    for order in (["neurosim.rules", "neurosim.network"], ["neurosim.backends.numba_backend", "neurosim.rules"],
                  ["neurosim.backends.torch_rules", "neurosim.modulators", "neurosim.network"],
                  ["neurosim.monitors", "neurosim.datasets", "neurosim.networks"]):
        code = "; ".join(f"import {m}" for m in order)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (order, out.stderr)
