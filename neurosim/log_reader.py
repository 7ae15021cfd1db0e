"""Reading a run's log (an HDF5 file or an in-memory log) back as numpy arrays."""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from neurosim.recording.hdf5_log import SCHEMA_VERSION
from neurosim.recording.memory_log import MemoryLog


class LogError(Exception):
    """The file is not a neurosim log, or it is damaged or of an unknown version."""


class LogReader:
    """Read access to a log: metadata, spikes, sampled states and weight snapshots.

    Works on an HDF5 file path or on a :class:`~neurosim.recording.MemoryLog`.
    A file whose writer was killed opens too (HDF5 SWMR mode);
    :attr:`completed` is False for it.

    Example:
        >>> log = LogReader("run.h5")                       # doctest: +SKIP
        >>> steps, neurons, rows = log.spikes("exc")         # doctest: +SKIP
        >>> print(log.summary()["populations"]["exc"]["rate_hz"])  # doctest: +SKIP
    """

    def __init__(self, source: str | os.PathLike[str] | MemoryLog) -> None:
        self._mem: MemoryLog | None = None
        self._file: h5py.File | None = None
        if isinstance(source, MemoryLog):
            self._mem = source
            self.attrs = dict(source.attrs)
            self.path = "memory"
            return
        self.path = os.fspath(source)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"log file {self.path!r} does not exist")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            try:  # a writer that was killed leaves the SWMR flag set; SWMR readers can open it
                self._file = h5py.File(self.path, "r", swmr=True)
            except OSError as exc:
                raise LogError(f"{self.path!r} is not a readable HDF5 file ({exc})") from None
        self.attrs = {k: (v.item() if isinstance(v, np.generic) else v)
                      for k, v in self._file.attrs.items()}
        if self.attrs.get("format") != "neurosim-log":
            self.close()
            raise LogError(f"{self.path!r} is an HDF5 file but not a neurosim log")
        if int(self.attrs.get("schema_version", -1)) > SCHEMA_VERSION:
            self.close()
            raise LogError(f"{self.path!r} uses log schema {self.attrs['schema_version']}; this "
                           f"neurosim reads up to {SCHEMA_VERSION}: upgrade neurosim")

    # -- plumbing -----------------------------------------------------------------------
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "LogReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def keys(self) -> list[str]:
        """All dataset paths in the log."""
        if self._mem is not None:
            return self._mem.keys()
        out: list[str] = []
        self._file.visititems(lambda name, obj: out.append(name)
                              if isinstance(obj, h5py.Dataset) else None)
        return sorted(out)

    def array(self, key: str) -> np.ndarray:
        """The whole dataset ``key`` as a numpy array."""
        if self._mem is not None:
            return self._mem.get(key)
        if key not in self._file:
            raise KeyError(f"no dataset {key!r} in {self.path}")
        return self._file[key][()]

    def dataset_attrs(self, key: str) -> dict[str, Any]:
        if self._mem is not None:
            return dict(self._mem.dataset_attrs.get(key, {}))
        return dict(self._file[key].attrs)

    def has(self, key: str) -> bool:
        """Whether dataset ``key`` exists."""
        if self._mem is not None:
            return key in self._mem.keys()
        return key in self._file

    def _length(self, key: str) -> int:
        if self._mem is not None:
            return self._mem.length(key)
        return int(self._file[key].shape[0])

    def _group(self, prefix: str) -> list[str]:
        names = {k.split("/")[1] for k in self.keys() if k.startswith(prefix + "/") and k.count("/") >= 2}
        return sorted(names)

    # -- metadata -----------------------------------------------------------------------
    @property
    def completed(self) -> bool:
        """True only if the run that wrote the log finished and closed it."""
        return bool(self.attrs.get("completed", False))

    @property
    def dt(self) -> float:
        return float(self.attrs["dt_ms"])

    @property
    def network(self) -> dict[str, Any]:
        """The network's description (populations, projections, monitors, ...)."""
        return json.loads(self.attrs.get("network_json", "{}"))

    @property
    def steps(self) -> int:
        """Steps simulated: from the end-of-run record, or the last flush if cut short."""
        if "steps" in self.attrs and self.completed:
            return int(self.attrs["steps"])
        if self._mem is not None:
            return int(self.attrs.get("flushed_steps", 0))
        if "progress/flushed_steps" not in self._file:  # killed before the first flush
            return 0
        return int(self._file["progress/flushed_steps"][()])

    # -- data ---------------------------------------------------------------------------
    def spike_populations(self) -> list[str]:
        return self._group("spikes")

    def spikes(self, population: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step, neuron, batch row) of every recorded spike of ``population``."""
        base = f"spikes/{population}"
        if not self.has(f"{base}/step"):
            raise KeyError(f"no spikes recorded for population {population!r}; recorded: "
                           f"{self.spike_populations()}")
        return (self.array(f"{base}/step"), self.array(f"{base}/neuron"),
                self.array(f"{base}/batch"))

    def spike_times(self, population: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`spikes` with times in ms instead of steps."""
        steps, neurons, rows = self.spikes(population)
        return steps * self.dt, neurons, rows

    def state_monitors(self) -> list[str]:
        return self._group("state")

    def state(self, monitor: str, variable: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a sampled variable; values are (samples, batch, neurons)."""
        base = f"state/{monitor}"
        return self.array(f"{base}/step"), self.array(f"{base}/{variable}")

    def state_neurons(self, monitor: str) -> np.ndarray:
        return self.array(f"state/{monitor}/neurons")

    def weight_monitors(self) -> list[str]:
        return self._group("weights")

    def weights(self, monitor: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, snapshots) of a projection's weights."""
        base = f"weights/{monitor}"
        return self.array(f"{base}/step"), self.array(f"{base}/values")

    # -- summary ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """A JSON-able summary: run metadata, per-population spike counts and rates."""
        net = self.network
        steps = self.steps
        batch = int(self.attrs.get("batch", 1))
        pops: dict[str, Any] = {}
        for p in net.get("populations", []):
            pops[p["name"]] = {"size": p["size"], "model": p["model"]}
        for name in self.spike_populations():
            key = f"spikes/{name}/step"
            count = self._length(key)
            start = int(self.dataset_attrs(key).get("start_step", 0))
            pop = self.dataset_attrs(key).get("population", name)
            size = pops.get(pop, {}).get("size")
            seconds = max(0, steps - start) * self.dt * 1e-3
            entry = pops.setdefault(pop, {"size": size, "model": None})
            entry["spikes"] = count
            entry["rate_hz"] = (count / (size * batch * seconds)
                                if size and seconds > 0 else None)
        recorded = {m: [k.split("/")[-1] for k in self.keys()
                        if k.startswith(f"state/{m}/") and k.split("/")[-1] not in ("step", "neurons")]
                    for m in self.state_monitors()}
        return {
            "file": self.path,
            "completed": self.completed,
            "neurosim_version": self.attrs.get("neurosim_version"),
            "backend": self.attrs.get("backend"),
            "device": self.attrs.get("device"),
            "seed": self.attrs.get("seed"),
            "dt_ms": self.dt,
            "batch": batch,
            "steps": steps,
            "duration_ms": steps * self.dt,
            "started_at": self.attrs.get("started_at"),
            "ended_at": self.attrs.get("ended_at") or None,
            "populations": pops,
            "state_variables": recorded,
            "weights": self.weight_monitors(),
        }
