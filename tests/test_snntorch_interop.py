"""An snnTorch nn.Sequential converted to neurosim spikes as it did in snnTorch, and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from spike_rasters import spike_raster

snn = pytest.importorskip("snntorch")
from neurosim.interop.snntorch import from_sequential, to_sequential  # noqa: E402


def _module(rng, sizes, reset, kinds=None):
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        fc = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():  # a 1/64 grid: every sum exact in float32, in any order
            fc.weight.copy_(torch.as_tensor(rng.integers(-40, 70, size=(n_out, n_in)) / 64.0))
            fc.bias.copy_(torch.as_tensor(rng.integers(-8, 8, size=n_out) / 64.0))
        if kinds is not None and kinds[k] == "synaptic":
            cell = snn.Synaptic(alpha=0.5, beta=0.875, threshold=1.25, reset_mechanism=reset,
                                init_hidden=True)
        else:
            cell = snn.Leaky(beta=0.875, threshold=1.25, reset_mechanism=reset, init_hidden=True)
        layers += [fc, cell]
    return torch.nn.Sequential(*layers)


def _delayed_spikes(module, inputs):
    """The last layer's spikes when snnTorch's layers are stepped with one step of delay
    between layers, as neurosim's projections deliver: at step t, layer 1 sees the
    input of t - 1 and layer k the spikes layer k - 1 emitted at t - 1."""
    layers = list(module)
    pairs = [(fc, snn.Leaky(beta=leaky.beta, threshold=leaky.threshold,
                            reset_mechanism=leaky.reset_mechanism))
             for fc, leaky in zip(layers[::2], layers[1::2])]
    mems = [leaky.init_leaky() for _, leaky in pairs]
    previous = [torch.zeros(inputs.shape[1], fc.in_features) for fc, _ in pairs]
    out = []
    with torch.no_grad():
        for x in inputs:
            emitted = []
            for k, (fc, leaky) in enumerate(pairs):
                spk, mems[k] = leaky(fc(previous[k]), mems[k])
                emitted.append(spk)
            previous = [torch.as_tensor(x)] + emitted[:-1]
            out.append(emitted[-1].numpy())
    return np.stack(out)


def _snntorch_spikes(module, inputs):
    from snntorch import utils

    utils.reset(module)  # zero the hidden membranes
    with torch.no_grad():
        return np.stack([module(torch.as_tensor(x)).numpy() for x in inputs])


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_a_converted_sequential_spikes_as_in_snntorch_and_converts_back(reset, engine):
    steps, batch, sizes = 200, 2, (24, 16, 10)
    module = _module(np.random.default_rng(5), sizes, reset)
    net = ns.Network(dt=1.0, seed=2, batch=batch, **engine)
    src = net.population(sizes[0], ns.PoissonSource(rate=60.0), name="src")
    layers = from_sequential(module, net, src)
    assert [p.name for p in layers] == ["layer1", "layer2"]
    net.spike_monitor(src), net.spike_monitor(layers[-1])
    net.run(steps=steps, progress=False)
    log = net.reader()
    inputs = spike_raster(log, "src", steps, batch, sizes[0])
    out = spike_raster(log, "layer2", steps, batch, sizes[-1])
    expected = _snntorch_spikes(module, inputs)
    assert 20 < expected.sum() < 0.5 * expected.size and 20 < out.sum()
    # delay-0 projections: layer k sees layer k - 1's spikes of the same step, as in
    # snnTorch's Sequential, so the spikes are the same step for step, bit for bit
    np.testing.assert_array_equal(out, expected)
    back = to_sequential(net, [src, *layers])
    np.testing.assert_array_equal(_snntorch_spikes(back, inputs), expected)


def test_with_delay_one_a_converted_sequential_is_snntorch_stepped_with_that_delay(engine):
    steps, batch, sizes = 200, 2, (24, 16, 10)
    module = _module(np.random.default_rng(5), sizes, "subtract")
    net = ns.Network(dt=1.0, seed=2, batch=batch, **engine)
    src = net.population(sizes[0], ns.PoissonSource(rate=60.0), name="src")
    layers = from_sequential(module, net, src, delay=1)
    net.spike_monitor(src), net.spike_monitor(layers[-1])
    net.run(steps=steps, progress=False)
    inputs = spike_raster(net.reader(), "src", steps, batch, sizes[0])
    out = spike_raster(net.reader(), "layer2", steps, batch, sizes[-1])
    delayed = _delayed_spikes(module, inputs)
    assert delayed.sum() > 20
    assert not np.array_equal(delayed, _snntorch_spikes(module, inputs))
    np.testing.assert_array_equal(out, delayed)


def test_from_sequential_refuses_what_it_cannot_convert():
    net = ns.Network(dt=1.0)
    src = net.population(4, ns.PoissonSource(rate=10.0), name="src")
    with pytest.raises(ValueError, match=r"nn.Linear, snn.Leaky \(or snn.Synaptic\) pairs"):
        from_sequential(torch.nn.Sequential(torch.nn.Linear(4, 3)), net, src)
    with pytest.raises(ValueError, match="takes 5 inputs"):
        from_sequential(torch.nn.Sequential(torch.nn.Linear(5, 3), snn.Leaky(0.9, init_hidden=True)),
                        net, src)
    with pytest.raises(ValueError, match="reset_mechanism"):
        from_sequential(torch.nn.Sequential(torch.nn.Linear(4, 3),
                                            snn.Leaky(0.9, reset_mechanism="none", init_hidden=True)),
                        net, src)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_synaptic_layers_convert_and_spike_as_in_snntorch(reset, engine):
    steps, batch, sizes = 200, 2, (24, 16, 12, 10)
    module = _module(np.random.default_rng(11), sizes, reset, ["synaptic", "leaky", "synaptic"])
    net = ns.Network(dt=1.0, seed=6, batch=batch, **engine)
    src = net.population(sizes[0], ns.PoissonSource(rate=15.0), name="src")
    layers = from_sequential(module, net, src)
    assert [p.model_name for p in layers] == ["SnnTorchSynaptic", "SnnTorchLeaky", "SnnTorchSynaptic"]
    net.spike_monitor(src), net.spike_monitor(layers[-1])
    net.run(steps=steps, progress=False)
    inputs = spike_raster(net.reader(), "src", steps, batch, sizes[0])
    out = spike_raster(net.reader(), "layer3", steps, batch, sizes[-1])
    expected = _snntorch_spikes(module, inputs)
    assert 20 < expected.sum() < 0.6 * expected.size
    np.testing.assert_array_equal(out, expected)
    back = to_sequential(net, [src, *layers])
    assert [type(m).__name__ for m in back] == ["Linear", "Synaptic", "Linear", "Leaky", "Linear",
                                                "Synaptic"]
    np.testing.assert_array_equal(_snntorch_spikes(back, inputs), expected)
