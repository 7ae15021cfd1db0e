"""The CCL MLP on the engine: graded populations, delay-0 projections, CounterCurrent rules.

The same algorithm as :class:`~neurosim.networks.ccl.CCLNet` (the authors' code version),
written as a simulation with local rules instead of an autograd graph:

* the forward network is one :class:`~neurosim.Network` with a batch of samples:
  populations ``f0`` (the input, a :class:`~neurosim.GradedInput`), ``f1 .. f{L-1}`` (``phi``) and
  ``f{L}`` (the logits, identity), joined by delay-0 projections ``U1 .. U{L}`` whose
  weights are ``U_l^T``; one step computes the whole forward pass;
* the feedback network is a second network whose batch is the C classes: ``b{L}``
  (driven by the C one-hots) down to ``b0`` through ``V{L} .. V1``;
* after both stepped, each layer's per-sample error signal is computed from its own
  activity and the feedback activity at the same depth
  (:func:`~neurosim.networks.ccl_losses.code_loss_errors`, times ``phi'(z)``), written
  to a per-sample modulator, and ``trigger("end_of_sample")`` makes every projection's
  :class:`~neurosim.rules.CounterCurrent` rule add ``sum_b r_pre^T error`` to its
  gradient; the gradients are clipped per network and applied by SGD, as the authors do.

A batch smaller than the networks' batch (the last of an epoch) is padded with zero
rows whose error signals are zero, so it contributes nothing. Only the ``"code"`` loss
is offered here (the normalised losses mix samples through their norms).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from neurosim.network import Network
from neurosim.models.graded import Graded, GradedInput
from neurosim.networks.ccl import CCLNet
from neurosim.networks.ccl_layers import DensePair, activation_backward
from neurosim.networks.ccl_losses import class_match, code_loss_errors
from neurosim.rules.counter_current import CounterCurrent


class CCLRuleNet:
    """Build both networks; :meth:`step` trains on a batch, :meth:`logits` predicts.

    Args:
        sizes: layer widths, input to classes (default the authors' 784-256x5-10; with
            ``weights``, taken from them).
        batch: samples per step (the forward network's batch).
        activation_name: ``phi`` (default ELU; with ``weights``, theirs).
        kappa: weight of the local loss (default 0.5; with ``weights``, theirs).
        lr, clip: SGD learning rate and clipping by global norm, for each network.
        weights: a :class:`CCLNet` of the same sizes to copy the initial weights from
            (default: a new one drawn from ``seed``, i.e. ``nn.Linear``'s initialisation).
        backend: of both networks, or (forward, feedback); default torch for both (the
            forward network's batch is matrix products, torch's BLAS; since the torch step
            prepares each update once, the 10-row feedback network is also cheaper there
            than in numba's compiled loops: ``benchmarks/ccl_epoch_time.py``).
        threads: torch threads while the forward network steps (default torch's own
            count: its step is a few large matrix products, which threads speed up; the
            engine's default of one thread suits steps of many small operations).
        dtype, device: of both networks (see :class:`~neurosim.Network`).
    """

    def __init__(self, sizes: Sequence[int] | None = None, *, batch: int = 256,
                 activation_name: str | None = None, kappa: float | None = None, lr: float = 1.0,
                 clip: float | None = 1.0, weights: CCLNet | None = None, seed: int = 0,
                 backend: str | tuple[str, str] | None = None, threads: int | None = None,
                 dtype: str = "float32", device: str = "cpu") -> None:
        if weights is None:
            sizes = [int(s) for s in (sizes or (784, 256, 256, 256, 256, 256, 10))]
            weights = CCLNet.mlp(sizes, seed=seed, activation_name=activation_name or "elu",
                                 kappa=0.5 if kappa is None else kappa)
        if not all(isinstance(p, DensePair) for p in weights.pairs) or len(weights.input_shape) != 1:
            raise ValueError("CCLRuleNet: weights must be a dense CCLNet (CCLNet.mlp or .from_stacks)")
        own = [weights.input_shape[0]] + [s[0] for s in weights.shapes[1:]]
        if sizes is not None and [int(s) for s in sizes] != own:
            raise ValueError(f"CCLRuleNet: weights are of a network of sizes {own}, not {list(sizes)}")
        for given, name in ((activation_name, "activation_name"), (kappa, "kappa")):
            held = weights.activation_name if name == "activation_name" else weights.kappa
            if given is not None and given != held:
                raise ValueError(f"CCLRuleNet: {name}={given!r}, but the weights' network has {held!r}")
        sizes, activation_name, kappa = own, weights.activation_name, weights.kappa
        if weights.loss_name != "code":
            raise ValueError("CCLRuleNet: only the 'code' local loss runs as a rule")
        if not lr > 0:
            raise ValueError(f"CCLRuleNet: lr must be > 0, got {lr}")
        self.sizes, self.batch, self.classes = sizes, int(batch), sizes[-1]
        self.phi_name, self.kappa, self.lr, self.clip = activation_name, float(kappa), float(lr), clip
        L = len(sizes) - 1
        if backend is None:
            backend = "torch"
        fwd_backend, fb_backend = (backend, backend) if isinstance(backend, str) else backend
        kw = dict(dt=1.0, seed=seed, dtype=dtype, device=device)
        self.forward_net = fwd = Network(batch=self.batch, backend=fwd_backend,
                                         threads=threads or torch.get_num_threads(), **kw)
        self.feedback_net = fb = Network(batch=self.classes, backend=fb_backend, **kw)

        def model(l: int) -> Graded:
            return Graded("identity" if l in (0, L) else activation_name)

        # the image and the class one-hots are injected values: graded sources
        self.f = [fwd.population(n, GradedInput() if l == 0 else model(l), name=f"f{l}")
                  for l, n in enumerate(sizes)]
        self.b = [fb.population(n, GradedInput() if l == L else model(l), name=f"b{l}")
                  for l, n in enumerate(sizes)]
        self.U, self.V = [], []
        for l in range(1, L + 1):
            pair = weights.pairs[l - 1]
            fwd.modulators.add(f"error{l}", size=sizes[l], per_sample=True)
            u = fwd.projection(self.f[l - 1], self.f[l], weight=pair.forward_map.weight.detach().T.cpu().numpy(),
                               receptor="in", delay=0, name=f"U{l}")
            fwd.add_rule(u, CounterCurrent(error=f"error{l}", as_gradient=True), name=f"ccl_U{l}")
            fb.modulators.add(f"error{l - 1}", size=sizes[l - 1], per_sample=True)
            v = fb.projection(self.b[l], self.b[l - 1], weight=pair.feedback_map.weight.detach().T.cpu().numpy(),
                              receptor="in", delay=0, name=f"V{l}")
            fb.add_rule(v, CounterCurrent(error=f"error{l - 1}", as_gradient=True), name=f"ccl_V{l}")
            self.U.append(u)
            self.V.append(v)
        self.b[L].inputs["i_ext"].copy_(torch.eye(self.classes, dtype=fb.dtype))

    # -- one batch --------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> int:
        n = x.shape[0]
        if n > self.batch:
            raise ValueError(f"CCLRuleNet: a batch of {n} samples; the network holds {self.batch}")
        if x.shape[1] != self.sizes[0]:
            raise ValueError(f"CCLRuleNet: samples have {x.shape[1]} values, expected {self.sizes[0]}")
        inp = self.f[0].inputs["i_ext"]
        inp[:n] = x
        inp[n:].zero_()  # (the padding rows of a short batch)
        self.forward_net.run(steps=1, progress=False)
        return n

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The forward network's output for ``x`` (any number of samples), no learning."""
        out = []
        for lo in range(0, x.shape[0], self.batch):
            n = self._forward(x[lo:lo + self.batch])
            out.append(self.f[-1].state["r"][:n].clone())
        return torch.cat(out)

    def step(self, x: torch.Tensor, labels: torch.Tensor, batch_index: int = 0) -> tuple[float, torch.Tensor]:
        """One CCL update from a batch (at most ``batch`` samples); returns the cross-entropy
        of the logits before the update, and the logits (the trainer interface of
        :func:`neurosim.networks.ccl_training.fit`)."""
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"CCLRuleNet: labels must lie in 0..{self.classes - 1}, got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
        n = self._forward(x)
        self.feedback_net.run(steps=1, progress=False)
        L = len(self.sizes) - 1
        A = [p.state["r"][:n] for p in self.f]
        B = [p.state["r"] for p in self.b]
        match = class_match(labels, self.classes, A[0].dtype)
        fwd_mods, fb_mods = self.forward_net.modulators, self.feedback_net.modulators
        for l in range(L):  # the pair (a_l, b_l) teaches U_l (l >= 1) and V_{l+1}
            e_a, e_b = code_loss_errors(A[l], B[l], match, self.kappa)
            if l >= 1:
                err = fwd_mods[f"error{l}"].value
                activation_backward(self.phi_name, e_a, self.f[l].state["z"][:n], A[l], out=err[:n])
                err[n:].zero_()  # (padding rows of a short batch: no error)
                activation_backward(self.phi_name, e_b, self.b[l].state["z"], B[l],
                                    out=fb_mods[f"error{l}"].value)
            else:
                fb_mods["error0"].value.copy_(e_b)
        top = fwd_mods[f"error{L}"].value
        # cross-entropy at the logits, averaged over the batch
        torch.sub(F.softmax(A[L], dim=1), match, out=top[:n]).div_(n)
        top[n:].zero_()
        logits = A[L].clone()
        loss = float(F.cross_entropy(logits, labels))
        for group, net in ((self.U, self.forward_net), (self.V, self.feedback_net)):
            for proj in group:
                proj.weight.grad = None
            net.trigger("end_of_sample")
            weights = [p.weight for p in group]
            if self.clip is not None:  # as the authors: clip each network's gradient by its norm
                torch.nn.utils.clip_grad_norm_(weights, self.clip)
            torch._foreach_add_(weights, [w.grad for w in weights], alpha=-self.lr)
        return loss, logits

    # -- what fit() and evaluate() use ----------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def end_epoch(self) -> None:
        """No schedule: nothing to do at the end of an epoch."""

    def train(self, mode: bool = True) -> "CCLRuleNet":
        return self

    def eval(self) -> "CCLRuleNet":
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights (``U<l>``, ``V<l>`` as ``(n_pre, n_post)``), copied."""
        return {p.name: p.weight.clone() for p in self.U + self.V}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for p in self.U + self.V:
            p.set_weights(state[p.name])

    def to_ccl_net(self) -> CCLNet:
        """A :class:`CCLNet` holding copies of the current weights."""
        net = CCLNet.mlp(self.sizes, activation_name=self.phi_name, kappa=self.kappa)
        with torch.no_grad():
            for pair, u, v in zip(net.pairs, self.U, self.V):
                pair.forward_map.weight.copy_(u.weight.T)
                pair.feedback_map.weight.copy_(v.weight.T)
        return net

    def describe(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "batch": self.batch, "activation": self.phi_name,
                "kappa": self.kappa, "lr": self.lr, "clip": self.clip,
                "backend": [self.forward_net.backend_name, self.feedback_net.backend_name]}
