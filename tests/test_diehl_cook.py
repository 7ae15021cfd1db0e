"""Diehl & Cook (2015) network: a small real run on MNIST must beat chance clearly."""

import os

import numpy as np
import pytest

from neurosim import rules
from neurosim.datasets import load_mnist
from neurosim.networks.diehl_cook import DiehlCook2015

from data_paths import MNIST as SHARED, requires_datasets  # noqa: E402

pytestmark = requires_datasets


def test_small_network_on_500_images_is_clearly_above_chance():
    x, y = load_mnist("train", SHARED)
    dc = DiehlCook2015(100, batch=8, seed=0)
    dc.train(x[:500], progress=False)
    dc.assign_labels(dc.respond(x[:500], progress=False), y[:500])
    counts = dc.respond(x[500:1000], progress=False)
    accuracy = {s: (dc.predict(counts, s) == y[500:1000]).mean() for s in ("all", "proportion")}
    # measured on 2026-11-23: all 0.524, proportion 0.594 (chance is about 0.1)
    assert accuracy["proportion"] >= 0.5, accuracy
    assert accuracy["all"] >= 0.4, accuracy
    assert len(np.unique(dc.assignments)) >= 8  # neurons specialise on most digits


def test_diehl_cook_stdp_closed_form():
    # pre arrival, then a post spike 10 ms later: dw = nu_post * x_pre * y2(before) = 0 for the
    # first post spike (y2 empty), then a second post spike 5 ms later gets e^{-15/20} e^{-5/40}
    import math

    from test_rules import pairing_net
    net, proj, _ = pairing_net([99.9], [110.0, 115.0], lambda: rules.DiehlCookSTDP(
        nu_pre=1e-4, nu_post=1e-2, w_max=10.0), pre_neurons=[0], post_neurons=[0, 0], n=1)
    net.run(200.0, progress=False)
    expected = 1e-2 * math.exp(-15 / 20) * math.exp(-5 / 40)
    assert proj.weight_matrix()[0, 0] - 0.5 == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_default_demo_reaches_its_accuracy_floor(tmp_path):
    """The README's first command at its default budget (100 neurons, 5,000 training and
    1,000 test images): at least 70% with proportion weighting (measured: 74.7%)."""
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "mnist_stdp.py"),
                           "--data", SHARED, "--log", str(tmp_path / "mnist.h5"), "--no-progress"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["train_samples"] == 5000 and result["test_samples"] == 1000
    assert result["accuracy"] >= 0.70, result

