"""Shared fixtures.

``engine``: the keyword arguments of :class:`neurosim.Network` that pick an engine,
one test per engine. A test that depends on the engine takes it and builds its
network with ``ns.Network(..., **engine)``:

* ``torch``: ``{"backend": "torch"}`` (tensors on the CPU)
* ``numba``: ``{"backend": "numba"}`` (compiled CPU kernels)
* ``cuda``: ``{"backend": "torch", "device": "cuda"}``, marked ``cuda`` and skipped
  where torch sees no GPU (``pytest -m cuda`` runs only these).

``engine["backend"]`` is the backend's name. On ``cuda`` the state, weights and
eligibility are tensors on the GPU: read them with ``.cpu()`` (or through
``proj.weight_matrix()`` and the log reader, which return numpy already).

A test about one engine only (numba's threads, a numba-only error) names its backend
itself; a test that compares torch with numba runs both in one test. A test that needs
two runs of one network to be bit-identical takes ``reproducible_engine`` instead: the
same engines, but ``cuda`` is skipped, since ``index_add_`` on a GPU adds with atomics,
in an order that may change from run to run.
"""

import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "datasets")

ENGINES = [
    pytest.param({"backend": "torch"}, id="torch"),
    pytest.param({"backend": "numba"}, id="numba"),
    pytest.param({"backend": "torch", "device": "cuda"}, id="cuda", marks=pytest.mark.cuda),
]


@pytest.fixture(params=ENGINES)
def engine(request) -> dict:
    """Network keyword arguments of one engine: torch, numba, or torch on CUDA."""
    if request.param.get("device") == "cuda" and not torch.cuda.is_available():
        pytest.skip("cuda engine: torch sees no CUDA device")
    return dict(request.param)  # a copy: a test may not change the next one's engine


@pytest.fixture
def reproducible_engine(engine) -> dict:
    """``engine``, for tests that need two runs to be bit-identical: skipped on CUDA."""
    if engine.get("device") == "cuda":
        pytest.skip("cuda engine: two runs need not be bit-identical (index_add_ adds with "
                    "atomics, in no fixed order)")
    return engine


@pytest.fixture
def python() -> str:
    return sys.executable
