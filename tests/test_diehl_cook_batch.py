"""Diehl & Cook (2015) network mechanics that need no data set."""

import numpy as np
import pytest
import torch

from neurosim.networks.diehl_cook import DiehlCook2015


def test_threshold_increments_of_a_batch_add_up_on_every_backend(engine):
    # the torch backend replaces state tensors as it steps: the summed threshold must
    # still reach every row (it once stayed per-row there, silently)
    images = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    dc = DiehlCook2015(20, batch=4, seed=0, **engine)
    dc.train(images, progress=False)
    theta = dc.exc.state["theta"]
    assert float(dc._theta.sum()) > 0
    assert torch.equal(theta, dc._theta.expand_as(theta))
