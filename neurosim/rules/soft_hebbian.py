"""Soft-Hebbian competitive learning (SoftHebb): Hebbian updates under a soft winner-take-all.

For a layer of linear units ``u_k = <w_k, x>`` competing through ``y = softmax(u / T)``:

    dw_k = lr * sum_b y_k (x - u_k w_k)

the plain form of Moraitis et al. 2022 ("SoftHebb", the natural reading of NHL's soft
Hebbian rule, Tang et al. CVPR 2023; shared/research/algorithms.md section 2): each unit
moves towards the inputs it wins in proportion to how much it wins them, and the
Oja-like decay ``- y_k u_k w_k`` keeps ``|w_k|`` near 1, so the units settle on one
prototype per cluster of the input. SoftHebb's extras (an anti-Hebbian sign for the
losers, normalising an update by its largest entry) are not part of this form.

On the engine the rule is local in the usual sense: a delay-0 projection from a graded
population ``x`` to a graded identity population ``u`` (``u.z = x @ W``), a soft
competition signal over ``u`` (``net.modulators.add_soft_competition``, computed in the
step), and this rule reading the presynaptic value ``pre_r``, the postsynaptic
pre-activation ``post_z`` and the signal per sample; both backends run it from its
recipe (numba compiled). On a :class:`~neurosim.Convolution` projection, with the
channels competing at each position (``add_soft_competition(..., channels=K)``), the
same recipe updates the shared kernels: each kernel entry takes the sum of its
synapses' changes. :func:`conv_soft_hebbian_delta` is that update as a torch function
over unfolded image patches (equal without padding; with padding it also decays the
taps that fall on the padding, which have no synapse on the engine).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neurosim.rules.base import Rule
from neurosim.rules.recipe import Recipe


def soft_hebbian(w, pre_r, post_z, y, lr):
    return lr * y * (pre_r - post_z * w)


class SoftHebbian(Rule):
    """``dw_ij = lr * sum_b y_bj (x_bi - u_bj w_ij)`` (see the module docstring).

    Args:
        competition: the name of the soft-competition signal over the postsynaptic
            population (``net.modulators.add_soft_competition(name, post)``).
        lr: learning rate per application (dimensionless; one application per
            ``every`` steps, summed over the batch).
        w_min, w_max: weight bounds (default none: prototypes take either sign).
    """

    def __init__(self, *, competition: str, lr: float = 0.01, w_min: float = -math.inf,
                 w_max: float = math.inf, **kwargs) -> None:
        super().__init__(lr=lr, w_min=w_min, w_max=w_max, **kwargs)
        if not isinstance(competition, str) or not competition:
            raise TypeError(f"SoftHebbian: competition must be a signal's name, got {competition!r}")
        self.competition = competition

    def setup(self) -> None:
        p = self.projection
        if not p.pre.graded or "r" not in p.pre.state:
            raise ValueError(f"rule {self.name}: SoftHebbian needs a graded presynaptic population "
                             f"(its values are the input x); '{p.pre.name}' is {p.pre.model_name}")
        if "z" not in p.post.state:
            raise ValueError(f"rule {self.name}: SoftHebbian reads the postsynaptic pre-activation "
                             f"'z' (a graded population); '{p.post.name}' is {p.post.model_name}")
        self.check_modulator(self.competition)
        mod = self.net.modulators[self.competition]
        if not mod.per_sample:
            raise ValueError(f"rule {self.name}: signal {self.competition!r} must hold one value per "
                             "sample and neuron (add it with net.modulators.add_soft_competition)")
        super().setup()

    def recipe(self) -> Recipe:
        return Recipe(per_step=soft_hebbian, signals={"y": self.competition})

    def describe(self):
        return {**super().describe(), "competition": self.competition}


def soft_hebbian_delta(x: torch.Tensor, w: torch.Tensor, temperature: float) -> torch.Tensor:
    """The batch-summed update direction for inputs ``x`` ``(N, d)`` and prototypes ``w``
    ``(K, d)`` (one per row): ``Y^T X - (sum_b Y * U) * w`` with ``U = X w^T`` and
    ``Y = softmax(U / T)``; multiply by a learning rate."""
    u = x @ w.T
    y = torch.softmax(u / temperature, dim=1)
    return y.T @ x - (y * u).sum(0).unsqueeze(1) * w


def conv_soft_hebbian_delta(images: torch.Tensor, kernels: torch.Tensor, temperature: float, *,
                            stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The soft-Hebbian update of a convolution's kernels ``(K, C, kh, kw)`` from images
    ``(N, C, H, W)``: :func:`soft_hebbian_delta` with every patch an input and the
    channels competing at each position; shaped like the kernels."""
    k, c, kh, kw = kernels.shape
    patches = F.unfold(images, (kh, kw), stride=stride, padding=padding)  # (N, C*kh*kw, L)
    x = patches.transpose(1, 2).reshape(-1, c * kh * kw)
    return soft_hebbian_delta(x, kernels.reshape(k, -1), temperature).reshape(kernels.shape)
