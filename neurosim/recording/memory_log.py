"""In-memory log: recordings kept as numpy arrays in this process."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.recording.dataset_spec import DatasetSpec


class MemoryLog:
    """Keeps a run's recordings in memory, with the same layout as an HDF5 log.

    Read it with :class:`neurosim.LogReader` (``net.reader()``), exactly as a file.
    """

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {}
        self.dataset_attrs: dict[str, dict[str, Any]] = {}
        self._parts: dict[str, list[np.ndarray]] = {}
        self._tails: dict[str, tuple[tuple[int, ...], str]] = {}
        #: (start step, network_json) each time the description changed
        self.network_versions: list[tuple[int, str]] = []

    def begin_run(self, attrs: dict[str, Any], specs: list[DatasetSpec],
                  static: dict[str, np.ndarray], start_step: int = 0) -> None:
        if not self.attrs:
            self.attrs.update(attrs)
        if "network_json" in attrs:  # the network as it is now (it may grow between runs)
            self.attrs["network_json"] = attrs["network_json"]
            if not self.network_versions or self.network_versions[-1][1] != attrs["network_json"]:
                self.network_versions.append((start_step, attrs["network_json"]))
        if "steps_sorted" in attrs:
            self.attrs["steps_sorted"] = attrs["steps_sorted"]
        self.attrs["completed"] = False
        for spec in specs:
            if spec.key not in self._parts:
                self._parts[spec.key] = []
                self._tails[spec.key] = (spec.tail, spec.dtype)
                self.dataset_attrs[spec.key] = dict(spec.attrs)
        for key, arr in static.items():
            self._parts[key] = [np.asarray(arr)]

    def append(self, chunk: dict[str, np.ndarray], steps_done: int) -> None:
        for key, arr in chunk.items():
            self._parts[key].append(np.asarray(arr))
        self.attrs["flushed_steps"] = steps_done

    def end_run(self, completed: bool, attrs: dict[str, Any], outcome: str | None = None) -> None:
        self.attrs.update(attrs)
        self.attrs["completed"] = bool(completed)

    # -- reading (used by LogReader) ----------------------------------------------------
    def keys(self) -> list[str]:
        return sorted(self._parts)

    def get(self, key: str) -> np.ndarray:
        if key not in self._parts:
            raise KeyError(f"no dataset {key!r} in the log")
        parts = self._parts[key]
        if not parts:
            tail, dtype = self._tails[key]
            return np.zeros((0,) + tail, dtype=dtype)
        if len(parts) > 1:  # consolidate so repeated reads stay cheap
            self._parts[key] = [np.concatenate(parts)]
        return self._parts[key][0]

    def length(self, key: str) -> int:
        return sum(len(p) for p in self._parts[key])

    def describe(self) -> str:
        return "memory"
