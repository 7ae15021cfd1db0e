"""Small checks shared by the constructors: numbers, numeric arrays, readable messages."""

from __future__ import annotations

import numbers
import os
import tempfile
from typing import Any

import numpy as np
import torch


def is_real(value: Any) -> bool:
    """A real number, numpy scalars included (``np.float32(0.1)``); not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole(value: Any) -> bool:
    """An integer, numpy integers included; not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def show(value: Any) -> str:
    """``value`` as a message shows it: its repr (shortened) and its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def numeric_array(value: Any, what: str) -> np.ndarray:
    """``value`` (number, sequence, numpy array or tensor) as a numpy array of numbers.

    Raises TypeError naming ``what`` for strings, objects or arrays of them, which
    numpy would otherwise convert (``np.asarray('2', float)`` is 2.0) or reject
    with a message that names nothing.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{what}, got {show(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # ragged nesting and the like
        raise TypeError(f"{what}, got {show(value)}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}, got {show(value)}" if arr.ndim == 0 else
                        f"{what}, got an array of {arr.dtype} values")
    return arr


def check_device(device: Any) -> torch.device:
    """``device`` as a torch.device that neurosim can run on: the CPU or a present CUDA device."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (or a torch.device), "
                         f"got {show(device)}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(dev)!r} is not supported: neurosim runs on 'cpu' or 'cuda'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r} requested but torch sees "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def check_log_target(log: Any) -> None:
    """Fail at construction, not at the first run, on a log that cannot be written.

    Accepts None, a non-empty file path whose directory is writable, or a log
    object (with ``begin_run``, ``append`` and ``end_run``). A missing directory
    or an existing file is left to :class:`~neurosim.recording.HDF5Log` to report.
    """
    if log is None:
        return
    if isinstance(log, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(log))
        if not path:
            raise ValueError("log must be a file path, got an empty string; pass log=None to keep "
                             "recordings in memory")
        if os.path.isdir(path):
            raise IsADirectoryError(f"log {path!r} is a directory; give a file name such as "
                                    f"{os.path.join(path, 'run.h5')!r}")
    elif all(callable(getattr(log, m, None)) for m in ("begin_run", "append", "end_run")):
        path = getattr(log, "path", None)
        if not isinstance(path, str) or not path:
            return  # an in-memory or user-made log
    else:
        raise TypeError(f"log must be None (in memory), a file path, or a log object such as "
                        f"HDF5Log or MemoryLog, got {show(log)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return
    try:  # a real write: permissions, read-only mounts and special file systems all show here
        with tempfile.TemporaryFile(dir=directory, prefix=".neurosim-write-check-"):
            pass
    except OSError as exc:
        raise PermissionError(f"log directory {directory!r} is not writable ({exc.strerror or exc}); "
                              "choose another log path") from None
