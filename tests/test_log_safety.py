"""Log safety: one writer per path, a readable file at every moment, Ctrl-C at step
boundaries, resuming after an interrupt, a network that grows between runs.

The concurrency, kill and interrupt checks run real processes and send real signals.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import neurosim as ns
from neurosim.cli import main
from neurosim.recording import LogInUseError, LogReplacedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}


def poisson_net(log=None, seed=3, backend=None):
    net = ns.Network(dt=0.1, seed=seed, log=log, backend=backend)
    src = net.population(40, ns.PoissonSource(rate=80.0), name="src")
    out = net.population(20, ns.LIF(tau_m=10.0), name="out")
    net.projection(src, out, ns.FixedProbability(0.3), weight=3.0)
    net.spike_monitor(src)
    net.spike_monitor(out)
    return net


# -- item 1: a finished log is never overwritten -------------------------------------------
def test_two_networks_built_with_one_new_path_cannot_both_log_there(tmp_path):
    path = tmp_path / "run.h5"
    first, second = poisson_net(log=path), poisson_net(log=path, seed=4)  # both built first
    first.run(30.0, progress=False)
    with pytest.raises(FileExistsError, match="run.h5"):
        second.run(30.0, progress=False)
    with ns.LogReader(path) as log:  # the first network's finished log is untouched
        assert log.completed and log.attrs["seed"] == 3 and log.steps == 300
    first.run(10.0, progress=False)  # and its owner goes on appending to it
    first.log.close()
    with pytest.raises(FileExistsError, match="already exists"):
        second.run(30.0, progress=False)  # no longer in use, still not replaced
    with ns.LogReader(path) as log:
        assert log.completed and log.steps == 400 and log.attrs["seed"] == 3


def test_a_file_that_appears_before_the_first_run_is_never_replaced(tmp_path):
    path = tmp_path / "run.h5"
    net = poisson_net(log=path)
    path.write_bytes(b"precious")  # e.g. another program saved something there meanwhile
    with pytest.raises(FileExistsError, match="already exists"):
        net.run(10.0, progress=False)
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"]  # no temporary left behind


def test_a_log_replaced_between_runs_is_not_written_into(tmp_path):
    path = tmp_path / "run.h5"
    net = poisson_net(log=path)
    net.run(10.0, progress=False)
    shutil.copy(path, tmp_path / "copy.h5")
    os.replace(tmp_path / "copy.h5", path)  # same name, another file
    before = path.read_bytes()
    with pytest.raises(LogReplacedError, match="replaced"):
        net.run(10.0, progress=False)
    assert path.read_bytes() == before


def test_overwrite_replaces_a_finished_log_but_never_one_in_use(tmp_path):
    path = tmp_path / "run.h5"
    owner = poisson_net(log=path)
    owner.run(10.0, progress=False)
    with pytest.raises(LogInUseError, match="may run again"):
        poisson_net(log=ns.HDF5Log(path, overwrite=True)).run(1.0, progress=False)
    owner.log.close()
    other = poisson_net(log=ns.HDF5Log(path, overwrite=True))
    other.run(1.0, progress=False)
    with ns.LogReader(path) as log:
        assert log.steps == 10 and log.completed


# -- item 2: two processes with the same --log ----------------------------------------------
def test_a_second_writer_process_is_refused_and_the_first_finishes_intact(tmp_path):
    path = tmp_path / "same.h5"
    cmd = [sys.executable, os.path.join(ROOT, "examples", "cuba.py"), "--neurons", "400",
           "--duration", "1000", "--seed", "2", "--log", str(path), "--no-progress"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], results
    out, _ = results[codes.index(0)]
    _, err = results[codes.index(2)]
    assert err.count("\n") == 1 and "--log" in err and str(path) in err and "Traceback" not in err
    with ns.LogReader(path) as log:
        assert log.completed and log.steps == 10000
        pops = log.summary()["populations"]
        assert pops["exc"]["spikes"] + pops["inh"]["spikes"] == json.loads(out.splitlines()[-1])["spikes"]
    with pytest.raises(FileExistsError, match="already exists"):  # and any later writer
        ns.Network(log=path)


# -- item 3: a SIGKILL at any moment leaves a log that opens ----------------------------------
# The writer is driven as Network.run drives it, in a process that imports only h5py and
# the writer (no torch), so that each kill costs a fraction of a second. strace kills it
# at the n-th write to the file (pwrite64): every write is a moment the file can be left in.
WRITER_SCENARIO = textwrap.dedent("""
    import os, sys, types
    root, path = sys.argv[1], sys.argv[2]
    for name, sub in (("neurosim", ""), ("neurosim.recording", "recording")):
        module = types.ModuleType(name)  # bare packages: import the writer without torch
        module.__path__ = [os.path.join(root, "neurosim", sub)]
        sys.modules[name] = module
    import numpy as np
    from neurosim.recording.hdf5_log import HDF5Log

    class Spec:  # the fields of neurosim.monitors.DatasetSpec
        def __init__(self, key, dtype, tail=(), attrs=None):
            self.key, self.dtype, self.tail, self.attrs = key, dtype, tail, attrs or {}

    def monitor(name):
        return [Spec(f"spikes/{name}/step", "int64", (), {"population": name}),
                Spec(f"spikes/{name}/neuron", "int32"), Spec(f"spikes/{name}/batch", "int32")]

    def chunk(names, lo, hi):  # one event per step and population
        out = {}
        for n in names:
            out.update({f"spikes/{n}/step": np.arange(lo, hi), f"spikes/{n}/neuron":
                        np.zeros(hi - lo, np.int32), f"spikes/{n}/batch": np.zeros(hi - lo, np.int32)})
        return out

    def network(*names):
        return '{"populations": [%s]}' % ", ".join('{"name": "%s", "size": 5}' % n for n in names)

    attrs = {"dt_ms": 0.1, "seed": 1, "batch": 1, "network_json": network("a"),
             "started_at": "2026-01-01T00:00:00+00:00", "steps_sorted": True}
    log = HDF5Log(path)
    log.begin_run(attrs, monitor("a"), {})
    for lo in (0, 100):
        log.append(chunk(["a"], lo, lo + 100), lo + 100)
    log.end_run(True, {"ended_at": "2026-01-01T00:01:00+00:00", "steps": 200, "duration_ms": 20.0,
                       "steps_sorted": True})
    late = [f"b{i}" for i in range(10)]  # more than HDF5's 8 compact links per group
    specs = monitor("a") + [s for n in late for s in monitor(n)]
    log.begin_run(dict(attrs, network_json=network("a", *late)), specs, {"state/b0/neurons": np.arange(3)})
    for lo in (200, 300):
        log.append(chunk(["a"] + late, lo, lo + 100), lo + 100)
    log.end_run(True, {"ended_at": "2026-01-01T00:02:00+00:00", "steps": 400, "duration_ms": 40.0,
                       "steps_sorted": True})
""")


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    proc = subprocess.run(["strace", "-o", os.devnull, "-e", "trace=getpid", sys.executable, "-c", "0"],
                          capture_output=True)
    return proc.returncode == 0


needs_strace = pytest.mark.skipif(not _strace_works(), reason="needs strace (and ptrace permission)")


def _writes_of_scenario(tmp_path) -> int:
    script = tmp_path / "scenario.py"
    script.write_text(WRITER_SCENARIO)
    trace = tmp_path / "trace.txt"
    subprocess.run(["strace", "-o", str(trace), "-e", "trace=pwrite64", sys.executable, str(script),
                    ROOT, str(tmp_path / "dry.h5")], check=True, capture_output=True, timeout=120)
    return sum(1 for line in trace.read_text().splitlines() if line.startswith("pwrite64("))


def _check_killed_log(path) -> str:
    """What a reader finds after the writer was killed; raises if the file does not open."""
    if not os.path.exists(path):
        return "absent"  # killed before the file had its name: nothing half-made is there
    with ns.LogReader(path) as log:
        flushed = log.steps
        for key in log.keys():
            log.array(key)
        steps = log.array("spikes/a/step")
        # everything flushed is there (a write cut short may have added some rows after it)
        assert len(steps) >= flushed and np.array_equal(steps, np.arange(len(steps))), flushed
        if log.completed:
            assert flushed in (200, 400) and log.attrs["ended_at"]
        if any(k.startswith("spikes/b9") for k in log.keys()):
            assert log.population_size("b9") == 5  # data of a population: its description too
        return "completed" if log.completed else "incomplete"


def _kill_at(tmp_path, n: int) -> str:
    path = tmp_path / f"k{n}.h5"
    proc = subprocess.run(["strace", "-o", os.devnull, "-e", "trace=pwrite64", "-e",
                           f"inject=pwrite64:signal=SIGKILL:when={n}", sys.executable,
                           str(tmp_path / "scenario.py"), ROOT, str(path)], capture_output=True, timeout=120)
    assert proc.returncode != 0  # it was killed
    return _check_killed_log(path)


@needs_strace
def test_sigkill_at_sampled_writes_leaves_a_log_that_opens(tmp_path):
    total = _writes_of_scenario(tmp_path)
    # the first writes (creating the file), the end of run 1, the start of run 2, the last
    picks = sorted({1, 2, 3, total // 3, total // 3 + 1, total // 2, total // 2 + 1, 2 * total // 3,
                    total - 1, total})
    seen = {n: _kill_at(tmp_path, n) for n in picks}
    assert "incomplete" in seen.values() and set(seen.values()) <= {"absent", "incomplete", "completed"}


@pytest.mark.slow
@needs_strace
def test_sigkill_at_every_write_leaves_a_log_that_opens(tmp_path):
    total = _writes_of_scenario(tmp_path)
    seen = [_kill_at(tmp_path, n) for n in range(1, total + 1)]
    assert seen.count("completed") > 0 and seen.count("incomplete") > total // 2


# -- items 5 and 6: Ctrl-C ------------------------------------------------------------------
class _InterruptInFinalizer:
    """Sends SIGINT to this process from inside __del__, where a KeyboardInterrupt raised
    by Python's own handler is printed as "Exception ignored" and lost (as happens when
    the signal lands in h5py's or tqdm's weak-reference callbacks)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.001)


def test_ctrl_c_landing_in_a_finalizer_still_stops_the_run(tmp_path):
    path = tmp_path / "int.h5"
    net = poisson_net(log=path)
    net.add_callback(lambda n: _InterruptInFinalizer() if n.clock.step == 1234 else None)
    # (a long run: the slice the interrupt lands in is paced to about 0.2 s of steps,
    # which on a fast, idle machine can exceed a few thousand steps)
    with pytest.raises(KeyboardInterrupt, match="interrupted at step"):
        net.run(steps=100_000, progress=False)
    assert 1234 <= net.clock.step < 100_000
    with ns.LogReader(path) as log:
        assert not log.completed and log.steps == net.clock.step
        assert log.spikes("src")[0].max() < net.clock.step
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


INTERRUPT_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    import numpy as np
    import torch
    import neurosim as ns
    from neurosim.networks import build_cuba

    engine, path, total = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    backend = engine["backend"]

    def make(log=None):
        net = ns.Network(dt=0.1, seed=5, log=log, **engine)
        cuba = build_cuba(net, 4000 if backend == "numba" else 400)
        net.spike_monitor(cuba.exc)
        return net

    if backend == "torch":
        torch.set_num_threads(1)  # small tensors: threads only compete for the cores
    probe = make()  # how long will the run take here?
    probe.run(steps=50, progress=False)
    t0 = time.perf_counter()
    probe.run(steps=total // 20, progress=False)
    expected = (time.perf_counter() - t0) * 20
    net = make(path)
    net.compile()
    real, timer = net.backend.advance, []

    def advance(k, profile):
        # about 40% into the run, SIGINT comes from another thread: inside the compiled
        # loop (numba, nearly always) or between the phases of a step (torch)
        if not timer:
            timer.append(threading.Timer(0.4 * expected, os.kill, (os.getpid(), signal.SIGINT)))
            timer[0].start()
        real(k, profile)

    net.backend.advance = advance
    try:
        net.run(steps=total, progress=False)
        outcome = "completed"
    except KeyboardInterrupt:
        outcome = "interrupted"
    at = net.clock.step
    with ns.LogReader(path) as log:
        at_interrupt = {"completed": log.completed, "steps": log.steps,
                        "last_spike": int(log.spikes("exc")[0].max(initial=-1))}
    twin = make()  # uninterrupted to the same step: same state?
    twin.run(steps=at, progress=False)
    same_state = all(torch.equal(a, twin.state_dict()[k]) for k, a in net.state_dict().items())
    net.backend.advance = real
    net.run(steps=total - at, progress=False)
    full = make()
    full.run(steps=total, progress=False)
    with ns.LogReader(path) as log:
        s, n, _ = log.spikes("exc")
        fs, fn, _ = full.reader().spikes("exc")
        window = log.spikes("exc", 0.1 * at - 5.0, 0.1 * at + 5.0)[0]
        print(json.dumps({"outcome": outcome, "at": at, "at_interrupt": at_interrupt,
                          "same_state": same_state, "completed": log.completed, "steps": log.steps,
                          "identical": bool(np.array_equal(s, fs) and np.array_equal(n, fn)),
                          "sorted": bool(np.all(np.diff(s) >= 0)), "steps_sorted": log.steps_sorted,
                          "window_ok": int(window.size) == int(((fs >= at - 50) & (fs < at + 50)).sum())}))
""")


def test_resuming_after_ctrl_c_matches_an_uninterrupted_run(tmp_path, reproducible_engine):
    engine = reproducible_engine  # the resumed run is compared bit for bit with a whole one
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    total = 100000 if engine["backend"] == "numba" else 3000
    proc = subprocess.run([sys.executable, str(script), json.dumps(engine), str(tmp_path / "r.h5"),
                           str(total)],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.splitlines()[-1])
    assert r["outcome"] == "interrupted" and 0 < r["at"] < total
    # at the interrupt: the log ends where the clock is, and says it is incomplete
    assert r["at_interrupt"] == {"completed": False, "steps": r["at"],
                                 "last_spike": r["at_interrupt"]["last_spike"]}
    assert r["at_interrupt"]["last_spike"] < r["at"]
    assert r["same_state"], "the state ran ahead of (or behind) the clock"
    assert r["identical"] and r["sorted"] and r["steps_sorted"] and r["window_ok"]
    assert r["completed"] and r["steps"] == total


RANDOM_SIGINT_SCRIPT = textwrap.dedent("""
    import json, sys
    import neurosim as ns
    from neurosim import network
    from neurosim.networks import build_cuba

    network.MAX_CHUNK_STEPS = 300  # flush often: more h5py objects to collect mid-run
    for trial in range(int(sys.argv[2])):
        net = ns.Network(dt=0.1, seed=trial, log=f"{sys.argv[1]}/t{trial}.h5")
        cuba = build_cuba(net, 400)
        net.spike_monitor(cuba.exc)
        net.state_monitor(cuba.exc, ["v"], neurons=[0, 1], every=7)
        net.compile()
        net.add_callback(lambda n: print("running", flush=True) if n.clock.step == 1000 else None,
                         every=1000)
        try:
            net.run(steps=400000, progress=True)  # progress bar on: tqdm objects too
            outcome = "completed"
        except KeyboardInterrupt:
            outcome = "interrupted"
        print(json.dumps({"trial": trial, "outcome": outcome, "clock": net.clock.step}), flush=True)
""")


def test_ctrl_c_at_random_moments_always_stops_the_run_and_leaves_it_incomplete(tmp_path):
    trials = 6
    script = tmp_path / "random_sigint.py"
    script.write_text(RANDOM_SIGINT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(trials)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rng, results = random.Random(7), []
    try:
        for _ in range(trials):
            assert proc.stdout.readline().strip() == "running"
            time.sleep(rng.uniform(0.0, 0.8))
            proc.send_signal(signal.SIGINT)
            results.append(json.loads(proc.stdout.readline()))
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    for r in results:
        assert r["outcome"] == "interrupted", r
        with ns.LogReader(tmp_path / f"t{r['trial']}.h5") as log:
            assert not log.completed and log.steps == r["clock"]
            assert log.spikes("exc")[0].max(initial=-1) < r["clock"]
            assert log.state("exc", "v")[0].max(initial=-1) < r["clock"]


def test_a_run_stopped_mid_step_by_an_error_refuses_to_run_again(tmp_path):
    net = poisson_net(log=tmp_path / "err.h5")

    def boom(net):
        if net.clock.step == 700:
            raise RuntimeError("user callback failed")
    net.add_callback(boom)
    with pytest.raises(RuntimeError, match="user callback failed"):
        net.run(steps=2000, progress=False)
    with pytest.raises(RuntimeError, match=r"cannot run again.*RuntimeError\(user callback failed\) "
                                           r"at step 700.*Build it again"):
        net.run(steps=10, progress=False)
    with ns.LogReader(tmp_path / "err.h5") as log:
        assert not log.completed


def test_steps_sorted_is_false_in_the_file_while_a_rewound_run_goes_on(tmp_path):
    path = tmp_path / "rewind.h5"
    net = poisson_net(log=path)
    net.run(10.0, progress=False)
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    net.run(10.0, progress=False)
    net.load_state_dict(saved)  # back to step 100: the next run logs steps 100.. again
    seen = []

    def peek(net):
        if net.clock.step == 150:
            with ns.LogReader(path) as log:  # what a reader (or a killed run) finds now
                seen.append(log.steps_sorted)
    net.add_callback(peek)
    net.run(10.0, progress=False)
    assert seen == [False]


# -- item 8: a network that grows between runs ------------------------------------------------
@pytest.mark.parametrize("to_file", [True, False])
def test_a_population_added_after_a_run_is_described_in_the_log(tmp_path, to_file):
    path = tmp_path / "grow.h5"
    net = poisson_net(log=path if to_file else None)
    net.run(20.0, progress=False)
    late = net.population(15, ns.LIF(), name="late")
    net.projection(net.populations["src"], late, weight=4.0)
    net.spike_monitor(late)
    net.run(20.0, progress=False)
    reader = ns.LogReader(path) if to_file else net.reader()
    assert reader.population_size("late") == 15
    assert [p["name"] for p in reader.network["populations"]] == ["src", "out", "late"]
    assert reader.summary()["populations"]["late"]["spikes"] > 0
    if to_file:
        reader.close()
        assert main(["plot", str(path), "raster", "--out", str(tmp_path / "r.png")]) == 0
        pytest.importorskip("pynwb")
        assert main(["export", str(path), "--nwb", str(tmp_path / "x.nwb")]) == 0
        with h5py.File(path, "r") as f:  # the first description stays where it was
            first = json.loads(f.attrs["network_json"])
        assert [p["name"] for p in first["populations"]] == ["src", "out"]


@pytest.mark.parametrize("to_file", [True, False])
def test_parameters_set_between_runs_are_described_in_the_log(tmp_path, to_file):
    """The description holds the parameters the run used: those set since the population
    was built (once it gave the model's own, as built)."""
    path = tmp_path / "set.h5"
    net = poisson_net(log=path if to_file else None)
    out = net.populations["out"]
    net.run(5.0, progress=False)
    out.set_parameters(i_bias=3.0, tau_m=np.full(out.n, 12.0))
    net.run(5.0, progress=False)
    reader = ns.LogReader(path) if to_file else net.reader()
    described = next(p for p in reader.network["populations"] if p["name"] == "out")["parameters"]
    assert described["i_bias"] == 3.0 and described["tau_m"] == f"array[{out.n}]"
    assert described["v_thresh"] == out.model.params["v_thresh"]  # (not set: as built)
    if to_file:
        reader.close()
