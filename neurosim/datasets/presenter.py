"""Presenting a data set to a network, batch by batch, with rest periods."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.datasets.encoders import rate_code

if TYPE_CHECKING:
    from neurosim.monitors import SpikeCounter
    from neurosim.network import Network
    from neurosim.population import Population


def present(net: "Network", source: "Population", images: np.ndarray | torch.Tensor, *,
            duration_ms: float = 350.0, rest_ms: float = 150.0, max_rate_hz: float = 63.75,
            counters: Sequence["SpikeCounter"] = (), reset_state: bool = True,
            progress: bool | None = None) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Show ``images`` to ``net`` through the Poisson source ``source``, ``net.batch`` at a time.

    Each batch: (optionally) reset the network state, set the source's rates to
    :func:`~neurosim.datasets.rate_code` of the images (one batch row per sample),
    run ``duration_ms``, yield ``(sample_indices, counts)`` where ``counts`` maps
    each counter's name to its spike counts during the presentation (only the
    rows of real samples: a last, partial batch is padded with silent rows), then
    silence the input and run ``rest_ms`` so the network relaxes. Learning rules
    keep running throughout; freeze them (``rule.learning = False``) to evaluate.
    """
    from neurosim.models.poisson import PoissonSource

    if not isinstance(source.model, PoissonSource):
        raise ValueError(f"present: source '{source.name}' must be a PoissonSource population")
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != source.n:
        raise ValueError(f"present: images have {x.shape[1]} values each but source "
                         f"'{source.name}' has {source.n} neurons")
    if duration_ms <= 0 or rest_ms < 0:
        raise ValueError("present: need duration_ms > 0 and rest_ms >= 0")
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    batch = net.batch
    bar = tqdm(total=len(x), unit="sample", disable=not progress, desc="presenting")
    try:
        for start in range(0, len(x), batch):
            idx = np.arange(start, min(start + batch, len(x)))
            rates = np.zeros((batch, source.n))
            rates[:len(idx)] = rate_code(x[idx], max_rate_hz)
            if reset_state:
                net.reset_state()
            for counter in counters:
                counter.reset()
            source.set_parameters(rate=rates)
            net.run(duration_ms, progress=False)
            yield idx, {c.name: c.counts[:len(idx)].clone() for c in counters}
            if rest_ms > 0:
                # zeros of the same shape: the compiled kernel stays the same
                source.set_parameters(rate=np.zeros_like(rates))
                net.run(rest_ms, progress=False)
            bar.update(len(idx))
    finally:
        bar.close()
