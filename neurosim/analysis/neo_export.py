"""Export a recorded population's spikes as Neo spike trains (for Elephant, Neo IO, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neurosim.analysis.recorded_spikes import recorded_spikes
from neurosim.analysis.spike_statistics import spike_trains
from neurosim.log_reader import LogReader

if TYPE_CHECKING:
    import neo


def to_neo(reader: LogReader, population: str, batch: int = 0, t_start_ms: float | None = None,
           t_stop_ms: float | None = None) -> list["neo.SpikeTrain"]:
    """One ``neo.SpikeTrain`` per neuron of a recorded population, for one batch row.

    A spike in step ``t`` is at ``t * dt`` ms, the time :meth:`LogReader.spike_times`
    gives; the trains carry these times in ms (``quantities`` units) with the
    window ``[t_start, t_stop]`` that was observed, so silent neurons come back as
    empty trains rather than missing ones.

    Parameters
    ----------
    reader : LogReader
        The log (complete or cut short).
    population : str
        The spike record, i.e. the name under ``spikes/`` in the log (a spike
        monitor's name, by default its population's).
    batch : int
        Batch row (sample) to export.
    t_start_ms, t_stop_ms : float, optional
        Keep the spikes in ``[t_start_ms, t_stop_ms)``; the defaults are the step
        recording began (``start_step * dt``, usually 0) and the simulated
        duration (``steps * dt``).

    Returns
    -------
    list of neo.SpikeTrain
        ``trains[i]`` is neuron ``i``, named ``"<population>[i]"`` and annotated
        with ``population``, ``neuron`` and ``batch``.

    Raises
    ------
    ImportError
        If Neo is not installed.
    KeyError
        If the log has no spike record ``population``.
    ValueError
        For a batch row outside the run or an empty window.

    Examples
    --------
    >>> trains = to_neo(ns.LogReader("run.h5"), "exc")          # doctest: +SKIP
    >>> import elephant                                           # doctest: +SKIP
    >>> elephant.statistics.mean_firing_rate(trains[0]).rescale("Hz")  # doctest: +SKIP
    """
    neo = _import_neo()
    rec = recorded_spikes(reader, population)
    row = rec.check_row(batch)
    start = rec.start_step * rec.dt_ms if t_start_ms is None else float(t_start_ms)
    stop = rec.stop_step * rec.dt_ms if t_stop_ms is None else float(t_stop_ms)
    if not stop > start:
        raise ValueError(f"to_neo: t_stop_ms ({stop}) must be greater than t_start_ms ({start})")
    times = rec.steps * rec.dt_ms
    keep = (rec.rows == row) & (times >= start) & (times < stop)
    trains = spike_trains(times[keep], rec.neurons[keep], rec.size)
    return [neo.SpikeTrain(t, units="ms", t_start=start, t_stop=stop,
                           name=f"{rec.population}[{i}]", population=rec.population,
                           neuron=i, batch=row)
            for i, t in enumerate(trains)]


def _import_neo() -> Any:
    try:
        import neo
    except ImportError as exc:
        raise ImportError("to_neo needs the Neo package: "
                          'pip install -c constraints.txt -e ".[neo]"') from exc
    return neo
