"""The local losses of counter-current learning, and their hand-derived gradients.

Notation (see ``shared/research/algorithms.md`` section 1): ``A`` is a layer's forward
activity ``(N, d)`` for the N samples of a batch, ``B`` the feedback activity ``(C, d)``
of the same layer for the C class one-hots (one "class prototype" per class), and ``M``
the ``(N, C)`` same-class target ``M[n, c] = 1 if label[n] == c``.

* ``"code"`` (default; what the authors' code optimises for the MLP, and what
  reproduces their tables): ``kappa * (256 / d) * mean_{n,c} (A B^T - M)^2``.
* ``"normalized"``: the paper's Eq. 2, each sample's flattened activity divided by its
  L2 norm, against the same prototype target: ``kappa * mean (Â B̂^T - M)^2``, plus,
  with ``decorrelation > 0``, ``decorrelation * [mean (Â Â^T - I_N)^2 + mean (B̂ B̂^T - I_C)^2]``
  (the authors' CNN loss uses 0.5; the paper's appendix calls it a remedy for collapse).
  The paper's text reads as if each sample's own label were fed back with an identity
  target; with two samples of one class that target contradicts itself, and the
  code feeds the C prototypes instead. We follow the code in both forms.
* ``"mse"``: plain ``mean (A - B)^2`` (the autoencoder, where the feedback is driven by
  the image itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("code", "normalized", "mse")
#: the width the authors' unnormalised loss is scaled to (their hidden width)
REFERENCE_WIDTH = 256


def class_match(labels: torch.Tensor, classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``(N, C)`` target ``M[n, c] = 1 if labels[n] == c else 0``."""
    return (labels.reshape(-1, 1) == torch.arange(classes, device=labels.device)).to(dtype)


def _row_normalized(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1)
    return x / (x.norm(dim=1, keepdim=True) + 1e-8)


def code_loss(a: torch.Tensor, b: torch.Tensor, match: torch.Tensor, kappa: float = 0.5,
              reference_width: int = REFERENCE_WIDTH) -> torch.Tensor:
    """``kappa * (reference_width / d) * mean (A B^T - M)^2`` (unnormalised; the authors' MLP)."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return F.mse_loss(a @ b.T, match) * (kappa * reference_width / a.shape[1])


def normalized_loss(a: torch.Tensor, b: torch.Tensor, match: torch.Tensor, kappa: float = 0.5,
                    decorrelation: float = 0.0) -> torch.Tensor:
    """The paper's Eq. 2 on row-normalised activities (+ the CNN code's decorrelation terms)."""
    a_hat, b_hat = _row_normalized(a), _row_normalized(b)
    loss = F.mse_loss(a_hat @ b_hat.T, match) * kappa
    if decorrelation:
        eye_n = torch.eye(a_hat.shape[0], dtype=a_hat.dtype, device=a_hat.device)
        eye_c = torch.eye(b_hat.shape[0], dtype=b_hat.dtype, device=b_hat.device)
        loss = loss + decorrelation * (F.mse_loss(a_hat @ a_hat.T, eye_n)
                                       + F.mse_loss(b_hat @ b_hat.T, eye_c))
    return loss


def mse_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean (A - B)^2`` (the autoencoder's local loss)."""
    return F.mse_loss(a, b.reshape(a.shape))


def code_loss_errors(a: torch.Tensor, b: torch.Tensor, match: torch.Tensor, kappa: float = 0.5,
                     reference_width: int = REFERENCE_WIDTH) -> tuple[torch.Tensor, torch.Tensor]:
    """The derivatives of :func:`code_loss` with respect to ``A`` and ``B``, by hand.

    With ``S = A B^T`` and ``k = 2 kappa reference_width / (N C d)``:
    ``dL/dA = k (S - M) B`` (the forward layer's local error, ``(N, d)``) and
    ``dL/dB = k (S - M)^T A`` (the feedback layer's, ``(C, d)``). A layer ``a = phi(z)``,
    ``z = U x`` then changes by ``dU = -lr (dL/dA * phi'(z))^T x``: the outer product of a
    per-neuron error and the presynaptic activity, summed over the batch.
    """
    a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    n, d = a2.shape
    c = b2.shape[0]
    diff = (a2 @ b2.T - match) * (2.0 * kappa * reference_width / (n * c * d))
    return (diff @ b2).reshape(a.shape), (diff.T @ a2).reshape(b.shape)
