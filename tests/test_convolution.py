"""Convolutional projections: synapses of a 2-D convolution with weights tied to shared
kernels; delivery against ``conv2d``, learning rules summed per kernel entry on both
backends, gradients against ``conv2d``'s."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim import rules
from neurosim.rules import SoftHebbian
from neurosim.rules.soft_hebbian import conv_soft_hebbian_delta

BACKENDS = ("torch", "numba")
IN_SHAPE = (2, 6, 5)


def graded_conv(backend: str, *, padding: int = 0, stride: int = 1, model: str = "identity",
                trainable: bool = False, seed: int = 1):
    net = ns.Network(backend=backend, batch=2, dt=1.0, seed=0, dtype="float64")
    conv = ns.Convolution(IN_SHAPE, 3, 3, stride=stride, padding=padding)
    x = net.population(int(np.prod(IN_SHAPE)), ns.GradedInput(), name="x")
    u = net.population(int(np.prod(conv.out_shape)), ns.Graded(model), name="u")
    kernels = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    proj = net.projection(x, u, conv, weight=kernels.numpy(), receptor="in", delay=0, trainable=trainable)
    images = torch.rand(2, *IN_SHAPE, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    x.inputs["i_ext"].copy_(images.reshape(2, -1))
    return net, conv, u, proj, kernels, images


def tied(proj) -> bool:
    """Every synapse holds its kernel entry's weight."""
    return torch.equal(proj.weight, proj.kernels.reshape(-1)[proj.tie])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding,stride", [(0, 1), (1, 1), (1, 2), (2, 3)])
def test_delivering_values_is_conv2d(backend, padding, stride):
    net, conv, u, proj, kernels, images = graded_conv(backend, padding=padding, stride=stride)
    net.run(steps=1, progress=False)
    expected = F.conv2d(images, kernels, stride=stride, padding=padding)
    assert expected.shape[1:] == conv.out_shape
    torch.testing.assert_close(u.state["z"], expected.reshape(2, -1), rtol=0, atol=1e-13)
    assert torch.equal(proj.kernels, kernels)
    assert proj.describe()["kernel_shape"] == [3, 2, 3, 3]


def test_spikes_of_a_large_batch_are_delivered_as_conv2d_on_torch_as_synapse_by_synapse_on_numba():
    """Batch 16 of spikes: torch delivers one conv2d, numba synapse by synapse; the
    currents agree to rounding (float64) and equal conv2d of the spike images."""
    currents = {}
    for backend in BACKENDS:
        net = ns.Network(backend=backend, batch=16, dt=1.0, seed=5, dtype="float64")
        conv = ns.Convolution((2, 8, 8), 4, 3, padding=1, stride=(1, 2))
        src = net.population(128, ns.PoissonSource(rate=300.0), name="src")
        lif = net.population(int(np.prod(conv.out_shape)), ns.LIF(tau_syn_e=1e9), name="lif")
        proj = net.projection(src, lif, conv, weight=ns.Uniform(0.0, 1.0), delay=1)
        net.run(steps=1, progress=False)
        spikes = src.spikes.to(torch.float64).reshape(16, 2, 8, 8)
        net.run(steps=1, progress=False)
        expected = F.conv2d(spikes, proj.kernels, padding=1, stride=(1, 2)).reshape(16, -1)
        currents[backend] = lif.state["i_e"].clone()
        # (the current has decayed by exp(-1 ms / tau_syn_e) = 1 - 1e-9 since it arrived)
        torch.testing.assert_close(currents[backend], expected, rtol=1e-8, atol=1e-10)
    assert float(currents["torch"].sum()) > 0
    torch.testing.assert_close(currents["torch"], currents["numba"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_hebbian_without_padding_is_the_unfolded_rule(backend):
    """One application on the engine equals :func:`conv_soft_hebbian_delta`, an
    independent computation over unfolded patches (channels compete at each position)."""
    net, conv, u, proj, kernels, images = graded_conv(backend)
    net.modulators.add_soft_competition("y", u, temperature=0.7, channels=3)
    net.add_rule(proj, SoftHebbian(competition="y", lr=0.1))
    net.run(steps=1, progress=False)
    expected = kernels + 0.1 * conv_soft_hebbian_delta(images, kernels, 0.7)
    torch.testing.assert_close(proj.kernels, expected, rtol=0, atol=1e-12)
    assert tied(proj)
    if backend == "numba":
        assert not net.schedule.notes, net.schedule.notes  # compiled: no per-step Python


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_hebbian_with_padding_sums_over_the_synapses_that_exist(backend):
    """With padding, a tap on the padding has no synapse and no term: the change of entry
    (k, c, dy, dx) sums y (x - u w) over the positions where that tap reads the image."""
    net, conv, u, proj, kernels, images = graded_conv(backend, padding=1)
    net.modulators.add_soft_competition("y", u, temperature=0.7, channels=3)
    net.add_rule(proj, SoftHebbian(competition="y", lr=0.1))
    net.run(steps=1, progress=False)
    k_, c_, h, w = 3, 2, 6, 5
    ho, wo = conv.out_shape[1:]
    z = F.conv2d(images, kernels, padding=1).numpy()
    y = np.exp(z / 0.7) / np.exp(z / 0.7).sum(1, keepdims=True)
    x, kn = images.numpy(), kernels.numpy()
    change = np.zeros_like(kn)
    for b in range(2):
        for k in range(k_):
            for c in range(c_):
                for dy in range(3):
                    for dx in range(3):
                        for oy in range(ho):
                            for ox in range(wo):
                                iy, ix = oy - 1 + dy, ox - 1 + dx
                                if 0 <= iy < h and 0 <= ix < w:
                                    change[k, c, dy, dx] += y[b, k, oy, ox] * (
                                        x[b, c, iy, ix] - z[b, k, oy, ox] * kn[k, c, dy, dx])
    np.testing.assert_allclose(proj.kernels.numpy(), kn + 0.1 * change, rtol=0, atol=1e-12)
    assert tied(proj)


PROTOTYPES = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0],
                       [0, 0, 0, 0, 0, 0, 1, 1, 1]], dtype=float) + 0.1  # three bars
PROTOTYPES /= np.linalg.norm(PROTOTYPES, axis=1, keepdims=True)


def train_clusters(backend: str, steps: int = 300, batch: int = 8, seed: int = 0):
    """Images of 2 x 2 patches (3 x 3 each), every patch one of three prototypes plus noise;
    three 3 x 3 kernels at stride 3 compete at each patch."""
    net = ns.Network(backend=backend, batch=batch, dt=1.0, seed=seed)
    conv = ns.Convolution((1, 6, 6), 3, 3, stride=3)
    x = net.population(36, ns.GradedInput(), name="x")
    u = net.population(12, ns.Graded("identity"), name="u")
    k0 = np.random.default_rng(seed).uniform(0.0, 1.0, size=(3, 1, 3, 3))
    k0 /= np.linalg.norm(k0.reshape(3, -1), axis=1)[:, None, None, None]
    proj = net.projection(x, u, conv, weight=k0, receptor="in", delay=0)
    net.modulators.add_soft_competition("y", u, temperature=0.05, channels=3)
    net.add_rule(proj, SoftHebbian(competition="y", lr=0.01))
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        which = rng.integers(0, 3, size=(batch, 2, 2))
        patches = PROTOTYPES[which] + rng.normal(0, 0.05, size=(batch, 2, 2, 9))
        images = patches.reshape(batch, 2, 2, 3, 3).transpose(0, 1, 3, 2, 4).reshape(batch, 36)
        x.inputs["i_ext"].copy_(torch.as_tensor(images))
        net.run(steps=1, progress=False)
    return proj, net


@pytest.mark.parametrize("backend", BACKENDS)
def test_convolutional_soft_hebbian_finds_one_prototype_per_cluster(backend):
    proj, net = train_clusters(backend)
    protos = proj.kernels.double().reshape(3, 9).numpy()
    norms = np.linalg.norm(protos, axis=1)
    assert np.allclose(norms, 1.0, atol=0.1), norms  # the Oja-like decay keeps |w_k| near 1
    cosine = (protos / norms[:, None]) @ PROTOTYPES.T
    assert sorted(cosine.argmax(1)) == [0, 1, 2], cosine  # each cluster its own kernel
    assert (cosine.max(1) > 0.97).all(), cosine
    assert tied(proj)


def test_backends_agree_on_convolutional_soft_hebbian():
    w_t = train_clusters("torch", steps=40)[0].weight
    w_n = train_clusters("numba", steps=40)[0].weight
    torch.testing.assert_close(w_t, w_n, rtol=0, atol=1e-5)


@pytest.mark.parametrize("rule", ["stdp", "reward_stdp"])
def test_spiking_rules_on_tied_weights_agree_between_backends(rule):
    """Event-driven STDP and an eligibility rule (reward-modulated STDP) on a spiking
    convolution: the same spikes and the same tied weights on both backends."""
    out = {}
    for backend in BACKENDS:
        net = ns.Network(backend=backend, batch=2, dt=1.0, seed=3)
        conv = ns.Convolution((2, 8, 8), 4, 3, padding=1)
        src = net.population(128, ns.PoissonSource(rate=80.0), name="src")
        lif = net.population(int(np.prod(conv.out_shape)), ns.LIF(), name="lif")
        proj = net.projection(src, lif, conv, weight=ns.Uniform(2.0, 4.0), delay=1)
        net.modulators.add("dopamine")
        net.modulators.set("dopamine", 0.5)
        net.add_rule(proj, rules.STDP(lr=0.05, w_max=6.0) if rule == "stdp" else
                     rules.RewardModulatedSTDP(lr=0.05, w_max=6.0))
        net.spike_monitor(lif)
        net.run(steps=60, progress=False)
        assert tied(proj)
        if backend == "numba":
            assert not net.schedule.notes, net.schedule.notes
        out[backend] = (proj.weight.clone(), net.reader().spikes("lif"))
    (w_t, s_t), (w_n, s_n) = out["torch"], out["numba"]
    assert len(s_t[0]) > 50  # the feature maps fire
    for a, b in zip(s_t, s_n):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    torch.testing.assert_close(w_t, w_n, rtol=0, atol=1e-6)
    assert not torch.equal(w_t, train_start_weights(w_t))


def train_start_weights(w: torch.Tensor) -> torch.Tensor:
    """The initial tied weights of the spiking test (same seed, same draw)."""
    net = ns.Network(backend="torch", batch=2, dt=1.0, seed=3)
    conv = ns.Convolution((2, 8, 8), 4, 3, padding=1)
    src = net.population(128, ns.PoissonSource(rate=80.0), name="src")
    lif = net.population(int(np.prod(conv.out_shape)), ns.LIF(), name="lif")
    return net.projection(src, lif, conv, weight=ns.Uniform(2.0, 4.0), delay=1).weight


def test_gradient_of_the_kernels_is_conv2d_gradient():
    """A trainable convolution: every synapse of a kernel entry gets the entry's gradient
    (the sum over its positions), which is conv2d's; an optimiser step keeps them tied."""
    net, conv, u, proj, kernels, images = graded_conv("torch", padding=1, model="tanh", trainable=True)
    out = net.unroll(1, record={u: "r"})["u"]["r"]
    target = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    ((out - target) ** 2).sum().backward()
    k = kernels.clone().requires_grad_()
    ref = torch.tanh(F.conv2d(images, k, padding=1)).reshape(out.shape)
    ((ref - target) ** 2).sum().backward()
    torch.testing.assert_close(out.detach(), ref.detach(), rtol=0, atol=1e-13)
    grad = torch.zeros(conv.n_tied, dtype=torch.float64)
    grad[proj.tie] = proj.parameter.grad
    torch.testing.assert_close(grad.reshape(k.shape), k.grad, rtol=0, atol=1e-12)
    assert torch.equal(proj.parameter.grad, grad[proj.tie])  # the same for every tied synapse
    torch.optim.Adam(net.parameters(), lr=0.01).step()
    assert tied(proj) and not torch.equal(proj.kernels, kernels)


def test_a_rule_as_gradient_gives_minus_its_change_once():
    """STDP with ``as_gradient``: the gradient of a kernel entry is minus the change the
    rule makes on its own (the sum over the entry's synapses, taken once)."""
    def run(as_gradient):
        net = ns.Network(backend="torch", batch=1, dt=1.0, seed=3, dtype="float64")
        conv = ns.Convolution((1, 6, 6), 2, 3)
        src = net.population(36, ns.PoissonSource(rate=200.0), name="src")
        lif = net.population(int(np.prod(conv.out_shape)), ns.LIF(), name="lif")
        proj = net.projection(src, lif, conv, weight=8.0, delay=1)
        net.add_rule(proj, rules.STDP(lr=0.05, as_gradient=as_gradient))
        w0 = proj.weight.clone()
        net.run(steps=40, progress=False)
        return proj.weight - w0, proj.weight.grad
    change, _ = run(False)
    _, grad = run(True)
    assert int((change != 0).sum()) > 100
    torch.testing.assert_close(-grad, change, rtol=1e-12, atol=1e-15)


def test_per_synapse_writes_must_keep_the_weights_tied():
    net, conv, u, proj, kernels, images = graded_conv("torch")
    untied = proj.weight.clone()
    untied[0] += 1.0
    with pytest.raises(ValueError, match="must share one weight; set the kernels with set_kernels"):
        proj.set_weights(untied)
    state = net.state_dict()
    state["projections.x_u.weight"] = untied
    with pytest.raises(ValueError, match="must share one weight"):
        net.load_state_dict(state)
    assert tied(proj)
    proj.set_weights(proj.weight * 2)  # tied values are fine
    assert torch.equal(proj.kernels, kernels * 2)


def test_set_kernels_and_a_saved_state():
    net, conv, u, proj, kernels, images = graded_conv("torch")
    proj.set_kernels(kernels * 2)
    assert torch.equal(proj.kernels, kernels * 2) and tied(proj)
    net.run(steps=1, progress=False)
    torch.testing.assert_close(u.state["z"], F.conv2d(images, kernels * 2).reshape(2, -1),
                               rtol=0, atol=1e-13)


def test_bad_input():
    net = ns.Network(backend="torch", batch=1, dt=1.0)
    x = net.population(60, ns.GradedInput(), name="x")
    u = net.population(3 * 4 * 3, ns.Graded("identity"), name="u")
    other = net.population(10, ns.Graded("identity"), name="other")
    conv = ns.Convolution(IN_SHAPE, 3, 3)
    with pytest.raises(ValueError, match=r"needs a presynaptic population of 60 neurons and gives "
                                         r"feature maps \(3, 4, 3\) \(36 neurons\); the populations have 60 and 10"):
        net.projection(x, other, conv, weight=0.1, receptor="in", delay=0)
    with pytest.raises(ValueError, match=r"kernels of shape \(3, 2, 3, 3\)"):
        net.projection(x, u, conv, weight=np.ones((60, 36)), receptor="in", delay=0)
    with pytest.raises(ValueError, match="sparse=False"):
        net.projection(x, u, conv, weight=0.1, receptor="in", delay=0, sparse=False)
    with pytest.raises(ValueError, match="in_shape"):
        ns.Convolution((6, 5), 3, 3)
    with pytest.raises(ValueError, match="does not fit"):
        ns.Convolution(IN_SHAPE, 3, 7)
    with pytest.raises(TypeError, match="stride"):
        ns.Convolution(IN_SHAPE, 3, 3, stride=1.5)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        ns.Convolution(IN_SHAPE, 3, 3, padding=-1)
    proj = net.projection(x, u, conv, weight=ns.Normal(0.0, 0.1), receptor="in", delay=0)
    assert tied(proj)
    with pytest.raises(ValueError, match=r"expected kernels of shape \(3, 2, 3, 3\)"):
        proj.set_kernels(np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        proj.set_kernels(np.full((3, 2, 3, 3), np.nan))
    dense = net.projection(x, other, weight=0.1, receptor="in", delay=0)
    with pytest.raises(AttributeError, match="no kernels"):
        dense.kernels
    with pytest.raises(ValueError, match="untie"):  # a normalisation reads column sums
        net.add_rule(proj, rules.WeightNormalization(total=1.0))
    with pytest.raises(ValueError, match="channels must be an int >= 1 dividing the 36"):
        net.modulators.add_soft_competition("y", u, channels=5)
    y = net.modulators.add_soft_competition("y", u, channels=np.int64(3))
    assert torch.allclose(y.value.reshape(1, 3, -1).sum(1), torch.ones(1, 12, dtype=y.value.dtype))
    small = net.population(2 * 2 * 3, ns.GradedInput(), name="small")
    with pytest.raises(ValueError, match="12 of the 36 kernel entries read only padding"):
        net.projection(small, net.population(4, ns.Graded("identity"), name="v"),
                       ns.Convolution((2, 2, 3), 2, 3, stride=2, padding=1), weight=0.1, receptor="in",
                       delay=0)
