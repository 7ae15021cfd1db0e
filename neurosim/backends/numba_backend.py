"""The numba backend: compiled CPU kernels, many steps per compiled call.

The network's state stays in the same CPU tensors the torch backend uses; the
compiled code works on numpy views of them, in place, so both backends share one
data model (state dicts, monitors, logs) and a network can switch between them.

A call to :meth:`NumbaBackend.advance` runs as few compiled calls as the Python
work between steps allows: user callbacks and changes of injected currents run
before a step, weight snapshots after one; every stretch of steps between such
points is one call of the generated ``run`` kernel, which loops over the steps
and the phases of the schedule with no Python in between. Built-in spike-timing
rules and dynamic modulators are part of that loop (``numba_rules``); a rule
without a compiled form runs from Python on its steps.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from neurosim.backends.numba_codegen import KernelPlan, generate
from neurosim.backends.numba_rules import NumpyViews, split_rules
from neurosim.monitors import SpikeMonitor
from neurosim.threads import stepping_threads

if TYPE_CHECKING:
    from neurosim.backends.view import SimulatedNetwork

PHASES = ("inputs", "deliver", "neurons", "traces", "rules", "monitors")
#: spike events buffered per spike monitor between flushes of the log
EVENT_BUFFER = 1 << 20


def cache_dir() -> str:
    """Where generated kernels and numba's compiled cache live.

    ``$NEUROSIM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neurosim`` or
    ``~/.cache/neurosim``; a temporary directory if none is writable.
    """
    root = os.environ.get("NEUROSIM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "neurosim")
    path = os.path.join(root, "numba")
    try:
        os.makedirs(path, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="neurosim-numba-")


def load_plan(plan: KernelPlan) -> Any:
    """Write the plan's source (once per distinct text) and import it."""
    name = f"neurosim_kernels_{plan.digest}"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(cache_dir(), name + ".py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(plan.source)
        os.replace(tmp, path)  # atomic: concurrent runs never import half a file
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class NumbaBackend:
    """Runs a network with numba-compiled kernels generated from its models.

    Only on the CPU. The first run of a network compiles its kernels (or loads
    them from the disk cache); ``compile_seconds`` and ``net.timings["compile"]``
    report that time separately from the simulation.
    """

    name = "numba"

    def __init__(self, net: "SimulatedNetwork") -> None:
        if net.device.type != "cpu":
            raise ValueError(f"the numba backend runs on the CPU; got device {net.device}")
        self.net = net
        self.compile_seconds: float | None = None
        self._plan: KernelPlan | None = None
        self._module: Any = None
        self._key: Any = None
        self._lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: (compiled rules, rules run from Python on their steps); None: all rules per step in Python
        self._rules: tuple[list[Any], list[Any]] | None = ([], [])
        self._warned_python = False
        self._views = NumpyViews()
        self._declared: dict[int, tuple[Any, dict[str, torch.Tensor]]] = {}
        #: the spike lists match the rings (a partitioned run's exchange, which writes the
        #: mirrors' rings and lists, says so); the next call then skips rebuilding them
        self.lists_current = False

    def invalidate(self) -> None:
        self._key = None

    def spike_lists(self, pop: Any) -> tuple[np.ndarray, np.ndarray]:
        """This backend's spike lists of ``pop``: ``cnt[slot, b]`` neurons spiked in row
        ``b`` at ring slot ``slot``, ascending in ``idx[slot, b]`` (current right after a
        compiled call; whoever writes them between calls sets :attr:`lists_current`)."""
        return self._arrays(pop, "cnt"), self._arrays(pop, "idx")

    # -- arrays the kernels work on ---------------------------------------------------
    def _arrays(self, obj: Any, name: str) -> Any:
        """The numpy array (or 0-d constant as a scalar) that ``obj`` declares as ``name``
        in its ``arrays()``; ``cnt``/``idx``: this backend's spike lists of a population."""
        if name in ("cnt", "idx"):
            shape = tuple(obj.history.shape)
            lists = self._lists.get(obj.name)
            if lists is None or lists[1].shape != shape:
                lists = (np.zeros(shape[:2], np.int64), np.zeros(shape, np.int32))
                self._lists[obj.name] = lists
            return lists[0] if name == "cnt" else lists[1]
        declared = self._declared.get(id(obj))
        if declared is None or declared[0] is not obj:
            declared = self._declared[id(obj)] = (obj, obj.arrays())
        value = declared[1][name]
        if name.startswith("const.") and value.dim() == 0:
            return value.numpy()[()]
        return self._views(value)

    def _layout_key(self) -> Any:
        net = self.net
        # what the generated code bakes in: constant shapes, and the rules' structural
        # settings (a rule's lr or amplitudes are read at every call instead)
        rules = tuple((name, type(r).__name__, r.every, r.as_gradient,
                       r.declared.structure() if r.declared is not None else None)
                      for name, r in net.rules.items())
        return (net.dtype, rules, tuple((p.name, tuple((k, tuple(v.shape)) for k, v in p.constants.items()),
                                         None if p.gate is None else p.gate.structure())
                                        for p in net.populations.values()))

    def compile(self, profile: bool = False) -> float:
        """Generate and compile the kernels if the network changed; returns seconds spent.

        With ``profile``, the kernels have one function per phase so that each can
        be timed from Python (a separate, slower variant).
        """
        key = (self._layout_key(), profile)
        if self._key == key and self._module is not None:
            return 0.0
        t0 = time.perf_counter()
        for mon in self.net.monitors.values():
            if isinstance(mon, SpikeMonitor) and "raster" in mon.arrays():  # keep events not yet flushed
                mon.use_event_buffer(EVENT_BUFFER)
        ft = "float32" if self.net.dtype_name == "float32" else "float64"
        self._rules = split_rules(self.net)
        notes = self.net._schedule.notes
        notes.clear()
        if self._rules is None:
            notes.append("numba: modulators, traces and rules run from Python after every step "
                         "(a rule is tensor code or writes gradients)")
        elif self._rules[1]:
            notes.append("numba: " + ", ".join(r.name for r in self._rules[1]) + " run(s) from "
                         "Python after the steps they apply on")
        if self._rules is None and not self._warned_python:
            slow = [name for name, r in self.net.rules.items() if r.declared is None or r.as_gradient]
            warnings.warn(f"rule(s) {', '.join(slow)} are Python tensor code (or write gradients) "
                          "and keep traces: the numba backend returns to Python after every step "
                          "for every rule, which is up to ~1000x slower; declare a recipe() to "
                          "run compiled (see neurosim.rules.recipe)", UserWarning, stacklevel=4)
            self._warned_python = True
        self._plan = generate(self.net, ft, self._arrays, profile=profile,
                              compiled_rules=None if self._rules is None else self._rules[0])
        self._module = load_plan(self._plan)
        self._module.run(self.net.clock.step, 0, True, *self._values())  # compiles (or loads) all
        self._key = key
        seconds = time.perf_counter() - t0
        self.compile_seconds = (self.compile_seconds or 0.0) + seconds
        self.net.timings["compile"] = self.net.timings.get("compile", 0.0) + seconds
        return seconds

    def _values(self) -> list[Any]:
        # each object's arrays() once per call: arrays may have been replaced since the last
        self._declared = {}
        return [getter() for _, getter in self._plan.args]

    # -- stepping ---------------------------------------------------------------------
    def _events_full(self) -> bool:
        return any(isinstance(mon, SpikeMonitor) and mon.event_buffer_full
                   for mon in self.net.monitors.values())

    def _python_actions_before(self, step: int) -> bool:
        """Run the inputs' and callbacks' Python before ``step``; True if a callback ran."""
        for inp in self.net.inputs:
            inp.apply(step)
        called = False
        for fn, every in self.net.callbacks:
            if step % every == 0:
                fn(self.net)
                called = True
        return called

    def _next_boundary(self, step: int, end: int) -> int:
        """First step after ``step`` before which (or after whose predecessor) Python must run."""
        net = self.net
        stop = end
        for inp in net.inputs:
            for s in (inp.start_step, inp.stop_step):
                if s is not None and step < s < stop:
                    stop = s
        for _, every in net.callbacks:
            stop = min(stop, (step // every + 1) * every)
        if self._rules is None:  # traces and rules run in Python every step
            stop = min(stop, step + 1)
        else:  # trace-free Python rules run after the steps they apply on
            for rule in self._rules[1]:
                stop = min(stop, -(-step // rule.every) * rule.every + 1)
        feeds = [rule.feed for rule in net.rules.values() if getattr(rule, "feed", None) is not None]
        if feeds:  # a stretch fits what is left of the eligibility feeds' buffers
            for feed in feeds:
                if feed.full:
                    feed.fold()
            stop = min(stop, step + min(f.capacity - int(f.fill[0]) for f in feeds))
        for mon in net.monitors.values():
            if mon.records_from_python and mon.active:  # (a paused one records nothing)
                m = -(-step // mon.every) * mon.every  # next snapshot step >= step
                stop = min(stop, m + 1)
        return stop

    def advance(self, n_steps: int, profile: bool) -> None:
        # thread counts that do not collapse on a busy machine (see neurosim.threads)
        with stepping_threads(self.net.threads, self.net.parallel):
            self._advance(n_steps, profile)

    def _advance(self, n_steps: int, profile: bool) -> None:
        self.compile(profile)
        net = self.net
        step, end = net.clock.step, net.clock.step + n_steps
        mod = self._module
        actions_due = True
        # the spike lists match the rings only right after a compiled call, and then only
        # if Python wrote no ring since, or wrote the lists too (a partitioned run's exchange)
        lists_current, self.lists_current = self.lists_current, False
        while step < end:
            if actions_due and self._python_actions_before(step):
                # a callback may change what the kernels bake in (set_parameters turning a
                # scalar into an array): then compile again, as the next run would
                self.compile(profile)
                mod = self._module
                lists_current = False  # (and may have changed any state)
            rebuild, lists_current = not lists_current, False
            stop = self._next_boundary(step, end)
            # gates driven by held signals, computed here (then run as modes); a new gain
            # comes in force after one step, as on torch
            gates = [pop.gate for pop in net.populations.values() if pop.gate is not None]
            for gate in gates:
                gate.follow_held_signal()
            if any(gate.pending_gain is not None for gate in gates):
                stop = min(stop, step + 1)
            values = self._values()
            if profile:
                mod.run(step, 0, True, *values)  # rebuild the spike lists
                timings = net.timings
                for t in range(step, stop):
                    if self._events_full():
                        stop = t
                        break
                    for phase in PHASES:
                        t0 = time.perf_counter()
                        getattr(mod, f"phase_{phase}")(t, step, *values)
                        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - t0
            else:
                stop = step + mod.run(step, stop - step, rebuild, *values)
            for rule in net.rules.values():  # a feed the stretch filled is folded now, as torch does
                if getattr(rule, "feed", None) is not None and rule.feed.full:
                    rule.feed.fold()
            if stop == step:  # a spike event buffer is full: write it to the log, then resume
                net._flush()
                actions_due = False  # this step's Python actions already ran
                continue
            for gate in gates:
                gate.settle_gain()
            actions_due = True
            for pop in net.populations.values():
                pop.last_step = stop - 1  # before the Python rules, which read pop.spikes
            if self._rules is None:
                net.after_step_python(stop - 1)
            else:
                for rule in self._rules[1]:
                    rule.apply(stop - 1)  # returns at once unless it is one of its steps
            for mon in net.monitors.values():
                if mon.active:
                    mon.recorded_steps(step, stop)
            net.clock.step = stop
            step = stop
