"""Checks on the values read from a log, before anything trusts them.

A damaged or hand-edited log can hold any number: a time step of 0 turns every
window into step 0, and a neuron index of 10**9 makes a per-neuron histogram
allocate gigabytes. Every check raises :class:`LogError` with one line that names
the item and the value, so that the command line can print it as is.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


class LogError(Exception):
    """The file is not a neurosim log, or it is damaged or of an unknown version."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_attrs(attrs: dict[str, Any], path: str) -> None:
    """The root attributes that every reading depends on: dt_ms, batch, steps."""
    dt = attrs.get("dt_ms")
    if not isinstance(dt, (int, float, np.number)) or isinstance(dt, bool) or not (
            math.isfinite(dt) and dt > 0):
        raise LogError(f"{path}: its time step dt_ms is {dt!r}, not a positive number of ms: "
                       "the log is damaged")
    batch = attrs.get("batch", 1)
    if not _is_int(batch) or batch < 1:
        raise LogError(f"{path}: its batch size is {batch!r}, not a positive integer: the log is damaged")
    steps = attrs.get("steps", 0)
    if not _is_int(steps) or steps < 0:
        raise LogError(f"{path}: its steps attribute is {steps!r}, not a non-negative integer: "
                       "the log is damaged")


def parse_network(text: Any, path: str) -> dict[str, Any]:
    """The network description (``network_json``), with its populations checked."""
    try:
        net = json.loads(text) if text is not None else {}
    except (TypeError, ValueError):
        raise LogError(f"{path}: its network description (network_json) is not valid JSON: "
                       "the log is damaged") from None
    if not isinstance(net, dict):
        raise LogError(f"{path}: its network description (network_json) is not a JSON object")
    pops = net.get("populations", [])
    if not isinstance(pops, list):
        raise LogError(f"{path}: network_json lists its populations as {type(pops).__name__}")
    seen: set[str] = set()
    for p in pops:
        name = p.get("name") if isinstance(p, dict) else None
        size = p.get("size") if isinstance(p, dict) else None
        if not isinstance(name, str) or name in seen:
            raise LogError(f"{path}: network_json has a population without a unique name: {p!r}")
        if not _is_int(size) or size < 1:
            raise LogError(f"{path}: network_json gives population {name!r} the size {size!r}, "
                           "not a positive integer: the log is damaged")
        seen.add(name)
    return net


def check_indices(values: np.ndarray, bound: int, what: str, meaning: str, first: int = 0) -> None:
    """Every value in ``[0, bound)``; else name the first bad one (its index + ``first``).

    ``what`` names the dataset, ``meaning`` the bound (e.g. "population 'exc' has 40 neurons").
    """
    if values.size == 0:
        return
    bad = (values < 0) | (values >= bound)
    if bad.any():
        k = int(np.argmax(bad))
        raise LogError(f"{what}[{first + k}] is {values[k]}, but {meaning}: the log is damaged")


def check_events(path: str, record: str, steps: np.ndarray, neurons: np.ndarray,
                 rows: np.ndarray | None, size: int, batch: int, population: str,
                 first: int, steps_sorted: bool) -> None:
    """Spike events ``first, first + 1, ...`` of ``record``: indices within the run's sizes."""
    base = f"{path}: spikes/{record}"
    check_indices(neurons, size, f"{base}/neuron", f"population {population!r} has {size} neurons",
                  first)
    if rows is not None:
        check_indices(rows, batch, f"{base}/batch", f"the run had {batch} batch row(s)", first)
    if steps.size:
        if int(steps.min()) < 0:
            k = int(np.argmax(steps < 0))
            raise LogError(f"{base}/step[{first + k}] is {steps[k]}, a negative step: the log is damaged")
        if steps_sorted and steps.size > 1 and (np.diff(steps) < 0).any():
            k = int(np.argmax(np.diff(steps) < 0)) + 1
            raise LogError(f"{base}/step[{first + k}] is {steps[k]}, before the event preceding it, "
                           "but the log says its steps are sorted: the log is damaged")


def check_csr(path: str, monitor: str, indptr: np.ndarray, indices: np.ndarray, n_pre: int,
              n_post: int, synapses: int) -> None:
    """A sparse weight snapshot's structure: n_pre rows, targets within n_post."""
    base = f"{path}: weights/{monitor}"
    if len(indptr) != n_pre + 1 or (len(indptr) and (indptr[0] != 0 or indptr[-1] != synapses)) or (
            np.diff(indptr) < 0).any():
        raise LogError(f"{base}/indptr does not describe {n_pre} presynaptic neurons with "
                       f"{synapses} synapses: the log is damaged")
    if len(indices) != synapses:
        raise LogError(f"{base}/indices has {len(indices)} entries for {synapses} synapses: "
                       "the log is damaged")
    check_indices(indices, n_post, f"{base}/indices", f"the postsynaptic population has {n_post} neurons")
