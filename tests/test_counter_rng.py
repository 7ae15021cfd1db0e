"""Counter-based random numbers: unchanged below 2**32 steps, never restarting after."""

import hashlib

import numpy as np
import pytest

import neurosim as ns
from neurosim.counter_rng import step_key, stream_key
from neurosim.datasets.encoders import poisson_spikes

# computed with neurosim before the counter was widened: published results depend on them
KEY = 734263952  # stream_key(7, "population/input/u")
STEPS = [0, 1, 2, 1000, 123456789, 2**31, 2**32 - 1]
STEP_KEYS = [615192862, 2348405744, 2310210065, 1645430647, 1547173792, 2541637306, 2569273232]
# (sha256 prefix of (step - start, neuron, row), spike count) of run_poisson(start)
RUNS = {0: ("1fbaf480af056f45", 214), 5000: ("e61f08a8f294ab20", 192)}


def run_poisson(engine, start):
    net = ns.Network(dt=0.1, seed=7, batch=2, **engine)
    src = net.population(50, ns.PoissonSource(rate=200.0), name="input")
    net.spike_monitor(src)
    net.clock.step = start
    net.run(steps=100, progress=False)
    st, nr, rw = net.reader().spikes("input")
    digest = hashlib.sha256(np.stack([st - start, nr, rw]).astype(np.int64).tobytes()).hexdigest()
    return digest[:16], len(st)


def test_step_keys_below_2_32_are_unchanged():
    assert stream_key(7, "population/input/u") == KEY
    assert [step_key(KEY, s) for s in STEPS] == STEP_KEYS


def test_poisson_spikes_below_2_32_are_unchanged(engine):
    for start, expected in RUNS.items():
        assert run_poisson(engine, start) == expected


def test_encoder_spikes_are_unchanged():
    s = poisson_spikes(np.full((2, 30), 300.0), 20.0, 0.1, seed=3)
    assert (hashlib.sha256(s.tobytes()).hexdigest()[:16], int(s.sum())) == ("e7d1593114f6c7ba", 351)


def test_steps_2_32_apart_differ():
    for s in STEPS + [2**40 + 5]:
        assert step_key(KEY, s) != step_key(KEY, s + 2**32)
    assert step_key(KEY, 2**32) != step_key(KEY, 2**33)


def test_poisson_spikes_do_not_repeat_after_2_32_steps(engine):
    late = run_poisson(engine, 2**32)
    assert late != RUNS[0]
    other = {"backend": "torch" if engine["backend"] == "numba" else "numba"}
    assert late == run_poisson(other, 2**32)
