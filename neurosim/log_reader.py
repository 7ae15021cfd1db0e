"""Reading a run's log (an HDF5 file or an in-memory log) back as numpy arrays."""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from neurosim.recording.hdf5_log import SCHEMA_VERSION, status_attrs
from neurosim.recording.memory_log import MemoryLog
from neurosim.sparse_matrices import csr_array


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
        self.attrs.update(status_attrs(self._file))  # end times, a network changed between runs

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

    def _spike_key(self, population: str) -> str:
        key = f"spikes/{population}/step"
        if not self.has(key):
            raise KeyError(f"no spikes recorded for population {population!r}; recorded: "
                           f"{', '.join(self.spike_populations()) or 'none'}")
        return key

    def read_rows(self, key: str, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` of dataset ``key`` (only those are read from the file)."""
        if self._mem is not None:
            return self._mem.get(key)[lo:hi]
        return self._file[key][lo:hi]

    def _first_at_or_after(self, key: str, step: int) -> int:
        """Index of the first event with ``step >= step`` in a non-decreasing dataset.

        A binary search that reads single elements: a window of a large log costs a
        few dozen chunk reads, not the whole dataset.
        """
        lo, hi = 0, self._length(key)
        data = self._mem.get(key) if self._mem is not None else self._file[key]
        while lo < hi:
            mid = (lo + hi) // 2
            if int(data[mid]) < step:
                lo = mid + 1
            else:
                hi = mid
        return lo

    @property
    def steps_sorted(self) -> bool:
        """Whether recorded steps never decrease (False after a run whose clock was set
        back with ``load_state``); windows are then found by scanning, not searching."""
        return bool(self.attrs.get("steps_sorted", True))

    def spike_range(self, population: str, start_ms: float | None = None,
                    stop_ms: float | None = None) -> tuple[int, int]:
        """Event indices ``[lo, hi)`` of the spikes of ``population`` in ``[start_ms, stop_ms)``
        (with unsorted steps, the whole record: filter it with the steps)."""
        key = self._spike_key(population)
        if start_ms is not None and stop_ms is not None and stop_ms <= start_ms:
            raise ValueError(f"empty time window: from {start_ms:g} ms to {stop_ms:g} ms")
        if not self.steps_sorted:
            return 0, self._length(key)
        lo = 0 if start_ms is None else self._first_at_or_after(key, int(np.ceil(start_ms / self.dt - 1e-9)))
        hi = (self._length(key) if stop_ms is None
              else self._first_at_or_after(key, int(np.ceil(stop_ms / self.dt - 1e-9))))
        return lo, hi

    def spikes(self, population: str, start_ms: float | None = None, stop_ms: float | None = None,
               batch: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step, neuron, batch row) of the recorded spikes of ``population``.

        Optionally only those in ``[start_ms, stop_ms)`` (read without loading the
        rest of the file) and of one batch row ``batch``.
        """
        lo, hi = self.spike_range(population, start_ms, stop_ms)
        base = f"spikes/{population}"
        steps, neurons, rows = (self.read_rows(f"{base}/{c}", lo, hi) for c in ("step", "neuron", "batch"))
        if not self.steps_sorted and (start_ms is not None or stop_ms is not None):
            keep = self._in_window(steps, start_ms, stop_ms)
            steps, neurons, rows = steps[keep], neurons[keep], rows[keep]
        if batch is not None:
            n_rows = int(self.attrs.get("batch", 1))
            if not 0 <= batch < n_rows:
                raise ValueError(f"batch row {batch} does not exist: the run had {n_rows} row(s)")
            keep = rows == batch
            steps, neurons, rows = steps[keep], neurons[keep], rows[keep]
        return steps, neurons, rows

    def spike_times(self, population: str, start_ms: float | None = None,
                    stop_ms: float | None = None,
                    batch: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`spikes` with times in ms instead of steps."""
        steps, neurons, rows = self.spikes(population, start_ms, stop_ms, batch)
        return steps * self.dt, neurons, rows

    def _in_window(self, steps: np.ndarray, start_ms: float | None, stop_ms: float | None) -> np.ndarray:
        keep = np.ones(len(steps), dtype=bool)
        if start_ms is not None:
            keep &= steps >= int(np.ceil(start_ms / self.dt - 1e-9))
        if stop_ms is not None:
            keep &= steps < int(np.ceil(stop_ms / self.dt - 1e-9))
        return keep

    def population_size(self, population: str) -> int:
        """Number of neurons of ``population`` (from the network description)."""
        for p in self.network.get("populations", []):
            if p["name"] == population:
                return int(p["size"])
        raise KeyError(f"no population {population!r} in this log; populations: "
                       f"{', '.join(p['name'] for p in self.network.get('populations', [])) or 'none'}")

    def record_population(self, record: str) -> str:
        """The population a spike record (a spike monitor's name) recorded."""
        return str(self.dataset_attrs(self._spike_key(record)).get("population", record))

    def spike_record_size(self, record: str) -> int:
        """Neurons of the population recorded by spike record ``record``."""
        return self.population_size(self.record_population(record))

    def recording_start_ms(self, population: str) -> float:
        """When spike recording of ``population`` began (ms)."""
        return int(self.dataset_attrs(self._spike_key(population)).get("start_step", 0)) * self.dt

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

    def weight_snapshot(self, monitor: str, index: int = -1, sparse: bool = False) -> tuple[int, Any]:
        """(step, dense ``(n_pre, n_post)`` weights) of one snapshot (default: the last).

        With ``sparse=True`` the weights come as a ``scipy.sparse.csr_array``: for CSR
        storage its stored entries are the synapses (no dense copy is made); for
        dense storage, the nonzero weights.
        """
        base = f"weights/{monitor}"
        if not self.has(f"{base}/values"):
            raise KeyError(f"no weight snapshots named {monitor!r}; recorded: "
                           f"{', '.join(self.weight_monitors()) or 'none'}")
        count = self._length(f"{base}/step")
        if count == 0:
            raise ValueError(f"weight monitor {monitor!r} has no snapshot yet")
        if not -count <= index < count:
            raise ValueError(f"weight monitor {monitor!r} has {count} snapshots, no index {index}")
        index %= count
        step = int(self.read_rows(f"{base}/step", index, index + 1)[0])
        values = self.read_rows(f"{base}/values", index, index + 1)[0]
        if values.ndim == 2:
            if sparse:
                import scipy.sparse

                return step, scipy.sparse.csr_array(values)
            return step, values
        indptr, indices = self.array(f"{base}/indptr"), self.array(f"{base}/indices")
        shape = (len(indptr) - 1, int(self.dataset_attrs(f"{base}/values").get(
            "n_post", indices.max(initial=-1) + 1)))
        if sparse:
            return step, csr_array(indptr, indices, values, shape)
        dense = np.zeros(shape, dtype=values.dtype)
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        dense[rows, indices] = values
        return step, dense

    # -- summary ------------------------------------------------------------------------
    def summary(self, population: str | None = None, start_ms: float | None = None,
                stop_ms: float | None = None, batch: int | None = None) -> dict[str, Any]:
        """A JSON-able summary: run metadata, per-population spike counts and rates.

        ``population``, a window ``[start_ms, stop_ms)`` and a batch row narrow the
        spike counts; only the events in the window are looked at (a binary search
        finds them), and the batch column only when ``batch`` is given, so a large
        log summarises quickly.
        """
        net = self.network
        steps = self.steps
        n_rows = int(self.attrs.get("batch", 1))
        duration = steps * self.dt
        if batch is not None and not 0 <= batch < n_rows:
            raise ValueError(f"batch row {batch} does not exist: the run had {n_rows} row(s)")
        if start_ms is not None and start_ms >= duration:
            raise ValueError(f"empty time window: the log ends at {duration:g} ms, "
                             f"the window starts at {start_ms:g} ms")
        if start_ms is not None and stop_ms is not None and stop_ms <= start_ms:
            raise ValueError(f"empty time window: from {start_ms:g} ms to {stop_ms:g} ms")
        pops: dict[str, Any] = {}
        for p in net.get("populations", []):
            pops[p["name"]] = {"size": p["size"], "model": p["model"]}
        records = self.spike_populations()
        if population is not None:
            # a population's name, or the name of a spike monitor (record) of one
            if population in records and population not in pops:
                population = self.record_population(population)
            if population not in pops:
                raise KeyError(f"no population {population!r} in this log; populations: "
                               f"{', '.join(pops) or 'none'}")
            pops = {population: pops[population]}
        for name in records:
            key = f"spikes/{name}/step"
            pop = self.dataset_attrs(key).get("population", name)
            if population is not None and pop != population:
                continue
            begin = max(self.recording_start_ms(name), start_ms or 0.0)
            end = duration if stop_ms is None else min(stop_ms, duration)
            if end <= begin:
                count = 0
            elif self.steps_sorted:
                lo, hi = self.spike_range(name, begin, end)
                count = hi - lo if batch is None else int(np.count_nonzero(
                    self.read_rows(f"spikes/{name}/batch", lo, hi) == batch))
            else:
                count = len(self.spikes(name, begin, end, batch)[0])
            size = pops.get(pop, {}).get("size")
            seconds = max(0.0, end - begin) * 1e-3
            rows = 1 if batch is not None else n_rows
            entry = pops.setdefault(pop, {"size": size, "model": None})
            entry["spikes"] = count
            entry["window_ms"] = [begin, end]
            entry["rate_hz"] = count / (size * rows * seconds) if size and seconds > 0 else None
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
            "batch": n_rows,
            "batch_selected": batch,
            "steps": steps,
            "duration_ms": steps * self.dt,
            "started_at": self.attrs.get("started_at"),
            "ended_at": self.attrs.get("ended_at") or None,
            "populations": pops,
            "state_variables": recorded,
            "weights": self.weight_monitors(),
        }
