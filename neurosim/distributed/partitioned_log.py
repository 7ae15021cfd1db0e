"""One logical log for a partitioned run: process 0 writes what every process recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch.distributed as dist

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition


class PartitionedLog:
    """The log of a partitioned run, in every process.

    ``inner`` (process 0 only; None elsewhere) is the real log, an
    :class:`~neurosim.recording.hdf5_log.HDF5Log` or a
    :class:`~neurosim.recording.memory_log.MemoryLog`, with the schema of a one-process
    run. :meth:`append` keeps a process's chunks; :meth:`collect` (collective, called by
    the run loop once per chunk of steps, at the same step in every process) gathers
    them to process 0, which joins them and appends them to ``inner``. Spike datasets of
    split populations (``split_bases``, set when the network prepares a run) are joined
    across processes and sorted by step, batch row and neuron, as one process records
    them; every other dataset is the same in every process and is taken from process 0.

    A run that fails in any process leaves ``inner`` marked incomplete: the failing
    process stops, the others fail in their next collective (the spike exchange names
    the lost process), and process 0 then ends the run as failed.
    """

    def __init__(self, inner: Any, partition: "Partition") -> None:
        self.inner = inner
        self.partition = partition
        self.split_bases: set[str] = set()
        #: datasets whose second axis is the batch (a data-parallel run's per-sample
        #: signals): joined along it, in process order
        self.batch_axis_keys: set[str] = set()
        self._pending: list[dict[str, np.ndarray]] = []
        self._steps_done = 0

    def describe(self) -> str:
        return "partitioned" if self.inner is None else self.inner.describe()

    @property
    def path(self) -> Any:
        return getattr(self.inner, "path", None)

    def begin_run(self, attrs: dict[str, Any], specs: list[Any], static: dict[str, np.ndarray],
                  start_step: int = 0) -> None:
        self._pending = []
        if self.inner is not None:
            size = self.partition.size
            specs = [type(spec)(spec.key, spec.dtype, (spec.tail[0] * size, *spec.tail[1:]), spec.attrs)
                     if spec.key in self.batch_axis_keys and spec.tail else spec for spec in specs]
            self.inner.begin_run({**attrs, "processes": size}, specs, static, start_step)

    def append(self, chunk: dict[str, np.ndarray], steps_done: int) -> None:
        self._pending.append(chunk)
        self._steps_done = steps_done

    def collect(self) -> None:
        """Gather every process's chunks to process 0 and write them (collective)."""
        part = self.partition
        gathered: list[Any] | None = [None] * part.size if part.rank == 0 else None
        pending, self._pending = self._pending, []
        if part.size == 1:
            gathered = [pending]
        else:
            dst = 0 if part.group is None else dist.get_global_rank(part.group, 0)
            dist.gather_object(pending, gathered, dst=dst, group=part.group)
        if self.inner is not None:
            self.inner.append(self._join(gathered), self._steps_done)

    def _join(self, gathered: list[list[dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
        def cat(chunks: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
            parts = [c[key] for c in chunks if key in c]
            return np.concatenate(parts) if parts else np.zeros(0)

        keys = [k for chunk in gathered[0] for k in chunk]
        keys = list(dict.fromkeys(keys))
        out = {}
        for key in keys:
            base = key.rsplit("/", 1)[0]
            if key in self.batch_axis_keys:  # every process's rows, side by side
                out[key] = np.concatenate([cat(chunks, key) for chunks in gathered], axis=1)
            elif base not in self.split_bases:
                out[key] = cat(gathered[0], key)
        for base in self.split_bases:
            if f"{base}/step" not in keys:
                continue
            cols = {f: np.concatenate([cat(chunks, f"{base}/{f}").astype(dtype)
                                       for chunks in gathered])
                    for f, dtype in (("step", np.int64), ("neuron", np.int32), ("batch", np.int32))}
            order = np.lexsort((cols["neuron"], cols["batch"], cols["step"]))
            out.update({f"{base}/{f}": v[order] for f, v in cols.items()})
        return out

    def end_run(self, completed: bool, attrs: dict[str, Any], outcome: str | None = None) -> None:
        # a failed process joins no collective: the others stop in theirs with an error
        try:
            if outcome != "failed":
                self.collect()
        except Exception:
            if self.inner is not None:
                self.inner.end_run(False, attrs, "failed")
            raise
        if self.inner is not None:
            self.inner.end_run(completed, attrs, outcome)

    def close(self) -> None:
        if self.inner is not None and hasattr(self.inner, "close"):
            self.inner.close()
