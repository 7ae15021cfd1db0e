"""The numba backend gives the same results as the torch backend, from one model source."""

import numpy as np
import pytest

import neurosim as ns
from neurosim.networks import build_cuba


def zoo(backend, batch=2, seed=5):
    """Every neuron model, dense and CSR projections, uniform and per-synapse delays."""
    net = ns.Network(dt=0.1, seed=seed, batch=batch, backend=backend)
    poisson = net.population(80, ns.PoissonSource(rate=np.linspace(5.0, 80.0, 80)), name="poisson")
    gen = net.population(5, ns.SpikeGenerator(np.arange(0.0, 300.0, 7.3), np.arange(42) % 5), name="gen")
    lif = net.population(60, ns.LIF(tau_m=15.0, t_ref=2.0), name="lif",
                         init={"v": ns.Uniform(-65.0, -52.0)})
    alif = net.population(40, ns.AdaptiveLIF(theta_plus=1.0, tau_theta=50.0,
                                             v_thresh=np.linspace(-52.0, -48.0, 40)), name="alif")
    izh = net.population(30, ns.Izhikevich.preset("regular_spiking", tau_syn=3.0), name="izh")
    chat = net.population(10, ns.Izhikevich.preset("chattering"), name="chat")
    net.projection(poisson, lif, ns.FixedProbability(0.3), weight=ns.Uniform(0.5, 3.0), sparse=True)
    net.projection(poisson, alif, ns.FixedProbability(0.5), weight=ns.Uniform(0.5, 3.0), sparse=False)
    net.projection(gen, lif, ns.AllToAll(), weight=4.0, delay=3)
    net.projection(lif, alif, ns.FixedProbability(0.2), weight=2.0, delay=np.int64(5))
    net.projection(lif, lif, ns.FixedProbability(0.1), weight=-1.5, receptor="inh",
                   delay=np.random.default_rng(0).integers(1, 8, size=(60, 60)))
    net.projection(alif, izh, ns.FixedProbability(0.3), weight=ns.Uniform(0.0, 6.0), sparse=False)
    net.projection(poisson, izh, ns.FixedProbability(0.2), weight=ns.Uniform(0.0, 5.0))
    net.projection(izh, chat, ns.AllToAll(), weight=3.0)
    net.step_current(izh, 4.0, start_ms=20.0, stop_ms=200.0)
    net.step_current(chat, 10.0, start_ms=50.0)
    for pop in (poisson, gen, lif, alif, izh, chat):
        net.spike_monitor(pop)
    net.state_monitor(lif, ["v", "i_e", "i_i"], neurons=[0, 3, 59], every=7)
    net.state_monitor(alif, ["theta"], every=13)
    net.state_monitor(izh, ["v", "u", "i_ext"], neurons=[1, 2])
    net.weight_monitor(net.projections["alif_izh"], every=400)
    return net


@pytest.fixture(scope="module")
def zoo_runs():
    runs = {}
    for backend in ("torch", "numba"):
        net = zoo(backend)
        net.run(300.0, progress=False)
        runs[backend] = net
    return runs


@pytest.mark.parametrize("pop", ["poisson", "gen", "lif", "alif", "izh", "chat"])
def test_identical_spike_trains(zoo_runs, pop):
    a = zoo_runs["torch"].reader().spikes(pop)
    b = zoo_runs["numba"].reader().spikes(pop)
    assert a[0].size > 10, f"{pop} should fire in this test"
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("monitor, variable", [("lif", "v"), ("lif", "i_e"), ("lif", "i_i"),
                                               ("alif", "theta"), ("izh", "v"), ("izh", "u"),
                                               ("izh", "i_ext")])
def test_identical_state_samples(zoo_runs, monitor, variable):
    sa, va = zoo_runs["torch"].reader().state(monitor, variable)
    sb, vb = zoo_runs["numba"].reader().state(monitor, variable)
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(va, vb)


def test_identical_final_state_and_weight_snapshots(zoo_runs):
    a, b = zoo_runs["torch"].state_dict(), zoo_runs["numba"].state_dict()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    sa, wa = zoo_runs["torch"].reader().weights("alif_izh")
    sb, wb = zoo_runs["numba"].reader().weights("alif_izh")
    assert sa.tolist() == sb.tolist() == [0, 400, 800, 1200, 1600, 2000, 2400, 2800]
    np.testing.assert_array_equal(wa, wb)


def test_callbacks_and_reset_between_compiled_stretches():
    seen = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.1, seed=2, backend=backend)
        cuba = build_cuba(net, 300)
        net.spike_monitor(cuba.exc)
        log = []
        net.add_callback(lambda n, log=log: log.append((n.clock.step, int(n.populations["exc"].spikes.sum()))),
                         every=250)
        net.run(100.0, progress=False)
        net.reset_state()
        net.run(50.0, progress=False)
        seen[backend] = (log, net.reader().spikes("exc"))
    assert seen["torch"][0] == seen["numba"][0]
    assert [s for s, _ in seen["numba"][0]] == list(range(0, 1500, 250))
    for x, y in zip(seen["torch"][1], seen["numba"][1]):
        np.testing.assert_array_equal(x, y)


def test_large_batch_dense_agrees_up_to_rounding():
    # torch sums dense input with one matrix product from batch 16 on, numba row by row:
    # the sums are rounded differently, so require late divergence and equal rates
    runs = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.1, seed=8, batch=16, backend=backend)
        src = net.population(100, ns.PoissonSource(rate=30.0), name="src")
        out = net.population(50, ns.LIF(tau_m=10.0), name="out")
        net.projection(src, out, ns.AllToAll(), weight=ns.Uniform(0.0, 1.5), sparse=False)
        net.spike_monitor(out)
        net.run(500.0, progress=False)
        runs[backend] = net.reader().spikes("out")
    (sa, na, ra), (sb, nb, rb) = runs["torch"], runs["numba"]
    assert abs(sa.size - sb.size) <= 0.01 * sa.size
    n = min(sa.size, sb.size)
    diverge = np.nonzero((sa[:n] != sb[:n]) | (na[:n] != nb[:n]) | (ra[:n] != rb[:n]))[0]
    first = sa[diverge[0]] if diverge.size else None
    assert first is None or first > 1000


def test_numba_backend_rejects_cuda():
    with pytest.raises(ValueError, match="(numba backend runs on the CPU|no CUDA device)"):
        ns.Network(backend="numba", device="cuda")


def test_full_spike_event_buffer_flushes_early_without_losing_or_repeating_anything(monkeypatch):
    from neurosim.backends import numba_backend

    monkeypatch.setattr(numba_backend, "EVENT_BUFFER", 200)  # forces a flush every few steps
    net = zoo("numba")
    net.run(300.0, progress=False)
    reference = zoo("torch")
    reference.run(300.0, progress=False)
    for pop in ("poisson", "lif", "izh"):
        for x, y in zip(net.reader().spikes(pop), reference.reader().spikes(pop)):
            np.testing.assert_array_equal(x, y)
    for var in ("v", "i_ext"):
        np.testing.assert_array_equal(net.reader().state("izh", var)[1],
                                      reference.reader().state("izh", var)[1])


def test_parallel_numba_gives_the_same_results():
    runs = {}
    for parallel in (False, True):
        net = ns.Network(dt=0.1, seed=4, batch=2, backend="numba", parallel=parallel)
        cuba = build_cuba(net, 600)
        net.spike_monitor(cuba.exc)
        net.run(100.0, progress=False)
        runs[parallel] = net.reader().spikes("exc")
    for x, y in zip(runs[False], runs[True]):
        np.testing.assert_array_equal(x, y)


def test_conductance_lif_agrees_to_rounding():
    # the update calls exp on the state: torch and numba may round it differently
    runs = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.1, seed=6, backend=backend)
        src = net.population(200, ns.PoissonSource(rate=20.0), name="src")
        inh = net.population(50, ns.PoissonSource(rate=20.0), name="inh")
        out = net.population(100, ns.ConductanceLIF(tau_m=20.0, theta_plus=0.5, tau_theta=200.0),
                             name="out")
        net.projection(src, out, ns.FixedProbability(0.3), weight=ns.Uniform(0.0, 0.6))
        net.projection(inh, out, ns.FixedProbability(0.3), weight=ns.Uniform(-0.1, 0.0), receptor="inh")
        net.spike_monitor(out)
        net.run(500.0, progress=False)
        runs[backend] = net.reader().spikes("out")
    (sa, na, _), (sb, nb, _) = runs["torch"], runs["numba"]
    assert sa.size > 100
    assert abs(sa.size - sb.size) <= 0.01 * sa.size
    n = min(sa.size, sb.size)
    diverge = np.nonzero((sa[:n] != sb[:n]) | (na[:n] != nb[:n]))[0]
    assert diverge.size == 0 or sa[diverge[0]] > 1000


class _Lagged(ns.NeuronModel):
    """x counts steps; x_prev is last step's x: the update returns x's old tensor as
    x_prev's new value, which a backend writing state in place must not clobber."""

    parameters = {}
    state_variables = {"x": ns.StateVariable("1", "counter"), "x_prev": ns.StateVariable("1", "previous")}
    inputs = ("i_ext",)
    receptors = {}

    def constants(self, p, dt):
        return {"one": 1.0}

    @staticmethod
    def update(x, x_prev, i_ext, one):
        x_new = x + one
        return x_new, x, x_new > 1e9


def test_a_state_variable_passed_on_under_another_name_keeps_its_old_value(engine):
    net = ns.Network(dt=0.1, **engine)
    pop = net.population(2, _Lagged(), name="p")
    net.run(steps=3, progress=False)
    assert pop.state["x"].tolist() == [[3.0, 3.0]]
    assert pop.state["x_prev"].tolist() == [[2.0, 2.0]]
