"""The command line's option values, checked against each other and against the log.

The library's own errors name its parameters (``batch=``, ``overwrite=True``); the
command line checks its options first, so that its messages name the flags to use.
Each check raises :class:`FlagError` with a one-line message that starts with the flag.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Sequence

from neurosim.log_open import same_file
from neurosim.log_reader import LogReader


class FlagError(ValueError):
    """A command-line option whose value cannot be used (the message names it)."""


# -- argparse types: the value alone ------------------------------------------------------
def positive_int(text: str) -> int:
    """A whole number >= 1 (the examples' counts: epochs, batch, steps, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, clipping norms)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_training_run_flags(parser: argparse.ArgumentParser, log_name: str) -> None:
    """The flags a training example shares: ``--data``, ``--device``, ``--threads``,
    ``--log`` or ``--log-file`` (default ``runs/<log_name>-<time>.h5``) and ``--no-progress``."""
    parser.add_argument("--data", default=None, help="folder with mnist/ (default $NEUROSIM_DATA, ...)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    parser.add_argument("--log", "--log-file", dest="log", default=None,
                        help=f"HDF5 log to write (default runs/{log_name}-<time>.h5; under torchrun "
                             "say --log-file, which torchrun does not take for its --log-dir)")
    parser.add_argument("--no-progress", action="store_true")


def log_path(log: str | None, prefix: str) -> str:
    """The log a training example writes: ``log`` (its folder made if missing), or a new
    ``runs/<prefix>-<time>.h5``."""
    import datetime

    if log is None:
        os.makedirs("runs", exist_ok=True)
        return datetime.datetime.now().strftime(f"runs/{prefix}-%Y%m%d-%H%M%S-%f.h5")
    if os.path.dirname(log):
        os.makedirs(os.path.dirname(log), exist_ok=True)
    return log


def training_run_error(exc: BaseException, log: str | None) -> str:
    """A training example's one-line message for ``exc``, naming the flag to change."""
    if getattr(exc, "searched", None):  # the data set is not where we looked
        return (f"mnist not found; looked in {', '.join(exc.searched)}. Pass --data DIR (the "
                "folder with mnist/, or the four IDX files) or set NEUROSIM_DATA=DIR")
    if isinstance(exc, FileExistsError):
        return f"{exc.filename or log}: the log exists; choose another --log"
    return str(exc)


def time_ms(text: str) -> float:
    """A time in ms: a finite number >= 0 (``nan``, ``inf`` and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of ms: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite time >= 0 ms, got {text!r}")
    return value


def positive_ms(text: str) -> float:
    value = time_ms(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0 ms, got {text!r}")
    return value


def index(text: str) -> int:
    """An index: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def size_px(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 1000x600 (pixels), got {text!r}") from None
    return w, h


def tiles(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 28x28, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return h, w


# -- paths ----------------------------------------------------------------------------
def one_log(logs: Sequence[str]) -> str:
    """The single log of ``plot`` and ``export`` (a shell glob may have given several)."""
    if len(logs) != 1:
        raise FlagError(f"give one log; got {len(logs)}: {', '.join(logs)}")
    return logs[0]


def check_output(flag: str, out: str, log: str) -> None:
    if same_file(out, log):
        raise FlagError(f"{flag} {out}: that is the log being read; choose another output path")
    folder = os.path.dirname(out)
    if folder and not os.path.isdir(folder):
        raise FlagError(f"{flag} {out}: directory {folder!r} does not exist")


# -- checks against the log --------------------------------------------------------------
def check_batch(reader: LogReader, batch: int | None) -> None:
    rows = int(reader.attrs.get("batch", 1))
    if batch is not None and not 0 <= batch < rows:
        raise FlagError(f"--batch {batch}: batch row {batch} does not exist: the run had {rows} "
                        f"row(s), numbered from 0")


def check_window(reader: LogReader, start: float | None, stop: float | None) -> None:
    if start is not None and stop is not None and stop <= start:
        raise FlagError(f"--to {stop:g}: empty time window: --to must be after --from ({start:g} ms)")
    if stop is not None and start is None and stop == 0:
        raise FlagError("--to 0: empty time window: --to must be after the start (0 ms)")
    end = reader.steps * reader.dt
    if start is not None and start >= end:
        raise FlagError(f"--from {start:g}: empty time window: the log ends at {end:g} ms")


def check_spike_population(reader: LogReader, population: str | None, also_populations: bool) -> None:
    """``--population``: a spike record (or, for inspect, also any population of the network)."""
    if population is None:
        return
    records = reader.spike_populations()
    known = set(records)
    if also_populations:
        known |= {p["name"] for p in reader.network.get("populations", [])}
    if population not in known:
        listed = sorted(known) if also_populations else records
        what = "no population" if also_populations else "no spikes recorded for population"
        raise FlagError(f"--population {population}: {what} {population!r} in this log; "
                        f"{'populations' if also_populations else 'recorded'}: "
                        f"{', '.join(listed) or 'none'}")


def check_export_populations(reader: LogReader, populations: list[str] | None) -> None:
    if not populations:
        return
    seen: set[str] = set()
    for name in populations:
        if name in seen:
            raise FlagError(f"--population {name}: given twice")
        seen.add(name)
        check_spike_population(reader, name, also_populations=False)


def check_weights(reader: LogReader, projection: str | None, snapshot: int,
                  tile_shape: tuple[int, int] | None) -> None:
    from neurosim.plots.weights import RESULTS_WEIGHTS

    monitors = reader.weight_monitors()
    if projection is not None and projection not in monitors:
        raise FlagError(f"--projection {projection}: no weight snapshots of {projection!r}; "
                        f"recorded: {', '.join(monitors) or 'none'}")
    name = projection or (monitors[0] if monitors else None)
    if name is None:
        if tile_shape and reader.has(RESULTS_WEIGHTS):
            _check_tiles(tile_shape, reader.array(RESULTS_WEIGHTS).shape[0])
        return  # the plot says that the log has no weight snapshots
    count = min(reader.length(f"weights/{name}/step"), reader.length(f"weights/{name}/values"))
    if count and not -count <= snapshot < count:
        raise FlagError(f"--snapshot {snapshot}: {name!r} has {count} snapshots "
                        f"(0 to {count - 1}, or -1 for the last)")
    if tile_shape:
        n_pre = reader.projection_sizes(name)[0]
        if n_pre is not None:
            _check_tiles(tile_shape, n_pre)


def _check_tiles(tile_shape: tuple[int, int], n_pre: int) -> None:
    h, w = tile_shape
    if h * w != n_pre:
        raise FlagError(f"--tiles {h}x{w}: tiles {h}x{w} need {h * w} presynaptic neurons, the "
                        f"projection has {n_pre}")


def check_state(reader: LogReader, monitor: str | None, variable: str | None,
                neurons: list[int] | None) -> None:
    monitors = reader.state_monitors()
    if not monitors:
        return  # the plot says that the log has no sampled state
    if monitor is not None and monitor not in monitors:
        raise FlagError(f"--monitor {monitor}: no state monitor {monitor!r}; recorded: "
                        f"{', '.join(monitors)}")
    name = monitor or monitors[0]
    variables = reader.state_variables(name)
    if variable is not None and variable not in variables:
        raise FlagError(f"--variable {variable}: monitor {name!r} did not record {variable!r}; "
                        f"it has {', '.join(variables)}")
    if neurons:
        recorded = {int(n) for n in reader.state_neurons(name)}
        missing = [n for n in neurons if n not in recorded]
        if missing:
            raise FlagError(f"--neurons {' '.join(map(str, missing))}: neurons {missing} were not "
                            f"recorded by {name!r} (recorded: {sorted(recorded)[:20]})")



def missing_log_file(script: str, log: str | None) -> bool:
    """Under torchrun every process must name the same log file: True, after a one-line
    error naming the flag, when ``log`` is not given."""
    if log is not None:
        return False
    print(f"{script}: error: --log-file is required under torchrun (every process must name the "
          "same file)", file=sys.stderr)
    return True
