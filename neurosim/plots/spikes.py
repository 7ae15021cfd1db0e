"""Spike plots of a log: raster, population rates over time, rate / ISI / CV histograms."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from neurosim.analysis.spike_statistics import binned_rates, firing_rates, isi_cv, spike_trains
from neurosim.log_reader import LogReader, check_window
from neurosim.plots.figure import DEFAULT_SIZE, new_figure, population_colors, save, time_axis


@dataclass
class Window:
    """The part of a log a plot shows: populations, ``[start_ms, stop_ms)``, one batch row."""

    populations: list[str]
    start_ms: float
    stop_ms: float
    batch: int

    @classmethod
    def of(cls, reader: LogReader, population: str | None, start_ms: float | None,
           stop_ms: float | None, batch: int) -> "Window":
        recorded = reader.spike_populations()
        if not recorded:
            raise ValueError(f"{reader.path}: no spikes were recorded in this log "
                             "(add net.spike_monitor(population) before running)")
        if population is not None and population not in recorded:
            raise KeyError(f"no spikes recorded for population {population!r}; recorded: "
                           f"{', '.join(recorded)}")
        check_window(start_ms, stop_ms)
        chosen = [population] if population else recorded
        # the end of the log (of a truncated file: of the steps recovered for all of them)
        duration = min(reader.recording_stop_ms(r) for r in chosen)
        # by default from when recording began (a monitor added mid-run saw nothing before)
        start = (max(reader.recording_start_ms(r) for r in chosen) if start_ms is None
                 else float(start_ms))
        stop = duration if stop_ms is None else min(float(stop_ms), duration)
        if stop <= start and reader.recovery is not None and duration < reader.steps * reader.dt:
            short = [r for r in chosen if reader.recording_stop_ms(r) == duration]
            raise ValueError(f"empty time window: the spikes of {', '.join(short)} were recovered "
                             f"up to {duration:g} ms only (the file is truncated); draw the "
                             "other populations alone")
        if stop <= start:
            raise ValueError(f"empty time window: from {start:g} ms to {stop:g} ms "
                             f"(the log covers 0 to {duration:g} ms)")
        rows = int(reader.attrs.get("batch", 1))
        if not 0 <= batch < rows:
            raise ValueError(f"batch row {batch} does not exist: the run had {rows} row(s)")
        return cls(chosen, start, stop, batch)

    def events(self, reader: LogReader, population: str) -> tuple[np.ndarray, np.ndarray]:
        """(times in ms, neurons) of the window's spikes of ``population``."""
        times, neurons, _ = reader.spike_times(population, self.start_ms, self.stop_ms, self.batch)
        return times, neurons

    def label(self) -> str:
        return f"{self.start_ms:.10g}-{self.stop_ms:.10g} ms, batch row {self.batch}"


def _no_spikes(window: Window, reader: LogReader | None = None) -> ValueError:
    hint = ""
    if reader is not None:
        began = min(reader.recording_start_ms(r) for r in window.populations)
        if began >= window.stop_ms:
            hint = f" (recording began at {began:.10g} ms)"
    return ValueError(f"no spikes of {', '.join(window.populations)} in {window.label()}{hint}")


def raster(reader: LogReader, out: str | os.PathLike[str], *, population: str | None = None,
           start_ms: float | None = None, stop_ms: float | None = None, batch: int = 0,
           size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Spike raster: one dot per spike, populations stacked and coloured, time in ms."""
    window = Window.of(reader, population, start_ms, stop_ms, batch)
    fig, axes = new_figure(size)
    ax = axes[0, 0]
    scale = time_axis(ax, window.start_ms, window.stop_ms)
    colors = population_colors(reader.spike_populations())
    offset, ticks, total = 0, [], 0
    for name in window.populations:
        times, neurons = window.events(reader, name)
        n = reader.spike_record_size(name)
        # many dots: small markers, drawn as an image inside the vector frame
        ax.scatter(times * scale, neurons + offset, s=max(0.5, min(4.0, 2e4 / max(len(times), 1))),
                   marker="|" if len(times) < 2000 else ".", color=colors[name], linewidths=0.6,
                   rasterized=True, label=f"{name} ({len(times)} spikes)")
        ticks.append((offset + n / 2, name))
        offset += n
        total += len(times)
    if total == 0:
        raise _no_spikes(window, reader)
    ax.set(ylim=(-0.5, offset - 0.5), ylabel="neuron", title=f"spike raster, {window.label()}")
    if len(window.populations) > 1:
        ax.set_yticks([t for t, _ in ticks], [name for _, name in ticks])
    ax.legend(loc="upper right", markerscale=4, fontsize="small")
    return save(fig, out)


def rates(reader: LogReader, out: str | os.PathLike[str], *, population: str | None = None,
          start_ms: float | None = None, stop_ms: float | None = None, batch: int = 0,
          bin_ms: float | None = None, size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Population rate over time (mean over neurons, in Hz) in bins of ``bin_ms``
    (default: 1/200 of the window, at least one step)."""
    window = Window.of(reader, population, start_ms, stop_ms, batch)
    span = window.stop_ms - window.start_ms
    bin_ms = bin_ms or max(reader.dt, span / 200.0)
    if bin_ms < reader.dt or span / bin_ms > 1e6:
        raise ValueError(f"--bin {bin_ms:g} ms is too small: at least one step ({reader.dt:g} ms) "
                         "and at most a million bins")
    fig, axes = new_figure(size)
    ax = axes[0, 0]
    scale = time_axis(ax, window.start_ms, window.stop_ms)
    colors = population_colors(reader.spike_populations())
    total = 0
    for name in window.populations:
        times, neurons = window.events(reader, name)
        total += len(times)
        edges, values = binned_rates(times, neurons, reader.spike_record_size(name),
                                     window.start_ms, window.stop_ms, bin_ms)
        ax.stairs(values, edges * scale, color=colors[name], label=f"{name} (mean {values.mean():.2f} Hz)")
    if total == 0:
        raise _no_spikes(window, reader)
    ax.set(ylabel="rate (Hz)", title=f"population rate in {bin_ms:g} ms bins, {window.label()}")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    return save(fig, out)


def isi(reader: LogReader, out: str | os.PathLike[str], *, population: str | None = None,
        start_ms: float | None = None, stop_ms: float | None = None, batch: int = 0,
        size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Three histograms of one population: per-neuron firing rates, inter-spike
    intervals (log scale) and the coefficient of variation of each neuron's ISIs."""
    window = Window.of(reader, population, start_ms, stop_ms, batch)
    name = window.populations[0]
    times, neurons = window.events(reader, name)
    if len(times) == 0:
        raise _no_spikes(Window([name], window.start_ms, window.stop_ms, batch), reader)
    n = reader.spike_record_size(name)
    per_neuron = firing_rates(times, neurons, n, window.start_ms, window.stop_ms)
    trains = spike_trains(times, neurons, n)
    intervals = np.concatenate([np.diff(t) for t in trains if len(t) > 1] or [np.zeros(0)])
    cvs = isi_cv(trains)
    cvs = cvs[np.isfinite(cvs)]
    fig, axes = new_figure(size, 1, 3)
    a, b, c = axes[0]
    a.hist(per_neuron, bins=30, color="C0")
    a.set(xlabel="rate (Hz)", ylabel="neurons", title=f"rates (mean {per_neuron.mean():.2f} Hz)")
    if len(intervals):
        low = max(intervals.min(), reader.dt)
        b.hist(intervals, bins=np.geomspace(low, max(intervals.max(), low * 1.01), 40), color="C1")
        b.set_xscale("log")
    b.set(xlabel="inter-spike interval (ms)", ylabel="intervals",
          title=f"ISIs ({len(intervals)})")
    if len(cvs):
        c.hist(cvs, bins=30, color="C2")
    c.set(xlabel="CV of ISIs", ylabel="neurons",
          title=f"CV (median {np.median(cvs):.2f})" if len(cvs) else "CV (too few spikes)")
    fig.suptitle(f"{name}: {window.label()}")
    return save(fig, out)
