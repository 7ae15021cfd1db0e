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


def test_the_log_commands_start_without_torch_or_numba():
    # `neurosim inspect` answered in 3-9 s, nearly all of it importing torch and numba
    import subprocess
    import sys

    code = ("import sys, neurosim.cli, neurosim.log_reader; "
            "print(sorted(m for m in ('torch', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    # and the package still offers everything as before
    code = "import neurosim as ns; print(ns.Network.__name__, ns.rules.STDP.__name__, len(ns.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[:2] == ["Network", "STDP"], out.stderr
