"""HDF5 log writer: chunked, compressed, extendible datasets streamed during a run.

The file is written in HDF5's single-writer/multiple-reader (SWMR) mode and
flushed after every chunk, so a run killed at any moment (even by SIGKILL)
leaves a file that opens and holds everything up to the last flush. The root
attribute ``completed`` is set to True only after a run has finished and all
its data are written; a file without it was cut short. See ``docs/log_format.md``.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from neurosim.monitors import DatasetSpec

#: bump when the layout changes incompatibly; readers check it
SCHEMA_VERSION = 1
#: HDF5 chunk size target: small enough that re-compressing the partly filled last chunk
#: at each flush is cheap, large enough for good compression
_CHUNK_BYTES = 64 << 10


def _encode(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)  # plain str: subclasses (e.g. torch's version string) confuse h5py
    return value


class HDF5Log:
    """Writes a network's recordings to an HDF5 file at ``path``.

    Args:
        path: file to create. Its directory must exist.
        overwrite: replace an existing file; by default an existing file is an
            error, so a saved log is never lost by accident.
        compression_level: gzip level (1 = fastest).
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False,
                 compression_level: int = 1) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"log directory {directory!r} does not exist; create it or "
                                    f"choose another log path")
        if os.path.exists(self.path) and not overwrite:
            raise FileExistsError(f"log file {self.path!r} already exists; choose another path "
                                  f"or pass overwrite=True")
        self.compression_level = compression_level
        self._created = False
        self._file: h5py.File | None = None

    def begin_run(self, attrs: dict[str, Any], specs: list[DatasetSpec],
                  static: dict[str, np.ndarray]) -> None:
        if not self._created:
            f = h5py.File(self.path, "w", libver="latest", rdcc_nbytes=8 << 20)
            f.attrs["format"] = "neurosim-log"
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["completed"] = False
            f.create_dataset("progress/flushed_steps", data=np.int64(0))
            for k, v in attrs.items():
                f.attrs[k] = _encode(v)
            self._created = True
        else:
            f = h5py.File(self.path, "r+", libver="latest", rdcc_nbytes=8 << 20)
        f.attrs["completed"] = False
        for spec in specs:
            if spec.key in f:
                continue
            tail = tuple(spec.tail)
            row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)
            rows = max(1, _CHUNK_BYTES // row_bytes)
            ds = f.create_dataset(spec.key, shape=(0,) + tail, maxshape=(None,) + tail,
                                  dtype=spec.dtype, chunks=(rows,) + tail, compression="gzip",
                                  compression_opts=self.compression_level, shuffle=True)
            for k, v in spec.attrs.items():
                ds.attrs[k] = _encode(v)
        for key, arr in static.items():
            if key in f:
                del f[key]
            f.create_dataset(key, data=np.asarray(arr))
        f.swmr_mode = True
        self._file = f

    def append(self, chunk: dict[str, np.ndarray], steps_done: int) -> None:
        f = self._file
        for key, arr in chunk.items():
            if len(arr) == 0:
                continue
            ds = f[key]
            n = ds.shape[0]
            ds.resize(n + len(arr), axis=0)
            ds[n:] = arr
        f["progress/flushed_steps"][()] = steps_done
        f.flush()

    def end_run(self, completed: bool, attrs: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
        with h5py.File(self.path, "r+", libver="latest") as f:
            for k, v in attrs.items():
                f.attrs[k] = _encode(v)
            f.flush()
            f.attrs["completed"] = bool(completed)  # written last

    def describe(self) -> str:
        return self.path
