"""The run loop of a network: what :meth:`neurosim.Network.run` does.

:class:`Runner` advances its network's backend in slices of steps, writes what the
monitors recorded to the log once per chunk, takes Ctrl-C between slices, and keeps what
consecutive runs of one network share (when the first began, the latest step logged,
whether the logged steps still increase, and why the network refuses to run after a
run that stopped mid-step). It sees the network through :class:`neurosim.views.RunHost`,
so it does not import :mod:`neurosim.network` (which builds it).
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import json
import math
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.interrupts import DeferredInterrupt
from neurosim.specialize import zero_outputs
from neurosim.validation import is_real, is_whole, show
from neurosim.views import RunHost

#: aim for backend calls of about this many seconds: Ctrl-C takes effect between calls
RUN_SLICE_SECONDS = 0.2


class Runner:
    """Runs one network (``net._runner``); :meth:`run` is :meth:`neurosim.Network.run`."""

    def __init__(self, net: RunHost) -> None:
        self.net = net
        self.started_at: str | None = None  # when the first run began (the log's started_at)
        self.logged_until = 0  # the latest step any run has logged
        self.steps_sorted = True  # False once a run logs steps before logged_until
        self.halted: str | None = None  # why run() refuses, after a run stopped mid-step
        #: write log chunks on a thread while the run goes on (None: on CUDA runs)
        self.background_writes: bool | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._described: dict[str, Any] | None = None  # the last description, and its JSON
        self._described_json = ""

    def _built_in_inference(self) -> list[str]:
        """The populations whose state tensors were made inside ``torch.inference_mode``
        (a network built there)."""
        return [pop.name for pop in self.net.populations.values()
                if any(v.is_inference() for v in pop.state.values())
                or (getattr(pop, "history", None) is not None and pop.history.is_inference())]

    def _refuse_inference_tensors(self, backend: Any) -> None:
        """A network built inside ``torch.inference_mode`` holds inference tensors, which
        keep no version counter (the torch backend's caches read them) and may not be
        written outside it: refuse it on the torch backend before a step half runs. (numba
        writes its arrays through numpy and keeps no such caches.)"""
        if getattr(backend, "name", None) == "numba":
            return
        made_inside = self._built_in_inference()
        if made_inside:
            raise RuntimeError(
                f"population(s) {', '.join(made_inside)} were built inside torch.inference_mode(), "
                "whose tensors the torch backend cannot run (they keep no version counter and "
                "may not be written outside it): build the network outside inference_mode; a run "
                "inside it is fine, and a run builds no graph either way")

    def run(self, duration_ms: float | None = None, *, steps: int | None = None,
            progress: bool | None = None, profile: bool = False, backend: Any = None) -> None:
        """Advance the network by ``duration_ms`` or ``steps`` (see :meth:`neurosim.Network.run`),
        with ``backend`` (default: the network's; ``Network.unroll`` passes a torch one)."""
        net = self.net
        backend = net.backend if backend is None else backend
        if self.halted is not None:
            raise RuntimeError(self.halted)
        if torch.is_inference_mode_enabled() and not self._built_in_inference():
            # the arrays a run makes (rings, monitor buffers, the torch step's own) outlive
            # it, and torch lets an inference tensor be written only inside inference_mode:
            # make them as normal tensors, so that the network can run outside it later
            with torch.inference_mode(False):
                return self.run(duration_ms, steps=steps, progress=progress, profile=profile,
                                backend=backend)
        n_steps = self.steps_for(duration_ms, steps)
        net._prepare()
        self._refuse_inference_tensors(backend)
        if progress is None:
            progress = sys.stderr.isatty() and not os.environ.get("CI")
        compile_ = getattr(backend, "compile", None)
        if compile_ is not None:
            compile_(profile)  # before Ctrl-C is deferred: stopping a compilation loses nothing
        specs, static = [], {}
        start_step = net.clock.step
        for mon in net.monitors.values():
            for spec in mon.datasets():
                spec.attrs.setdefault("start_step", start_step)
                specs.append(spec)
            static.update(mon.static())
        self.started_at = self.started_at or _now()
        # a clock set back (load_state) appends earlier steps to the log: readers must
        # not assume the recorded steps increase
        self.steps_sorted = self.steps_sorted and start_step >= self.logged_until
        self.wait_for_writes()
        with DeferredInterrupt() as interrupt:
            net.log.begin_run(self.log_attrs(), specs, static, start_step)
            self._run_steps(backend, n_steps, interrupt, progress, profile)
        if interrupt.requested:
            raise KeyboardInterrupt(f"run interrupted at step {net.clock.step} ({net.clock.time_ms:g} ms); "
                                    f"the log holds every step before it and is marked incomplete; "
                                    f"run() again continues from there")

    def _run_steps(self, backend: Any, n_steps: int, interrupt: DeferredInterrupt, progress: bool,
                   profile: bool) -> None:
        """The stepping loop of :meth:`run`, between the log's begin_run and end_run."""
        net = self.net
        outcome = "failed"
        raised = False  # (sys.exc_info() would also see a caller's exception being handled)
        # (no bar at all without progress: a loop of one-step runs would build one per step)
        bar = tqdm(total=n_steps, unit="step", mininterval=0.5,
                   desc="unrolling" if getattr(backend, "unrolling", False) else "simulating",
                   leave=False) if progress else _NO_BAR
        # No spike takes effect sooner than min_delay steps, so spikes need exchanging
        # between processes only once per slice of min_delay steps. In one process
        # there is nothing to exchange and the slices merge up to the next chunk
        # boundary, so a compiled backend runs a whole chunk per call, or as much of
        # one as takes RUN_SLICE_SECONDS: Ctrl-C is looked at between calls.
        # a run on several processes (neurosim.distributed): every process advances by the
        # same slices and exchanges after each (the spikes of a partitioned run, the weight
        # changes of a data-parallel one), and they write the log together once per chunk
        exchange = getattr(net, "_exchange", None)
        slice_len = exchange.slice_steps(net) if exchange is not None else net._chunk_steps
        collect = getattr(net.log, "collect", None)
        # grows once the backend's speed is measured; a later run starts at the pace the
        # last one reached (short runs, e.g. one presentation each, then take one call)
        pace_key = (type(backend).__name__, getattr(backend, "unrolling", False), profile)
        paced = min(slice_len, self._paces.get(pace_key, 10)) if hasattr(self, "_paces") else min(slice_len, 10)
        if exchange is not None:
            paced = slice_len  # the same slices in every process, whatever each one's speed
        stopping = False  # (partitioned: set when any process was asked to stop)
        try:
            done, since_flush = 0, 0
            while done < n_steps and not (stopping if exchange is not None else interrupt.requested):
                if exchange is not None:  # (a data-parallel window ends at a fixed step)
                    slice_len = paced = exchange.slice_steps(net)
                k = min(slice_len, paced, n_steps - done, net._chunk_steps - since_flush)
                t0 = time.perf_counter()
                if exchange is not None:
                    exchange.before_slice()
                backend.advance(k, profile)
                if exchange is not None:
                    stopping = exchange.exchange(net.clock.step - k, k, interrupt.requested)
                seconds = time.perf_counter() - t0
                if exchange is None:
                    paced = max(1, min(slice_len, int(k * RUN_SLICE_SECONDS / max(seconds, 1e-6))))
                    if not hasattr(self, "_paces"):
                        self._paces = {}
                    self._paces[pace_key] = paced  # per engine and mode: their speeds differ
                done += k
                since_flush += k
                bar.update(k)
                if since_flush == net._chunk_steps:
                    self.flush()
                    if collect is not None:
                        collect()
                    since_flush = 0
            if stopping:
                interrupt.requested = True  # another process was asked to stop: so is this one
            end_run = getattr(exchange, "end_run", None)
            if end_run is not None:  # (every process, at the same step)
                end_run(net.clock.step - 1)
            self.flush()
            outcome = "interrupted" if interrupt.requested else "completed"
        except BaseException as exc:
            raised = True
            self.halted = (f"run: this network cannot run again: its previous run stopped with "
                           f"{type(exc).__name__}({exc}) at step {net.clock.step}, possibly halfway "
                           f"through a step, so its state is undefined. Build it again (load_state "
                           f"restores a state saved with save_state)")
            raise
        finally:
            bar.close()
            if hasattr(backend, "lists_current"):  # what happens before the next run is unknown
                backend.lists_current = False
            if outcome == "failed":
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - keep the original error
                    pass
            elif interrupt.requested:  # arrived while the last chunk was being written
                outcome = "interrupted"
            self.logged_until = max(self.logged_until, net.clock.step)
            write_error = None
            try:
                self.wait_for_writes()  # (the data first, then the record that says they are there)
            except Exception as exc:  # noqa: BLE001 - a chunk was not written: not completed
                write_error = exc
                if outcome == "completed":
                    outcome = "failed"
            net.log.end_run(outcome == "completed",
                            {"ended_at": _now(), "steps": net.clock.step,
                             "duration_ms": net.clock.time_ms, "steps_sorted": self.steps_sorted},
                            outcome)
            if write_error is not None and not raised:
                raise write_error

    def steps_for(self, duration_ms: float | None, steps: int | None) -> int:
        """The number of steps a run of ``duration_ms`` or ``steps`` takes (exactly one given)."""
        if (duration_ms is None) == (steps is None):
            raise ValueError("run: give exactly one of duration_ms or steps")
        if steps is not None:
            if not is_whole(steps) or steps < 0:
                raise ValueError(f"run: steps must be a non-negative integer, got {show(steps)}")
            return int(steps)
        if not is_real(duration_ms) or not math.isfinite(duration_ms) or duration_ms < 0:
            raise ValueError(f"run: duration_ms must be a non-negative, finite number of "
                             f"milliseconds, got {show(duration_ms)}")
        return int(round(float(duration_ms) / self.net.dt))

    def flush(self) -> None:
        """Write what the monitors recorded to the log, then check the state is finite.

        With :attr:`background_writes` (a CUDA run's default) the write goes to a writer
        thread and the run goes on: the GPU does not wait for compression and the disk.
        Writes stay in order, and each waits for the one before, so the log's count of
        flushed steps still follows its data; :meth:`wait_for_writes` comes before
        anything else touches the log."""
        net = self.net
        chunk: dict[str, np.ndarray] = {}
        for mon in net.monitors.values():
            chunk.update(mon.drain())  # (copies off the device: the buffers are reused)
        background = self.background_writes
        if background is None:  # (a run on several processes gathers its log in this thread)
            background = net.device.type == "cuda" and getattr(net.log, "collect", None) is None
        if background:
            self.wait_for_writes()  # (one write at a time, in order; its error raised here)
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neurosim-log")
            try:
                self._pending = self._writer.submit(net.log.append, chunk, net.clock.step)
            except RuntimeError:  # the interpreter is shutting down (a run from atexit)
                net.log.append(chunk, net.clock.step)
        else:
            net.log.append(chunk, net.clock.step)
        self.check_finite()  # after the append: the log keeps the steps up to the failure

    def wait_for_writes(self) -> None:
        """Wait until the writer thread has written every chunk handed to it (re-raising
        its error, if it had one)."""
        if self._pending is not None:
            try:
                self._pending.result()
            finally:  # (done or failed: a second Ctrl-C while waiting keeps it pending)
                if self._pending.done():
                    self._pending = None

    def check_finite(self) -> None:
        """Raise FloatingPointError naming the population (or projection) whose state
        or learned weights became NaN or inf.

        Called once per chunk (both backends keep state in the same tensors): one
        reduction per tensor and one host synchronisation, small next to a chunk's steps.
        Static weights are checked when set, so only projections whose rules change the
        weights are read here (weights an optimiser moves show up in the state they drive).
        """
        net = self.net
        owners = self._finite_owners()
        if not owners:
            return
        # a sum is finite only if every term is (a NaN or inf term makes it NaN or inf), and
        # so is a sum of sums: one sum per tensor and one host read clear the common case;
        # a non-finite total (perhaps an overflow of finite terms) is then looked into
        # element by element
        if math.isfinite(float(torch.stack([t.sum() for *_, t in owners]).sum())):
            return
        for owner, var, t in owners:
            bad = (~torch.isfinite(t)).nonzero()
            if len(bad):
                if var is None:
                    what = f"projection '{owner.name}': weights (changed by its learning rules)"
                    axes = ("synapse",) if owner.sparse else ("pre", "post")
                else:
                    what = f"population '{owner.name}' ({owner.model_name}): state variable '{var}'"
                    axes = ("batch row", "neuron")
                where = ", ".join(f"{axis} {int(i)}" for axis, i in zip(axes, bad[0]))
                raise FloatingPointError(
                    f"{what} became NaN or inf by step {net.clock.step} "
                    f"(t = {net.clock.time_ms:g} ms; first at {where}); check its parameters, "
                    "inputs and weights for values too large for the network's dtype")

    def _finite_owners(self) -> list[tuple[Any, str | None, torch.Tensor]]:
        """What :meth:`check_finite` reads: (population, variable, its tensor) and
        (projection, None, its weights)."""
        net = self.net
        # a rule with as_gradient changes .grad, not the weights: an optimiser does that
        plastic = {id(rule.projection): rule.projection for rule in net.rules.values()
                   if not rule.as_gradient}
        # (a variable the update writes as x * 0, an input cleared each step, is zeros after
        # it: what it received since shows in the variables it feeds, at the next update;
        # nor one declared finite wherever another variable is, which is checked)
        owners = [(pop, var, t) for pop in net.populations.values() for var, t in pop.state.items()
                  if var not in unchecked_variables(type(pop.model))]
        owners += [(proj, None, proj.weight) for proj in plastic.values()]
        return [item for item in owners if item[2].is_floating_point() and item[2].numel()]

    def log_attrs(self) -> dict[str, Any]:
        """The log's file attributes, written when a run begins."""
        from neurosim import __version__

        net = self.net
        return {"neurosim_version": __version__, "dt_ms": net.dt, "seed": net.seed,
                "backend": net.backend_name, "device": str(net.device), "batch": net.batch_global,
                "dtype": net.dtype_name, "network_json": self.network_json(),
                "started_at": self.started_at, "steps_sorted": self.steps_sorted,
                "torch_version": torch.__version__}


    def network_json(self) -> str:
        """``net.describe()`` as JSON; encoded again only when the description changed
        (a loop of short runs re-encodes nothing)."""
        described = self.net.describe()
        if described != self._described:
            # a copy: a description may hold an object's own list, changed later in place
            self._described, self._described_json = copy.deepcopy(described), json.dumps(described)
        return self._described_json


@functools.lru_cache(maxsize=None)
def unchecked_variables(model: type) -> frozenset[str]:
    """The state variables the finiteness check skips: those cleared each update
    (:func:`cleared_variables`) and those declared finite wherever another checked one
    is (``StateVariable.finite_with``)."""
    variables = getattr(model, "state_variables", {})
    cleared = cleared_variables(model)
    # (only onto a variable that is itself checked: no chains, no cycles)
    follows = {name for name, var in variables.items() if getattr(var, "finite_with", None) in variables
               and var.finite_with not in cleared
               and getattr(variables[var.finite_with], "finite_with", None) is None}
    return cleared | follows


@functools.lru_cache(maxsize=None)
def cleared_variables(model: type) -> frozenset[str]:
    """The state variables ``model``'s update writes as their own ``x * 0`` (zeros after
    each update, or NaN where they held NaN)."""
    names = list(getattr(model, "state_variables", {}))
    return frozenset(names[k] for k in zero_outputs(model.update, names) if k < len(names))


class _NoBar:
    """What the stepping loop calls on a progress bar, doing nothing."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


_NO_BAR = _NoBar()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
