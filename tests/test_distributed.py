"""Partitioned runs on torch.distributed (neurosim.distributed).

The two-process tests launch ``tests/distributed/cuba_run.py`` under ``torchrun`` (gloo,
one machine) and compare with the same script run alone: the spikes must be the same,
bit for bit, on numba and on torch. One process with ``Partition(0, 1)`` runs the same
machinery (mirrors, exchange, joined log) without torch.distributed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.distributed import Partition
from neurosim.distributed.exchange import pack_bits, unpack_bits
from neurosim.networks import build_cuba

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "distributed", "cuba_run.py")
ROOT = os.path.dirname(HERE)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WORLD_SIZE", None)
    return env


def _run_alone(tmp_path, backend: str, name: str, *flags: str) -> dict[str, np.ndarray]:
    out = tmp_path / f"{name}.npz"
    subprocess.run([sys.executable, SCRIPT, "--backend", backend, "--out", str(out), *flags],
                   check=True, env=_env(), timeout=600)
    return dict(np.load(out))


def _run_torchrun(tmp_path, backend: str, name: str, *flags: str, processes: int = 2) -> dict[str, np.ndarray]:
    out = tmp_path / f"{name}.npz"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={processes}", SCRIPT, "--backend", backend,
                           "--out", str(out), "--h5-log", str(tmp_path / f"{name}.h5"), *flags],
                          env=_env(), timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


def _alone_and_on_two(tmp_path, script: str, *flags: str):
    """``script`` run alone and under torchrun on 2 processes; the npz each wrote."""
    subprocess.run([sys.executable, script, *flags, "--out", str(tmp_path / "one.npz")],
                   check=True, env=_env(), timeout=600)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", script, *flags,
                           "--out", str(tmp_path / "two.npz")],
                          env=_env(), timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")


def test_shares_cover_the_population_in_order():
    for size in (1, 2, 3, 7):
        for n in (7, 8, 100, 4001):
            shares = [Partition(r, size).share(n) for r in range(size)]
            assert shares[0][0] == 0 and shares[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
            assert max(hi - lo for lo, hi in shares) - min(hi - lo for lo, hi in shares) <= 1


def test_bit_packing_round_trips():
    gen = torch.Generator().manual_seed(0)
    for n in (1, 7, 8, 9, 100):
        bits = torch.rand((3, 4, n), generator=gen) < 0.3
        packed = pack_bits(bits)
        assert packed.shape == (3, 4, (n + 7) // 8)
        assert torch.equal(unpack_bits(packed, n), bits)
        # the same layout as numpy's packbits, which the CPU path uses
        assert np.array_equal(packed.numpy(), np.packbits(bits.numpy(), axis=-1))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_one_process_partition_runs_the_same_spikes(backend):
    spikes = []
    for partition in (None, Partition(0, 1)):
        net = ns.Network(dt=0.1, seed=2, backend=backend, partition=partition)
        cuba = build_cuba(net, 500)
        net.spike_monitor(cuba.exc)
        net.run(60.0, progress=False)
        spikes.append(net.reader().spikes("exc"))
    assert len(spikes[0][0]) > 100
    for a, b in zip(*spikes):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_two_processes_give_the_spikes_of_one(tmp_path, backend):
    one = _run_alone(tmp_path, backend, "one")
    two = _run_torchrun(tmp_path, backend, "two")
    assert len(one["exc_step"]) > 1000 and len(one["inh_step"]) > 200  # the network is active
    for key in one:
        if key != "exchange_seconds":
            assert np.array_equal(one[key], two[key]), key
    # the joined log reads as one complete run of the whole network
    reader = ns.LogReader(str(tmp_path / "two.h5"))
    assert reader.completed and reader.attrs["processes"] == 2
    steps, neurons, rows = reader.spikes("exc")
    assert np.array_equal(neurons, one["exc_neuron"])


def test_a_state_saved_by_two_processes_continues_in_one_and_back(tmp_path):
    """200 ms in one go, against 100 ms, a state file, and 100 ms more in another
    number of processes: the spikes after the switch are the same."""
    ref = _run_alone(tmp_path, "numba", "ref", "--duration", "200")
    _run_torchrun(tmp_path, "numba", "first2", "--duration", "100",
                  "--save-state", str(tmp_path / "two.state.h5"))
    then1 = _run_alone(tmp_path, "numba", "then1", "--duration", "100",
                       "--load-state", str(tmp_path / "two.state.h5"))
    _run_alone(tmp_path, "numba", "first1", "--duration", "100",
               "--save-state", str(tmp_path / "one.state.h5"))
    then2 = _run_torchrun(tmp_path, "numba", "then2", "--duration", "100",
                          "--load-state", str(tmp_path / "one.state.h5"))
    for got in (then1, then2):
        for pop in ("exc", "inh"):
            later = ref[f"{pop}_step"] >= 1000
            assert later.sum() > 100
            for field in ("step", "neuron", "batch"):
                assert np.array_equal(ref[f"{pop}_{field}"][later], got[f"{pop}_{field}"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_process_stops_the_others_and_the_log_reads_incomplete(tmp_path):
    env = _env()
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2")
    log = tmp_path / "killed.h5"
    procs = []
    for rank in (0, 1):
        procs.append(subprocess.Popen(
            [sys.executable, SCRIPT, "--out", str(tmp_path / "x.npz"), "--h5-log", str(log),
             "--die-at-step", "300", "--duration", "100"],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, stderr=subprocess.PIPE, text=True))
    t0 = time.monotonic()
    err0 = procs[0].communicate(timeout=240)[1]
    procs[1].communicate(timeout=60)
    assert procs[1].returncode == -signal.SIGKILL
    assert procs[0].returncode != 0
    assert "lost contact with the others" in err0 and "steps 300..300" in err0, err0[-2000:]
    assert time.monotonic() - t0 < 120
    reader = ns.LogReader(str(log))
    assert not reader.completed


def test_what_a_partitioned_run_refuses():
    with pytest.raises(ValueError, match="split=True needs a partitioned network"):
        ns.Network().population(10, ns.LIF(), split=True)
    net = ns.Network(partition=Partition(1, 2))
    with pytest.raises(ValueError, match="cannot be split over 2 processes"):
        net.population(1, ns.LIF())
    with pytest.raises(ValueError, match="only spiking neuron populations"):
        net.population(4, ns.SpikeGenerator([1.0], [0]), split=True)
    a = net.population(10, ns.LIF(), name="a")
    assert (a.offset, a.n, a.n_global) == (5, 5, 10)
    with pytest.raises(ValueError, match="delay of at least 1 step"):
        net.projection(a, a, ns.AllToAll(), weight=1.0, delay=0)
    with pytest.raises(ValueError, match="trainable projections"):
        net.projection(a, a, ns.AllToAll(), weight=1.0, trainable=True)
    with pytest.raises(TypeError, match="Partition"):
        ns.Network(partition=(0, 2))
    with pytest.raises(RuntimeError, match="process 0 writes the log"):
        net.reader()
    with pytest.raises(ValueError, match="cannot be run differentiably"):
        net.unroll(1)
    b = net.population(10, ns.LIF(), name="b")
    # (drawn whole and cut: AllToAll with one weight would draw a share, a collective)
    net.projection(a, b, ns.FixedProbability(0.5), weight=1.0)
    net.state_monitor(a, "v")
    with pytest.raises(ValueError, match="only spike monitors and spike counters"):
        net.run(1.0, progress=False)


def test_what_learning_on_split_populations_and_signals_there_refuse():
    from neurosim.rules.recipe import NeuronState, Recipe

    def pre_voltage_hebb(w, pre_v, lr):
        return lr * pre_v

    def mean_pre_voltage(m, pre_v):
        return pre_v

    class PreVoltage(ns.rules.Rule):  # reads the presynaptic population's state
        def recipe(self) -> Recipe:
            return Recipe(on_post=pre_voltage_hebb)

    class PreVoltageState(ns.rules.Rule):  # the same, in a neuron state's update
        def recipe(self) -> Recipe:
            return Recipe(neuron_state=(NeuronState("m", "pre", 0.0, mean_pre_voltage),),
                          on_post=lambda w, lr: lr)

    class ExtraTensor(ns.rules.STDP):  # state that is neither a trace nor a neuron state
        def setup(self) -> None:
            super().setup()
            self.counts = torch.zeros(3)

    refused = [(ns.rules.STDP(as_gradient=True), "only rules declared as a recipe", 1),
               (PreVoltage(), "reads 'pre_v', a state variable of the presynaptic population", 1),
               (PreVoltageState(), "update of m reads 'pre_v'", 1),
               (ns.rules.RewardModulatedSTDP(modulator="da"), "per-neuron signal 'da'", 1),
               (ExtraTensor(), r"its state \['counts'\]", 1),
               (ns.rules.STDP(), "has several delays and is cut", np.arange(100).reshape(10, 10) % 2 + 1)]
    for rule, message, delay in refused:
        net = ns.Network(partition=Partition(0, 1))
        a, b = net.population(10, ns.LIF(), name="a"), net.population(10, ns.LIF(), name="b")
        proj = net.projection(a, b, ns.AllToAll(), weight=1.0, delay=delay)
        net.modulators.add("da", size=10)
        net.add_rule(proj, rule)
        with pytest.raises(ValueError, match=message):
            net.run(1.0, progress=False)
    net = ns.Network(partition=Partition(0, 1))
    a = net.population(10, ns.LIF(), name="a")
    net.modulators.add_population_error("err", a, classes=2)
    with pytest.raises(ValueError, match="computed from population 'a'"):
        net.run(1.0, progress=False)


def test_a_projection_keeps_the_synapses_onto_its_share():
    whole = ns.Network(seed=4)
    pre, post = whole.population(30, ns.LIF()), whole.population(20, ns.LIF())
    ref = whole.projection(pre, post, ns.FixedProbability(0.3), weight=ns.Uniform(0, 2),
                           delay=np.arange(30 * 20).reshape(30, 20) % 3 + 1)
    dense = ref.weight_matrix()
    for rank in (0, 1, 2):
        net = ns.Network(seed=4, partition=Partition(rank, 3))
        pre, post = net.population(30, ns.LIF()), net.population(20, ns.LIF())
        proj = net.projection(pre, post, ns.FixedProbability(0.3), weight=ns.Uniform(0, 2),
                              delay=np.arange(30 * 20).reshape(30, 20) % 3 + 1)
        lo, hi = post.offset, post.offset + post.n
        assert proj.pre is pre.mirror and proj.post is post
        assert np.array_equal(proj.weight_matrix(), dense[:, lo:hi])
        rows, cols = proj.synapses()
        ref_rows, ref_cols = ref.synapses()
        mine = (ref_cols >= lo) & (ref_cols < hi)
        assert np.array_equal(proj.delays.numpy(), ref.delays.numpy()[mine])
        assert np.array_equal(rows, ref_rows[mine]) and np.array_equal(cols, ref_cols[mine] - lo)


SHARE_SCRIPT = os.path.join(HERE, "distributed", "share_draw_run.py")


def _state_arrays(path) -> tuple[str, dict[str, np.ndarray]]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda key, item: out.__setitem__(key, item[()])
                     if isinstance(item, h5py.Dataset) else None)
        return str(f.attrs["structure"]), out


def test_projections_drawn_share_by_share_are_those_of_one_process(tmp_path):
    """Each of 2 processes draws only the synapses onto its neurons (PairwiseBernoulli,
    FixedInDegree; dense and CSR; scalar, uniform and normal weights): same spikes, and a
    state file equal, array for array and fingerprint for fingerprint, to one process's."""
    one, two = _alone_and_on_two(tmp_path, SHARE_SCRIPT)
    for name in ("drive_a", "drive_b", "a_a", "a_b", "b_a", "b_b"):
        assert two[f"{name}_share_drawn"] and not one[f"{name}_share_drawn"]
        assert two[f"{name}_whole_nnz"] == one[f"{name}_nnz"]
        assert 0.35 < two[f"{name}_nnz"] / one[f"{name}_nnz"] < 0.65  # process 0 holds its share
    assert not two["cut_a_b_share_drawn"]  # FixedProbability: drawn whole and cut
    assert len(one["a_step"]) > 100 and len(one["b_step"]) > 100
    for key in ("a_step", "a_neuron", "b_step", "b_neuron"):
        assert np.array_equal(one[key], two[key]), key
    structure_one, arrays_one = _state_arrays(tmp_path / "one.state.h5")
    structure_two, arrays_two = _state_arrays(tmp_path / "two.state.h5")
    assert structure_one == structure_two
    assert arrays_one.keys() == arrays_two.keys()
    for key in arrays_one:
        assert np.array_equal(arrays_one[key], arrays_two[key]), key


def test_shares_on_three_processes_match_one_in_every_configuration(tmp_path):
    """3 processes, many projections (autapses, all pairs, in-degree up to n, empty shares,
    AllToAll and OneToOne computed share by share,
    densities around the dense/CSR switch, the fingerprint hashed in 7-synapse blocks):
    each synapse, weight, place and storage choice is one process's; a weight of the
    wrong sign in some shares makes every process raise (none waits in a collective)."""
    script = os.path.join(HERE, "distributed", "share_checks_run.py")
    out = tmp_path / "three.npz"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=3", script, "--out", str(out)],
                          env=_env(), timeout=240, capture_output=True, text=True)  # (a hang fails)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    assert got["names"].size == 21 and got["bad"].size == 0, got["bad"]
    assert int(got["refused"]) == 3


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_learning_on_split_populations_is_that_of_one_process(tmp_path, backend):
    """STDP (share-drawn CSR, and dense drawn whole and cut), BCM (postsynaptic neuron
    state) and reward-modulated STDP (per-synapse eligibility, a scalar signal) on split
    populations, 2 processes against 1: the same spikes, and a state file (weights, traces,
    eligibility, BCM thresholds) equal array for array after 40 ms; then loaded back and
    run 20 ms more, the same spikes again."""
    one, two = _alone_and_on_two(tmp_path, os.path.join(HERE, "distributed", "plastic_run.py"),
                                 "--backend", backend)
    for name in ("drive_a", "drive_b", "a_a", "a_b"):
        assert one[f"{name}_changed"], name  # the rules did change the weights
    assert len(one["a_step"]) > 500 and len(one["b_step"]) > 100
    for key in ("a_step", "a_neuron", "b_step", "b_neuron"):
        assert np.array_equal(one[key], two[key]), key
    structure_one, arrays_one = _state_arrays(tmp_path / "one.state.h5")
    structure_two, arrays_two = _state_arrays(tmp_path / "two.state.h5")
    assert structure_one == structure_two and arrays_one.keys() == arrays_two.keys()
    assert sum(key.startswith("state/rules.") for key in arrays_one) == 18
    for key in arrays_one:
        assert np.array_equal(arrays_one[key], arrays_two[key]), key


STDP_SCRIPT = os.path.join(HERE, "distributed", "stdp_run.py")


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_data_parallel_stdp_on_two_processes_gives_the_weights_of_one(tmp_path, backend):
    """Batch 4 in one process against 2 processes of 2 rows: STDP's change summed over
    all rows every step, a normalisation applied to the summed weights, bounds clipped
    after the sum. Tolerance: float32 rounding of the summed changes (a few ulps)."""
    one, two = _alone_and_on_two(tmp_path, STDP_SCRIPT, "--backend", backend)
    w = one["weight"]
    assert (w >= 4.0).sum() > 0 and np.ptp(w) > 3.0  # learning moved weights to the bound
    assert np.abs(two["weight"] - w).max() <= 1e-5
    assert len(one["step"]) > 500 and int(two["reductions"]) == 600  # one sum per step
    for key in ("step", "neuron", "batch"):  # the joined log: every row's spikes
        assert np.array_equal(one[key], two[key])


def test_data_parallel_with_a_weight_window_gives_the_weights_of_one_process(tmp_path):
    """weight_window=100 in one process (batch 4) and on 2 processes (2 rows each): the
    weights stay fixed for 100 steps and the changes are applied (summed) at each
    window's end, so one sum per 100 steps (600 steps: 6) gives one process's weights
    and spikes. Tolerance: float32 rounding of the summed changes."""
    one, two = _alone_and_on_two(tmp_path, STDP_SCRIPT, "--weight-window", "100")
    assert int(two["reductions"]) == 6
    w = one["weight"]
    assert (w >= 4.0).sum() > 0 and np.ptp(w) > 3.0
    assert np.abs(two["weight"] - w).max() <= 1e-5
    for key in ("step", "neuron", "batch"):
        assert np.array_equal(one[key], two[key])


def test_what_a_data_parallel_run_refuses():
    with pytest.raises(ValueError, match="not both"):
        ns.Network(partition=Partition(0, 1), data_parallel=Partition(0, 1))
    net = ns.Network(batch=2, data_parallel=Partition(0, 1))
    a, b = net.population(5, ns.PoissonSource(rate=10.0)), net.population(5, ns.LIF())
    proj = net.projection(a, b, ns.AllToAll(), weight=1.0)
    net.add_rule(proj, ns.rules.STDP())
    net.add_rule(proj, ns.rules.STDP())
    with pytest.raises(ValueError, match="both change projection"):
        net.run(1.0, progress=False)
    net = ns.Network(batch=2, data_parallel=Partition(0, 1))
    b = net.population(5, ns.LIF())
    net.state_monitor(b, "v")
    with pytest.raises(ValueError, match="data-parallel run logs spike monitors"):
        net.run(1.0, progress=False)
    with pytest.raises(ValueError, match="save_state"):
        net.save_state("never.h5")
    for rule in (ns.rules.Hebb(decay=0.1), ns.rules.BCM()):  # changes that are not row sums
        net = ns.Network(batch=2, data_parallel=Partition(0, 2))
        a, b = net.population(5, ns.PoissonSource(rate=10.0)), net.population(5, ns.LIF())
        net.add_rule(net.projection(a, b, ns.AllToAll(), weight=1.0), rule)
        with pytest.raises(ValueError, match="not a sum over the batch rows"):
            net.run(1.0, progress=False)


def test_data_parallel_rows_draw_the_numbers_of_the_whole_batch(monkeypatch):
    """Process r of N with batch b draws rows r*b .. of a batch of N*b: random inputs and
    drawn initial values. (Each process is built here alone; its collectives do nothing.)"""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "all_reduce", lambda tensor, group=None: None)
    monkeypatch.setattr(dist, "gather_object", lambda obj, out, dst=0, group=None:
                        out and out.__setitem__(slice(None), [obj] * len(out)))

    def build(batch, dp):
        net = ns.Network(batch=batch, seed=3, data_parallel=dp)
        src = net.population(20, ns.PoissonSource(rate=200.0), name="src")
        lif = net.population(7, ns.LIF(), name="lif", init={"v": ns.Uniform(-70.0, -50.0)})
        counter = net.spike_counter(src)
        net.run(20.0, progress=False)
        return lif.state["v"].clone(), counter.counts.clone()
    v, counts = build(4, None)
    assert counts.sum() > 100
    for rank in (0, 1):
        v_r, counts_r = build(2, Partition(rank, 2))
        assert torch.equal(v_r, v[2 * rank:2 * rank + 2])
        assert torch.equal(counts_r, counts[2 * rank:2 * rank + 2])


def test_every_process_slices_by_the_whole_projections_delays():
    """Per-synapse delays that differ by target neuron, and a share with no synapses: each
    process's cut must answer with the whole projection's delays (else the processes
    would exchange after slices of different lengths)."""
    delays = np.where(np.arange(10) < 5, 1, 3)[None, :].repeat(6, 0)
    seen = []
    for rank in (0, 1):
        net = ns.Network(seed=1, partition=Partition(rank, 2))
        a, b = net.population(6, ns.LIF(), name="a"), net.population(10, ns.LIF(), name="b")
        net.projection(a, b, ns.AllToAll(), weight=1.0, delay=delays, name="ab")
        # only post neurons 0..3 (process 0's share) receive from c: process 1 keeps none
        net.projection(b, a, ns.FromPairs([0, 1], [0, 1]), weight=1.0, delay=4, name="ba")
        net._prepare()
        seen.append((net.min_delay, a.mirror.history.shape[0], b.mirror.history.shape[0],
                     net.describe()["projections"]))
    assert seen[0] == seen[1]
    assert seen[0][:3] == (1, 4, 5)
    assert [p["synapses"] for p in seen[0][3]] == [60, 2]


def test_a_one_process_state_loads_where_rings_are_longer(tmp_path):
    """A split population keeps at least a slice of its spikes; in one process a population
    that no projection leaves has a one-slot ring: loading pads it."""
    def build(partition):
        net = ns.Network(seed=2, partition=partition)
        src = net.population(30, ns.PoissonSource(rate=100.0), name="src")
        dst = net.population(20, ns.LIF(), name="dst", init={"v": ns.Uniform(-70, -50)})
        net.projection(src, dst, ns.FixedProbability(0.3), weight=8.0, delay=3)
        net.spike_monitor(dst)
        net.spike_monitor(src)
        return net
    one = build(None)
    one.run(30.0, progress=False)
    one.save_state(tmp_path / "one.h5")
    one.run(30.0, progress=False)
    two = build(Partition(0, 1))
    two.load_state(tmp_path / "one.h5")
    two.run(30.0, progress=False)
    for name in ("src", "dst"):
        steps, neurons, _ = one.reader().spikes(name)
        late = steps >= 300
        s2, n2, _ = two.reader().spikes(name)
        assert late.sum() > 10
        assert np.array_equal(steps[late], s2) and np.array_equal(neurons[late], n2)


def test_data_parallel_event_rules_see_the_summed_weights(monkeypatch):
    """STDP summed over the processes every step, a normalisation at the end of each
    sample: the normalisation runs once on the summed weights (not once per process).
    Two processes with the same rows are imitated by an all_reduce that doubles."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "all_reduce", lambda tensor, group=None, op=None: tensor.mul_(2))
    monkeypatch.setattr(dist, "gather_object", lambda obj, out, dst=0, group=None:
                        out and out.__setitem__(slice(None), [obj] * len(out)))
    net = ns.Network(batch=2, seed=4, dt=0.5, data_parallel=Partition(0, 2))
    src = net.population(40, ns.PoissonSource(rate=50.0))
    out = net.population(8, ns.LIF(tau_m=10.0), init={"v": ns.Uniform(-65.0, -55.0)})
    proj = net.projection(src, out, ns.AllToAll(), weight=ns.Uniform(1.0, 4.0), sparse=False)
    net.add_rule(proj, ns.rules.STDP(a_plus=0.08, a_minus=0.085, w_max=4.0))
    net.add_rule(proj, ns.rules.WeightNormalization(100.0, apply_at="end_of_sample"))
    before = proj.weight.clone()
    net.run(100.0, progress=False)
    assert not torch.equal(proj.weight, before)
    net.trigger("end_of_sample")
    assert np.allclose(proj.weight_matrix().sum(0), 100.0, rtol=1e-5)


def test_signals_over_the_whole_batch_or_a_split_population_are_refused():
    net = ns.Network(partition=Partition(0, 1))
    a = net.population(10, ns.LIF(), name="a")
    net.modulators.add("dopamine", tau_ms=100.0)
    net.modulators.drive("dopamine", a)
    with pytest.raises(ValueError, match="computed from population 'a'"):
        net.run(1.0, progress=False)
    net = ns.Network(batch=2, data_parallel=Partition(0, 1))
    a = net.population(10, ns.LIF(), name="a")
    net.modulators.add_rate("rate", a)
    with pytest.raises(ValueError, match="averages over the whole batch"):
        net.run(1.0, progress=False)
    net = ns.Network(partition=Partition(0, 1))
    a = net.population(10, ns.LIF(), name="a")
    net.step_current(a, 1.0, neurons=[0, 1])
    with pytest.raises(ValueError, match="one amplitude for all its neurons"):
        net.run(1.0, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("updates", ["step", "sample"])
def test_mnist_stdp_example_under_torchrun_matches_one_process(tmp_path, updates):
    """examples/mnist_stdp.py on 2 processes (batch 8 split 4 + 4, weight changes summed
    every step, or once per presentation and rest) against one process with batch 8 and
    the same --weight-updates: the same test accuracy and final weights up to float
    rounding. About a minute for "step": the per-step sums are slow here."""
    import json

    from data_paths import MNIST as SHARED, requires_datasets  # noqa: F401

    if not os.path.isdir(SHARED):
        pytest.skip(f"MNIST not found at {SHARED}")
    example = os.path.join(ROOT, "examples", "mnist_stdp.py")
    flags = ["--train", "64", "--test", "32", "--assign", "32", "--batch", "8", "--data", SHARED,
             "--no-progress", "--weight-updates", updates]
    one = subprocess.run([sys.executable, example, *flags, "--log", str(tmp_path / "one.h5")],
                         env=_env(), capture_output=True, text=True, timeout=900)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node=2", example, *flags, "--log-file", str(tmp_path / "two.h5")],
                         env=_env(), capture_output=True, text=True, timeout=900)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads(p.stdout.strip().splitlines()[-1]) for p in (one, two))
    assert b["processes"] == 2 and a["accuracy"] == b["accuracy"]
    import h5py

    with h5py.File(tmp_path / "one.h5") as f1, h5py.File(tmp_path / "two.h5") as f2:
        assert np.abs(f1["results/weights"][()] - f2["results/weights"][()]).max() < 1e-4


def test_a_data_parallel_process_without_rows_of_the_last_batch_runs_along(monkeypatch):
    """Two images, a whole batch of 4 split 2 + 2: process 1 has no rows, and still runs
    the presentation (silent), and repeats it when process 0 needs to (imitated: the
    all_reduce that asks "any process?" answers yes), as the others' collectives need."""
    import torch.distributed as dist

    from neurosim.datasets import present

    # (the presenter's question is an int64 flag; the weight sums' buffer, a float, stays)
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, group=None, op=None:
                        tensor.fill_(1) if tensor.dtype == torch.int64 else None)
    monkeypatch.setattr(dist, "gather_object", lambda obj, out, dst=0, group=None:
                        out and out.__setitem__(slice(None), [obj] * len(out)))
    net = ns.Network(batch=2, dt=0.5, data_parallel=Partition(1, 2))
    src = net.population(16, ns.PoissonSource(rate=0.0), name="src")
    src.set_parameters(rate=np.zeros((2, 16)))
    counter = net.spike_counter(src)
    shown = list(present(net, src, np.ones((2, 16)), duration_ms=5.0, rest_ms=5.0,
                         counters=[counter], min_spikes=1, max_repeats=1))
    assert [len(idx) for idx, _ in shown] == [0]
    assert net.clock.step == 2 * 20  # one presentation and one repeat, like process 0's


def test_a_weight_window_closes_when_a_run_ends(monkeypatch):
    """Weights set between runs must not fall into a window opened before: the window
    is summed when the run ends (imitated: the all_reduce of 2 identical processes
    doubles), so set_weights afterwards sticks."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "all_reduce", lambda tensor, group=None, op=None: tensor.mul_(2))
    monkeypatch.setattr(dist, "gather_object", lambda obj, out, dst=0, group=None:
                        out and out.__setitem__(slice(None), [obj] * len(out)))
    net = ns.Network(batch=1, seed=4, dt=0.5, data_parallel=Partition(0, 2), weight_window=100)
    src = net.population(20, ns.PoissonSource(rate=80.0))
    out = net.population(5, ns.LIF(tau_m=10.0), init={"v": ns.Uniform(-65.0, -55.0)})
    proj = net.projection(src, out, ns.AllToAll(), weight=ns.Uniform(1.0, 4.0), sparse=False)
    rule = net.add_rule(proj, ns.rules.STDP(a_plus=0.08, a_minus=0.085, w_max=4.0))
    net.run(15.0, progress=False)  # 30 steps: the window is summed at the run's end
    assert not net._exchange._open
    rule.learning = False
    proj.set_weights(np.full((20, 5), 2.0))
    net.run(60.0, progress=False)
    assert np.array_equal(proj.weight_matrix(), np.full((20, 5), 2.0))


BPTT_SCRIPT = os.path.join(HERE, "distributed", "bptt_run.py")


@pytest.mark.parametrize("method", ["bptt", "online"])
def test_data_parallel_gradient_training_gives_the_weights_of_one_process(tmp_path, method):
    """RateClassifier trained by surrogate gradients, batch 8 in one process against 4 + 4
    rows on 2 processes with the gradients summed before each Adam step (as DDP does):
    the same weights up to float rounding, the same predictions."""
    one, two = _alone_and_on_two(tmp_path, BPTT_SCRIPT, "--method", method)
    assert np.array_equal(one["predictions"], two["predictions"])
    assert abs(float(one["loss"]) - float(two["loss"])) < 1e-5
    for key in ("input_hidden", "bias_hidden", "hidden_output", "bias_output"):
        assert np.abs(one[key] - two[key]).max() < 1e-6, key
    assert np.abs(one["input_hidden"]).max() > 0.05  # trained weights, not zeros


THREE_FACTOR_SCRIPT = os.path.join(HERE, "distributed", "three_factor_run.py")


@pytest.mark.parametrize("method", ["local", "bptt"])
def test_data_parallel_three_factor_learning_gives_the_weights_of_one_process(tmp_path, method):
    """e-prop rules applied at the end of each sample with per-sample error and gate
    signals (or BPTT, gradients summed): batch 8 alone against 4 + 4 rows on 2 processes.
    The weights agree up to float rounding, the predictions are the same, and the joined
    log's per-sample error signal (rows side by side) equals one process's."""
    one, two = _alone_and_on_two(tmp_path, THREE_FACTOR_SCRIPT, "--method", method)
    assert np.array_equal(one["predictions"], two["predictions"])
    assert one["error"].shape == two["error"].shape and one["error"].shape[1] == 8
    if method == "local":
        assert np.abs(one["error"] - two["error"]).max() < 1e-5
    from neurosim.networks.structured_snn import StructuredRecurrentSNN

    untrained = StructuredRecurrentSNN(n_in=64, hidden=[40], classes=4, per_class=5, k_readout=10,
                                       steps=10, batch=8, modulators=6, seed=2, method=method)
    for key in ("ff0", "rec0", "lr0"):
        assert np.abs(one[key] - two[key]).max() < 1e-6, key
        moved = np.abs(one[key] - untrained.net.projections[key].weight_matrix()).max()
        assert moved > 0.001, key  # learning moved the weights far more than that


CCL_SCRIPT = os.path.join(HERE, "distributed", "ccl_run.py")


def test_data_parallel_counter_current_learning_gives_the_weights_of_one_process(tmp_path):
    """A CCLNet MLP, 2 epochs in batches of 24 (the last of each epoch partial): alone
    against each process's share of every batch, gradients summed before clipping (as
    DDP does, each share's loss weighted by its size). The forward and feedback weights
    agree up to float rounding."""
    one, two = _alone_and_on_two(tmp_path, CCL_SCRIPT, "--batch", "24")
    assert np.abs(one["train_loss"] - two["train_loss"]).max() < 1e-5
    assert one["train_loss"][1] < one["train_loss"][0]  # it learns
    for key in one.files:
        assert np.abs(one[key] - two[key]).max() < 1e-6, key
