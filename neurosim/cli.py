"""The ``neurosim`` command line.

``neurosim inspect LOG [--json] [--population P] [--from MS] [--to MS] [--batch B]``
summarises a log; ``neurosim plot LOG raster|rates|isi|weights|state [...] --out FILE.png``
draws it; ``neurosim export LOG --nwb OUT.nwb`` converts its spikes to NWB. Errors
are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from neurosim.log_reader import LogError, LogReader


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable form of :meth:`LogReader.summary`."""
    status = "completed" if s["completed"] else "INCOMPLETE (the run did not finish; data up to the last flush)"
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


def _inspect(args: argparse.Namespace) -> int:
    with LogReader(args.log) as reader:
        summary = reader.summary(args.population, args.start, args.stop, args.batch)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1000x600 (pixels), got {text!r}") from None
    return w, h


def _plot(args: argparse.Namespace) -> int:
    from neurosim import plots
    from neurosim.plots.weights import parse_tiles

    out = args.out or f"{os.path.splitext(args.log)[0]}-{args.kind}.png"
    if not out.lower().endswith(".png"):
        raise ValueError(f"--out must name a .png file, got {out!r}")
    window = dict(start_ms=args.start, stop_ms=args.stop, batch=args.batch)
    with LogReader(args.log) as reader:
        if args.kind in ("raster", "rates", "isi"):
            extra = {"bin_ms": args.bin} if args.kind == "rates" else {}
            path = getattr(plots, args.kind)(reader, out, population=args.population, size=args.size,
                                             **window, **extra)
        elif args.kind == "weights":
            path = plots.weights(reader, out, projection=args.projection, snapshot=args.snapshot,
                                 tiles=parse_tiles(args.tiles) if args.tiles else None, size=args.size)
        else:
            path = plots.state(reader, out, monitor=args.monitor, variable=args.variable,
                               neurons=args.neurons, size=args.size, **window)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from neurosim.analysis.nwb_export import export_nwb

    with LogReader(args.log) as reader:
        units = export_nwb(reader, args.nwb, populations=args.population, batch=args.batch,
                           overwrite=args.overwrite)
        note = "" if reader.completed else " (the log is INCOMPLETE: spikes up to its last flush)"
    print(f"{args.nwb}: {units} units{note}")
    return 0


def _window_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=float, default=None, metavar="MS",
                   help="start of the time window (ms)")
    p.add_argument("--to", dest="stop", type=float, default=None, metavar="MS",
                   help="end of the time window (ms)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosim", description="neurosim command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise a run's HDF5 log")
    p.add_argument("log", help="path of the .h5 log")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--population", default=None, help="only this population")
    p.add_argument("--batch", type=int, default=None, help="count only this batch row")
    _window_arguments(p)
    p.set_defaults(func=_inspect)

    p = sub.add_parser("plot", help="draw a log (PNG): raster, rates, isi, weights or state")
    p.add_argument("log", help="path of the .h5 log")
    p.add_argument("kind", choices=["raster", "rates", "isi", "weights", "state"])
    p.add_argument("--out", default=None, help="PNG to write (default: LOG-KIND.png)")
    p.add_argument("--size", type=_size, default=(1000, 600), help="WIDTHxHEIGHT in pixels (1000x600)")
    p.add_argument("--population", default=None, help="raster/rates/isi: one population (default all; "
                   "isi: the first)")
    p.add_argument("--batch", type=int, default=0, help="batch row to show (default 0)")
    p.add_argument("--bin", type=float, default=None, metavar="MS", help="rates: bin width (ms)")
    p.add_argument("--projection", default=None, help="weights: which weight monitor")
    p.add_argument("--snapshot", type=int, default=-1, help="weights: snapshot index (default last)")
    p.add_argument("--tiles", default=None, metavar="HxW",
                   help="weights: draw each postsynaptic neuron's inputs as an HxW image (e.g. 28x28)")
    p.add_argument("--monitor", default=None, help="state: which state monitor")
    p.add_argument("--variable", default=None, help="state: which variable (default the first)")
    p.add_argument("--neurons", type=int, nargs="+", default=None, help="state: which neurons")
    _window_arguments(p)
    p.set_defaults(func=_plot)

    p = sub.add_parser("export", help="convert a log's spikes to another format (NWB)")
    p.add_argument("log", help="path of the .h5 log")
    p.add_argument("--nwb", required=True, metavar="OUT.nwb", help="write an NWB file (needs pynwb)")
    p.add_argument("--population", action="append", default=None,
                   help="only this population (repeat for several)")
    p.add_argument("--batch", type=int, default=None, help="only this batch row")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.nwb")
    p.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (LogError, OSError, KeyError, ValueError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"neurosim {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
