"""The command line's contract: several logs, outputs that would replace an input,
messages that name flags, --version, one-line usage errors."""

import json
import os
import subprocess
import sys

import pytest

import neurosim as ns
from neurosim.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def small_log(path, seed=3):
    net = ns.Network(dt=0.1, seed=seed, batch=2, log=str(path))
    pop = net.population(20, ns.PoissonSource(rate=40.0), name="p")
    net.spike_monitor(pop)
    net.run(200.0, progress=False)
    return str(path)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return [small_log(folder / "cuba-1.h5", 3), small_log(folder / "cuba-2.h5", 4)]


def run(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect_summarises_each_of_several_logs(logs, tmp_path, capsys):
    rc, out, err = run(["inspect", *logs], capsys)
    assert rc == 0 and err == ""
    assert out.count("log:        ") == 2 and logs[0] in out and logs[1] in out
    rc, out, _ = run(["inspect", "--json", *logs], capsys)
    summaries = json.loads(out)
    assert rc == 0 and [s["file"] for s in summaries] == logs
    assert summaries[0]["seed"] == 3 and summaries[1]["seed"] == 4
    missing = str(tmp_path / "gone.h5")
    rc, out, err = run(["inspect", logs[0], missing], capsys)
    assert rc == 1 and out.count("log:        ") == 1
    assert err.count("\n") == 1 and "gone.h5" in err and "does not exist" in err


@pytest.mark.parametrize("argv", [["plot", "{a}", "{b}", "raster"], ["export", "{a}", "{b}", "--nwb", "x.nwb"]])
def test_plot_and_export_want_one_log_and_say_so(logs, argv, tmp_path, capsys):
    argv = [a.format(a=logs[0], b=logs[1]) for a in argv]
    rc, out, err = run(argv, capsys)
    assert rc == 1 and err.count("\n") == 1 and out == ""
    assert f"give one log; got 2: {logs[0]}, {logs[1]}" in err


def test_export_never_writes_over_the_log(logs, tmp_path, capsys):
    pytest.importorskip("pynwb")
    log = str(tmp_path / "run.h5")
    small_log(log)
    before = open(log, "rb").read()
    link = tmp_path / "link.nwb"
    link.symlink_to(log)
    hard = tmp_path / "hard.nwb"
    os.link(log, hard)
    for target in (log, str(link), str(hard), os.path.relpath(log)):
        rc, out, err = run(["export", log, "--nwb", target, "--overwrite"], capsys)
        assert rc == 1 and err.count("\n") == 1 and "--nwb" in err and "log being read" in err, err
        assert open(log, "rb").read() == before
    # and the Python function refuses too (it would write the .partial file, then rename)
    from neurosim.analysis.nwb_export import export_nwb
    with ns.LogReader(log) as reader:
        for target in (log, str(link)):
            with pytest.raises(ValueError, match="is the log being exported"):
                export_nwb(reader, target, overwrite=True)
    assert open(log, "rb").read() == before
    rc, _, _ = run(["plot", log, "raster", "--out", str(tmp_path / "run.png")], capsys)
    assert rc == 0


def test_export_messages_name_flags_not_parameters(logs, tmp_path, capsys):
    pytest.importorskip("pynwb")
    out = tmp_path / "x.nwb"
    out.write_bytes(b"keep")
    rc, _, err = run(["export", logs[0], "--nwb", str(out)], capsys)
    assert rc == 1 and "--overwrite" in err and "overwrite=True" not in err
    assert out.read_bytes() == b"keep"
    for argv, flag in ((["--batch", "2"], "--batch 2"), (["--population", "p", "--population", "p"],
                                                        "--population p: given twice"),
                       (["--population", "q"], "--population q")):
        rc, _, err = run(["export", logs[0], "--nwb", str(tmp_path / "y.nwb"), *argv], capsys)
        assert rc == 1 and flag in err and "=" not in err.split("error:")[1], err


def test_version_and_usage_errors_are_one_line(capsys):
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0 and out.strip() == f"neurosim {ns.__version__}"
    for argv in (["plot", "x.h5", "pie"], ["inspect"], ["inspect", "x.h5", "--size", "2"], []):
        rc, out, err = run(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("neurosim"), err


def test_the_module_runs_as_a_command(logs):
    proc = subprocess.run([sys.executable, "-m", "neurosim.cli", "--version"], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"neurosim {ns.__version__}"
