"""Spike statistics against hand-computed values, and the Neo export of a real run."""

import sys

import numpy as np
import pytest

import neurosim as ns
from neurosim.analysis import (binned_rates, fano_factor, firing_rates, isi_cv, spike_trains,
                               synchrony, to_neo)


def poisson_train(rng, rate_hz, duration_ms):
    """Spike times (ms) of a Poisson process: exponential intervals of mean 1000/rate ms."""
    isi = rng.exponential(1000.0 / rate_hz, size=int(2 * rate_hz * duration_ms / 1000) + 100)
    t = np.cumsum(isi)
    return t[t < duration_ms]


def events(trains):
    """(times, neurons) of a list of trains, in time order as a log stores them."""
    times = np.concatenate(trains)
    neurons = np.concatenate([np.full(len(t), i) for i, t in enumerate(trains)])
    order = np.argsort(times, kind="stable")
    return times[order], neurons[order]


# -- trains and rates ---------------------------------------------------------------------
def test_spike_trains_sorts_each_neuron_and_keeps_silent_ones():
    trains = spike_trains(np.array([5.0, 1.0, 3.0, 2.0]), np.array([2, 2, 0, 2]), 4)
    assert [t.tolist() for t in trains] == [[3.0], [], [1.0, 2.0, 5.0], []]
    assert all(t.dtype == np.float64 for t in trains)


def test_firing_rates_of_a_known_train():
    times = np.arange(0.0, 1000.0, 100.0)  # 10 spikes in one second
    rates = firing_rates(times, np.zeros(10, dtype=int), 2, 0.0, 1000.0)
    assert rates.tolist() == [10.0, 0.0]
    # [0, 500) holds the spikes at 0..400 ms: 5 spikes in 0.5 s; the one at 500 is outside
    assert firing_rates(times, np.zeros(10, dtype=int), 1, 0.0, 500.0).tolist() == [10.0]


def test_binned_rates_population_and_per_neuron():
    times = np.array([0.0, 9.9, 10.0, 12.0, 24.0, 25.0])
    neurons = np.array([0, 1, 0, 0, 1, 1])
    # bins [0,10), [10,20); the spikes at 24 (partial bin, dropped) and 25 (t_stop) are out
    edges, pop = binned_rates(times, neurons, 2, 0.0, 25.0, 10.0)
    assert edges.tolist() == [0.0, 10.0, 20.0]
    # bin 0: 2 spikes / (2 neurons * 0.01 s) = 100 Hz; bin 1: 2 spikes -> 100 Hz
    assert pop.tolist() == [100.0, 100.0]
    _, per = binned_rates(times, neurons, 2, 0.0, 25.0, 10.0, per_neuron=True)
    assert per.tolist() == [[100.0, 200.0], [100.0, 0.0]]


def test_binned_rates_put_step_times_on_their_bin_despite_rounding():
    steps = np.arange(1000)
    times = steps * 0.1  # what LogReader.spike_times gives; e.g. 0.1 * 3 = 0.30000000000000004
    edges, rate = binned_rates(times, np.zeros(1000, dtype=int), 1, 0.0, 100.0, 0.3)
    assert len(edges) == 334  # 333 whole bins of 0.3 ms in 100 ms
    assert np.all(rate == 3 / (0.3 * 1e-3))  # every bin holds exactly 3 steps


# -- irregularity and variability ------------------------------------------------------------
def test_isi_cv_regular_short_and_hand_computed():
    regular = np.arange(0.0, 1000.0, 10.0)
    cv = isi_cv([regular, [0.0, 1.0, 3.0], [7.0, 2.0], []])
    assert cv[0] == 0.0
    assert cv[1] == pytest.approx(1 / 3)  # intervals 1, 2: std 0.5 / mean 1.5
    assert np.isnan(cv[2]) and np.isnan(cv[3])  # fewer than min_spikes = 3
    assert isi_cv([[7.0, 2.0]], min_spikes=2).tolist() == [0.0]


def test_isi_cv_of_poisson_is_one():
    train = poisson_train(np.random.default_rng(1), 20.0, 1_000_000.0)  # ~20000 spikes
    assert isi_cv([train])[0] == pytest.approx(1.0, abs=0.05)


def test_fano_factor_regular_poisson_silent():
    rng = np.random.default_rng(2)
    regular = np.arange(0.0, 1_000_000.0, 10.0)  # exactly 10 spikes in every 100 ms window
    poisson = poisson_train(rng, 20.0, 1_000_000.0)
    times, neurons = events([regular, poisson, np.array([])])
    f = fano_factor(times, neurons, 3, 0.0, 1_000_000.0, 100.0)
    assert f[0] == 0.0
    assert f[1] == pytest.approx(1.0, abs=0.05)  # 10000 windows of mean count 2: spread ~0.014
    assert np.isnan(f[2])


def test_fano_factor_hand_computed():
    # counts 3, 1 in two windows: mean 2, unbiased variance 2 -> F = 1
    f = fano_factor([1.0, 2.0, 3.0, 15.0], [0, 0, 0, 0], 1, 0.0, 20.0, 10.0)
    assert f.tolist() == [1.0]


# -- synchrony ------------------------------------------------------------------------------
def test_synchrony_of_identical_opposite_and_independent_trains():
    rng = np.random.default_rng(3)
    base = poisson_train(rng, 20.0, 10_000.0)
    times, neurons = events([base, base, base])
    assert synchrony(times, neurons, [0, 1, 2], 0.0, 10_000.0) == pytest.approx(1.0)

    # one spike in every even bin vs every odd bin: counts anti-correlated, rho = -1
    even = np.arange(0.0, 100.0, 10.0) + 1.0
    times, neurons = events([even, even + 5.0])
    assert synchrony(times, neurons, [0, 1], 0.0, 100.0, bin_ms=5.0) == pytest.approx(-1.0)

    trains = [poisson_train(rng, 20.0, 100_000.0) for _ in range(20)]
    times, neurons = events(trains + [np.array([])])
    s = synchrony(times, neurons, np.arange(20), 0.0, 100_000.0)
    assert abs(s) < 0.02  # 20000 bins: each rho has a spread of ~0.007
    # a silent neuron has no correlation and is left out, not counted as 0
    assert synchrony(times, neurons, np.arange(21), 0.0, 100_000.0) == s
    assert np.isnan(synchrony(times, neurons, [0, 20], 0.0, 100_000.0))


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: binned_rates([1.0], [0], 1, 0.0, 10.0, -1.0), "bin_ms must be a positive"),
    (lambda: binned_rates([1.0], [0], 1, 0.0, 10.0, 20.0), "longer than the window"),
    (lambda: binned_rates([1.0], [0], 1, 10.0, 10.0, 1.0), "must be greater than t_start_ms"),
    (lambda: firing_rates([1.0, 2.0], [0], 1, 0.0, 10.0), "same length, got 2 and 1"),
    (lambda: firing_rates([1.0], [3], 2, 0.0, 10.0), "index 3, but n_neurons is 2"),
    (lambda: firing_rates([1.0], [-1], 2, 0.0, 10.0), "negative index"),
    (lambda: firing_rates([np.nan], [0], 1, 0.0, 10.0), "NaN"),
    (lambda: firing_rates([1.0], [0.5], 1, 0.0, 10.0), "integer indices"),
    (lambda: spike_trains([1.0], [0], 0), "n_neurons must be a positive integer"),
    (lambda: fano_factor([1.0], [0], 1, 0.0, 10.0, 10.0), "at least 2"),
    (lambda: fano_factor([1.0], [0], 1, 0.0, 10.0, 0.0), "window_ms must be a positive"),
    (lambda: isi_cv([[1.0, 2.0]], min_spikes=1), "min_spikes must be an integer >= 2"),
    (lambda: synchrony([1.0], [0], [0, 0], 0.0, 10.0), "repeated"),
    (lambda: synchrony([1.0], [0], [], 0.0, 10.0), "non-empty"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- Neo ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("neo") / "run.h5"
    net = ns.Network(dt=0.1, seed=5, log=str(path), batch=2)
    src = net.population(30, ns.PoissonSource(rate=40.0), name="src")
    net.spike_monitor(src)
    net.run(200.0, progress=False)
    return path


def test_to_neo_gives_one_train_per_neuron_with_the_log_times(small_run):
    pytest.importorskip("neo")
    with ns.LogReader(small_run) as log:
        times, neurons, rows = log.spike_times("src")
        trains = to_neo(log, "src", batch=1)
        assert len(trains) == 30
        for i, st in enumerate(trains):
            assert st.annotations == {"population": "src", "neuron": i, "batch": 1}
            assert str(st.units.dimensionality) == "ms"
            assert float(st.t_start) == 0.0 and float(st.t_stop) == 200.0
            assert np.array_equal(st.magnitude, times[(neurons == i) & (rows == 1)])
        assert sum(len(st) for st in trains) == np.count_nonzero(rows == 1) > 0

        window = to_neo(log, "src", t_start_ms=50.0, t_stop_ms=100.0)
        keep = (rows == 0) & (times >= 50.0) & (times < 100.0)
        assert sum(len(st) for st in window) == np.count_nonzero(keep)
        assert float(window[0].t_start) == 50.0 and float(window[0].t_stop) == 100.0

        with pytest.raises(ValueError, match=r"batch row must be an integer in \[0, 2\)"):
            to_neo(log, "src", batch=2)
        with pytest.raises(KeyError, match="no spikes recorded"):
            to_neo(log, "nope")


def test_to_neo_without_neo_says_how_to_install(small_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "neo", None)  # makes `import neo` fail
    with ns.LogReader(small_run) as log:
        with pytest.raises(ImportError, match=r'pip install -c constraints.txt -e "\.\[neo\]"'):
            to_neo(log, "src")
