"""Presenting a data set to a network, batch by batch, with rest periods."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

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
            min_spikes: int = 0, boost_hz: float = 255.0 / 8.0, max_repeats: int = 10,
            progress: bool | None = None, desc: str = "presenting") -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Show ``images`` to ``net`` through the Poisson source ``source``, ``net.batch`` at a time.

    Each batch: (optionally) reset the network state, set the source's rates to
    :func:`~neurosim.datasets.rate_code` of the images (one batch row per sample,
    the brightest pixel at ``max_rate_hz``), run ``duration_ms``, then silence the
    input and run ``rest_ms`` so the network relaxes. With ``min_spikes``, a
    sample whose first counter counted fewer spikes is shown again, brighter by
    ``boost_hz`` each time (the other rows silent), up to ``max_repeats`` times, as
    Diehl & Cook (2015) do (fewer than 5 spikes: +32 Hz). Yields
    ``(sample_indices, counts)``: each counter's name to the spike counts of its
    rows' last presentation (only real samples: a last, partial batch is padded
    with silent rows). After each presentation (before the rest) it fires the
    ``end_of_sample`` event: rules with ``apply_at="end_of_sample"`` apply then.
    Learning rules keep running throughout; freeze them
    (``rule.learning = False``) to evaluate. ``desc`` names the phase on the
    progress bar (e.g. ``"train"``, ``"test"``).
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
    if min_spikes and not counters:
        raise ValueError("present: min_spikes needs a counter to count the spikes with")
    if max_repeats < 0 or boost_hz < 0:
        raise ValueError("present: need max_repeats >= 0 and boost_hz >= 0")
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    batch = net.batch
    # a data-parallel run (neurosim.distributed.data_parallel): each process shows its
    # rows of every batch of net.batch_global samples, and all repeat a presentation
    # when any needs to, as one process with the whole batch does
    dp = getattr(net, "data_parallel", None)
    first_row = 0 if dp is None else dp.rank * batch
    silent = np.zeros((batch, source.n))
    bar = tqdm(total=len(x), unit="sample", disable=not progress, desc=desc)
    try:
        for start in range(0, len(x), net.batch_global):
            lo = min(start + first_row, len(x))
            idx = np.arange(lo, min(lo + batch, start + net.batch_global, len(x)))
            # brightest pixel at 1 Hz; scaled per attempt (a data-parallel process may have
            # no rows of a last, partial batch: it still runs, silent, with the others)
            unit = rate_code(x[idx], 1.0) if len(idx) else np.zeros((0, source.n))
            counts = {c.name: torch.zeros((len(idx), c.counts.shape[1]), dtype=c.counts.dtype)
                      for c in counters}
            todo = np.ones(len(idx), dtype=bool)
            for attempt in range(max_repeats + 1 if min_spikes else 1):
                rows = np.flatnonzero(todo)
                rates = silent.copy()
                rates[rows] = unit[rows] * (max_rate_hz + attempt * boost_hz)
                if reset_state:
                    net.reset_state()
                for counter in counters:
                    counter.reset()
                source.set_parameters(rate=rates)
                net.run(duration_ms, progress=False)
                net.trigger("end_of_sample")  # rules with apply_at="end_of_sample" apply now
                for counter in counters:
                    counts[counter.name][rows] = counter.counts[rows].to(counts[counter.name].device)
                if rest_ms > 0:
                    # zeros of the same shape: the compiled kernel stays the same
                    source.set_parameters(rate=silent)
                    net.run(rest_ms, progress=False)
                if min_spikes:
                    totals = _whole_population(net, counters[0], counts[counters[0].name].sum(1))
                    todo &= (totals < min_spikes).cpu().numpy()
                    if not _any_process(dp, bool(todo.any()), net.device):
                        break
            yield idx, counts
            bar.update(min(net.batch_global, len(x) - start))
    finally:
        bar.close()


def _any_process(dp: Any, flag: bool, device: Any = "cpu") -> bool:
    """``flag`` or'ed over the processes of a data-parallel run (collective), else ``flag``."""
    if dp is None or dp.size == 1:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=dp.group)
    return bool(value[0])


def _whole_population(net: "Network", counter: Any, totals: torch.Tensor) -> torch.Tensor:
    """Per-row spike totals of a counter, summed over the processes of a partitioned run
    when its population is split (each counts its share; collective), else as they are."""
    part = getattr(net, "partition", None)
    if part is None or part.size == 1 or getattr(counter.population, "mirror", None) is None:
        return totals
    import torch.distributed as dist

    totals = totals.clone()
    dist.all_reduce(totals, group=part.group)
    return totals
