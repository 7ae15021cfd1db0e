"""The rate-coded classifier trained through Network.unroll: BPTT and online (SLTT)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

from data_paths import MNIST, requires_datasets
from neurosim.networks.rate_classifier import RateClassifier


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6)).astype(np.float32), rng.integers(0, 3, n)


def _grads(method, steps, images, labels):
    clf = RateClassifier(n_in=36, hidden=20, classes=3, steps=steps, batch=len(images), seed=3,
                         dtype="float64")
    loss = clf.loss_and_backward(images, labels, method)
    return loss, [p.grad.clone() for p in clf.parameters()]


def test_with_one_step_online_and_bptt_are_the_same_gradient():
    """SLTT drops only the temporal path, which one step does not have."""
    x, y = _images(8)
    loss_b, grads_b = _grads("bptt", 1, x, y)
    loss_o, grads_o = _grads("online", 1, x, y)
    assert loss_b == pytest.approx(loss_o, rel=1e-12)
    for a, b in zip(grads_b, grads_o):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_with_more_steps_they_differ_but_agree_in_direction():
    x, y = _images(8)
    loss_b, grads_b = _grads("bptt", 10, x, y)
    loss_o, grads_o = _grads("online", 10, x, y)
    assert loss_b == pytest.approx(loss_o, rel=1e-12)  # the same forward pass
    a, b = torch.cat([g.reshape(-1) for g in grads_b]), torch.cat([g.reshape(-1) for g in grads_o])
    assert not torch.allclose(a, b)
    assert torch.dot(a, b) / (a.norm() * b.norm()) > 0.5


class _Saved:
    """A tensor autograd keeps for backward; counted until the graph lets it go."""

    def __init__(self, tensor, ledger):
        self.tensor, self.size = tensor, tensor.numel() * tensor.element_size()
        ledger["held"] += self.size
        ledger["peak"] = max(ledger["peak"], ledger["held"])
        weakref.finalize(self, _release, ledger, self.size)


def _release(ledger, size):
    ledger["held"] -= size


def _saved_bytes_peak(method, steps):
    """The most bytes autograd holds for backward at once while one batch is trained."""
    x, y = _images(16)
    clf = RateClassifier(n_in=36, hidden=64, classes=3, steps=steps, batch=16, seed=1)
    ledger = {"held": 0, "peak": 0}
    with torch.autograd.graph.saved_tensors_hooks(lambda t: _Saved(t, ledger), lambda s: s.tensor):
        clf.loss_and_backward(x, y, method)
    peak = ledger["peak"]
    del clf  # the network keeps its last spikes' graph (not on the loss's path) until then
    gc.collect()
    assert ledger["held"] == 0
    return peak


def test_online_memory_does_not_grow_with_the_number_of_steps():
    online = [_saved_bytes_peak("online", t) for t in (10, 40)]
    bptt = [_saved_bytes_peak("bptt", t) for t in (10, 40)]
    assert online[1] == online[0]
    assert bptt[1] > 3.5 * bptt[0]
    assert online[0] < bptt[0] / 5


@requires_datasets
def test_one_epoch_on_10000_mnist_images_beats_85_percent():
    from neurosim.datasets import load_mnist

    directory = MNIST
    x_train, y_train = load_mnist("train", directory)
    x_test, y_test = load_mnist("test", directory)
    torch.set_num_threads(2)
    clf = RateClassifier(hidden=200, steps=25, batch=128, seed=0)
    opt = torch.optim.Adam(clf.parameters(), lr=5e-4)
    clf.train_epoch(x_train[:10000], y_train[:10000], opt, "bptt", progress=False)
    accuracy = clf.evaluate(x_test[:2000], y_test[:2000], progress=False)
    assert accuracy > 0.85
