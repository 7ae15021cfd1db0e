"""What a truncated log still holds: for each dataset, the rows of its complete chunks.

A log is written chunk by chunk, so a copy cut short (a full disk, an interrupted
transfer) usually keeps its metadata and a prefix of each dataset's chunks. Reading
past the end of the file, HDF5 gets zeros: a compressed chunk then fails to decode,
but an uncompressed one would silently read as zeros. So a chunk counts as recovered
only if it lies entirely inside the file (its address and size from the chunk index),
which is known without decoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import h5py
import numpy as np

#: the errors h5py raises on damaged metadata or data (each of these occurs)
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError)


@dataclass
class Recovery:
    """The survey of a damaged log.

    ``rows`` maps each dataset to (rows recovered, rows its header declares);
    ``ends`` maps spike records cut short (``spikes/<record>``) to the step up to
    which they are complete; ``lost`` lists objects and attributes HDF5 could not read.
    """

    reason: str
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)

    def usable(self, key: str) -> int | None:
        return self.rows[key][0] if key in self.rows else None

    def note(self) -> str:
        """One line: why the file is damaged and how much was recovered."""
        parts = []
        for label, group, counted in (("spikes", "spikes", ("step",)),
                                      ("state samples", "state", None),  # each variable
                                      ("weight snapshots", "weights", ("values",))):
            got = total = 0
            for key, (n, m) in self.rows.items():
                column = key.split("/")[-1]
                if key.startswith(group + "/") and key.count("/") == 2 and (
                        column in counted if counted else column not in ("step", "neurons")):
                    got, total = got + n, total + m
            if total:
                parts.append(f"{got:,} of {total:,} {label}")
        text = f"{self.reason}; recovered {', '.join(parts) or 'no recorded data'}"
        if self.lost:
            names = [f"attribute {k[1:]}" if k.startswith("@") else k for k in self.lost]
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            text += f"; unreadable: {shown}"
        return text


def read_attrs(obj: h5py.HLObject, lost: list[str], prefix: str = "") -> dict[str, Any]:
    """The attributes of ``obj`` that can be read, one by one; the others go to ``lost``."""
    try:
        names = list(obj.attrs.keys())
    except H5_ERRORS:
        lost.append(f"{prefix}attributes")
        return {}
    out: dict[str, Any] = {}
    for name in names:
        try:
            value = obj.attrs[name]
        except H5_ERRORS:
            lost.append(f"{prefix}@{name}")
            continue
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def survey(f: h5py.File, file_size: int, reason: str, steps_sorted: bool = True) -> Recovery:
    """Walk a damaged file and find the recoverable rows of every dataset."""
    rec = Recovery(reason=reason)
    _walk(f, "", file_size, rec)
    _trim_spike_records(f, rec, steps_sorted)
    _trim_to_step_columns(rec)
    return rec


def _walk(group: h5py.Group, prefix: str, file_size: int, rec: Recovery) -> None:
    try:
        names = sorted(group.keys())
    except H5_ERRORS:
        rec.lost.append(prefix.rstrip("/") or "/")
        return
    for name in names:
        path = prefix + name
        try:
            obj = group[name]
        except H5_ERRORS:
            rec.lost.append(path)
            continue
        if isinstance(obj, h5py.Group):
            _walk(obj, path + "/", file_size, rec)
        elif isinstance(obj, h5py.Dataset):
            try:
                total = 1 if obj.shape == () else int(obj.shape[0])
                rec.rows[path] = (complete_rows(obj, file_size, total), total)
            except H5_ERRORS:
                rec.lost.append(path)


def complete_rows(ds: h5py.Dataset, file_size: int, total: int) -> int:
    """Leading rows of ``ds`` whose storage lies entirely inside the file."""
    if total == 0:
        return 0
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is None:  # compact: stored in the object header, which was read
            return _probe(ds, total)
        return total if offset + ds.id.get_storage_size() <= file_size else 0
    rows_per_chunk = ds.chunks[0]
    per_block = int(np.prod([-(-n // c) for n, c in zip(ds.shape[1:], ds.chunks[1:])], dtype=np.int64))
    blocks: dict[int, list[bool]] = {}

    def note(info: Any) -> None:
        blocks.setdefault(info.chunk_offset[0] // rows_per_chunk, []).append(
            info.byte_offset + info.size <= file_size)
    try:
        _each_chunk(ds, note)
    except H5_ERRORS:  # the chunk index itself is damaged: read chunk by chunk instead
        return _probe(ds, total)
    complete = 0
    while complete in blocks and len(blocks[complete]) == per_block and all(blocks[complete]):
        complete += 1
    return min(total, complete * rows_per_chunk)


def _each_chunk(ds: h5py.Dataset, fn: Callable[[Any], None]) -> None:
    if hasattr(ds.id, "chunk_iter"):  # one pass (HDF5 >= 1.14); get_chunk_info(i) rescans
        ds.id.chunk_iter(fn)
        return
    for i in range(ds.id.get_num_chunks()):
        fn(ds.id.get_chunk_info(i))


def _probe(ds: h5py.Dataset, total: int) -> int:
    """Rows readable from the start, reading a chunk (or the whole dataset) at a time."""
    step = ds.chunks[0] if ds.chunks else total
    done = 0
    while done < total:
        try:
            ds[done:min(total, done + step)] if ds.shape else ds[()]
        except H5_ERRORS:
            break
        done = min(total, done + step)
    return done


def _trim_spike_records(f: h5py.File, rec: Recovery, steps_sorted: bool) -> None:
    """Cut each spike record to the events of its complete steps, the same in all columns."""
    records = {k.split("/")[1] for k in rec.rows if k.startswith("spikes/") and k.count("/") == 2}
    for name in sorted(records):
        keys = [f"spikes/{name}/{c}" for c in ("step", "neuron", "batch")]
        if any(k not in rec.rows for k in keys):
            for k in keys:
                if k in rec.rows:  # a record without all its columns cannot be used
                    rec.lost.append(k)
                    del rec.rows[k]
            continue
        usable = min(rec.rows[k][0] for k in keys)
        total = rec.rows[keys[0]][1]
        if usable < total:
            end = int(_start_step(f, keys[0]))
            if usable > 0:
                try:
                    column = f[keys[0]]
                    end = int(column[usable - 1])
                    if steps_sorted:  # the last step's events may go on in the lost part: drop them
                        usable = first_at_or_after(column, usable, end)
                except H5_ERRORS:
                    usable = 0
            rec.ends[f"spikes/{name}"] = end
        for k in keys:
            rec.rows[k] = (usable, rec.rows[k][1])


def first_at_or_after(column: Any, n: int, step: int) -> int:
    """Index of the first of the first ``n`` rows of a non-decreasing ``column`` (an HDF5
    dataset or an array) holding a value >= ``step``."""
    lo, hi = 0, n  # binary search reading single elements: a few chunks, not the column
    while lo < hi:
        mid = (lo + hi) // 2
        if int(column[mid]) < step:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _trim_to_step_columns(rec: Recovery) -> None:
    """A state sample or weight snapshot is usable only with its step: cut each state
    variable and each weight monitor's values to the rows recovered of their step column."""
    for key in list(rec.rows):
        parts = key.split("/")
        if len(parts) != 3 or parts[0] not in ("state", "weights") or parts[2] in ("step", "neurons",
                                                                                     "indptr", "indices"):
            continue
        step_key = f"{parts[0]}/{parts[1]}/step"
        steps = rec.rows[step_key][0] if step_key in rec.rows else 0
        usable, total = rec.rows[key]
        rec.rows[key] = (min(usable, steps), total)
        if parts[0] == "weights" and step_key in rec.rows:  # and a step without its snapshot
            rec.rows[step_key] = (min(steps, usable), rec.rows[step_key][1])


def _start_step(f: h5py.File, key: str) -> int:
    try:
        return int(f[key].attrs.get("start_step", 0))
    except H5_ERRORS:
        return 0
