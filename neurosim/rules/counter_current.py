"""Counter-current learning as a local rule: presynaptic activity times a per-sample error.

For a graded layer ``a = phi(z)``, ``z = sum_i r_i w_ij``, the CCL update of each
forward and each feedback matrix (Kao & Hariharan 2024; ``shared/research/algorithms.md``
section 1(a)) is an outer product, summed over the batch, of what the synapse sees:

    dw_ij = -lr * sum_b r_pre[b, i] * error[b, j]

where ``error`` is a per-sample signal of the postsynaptic layer: its local loss's
derivative with respect to its activity, times ``phi'(z)``. For the forward layer ``l``
it comes from the feedback network's activity at the same depth, ``k (A_l B_l^T - M) B_l``
(:func:`neurosim.networks.ccl_losses.code_loss_errors`); the top layer's is the
cross-entropy's ``softmax - onehot``. :class:`~neurosim.networks.ccl_rule_net.CCLRuleNet`
computes those signals each batch; this rule only needs their name.

The rule applies once per batch (``apply_at="end_of_sample"``, fired by
``net.trigger``), from the presynaptic values that arrived in the last step. It is tensor
code (one matrix product per projection: :meth:`Rule.outer`), the same on every
backend; a per-step recipe would sum the batch row by row, ``batch`` times slower than
the product for no gain here, where the rule runs once per batch.
"""

from __future__ import annotations

import math

import torch

from neurosim.rules.base import Rule


class CounterCurrent(Rule):
    """``dw = -lr * sum_b r_pre[b, :]^T error[b, :]`` on a projection from a graded population.

    Args:
        error: the name of a per-sample modulator (``net.modulators.add(name,
            size=n_post, per_sample=True)``) holding each sample's local error.
        lr: learning rate (dimensionless: one application per batch).
        w_min, w_max: weight bounds (default none: CCL weights take either sign).
        apply_at: ``"end_of_sample"`` (default) or None (every ``every`` steps).
        as_gradient: add ``sum_b r_pre^T error`` to ``.grad`` instead, so a torch optimiser
            (with clipping, momentum, ...) applies it.
    """

    def __init__(self, *, error: str, lr: float = 1.0, w_min: float = -math.inf,
                 w_max: float = math.inf, apply_at: str | None = "end_of_sample", every: int = 1,
                 learning: bool = True, as_gradient: bool = False) -> None:
        super().__init__(lr=lr, w_min=w_min, w_max=w_max, every=every, learning=learning,
                         as_gradient=as_gradient, apply_at=apply_at)
        if not isinstance(error, str) or not error:
            raise TypeError(f"CounterCurrent: error must be a modulator name, got {error!r}")
        self.error = error

    def setup(self) -> None:
        p = self.projection
        if not p.pre.graded:
            raise ValueError(f"rule {self.name}: CounterCurrent needs a graded presynaptic "
                             f"population (e.g. ns.Graded('elu')); '{p.pre.name}' is "
                             f"{p.pre.model_name}")
        self.check_modulator(self.error)
        mod = self.net.modulators[self.error]
        if not mod.per_sample or mod.size != p.post.n:
            raise ValueError(f"rule {self.name}: modulator {self.error!r} must hold one value per "
                             f"sample and postsynaptic neuron: add it with "
                             f"net.modulators.add({self.error!r}, size={p.post.n}, per_sample=True)")

    def weight_change(self, t: int) -> torch.Tensor:
        return self._scaled_outer(t, -self.lr)

    def gradient(self, t: int) -> torch.Tensor:
        return self._scaled_outer(t, self.lr)

    def _scaled_outer(self, t: int, scale: float) -> torch.Tensor:
        # scale the (batch, n_post) error, not the (n_pre, n_post) product: fewer values
        error = self.net.modulators[self.error].value
        return self.outer(self.pre_spikes(t), error if scale == 1.0 else error * scale)

    def describe(self):
        return {**super().describe(), "error": self.error}
