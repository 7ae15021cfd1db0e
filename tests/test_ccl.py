"""Counter-current learning: detaching, the hand-derived update, bad input, a short MNIST run."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.networks.ccl import CCLNet
from neurosim.networks.ccl_losses import class_match, code_loss, code_loss_errors, normalized_loss
from neurosim.networks.ccl_training import Split, Trainer, evaluate, fit, train_validation_split
from neurosim.networks.feedback_alignment import AlignmentMLP

from data_paths import MNIST, requires_datasets


def tiny(seed=0, **kw):
    return CCLNet.mlp((6, 5, 4, 3), seed=seed, **kw).double()


def batch(n=7, d=6, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def touched(net, loss):
    """Names of the matrices ``loss`` reaches (non-zero gradient)."""
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
    return {name for name, g in zip(params, grads) if g is not None and bool(g.abs().sum() > 0)}


def test_each_local_loss_reaches_one_forward_and_one_feedback_matrix():
    net = tiny()
    x, y = batch()
    out = net.losses(x, y)
    L = len(net.pairs)
    assert len(out.local) == L  # pairs (a_0, b_0) ... (a_{L-1}, b_{L-1})
    assert touched(net, out.local[0]) == {"pairs.0.feedback_map.weight"}  # (x, b_0): V_1 only
    for l in range(1, L):
        assert touched(net, out.local[l]) == {f"pairs.{l - 1}.forward_map.weight",
                                             f"pairs.{l}.feedback_map.weight"}
    assert touched(net, out.final) == {f"pairs.{L - 1}.forward_map.weight"}


def test_code_loss_gradient_equals_hand_derived_local_errors():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(9, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    match = class_match(torch.randint(0, 4, (9,), generator=g), 4, torch.float64)
    da, db = torch.autograd.grad(code_loss(a, b, match, 0.5), (a, b))
    ea, eb = code_loss_errors(a.detach(), b.detach(), match, 0.5)
    torch.testing.assert_close(da, ea, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(db, eb, rtol=1e-12, atol=1e-14)


def test_normalized_loss_is_eq_2_and_ignores_each_samples_scale():
    """The paper's Eq. 2 (plus the CNN code's decorrelation terms), written out in numpy."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(6, 2, 3, dtype=torch.float64, generator=g)  # (flattened per sample)
    b = torch.randn(4, 6, dtype=torch.float64, generator=g)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    match = class_match(labels, 4, torch.float64)
    def rownorm(x):  # (+1e-8: the implementation's guard against a zero row)
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)
    A, B = rownorm(a.reshape(6, -1).numpy()), rownorm(b.numpy())
    M = np.eye(4)[labels.numpy()]
    eq2 = 0.5 * np.mean((A @ B.T - M) ** 2)
    decorrelation = np.mean((A @ A.T - np.eye(6)) ** 2) + np.mean((B @ B.T - np.eye(4)) ** 2)
    assert float(normalized_loss(a, b, match, 0.5)) == pytest.approx(eq2, rel=1e-12)
    assert float(normalized_loss(a, b, match, 0.5, 0.3)) == pytest.approx(eq2 + 0.3 * decorrelation, rel=1e-12)
    # each sample's (and prototype's) norm drops out (up to the guard), unlike in the code's loss
    scale = torch.tensor([0.5, 2.0, 3.0, 1.0, 7.0, 0.1], dtype=torch.float64).view(-1, 1, 1)
    assert float(normalized_loss(a * scale, 3 * b, match)) == pytest.approx(float(normalized_loss(a, b, match)),
                                                                            rel=1e-6)
    assert float(code_loss(a * scale, b, match)) != pytest.approx(float(code_loss(a, b, match)), rel=1e-3)
    # an MLP built with loss="normalized" trains each pair on it
    net = tiny(loss="normalized")
    x, y = batch()
    with torch.no_grad():
        out = net.losses(x, y)
        acts = net.forward_activities(x)
        protos = net.feedback_activities(net.class_prototypes(x.dtype))
    m = class_match(y, 3, x.dtype)
    for l, local in enumerate(out.local):
        assert float(local) == pytest.approx(float(normalized_loss(acts[l], protos[l], m, net.kappa)), rel=1e-12)


def elu_prime(z):
    return torch.where(z > 0, torch.ones_like(z), torch.exp(z))


def test_one_step_changes_weights_by_the_local_rule_formula():
    """SGD on the summed loss = outer products of per-neuron errors and presynaptic activity."""
    net, lr = tiny(seed=4), 0.3
    x, y = batch(seed=5)
    before = [(p.forward_map.weight.detach().clone(), p.feedback_map.weight.detach().clone()) for p in net.pairs]
    with torch.no_grad():  # every activity and pre-activation, by hand
        U = [u for u, _ in before]
        V = [v for _, v in before]
        a, z = [x], [None]
        for l, u in enumerate(U):
            z.append(a[-1] @ u.T)
            a.append(F.elu(z[-1]) if l < len(U) - 1 else z[-1])
        b, zb = [torch.eye(3, dtype=torch.float64)], [None]
        for l in range(len(V) - 1, -1, -1):
            zb.insert(0, b[0] @ V[l].T)
            b.insert(0, F.elu(zb[0]) if l > 0 else zb[0])
    match = class_match(y, 3, torch.float64)
    expected_u, expected_v = [], []
    for l in range(len(U)):
        if l + 1 < len(U):  # U_{l+1} from the pair (a_{l+1}, b_{l+1})
            e_a, _ = code_loss_errors(a[l + 1], b[l + 1], match)
            expected_u.append(-lr * (e_a * elu_prime(z[l + 1])).T @ a[l])
        else:  # the top matrix: cross-entropy
            err = (F.softmax(a[-1], 1) - F.one_hot(y, 3)) / len(y)
            expected_u.append(-lr * err.T @ a[l])
        _, e_b = code_loss_errors(a[l], b[l], match)  # V_{l+1} from the pair (a_l, b_l)
        gate = elu_prime(zb[l]) if l > 0 else torch.ones_like(e_b)
        expected_v.append(-lr * (e_b * gate).T @ b[l + 1])
    Trainer(net, lr=lr, clip=None).step(x, y)
    for l, pair in enumerate(net.pairs):
        torch.testing.assert_close(pair.forward_map.weight - before[l][0], expected_u[l], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(pair.feedback_map.weight - before[l][1], expected_v[l], rtol=1e-9, atol=1e-12)


def test_clipping_and_centralisation_act_per_network():
    net = tiny(seed=6)
    x, y = batch(seed=7)
    Trainer(net, lr=1e-9, clip={"forward": 1e-3, "feedback": None}, gradient_centralization=True).step(x, y)
    fw = [p.grad for p in net.parameter_groups()["forward"]]
    fb = [p.grad for p in net.parameter_groups()["feedback"]]
    assert float(torch.sqrt(sum((g ** 2).sum() for g in fw))) == pytest.approx(1e-3, rel=1e-6)
    assert float(torch.sqrt(sum((g ** 2).sum() for g in fb))) > 1e-3  # not clipped
    for g in fw + fb:  # centralised: zero mean over the input axis
        torch.testing.assert_close(g.mean(dim=1), torch.zeros(g.shape[0], dtype=g.dtype), atol=1e-12, rtol=0)


def test_mismatched_stacks_and_classes_are_refused():
    with pytest.raises(ValueError, match="layer pair 2"):
        CCLNet.from_stacks([nn.Linear(6, 5), nn.Linear(5, 3)], [nn.Linear(5, 6), nn.Linear(3, 4)])
    with pytest.raises(ValueError, match="2 forward layers but 1 feedback"):
        CCLNet.from_stacks([nn.Linear(6, 5), nn.Linear(5, 3)], [nn.Linear(5, 6)])
    with pytest.raises(ValueError, match="layer pair 2"):  # feedback built for 4 classes, forward gives 3
        CCLNet.from_stacks([nn.Linear(6, 5), nn.Linear(5, 3)], [nn.Linear(5, 6), nn.Linear(4, 5)])
    with pytest.raises(ValueError, match="10 classes"):
        CCLNet.from_stacks([nn.Linear(6, 5), nn.Linear(5, 3)], [nn.Linear(5, 6), nn.Linear(3, 5)], classes=10)
    with pytest.raises(ValueError, match="layer pair 2"):
        CCLNet.from_stacks([nn.Linear(6, 5), nn.Linear(4, 3)], [nn.Linear(5, 6), nn.Linear(3, 4)])
    with pytest.raises(ValueError, match="loss must be one of"):
        tiny(loss="eq2")


def test_bad_labels_are_refused():
    net = tiny()
    x, _ = batch()
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2, got values from 0 to 3"):
        net.losses(x, torch.tensor([0, 1, 2, 3, 0, 1, 2]))
    with pytest.raises(ValueError, match="labels must lie"):
        net.losses(x, torch.tensor([-1, 1, 2, 0, 0, 1, 2]))
    with pytest.raises(TypeError, match="labels must be integers"):
        net.losses(x, torch.zeros(7))
    with pytest.raises(ValueError, match="input samples have shape"):
        net.losses(torch.zeros(7, 5, dtype=torch.float64), torch.zeros(7, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        AlignmentMLP((6, 4, 3), "fa").training_loss(torch.zeros(2, 6), torch.tensor([0, 3]))


def test_cnn_and_autoencoder_shapes_and_one_step():
    cnn = CCLNet.cnn(1, 32, channels=(4, 4, 8, 8, 8), classes=10, seed=0)
    assert cnn.shapes[1:] == [(4, 16, 16), (4, 8, 8), (8, 4, 4), (8, 2, 2), (8, 1, 1), (10,)]
    x, y = torch.randn(5, 1, 32, 32), torch.tensor([0, 1, 2, 3, 4])
    out = cnn.losses(x, y)
    assert len(out.local) == 6 and out.output.shape == (5, 10)
    ae = CCLNet.autoencoder(1, 28, channels=(4, 8), seed=0)
    assert ae.shapes[1:] == [(4, 14, 14), (8, 7, 7), (4, 14, 14), (1, 28, 28)]
    x = torch.randn(6, 1, 28, 28)
    trainer = Trainer(ae, lr=0.05, clip=None)
    first = ae.losses(x).total.item()
    for _ in range(20):
        trainer.step(x, None)
    assert ae.losses(x).total.item() < first
    with pytest.raises(ValueError, match="at least 32 pixels"):
        CCLNet.cnn(1, 28)


@pytest.mark.parametrize("method", ["bp", "fa", "dfa"])
def test_baseline_gradients(method):
    """bp: autograd's gradient; fa: the error goes down through B; dfa: e D_l at each hidden layer."""
    net = AlignmentMLP((6, 5, 4, 3), method, seed=2).double()
    x, y = batch(seed=8)
    loss, _ = net.training_loss(x, y)
    loss.backward()
    U = [l.weight.detach() for l in net.layers]
    a, z = [x], [None]
    for l, u in enumerate(U):
        z.append(a[-1] @ u.T)
        a.append(F.elu(z[-1]) if l < len(U) - 1 else z[-1])
    delta = (F.softmax(a[-1], 1) - F.one_hot(y, 3)) / len(y)  # at the logits
    grads = [None] * len(U)
    grads[-1] = delta.T @ a[-2]
    d = delta
    for l in range(len(U) - 2, -1, -1):
        if method == "dfa":
            d = (delta @ getattr(net, f"feedback{l}")) * elu_prime(z[l + 1])
        else:
            down = getattr(net, f"feedback{l + 1}") if method == "fa" else U[l + 1]
            d = (d @ down) * elu_prime(z[l + 1])
        grads[l] = d.T @ a[l]
    for l, layer in enumerate(net.layers):
        torch.testing.assert_close(layer.weight.grad, grads[l], rtol=1e-9, atol=1e-12)


@requires_datasets
def test_one_epoch_on_10000_mnist_images_reaches_90_percent():
    from neurosim.datasets import load_mnist
    from neurosim.datasets.standardize import PIXEL_STATISTICS, standardized

    images, labels = load_mnist("train", MNIST)
    test_images, test_labels = load_mnist("test", MNIST)
    mean, std = PIXEL_STATISTICS["mnist"]
    x = standardized(images[:10000], mean, std).flatten(1)
    train, validation = train_validation_split(x, torch.as_tensor(labels[:10000]).long(), seed=0)
    net = CCLNet.mlp(seed=0)
    # batch 8, lr 1.5: chosen on the validation split for this short run (the paper's
    # lr grid is 0.2-2; its 100-epoch runs use batch 256, lr 1)
    fit(net, Trainer(net, lr=1.5, clip=1.0), train, validation, epochs=1, batch=8, seed=0, progress=False)
    test = evaluate(net, Split(standardized(test_images, mean, std).flatten(1),
                               torch.as_tensor(test_labels).long()))
    assert test["accuracy"] >= 0.90


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("clip", [None, 0.05])
def test_rule_view_on_the_engine_equals_the_autograd_view(backend, clip):
    """CounterCurrent rules on graded populations give the autograd form's weight change."""
    from neurosim.networks.ccl_rule_net import CCLRuleNet

    net = tiny(seed=9)
    x, y = batch(seed=10)
    # batch 10 > 7 samples: padded rows must contribute nothing
    rule = CCLRuleNet((6, 5, 4, 3), batch=10, weights=net, lr=0.7, clip=clip, backend=backend,
                      dtype="float64")
    for _ in range(2):
        rule.step(x, y)
        Trainer(net, lr=0.7, clip=clip).step(x, y)
    for pair, u, v in zip(net.pairs, rule.U, rule.V):
        torch.testing.assert_close(u.weight.T, pair.forward_map.weight.detach(), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(v.weight.T, pair.feedback_map.weight.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rule.logits(x), net(x).detach(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="labels must lie"):
        rule.step(x, y + 5)
    # the rules apply at the end of a sample, from what the step left: no per-step entry,
    # so the torch step runs without host calls
    for engine in (rule.forward_net, rule.feedback_net):
        assert not [e for e in engine._schedule.entries() if e[2] == "rule_traces"]
        if backend == "torch":
            assert not engine.backend._static.host_entries


def test_spiking_variant_local_losses_reach_only_their_matrices():
    from neurosim.networks.ccl_spiking import SpikingCCL

    net = SpikingCCL((12, 8, 6, 3), steps=6, batch=5, seed=1)
    with torch.no_grad():  # strong enough weights that every layer fires
        for p in net.parameters():
            p.mul_(6.0)
    x = torch.rand(5, 12, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 0, 1])
    a, scores = net._forward_rates(x)
    b = net._feedback_rates()
    assert all(float(r.detach().sum()) > 0 for r in a[1:] + b)
    match = class_match(y, 3)
    L = 3
    for l in range(L):
        loss = code_loss(a[l], b[l], match)
        expect = ({f"weights.U{l}"} if l >= 1 else set()) | {f"weights.V{l + 1}"}
        assert touched(net, loss) == expect, l
    assert touched(net, F.cross_entropy(scores, y)) == {f"weights.U{L}"}
    loss, _ = net.training_loss(x, y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_stop_gradient_cuts_only_the_presynaptic_path():
    import neurosim as ns

    def build(stop):
        net = ns.Network(dt=1.0, batch=2, backend="torch", dtype="float64")
        a = net.population(3, ns.Graded("identity"), name="a")
        h = net.population(3, ns.Graded("tanh"), name="h")
        o = net.population(2, ns.Graded("identity"), name="o")
        a.inputs["i_ext"].copy_(torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]]))
        p1 = net.projection(a, h, weight=np.full((3, 3), 0.4), receptor="in", delay=0, trainable=True)
        p2 = net.projection(h, o, weight=np.full((3, 2), -0.3), receptor="in", delay=0, trainable=True,
                            stop_gradient=stop)
        out = net.unroll(1, record={o: "r"})["o"]["r"].sum()
        out.backward()
        return p1, p2

    p1, p2 = build(False)
    q1, q2 = build(True)
    assert q1.parameter.grad is None or float(q1.parameter.grad.abs().sum()) == 0.0
    assert float(p1.parameter.grad.abs().sum()) > 0
    torch.testing.assert_close(q2.parameter.grad, p2.parameter.grad)  # its own weights: the same


def test_warm_up_scales_the_first_steps_only():
    """The authors' warm-up: while fewer than ``warmup`` steps were taken, the loss of batch i
    (of its epoch) is scaled by (i + 1) / warmup; afterwards never, at any batch index."""
    x, y = batch(seed=11)

    def change(batch_index, taken, warmup):
        net = tiny(seed=12)
        before = net.pairs[0].forward_map.weight.detach().clone()
        trainer = Trainer(net, lr=0.1, clip=None, warmup=warmup)
        trainer.global_step = taken
        trainer.step(x, y, batch_index)
        return net.pairs[0].forward_map.weight.detach() - before

    ref = change(0, 0, 0)
    torch.testing.assert_close(change(1, 1, 4), ref * 0.5, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(change(0, 4, 4), ref, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(change(2, 3, 4), ref * 0.75, rtol=1e-10, atol=1e-14)


def test_cosine_schedule_reaches_eta_min():
    net = tiny()
    x, y = batch(seed=13)
    trainer = Trainer(net, lr=1.0, cosine_epochs=4, eta_min=1e-3)
    for _ in range(4):
        trainer.step(x, y)
        trainer.end_epoch()
    for opt in trainer.optimizers.values():
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_graded_populations_refuse_spike_rules_and_signals():
    import neurosim as ns
    from neurosim import rules

    net = ns.Network(dt=1.0, batch=2)
    a = net.population(3, ns.GradedInput(), name="a")
    b = net.population(2, ns.Graded("relu"), name="b")
    proj = net.projection(a, b, weight=0.5, receptor="in", delay=0)
    with pytest.raises(ValueError, match="reacts to postsynaptic spikes, but 'b' is graded"):
        net.add_rule(proj, rules.STDP())
    with pytest.raises(ValueError, match="graded"):
        net.modulators.add_rate("rate", b)
    net.modulators.add("m")
    with pytest.raises(ValueError, match="graded"):
        net.modulators.drive("m", b)
