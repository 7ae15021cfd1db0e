"""The test-time adaptation pieces: the homeostatic modulator, the norm-keeping Hebbian step."""

from __future__ import annotations

import pytest
import torch

from neurosim.networks.adaptation import (ChannelModulator, SourceCNN, adapt_stream, entropy, hebbian_step,
                                         plasticity_gate)


def test_homeostatic_step_restores_the_source_statistics():
    g = torch.Generator().manual_seed(0)
    mod = ChannelModulator(3)
    source = torch.randn(50, 3, 6, 6, generator=g) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1)
    mod.record_source(source)
    shifted = 0.3 * source + 0.7  # a washed-out copy
    mod.homeostatic_step(shifted, rate=1.0)
    out = mod(shifted).detach()
    assert torch.allclose(out.mean((0, 2, 3)), mod.source_mean, atol=1e-5)
    assert torch.allclose(out.std((0, 2, 3)), mod.source_std, atol=1e-5)
    half = ChannelModulator(3)
    half.record_source(source)
    half.homeostatic_step(shifted, rate=0.5)  # half way from identity
    assert torch.allclose(half.gain.detach(), 0.5 + 0.5 * mod.gain.detach(), atol=1e-6)


def test_hebbian_step_keeps_each_kernels_norm_and_moves_it():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    before = conv.weight.detach().clone()
    hebbian_step(conv, torch.rand(8, 1, 10, 10), lr=0.5, temperature=1.0)
    after = conv.weight.detach()
    assert torch.allclose(after.flatten(1).norm(dim=1), before.flatten(1).norm(dim=1), atol=1e-5)
    assert not torch.allclose(after, before)


def test_entropy_and_methods():
    uniform = torch.zeros(4, 10)
    assert float(entropy(uniform)) == pytest.approx(float(torch.log(torch.tensor(10.0))), abs=1e-6)
    model = SourceCNN()
    x, y = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    before = [p.detach().clone() for p in model.parameters()]
    adapt_stream(model, x, y, "hebbian_modulator", batch=10)
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))  # a copy adapts
    with pytest.raises(ValueError, match="method must be one of"):
        adapt_stream(model, x, y, "magic")


def test_the_plasticity_gate_is_the_normalised_entropy_of_the_prediction():
    torch.manual_seed(0)
    model = SourceCNN()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    assert plasticity_gate(model, x) == pytest.approx(1.0, abs=1e-6)  # unsure: full plasticity
    with torch.no_grad():
        model.fc.bias[3] = 50.0
    assert plasticity_gate(model, x) < 1e-15  # sure of every image: none
    with torch.no_grad():
        model.fc.bias[3] = 1.0
    p = torch.softmax(torch.tensor([1.0] + [0.0] * 9), 0)
    assert plasticity_gate(model, x) == pytest.approx(float(-(p * p.log()).sum() / torch.log(torch.tensor(10.0))),
                                                      rel=1e-5)



def test_the_scheme_scales_its_hebbian_step_by_the_gate_and_the_literal_one_does_not(monkeypatch):
    from neurosim.networks import adaptation

    torch.manual_seed(1)
    model = SourceCNN()
    x, y = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    rates = []
    real_step = adaptation.hebbian_step

    def recording_step(conv, images, lr, temperature):
        rates.append(lr)
        real_step(conv, images, lr, temperature)

    monkeypatch.setattr(adaptation, "hebbian_step", recording_step)
    adapt_stream(model, x, y, "soft_hebbian_entropy", batch=20, hebbian_lr=0.1)
    assert rates == [0.1]
    rates.clear()
    adapt_stream(model, x, y, "hebbian_modulator", batch=20, hebbian_lr=0.1)
    gate = plasticity_gate(model.eval(), x)  # (the first batch meets the source model)
    assert len(rates) == 1 and rates[0] == pytest.approx(0.1 * gate, rel=1e-12) and 0 < gate < 1
