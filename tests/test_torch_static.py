"""The torch backend's static step (clock on the device, padded spike lists) gives the
per-entry step's results bit for bit, compiles whole, and keeps its operator budget."""

import collections

import numpy as np
import pytest
import torch

import neurosim as ns
import neurosim.backends.torch_static as torch_static
from neurosim.networks import build_cuba
from killing import kill_after_start
from test_backends_agree import zoo


def cuba(static: bool, n: int = 1000, batch: int = 1, sparse: bool | None = None,
         delay_steps: int = 1) -> ns.Network:
    net = ns.Network(dt=0.1, seed=3, batch=batch, backend="torch", static_step=static)
    c = build_cuba(net, n, sparse=sparse, delay_steps=delay_steps)
    net.spike_monitor(c.exc)
    net.spike_monitor(c.inh)
    net.spike_counter(c.exc, name="exc_counts")
    net.state_monitor(c.exc, ["v", "i_e", "i_i"], neurons=[0, 5, 17], every=3)
    net.state_monitor(c.inh, ["v"])
    return net


def graded_and_gated(static: bool, batch: int = 3) -> ns.Network:
    """A Poisson drive into a gated LIF layer and a graded layer fed over CSR and dense
    projections, with per-synapse delays."""
    net = ns.Network(dt=0.1, seed=8, batch=batch, backend="torch", static_step=static)
    src = net.population(120, ns.PoissonSource(rate=np.linspace(5.0, 90.0, 120)), name="src")
    hid = net.population(50, ns.LIF(tau_m=12.0), name="hid", gated=True)
    hid.gate.set(offset=np.linspace(-1.0, 1.0, 50), gain=np.linspace(0.5, 1.5, 50))
    rate = net.population(30, ns.Graded("relu"), name="rate")
    out = net.population(20, ns.LIF(), name="out")
    net.projection(src, hid, ns.FixedProbability(0.3), weight=ns.Uniform(0.5, 4.0), sparse=True,
                   delay=np.random.default_rng(1).integers(1, 6, size=(120, 50)))
    net.projection(src, rate, ns.FixedProbability(0.4), weight=ns.Uniform(-1.0, 2.0), sparse=False,
                   receptor="in")
    net.projection(hid, out, ns.FixedProbability(0.5), weight=ns.Uniform(1.0, 5.0), sparse=False)
    net.projection(rate, out, ns.FixedProbability(0.5), weight=ns.Uniform(0.0, 0.5), sparse=True)
    for pop in (src, hid, out):
        net.spike_monitor(pop)
    net.state_monitor(rate, ["r"], every=2)
    net.state_monitor(hid, ["v"], neurons=[1, 2, 40])
    return net


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (``torch.equal`` takes -0.0 for 0.0)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def assert_same_runs(a: ns.Network, b: ns.Network) -> None:
    ra, rb = a.reader(), b.reader()
    for pop in a.populations:
        if any(getattr(m, "population", None) is a.populations[pop] and m.record_kind == "record_spikes"
               for m in a.monitors.values()):
            for x, y in zip(ra.spikes(pop), rb.spikes(pop)):
                np.testing.assert_array_equal(x, y)
    for name, pop in a.populations.items():
        for var, value in pop.state.items():
            assert same_bits(value, b.populations[name].state[var]), (name, var)
    for name, mon in a.monitors.items():
        for key, value in mon.arrays().items():
            if key in ("counts",):
                assert torch.equal(value, b.monitors[name].arrays()[key]), name


def run_both(build, ms: float = 150.0, device_clock: bool = False,
             **kwargs) -> tuple[ns.Network, ns.Network]:
    """The static step's run and the per-entry step's (``device_clock``: the static step
    reads rings, rows and random streams from the device clock, as a CUDA graph does)."""
    nets = []
    for static in (True, False):
        net = build(static, **kwargs)
        net.backend.host_indices = not device_clock
        net.run(ms / 2, progress=False)
        net.run(ms / 2, progress=False)  # (two runs: the clock and lists carry over)
        nets.append(net)
    return nets[0], nets[1]


@pytest.mark.parametrize("kwargs", [dict(), dict(batch=3), dict(sparse=False),
                                    dict(sparse=False, batch=2), dict(batch=17, sparse=False),
                                    dict(delay_steps=4)],
                         ids=["csr", "csr-batch3", "dense", "dense-batch2", "dense-batch17", "delay4"])
@pytest.mark.parametrize("device_clock", [False, True], ids=["host-step", "device-clock"])
def test_cuba_steps_give_the_per_entry_results_bit_for_bit(kwargs, device_clock):
    static, per_entry = run_both(cuba, device_clock=device_clock, **kwargs)
    assert static.reader().spikes("exc")[0].size > 100
    assert_same_runs(static, per_entry)


@pytest.mark.parametrize("device_clock", [False, True], ids=["host-step", "device-clock"])
def test_graded_gated_and_delayed_projections_give_the_per_entry_results(device_clock):
    static, per_entry = run_both(graded_and_gated, ms=100.0, device_clock=device_clock)
    assert static.reader().spikes("out")[0].size > 10
    assert_same_runs(static, per_entry)


def test_a_network_with_host_entries_gives_the_per_entry_results():
    """Spike generators, step currents, Python monitors and a callback run on the host
    between the device entries."""
    calls = []

    def build(static, batch=2):
        net = zoo("torch", batch=batch)
        net.static_step = static
        net.add_callback(lambda n: calls.append(n.clock.step), every=37)
        return net

    static, per_entry = run_both(build, ms=120.0, device_clock=True)
    assert static.backend.static_step.host_entries
    assert calls[:len(calls) // 2] == calls[len(calls) // 2:]
    assert_same_runs(static, per_entry)


def test_spike_lists_that_overflow_run_their_slice_again(monkeypatch):
    """With room for one spike, nearly every slice overflows at first: it runs again from
    the copy taken at its start with a larger list, and nothing differs."""
    monkeypatch.setattr(torch_static, "MIN_CAP", 1)
    static, per_entry = run_both(cuba, n=800)
    lists = static.backend.static_step.lists
    assert max(lst.cap for lst in lists.values()) > 1
    assert_same_runs(static, per_entry)


def test_the_spike_list_sizes_follow_the_activity():
    net = cuba(True, n=2000)
    net.run(50.0, progress=False)
    for (name, _), lst in net.backend.static_step.lists.items():
        rate = sum(net.reader().spikes(pop)[0].size for pop in name.split("/")) / 500  # per step
        assert torch_static.MIN_CAP <= lst.cap <= max(torch_static.MIN_CAP, 40 * rate + 64), (name, lst.cap)


@pytest.mark.parametrize("compact", [False, True], ids=["raster", "compact-events"])
def test_a_slice_of_device_entries_compiles_whole_and_runs_the_same(compact):
    """``torch.compile(fullgraph=True)`` raises at a graph break such as a Python branch on
    a tensor's value. (Torch 2.13 traces ``.item()`` and ``nonzero()`` without a break, so
    host reads are caught by the operator count below, not here.) The slice it compiles
    (the device clock, as captured in CUDA graphs), the same slice run eagerly, and a plain
    run (which uses the host's step number where it can) leave the same state."""
    nets = [cuba(True, n=400) for _ in range(3)]
    for net in nets:
        net.compact_spikes = compact
        net.run(10.0, progress=False)  # (lists sized, tables built)
    plain, eager, compiled = nets
    plain.run(steps=5, progress=False)
    eager.backend.static_step.prepare_slice(5)
    eager.backend.static_step.compilable_slice(5)()
    compiled.backend.static_step.prepare_slice(5)
    torch.compile(compiled.backend.static_step.compilable_slice(5), fullgraph=True, backend="eager")()
    for other in (eager, compiled):
        for name, pop in plain.populations.items():
            for var, value in pop.state.items():
                assert same_bits(value, other.populations[name].state[var]), (name, var)
            assert torch.equal(pop.history, other.populations[name].history)
        assert int(other.backend.static_step.t) == plain.clock.step


def test_a_network_with_host_entries_has_no_compilable_slice():
    net = zoo("torch")
    net.run(1.0, progress=False)
    with pytest.raises(ValueError, match="compilable_slice: the network has entries that run on the host"):
        net.backend.static_step.compilable_slice(3)


#: operators that launch no kernel (views and metadata)
VIEWS = {"aten::view", "aten::reshape", "aten::slice", "aten::select", "aten::unsqueeze",
         "aten::as_strided", "aten::to", "aten::expand", "aten::squeeze", "aten::alias",
         "aten::empty", "aten::empty_strided", "aten::lift_fresh", "aten::detach",
         "aten::resolve_conj", "aten::resolve_neg", "aten::_reshape_alias"}
#: operators that make the host wait for the device
HOST_READS = {"aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero",
              "aten::repeat_interleave"}


def step_operators(net: ns.Network, steps: int = 20) -> collections.Counter:
    from torch.profiler import ProfilerActivity, profile
    net.run(steps=steps, progress=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        net.backend.advance(steps, False)
    return collections.Counter(e.name for e in prof.events() if e.name.startswith("aten::") and
                               (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))


def test_one_cuba_step_keeps_its_operator_budget_and_reads_nothing_back():
    """The operators of one CUBA step (its 2 populations stepped as one, its 4 CSR
    projections as 2 deliveries from one spike list, a counter), counted by
    torch.profiler: within the budget, and none that waits for the device (the one host
    read per slice, the spike counts, comes after the slice)."""
    steps = 20

    def plain(static):
        net = ns.Network(dt=0.1, seed=3, backend="torch", static_step=static)
        net.spike_counter(build_cuba(net, 2000).exc)
        return net

    ops = step_operators(plain(True), steps)
    kernels = sum(v for k, v in ops.items() if k not in VIEWS) / steps
    reads = {k: v for k, v in ops.items() if k in HOST_READS}
    assert reads == {} or sum(reads.values()) <= 2, reads  # (the slice's one read)
    print(f"{kernels:.1f} operators per step: {ops.most_common(40)}")
    assert kernels <= 60, f"{kernels:.1f} operators per step: {ops.most_common(12)}"
    # the per-entry step it replaced reads the device several times per step
    old = step_operators(plain(False), steps)
    assert sum(v for k, v in old.items() if k in HOST_READS) >= 4 * steps


def overlapping(static: bool) -> ns.Network:
    """CUBA plus a second projection onto the excitatory receptor of ``exc`` from ``exc``
    and one from a second group of another model: sums that must keep their order."""
    net = ns.Network(dt=0.1, seed=4, backend="torch", static_step=static)
    c = build_cuba(net, 1200)
    alif = net.population(100, ns.AdaptiveLIF(theta_plus=0.5, tau_theta=30.0), name="alif",
                          init={"v": ns.Uniform(-65.0, -50.0)})
    net.projection(c.exc, c.exc, ns.FixedProbability(0.02), weight=ns.Uniform(0.1, 0.5))
    net.projection(c.exc, alif, ns.FixedProbability(0.3), weight=ns.Uniform(2.0, 6.0))
    net.projection(alif, c.inh, ns.FixedProbability(0.3), weight=ns.Uniform(0.5, 2.0))
    net.projection(c.inh, alif, ns.FixedProbability(0.1), weight=-2.0, receptor="inh")
    for pop in (c.exc, c.inh, alif):
        net.spike_monitor(pop)
    return net


def test_populations_of_one_model_step_as_one_and_a_source_delivers_once():
    net = cuba(True, n=1000)
    net.run(5.0, progress=False)
    step = net.backend.static_step
    assert [[p.name for p in g.members] for g in step.groups] == [["exc", "inh"]]
    assert sorted(sorted(p.name for p in m.projections) for m in step.merged) == \
        [["exc_exc", "exc_inh"], ["inh_exc", "inh_inh"]]
    group = step.groups[0]
    exc = net.populations["exc"]
    assert exc.state["v"]._base is group.arrays()["state.v"]  # the member's own tensor is a view
    assert net.projections["exc_inh"].weight._base is step.merged[0].weight


def test_projections_onto_one_receptor_keep_the_order_of_their_sums():
    static, per_entry = run_both(overlapping, ms=100.0)
    sets = [sorted(p.name for p in m.projections) for m in static.backend.static_step.merged]
    assert not any({"exc_exc", "exc_exc_1"} <= set(s) for s in sets), sets
    assert static.reader().spikes("alif")[0].size > 10
    assert_same_runs(static, per_entry)


def test_parameters_weights_and_states_set_between_runs_reach_merged_steps(tmp_path):
    nets = [cuba(static, n=1000) for static in (True, False)]
    for net in nets:
        net.run(20.0, progress=False)
        net.save_state(tmp_path / f"{net.static_step}.pt")
        net.populations["inh"].set_parameters(v_thresh=-51.0)  # (replaces a constant)
        net.projections["exc_inh"].set_weights(net.projections["exc_inh"].weight.clone() * 1.5)
        net.run(20.0, progress=False)
        net.load_state(tmp_path / f"{net.static_step}.pt")
        net.run(20.0, progress=False)
    assert_same_runs(*nets)
    assert nets[0].backend.static_step.groups[0].members[1].constants["v_thresh"].item() == -51.0


@pytest.mark.parametrize("capacity", [1 << 22, 1], ids=["roomy", "one-step-of-room"])
def test_compact_spike_records_on_the_device_log_the_same_spikes(monkeypatch, capacity):
    """The CUDA runs' spike monitors (events written on the device, read once per log
    chunk), here on the CPU; with a buffer of one step's room the step splits its slices
    and writes the log whenever the buffer could not hold another step."""
    import neurosim.monitors as monitors
    monkeypatch.setattr(monitors, "DEVICE_EVENTS", capacity)

    def build(static, **kwargs):
        net = cuba(static, n=1000, **kwargs)
        net.compact_spikes = static
        return net

    for kwargs in (dict(), dict(batch=3, device_clock=True)):
        static, per_entry = run_both(build, ms=60.0, **kwargs)
        mon = static.monitors["spikes/exc"] if "spikes/exc" in static.monitors else \
            next(m for m in static.monitors.values() if m.name == "exc" and m.record_kind == "record_spikes")
        assert mon.device_events
        assert_same_runs(static, per_entry)


def test_compact_records_with_host_entries_log_the_same_spikes():
    def build(static, batch=2):
        net = zoo("torch", batch=batch)
        net.static_step = static
        net.compact_spikes = static
        return net

    static, per_entry = run_both(build, ms=80.0)
    assert static.backend.static_step.event_monitors and static.backend.static_step.host_entries
    assert_same_runs(static, per_entry)


def test_log_chunks_written_on_a_thread_give_the_same_log(tmp_path):
    """A CUDA run's log writes (here forced on the CPU): the same datasets, and the log
    completed only after the last chunk is on disk."""
    logs = []
    for background in (True, False):
        net = ns.Network(dt=0.1, seed=3, backend="torch", log=tmp_path / f"{background}.h5")
        c = build_cuba(net, 800)
        net.spike_monitor(c.exc)
        net.state_monitor(c.inh, ["v"], every=5)
        net.compact_spikes = True
        net._runner.background_writes = background
        net.run(30.0, progress=False)
        net.run(20.0, progress=False)
        with ns.LogReader(str(tmp_path / f"{background}.h5")) as reader:
            assert reader.summary()["completed"]
            logs.append((reader.spikes("exc"), reader.state("inh", "v")))
    (s1, v1), (s2, v2) = logs
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(v1, v2):
        np.testing.assert_array_equal(a, b)


def failing_writes(path, from_step: int) -> ns.Network:
    """CUBA logging to ``path`` on the writer thread, whose writes of chunks ending at
    ``from_step`` or later fail."""
    net = ns.Network(dt=0.1, seed=3, backend="torch", log=path)
    net.spike_monitor(build_cuba(net, 400).exc)
    net._runner.background_writes = True
    original = net.log.append

    def failing(chunk, steps):
        if steps >= from_step:
            raise OSError("disk full (simulated)")
        return original(chunk, steps)

    net.log.append = failing
    return net


def test_a_failed_background_write_fails_the_run_and_leaves_it_incomplete(tmp_path):
    net = failing_writes(tmp_path / "w.h5", 101)
    import neurosim.network as network
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(network, "MAX_CHUNK_STEPS", 100)
        with pytest.raises(OSError, match="disk full"):
            net.run(50.0, progress=False)
    with ns.LogReader(str(tmp_path / "w.h5")) as reader:
        assert not reader.summary()["completed"]


def test_a_parameter_set_before_an_overflowing_slice_is_restored_with_the_slice(monkeypatch):
    """The copy a slice can run again from is taken after the slice joins populations
    again (here after set_parameters replaced a constant), not of the tensors before."""
    monkeypatch.setattr(torch_static, "MIN_CAP", 1)
    nets = []
    for static in (True, False):
        net = cuba(static, n=1000)
        net.run(10.0, progress=False)
        net.populations["exc"].set_parameters(v_thresh=-58.0)  # a burst: lists overflow
        net.run(20.0, progress=False)
        nets.append(net)
    assert_same_runs(*nets)


def test_a_differentiable_unroll_after_a_joined_run_gives_the_per_entry_values():
    outs = []
    for static in (True, False):
        net = cuba(static, n=600)
        net.run(10.0, progress=False)
        with torch.no_grad():
            record = net.unroll(steps=30, record={"exc": ["spikes", "v"], "inh": ["spikes"]})
        net.run(10.0, progress=False)
        outs.append((record, {k: v.clone() for k, v in net.populations["exc"].state.items()}))
    (ra, sa), (rb, sb) = outs
    for pop in ra:
        for var in ra[pop]:
            assert torch.equal(ra[pop][var], rb[pop][var]), (pop, var)
    for var in sa:
        assert same_bits(sa[var], sb[var]), var


def test_a_burst_inside_a_long_slice_keeps_compact_records_within_their_buffer(monkeypatch):
    """A quiet population (spike lists at their smallest, slices long), then every neuron
    firing every step: the overflowing slice runs again with room for its events."""
    import neurosim.monitors as monitors
    monkeypatch.setattr(monitors, "DEVICE_EVENTS", 20000)
    runs = []
    for static in (True, False):
        net = ns.Network(dt=0.1, seed=3, backend="torch", static_step=static)
        pop = net.population(500, ns.LIF(tau_m=0.1, t_ref=0.0), name="p")
        net.spike_monitor(pop)
        net.compact_spikes = static
        net.run(steps=3000, progress=False)
        pop.set_parameters(i_bias=100.0)
        net.run(steps=300, progress=False)
        runs.append(net.reader().spikes("p"))
    assert runs[0][0].size >= 500 * 290
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_a_failed_background_write_is_raised_inside_an_except_block(tmp_path):
    net = failing_writes(tmp_path / "w.h5", 450)  # (the last chunk's)
    with pytest.raises(OSError, match="disk full"):
        try:
            raise KeyError("an error being handled by the caller")
        except KeyError:
            net.run(45.0, progress=False)


def test_a_run_killed_while_the_writer_thread_writes_leaves_a_readable_incomplete_log(tmp_path):
    """A CUDA run's logging (compact records, chunks written on a thread), here on the
    CPU with short chunks, killed by SIGKILL in the middle of a long run."""
    log = tmp_path / "killed.h5"
    script = (
        "import neurosim as ns, neurosim.network as network\n"
        "from neurosim.networks import build_cuba\n"
        "network.MAX_CHUNK_STEPS = 200\n"
        f"net = ns.Network(dt=0.1, seed=1, backend='torch', log={str(log)!r})\n"
        "net.spike_monitor(build_cuba(net, 2000).exc)\n"
        "net.compact_spikes = True\n"
        "net._runner.background_writes = True\n"
        "net.run(100.0, progress=False)\n"
        "print('started', flush=True)\n"
        "net.run(1_000_000.0, progress=False)\n")
    kill_after_start(script, 2.0)
    with ns.LogReader(str(log)) as reader:
        assert not reader.summary()["completed"]
        steps, neurons, _ = reader.spikes("exc")
        assert steps.size > 0 and steps.max() >= 1000 and neurons.max() < 1600


def test_the_step_key_table_is_step_key_for_every_step():
    from neurosim.counter_rng import step_key, step_keys
    for key in (0, 12345, 2**32 - 1):
        for start in (0, 987654, 2**32 - 3):
            assert step_keys(key, start, 6).tolist() == [step_key(key, s) for s in range(start, start + 6)]
