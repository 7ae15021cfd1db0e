"""Bad input is rejected up front, with a message naming the argument (issue 20.9, 20.14)."""

import math

import numpy as np
import pytest

import neurosim as ns


# -- non-finite parameters and NaN state (20.9) ------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"i_bias": math.inf}, "i_bias"), ({"tau_m": math.inf}, "tau_m"),
    ({"v_rest": -math.inf}, "v_rest"), ({"i_bias": np.array([0.0, np.inf])}, "i_bias"),
])
def test_non_finite_parameters_are_rejected(kwargs, name):
    with pytest.raises(ValueError, match=rf"parameter '{name}' = -?inf mV? ?.*must be finite"):
        ns.LIF(**kwargs)


def test_non_finite_parameter_rejected_by_set_parameters_too():
    net = ns.Network()
    pop = net.population(2, ns.LIF(), name="p")
    with pytest.raises(ValueError, match="'i_bias' = inf mV must be finite"):
        pop.set_parameters(i_bias=np.array([1.0, np.inf]))


def test_inf_stays_allowed_where_it_means_something():
    assert math.isinf(ns.AdaptiveLIF(tau_theta=math.inf).params["tau_theta"])


def test_state_turning_inf_during_a_run_names_the_population(engine):
    net = ns.Network(dt=0.1, **engine)
    gen = net.population(1, ns.SpikeGenerator([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]), name="gen")
    out = net.population(3, ns.LIF(), name="out")
    net.projection(gen, out, weight=3e38)  # finite in float32; their sum is not
    net.spike_monitor(out)
    with pytest.raises(FloatingPointError, match=r"population 'out' \(LIF\): state variable "
                                                 r"'(v|i_e)' became NaN or inf by step 20"):
        net.run(2.0, progress=False)
    assert not net.reader().completed


def test_nan_in_learned_weights_names_the_projection(engine):
    net = ns.Network(dt=0.1, **engine)
    silent = net.population(2, ns.SpikeGenerator([], []), name="silent")
    out = net.population(2, ns.LIF(), name="out")
    proj = net.projection(silent, out, weight=1.0)
    net.add_rule(proj, ns.rules.STDP())
    net.run(1.0, progress=False)
    proj.weight[1, 0] = float("nan")  # as a diverging rule would leave it
    with pytest.raises(FloatingPointError, match=r"projection 'silent_out': weights .* first at pre 1, post 0"):
        net.run(1.0, progress=False)



def test_the_finiteness_check_reads_z_for_a_graded_unit_not_its_activity(engine):
    """``r = phi(z)`` is declared finite wherever ``z`` is: the check reads ``z`` (and
    names it), not ``r``; a variable declared onto one that is itself skipped is read."""
    from dataclasses import replace

    from neurosim.runner import unchecked_variables

    assert unchecked_variables(ns.models.graded.GradedELU) == {"i", "r"}

    class Loop(ns.models.graded.GradedReLU):  # (declared onto each other: both checked)
        state_variables = {**ns.models.graded.GRADED_STATE,
                           "z": replace(ns.models.graded.GRADED_STATE["z"], finite_with="r")}

    assert unchecked_variables(Loop) == {"i"}
    net = ns.Network(dt=1.0, batch=1, **engine)
    x = net.population(2, ns.GradedInput(), name="x")
    h = net.population(2, ns.Graded("tanh"), name="h")
    net.projection(x, h, weight=np.ones((2, 2), np.float32), receptor="in", delay=0)
    x.inputs["i_ext"].fill_(3e38)  # finite; the sum 6e38 is inf in float32, tanh of it 1
    with pytest.raises(FloatingPointError, match=r"population 'h' \(GradedTanh\): state variable 'z'"):
        net.run(steps=1, progress=False)
    assert bool(h.state["r"].isfinite().all())

# -- named errors instead of raw ones (20.14) ---------------------------------------------
def test_numpy_scalars_are_numbers():
    net = ns.Network(dt=np.float32(0.5))
    net.population(2, ns.LIF(), name="p")
    net.run(np.float32(2.0), progress=False)
    net.run(steps=np.int64(2), progress=False)
    assert net.clock.step == 6
    assert ns.FixedProbability(np.float64(0.5)).p == 0.5


def test_bad_delay_types_are_named():
    net = ns.Network()
    a = net.population(3, ns.LIF(), name="a")
    with pytest.raises(TypeError, match=r"delay must be a whole number of steps >= 0.*got '2' \(str\)"):
        net.projection(a, a, weight=1.0, delay="2")
    with pytest.raises(TypeError, match="delay must be a whole number of steps >= 0.*array of <U"):
        net.projection(a, a, weight=1.0, delay=["1", "2"])
    with pytest.raises(ValueError, match=r"at most 2147483647, got 4294967296"):
        net.projection(a, a, weight=1.0, delay=2**32)


def test_bad_connector_and_weight_types_are_named():
    with pytest.raises(TypeError, match=r"FixedProbability: p must be a number in \[0, 1\], got '0.5' \(str\)"):
        ns.FixedProbability("0.5")
    with pytest.raises(TypeError, match="allow_autapses must be True or False, got 'no'"):
        ns.AllToAll(allow_autapses="no")
    net = ns.Network()
    a = net.population(3, ns.LIF(), name="a")
    with pytest.raises(TypeError, match=r"weight must be a number.*got '0.5' \(str\)"):
        net.projection(a, a, weight="0.5")


@pytest.mark.parametrize("batch, build, match", [
    (1000, lambda net: net.population(2 * 10**9, ns.LIF(), name="big"),
     r"needs [\d.]+ GB for population 'big' \(2000000000 LIF neurons x batch 1000\)"),
    (1, lambda net: net.projection(net.population(10**5, ns.LIF(), name="a"),
                                   net.population(10**6, ns.LIF(), name="b"), weight=1.0),
     r"needs [\d.]+ GB for projection 'a_b': 100000000000 synapses \(AllToAll, 100000 x 1000000"),
    (1, lambda net: net.projection(net.population(10**4, ns.LIF(), name="a"),
                                   net.population(10**4, ns.LIF(), name="b"), ns.OneToOne(),
                                   weight=1.0, delay=10**9),
     r"needs [\d.]+ GB for the spike ring of population 'a' \(1000000001 slots"),
])
def test_networks_too_large_for_memory_say_how_large(batch, build, match):
    from neurosim.memory import host_available_bytes
    if host_available_bytes() is None:  # the check cannot run: do not really allocate terabytes
        pytest.skip("available memory unknown on this system")
    net = ns.Network(batch=batch)
    with pytest.raises(ValueError, match=match) as info:
        build(net)
    assert isinstance(info.value, MemoryError)


def test_population_sizes_beyond_int32_are_refused():
    with pytest.raises(ValueError, match="size must be at most 2147483647"):
        ns.Network().population(2**31, ns.LIF())


@pytest.mark.parametrize("device", ["mps", "meta", "tpu", 3.5])
def test_unsupported_devices_fail_at_construction(device):
    with pytest.raises(ValueError, match="device"):
        ns.Network(device=device, backend="torch")


def test_bad_log_targets_fail_at_construction(tmp_path):
    with pytest.raises(ValueError, match="log must be a file path, got an empty string"):
        ns.Network(log="")
    with pytest.raises(TypeError, match=r"log must be None .*got 123 \(int\)"):
        ns.Network(log=123)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        ns.Network(log=tmp_path)


def read_only_dirs(tmp_path):
    import os
    found = []
    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        found.append(locked)
    if os.path.isdir("/proc"):  # no new files even for root
        found.append("/proc")
    return found


def test_unwritable_log_directory_fails_at_construction(tmp_path):
    dirs = read_only_dirs(tmp_path)
    if not dirs:
        pytest.skip("no unwritable directory on this system")
    for d in dirs:
        with pytest.raises(PermissionError, match="is not writable"):
            ns.Network(log=f"{d}/run.h5")


@pytest.mark.parametrize("kwargs, match", [
    ({"amplitude": np.ones(5)}, r"amplitude has shape \(5,\); expected a number, \(3,\)"),
    ({"amplitude": np.ones(3), "neurons": [0, 1]}, r"amplitude has shape \(3,\); expected a number, \(2,\)"),
    ({"amplitude": 1.0, "neurons": [-1]}, r"in \[0, 3\), got -1 \(negative indices"),
    ({"amplitude": 1.0, "neurons": [3]}, r"in \[0, 3\), got 3"),
    ({"amplitude": 1.0, "neurons": [1, 1]}, "each at most once"),
    ({"amplitude": 1.0, "neurons": [0.5]}, "1-D sequence of integers"),
    ({"amplitude": "1"}, "amplitude must be a number"),
])
def test_step_current_is_checked_when_added(kwargs, match):
    net = ns.Network(backend="torch")
    pop = net.population(3, ns.LIF(), name="p")
    with pytest.raises((ValueError, TypeError), match=match):
        net.step_current(pop, start_ms=1.0, **kwargs)


def test_step_current_on_selected_neurons_still_works():
    net = ns.Network(backend="torch")
    pop = net.population(3, ns.LIF(), name="p")
    net.step_current(pop, np.array([1.0, 2.0]), neurons=[2, 0], start_ms=0.0)
    net.step_current(pop, 5.0, neurons=[], start_ms=0.0)
    net.run(steps=1, progress=False)
    assert pop.inputs["i_ext"].tolist() == [[2.0, 0.0, 1.0]]


def test_network_without_populations_runs_on_numba():
    net = ns.Network(backend="numba")
    net.run(steps=5, progress=False)
    assert net.clock.step == 5


def test_callback_may_set_array_parameters_on_numba():
    def run(backend):
        net = ns.Network(dt=0.1, seed=3, backend=backend)
        src = net.population(20, ns.PoissonSource(rate=0.0), name="src")
        net.spike_monitor(src)
        rates = np.linspace(100.0, 900.0, 20)

        def present(n):
            if n.clock.step == 30:
                src.set_parameters(rate=rates)
        net.add_callback(present, every=10)
        net.run(steps=80, progress=False)
        return net.reader().spikes("src")
    torch_spikes, numba_spikes = run("torch"), run("numba")
    assert len(torch_spikes[0]) > 20 and torch_spikes[0].min() >= 30
    for a, b in zip(torch_spikes, numba_spikes):
        np.testing.assert_array_equal(a, b)
