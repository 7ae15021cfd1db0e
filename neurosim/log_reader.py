"""Reading a run's log (an HDF5 file or an in-memory log) back as numpy arrays."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from typing import Any, Iterator

import h5py
import numpy as np

from neurosim.log_checks import LogError, check_attrs, check_csr, check_events, check_indices, parse_network
from neurosim.log_open import FileCheck, check_file, open_hdf5
from neurosim.log_recovery import (H5_ERRORS, Recovery, complete_rows, first_at_or_after, read_attrs,
                                   survey)
from neurosim.recording.hdf5_log import SCHEMA_VERSION, status_attrs
from neurosim.recording.memory_log import MemoryLog
from neurosim.sparse_matrices import csr_array

__all__ = ["LogError", "LogReader"]

#: events read at a time when a summary checks a window's neuron indices
_SCAN_BLOCK = 1 << 20


class LogReader:
    """Read access to a log: metadata, spikes, sampled states and weight snapshots.

    Works on an HDF5 file path or on a :class:`~neurosim.recording.MemoryLog`.
    A file whose writer was killed opens too (HDF5 SWMR mode);
    :attr:`completed` is False for it. A truncated file opens if HDF5 can still
    read its metadata: :attr:`recovery` then says what was recovered, and every
    read stops at the last complete chunk. Damaged files raise :class:`LogError`
    quickly (see "Damaged files" in docs/log_format.md), never hang.

    Example:
        >>> log = LogReader("run.h5")                       # doctest: +SKIP
        >>> steps, neurons, rows = log.spikes("exc")         # doctest: +SKIP
        >>> print(log.summary()["populations"]["exc"]["rate_hz"])  # doctest: +SKIP
    """

    def __init__(self, source: str | os.PathLike[str] | MemoryLog) -> None:
        self._mem: MemoryLog | None = None
        self._file: h5py.File | None = None
        #: for a truncated file: what was recovered; None for an intact one
        self.recovery: Recovery | None = None
        if isinstance(source, MemoryLog):
            self._mem = source
            self.attrs = dict(source.attrs)
            self.path = "memory"
            self._network = parse_network(self.attrs.get("network_json", "{}"), self.path)
            return
        self.path = os.fspath(source)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"log file {self.path!r} does not exist")
        if os.path.isdir(self.path):
            raise LogError(f"{self.path!r} is a directory, not a log file")
        check = check_file(self.path)  # before HDF5: see neurosim/log_open.py for why
        self._file = self._open(check)
        try:
            self._load(check)
        except BaseException:
            self.close()
            raise

    def _open(self, check: FileCheck) -> h5py.File:
        # Plain read-only first, except for files flagged as being written (a killed or
        # live writer's) and truncated ones, which HDF5 opens only in SWMR-read mode
        # (retries bounded); the other mode is the fallback.
        modes = [True, False] if check.truncated or check.swmr_write else [False, True]
        for swmr in modes:
            try:
                return open_hdf5(self.path, swmr)
            except OSError as exc:
                error = exc
        damage = f"{check.describe()}; " if check.truncated else ""
        raise LogError(f"{self.path!r} is not a readable HDF5 file ({damage}{_h5_message(error)})")

    def _load(self, check: FileCheck) -> None:
        lost: list[str] = []
        self.attrs = read_attrs(self._file, lost)
        damage = check.describe() or "the file is damaged"
        if "format" not in self.attrs and lost:
            raise LogError(f"{self.path}: {damage}: HDF5 cannot read the log's attributes"
                           f"{self._flushed_note()}")
        if self.attrs.get("format") != "neurosim-log":
            raise LogError(f"{self.path!r} is an HDF5 file but not a neurosim log")
        if int(self.attrs.get("schema_version", -1)) > SCHEMA_VERSION:
            raise LogError(f"{self.path!r} uses log schema {self.attrs['schema_version']}; this "
                           f"neurosim reads up to {SCHEMA_VERSION}: upgrade neurosim")
        try:  # end times, a network changed between runs (schema 2: rows under progress/)
            self.attrs.update(status_attrs(self._file))
        except H5_ERRORS:
            lost.append("progress/runs")  # a damaged file: the root attributes stand
        for name in ("dt_ms", "network_json"):
            if name not in self.attrs and f"@{name}" in lost:
                raise LogError(f"{self.path}: {damage}: its {name} attribute cannot be read"
                               f"{self._flushed_note()}")
        check_attrs(self.attrs, self.path)
        self._network = parse_network(self.attrs.get("network_json", "{}"), self.path)
        if check.truncated:
            self.recovery = survey(self._file, check.size, check.describe(), self.steps_sorted)
            self.recovery.lost[:0] = lost

    def _flushed_note(self) -> str:
        """'; its writer had flushed N steps' when that counter is intact, else ''."""
        try:
            ds = self._file["progress/flushed_steps"]
            # past the end of a truncated file HDF5 reads zeros: only trust a stored value
            if complete_rows(ds, os.path.getsize(self.path), 1) == 1 and ds[()] >= 0:
                return f"; its writer had flushed {int(ds[()])} steps"
        except H5_ERRORS:
            pass
        return ""

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """h5py errors (damaged metadata or chunks) as one-line LogErrors naming ``key``."""
        try:
            yield
        except H5_ERRORS as exc:
            raise LogError(f"{self.path}: cannot read {key} ({_h5_message(exc)}): "
                           "the file is damaged") from None

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
        """All dataset paths in the log (of a truncated file: those that can be read)."""
        if self._mem is not None:
            return self._mem.keys()
        if self.recovery is not None:
            return sorted(self.recovery.rows)
        if not hasattr(self, "_keys"):
            out: list[str] = []
            with self._reading("the list of datasets"):
                self._file.visititems(lambda name, obj: out.append(name)
                                      if isinstance(obj, h5py.Dataset) else None)
            self._keys = sorted(out)
        return list(self._keys)

    def array(self, key: str) -> np.ndarray:
        """The whole dataset ``key`` as a numpy array (of a truncated file: its complete rows)."""
        if self._mem is not None:
            return self._mem.get(key)
        if not self.has(key):
            raise KeyError(f"no dataset {key!r} in {self.path}")
        with self._reading(key):
            ds = self._file[key]
            if ds.shape != ():
                return ds[:self.length(key)]
        if self.recovery is not None and self.recovery.usable(key) == 0:
            raise LogError(f"{self.path}: {key} is in the part of the file that is lost "
                           f"({self.recovery.reason})")
        with self._reading(key):
            return ds[()]

    def dataset_attrs(self, key: str) -> dict[str, Any]:
        if self._mem is not None:
            return dict(self._mem.dataset_attrs.get(key, {}))
        with self._reading(f"the attributes of {key}"):
            return dict(self._file[key].attrs)

    def has(self, key: str) -> bool:
        """Whether dataset ``key`` exists (and, in a truncated file, can be read)."""
        if self._mem is not None:
            return key in self._mem.keys()
        if self.recovery is not None:
            return key in self.recovery.rows
        return key in self.keys()

    def length(self, key: str) -> int:
        """Rows of dataset ``key`` (of a truncated file: the rows recovered)."""
        if self._mem is not None:
            return self._mem.length(key)
        if not self.has(key):
            raise KeyError(f"no dataset {key!r} in {self.path}")
        if self.recovery is not None:
            return self.recovery.rows[key][0]
        with self._reading(key):
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
        return self._network

    def network_versions(self) -> list[tuple[int, dict[str, Any]]]:
        """Every description the network had while logged, each with the step from which it
        held: a network grown between runs, or a gated population switched to another
        mode (its ``gate`` entry names the mode), appears as a new version."""
        if self._mem is not None:
            return [(step, parse_network(text, self.path)) for step, text in self._mem.network_versions]
        f = self._file
        runs = f.get("progress/runs")
        first_step = int(runs[0]["start_step"]) if isinstance(runs, h5py.Dataset) and runs.shape[0] else 0
        first = f.attrs.get("network_json", "{}")
        out = [(first_step, parse_network(first.decode() if isinstance(first, bytes) else first, self.path))]
        versions = f.get("progress/network_versions")
        if isinstance(versions, h5py.Dataset):
            text = f["progress/network_json"]
            for step, offset, size in versions[:]:
                out.append((int(step), parse_network(text[offset:offset + size].tobytes().decode(), self.path)))
        return out

    @property
    def steps(self) -> int:
        """Steps simulated: from the end-of-run record, or the last flush if cut short."""
        if "steps" in self.attrs and self.completed:
            return int(self.attrs["steps"])
        if self._mem is not None:
            return int(self.attrs.get("flushed_steps", 0))
        if not self.has("progress/flushed_steps"):  # killed before the first flush
            return 0
        flushed = self.array("progress/flushed_steps")
        if not isinstance(flushed, np.integer) or flushed < 0:
            raise LogError(f"{self.path}: progress/flushed_steps is {flushed!r}, not a step count: "
                           "the log is damaged")
        return int(flushed)

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
        if not self.has(key):
            raise KeyError(f"no dataset {key!r} in {self.path}")
        if self.recovery is not None:
            hi = min(hi, self.length(key))
        with self._reading(f"{key} rows {lo}:{hi}"):
            return self._file[key][lo:hi]

    def _first_at_or_after(self, key: str, step: int, end: int | None = None) -> int:
        """Index of the first event with ``step >= step`` in a non-decreasing dataset
        (among its first ``end`` rows).

        A binary search that reads single elements: a window of a large log costs a
        few dozen chunk reads, not the whole dataset.
        """
        n = self.length(key) if end is None else end
        with self._reading(key):
            data = self._mem.get(key) if self._mem is not None else self._file[key]
            return first_at_or_after(data, n, step)

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
        check_window(start_ms, stop_ms)
        end = self._complete_events(population)
        if not self.steps_sorted:
            return 0, end
        lo = 0 if start_ms is None else self._first_at_or_after(
            key, int(np.ceil(start_ms / self.dt - 1e-9)), end)
        hi = (end if stop_ms is None
              else self._first_at_or_after(key, int(np.ceil(stop_ms / self.dt - 1e-9)), end))
        return lo, hi

    def _complete_events(self, population: str) -> int:
        """Events of ``population`` that the log holds whole: rows present in all three
        columns and, in a log whose writer stopped early, of the steps it had flushed
        (a write cut short by a kill may leave part of a chunk beyond them)."""
        base = f"spikes/{population}"
        end = min(self.length(f"{base}/{c}") for c in ("step", "neuron", "batch"))
        if self._mem is None and not self.completed and self.steps_sorted:
            end = self._first_at_or_after(f"{base}/step", self.steps, end)
        return end

    def spikes(self, population: str, start_ms: float | None = None, stop_ms: float | None = None,
               batch: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step, neuron, batch row) of the recorded spikes of ``population``.

        Optionally only those in ``[start_ms, stop_ms)`` (read without loading the
        rest of the file) and of one batch row ``batch``.
        """
        n_rows = int(self.attrs.get("batch", 1))
        if batch is not None:
            _check_row(batch, n_rows)
        lo, hi = self.spike_range(population, start_ms, stop_ms)
        base = f"spikes/{population}"
        steps, neurons, rows = (self.read_rows(f"{base}/{c}", lo, hi) for c in ("step", "neuron", "batch"))
        pop, size = self._recorded(population)
        check_events(self.path, population, steps, neurons, rows, size, n_rows, pop, lo, self.steps_sorted)
        if not self.steps_sorted and (start_ms is not None or stop_ms is not None):
            keep = self._in_window(steps, start_ms, stop_ms)
            steps, neurons, rows = steps[keep], neurons[keep], rows[keep]
        if batch is not None:
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

    def _recorded(self, record: str) -> tuple[str, int]:
        """(population, its size) of spike record ``record``."""
        pop = self.record_population(record)
        try:
            return pop, self.population_size(pop)
        except KeyError:
            raise LogError(f"{self.path}: spikes/{record} records population {pop!r}, which the "
                           "log's network description does not list: the log is damaged") from None

    def record_population(self, record: str) -> str:
        """The population a spike record (a spike monitor's name) recorded."""
        return str(self.dataset_attrs(self._spike_key(record)).get("population", record))

    def spike_record_size(self, record: str) -> int:
        """Neurons of the population recorded by spike record ``record``."""
        return self._recorded(record)[1]

    def recording_start_ms(self, population: str) -> float:
        """When spike recording of ``population`` began (ms)."""
        start = self.dataset_attrs(self._spike_key(population)).get("start_step", 0)
        if not isinstance(start, (int, np.integer)) or start < 0:
            raise LogError(f"{self.path}: spikes/{population} has start_step {start!r}, not a step: "
                           "the log is damaged")
        return int(start) * self.dt

    def recording_stop_step(self, population: str) -> int:
        """The step up to which the spikes of ``population`` are in the log: its end, or
        the end of the complete steps recovered from a truncated file."""
        self._spike_key(population)
        end = self.steps
        if self.recovery is not None:
            end = min(end, self.recovery.ends.get(f"spikes/{population}", end))
        return end

    def recording_stop_ms(self, population: str) -> float:
        """:meth:`recording_stop_step` in ms."""
        return self.recording_stop_step(population) * self.dt

    def state_monitors(self) -> list[str]:
        return self._group("state")

    def state(self, monitor: str, variable: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a sampled variable; values are (samples, batch, neurons)."""
        base = f"state/{monitor}"
        n = self.state_samples(monitor, variable)
        return self.read_rows(f"{base}/step", 0, n), self.read_rows(f"{base}/{variable}", 0, n)

    def state_samples(self, monitor: str, variable: str) -> int:
        """Samples of ``variable`` with their steps (fewer in a truncated file)."""
        base = f"state/{monitor}"
        for key in (f"{base}/step", f"{base}/{variable}"):
            if not self.has(key):
                raise KeyError(f"no dataset {key!r} in {self.path}")
        return min(self.length(f"{base}/step"), self.length(f"{base}/{variable}"))

    def state_variables(self, monitor: str) -> list[str]:
        """The variables ``monitor`` sampled, in the order it was given them."""
        present = [k.split("/")[-1] for k in self.keys()
                   if k.startswith(f"state/{monitor}/") and k.count("/") == 2
                   and k.split("/")[-1] not in ("step", "neurons")]
        order = self._monitor(monitor).get("variables", [])
        return [v for v in order if v in present] + sorted(v for v in present if v not in order)

    def _monitor(self, name: str) -> dict[str, Any]:
        for m in self.network.get("monitors", []):
            if isinstance(m, dict) and m.get("name") == name:
                return m
        return {}

    def state_neurons(self, monitor: str) -> np.ndarray:
        """Indices of the neurons ``monitor`` sampled (checked against its population)."""
        neurons = np.asarray(self.array(f"state/{monitor}/neurons"))
        pop = self._monitor(monitor).get("population")
        if pop is not None:
            size = self.population_size(pop)
            check_indices(neurons, size, f"{self.path}: state/{monitor}/neurons",
                          f"population {pop!r} has {size} neurons")
        return neurons

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
        count = min(self.length(f"{base}/step"), self.length(f"{base}/values"))
        if count == 0:
            raise ValueError(f"weight monitor {monitor!r} has no snapshot yet")
        if not -count <= index < count:
            raise ValueError(f"weight monitor {monitor!r} has {count} snapshots, no index {index}")
        index %= count
        step = int(self.read_rows(f"{base}/step", index, index + 1)[0])
        values = self.read_rows(f"{base}/values", index, index + 1)[0]
        n_pre, n_post = self.projection_sizes(monitor)
        if values.ndim == 2:
            if n_pre is not None and values.shape != (n_pre, n_post):
                raise LogError(f"{self.path}: weights/{monitor}/values holds {values.shape[0]}x"
                               f"{values.shape[1]} weights for a {n_pre}x{n_post} projection: "
                               "the log is damaged")
            if sparse:
                import scipy.sparse

                return step, scipy.sparse.csr_array(values)
            return step, values
        indptr, indices = self.array(f"{base}/indptr"), self.array(f"{base}/indices")
        if n_pre is None:  # a projection the description does not list: trust the data's own sizes
            n_pre, n_post = len(indptr) - 1, int(indices.max(initial=-1)) + 1
        check_csr(self.path, monitor, indptr, indices, n_pre, n_post, len(values))
        if sparse:
            return step, csr_array(indptr, indices, values, (n_pre, n_post))
        dense = np.zeros((n_pre, n_post), dtype=values.dtype)
        rows = np.repeat(np.arange(n_pre), np.diff(indptr))
        dense[rows, indices] = values
        return step, dense

    def projection_sizes(self, monitor: str) -> tuple[int | None, int | None]:
        """(n_pre, n_post) of the projection a weight monitor records, from the description."""
        projection = self._monitor(monitor).get("projection", monitor)
        for p in self.network.get("projections", []):
            if isinstance(p, dict) and p.get("name") == projection:
                return self.population_size(p["pre"]), self.population_size(p["post"])
        return None, None

    # -- summary ------------------------------------------------------------------------
    def summary(self, population: str | None = None, start_ms: float | None = None,
                stop_ms: float | None = None, batch: int | None = None) -> dict[str, Any]:
        """A JSON-able summary: run metadata, per-population spike counts and rates.

        ``population``, a window ``[start_ms, stop_ms)`` and a batch row narrow the
        spike counts. Only the events in the window are read (a binary search finds
        them): their neuron column, whose indices are checked against the
        population's size, and their batch column when ``batch`` is given; so a large
        log summarises quickly. Of a truncated file, each record is counted up to
        its last complete step (``window_ms`` says where), and ``recovered`` says
        what was recovered.
        """
        net = self.network
        steps = self.steps
        n_rows = int(self.attrs.get("batch", 1))
        duration = steps * self.dt
        if batch is not None:
            _check_row(batch, n_rows)
        check_window(start_ms, stop_ms)
        if start_ms is not None and start_ms >= duration:
            raise ValueError(f"empty time window: the log ends at {duration:g} ms, "
                             f"the window starts at {start_ms:g} ms")
        pops: dict[str, Any] = {}
        for p in net.get("populations", []):
            pops[p["name"]] = {"size": p["size"], "model": p.get("model")}
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
            pop = self.record_population(name)
            if population is not None and pop != population:
                continue
            begin = max(self.recording_start_ms(name), start_ms or 0.0)
            stop = self.recording_stop_ms(name)
            end = stop if stop_ms is None else min(stop_ms, stop)
            if end <= begin:
                count = 0
            elif self.steps_sorted:
                lo, hi = self.spike_range(name, begin, end)
                count = self._count_checked(name, lo, hi, batch)
            else:
                count = len(self.spikes(name, begin, end, batch)[0])
            size = pops.get(pop, {}).get("size")
            seconds = max(0.0, end - begin) * 1e-3
            rows = 1 if batch is not None else n_rows
            entry = pops.setdefault(pop, {"size": size, "model": None})
            entry["spikes"] = count
            entry["window_ms"] = [begin, max(begin, end)]
            entry["rate_hz"] = count / (size * rows * seconds) if size and seconds > 0 else None
        recorded = {m: self.state_variables(m) for m in self.state_monitors()}
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
            "recovered": None if self.recovery is None else self.recovery.note(),
        }

    def _count_checked(self, record: str, lo: int, hi: int, batch: int | None) -> int:
        """Events ``lo:hi`` of ``record`` (of batch row ``batch``), their indices checked."""
        pop, size = self._recorded(record)
        n_rows = int(self.attrs.get("batch", 1))
        base = f"spikes/{record}"
        count = 0
        for first in range(lo, hi, _SCAN_BLOCK):  # blocks: bounded memory on any log
            last = min(hi, first + _SCAN_BLOCK)
            check_indices(self.read_rows(f"{base}/neuron", first, last), size,
                          f"{self.path}: {base}/neuron", f"population {pop!r} has {size} neurons", first)
            if batch is None:
                count += last - first
            else:
                rows = self.read_rows(f"{base}/batch", first, last)
                check_indices(rows, n_rows, f"{self.path}: {base}/batch",
                              f"the run had {n_rows} batch row(s)", first)
                count += int(np.count_nonzero(rows == batch))
        return count


def check_window(start_ms: float | None, stop_ms: float | None) -> None:
    """A time window's ends: finite, not negative, and the stop after the start."""
    for name, value in (("start", start_ms), ("stop", stop_ms)):
        if value is not None and not (isinstance(value, (int, float, np.number))
                                      and math.isfinite(value) and value >= 0):
            raise ValueError(f"the window's {name} must be a finite time >= 0 ms, got {value!r}")
    if stop_ms is not None and stop_ms <= (start_ms or 0.0):
        raise ValueError(f"empty time window: from {start_ms or 0.0:g} ms to {stop_ms:g} ms")


def _check_row(batch: Any, n_rows: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 0 <= batch < n_rows:
        raise ValueError(f"batch row {batch!r} does not exist: the run had {n_rows} row(s)")


def _h5_message(exc: BaseException) -> str:
    """h5py's message without the KeyError quotes it sometimes comes in."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
