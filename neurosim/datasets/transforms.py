"""Image transforms made offline: rotation (the second "mode" of the TauGate protocol) and the
distribution shifts of the test-time adaptation example (noise, inversion, low contrast, blur)."""

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


def _images(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"{what}: images must be a float tensor (N, C, H, W), got {tuple(x.shape)} {x.dtype}")
    return x


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Intensities in [0, 1] plus N(0, sigma^2) noise per pixel, clipped to [0, 1]."""
    x = _images(x, "gaussian_noise")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + sigma * noise.to(x.device)).clamp(0.0, 1.0)


def invert(x: torch.Tensor) -> torch.Tensor:
    """``1 - x``: dark strokes on a light background."""
    return 1.0 - _images(x, "invert")


def low_contrast(x: torch.Tensor, contrast: float = 0.3, brightness: float = 0.4) -> torch.Tensor:
    """``brightness + contrast * x``: a washed-out (foggy) image."""
    return brightness + contrast * _images(x, "low_contrast")


def blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """A Gaussian blur of width ``sigma`` pixels (a 2*ceil(2 sigma)+1 kernel, zero padding)."""
    x = _images(x, "blur")
    radius = int(math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)
