"""neurosim plot and the inspect filters, on a real small run."""

import json
import os

import matplotlib.image
import numpy as np
import pytest

import neurosim as ns
from neurosim import rules
from neurosim.cli import main


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("plots") / "run.h5")
    net = ns.Network(dt=0.1, seed=5, batch=2, log=path)
    src = net.population(60, ns.PoissonSource(rate=30.0), name="src")
    exc = net.population(40, ns.LIF(tau_m=10.0), name="exc")
    dense = net.projection(src, exc, ns.FixedProbability(0.3), weight=ns.Uniform(0.0, 4.0),
                           sparse=False, name="dense")
    sparse = net.projection(src, exc, ns.FixedProbability(0.3), weight=ns.Uniform(0.0, 4.0),
                            sparse=True, name="sparse")
    net.add_rule(dense, rules.STDP(w_max=4.0))
    net.spike_monitor(src)
    net.spike_monitor(exc)
    net.state_monitor(exc, ["v", "i_e"], neurons=[0, 3, 7], every=2)
    net.weight_monitor(dense, every=1000)
    net.weight_monitor(sparse, every=1000)
    net.run(300.0, progress=False)
    return path


def png_size(path):
    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]


@pytest.mark.parametrize("kind,extra", [
    ("raster", []), ("raster", ["--population", "exc", "--from", "50", "--to", "150"]),
    ("rates", ["--bin", "10"]), ("isi", ["--population", "src", "--batch", "1"]),
    ("weights", []), ("weights", ["--projection", "sparse", "--snapshot", "0"]),
    ("weights", ["--projection", "dense", "--tiles", "6x10"]),
    ("state", ["--variable", "v", "--neurons", "3", "7"])])
def test_each_plot_writes_a_png_of_the_requested_size(log, tmp_path, kind, extra, capsys):
    out = str(tmp_path / f"{kind}.png")
    assert main(["plot", log, kind, "--out", out, "--size", "640x420", *extra]) == 0
    assert capsys.readouterr().out.strip() == out
    assert os.path.getsize(out) > 5000
    assert png_size(out) == (640, 420)


@pytest.mark.parametrize("args,message", [
    (["raster", "--population", "nope"], "--population nope: no spikes recorded for population 'nope'"),
    (["rates", "--from", "500"], "--from 500: empty time window"),
    (["raster", "--from", "100", "--to", "100"], "--to 100: empty time window"),
    (["raster", "--batch", "5"], "--batch 5: batch row 5 does not exist"),
    (["weights", "--projection", "nope"], "--projection nope: no weight snapshots of 'nope'"),
    (["weights", "--tiles", "28x28"], "--tiles 28x28: tiles 28x28 need 784 presynaptic neurons"),
    (["weights", "--snapshot", "7"], "--snapshot 7: 'dense' has 3 snapshots"),
    (["state", "--variable", "w"], "--variable w: monitor 'exc' did not record 'w'"),
    (["state", "--monitor", "m"], "--monitor m: no state monitor 'm'"),
    (["state", "--neurons", "1"], "--neurons 1: neurons [1] were not recorded")])
def test_plot_errors_are_one_line_and_exit_1(log, tmp_path, args, message, capsys):
    """Each names the flag to change (the library's own messages name its parameters)."""
    assert main(["plot", log, *args[:1], "--out", str(tmp_path / "x.png"), *args[1:]]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args,flag", [
    (["raster", "--from", "nan"], "argument --from"), (["raster", "--to", "-5"], "argument --to"),
    (["rates", "--bin", "0"], "argument --bin"), (["rates", "--bin", "nan"], "argument --bin"),
    (["state", "--neurons", "-1"], "argument --neurons"), (["weights", "--tiles", "0x5"], "argument --tiles"),
    (["raster", "--size", "big"], "argument --size"), (["raster", "--batch", "-1"], "argument --batch")])
def test_plot_refuses_malformed_numbers_in_one_line(log, tmp_path, args, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plot", log, *args[:1], "--out", str(tmp_path / "x.png"), *args[1:]])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and flag in err and err.count("\n") == 1, err


def test_a_log_without_weights_or_state_says_so(tmp_path, capsys):
    path = str(tmp_path / "bare.h5")
    net = ns.Network(dt=0.1, seed=1, log=path)
    pop = net.population(10, ns.PoissonSource(rate=5.0), name="p")
    net.spike_monitor(pop)
    net.run(100.0, progress=False)
    assert main(["plot", path, "weights", "--out", str(tmp_path / "w.png")]) == 1
    assert "no weight snapshots" in capsys.readouterr().err
    assert main(["plot", path, "state", "--out", str(tmp_path / "s.png")]) == 1
    assert "no sampled state" in capsys.readouterr().err
    assert main(["plot", path, "raster", "--from", "0", "--to", "0.05",
                 "--out", str(tmp_path / "r.png")]) == 1
    assert "no spikes of p" in capsys.readouterr().err


def test_inspect_filters_count_what_they_say(log, capsys):
    reader = ns.LogReader(log)
    steps, neurons, rows = reader.spikes("exc")
    assert main(["inspect", log, "--json", "--population", "exc", "--from", "100", "--to", "200",
                 "--batch", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["populations"]) == ["exc"]
    keep = (steps >= 1000) & (steps < 2000) & (rows == 1)
    entry = summary["populations"]["exc"]
    assert entry["spikes"] == int(keep.sum()) > 0
    assert entry["window_ms"] == [100.0, 200.0]
    assert entry["rate_hz"] == pytest.approx(keep.sum() / (40 * 0.1))
    # the windowed reader returns exactly those events
    s, n, r = reader.spikes("exc", 100.0, 200.0, batch=1)
    np.testing.assert_array_equal(s, steps[keep])
    np.testing.assert_array_equal(n, neurons[keep])
    assert main(["inspect", log, "--population", "exc", "--from", "100"]) == 0
    assert "(100-300 ms, all rows)" in capsys.readouterr().out
    assert main(["inspect", log, "--population", "zzz"]) == 1
    assert "no population 'zzz'" in capsys.readouterr().err


def test_inspect_reads_only_the_window_of_a_large_log(tmp_path):
    """A window of a log with a million events is found by binary search and only its
    rows are read (so a large log summarises quickly; the speed is not timed here):
    the neuron column, whose indices are checked, and the batch column for --batch."""
    path = str(tmp_path / "big.h5")
    net = ns.Network(dt=0.1, seed=2, log=path)
    pop = net.population(1000, ns.PoissonSource(rate=200.0), name="p")
    net.spike_monitor(pop)
    net.run(5000.0, progress=False)
    reader = ns.LogReader(path)
    total = reader.summary("p")["populations"]["p"]["spikes"]
    assert total > 900_000
    rows_read = []
    original = reader.read_rows
    reader.read_rows = lambda key, lo, hi: rows_read.append(hi - lo) or original(key, lo, hi)
    summary = reader.summary("p", 2500.0, 2510.0, batch=0)
    in_window = summary["populations"]["p"]["spikes"]
    assert summary["populations"]["p"]["rate_hz"] == pytest.approx(200.0, rel=0.1)
    assert 0 < sum(rows_read) <= 2 * in_window < total / 100


def test_custom_monitor_names_recording_start_and_bad_options(tmp_path, capsys):
    path = str(tmp_path / "named.h5")
    net = ns.Network(dt=0.1, seed=4, log=path)
    src = net.population(30, ns.PoissonSource(rate=50.0), name="src")
    net.run(900.0, progress=False)
    net.spike_monitor(src, name="inputs")  # recording starts at 900 ms
    net.run(100.0, progress=False)
    out = str(tmp_path / "r.png")
    assert main(["plot", path, "raster", "--out", out]) == 0
    capsys.readouterr()
    assert main(["inspect", path, "--json", "--population", "inputs"]) == 0
    entry = json.loads(capsys.readouterr().out)["populations"]["src"]
    assert entry["window_ms"] == [900.0, 1000.0] and entry["rate_hz"] == pytest.approx(50.0, rel=0.3)
    from neurosim.plots.spikes import Window
    window = Window.of(ns.LogReader(path), None, None, None, 0)
    assert window.start_ms == 900.0  # rates are not diluted by the unrecorded 900 ms
    assert main(["plot", path, "rates", "--bin", "1e-9", "--out", out]) == 1
    assert "too small" in capsys.readouterr().err
    assert main(["plot", path, "rates", "--out", str(tmp_path / "r.svg")]) == 1
    assert "must name a .png file" in capsys.readouterr().err


def test_windows_stay_right_after_the_clock_is_set_back(tmp_path):
    path = str(tmp_path / "rewind.h5")
    net = ns.Network(dt=0.1, seed=4, log=path)
    src = net.population(30, ns.PoissonSource(rate=100.0), name="src")
    net.spike_monitor(src)
    net.run(10.0, progress=False)
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    net.run(10.0, progress=False)
    net.load_state_dict(saved)  # back to 10 ms: the next run logs steps 100.. again
    net.run(10.0, progress=False)
    reader = ns.LogReader(path)
    assert not reader.steps_sorted
    steps, _, _ = reader.spikes("src")
    expected = int(((steps >= 50) & (steps < 150)).sum())
    assert len(reader.spikes("src", 5.0, 15.0)[0]) == expected
    assert reader.summary("src", 5.0, 15.0)["populations"]["src"]["spikes"] == expected


def captured_figure(monkeypatch, name):
    """Make module ``name``'s ``save`` keep the figure it is given (and still write the PNG).
    (By module name: ``neurosim.plots.state`` the attribute is the function.)"""
    import importlib

    module = importlib.import_module(name)
    figures = []
    original = module.save
    monkeypatch.setattr(module, "save", lambda fig, path: figures.append(fig) or original(fig, path))
    return figures


def test_state_draws_v_by_default_not_the_first_name(log, tmp_path, monkeypatch, capsys):
    """The monitor recorded ["v", "i_e"]; v is drawn, not i_e (first in alphabetical order)."""
    figures = captured_figure(monkeypatch, "neurosim.plots.state")
    assert main(["plot", log, "state", "--out", str(tmp_path / "s.png")]) == 0
    assert figures[0].axes[0].get_ylabel().startswith("v (")
    path = str(tmp_path / "no-v.h5")  # without v: the first variable the monitor was given
    net = ns.Network(dt=0.1, seed=1, log=path)
    pop = net.population(5, ns.LIF(), name="n")
    net.state_monitor(pop, ["i_e", "i_i"], neurons=[0], every=5)
    net.run(20.0, progress=False)
    assert main(["plot", path, "state", "--out", str(tmp_path / "s2.png")]) == 0
    assert figures[1].axes[0].get_ylabel().startswith("i_e")
    assert ns.LogReader(path).state_variables("n") == ["i_e", "i_i"]


def test_long_runs_get_a_seconds_axis_without_offset(log, tmp_path, monkeypatch, capsys):
    """A log whose spikes are 1,000,000 ms in (the clock shifted by an h5py edit of a copy)."""
    import shutil

    import h5py

    late = str(tmp_path / "late.h5")
    shutil.copy(log, late)
    shift = 10_000_000  # steps of 0.1 ms
    with h5py.File(late, "r+") as f:
        for name in ("src", "exc"):
            step = f[f"spikes/{name}/step"]
            step[...] = step[...] + shift
            step.attrs["start_step"] = shift
        f.attrs["steps"] = int(f.attrs["steps"]) + shift
    figures = captured_figure(monkeypatch, "neurosim.plots.spikes")
    for kind in ("raster", "rates"):
        assert main(["plot", late, kind, "--from", "1000100", "--to", "1000250",
                     "--out", str(tmp_path / f"{kind}.png")]) == 0
        ax = figures[-1].axes[0]
        figures[-1].canvas.draw()
        assert ax.get_xlabel() == "time (s)"
        assert ax.xaxis.get_major_formatter().get_offset() == ""
        assert ax.get_xlim() == pytest.approx((1000.1, 1000.25))
    assert main(["plot", log, "raster", "--out", str(tmp_path / "short.png")]) == 0
    assert figures[-1].axes[0].get_xlabel() == "time (ms)"  # short runs stay in ms


def test_receptive_field_tiles_fill_the_canvas(log, tmp_path, monkeypatch, capsys):
    """40 tiles of 10x6 on a 1000x600 canvas: a square 7x6 grid drew them in a tall
    block covering a third of it; the grid is now shaped to the canvas."""
    figures = captured_figure(monkeypatch, "neurosim.plots.weights")
    assert main(["plot", log, "weights", "--projection", "dense", "--tiles", "10x6",
                 "--out", str(tmp_path / "w.png")]) == 0
    fig = figures[0]
    fig.canvas.draw()
    box = fig.axes[0].images[0].get_window_extent()
    share = box.width * box.height / (fig.bbox.width * fig.bbox.height)
    assert share > 0.55, share
