"""Bad input gives a clear exception naming what is wrong."""

import numpy as np
import pytest
import torch

import neurosim as ns


@pytest.mark.parametrize("dt", [0, -0.1, float("nan"), float("inf"), "0.1"])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match="dt must be a positive"):
        ns.Network(dt=dt)


def test_unknown_neuron_parameter_names_the_parameter_and_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'tau_mem'.*tau_m"):
        ns.LIF(tau_mem=10.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"tau_m": 0.0}, r"'tau_m' = 0 ms is out of range; accepted \(0, inf\)"),
    ({"tau_m": -5.0}, "tau_m"),
    ({"t_ref": -1.0}, "t_ref"),
    ({"v_reset": -40.0, "v_thresh": -50.0}, "'v_reset' must be below 'v_thresh'"),
    ({"tau_m": float("nan")}, "NaN"),
    ({"tau_m": "fast"}, "must be a number"),
])
def test_out_of_range_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ns.LIF(**kwargs)


def test_per_neuron_parameter_of_wrong_length():
    net = ns.Network()
    with pytest.raises(ValueError, match=r"'tau_m' has shape \(3,\); expected a scalar, \(5,\)"):
        net.population(5, ns.LIF(tau_m=np.array([10.0, 20.0, 30.0])))


def test_weight_matrix_of_wrong_shape():
    net = ns.Network()
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    with pytest.raises(ValueError, match=r"weight array has shape \(4, 3\); expected \(3, 4\)"):
        net.projection(a, b, weight=np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"FromMatrix: matrix has shape \(4, 4\).*\(3, 4\)"):
        net.projection(a, b, ns.FromMatrix(np.ones((4, 4))))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights(bad):
    net = ns.Network()
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    w = np.ones((3, 4))
    w[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        net.projection(a, b, weight=w)
    with pytest.raises(ValueError, match="NaN or inf"):
        ns.FromMatrix(w)


def test_weight_sign_must_match_receptor_and_receptor_must_exist():
    net = ns.Network()
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    with pytest.raises(ValueError, match="receptor 'inh' needs weights <= 0"):
        net.projection(a, b, weight=1.0, receptor="inh")
    with pytest.raises(ValueError, match="receptor 'exc' needs weights >= 0"):
        net.projection(a, b, weight=-1.0)
    with pytest.raises(ValueError, match="has no receptor 'gaba_b'; its receptors: 'exc', 'inh'"):
        net.projection(a, b, weight=1.0, receptor="gaba_b")
    with pytest.raises(ValueError, match="takes no synaptic input"):
        net.projection(b, a, weight=1.0)


def test_bad_delays():
    net = ns.Network()
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    with pytest.raises(ValueError, match="delay must be a whole number of steps >= 0"):
        net.projection(a, b, weight=1.0, delay=-1)
    with pytest.raises(ValueError, match="delay must be a whole number of steps"):
        net.projection(a, b, weight=1.0, delay=1.5)
    with pytest.raises(ValueError, match="per-synapse delays need sparse=True"):
        net.projection(a, b, weight=1.0, delay=np.arange(12).reshape(3, 4) + 1, sparse=False)


def test_log_path_in_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="log directory .* does not exist"):
        ns.Network(log=tmp_path / "no" / "such" / "dir" / "run.h5")


def test_other_bad_input():
    net = ns.Network()
    pop = net.population(3, ns.LIF(), name="p")
    with pytest.raises(ValueError, match="already exists"):
        net.population(3, ns.LIF(), name="p")
    with pytest.raises(ValueError, match="size must be a positive integer"):
        net.population(0, ns.LIF())
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        ns.Network(backend="cuda")
    with pytest.raises(ValueError, match="unknown variable"):
        net.state_monitor(pop, ["voltage"])
    with pytest.raises(ValueError, match="neuron indices must be in"):
        net.state_monitor(pop, ["v"], neurons=[5])
    with pytest.raises(ValueError, match="exactly one of duration_ms or steps"):
        net.run()
    with pytest.raises(ValueError, match="duration_ms must be a non-negative"):
        net.run(-5.0)
    with pytest.raises(ValueError, match="cannot initialise unknown state variable"):
        net.population(2, ns.LIF(), init={"u": 0.0})
    with pytest.raises(ValueError, match="initial value of 'v' has NaN"):
        net.population(2, ns.LIF(), init={"v": float("nan")})
    with pytest.raises(ValueError, match="population .p. belongs to another network"):
        ns.Network().projection(pop, pop, weight=1.0)
    with pytest.raises(ValueError, match="p must be in"):
        ns.FixedProbability(1.5)
    with pytest.raises(ValueError, match="SpikeGenerator: times_ms has 2 entries but neurons has 1"):
        ns.SpikeGenerator([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="neuron index out of range"):
        net.population(2, ns.SpikeGenerator([1.0], [5]))


def test_objects_of_another_network_are_named_in_errors():
    a, b = ns.Network(dt=0.1), ns.Network(dt=0.1)
    src = a.population(3, ns.PoissonSource(rate=5.0), name="src")
    dst = b.population(3, ns.LIF(), name="dst")
    with pytest.raises(ValueError, match="population 'src' belongs to another network") as info:
        b.projection(src, dst)
    assert "object at 0x" not in str(info.value)
    with pytest.raises(ValueError, match="SpikeMonitor: population 'src' belongs to another network"):
        b.spike_monitor(src)
    proj = a.projection(src, a.population(2, ns.LIF(), name="out"), weight=1.0)
    with pytest.raises(ValueError, match="projection 'src_out' belongs to another network"):
        b.add_rule(proj, ns.rules.STDP())
    with pytest.raises(ValueError, match="step_current: population 'src' belongs to another network"):
        b.step_current(src, 1.0)
    b.modulators.add("da")
    with pytest.raises(ValueError, match="drive: population 'src' belongs to another network"):
        b.modulators.drive("da", src)
    assert repr(src) == "<Population 'src': 3 x PoissonSource>"
    assert repr(proj) == "<Projection 'src_out': src -> out (dense)>"


@pytest.mark.parametrize("static_step", [True, False])
def test_a_network_run_inside_inference_mode_runs_outside_it_later(static_step):
    """A first run inside torch.inference_mode (with monitors, a rule, delay-0 and delayed
    projections) makes no inference tensor: later runs outside it work and give the
    spikes of runs made outside it all along."""
    from neurosim import rules

    def build():
        net = ns.Network(backend="torch", dt=0.1, seed=3, batch=2, static_step=static_step)
        src = net.population(40, ns.PoissonSource(rate=150.0), name="src")
        h = net.population(25, ns.LIF(), name="hidden")
        o = net.population(25, ns.LIF(), name="out")
        net.projection(src, h, weight=np.random.default_rng(0).uniform(0, 6, size=(40, 25)), delay=0)
        p = net.projection(h, o, weight=np.random.default_rng(1).uniform(0, 6, size=(25, 25)), delay=3)
        net.add_rule(p, rules.STDP(lr=0.01, w_max=8.0))
        net.spike_monitor(o)
        net.state_monitor(h, "v")
        return net

    ref = build()
    ref.run(steps=300, progress=False)
    net = build()
    with torch.inference_mode():
        net.run(steps=100, progress=False)
    net.run(steps=100, progress=False)
    with torch.inference_mode():
        net.run(steps=100, progress=False)
    for x, y in zip(ref.reader().spikes("out"), net.reader().spikes("out")):
        assert np.array_equal(x, y)
    assert len(ref.reader().spikes("out")[0]) > 0
    assert torch.equal(ref.populations["out"].state["v"], net.populations["out"].state["v"])


def test_a_torch_network_built_inside_inference_mode_is_refused_with_the_reason():
    """Tensors made inside inference_mode keep no version counter and may not be written
    outside it: the torch backend refuses such a network before any step, inside or
    outside inference_mode; numba runs it."""
    def build(backend):
        with torch.inference_mode():
            net = ns.Network(backend=backend, dt=0.1, seed=3, batch=2)
            src = net.population(40, ns.PoissonSource(rate=150.0), name="src")
            h = net.population(25, ns.LIF(), name="hidden")
            net.projection(src, h, weight=0.5, receptor="exc", delay=3)
        return net
    net = build("torch")
    for inside in (True, False):
        with torch.inference_mode(inside), pytest.raises(RuntimeError, match=r"were built inside torch.inference_mode\(\)"):
            net.run(steps=50, progress=False)
    assert net.clock.step == 0
    net = build("numba")
    net.run(steps=50, progress=False)
    assert net.clock.step == 50
