"""Neuromodulated gating: per-neuron gain and threshold offset (modes), on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.gating import Gate

BACKENDS = ["torch", "numba"]


def _network(backend: str, batch: int = 2, gated: bool = True, **lif) -> tuple[ns.Network, ns.Population]:
    net = ns.Network(backend=backend, dt=0.1, seed=3, batch=batch)
    src = net.population(40, ns.PoissonSource(rate=150.0), name="src")
    hidden = net.population(25, ns.LIF(**lif), name="hidden", gated=gated)
    # weights that are multiples of 1/4 mV: sums and gains of 2 are exact in float32
    w = np.random.default_rng(0).integers(0, 24, size=(40, 25)) / 4.0
    net.projection(src, hidden, weight=w, receptor="exc", name="in")
    return net, hidden


def _counts(net: ns.Network, pop: ns.Population, steps: int) -> torch.Tensor:
    counter = net.monitors.get(f"counts/{pop.name}") or net.spike_counter(pop)
    net.run(steps=steps, progress=False)
    return counter.counts.clone()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gain_and_offset_equal_scaled_weights_and_raised_threshold(backend):
    """A gain of 2 is the same network with doubled weights; an offset of 3 mV is the
    same network with its threshold 3 mV higher (exact: every value is a binary fraction)."""
    gated, h = _network(backend)
    h.gate.add_mode("m", gain=2.0, offset=3.0)
    h.gate.use("m")
    ref = ns.Network(backend=backend, dt=0.1, seed=3, batch=2)
    src = ref.population(40, ns.PoissonSource(rate=150.0), name="src")
    plain = ref.population(25, ns.LIF(v_thresh=-47.0), name="hidden")
    w = np.random.default_rng(0).integers(0, 24, size=(40, 25)) / 4.0
    ref.projection(src, plain, weight=2 * w, receptor="exc", name="in")
    a, b = _counts(gated, h, 400), _counts(ref, plain, 400)
    assert a.sum() > 20
    assert torch.equal(a, b)
    assert torch.equal(h.state["v"], plain.state["v"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_switching_modes_changes_firing_not_weights(backend):
    net, h = _network(backend)
    first = (torch.arange(25) < 12).double()
    h.gate.add_mode("first", gain=2.0 * first, offset=-2.0 + 50.0 * (1 - first))
    h.gate.add_mode("second", gain=2.0 * (1 - first), offset=-2.0 + 50.0 * first)
    weights = net.projections["in"].weight.clone()
    h.gate.use("first")
    a = _counts(net, h, 300)
    h.gate.use("second")
    b = _counts(net, h, 300) - a
    on = first.bool()
    assert (a[:, on] > 0).all() and (a[:, ~on] == 0).all()
    assert (b[:, ~on] > 0).all() and (b[:, on] == 0).all()
    assert torch.equal(net.projections["in"].weight, weights)  # bit-identical
    h.gate.use("first")  # and back
    c = _counts(net, h, 300) - a - b
    assert (c[:, on] > 0).all() and (c[:, ~on] == 0).all()


def test_modulator_driven_gate_same_spikes_on_both_backends_compiled():
    results = {}
    for backend in BACKENDS:
        net, h = _network(backend, batch=3)
        h.gate.add_mode("low", gain=0.5, offset=5.0)
        h.gate.add_mode("high", gain=torch.linspace(1.0, 2.5, 25), offset=torch.linspace(-3.0, 1.0, 25))
        # a per-sample, per-neuron signal: each sample sits at its own point between the modes
        net.modulators.add("dopamine", size=25, per_sample=True)
        net.modulators.set("dopamine", torch.linspace(0.0, 1.0, 3)[:, None].expand(3, 25))
        h.gate.drive("dopamine", low="low", high="high")
        mon = net.spike_monitor(h)
        counter = net.spike_counter(h)
        net.run(steps=500, progress=False)
        results[backend] = (net.reader().spikes("hidden"), h.state["v"].clone())
        per_sample = counter.counts.sum(1)
        assert per_sample[0] < per_sample[1] < per_sample[2]  # each sample in its own mode
        if backend == "numba":  # one compiled call per chunk: no Python between steps
            assert not net.schedule.notes, net.schedule.notes
            assert all(e.kind != "python" for ph in net.schedule.phases for e in ph.entries)
        del mon
    (ta, va), (na, vn) = results["torch"], results["numba"]
    for x, y in zip(ta, na):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert torch.equal(va, vn)


@pytest.mark.parametrize("backend", BACKENDS)
def test_driven_gate_interpolates_between_modes(backend):
    """Signal 0 is the low mode, 1 the high one: the run equals using that mode."""
    for level, mode in ((0.0, "low"), (1.0, "high")):
        net, h = _network(backend)
        h.gate.add_mode("low", gain=0.5, offset=2.0)
        h.gate.add_mode("high", gain=1.5, offset=-1.0)
        net.modulators.add("da")
        net.modulators.set("da", level)
        h.gate.drive("da", "low", "high")
        driven = _counts(net, h, 300)
        ref, g = _network(backend)
        g.gate.add_mode(mode, **({"gain": 0.5, "offset": 2.0} if mode == "low" else {"gain": 1.5, "offset": -1.0}))
        g.gate.use(mode)
        assert torch.equal(driven, _counts(ref, g, 300))


@pytest.mark.parametrize("backend", BACKENDS)
def test_graded_gain_and_activity_gates(backend):
    net = ns.Network(backend=backend, batch=4, dt=1.0, seed=0)
    x = net.population(6, ns.GradedInput(), name="x")
    y = net.population(5, ns.Graded("identity"), name="y", gated=True)
    z = net.population(5, ns.Graded("identity"), name="z")
    w = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    net.projection(x, y, weight=w, receptor="in", delay=0)
    net.projection(y, z, weight=np.eye(5, dtype=np.float32), receptor="in", delay=0)
    inp = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    x.inputs["i_ext"].copy_(inp)
    gain = torch.tensor([0.5, 1.0, 2.0, 0.0, 1.5])
    offset = torch.tensor([-0.5, 0.0, 0.5, 0.0, 1.0])
    y.gate.add_mode("m", gain=gain, offset=offset)
    y.gate.use("m")
    r = (inp.double() @ torch.as_tensor(w).double()) * gain.double()
    net.run(steps=1, progress=False)
    assert torch.allclose(y.state["r"].double(), r, atol=1e-5)
    assert torch.allclose(z.state["r"].double(), r, atol=1e-5)  # no activity gate: r is sent
    y.gate.activity_gate = "hard"
    net.run(steps=1, progress=False)
    assert torch.allclose(z.state["r"].double(), torch.where(r > offset.double(), r, 0.0), atol=1e-5)
    y.gate.activity_gate = "soft"
    y.gate.temperature = 0.25
    net.run(steps=1, progress=False)
    soft = r / (1 + torch.exp(-(r - offset.double()) / 0.25))
    assert torch.allclose(z.state["r"].double(), soft, atol=1e-5)
    assert torch.allclose(y.state["r"].double(), r, atol=1e-5)  # its own r stays ungated


def test_graded_gates_agree_between_backends():
    outs = []
    for backend in BACKENDS:
        net = ns.Network(backend=backend, batch=3, dt=1.0, seed=0)
        x = net.population(8, ns.GradedInput(), name="x")
        y = net.population(7, ns.Graded("elu"), name="y", gated=True)
        z = net.population(7, ns.Graded("identity"), name="z")
        net.projection(x, y, weight=np.random.default_rng(3).normal(size=(8, 7)), receptor="in", delay=0)
        net.projection(y, z, weight=np.eye(7), receptor="in", delay=0)
        x.inputs["i_ext"].copy_(torch.randn(3, 8, generator=torch.Generator().manual_seed(4)))
        y.gate.add_mode("m", gain=torch.linspace(0.2, 2.0, 7), offset=torch.linspace(-0.5, 0.5, 7))
        y.gate.use("m")
        y.gate.activity_gate = "soft"
        y.gate.temperature = 0.3
        net.run(steps=1, progress=False)
        soft = z.state["r"].clone()
        y.gate.activity_gate = "hard"
        net.run(steps=1, progress=False)
        outs.append((soft, z.state["r"].clone()))
    # (ELU's exp may differ in the last bit between numba and torch on some CPUs)
    assert torch.equal(outs[0][0], outs[1][0]) or torch.allclose(outs[0][0], outs[1][0], rtol=0, atol=1e-6)
    assert torch.equal(outs[0][1], outs[1][1]) or torch.allclose(outs[0][1], outs[1][1], rtol=0, atol=1e-6)


def test_mode_switch_recorded_in_the_log(tmp_path):
    log = tmp_path / "run.h5"
    net = ns.Network(backend="numba", dt=0.1, seed=3, log=str(log))
    src = net.population(10, ns.PoissonSource(rate=100.0), name="src")
    h = net.population(5, ns.LIF(), name="h", gated=True)
    net.projection(src, h, weight=2.0)
    h.gate.add_mode("rotated", gain=1.5, offset=-1.0)
    net.run(steps=100, progress=False)
    h.gate.use("rotated")
    net.run(steps=100, progress=False)
    h.gate.use("neutral")
    net.run(steps=50, progress=False)
    net.log.close()
    versions = ns.LogReader(str(log)).network_versions()
    modes = [(step, next(p for p in d["populations"] if p["name"] == "h")["gate"]["mode"])
             for step, d in versions]
    assert modes == [(0, "neutral"), (100, "rotated"), (200, "neutral")]


def test_modes_save_and_load(tmp_path):
    _, h = _network("torch")
    h.gate.add_mode("a", gain=torch.linspace(0.0, 3.0, 25), offset=torch.linspace(-1.0, 1.0, 25))
    path = tmp_path / "modes.npz"
    h.gate.save_modes(str(path))
    _, other = _network("torch")
    assert other.gate.load_modes(str(path)) == ["a", "neutral"]
    for k in range(2):
        assert torch.equal(other.gate.modes["a"][k], h.gate.modes["a"][k])


def test_bad_modes_are_refused():
    net, h = _network("torch")
    with pytest.raises(ValueError, match="25 values"):
        h.gate.add_mode("wrong", gain=torch.ones(24))
    with pytest.raises(KeyError, match="no mode 'missing'.*neutral"):
        h.gate.use("missing")
    with pytest.raises(ValueError, match="gain must be >= 0"):
        h.gate.add_mode("negative", gain=-1.0)
    with pytest.raises(ValueError, match="finite"):
        h.gate.add_mode("nan", gain=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        h.gate.add_mode("inf", offset=float("inf"))
    with pytest.raises(ValueError, match="graded"):
        h.gate.activity_gate = "soft"
    with pytest.raises(ValueError, match="temperature"):
        h.gate.temperature = 0.0
    h.gate.add_mode("a")
    net.modulators.add("wide", size=7)
    h.gate.drive("wide", "neutral", "a")
    with pytest.raises(ValueError, match="7 values"):
        net.run(steps=1, progress=False)
    h.gate.drive("nothing", "neutral", "a")
    with pytest.raises(ValueError, match="not registered"):
        net.run(steps=1, progress=False)
    with pytest.raises(ValueError, match="cannot be gated"):
        net.population(3, ns.SpikeGenerator([1.0], [0]), gated=True)


def test_unroll_gives_a_normal_runs_spikes():
    outs = []
    for unrolled in (False, True):
        net, h = _network("torch")
        h.gate.add_mode("m", gain=torch.linspace(0.5, 2.0, 25), offset=torch.linspace(-2.0, 2.0, 25))
        h.gate.use("m")
        h.gate.make_trainable()
        if unrolled:
            out = net.unroll(300, record={h: "spikes"})["hidden"]["spikes"]
            outs.append((out.detach().bool(), h.state["v"].clone()))
        else:
            mon = net.spike_monitor(h)
            net.run(steps=300, progress=False)
            raster = torch.zeros(300, 2, 25, dtype=torch.bool)
            steps, neurons, rows = (net.reader().spikes("hidden")[k] for k in range(3))
            raster[torch.as_tensor(steps), torch.as_tensor(rows), torch.as_tensor(neurons)] = True
            outs.append((raster, h.state["v"].clone()))
            del mon
    assert outs[0][0].sum() > 20
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])


def _graded_gate_net(dtype="float64"):
    net = ns.Network(backend="torch", batch=5, dt=1.0, seed=0, dtype=dtype)
    x = net.population(6, ns.GradedInput(), name="x")
    y = net.population(4, ns.Graded("tanh"), name="y", gated=True)
    net.projection(x, y, weight=np.random.default_rng(5).normal(size=(6, 4)), receptor="in", delay=0)
    x.inputs["i_ext"].copy_(torch.randn(5, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64))
    y.gate.activity_gate = "soft"
    y.gate.temperature = 0.5
    y.gate.set(gain=torch.tensor([0.5, 1.0, 1.5, 2.0]), offset=torch.tensor([0.1, -0.2, 0.0, 0.3]))
    return net, y


def test_gate_gradients_equal_finite_differences():
    """d loss / d (gain, offset) through a soft-gated tanh layer, against central
    differences of the same network run normally (no autograd)."""
    net, y = _graded_gate_net()
    gain, offset = y.gate.make_trainable()
    target = torch.linspace(-0.5, 0.5, 20, dtype=torch.float64).reshape(5, 4)

    def loss_of(sent):
        return ((sent - target) ** 2).sum()

    sent = net.unroll(1, record={y: "spikes"})["y"]["spikes"][0]
    loss_of(sent).backward()
    for param in (gain, offset):
        for j in range(4):
            values = []
            for sign in (1, -1):
                with torch.no_grad():
                    param[j] += sign * 1e-6
                net.run(steps=1, progress=False)
                values.append(float(loss_of(y.spikes)))
                with torch.no_grad():
                    param[j] -= sign * 1e-6
            numeric = (values[0] - values[1]) / 2e-6
            assert abs(float(param.grad[j]) - numeric) < 1e-6 * max(1.0, abs(numeric))


def test_training_a_gate_reduces_the_loss_and_leaves_weights():
    net, y = _graded_gate_net("float32")
    weights = net.projections[next(iter(net.projections))].weight.clone()
    y.gate.make_trainable()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    assert len(net.parameters()) == 2  # the gate's gain and offset only
    target = torch.zeros(5, 4)
    target[:, 1] = 0.5
    losses = []
    for _ in range(60):
        opt.zero_grad()
        sent = net.unroll(1, record={y: "spikes"})["y"]["spikes"][0]
        loss = ((sent - target) ** 2).mean()
        loss.backward()
        opt.step()
        net.detach_state()  # each step is a sample of its own
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert torch.equal(net.projections[next(iter(net.projections))].weight, weights)
    y.gate.store_mode("fitted")
    assert torch.equal(y.gate.modes["fitted"][0], y.gate.gain_parameter.detach().clamp_min(0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_offset_raises_an_snntorch_neurons_threshold_reset_included(backend):
    """snnTorch neurons reset from the last step's membrane against the threshold: the
    offset raises that too, so offset 0.5 is the same neuron with threshold 1.5."""
    results = []
    for gated in (True, False):
        net = ns.Network(backend=backend, dt=1.0, batch=2, seed=0)
        x = net.population(3, ns.GradedInput(), name="x")
        h = net.population(4, ns.SnnTorchLeaky(beta=1.0, threshold=1.0 if gated else 1.5), name="h",
                           gated=gated)
        net.projection(x, h, weight=np.full((3, 4), 0.125), receptor="syn", delay=0)
        x.inputs["i_ext"].fill_(1.0)
        if gated:
            h.gate.set(offset=0.5)
        counter = net.spike_counter(h)
        net.run(steps=40, progress=False)
        results.append((counter.counts.clone(), h.state["mem"].clone()))
    assert results[0][0].sum() > 0
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_trained_weights_into_a_gated_population_are_not_stale(backend):
    net = ns.Network(backend=backend, dt=1.0, batch=1, seed=0)
    x = net.population(2, ns.GradedInput(), name="x")
    y = net.population(2, ns.Graded("identity"), name="y", gated=True)
    proj = net.projection(x, y, weight=np.ones((2, 2)), receptor="in", delay=0, trainable=True)
    y.gate.set(gain=2.0)
    x.inputs["i_ext"].fill_(2.0)
    net.run(steps=1, progress=False)
    assert y.state["r"].tolist() == [[8.0, 8.0]]
    with torch.no_grad():
        proj.parameter.add_(1.0)  # an optimiser's step
    net.run(steps=1, progress=False)
    assert y.state["r"].tolist() == [[16.0, 16.0]]


def test_driven_gate_backpropagates_and_follows_reset():
    net = ns.Network(backend="torch", dt=1.0, batch=2, seed=0)
    x = net.population(3, ns.GradedInput(), name="x")
    y = net.population(2, ns.Graded("tanh"), name="y", gated=True)
    proj = net.projection(x, y, weight=np.full((3, 2), 0.3), receptor="in", delay=0, trainable=True)
    y.gate.add_mode("low", gain=0.5)
    y.gate.add_mode("high", gain=2.0)
    net.modulators.add("da")
    y.gate.drive("da", "low", "high")
    x.inputs["i_ext"].fill_(1.0)
    net.modulators.set("da", 1.0)
    out = net.unroll(3, record={y: "r"})["y"]["r"]
    out.sum().backward()  # the drive wrote the gate's arrays every step: the graph holds copies
    assert proj.parameter.grad is not None and float(proj.parameter.grad.abs().sum()) > 0
    assert torch.allclose(y.gate.gain, torch.full((2, 2), 2.0))
    net.modulators.set("da", 0.0)
    net.reset_state()  # the gate follows the signal at once (modulators reset to 0)
    assert torch.allclose(y.gate.gain, torch.full((2, 2), 0.5))


def test_gate_in_force_is_saved_and_loaded(tmp_path):
    net, h = _network("torch")
    h.gate.add_mode("m", gain=torch.linspace(0.5, 1.5, 25), offset=torch.linspace(-1, 1, 25))
    h.gate.use("m")
    net.save_state(str(tmp_path / "s.h5"))
    other, g = _network("torch")
    other.load_state(str(tmp_path / "s.h5"))
    assert torch.equal(g.gate.gain, h.gate.gain) and torch.equal(g.gate.offset, h.gate.offset)
    assert _counts(other, g, 200).sum() == _counts(net, h, 200).sum()  # and it acts


def test_spiking_gate_gradients_are_the_surrogates():
    """A gated snnTorch leaky layer, one step from rest: ``mem = gain * (x W)``, a spike
    where ``mem - (threshold + offset) > 0``. The gradients of the spike count with respect
    to the gain and the offset are snnTorch's atan surrogate of that difference, times
    ``x W`` and -1, computed here by hand through ``snntorch.surrogate``."""
    import snntorch.surrogate as sg

    net = ns.Network(backend="torch", batch=3, dt=1.0, seed=0, dtype="float64")
    x = net.population(4, ns.GradedInput(), name="x")
    h = net.population(5, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="h", gated=True)
    w = np.random.default_rng(2).normal(0.0, 0.7, size=(4, 5))
    net.projection(x, h, weight=w, receptor="syn", delay=0)
    inputs = torch.randn(3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x.inputs["i_ext"].copy_(inputs)
    h.gate.set(gain=torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5]), offset=torch.tensor([0.2, -0.1, 0.0, 0.3, -0.4]))
    gain, offset = h.gate.make_trainable()
    spikes = net.unroll(1, record={h: "spikes"})["h"]["spikes"][0]
    spikes.sum().backward()

    drive = inputs @ torch.as_tensor(w)
    g = gain.detach().clone().requires_grad_(True)
    o = offset.detach().clone().requires_grad_(True)
    by_hand = sg.atan()(g * drive - (1.0 + o))
    assert torch.equal(spikes.detach(), by_hand.detach())  # the same spikes
    assert 0 < float(spikes.detach().sum()) < spikes.numel()
    by_hand.sum().backward()
    assert float(g.grad.abs().sum()) > 0 and float(o.grad.abs().sum()) > 0
    torch.testing.assert_close(gain.grad, g.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(offset.grad, o.grad, rtol=1e-12, atol=1e-14)


def test_a_held_driving_signal_is_followed_through_every_change_on_numba_as_on_torch():
    """On numba a gate driven by a modulator that only Python changes is computed again
    only when the signal differs from the one it was last computed from. Every way of
    changing the signal or the gate must still reach the next step: ``set`` between runs,
    an in-place write from a callback in the middle of a run, a new ``drive``, a mode put
    in force and driven again, ``reset_state``. Spikes, membranes and the gate in force
    equal the torch backend's, which computes the gate at every step."""
    results = {}
    for backend in BACKENDS:
        net, h = _network(backend, batch=2)
        h.gate.add_mode("low", gain=0.5, offset=4.0)
        h.gate.add_mode("high", gain=torch.linspace(1.0, 2.5, 25), offset=torch.linspace(-3.0, 1.0, 25))
        h.gate.add_mode("other", gain=1.25, offset=-0.5)
        net.modulators.add("da", size=25)
        net.modulators.set("da", torch.linspace(0.0, 1.0, 25))
        h.gate.drive("da", low="low", high="high")
        net.spike_monitor(h)

        def poke(n):
            if n.clock.step == 700:  # in place, not through set(), from inside the run
                n.modulators["da"].value[:10] = 0.25

        net.add_callback(poke)
        trace = []

        def run(steps):
            net.run(steps=steps, progress=False)
            trace.append((h.state["v"].clone(), h.gate.gain.clone(), h.gate.offset.clone()))

        run(300)
        net.modulators.set("da", torch.linspace(1.0, 0.0, 25))  # between runs
        run(300)
        run(300)  # the callback writes in place at step 700
        h.gate.drive("da", low="other", high="high")  # new modes, same signal
        run(200)
        h.gate.use("other")  # a mode, then driven again by the unchanged signal
        run(100)
        h.gate.drive("da", low="low", high="high")
        run(200)
        net.reset_state()
        run(200)
        results[backend] = (net.reader().spikes("hidden"), trace)
        if backend == "numba":  # the signal only Python changes: the cached form ran
            assert not net.modulators["da"].written_by_the_step
    (ts, tt), (ns_, nt) = results["torch"], results["numba"]
    assert len(ts[0]) > 100
    for x, y in zip(ts, ns_):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    for (tv, tg, to), (nv, ng, no) in zip(tt, nt):
        assert torch.equal(tv, nv) and torch.equal(tg, ng) and torch.equal(to, no)


def test_a_driven_gate_run_under_inference_mode_can_be_changed_after_it():
    net, h = _network("numba")
    h.gate.add_mode("low", gain=0.5, offset=4.0)
    h.gate.add_mode("high", gain=1.5, offset=-1.0)
    net.modulators.add("da")
    net.modulators.set("da", 0.3)
    h.gate.drive("da", "low", "high")
    with torch.inference_mode():  # (the gate's bookkeeping is made here, at the first run)
        net.run(steps=20, progress=False)
    h.gate.use("low")  # a write from Python after it
    h.gate.drive("da", "low", "high")
    net.run(steps=20, progress=False)
    assert torch.equal(h.gate.gain, torch.full_like(h.gate.gain, 0.5 + 0.3 * (1.5 - 0.5)))


def test_a_gate_driven_by_a_signal_the_step_moves_is_followed_every_step_alike():
    """A decaying modulator driven by the gated population's own spikes changes inside
    every step: numba computes the gate in the compiled step (no Python between steps)
    and gives torch's spikes, membranes and gate."""
    results = {}
    for backend in BACKENDS:
        net, h = _network(backend, batch=2)
        h.gate.add_mode("low", gain=0.5, offset=4.0)
        h.gate.add_mode("high", gain=torch.linspace(1.0, 2.5, 25), offset=torch.linspace(-3.0, 1.0, 25))
        net.modulators.add("da", tau_ms=5.0, baseline=0.2)
        net.modulators.drive("da", h, gain=0.5)
        h.gate.drive("da", low="low", high="high")
        net.spike_monitor(h)
        net.run(steps=600, progress=False)
        assert net.modulators["da"].written_by_the_step and not h.gate.held
        if backend == "numba":
            assert not net.schedule.notes, net.schedule.notes
            assert all(e.kind != "python" for ph in net.schedule.phases for e in ph.entries)
        results[backend] = (net.reader().spikes("hidden"), h.state["v"].clone(), h.gate.gain.clone(),
                            float(net.modulators["da"].value))
    (ts, tv, tg, tm), (ns_, nv, ng, nm) = results["torch"], results["numba"]
    assert len(ts[0]) > 100 and tm != 0.2  # it fired and moved the signal
    for x, y in zip(ts, ns_):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert torch.equal(tv, nv) and torch.equal(tg, ng) and tm == nm


def test_a_held_signal_costs_numba_one_computation_per_change(monkeypatch):
    """A signal only Python writes cannot change during a compiled stretch: numba
    computes the gate between stretches, once per change, not at every step, and
    delivers weights pre-scaled by the gain, as for a mode."""
    calls = []
    real = Gate.driven_values
    monkeypatch.setattr(Gate, "driven_values", lambda self, value: calls.append(1) or real(self, value))
    net, h = _network("numba", batch=2)
    h.gate.add_mode("high", gain=2.0, offset=-1.0)
    net.modulators.add("da", size=25)
    net.modulators.set("da", torch.linspace(0.0, 1.0, 25))
    h.gate.drive("da", low="neutral", high="high")
    net.add_callback(lambda n: None, every=50)  # stretches of 50 steps
    net.run(steps=500, progress=False)
    assert len(calls) == 1 and net.projections["in"].gate_scaled
    net.modulators.set("da", torch.linspace(1.0, 0.0, 25))
    net.run(steps=500, progress=False)
    assert len(calls) == 2
    torch.testing.assert_close(h.gate.gain[0], 1.0 + torch.linspace(1.0, 0.0, 25, dtype=h.gate.gain.dtype))


@pytest.mark.parametrize("between", ["reset_state", "unroll"])
def test_a_held_signal_that_comes_back_after_python_set_the_gate_is_followed(between):
    """Signal A, then B, then Python sets the gate from the signal (``reset_state`` or a
    differentiable step), then A again: numba must not keep the gate of B (it last
    computed the gate from A, so A alone would look unchanged)."""
    results = {}
    for backend in BACKENDS:
        net, h = _network(backend, batch=2)
        h.gate.add_mode("low", gain=0.5, offset=4.0)
        h.gate.add_mode("high", gain=2.0, offset=-3.0)
        net.modulators.add("da")
        net.modulators.set("da", 0.2)
        h.gate.drive("da", "low", "high")
        net.spike_monitor(h)
        net.run(steps=100, progress=False)
        net.modulators.set("da", 0.9)
        if between == "reset_state":
            net.reset_state()
        else:
            with torch.no_grad():
                net.unroll(5)
        net.modulators.set("da", 0.2)
        net.run(steps=300, progress=False)
        results[backend] = (net.reader().spikes("hidden"), h.state["v"].clone(), h.gate.gain.clone())
        torch.testing.assert_close(h.gate.gain, torch.full_like(h.gate.gain, 0.5 + 0.2 * 1.5))
    (ts, tv, tg), (ns_, nv, ng) = results["torch"], results["numba"]
    for x, y in zip(ts, ns_):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert torch.equal(tv, nv) and torch.equal(tg, ng)
