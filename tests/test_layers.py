"""Storage below the domain: ``neurosim.recording`` (and the log readers' helpers)
import nothing of the network, populations, projections, monitors, rules or backends,
not even for type hints or inside functions (the engine issue's layering rule)."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "neurosim")
DOMAIN = ("neurosim.network", "neurosim.population", "neurosim.projection", "neurosim.monitors",
          "neurosim.rules", "neurosim.backends", "neurosim.modulators", "neurosim.models")


def imported_modules(path: str) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    out = set()
    for node in ast.walk(tree):  # every import: top level, TYPE_CHECKING, inside functions
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_storage_imports_nothing_of_the_domain():
    storage = [os.path.join(ROOT, "recording", f) for f in os.listdir(os.path.join(ROOT, "recording"))
               if f.endswith(".py")]
    storage += [os.path.join(ROOT, f) for f in ("log_open.py", "log_recovery.py", "log_checks.py")]
    offending = {}
    for path in storage:
        bad = sorted(m for m in imported_modules(path) if m.startswith(DOMAIN))
        if bad:
            offending[os.path.relpath(path, ROOT)] = bad
    assert not offending, offending
