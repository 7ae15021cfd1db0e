"""HDF5 log writer: chunked, compressed, extendible datasets streamed during a run.

Every moment of a run leaves a file that opens (see ``docs/log_format.md``,
"Crash safety"), because the file at the log's path is only ever written in HDF5's
single-writer/multiple-reader (SWMR) mode, whose ordered flushes keep the file
consistent after each system call:

- the file is built complete (attributes, progress records, datasets) under a
  hidden temporary name, switched to SWMR mode, and only then given its name, with
  a link that fails if the name exists (:mod:`neurosim.recording.file_claim`);
- between runs it is closed cleanly and reopened directly in SWMR mode, never in
  plain read-write mode (a writer killed in that mode leaves a file no reader opens);
- objects added by a later run (a monitor added between runs) are built unlinked,
  flushed, and then linked with one write; values that change (``completed``,
  ``steps``, ...) are fixed-size attributes rewritten in place; things that grow
  (the end times of runs, later versions of the network description) are rows
  appended to datasets under ``progress/``, never variable-length attributes;
- ``completed`` is set True only as the last write of a run.
"""

from __future__ import annotations

import datetime as _dt
import os
import posixpath
import weakref
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from neurosim.recording.file_claim import LogInUseError, WriterLock, in_use, publish, temporary_name
from neurosim.recording.h5_groups import create_roomy_group, roomy_group_plist

if TYPE_CHECKING:
    from neurosim.recording.dataset_spec import DatasetSpec

#: bump when the layout changes incompatibly; readers check it
SCHEMA_VERSION = 2
#: HDF5 chunk size target: small enough that re-compressing the partly filled last chunk
#: at each flush is cheap, large enough for good compression
_CHUNK_BYTES = 64 << 10
#: root attributes rewritten in place after creation: fixed-size values only, so each
#: rewrite is one write of one block (variable-length ones are not crash-safe in place)
_MUTABLE = {"completed": np.bool_(False), "steps": np.int64(0), "duration_ms": np.float64(0.0),
            "steps_sorted": np.bool_(True)}
#: one row per run: where it started and ended, and how it ended
RUN_DTYPE = np.dtype([("start_step", "<i8"), ("end_step", "<i8"), ("status", "S12"),
                      ("started_at", "S32"), ("ended_at", "S32")])
#: groups made with the file, so that later monitors add links only below them
_KINDS = ("spikes", "state", "weights", "modulators")


class LogReplacedError(OSError):
    """The log's path no longer names the file this writer created."""


def _encode(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)  # plain str: subclasses (e.g. torch's version string) confuse h5py
    return value


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def status_attrs(f: h5py.File) -> dict[str, Any]:
    """Root attributes as a reader should see them: ``ended_at`` from the last run's row
    and the latest ``network_json`` (a network changed between runs is recorded in
    ``progress/``, not by rewriting the attribute). Empty for schema 1 logs."""
    out: dict[str, Any] = {}
    runs = f.get("progress/runs")
    if isinstance(runs, h5py.Dataset) and runs.shape[0]:
        last = runs[runs.shape[0] - 1]
        out["ended_at"] = "" if last["status"] == b"running" else last["ended_at"].decode()
    versions = f.get("progress/network_versions")
    if isinstance(versions, h5py.Dataset) and versions.shape[0]:
        _, offset, size = (int(x) for x in versions[versions.shape[0] - 1])
        out["network_json"] = f["progress/network_json"][offset:offset + size].tobytes().decode()
    return out


class HDF5Log:
    """Writes a network's recordings to an HDF5 file at ``path``.

    Args:
        path: file to create. Its directory must exist.
        overwrite: replace an existing file (unless another run is writing it); by
            default an existing file is an error, so a saved log is never lost by
            accident. The path is claimed when the first run opens the log.
        compression_level: gzip level (1 = fastest).

    Raises:
        FileExistsError: ``path`` exists (:class:`LogInUseError` if a run is writing it).
        FileNotFoundError: the directory of ``path`` does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False,
                 compression_level: int = 1) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"log directory {directory!r} does not exist; create it or "
                                    f"choose another log path")
        if os.path.exists(self.path) and not overwrite:
            if in_use(self.path):
                raise LogInUseError(f"log file {self.path!r} belongs to a network that is running "
                                    f"or may run again (in this or another process); choose "
                                    f"another path")
            raise FileExistsError(f"log file {self.path!r} already exists; choose another path, "
                                  f"or replace it with log=HDF5Log({self.path!r}, overwrite=True)")
        self.overwrite = bool(overwrite)
        self.compression_level = compression_level
        self._file: h5py.File | None = None
        self._lock: WriterLock | None = None
        self._closed = False
        self._network = ""  # the network description last recorded
        self._run_row = -1

    # -- the life of the file -----------------------------------------------------------
    def begin_run(self, attrs: dict[str, Any], specs: list[DatasetSpec],
                  static: dict[str, np.ndarray], start_step: int = 0) -> None:
        if self._closed:
            raise ValueError(f"log {self.path!r} was closed; give the network a new log")
        if self._lock is None:
            self._create(attrs, specs, static, start_step)
            return
        f = self._file if self._file is not None else self._reopen()
        f.attrs.modify("completed", False)  # on disk before anything of this run
        f.flush()
        # the description first: a population's data never appears without it
        self._record_network(f, attrs.get("network_json", ""), start_step)
        f.flush()
        self._add_objects(f, specs, static, careful=True)
        self._append_run(f, start_step)
        self._set_mutable(f, attrs)
        f.flush()

    def append(self, chunk: dict[str, np.ndarray], steps_done: int) -> None:
        f = self._file
        for key, arr in chunk.items():
            if len(arr) == 0:
                continue
            ds = f[key]
            n = ds.shape[0]
            ds.resize(n + len(arr), axis=0)
            ds[n:] = arr
        f.flush()  # the data on disk before the count that says they are there
        f["progress/flushed_steps"][()] = steps_done
        f.flush()

    def end_run(self, completed: bool, attrs: dict[str, Any], outcome: str | None = None) -> None:
        """Close the run's record; ``completed`` is written last, and only if True.

        ``outcome`` (``"interrupted"``, ``"failed"``) goes into the run's row when the
        run did not complete.
        """
        f = self._file
        if f is None:
            return
        try:
            runs = f["progress/runs"]
            row = runs[self._run_row]
            row["end_step"] = int(attrs.get("steps", row["end_step"]))
            row["status"] = b"completed" if completed else (outcome or "stopped").encode()
            row["ended_at"] = str(attrs.get("ended_at") or _now()).encode()
            runs[self._run_row] = row
            self._set_mutable(f, attrs)
            f.flush()
            if completed:
                f.attrs.modify("completed", True)
                f.flush()
        finally:
            self._close_file()

    def close(self) -> None:
        """Close the file and release the writer lock; the log takes no more runs."""
        self._close_file()
        if self._lock is not None:
            self._lock.close()
        self._closed = True

    def describe(self) -> str:
        return self.path

    # -- creation -----------------------------------------------------------------------
    def _create(self, attrs: dict[str, Any], specs: list[DatasetSpec],
                static: dict[str, np.ndarray], start_step: int) -> None:
        # built whole under a temporary name: the log's path never holds a partial file
        tmp = temporary_name(self.path)
        f: h5py.File | None = None
        lock: WriterLock | None = None
        try:
            f = h5py.File(tmp, "x", libver="latest", rdcc_nbytes=8 << 20)
            lock = WriterLock(tmp)
            f.attrs["format"] = "neurosim-log"
            f.attrs["schema_version"] = SCHEMA_VERSION
            for k, v in attrs.items():
                if k not in _MUTABLE and k != "ended_at":
                    f.attrs[k] = _encode(v)
            for k, v in _MUTABLE.items():
                f.attrs[k] = v
            self._set_mutable(f, attrs)
            progress = create_roomy_group(f, "progress")
            progress.create_dataset("flushed_steps", data=np.int64(start_step))
            progress.create_dataset("runs", shape=(0,), maxshape=(None,), dtype=RUN_DTYPE, chunks=(64,))
            progress.create_dataset("network_json", shape=(0,), maxshape=(None,), dtype="u1",
                                    chunks=(1 << 16,), compression="gzip")
            progress.create_dataset("network_versions", shape=(0, 3), maxshape=(None, 3), dtype="i8",
                                    chunks=(64, 3))
            for kind in _KINDS:  # with room: later monitors link into them in one write
                create_roomy_group(f, kind)
            self._add_objects(f, specs, static, careful=False)
            self._network = str(attrs.get("network_json", ""))
            self._append_run(f, start_step)
            f.swmr_mode = True  # flushes everything, then marks the file for SWMR
            publish(tmp, self.path, self.overwrite)
        except BaseException:
            if f is not None:
                try:
                    f.close()
                except Exception:  # noqa: BLE001 - keep the original error
                    pass
            if lock is not None:
                lock.close()
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self._file, self._lock = f, lock
        weakref.finalize(self, lock.close)  # the lock lives as long as this log object

    def _reopen(self) -> h5py.File:
        lock = self._lock
        if not lock.same_file(self.path):
            raise LogReplacedError(f"log file {self.path!r} was moved, deleted or replaced after the "
                                   f"previous run; neurosim writes only into the file it created, "
                                   f"so this network cannot log further runs there")
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        cache = list(fapl.get_cache())
        cache[2] = 8 << 20
        fapl.set_cache(*cache)
        try:  # straight into SWMR mode: a plain read-write open would leave, if killed, a
            # file that no reader opens
            fid = h5py.h5f.open(os.fsencode(self.path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE,
                                fapl=fapl)
        except OSError as exc:
            raise OSError(f"cannot reopen log {self.path!r} to append this run ({exc}); close "
                          f"programs or LogReaders that hold it open, then run again") from None
        f = h5py.File(fid)
        handle = fid.get_vfd_handle()
        st, own = os.fstat(handle), os.fstat(lock.fd)
        if (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino):  # replaced while checking
            f.close()
            raise LogReplacedError(f"log file {self.path!r} was replaced after the previous run")
        self._file = f
        return f

    def _close_file(self) -> None:
        if self._file is not None:
            f, self._file = self._file, None
            f.close()

    # -- pieces -------------------------------------------------------------------------
    def _set_mutable(self, f: h5py.File, attrs: dict[str, Any]) -> None:
        for k in ("steps", "duration_ms", "steps_sorted"):
            if k in attrs:
                f.attrs.modify(k, _MUTABLE[k].dtype.type(attrs[k]))

    def _new_dataset(self, f: h5py.File, spec: DatasetSpec) -> h5py.Dataset:
        tail = tuple(spec.tail)
        row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)
        rows = max(1, _CHUNK_BYTES // row_bytes)
        ds = f.create_dataset(None, shape=(0,) + tail, maxshape=(None,) + tail, dtype=spec.dtype,
                              chunks=(rows,) + tail, compression="gzip",
                              compression_opts=self.compression_level, shuffle=True)
        for k, v in spec.attrs.items():
            ds.attrs[k] = _encode(v)
        return ds

    def _add_objects(self, f: h5py.File, specs: list[DatasetSpec], static: dict[str, np.ndarray],
                     careful: bool) -> None:
        """Create the datasets (and groups) not yet in the file.

        Everything new is made unlinked (anonymous) and hung below other new objects;
        with ``careful``, that is flushed first and each new subtree is then linked
        into the file with its own flush, so no flush leaves a link to an object that
        is not yet on disk.
        """
        new: dict[str, h5py.Group] = {}  # unlinked groups, by the path they will have
        links: list[tuple[h5py.Group, str, Any]] = []

        def place(key: str, obj: Any) -> None:
            parent_path, name = posixpath.split(key)
            parent = group(parent_path)
            if parent_path in new:
                parent[name] = obj
            else:
                links.append((parent, name, obj))

        def group(path: str) -> h5py.Group:
            if path in ("", "/"):
                return f
            if path in new:
                return new[path]
            if path in f:
                return f[path]
            plist = roomy_group_plist() if "/" not in path.strip("/") else None  # a new kind
            g = h5py.Group(h5py.h5g.create(f.id, None, gcpl=plist))
            new[path] = g
            place(path, g)
            return g

        for spec in specs:
            if spec.key not in f:
                place(spec.key, self._new_dataset(f, spec))
        for key, arr in static.items():
            if key in f:
                continue  # written when its monitor was added; a monitor's structure is fixed
            place(key, f.create_dataset(None, data=np.asarray(arr)))
        if careful and links:
            f.flush()
        for parent, name, obj in links:
            parent[name] = obj
            if careful:
                f.flush()

    def _append_run(self, f: h5py.File, start_step: int) -> None:
        runs = f["progress/runs"]
        self._run_row = n = runs.shape[0]
        runs.resize(n + 1, axis=0)
        runs[n] = np.array((start_step, start_step, b"running", _now().encode(), b""), dtype=RUN_DTYPE)

    def _record_network(self, f: h5py.File, network_json: str, start_step: int) -> None:
        """Append a changed network description (the root attribute keeps the first one)."""
        if not network_json or network_json == self._network:
            return
        data = np.frombuffer(network_json.encode(), dtype=np.uint8)
        text, index = f["progress/network_json"], f["progress/network_versions"]
        offset = text.shape[0]
        text.resize(offset + data.size, axis=0)
        text[offset:] = data
        f.flush()  # the text is on disk before the row that points to it
        n = index.shape[0]
        index.resize(n + 1, axis=0)
        index[n] = (start_step, offset, data.size)
        self._network = network_json
