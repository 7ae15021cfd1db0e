"""Image transforms made offline: rotation (the second "mode" of the TauGate protocol)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def rotate(images: np.ndarray | torch.Tensor, degrees: float) -> torch.Tensor:
    """``images`` ``(N, H, W)`` (any numeric dtype) rotated counter-clockwise by
    ``degrees`` about their centres, bilinear, zeros outside; float32, same scale."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.dim() != 3:
        raise ValueError(f"rotate: images must be (N, H, W), got shape {tuple(x.shape)}")
    if not math.isfinite(float(degrees)):
        raise ValueError(f"rotate: degrees must be finite, got {degrees}")
    x = x.float().unsqueeze(1)
    a = math.radians(float(degrees))
    c, s = math.cos(a), math.sin(a)
    # the grid maps output pixels to input pixels (x right, y down): the inverse of the
    # counter-clockwise rotation [[c, s], [-s, c]] in those coordinates
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float32).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(1)
