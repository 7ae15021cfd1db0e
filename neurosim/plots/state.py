"""Sampled state traces (membrane potentials, currents, ...) from a state monitor."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from neurosim.log_reader import LogReader, check_window
from neurosim.plots.figure import DEFAULT_SIZE, new_figure, save, time_axis

#: the variable drawn when none is asked for, if the monitor recorded it
DEFAULT_VARIABLE = "v"


def state(reader: LogReader, out: str | os.PathLike[str], *, monitor: str | None = None,
          variable: str | None = None, neurons: Sequence[int] | None = None,
          start_ms: float | None = None, stop_ms: float | None = None, batch: int = 0,
          size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Traces of one sampled variable for (up to 10 of) the recorded neurons; a sample
    of step t is the state at the end of step t, time (t + 1) * dt.

    By default the first state monitor and its membrane potential ``v``, or, if it
    did not record ``v``, the first variable it was given.
    """
    check_window(start_ms, stop_ms)
    monitors = reader.state_monitors()
    if not monitors:
        raise ValueError(f"{reader.path}: the log has no sampled state (record it with "
                         "net.state_monitor(population, variables, ...))")
    monitor = monitor or monitors[0]
    if monitor not in monitors:
        raise KeyError(f"no state monitor {monitor!r}; recorded: {', '.join(monitors)}")
    variables = reader.state_variables(monitor)
    if variable is None:
        variable = DEFAULT_VARIABLE if DEFAULT_VARIABLE in variables else variables[0]
    if variable not in variables:
        raise KeyError(f"monitor {monitor!r} did not record {variable!r}; it has {', '.join(variables)}")
    samples = reader.state_samples(monitor, variable)  # fewer in a truncated file
    steps = reader.read_rows(f"state/{monitor}/step", 0, samples)
    times = (steps + 1) * reader.dt
    lo = 0 if start_ms is None else int(np.searchsorted(times, start_ms))
    hi = len(times) if stop_ms is None else int(np.searchsorted(times, stop_ms))
    if hi <= lo:
        raise ValueError(f"no samples of {monitor}/{variable} between "
                         f"{start_ms if start_ms is not None else 0:g} and "
                         f"{stop_ms if stop_ms is not None else times[-1] if len(times) else 0:g} ms")
    values = reader.read_rows(f"state/{monitor}/{variable}", lo, hi)
    if not 0 <= batch < values.shape[1]:
        raise ValueError(f"batch row {batch} does not exist: the run had {values.shape[1]} row(s)")
    recorded = reader.state_neurons(monitor)
    if neurons is None:
        columns = list(range(min(10, len(recorded))))
    else:
        where = {int(n): k for k, n in enumerate(recorded)}
        missing = [n for n in neurons if n not in where]
        if missing:
            raise ValueError(f"neurons {missing} were not recorded by {monitor!r} "
                             f"(recorded: {recorded.tolist()[:20]})")
        columns = [where[int(n)] for n in neurons]
    fig, axes = new_figure(size)
    ax = axes[0, 0]
    unit = reader.dataset_attrs(f"state/{monitor}/{variable}").get("unit", "")
    scale = time_axis(ax, float(times[lo]), float(times[hi - 1]))
    for k in columns:
        ax.plot(times[lo:hi] * scale, values[:, batch, k], lw=0.8, label=f"neuron {recorded[k]}")
    ax.set(ylabel=f"{variable} ({unit})" if unit else variable,
           title=f"{monitor}: {variable}, batch row {batch}")
    if len(columns) <= 10:
        ax.legend(loc="upper right", fontsize="small", ncols=2)
    return save(fig, out)
