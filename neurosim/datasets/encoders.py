"""Spike encoders: images (or any non-negative intensities) to spikes.

* :func:`rate_code`: intensities to Poisson firing rates, to set on a
  :class:`~neurosim.PoissonSource` (``pop.set_parameters(rate=...)``), one row
  per batch sample: each sample row draws its own random numbers.
* :func:`poisson_spikes`: the same as explicit spike trains, seeded.
* :func:`latency_code`: time-to-first-spike: one spike per input, earlier for
  brighter inputs, as arrays for a :class:`~neurosim.SpikeGenerator`.
"""

from __future__ import annotations

import numpy as np
import torch

from neurosim.counter_rng import UNIT24, element_keys, lowbias32, step_key, stream_key


def _flat(images: np.ndarray | torch.Tensor) -> np.ndarray:
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise ValueError("intensities must be finite and >= 0")
    return x


def rate_code(images: np.ndarray | torch.Tensor, max_rate_hz: float = 63.75,
              max_value: float = 255.0) -> np.ndarray:
    r"""Firing rates (Hz), shape (samples, pixels): :math:`r = r_{max}\, x / x_{max}`.

    The default maps MNIST's 0..255 to 0..63.75 Hz, as Diehl & Cook (2015) do
    (intensity / 4).
    """
    if not (max_rate_hz >= 0 and max_value > 0):
        raise ValueError("rate_code: need max_rate_hz >= 0 and max_value > 0")
    return _flat(images) * (max_rate_hz / max_value)


def poisson_spikes(rates_hz: np.ndarray, duration_ms: float, dt: float, seed: int) -> np.ndarray:
    """Bernoulli-per-step Poisson spike trains, bool (steps, samples, n), reproducible from ``seed``.

    Uses the same counter-based random numbers as a PoissonSource: sample ``b``,
    input ``i`` at step ``t`` fires if ``hash(seed, t, b * n + i) < rate * dt``.
    """
    rates = np.asarray(rates_hz, dtype=np.float64)
    if rates.ndim != 2:
        raise ValueError(f"poisson_spikes: rates must be (samples, n), got shape {rates.shape}")
    if dt <= 0 or duration_ms < 0:
        raise ValueError("poisson_spikes: need dt > 0 and duration_ms >= 0")
    p = rates * dt * 1e-3
    if np.any(p > 1):
        raise ValueError(f"poisson_spikes: a rate exceeds one spike per step at dt={dt} ms")
    key = stream_key(seed, "encoder/poisson")
    elem = element_keys(key, rates.size).reshape(rates.shape)
    steps = int(round(duration_ms / dt))
    out = np.empty((steps,) + rates.shape, dtype=bool)
    for t in range(steps):
        u = (lowbias32(elem ^ step_key(key, t)) >> 8) * UNIT24
        out[t] = u < p
    return out


def latency_code(images: np.ndarray | torch.Tensor, window_ms: float, max_value: float = 255.0,
                 threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Time-to-first-spike code: one spike per input above ``threshold``.

    :math:`t = T\,(1 - x/x_{max})`: the brightest inputs fire at 0 ms, the faintest
    near ``window_ms``. Returns (times_ms, neurons, samples), sorted by time, ready
    for ``SpikeGenerator(times_ms, neurons, batch=samples)``.
    """
    if window_ms <= 0 or max_value <= 0:
        raise ValueError("latency_code: need window_ms > 0 and max_value > 0")
    x = _flat(images)
    rows, cols = np.nonzero(x > threshold)
    times = window_ms * (1.0 - np.clip(x[rows, cols] / max_value, 0.0, 1.0))
    order = np.lexsort((cols, rows, times))
    return times[order], cols[order], rows[order]
