"""Export a log's spikes to an NWB file (Neurodata Without Borders), as a Units table."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from neurosim.analysis.recorded_spikes import RecordedSpikes, recorded_spikes
from neurosim.log_open import same_file
from neurosim.log_reader import LogError, LogReader


def export_nwb(reader: LogReader, path: str | os.PathLike[str],
               populations: Sequence[str] | None = None, batch: int | None = None,
               overwrite: bool = False) -> int:
    """Write the recorded spikes of a log to an NWB file; return the number of units.

    Every neuron of every exported population becomes one row ("unit") of the
    file's Units table, per batch row, in the order population, batch row,
    neuron. Silent neurons are kept, with no spike times, so that unit ``k``
    always means the same neuron and a rate of 0 can be told from a neuron not
    recorded. Columns:

    ========================  ==================================================
    ``spike_times``           seconds, float64: a spike in step ``t`` is at
                              ``t * dt_ms / 1000`` (time 0 is the start of the
                              first run, ``session_start_time``)
    ``obs_intervals``         the recorded span ``[start_step, steps] * dt / 1000``
    ``population``            population name (str)
    ``neuron``                index within the population (int)
    ``batch``                 batch row, i.e. sample (int)
    ========================  ==================================================

    The file's ``session_start_time`` is the log's ``started_at`` (UTC when it
    carries no zone); its ``notes`` give the neurosim version, seed, dt, backend,
    batch, steps and whether the run completed. A log cut short exports the
    spikes it holds, and the notes say it is incomplete.

    Parameters
    ----------
    reader : LogReader
        The log to export.
    path : str or PathLike
        The NWB file to write (by convention ``*.nwb``). It is written next to
        ``path`` first and renamed when complete, so a failed export leaves no
        half-written file and does not destroy the one it would replace.
    populations : sequence of str, optional
        Spike records to export, in this order: names under ``spikes/`` in the
        log (spike monitors' names, by default their populations'). All by
        default, in the order the network created their populations.
    batch : int, optional
        Export only this batch row; all rows by default.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    int
        Units written: the sum over the populations of ``size * rows``.

    Raises
    ------
    ImportError
        If pynwb is not installed.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    KeyError
        If a population has no spike record in the log.
    ValueError
        If the log records no spikes, ``populations`` repeats a name,
        ``batch`` is not a row of the run, or ``path`` is the log itself
        (a symlink or hard link to it included).

    Examples
    --------
    >>> export_nwb(ns.LogReader("run.h5"), "run.nwb")            # doctest: +SKIP
    1000
    >>> from pynwb import NWBHDF5IO                               # doctest: +SKIP
    >>> with NWBHDF5IO("run.nwb", "r") as io:                     # doctest: +SKIP
    ...     units = io.read().units.to_dataframe()
    """
    pynwb = _import_pynwb()
    from hdmf.common import ElementIdentifiers, VectorData, VectorIndex

    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    partial = f"{root}.partial{ext or '.nwb'}"  # pynwb warns about names not ending in .nwb
    for target in (path, partial):  # both are written to; neither may be the log itself
        if reader.path != "memory" and os.path.exists(reader.path) and same_file(target, reader.path):
            raise ValueError(f"{target!r} is the log being exported ({reader.path!r}); "
                             "write the NWB file to another path")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it")
    records = _records(reader, populations)
    row = None if batch is None else records[0].check_row(batch)

    # Build the columns whole (a row-by-row add_unit is slow for large populations).
    # Ragged columns are flat data plus an index holding each unit's end offset.
    times, time_ends, pop, neuron, row_col, intervals = [], [], [], [], [], []
    offset = 0
    for rec in records:
        unit_rows = np.arange(rec.batch) if row is None else np.array([row])
        keep = slice(None) if row is None else rec.rows == row
        # Unit key within the record: position of the event's (row, neuron) in unit order.
        row_pos = np.zeros(rec.batch, dtype=np.int64)
        row_pos[unit_rows] = np.arange(unit_rows.size)
        key = row_pos[rec.rows[keep]] * rec.size + rec.neurons[keep]
        order = np.argsort(key, kind="stable")  # stable: times stay ascending within a unit
        times.append(rec.steps[keep][order] * rec.dt_ms / 1000.0)
        counts = np.bincount(key, minlength=unit_rows.size * rec.size)
        time_ends.append(offset + np.cumsum(counts))
        offset += int(counts.sum())
        n = unit_rows.size * rec.size
        pop.extend([rec.population] * n)
        neuron.append(np.tile(np.arange(rec.size, dtype=np.int64), unit_rows.size))
        row_col.append(np.repeat(unit_rows.astype(np.int64), rec.size))
        span = [rec.start_step * rec.dt_ms / 1000.0, rec.stop_step * rec.dt_ms / 1000.0]
        intervals.append(np.tile(span, (n, 1)))
    n_units = len(pop)

    spike_times = VectorData(name="spike_times", data=np.concatenate(times).astype(np.float64),
                             description="the spike times for each unit in seconds")
    obs = VectorData(name="obs_intervals", data=np.concatenate(intervals),
                     description="the observation intervals for each unit")
    columns = [
        spike_times,
        VectorIndex(name="spike_times_index", data=np.concatenate(time_ends), target=spike_times),
        obs,
        VectorIndex(name="obs_intervals_index", data=np.arange(1, n_units + 1), target=obs),
        VectorData(name="population", data=pop, description="neurosim population name"),
        VectorData(name="neuron", data=np.concatenate(neuron),
                   description="neuron index within the population"),
        VectorData(name="batch", data=np.concatenate(row_col),
                   description="batch row (sample) of the simulation"),
    ]
    units = pynwb.misc.Units(
        name="units", id=ElementIdentifiers(name="id", data=np.arange(n_units)), columns=columns,
        description="simulated neurons: one unit per (population, batch row, neuron)")

    version = str(reader.attrs.get("neurosim_version", "unknown"))
    nwbfile = pynwb.NWBFile(
        session_description=f"neurosim run: spikes of {', '.join(r.population for r in records)}",
        identifier=str(uuid.uuid4()),
        session_start_time=_start_time(reader),
        notes=_notes(reader, records[0]),
        was_generated_by=[("neurosim", version)],
    )
    nwbfile.units = units

    try:
        with pynwb.NWBHDF5IO(partial, "w") as io:
            io.write(nwbfile)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return n_units


def _records(reader: LogReader, populations: Sequence[str] | None) -> list[RecordedSpikes]:
    if isinstance(populations, str):
        populations = [populations]
    names = list(reader.spike_populations() if populations is None else populations)
    if not names:
        raise ValueError(f"{reader.path}: the log records no spikes; nothing to export")
    if len(set(names)) != len(names):
        raise ValueError(f"export_nwb: populations repeats a name: {names}")
    records = [recorded_spikes(reader, name) for name in names]
    if populations is None:  # the log lists records by name; the network's order reads better
        order = {p["name"]: k for k, p in enumerate(reader.network.get("populations", []))}
        records.sort(key=lambda r: order[r.population])
    return records


def _start_time(reader: LogReader) -> datetime:
    started = reader.attrs.get("started_at")
    if not started:
        raise LogError(f"{reader.path}: the log has no started_at, which NWB needs as "
                       "session_start_time")
    when = datetime.fromisoformat(str(started))
    # neurosim writes UTC; a zone-less stamp from elsewhere is taken as UTC too.
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _notes(reader: LogReader, rec: RecordedSpikes) -> str:
    a = reader.attrs
    lines = [
        f"Exported from the neurosim log {reader.path}.",
        f"neurosim version: {a.get('neurosim_version', 'unknown')}",
        f"seed: {a.get('seed')}",
        f"dt: {rec.dt_ms} ms",
        f"backend: {a.get('backend')} (device {a.get('device')}, {a.get('dtype')})",
        f"batch: {rec.batch}",
        f"steps: {reader.steps} ({reader.steps * rec.dt_ms} ms)",
        f"completed: {reader.completed}",
    ]
    if not reader.completed:
        lines.append(f"INCOMPLETE: the run was cut short (killed, crashed or interrupted); this "
                     f"file holds the spikes of the {reader.steps} steps the log had written.")
    return "\n".join(lines)


def _import_pynwb() -> Any:
    try:
        import pynwb
        import pynwb.misc  # noqa: F401  (the Units table lives here)
    except ImportError as exc:
        raise ImportError("export_nwb needs the pynwb package: "
                          'pip install -c constraints.txt -e ".[nwb]"') from exc
    return pynwb
