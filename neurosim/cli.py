"""The ``neurosim`` command line: ``neurosim inspect LOG [--json]``."""

from __future__ import annotations

import argparse
import json
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
        f"time:       {s['duration_ms']:g} ms simulated ({s['steps']} steps of {s['dt_ms']:g} ms), "
        f"batch {s['batch']}",
        f"started:    {s['started_at']}   ended: {s['ended_at'] or '-'}",
        "populations:",
    ]
    width = max([len(n) for n in s["populations"]] + [4])
    for name, p in s["populations"].items():
        if "spikes" in p:
            rate = "-" if p["rate_hz"] is None else f"{p['rate_hz']:.2f} Hz"
            rec = f"{p['spikes']} spikes, mean rate {rate}"
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
        summary = reader.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosim", description="neurosim command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise a run's HDF5 log")
    p.add_argument("log", help="path of the .h5 log")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (LogError, OSError, KeyError, ValueError) as exc:
        print(f"neurosim {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
