"""The spikes of one recorded population, with what an export needs to place them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.log_reader import LogError, LogReader


@dataclass(frozen=True)
class RecordedSpikes:
    """Spike events of one spike record of a log and the span they cover.

    A spike in step ``t`` happened at ``t * dt_ms`` ms. Recording covered steps
    ``[start_step, stop_step)``: a neuron without events in that span was silent,
    not unobserved.
    """

    record: str          # name under ``spikes/`` in the log (the monitor's name)
    population: str      # the population recorded; neuron indices are within it
    size: int            # neurons in the population
    batch: int           # batch rows simulated
    dt_ms: float
    start_step: int
    stop_step: int
    steps: np.ndarray    # int64, (events,), non-decreasing
    neurons: np.ndarray  # int32, (events,)
    rows: np.ndarray     # int32, (events,)

    def check_row(self, row: int) -> int:
        """``row`` as an int, if it is a batch row of the run."""
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < self.batch:
            raise ValueError(f"batch row must be an integer in [0, {self.batch}), got {row!r}")
        return int(row)


def recorded_spikes(reader: LogReader, record: str) -> RecordedSpikes:
    """Read the spike record ``record`` of a log with its population's size and span."""
    steps, neurons, rows = reader.spikes(record)  # KeyError listing the records if absent
    attrs = reader.dataset_attrs(f"spikes/{record}/step")
    population = str(attrs.get("population", record))
    sizes = {p["name"]: int(p["size"]) for p in reader.network.get("populations", [])}
    if population not in sizes:
        raise LogError(f"{reader.path}: spikes/{record} records population {population!r}, "
                       "which the log's network description does not list")
    steps = np.asarray(steps, dtype=np.int64)
    # A cut-short log reports the steps it flushed (a truncated file, those it recovered);
    # never let the span end before a spike.
    stop_step = max(reader.recording_stop_step(record), int(steps.max()) + 1 if steps.size else 0)
    return RecordedSpikes(record=record, population=population, size=sizes[population],
                          batch=int(reader.attrs.get("batch", 1)), dt_ms=reader.dt,
                          start_step=int(attrs.get("start_step", 0)), stop_step=stop_step,
                          steps=steps, neurons=np.asarray(neurons),
                          rows=np.asarray(rows))
