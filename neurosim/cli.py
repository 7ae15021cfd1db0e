"""The ``neurosim`` command line.

``neurosim inspect LOG [LOG ...] [--json] [--population P] [--from MS] [--to MS] [--batch B]``
summarises logs; ``neurosim plot LOG raster|rates|isi|weights|state|learning [...] --out FILE.png``
draws one; ``neurosim export LOG --nwb OUT.nwb`` converts its spikes to NWB. Errors
are one line on stderr naming the option to change, and exit status 1 (2 for a
malformed command line). A damaged log that could be partly recovered is used, with
a one-line warning on stderr saying how much was recovered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

from neurosim import __version__
from neurosim import cli_args as flags
from neurosim.cli_args import FlagError
from neurosim.log_reader import LogError, LogReader
from neurosim.log_open import open_hdf5, superblock
from neurosim.recording import training_log


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable form of :meth:`LogReader.summary`."""
    status = "completed" if s["completed"] else "INCOMPLETE (the run did not finish; data up to the last flush)"
    if s.get("recovered"):
        status += f"; DAMAGED: {s['recovered']}"
    lines = [
        f"log:        {s['file']}",
        f"status:     {status}",
        f"neurosim:   {s['neurosim_version']}   backend: {s['backend']} on {s['device']}   seed: {s['seed']}",
        f"time:       {s['duration_ms']:.10g} ms simulated ({s['steps']} steps of {s['dt_ms']:g} ms), "
        f"batch {s['batch']}",
        f"started:    {s['started_at']}   ended: {s['ended_at'] or '-'}",
        "populations:",
    ]
    width = max([len(n) for n in s["populations"]] + [4])
    for name, p in s["populations"].items():
        if "spikes" in p:
            rate = "-" if p["rate_hz"] is None else f"{p['rate_hz']:.2f} Hz"
            begin, end = p["window_ms"]
            rows = "all rows" if s.get("batch_selected") is None else f"row {s['batch_selected']}"
            rec = f"{p['spikes']} spikes, mean rate {rate} ({begin:.10g}-{end:.10g} ms, {rows})"
        else:
            rec = "spikes not recorded"
        lines.append(f"  {name:<{width}}  {p['size']!s:>8} {p['model'] or '':<16} {rec}")
    if s["state_variables"]:
        lines.append("recorded variables:")
        for mon, variables in s["state_variables"].items():
            lines.append(f"  {mon}: {', '.join(variables)}")
    if s["weights"]:
        lines.append(f"weight snapshots: {', '.join(s['weights'])}")
    return "\n".join(lines)


def _open(path: str, args: argparse.Namespace) -> LogReader:
    """The log; a damaged one's recovery note is kept for the one line on stderr."""
    reader = LogReader(path)
    args.damage = None if reader.recovery is None else f"{path}: {reader.recovery.note()}"
    return reader


def _warn_if_damaged(args: argparse.Namespace) -> None:
    if getattr(args, "damage", None):  # usable, but say that it is not the whole log
        print(f"neurosim {args.command}: warning: {args.damage}", file=sys.stderr)


def _training_summary(path: str) -> dict[str, Any] | None:
    """The summary of a training log (``neurosim-training-log``), or None for any other
    file: a damaged one, a run log or not HDF5 at all is :class:`LogReader`'s to judge."""
    try:
        check = superblock(path)
        if check.truncated:
            return None
        with open_hdf5(path, check.swmr_write) as f:  # bounded retries in SWMR mode
            if f.attrs.get("format") != training_log.FORMAT:
                return None
            return training_log.summarize(f, path)
    except (OSError, LogError, KeyError, ValueError):
        return None


def _inspect(args: argparse.Namespace) -> int:
    summaries, failed = [], 0
    for path in args.logs:  # several logs (a shell glob): summarise each, report each failure
        summary = _training_summary(path)
        if summary is not None:  # CCL and its baselines: epochs, not steps
            summaries.append(summary)
            continue
        try:
            with _open(path, args) as reader:
                flags.check_batch(reader, args.batch)
                flags.check_window(reader, args.start, args.stop)
                flags.check_spike_population(reader, args.population, also_populations=True)
                summaries.append(reader.summary(args.population, args.start, args.stop, args.batch))
            _warn_if_damaged(args)
        except _EXPECTED as exc:
            if len(args.logs) == 1:
                raise
            _error(args, exc, path)
            failed += 1
    if args.json:
        print(json.dumps(summaries[0] if len(args.logs) == 1 else summaries, indent=2))
    else:
        print("\n\n".join(training_log.format_summary(s) if s.get("format") == training_log.FORMAT
                            else format_summary(s) for s in summaries))
    return 1 if failed else 0


def _plot(args: argparse.Namespace) -> int:
    from neurosim import plots

    log = flags.one_log(args.logs)
    out = args.out or f"{os.path.splitext(log)[0]}-{args.kind}.png"
    if not out.lower().endswith(".png"):
        raise FlagError(f"--out {out}: must name a .png file")
    flags.check_output("--out", out, log)
    window = dict(start_ms=args.start, stop_ms=args.stop, batch=args.batch)
    with _open(log, args) as reader:
        flags.check_batch(reader, args.batch)
        flags.check_window(reader, args.start, args.stop)
        if args.kind in ("raster", "rates", "isi"):
            flags.check_spike_population(reader, args.population, also_populations=False)
            extra = {"bin_ms": args.bin} if args.kind == "rates" else {}
            path = getattr(plots, args.kind)(reader, out, population=args.population, size=args.size,
                                             **window, **extra)
        elif args.kind == "learning":
            if args.population is not None:
                flags.check_spike_population(reader, args.population, also_populations=False)
            path = plots.learning(reader, out, population=args.population, size=args.size)
        elif args.kind == "weights":
            flags.check_weights(reader, args.projection, args.snapshot, args.tiles)
            path = plots.weights(reader, out, projection=args.projection, snapshot=args.snapshot,
                                 tiles=args.tiles, size=args.size)
        else:
            flags.check_state(reader, args.monitor, args.variable, args.neurons)
            path = plots.state(reader, out, monitor=args.monitor, variable=args.variable,
                               neurons=args.neurons, size=args.size, **window)
    _warn_if_damaged(args)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from neurosim.analysis.nwb_export import export_nwb

    log = flags.one_log(args.logs)
    flags.check_output("--nwb", args.nwb, log)
    if os.path.exists(args.nwb) and not args.overwrite:
        raise FlagError(f"--nwb {args.nwb}: the file exists; add --overwrite to replace it")
    with _open(log, args) as reader:
        flags.check_batch(reader, args.batch)
        flags.check_export_populations(reader, args.population)
        units = export_nwb(reader, args.nwb, populations=args.population, batch=args.batch,
                           overwrite=args.overwrite)
        note = "" if reader.completed else " (the log is INCOMPLETE: spikes up to its last flush)"
        if reader.recovery is not None:
            note += " (the log is DAMAGED: the spikes recovered from it)"
    _warn_if_damaged(args)
    print(f"{args.nwb}: {units} units{note}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a malformed command in one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _window_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=flags.time_ms, default=None, metavar="MS",
                   help="start of the time window (ms)")
    p.add_argument("--to", dest="stop", type=flags.time_ms, default=None, metavar="MS",
                   help="end of the time window (ms)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurosim", description="neurosim command-line tools")
    parser.add_argument("--version", action="version", version=f"neurosim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise runs' HDF5 logs")
    p.add_argument("logs", nargs="+", metavar="LOG", help="path of a .h5 log (several: one summary each)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (several logs: a list)")
    p.add_argument("--population", default=None, help="only this population")
    p.add_argument("--batch", type=flags.index, default=None, help="count only this batch row")
    _window_arguments(p)
    p.set_defaults(func=_inspect)

    p = sub.add_parser("plot", help="draw a log (PNG): raster, rates, isi, weights, state or learning")
    p.add_argument("logs", nargs="+", metavar="LOG", help="path of the .h5 log (one)")
    p.add_argument("kind", choices=["raster", "rates", "isi", "weights", "state", "learning"])
    p.add_argument("--out", default=None, help="PNG to write (default: LOG-KIND.png)")
    p.add_argument("--size", type=flags.size_px, default=(1000, 600),
                   help="WIDTHxHEIGHT in pixels (1000x600)")
    p.add_argument("--population", default=None, help="raster/rates/isi: one population, learning: the readout (default all; "
                   "isi: the first)")
    p.add_argument("--batch", type=flags.index, default=0, help="batch row to show (default 0)")
    p.add_argument("--bin", type=flags.positive_ms, default=None, metavar="MS", help="rates: bin width (ms)")
    p.add_argument("--projection", default=None, help="weights: which weight monitor")
    p.add_argument("--snapshot", type=int, default=-1, help="weights: snapshot index (default last)")
    p.add_argument("--tiles", type=flags.tiles, default=None, metavar="HxW",
                   help="weights: draw each postsynaptic neuron's inputs as an HxW image (e.g. 28x28)")
    p.add_argument("--monitor", default=None, help="state: which state monitor")
    p.add_argument("--variable", default=None, help="state: which variable (default v, else the "
                   "first recorded)")
    p.add_argument("--neurons", type=flags.index, nargs="+", default=None, help="state: which neurons")
    _window_arguments(p)
    p.set_defaults(func=_plot)

    p = sub.add_parser("export", help="convert a log's spikes to another format (NWB)")
    p.add_argument("logs", nargs="+", metavar="LOG", help="path of the .h5 log (one)")
    p.add_argument("--nwb", required=True, metavar="OUT.nwb", help="write an NWB file (needs pynwb)")
    p.add_argument("--population", action="append", default=None,
                   help="only this population (repeat for several)")
    p.add_argument("--batch", type=flags.index, default=None, help="only this batch row")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.nwb")
    p.set_defaults(func=_export)
    return parser


#: errors that are the input's fault: one line, no traceback
_EXPECTED = (LogError, OSError, KeyError, ValueError, ImportError)


def _error(args: argparse.Namespace, exc: BaseException, log: str | None = None) -> None:
    """One line on stderr; for a damaged log, with what was recovered from it."""
    message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    if isinstance(exc, ImportError) and "pynwb" in message:
        message = 'neurosim export --nwb needs the pynwb package: pip install -c constraints.txt -e ".[nwb]"'
    where = f"{log}: " if log and log not in message else ""
    damage = getattr(args, "damage", None)
    if damage:
        message += f" (the log is damaged: {damage})"
        args.damage = None
    print(f"neurosim {args.command}: error: {where}{message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _EXPECTED as exc:
        _error(args, exc)
        return 1
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("NEUROSIM_DEBUG"):
            raise
        print(f"neurosim {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set NEUROSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
