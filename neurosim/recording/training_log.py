"""An HDF5 log of a training run that is not stepped by the engine (CCL, its baselines).

Layout: root attributes (``format = "neurosim-training-log"``, the configuration, the
seed, ``completed``), ``epochs/<metric>`` (one row per epoch, appended and flushed as
each epoch ends), ``weights/<name>`` (the final weights) and ``results`` attributes
(the test figures). Crash safety follows the engine's log (:mod:`.hdf5_log`): the file
is built under a hidden name, switched to HDF5's SWMR mode and only then given its
name; later writes are in-place writes and appends in SWMR mode, so a killed run
leaves a file that opens, with the epochs it finished and ``completed`` False.
``completed`` becomes True as the last write.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import h5py
import numpy as np

from neurosim.recording.file_claim import WriterLock, publish, temporary_name

FORMAT = "neurosim-training-log"


def _attr(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return "" if value is None else value


class TrainingLog:
    """Create the log at ``path`` (refusing an existing file unless ``overwrite``).

    Args:
        attrs: configuration, stored as root attributes (dicts and lists as JSON).
        metrics: the per-epoch metric names (float64 columns under ``epochs/``).
        arrays: the final arrays' ``name -> (shape, dtype)``; their datasets are made
            now (filled by :meth:`finish`), so that nothing is created after SWMR starts.
        results: names of the float results that :meth:`finish` writes.
    """

    def __init__(self, path: str | os.PathLike[str], attrs: Mapping[str, Any], metrics: list[str],
                 arrays: Mapping[str, tuple[tuple[int, ...], Any]], results: list[str],
                 overwrite: bool = False) -> None:
        self.path = os.fspath(path)
        tmp = temporary_name(self.path)
        f = lock = None
        try:
            f = h5py.File(tmp, "x", libver="latest")
            lock = WriterLock(tmp)
            f.attrs["format"] = FORMAT
            for k, v in attrs.items():
                f.attrs[k] = _attr(v)
            f.attrs["completed"] = np.bool_(False)
            f.attrs["epochs_done"] = np.int64(0)
            epochs = f.create_group("epochs")
            for m in metrics:
                epochs.create_dataset(m, shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
            weights = f.create_group("weights")
            for name, (shape, dtype) in arrays.items():
                weights.create_dataset(name, shape=shape, dtype=dtype)
            res = f.create_group("results")
            for name in results:
                res.attrs[name] = np.float64(np.nan)
            f.swmr_mode = True
            publish(tmp, self.path, overwrite)
        except BaseException:
            if f is not None:
                f.close()
            if lock is not None:
                lock.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._file, self._lock, self.metrics = f, lock, list(metrics)

    def add_epoch(self, record: Mapping[str, float]) -> None:
        """Append one row (every metric named at creation) and flush it to disk."""
        f = self._file
        n = int(f.attrs["epochs_done"])
        for m in self.metrics:
            ds = f["epochs"][m]
            ds.resize((n + 1,))
            ds[n] = float(record.get(m, np.nan))
        f.flush()
        f.attrs["epochs_done"] = np.int64(n + 1)
        f.flush()

    def finish(self, arrays: Mapping[str, np.ndarray], results: Mapping[str, float]) -> None:
        """Write the final arrays and results, then mark the log complete and close it."""
        f = self._file
        for name, value in arrays.items():
            f["weights"][name][...] = value
        for name, value in results.items():
            f["results"].attrs[name] = np.float64(value)
        f.flush()
        f.attrs["completed"] = np.bool_(True)
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._lock.close()


def summarize(f: h5py.File, path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``neurosim inspect`` shows of a training log open as ``f``: configuration,
    per-epoch metrics, the best epoch, the test figures and the stored arrays."""
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    done = int(attrs.get("epochs_done", 0))
    epochs = {m: [float(x) for x in f["epochs"][m][:done]] for m in f["epochs"]}
    results = {k: float(v) for k, v in f["results"].attrs.items()}
    weights = {k: list(f["weights"][k].shape) for k in f["weights"]}
    for k, v in list(attrs.items()):
        if isinstance(v, bytes):
            attrs[k] = v.decode()
        if isinstance(attrs[k], str) and attrs[k][:1] in "{[":
            try:
                attrs[k] = json.loads(attrs[k])
            except ValueError:
                pass
    return {"path": os.fspath(path), "format": FORMAT, "completed": bool(attrs.get("completed")),
            "epochs_done": done, "attrs": attrs, "epochs": epochs,
            "results": results if attrs.get("completed") else {}, "weights": weights}


def format_summary(s: dict[str, Any]) -> str:
    """A few lines for people (``neurosim inspect``)."""
    a = s["attrs"]
    planned = a.get("epochs")
    state = "complete" if s["completed"] else f"INCOMPLETE: {s['epochs_done']} of {planned} epochs written"
    lines = [f"{s['path']}: training log ({state})",
             "  " + ", ".join(f"{k} {a[k]}" for k in ("example", "method", "engine", "arch", "dataset", "foundation",
                                                       "spiking", "activation", "loss", "seed",
                                                       "train_samples", "validation_samples") if k in a)]
    val = s["epochs"].get("validation_loss", [])
    if val:
        best = min(range(len(val)), key=val.__getitem__)
        acc = s["epochs"].get("validation_accuracy", [])
        extra = f" (accuracy {100 * acc[best]:.2f}%)" if acc and acc[best] == acc[best] else ""
        lines.append(f"  epochs: {len(val)}; lowest validation loss {val[best]:.4f} at epoch {best + 1}{extra}")
    r = s["results"]
    if r and "test_loss" not in r:  # another example's figures: each by name
        lines.append("  results: " + ", ".join(f"{k} {v:.4g}" for k, v in r.items()))
    elif r:
        acc = r.get("test_accuracy")
        shown = f"test accuracy {100 * acc:.2f}%, " if acc is not None and acc == acc else ""
        lines.append(f"  {shown}test loss {r.get('test_loss', float('nan')):.4f} (best epoch "
                     f"{int(r.get('best_epoch', 0))}), {r.get('seconds', float('nan')):.1f} s of training")
    lines.append(f"  weights: {len(s['weights'])} arrays"
                 + (f" ({', '.join(f'{k} {tuple(v)}' for k, v in list(s['weights'].items())[:3])}, ...)"
                    if s["weights"] else ""))
    return "\n".join(lines)
