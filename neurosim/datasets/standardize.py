"""Images as standardised float tensors, the preprocessing of most gradient-trained baselines."""

from __future__ import annotations

import numpy as np
import torch

#: (mean, std) of the training pixels scaled to [0, 1], as torchvision users normalise them
PIXEL_STATISTICS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def standardized(images: np.ndarray | torch.Tensor, mean: float, std: float, pad: int = 0,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(N, 1, H + 2 pad, W + 2 pad)`` tensor of ``(pixel / 255 - mean) / std``.

    ``images`` are uint8 ``(N, H, W)``; ``pad`` adds a border of background (0) pixels
    before standardising, e.g. 28 -> 32 pixels for a network that halves the size five
    times.
    """
    x = torch.as_tensor(np.asarray(images)).to(dtype) / 255.0
    if x.ndim != 3:
        raise ValueError(f"standardized: images must be (N, H, W), got shape {tuple(x.shape)}")
    if not std > 0:
        raise ValueError(f"standardized: std must be > 0, got {std}")
    if pad:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    return ((x - mean) / std).unsqueeze(1)
