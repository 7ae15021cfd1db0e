"""examples/plot_gallery.py's outputs, and docs/log_format.md against what logs hold."""

import os
import re
import subprocess
import sys

import pytest

import neurosim as ns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_gallery_defaults_are_under_runs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_gallery", os.path.join(ROOT, "examples",
                                                                               "plot_gallery.py"))
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    args = gallery.parse_arguments([])
    assert (args.out, args.log) == (os.path.join("runs", "gallery"), os.path.join("runs", "gallery.h5"))
    assert gallery.parse_arguments(["--out", "docs/img"]).out == "docs/img"  # only when asked


@pytest.mark.slow
def test_gallery_writes_under_runs_and_keeps_its_log(tmp_path):
    """By default the pictures go to runs/gallery/ (never over the tracked docs/img) and
    the run's log stays as runs/gallery.h5, as the docstring says."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "plot_gallery.py"),
                           "--neurons", "400", "--duration", "200"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["runs"]  # no docs/ folder made
    assert sorted(os.listdir(tmp_path / "runs" / "gallery")) == [
        "plot_isi.png", "plot_raster.png", "plot_rates.png", "plot_state.png", "plot_weights.png"]
    with ns.LogReader(tmp_path / "runs" / "gallery.h5") as log:
        assert log.completed and log.steps == 2000
    docstring = open(os.path.join(ROOT, "examples", "plot_gallery.py")).read().split('"""')[1]
    assert "runs/gallery.h5" in docstring and "runs/gallery/" in docstring


def documented_backends():
    text = open(os.path.join(ROOT, "docs", "log_format.md")).read()
    row = next(line for line in text.splitlines() if line.startswith("| `backend` |"))
    return set(re.findall(r"`(\w+)`", row.split("|")[4]))


@pytest.mark.parametrize("backend", [None, "torch", "numba"])
def test_the_backend_attribute_is_documented(tmp_path, backend):
    path = str(tmp_path / "b.h5")
    net = ns.Network(dt=0.1, seed=1, log=path, **({"backend": backend} if backend else {}))
    net.population(3, ns.PoissonSource(rate=10.0), name="p")
    net.run(1.0, progress=False)
    with ns.LogReader(path) as log:
        assert log.attrs["backend"] in documented_backends()
