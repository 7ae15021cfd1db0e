"""Bad input is rejected up front, with a message naming the argument (issue 20.9, 20.14)."""

import math

import numpy as np
import pytest

import neurosim as ns

BACKENDS = ["torch", "numba"]


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_turning_inf_during_a_run_names_the_population(backend):
    net = ns.Network(dt=0.1, backend=backend)
    gen = net.population(1, ns.SpikeGenerator([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]), name="gen")
    out = net.population(3, ns.LIF(), name="out")
    net.projection(gen, out, weight=3e38)  # finite in float32; their sum is not
    net.spike_monitor(out)
    with pytest.raises(FloatingPointError, match=r"population 'out' \(LIF\): state variable "
                                                 r"'(v|i_e)' became NaN or inf by step 20"):
        net.run(2.0, progress=False)
    assert not net.reader().completed


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_in_learned_weights_names_the_projection(backend):
    net = ns.Network(dt=0.1, backend=backend)
    silent = net.population(2, ns.SpikeGenerator([], []), name="silent")
    out = net.population(2, ns.LIF(), name="out")
    proj = net.projection(silent, out, weight=1.0)
    net.add_rule(proj, ns.rules.STDP())
    net.run(1.0, progress=False)
    proj.weight[1, 0] = float("nan")  # as a diverging rule would leave it
    with pytest.raises(FloatingPointError, match=r"projection 'silent_out': weights .* first at pre 1, post 0"):
        net.run(1.0, progress=False)
