"""Thread counts while stepping: chosen so that a busy machine does not collapse
(measured on 2 busy cores: torch with 2 threads 18x slower, numba parallel 100x)."""

import os

import numba
import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import threads


def seen_during_run(**kwargs):
    """(torch threads, numba threads) as a callback sees them during a run."""
    net = ns.Network(dt=0.1, seed=0, **kwargs)
    net.population(10, ns.PoissonSource(rate=10.0), name="p")
    seen = []
    # numba's thread count is read only with parallel: reading it starts numba's OpenMP
    # layer, which shares OpenMP's setting with torch
    read_numba = kwargs.get("parallel", False)
    net.add_callback(lambda n: seen.append(
        (torch.get_num_threads(), numba.get_num_threads() if read_numba else None)), every=5)
    net.run(steps=10, progress=False)
    assert len(set(seen)) == 1, seen
    return seen[-1]


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_torch_steps_with_one_thread_and_the_users_setting_comes_back(backend, monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert seen_during_run(backend=backend)[0] == 1
        assert torch.get_num_threads() == 2
        assert seen_during_run(backend=backend, threads=2)[0] == 2
        monkeypatch.setenv(threads.ENV, "2")
        assert seen_during_run(backend=backend)[0] == 2
    finally:
        torch.set_num_threads(before)


def test_numba_parallel_uses_only_the_free_cores(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.3, 2.0, 1.0))  # two other busy processes
    assert threads.free_cores() == 1
    assert seen_during_run(backend="numba", parallel=True)[1] == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads.free_cores() == 2
    expected = min(2, numba.config.NUMBA_NUM_THREADS)
    assert seen_during_run(backend="numba", parallel=True)[1] == expected
    assert seen_during_run(backend="numba", parallel=True, threads=1)[1] == 1


def test_free_cores_is_one_where_the_load_cannot_be_read(monkeypatch):
    monkeypatch.delattr(os, "getloadavg")  # e.g. Windows
    assert threads.free_cores() == 1

    def unreadable():
        raise OSError("no /proc/loadavg")
    monkeypatch.setattr(os, "getloadavg", unreadable, raising=False)
    assert threads.free_cores() == 1


def test_bad_thread_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        ns.Network(threads=0)
    with pytest.raises(TypeError, match="threads must be a positive integer"):
        ns.Network(threads=1.5)
    assert ns.Network(threads=np.int64(2)).threads == 2
    monkeypatch.setenv(threads.ENV, "many")
    net = ns.Network(dt=0.1)
    net.population(2, ns.LIF(), name="p")
    with pytest.raises(ValueError, match="NEUROSIM_THREADS must be a positive integer"):
        net.run(steps=1, progress=False)
