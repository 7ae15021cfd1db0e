"""Neuromodulated gating: a population's *mode*, a per-neuron input gain and threshold offset.

A gated population (``net.population(..., gated=True)``) has two per-neuron values in
force at every step, and a set of named *modes* (vectors of both) to switch between:

* **gain** ``g_j >= 0`` multiplies the synaptic input the neuron receives: each event
  adds ``w * g_j`` (from a graded unit ``r * (w * g_j)``) to its receptor. Injected
  current (``i_ext``) is the experimenter's drive and is not scaled (so a gated
  neuron's loop reads one more value, its offset: measured in
  ``benchmarks/gating_speed.py``).
* **offset** ``theta_j`` raises the neuron's threshold. A spiking model fires through
  ``spike(x)`` (``x >= 0``); a gated neuron fires on ``spike(x - theta_j)``, so for a
  LIF ``v >= v_thresh + theta_j``. A model whose threshold also acts elsewhere (the
  snnTorch neurons' reset reads the last step's membrane against it) names that update
  argument (``threshold_argument``), and the offset is added to it instead. A graded unit has no threshold; with
  ``activity_gate`` ``"soft"`` or ``"hard"`` it sends ``r * s((r - theta_j) / T)`` with
  ``s`` the logistic function (soft, temperature ``T``) or the unit step (hard:
  ``r`` where ``r > theta_j``, else 0), as TauGate's smooth gate during training and
  its hardened gate at inference; its state ``r`` stays the ungated ``phi(z)``.

The values in force are set by code (:meth:`Gate.use` a named mode, or :meth:`Gate.set`),
or by a neuromodulator inside the step (:meth:`Gate.drive`): with signal value ``m``
(a scalar, one per neuron, or one per sample and neuron) the gate is
``low + m * (high - low)`` of two named modes, computed with the neuron update (from
the signal's value as it stands then: the modulators update later in a step, so that
is the previous step's); that gain scales synaptic input from the next step's
deliveries on. On numba, a signal the step itself changes (a decaying or spike-driven
modulator, a derived signal) is followed inside the compiled step, every step; a
signal only Python writes cannot change during a compiled stretch, so the gate is
computed between stretches, where the signal changed, and then costs what a mode costs
(with the same values: both backends compute it with :meth:`Gate.apply_drive`). No weight changes when a mode changes; the mode
in force is part of the network's description, so a switch between runs is recorded in
the log at the step it took effect.

Which parts are whose: the threshold-and-gain mode, the smooth gate hardened at
inference and the per-neuron parameter budget are TauGate's (Ghasemlou 2026, from its
abstract); where they act (the gain on the summed input, the offset inside ``spike``,
the graded gate on the sent value), the modulator interpolating two modes and the
spiking form are ours (see ``shared/research/algorithms.md`` section 5).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from neurosim.kernel import TORCH_MATH, bind, kernel, where
from neurosim.models.graded import stable_sigmoid

if TYPE_CHECKING:
    from neurosim.population import Population

#: the graded activity gates (``Gate.activity_gate``)
ACTIVITY_GATES = ("none", "soft", "hard")


@kernel
def soft_activity_gate(r, offset, temperature):
    """What a graded unit sends under the soft gate: ``r * sigmoid((r - offset) / T)``."""
    return r * stable_sigmoid((r - offset) / temperature)


@kernel
def hard_activity_gate(r, offset):
    """What a graded unit sends under the hard gate: ``r`` where ``r - offset > 0``, else 0."""
    return where(r - offset > 0.0, r, 0.0 * r)


class Gate:
    """The gate of one population (``pop.gate``); see :mod:`neurosim.gating`.

    Change the gate in force through :meth:`use`, :meth:`set`, :meth:`drive` or trained
    parameters, not by writing ``gain``/``offset`` in place: deliveries keep weights
    pre-scaled by the gain and recompute them when one of those says the gate changed.
    Call :meth:`drive` between runs, not from a callback during one.
    """

    def __init__(self, pop: "Population") -> None:
        self.pop = pop
        shape, kw = (pop.batch, pop.n), dict(dtype=pop.dtype, device=pop.device)
        #: the gain and offset in force, ``(batch, n)`` (a mode fills every row alike)
        self.gain = torch.ones(shape, **kw)
        self.offset = torch.zeros(shape, **kw)
        self.modes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: the mode in force: a name, ``"custom"`` after :meth:`set`, or ``"driven"``
        self.mode = "neutral"
        self.modes["neutral"] = (torch.ones(pop.n, **kw), torch.zeros(pop.n, **kw))
        self._activity_gate = "none"
        self._temperature = 1.0
        #: (modulator name, low mode, high mode) while a modulator drives the gate
        self.driver: tuple[str, str, str] | None = None
        self._driven: dict[str, torch.Tensor] = {}
        self.signal: torch.Tensor | None = None  # the driving modulator's value (set when run)
        #: the driving signal is written only by Python (not by the step): numba then
        #: computes the gate between compiled stretches, where it changed (:meth:`follow_held_signal`)
        self.held = False
        #: numba: a held signal's new gain, in force after one step (see follow_held_signal)
        self.pending_gain: torch.Tensor | None = None
        #: numba, a held signal: the driving signal each batch row's gate was last computed
        #: from, ``(batch, signal size)``; NaN (compute again) after any change made from Python. (Compared
        #: by value: a signal set from 0.0 to -0.0 is not computed again, so a mode value of
        #: -0.0 may keep the other sign of zero; no spike or state can tell.)
        self.last_signal: torch.Tensor | None = None
        #: counts changes of the gate in force (cached gain-scaled weights follow it)
        self.version = 0
        self.on_change: Any = None  # set by the network: a structural change to compile
        self.gain_parameter: torch.nn.Parameter | None = None  # see make_trainable
        self.offset_parameter: torch.nn.Parameter | None = None

    # -- what is in force -----------------------------------------------------------------
    def add_mode(self, name: str, gain: Any = 1.0, offset: Any = 0.0) -> None:
        """Store a named mode: ``gain`` and ``offset``, each a number or one value per neuron."""
        if not isinstance(name, str) or not name or name in ("custom", "driven"):
            raise ValueError(f"population '{self.pop.name}': a mode name must be a non-empty "
                             f"string other than 'custom' and 'driven', got {name!r}")
        self.modes[name] = (self._vector("gain", gain), self._vector("offset", offset))

    def use(self, name: str) -> None:
        """Put the named mode in force (stops a modulator's drive). No weight changes."""
        gain, offset = self._mode(name)
        self._stop_drive()
        self._put(gain, offset)
        self.mode = name

    def set(self, gain: Any = None, offset: Any = None) -> None:
        """Put an unnamed gain and/or offset in force (numbers or per-neuron values); a
        value not given stays (after a modulator's drive: the drive's low mode's)."""
        self._stop_drive()
        self._put(None if gain is None else self._vector("gain", gain),
                  None if offset is None else self._vector("offset", offset))
        self.mode = "custom"

    def _put(self, gain: torch.Tensor | None, offset: torch.Tensor | None) -> None:
        self._written()
        with torch.no_grad():
            for value, array, param in ((gain, self.gain, self.gain_parameter),
                                        (offset, self.offset, self.offset_parameter)):
                if value is not None:
                    array.copy_(value.expand_as(array))
                    if param is not None:
                        param.copy_(value)

    # -- training by gradient -------------------------------------------------------------
    def make_trainable(self) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
        """Expose the gain and offset in force as ``nn.Parameter`` s of ``n`` values each
        (``gain_parameter``, ``offset_parameter``; also in ``net.parameters()``), which
        :meth:`neurosim.Network.unroll` differentiates (a spiking population's offset
        through its surrogate spike derivative). Runs use their current values;
        :meth:`store_mode` keeps them as a named mode; :meth:`use` writes a mode into them."""
        if self.driver is not None:
            raise ValueError(f"population '{self.pop.name}': a gate driven by a modulator is "
                             "not trainable; gate.use a mode first")
        if self.gain_parameter is None:
            self.gain_parameter = torch.nn.Parameter(self.gain[0].clone())
            self.offset_parameter = torch.nn.Parameter(self.offset[0].clone())
            self.mode = "custom"
        return self.gain_parameter, self.offset_parameter

    def store_mode(self, name: str) -> None:
        """Keep the gain and offset in force (the trained parameters, if any) as mode ``name``."""
        gain, offset = self.in_force()
        self.add_mode(name, gain.detach().reshape(-1, self.pop.n)[0],
                      offset.detach().reshape(-1, self.pop.n)[0])
        self.mode = name

    def freeze(self) -> None:
        """Stop training: drop the parameters; their values stay in force."""
        self.sync()
        self.gain_parameter = self.offset_parameter = None

    def sync(self) -> None:
        """Before a run: the trained parameters' values are the gate in force."""
        if self.gain_parameter is not None and self.driver is None:
            gain, offset = (v.detach() for v in self.in_force())
            if torch.equal(self.gain[0], gain) and torch.equal(self.offset[0], offset) \
                    and bool((self.gain == self.gain[0]).all()) and bool((self.offset == self.offset[0]).all()):
                return  # unchanged: no new version (nor a new network description in the log)
            self._written()
            with torch.no_grad():
                self.gain.copy_(gain.expand_as(self.gain))
                self.offset.copy_(offset.expand_as(self.offset))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """What a state file keeps: the gain and offset in force, and trained parameters."""
        out = {"gate.gain": self.gain, "gate.offset": self.offset}
        if self.gain_parameter is not None:
            out["gate.gain_parameter"] = self.gain_parameter.data
            out["gate.offset_parameter"] = self.offset_parameter.data
        return out

    def loaded(self) -> None:
        """After a state was loaded into the arrays: a new gate in force."""
        self._written()
        if self.driver is None:
            self.mode = "custom"

    def in_force(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The gain and offset a differentiable step uses: the parameters (with their
        graph) when trainable, the gain clipped at 0 (an optimiser may push it below:
        a neuron can be silenced, not inverted), else the arrays in force."""
        if self.gain_parameter is not None and self.driver is None:
            return self.gain_parameter.clamp_min(0.0), self.offset_parameter
        return self.gain, self.offset

    def drive(self, modulator: str, low: str, high: str) -> None:
        """Let modulator ``modulator`` set the gate at every step: ``low + m * (high - low)``
        of the named modes, computed in the step (no Python per step)."""
        if self.gain_parameter is not None:
            raise ValueError(f"population '{self.pop.name}': a trainable gate cannot be driven "
                             "by a modulator (keep the trained values with gate.store_mode, then "
                             "gate.freeze())")
        if not isinstance(modulator, str):
            raise TypeError(f"population '{self.pop.name}': drive takes a modulator's name, "
                            f"got {modulator!r}")
        lo, hi = self._mode(low), self._mode(high)
        self._driven = {"low_gain": lo[0].clone(), "span_gain": hi[0] - lo[0],
                        "low_offset": lo[1].clone(), "span_offset": hi[1] - lo[1]}
        self.driver = (modulator, low, high)
        self.mode = "driven"
        self._compute_again()
        self._changed()

    def _stop_drive(self) -> None:
        if self.driver is not None:  # the low mode is in force again (alike for every sample)
            low_gain, low_offset = self._driven["low_gain"], self._driven["low_offset"]
            self.driver, self._driven = None, {}
            self._put(low_gain, low_offset)
            self._changed()

    # -- the graded activity gate ---------------------------------------------------------
    @property
    def activity_gate(self) -> str:
        """Graded populations: ``"none"`` (default), ``"soft"`` or ``"hard"``."""
        return self._activity_gate

    @activity_gate.setter
    def activity_gate(self, kind: str) -> None:
        if kind not in ACTIVITY_GATES:
            raise ValueError(f"population '{self.pop.name}': activity_gate must be one of "
                             f"{ACTIVITY_GATES}, got {kind!r}")
        if kind != "none" and not self.pop.graded:
            raise ValueError(f"population '{self.pop.name}': activity_gate is for graded "
                             f"populations; a spiking one's offset raises its threshold")
        if kind != self._activity_gate:
            self._activity_gate = kind
            self._changed()

    @property
    def temperature(self) -> float:
        """The soft activity gate's temperature ``T`` (> 0)."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = float(value)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"population '{self.pop.name}': temperature must be > 0, got {value}")
        self._temperature = value

    # -- saving ---------------------------------------------------------------------------
    def save_modes(self, path: str) -> None:
        """Write the named modes to ``path`` (``.npz``), atomically: a crash leaves the
        previous file whole."""
        arrays = {}
        for name, (gain, offset) in self.modes.items():
            arrays[f"gain/{name}"] = gain.cpu().numpy()
            arrays[f"offset/{name}"] = offset.cpu().numpy()
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load_modes(self, path: str) -> list[str]:
        """Add the modes saved in ``path`` (checked like :meth:`add_mode`); returns their names."""
        with np.load(path) as data:
            names = sorted(k.split("/", 1)[1] for k in data.files if k.startswith("gain/"))
            loaded = {name: (data[f"gain/{name}"], data[f"offset/{name}"]) for name in names}
        for name, (gain, offset) in loaded.items():
            if name != "neutral":
                self.add_mode(name, gain, offset)
        return names

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "modes": sorted(self.modes),
                               "trainable": self.gain_parameter is not None}
        if self.driver is None and self.gain_parameter is None:
            out["version"] = self.version  # new values in force: a new description (the log)
        if self.driver is not None:
            out["driven_by"] = {"modulator": self.driver[0], "low": self.driver[1], "high": self.driver[2]}
        if self.pop.graded:
            out["activity_gate"] = self._activity_gate
            out["temperature"] = self._temperature
        return out

    @property
    def per_sample(self) -> bool:
        """True when samples may have different gates (a per-sample driving signal)."""
        return self.driver is not None and self.signal is not None and self.signal.dim() == 2

    # -- what backends read ---------------------------------------------------------------
    def arrays(self) -> dict[str, torch.Tensor]:
        """``gate.gain``, ``gate.offset`` ``(batch, n)`` and, while driven, ``gate.low_gain``,
        ``gate.span_gain``,
        ``gate.low_offset``, ``gate.span_offset`` ``(n,)`` and ``gate.signal``, the
        modulator's value (``(1,)``, ``(n,)`` or ``(batch, n)``)."""
        out = {"gate.gain": self.gain, "gate.offset": self.offset}
        out.update({f"gate.{k}": v for k, v in self._driven.items()})
        if self.driver is not None and self.signal is not None:
            # the driving signal, () -> (1,) so that compiled code indexes it alike
            out["gate.signal"] = self.signal.reshape(1) if self.signal.dim() == 0 else self.signal
        return out

    def _last_signal_for(self, signal: torch.Tensor) -> torch.Tensor:
        """:attr:`last_signal`, made anew (all NaN) when the signal's size or type changed."""
        shape = (self.pop.batch, signal.shape[-1])
        last = self.last_signal
        if last is None or tuple(last.shape) != shape or last.dtype != signal.dtype or last.device != signal.device:
            with torch.inference_mode(False):  # (a first run inside inference_mode: still writable later)
                last = self.last_signal = torch.full(shape, math.nan, dtype=signal.dtype, device=signal.device)
        return last

    def structure(self) -> tuple[Any, ...]:
        """What compiled code bakes in (a change recompiles)."""
        signal = None if self.signal is None or self.driver is None else tuple(self.signal.shape)
        return (self.driver is not None, signal, self.held, self._activity_gate)

    def follow_held_signal(self) -> bool:
        """numba, before each compiled stretch: a gate driven by a held signal (one only
        Python writes, so it cannot change during a stretch) is computed here with
        :meth:`apply_drive`, as the torch step computes it, where the signal differs from
        the one it was last computed from (or after any change of the gate made from
        Python). The compiled step then treats it as a mode: no per-neuron gate work, and
        deliveries pre-scaled by a gain that all samples share. Returns whether it was
        computed again."""
        if self.driver is None or not self.held or self.signal is None:
            return False
        signal = self.signal.reshape(1) if self.signal.dim() == 0 else self.signal
        last = self._last_signal_for(signal)
        if torch.equal(last, signal.expand_as(last)):  # (NaN: never equal, so computed)
            return False
        gain, offset = self.driven_values(self.signal)
        # as the torch step: the offset acts in this step's update, the gain from the next
        # step's deliveries on (this step's were made with the old one): the backend runs
        # one step, then settles the gain (settle_gain)
        self.offset.copy_(offset)
        self.pending_gain = gain
        last.copy_(signal.expand_as(last))
        return True

    def settle_gain(self) -> None:
        """Put in force the gain :meth:`follow_held_signal` computed (after its first step)."""
        if self.pending_gain is not None:
            self.version += 1
            self.gain.copy_(self.pending_gain)
            self.pending_gain = None

    def apply_drive(self, value: torch.Tensor) -> None:
        """Torch: set the gate in force from the driving signal's ``value`` (shape ``()``,
        ``(n,)`` or ``(batch, n)``), as the compiled step does: ``low + m * span``."""
        gain, offset = self.driven_values(value)
        # (no NaN in last_signal: these are the values a compiled step computes from this
        # signal, so one that last used another computes again, and one that used this
        # one holds them already)
        self.version += 1
        self.gain.copy_(gain)
        self.offset.copy_(offset)

    def drive_now(self, value: torch.Tensor) -> None:
        """Python sets a driven gate from the signal's ``value`` now (``reset_state``, a
        differentiable step): :meth:`apply_drive`, and numba computes it again before its
        next stretch (the signal it last computed from may come back, A -> B -> A)."""
        self.apply_drive(value)
        self._compute_again()

    def driven_values(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gain and offset a driving signal's ``value`` sets: ``low + m * span`` (new
        tensors, shaped by broadcasting)."""
        d = self._driven
        return d["low_gain"] + value * d["span_gain"], d["low_offset"] + value * d["span_offset"]

    def check_driver(self, modulators: Any) -> None:
        """Refuse a driving modulator that does not exist or has the wrong size."""
        if self.driver is None:
            return
        name = self.driver[0]
        if name not in modulators:
            known = ", ".join(repr(m.name) for m in modulators) or "none"
            raise ValueError(f"population '{self.pop.name}': its gate is driven by modulator "
                             f"{name!r}, which is not registered (registered: {known})")
        mod = modulators[name]
        size = mod.size
        if mod.per_sample and mod.value.shape[0] != self.pop.batch:
            raise ValueError(f"population '{self.pop.name}': modulator {name!r} holds "
                             f"{mod.value.shape[0]} samples, the population {self.pop.batch}")
        if size is not None and size != self.pop.n:
            raise ValueError(f"population '{self.pop.name}': modulator {name!r} has {size} values "
                             f"but the population has {self.pop.n} neurons (use a scalar signal "
                             f"or one of size {self.pop.n})")
        self.signal = mod.value
        self.held = not mod.written_by_the_step

    # -- checks ---------------------------------------------------------------------------
    def _mode(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self.modes:
            raise KeyError(f"population '{self.pop.name}': no mode {name!r}; its modes: "
                           f"{', '.join(sorted(self.modes))} (add one with gate.add_mode)")
        return self.modes[name]

    def _vector(self, what: str, value: Any) -> torch.Tensor:
        pop = self.pop
        t = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                                       dtype=np.float64))
        if t.dim() == 0:
            t = t.expand(pop.n)
        if t.shape != (pop.n,):
            raise ValueError(f"population '{pop.name}': a mode's {what} must be a number or "
                             f"{pop.n} values (one per neuron), got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"population '{pop.name}': a mode's {what} must be finite, got NaN or inf")
        if what == "gain" and bool((t < 0).any()):
            raise ValueError(f"population '{pop.name}': a mode's gain must be >= 0 (it scales "
                             f"the input), got {float(t.min()):g}")
        return t.to(dtype=pop.dtype, device=pop.device).contiguous()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _written(self) -> None:
        """The gate in force was written from Python: a new version, and a compiled step
        computes a driven gate again at its next step."""
        self.version += 1
        self._compute_again()

    def _compute_again(self) -> None:
        """A compiled step computes a driven gate again at its next step."""
        self.pending_gain = None  # (a gain computed before this change made from Python is stale)
        if self.last_signal is not None:
            self.last_signal.fill_(math.nan)


# -- the torch step of a gated population (the compiled one is generated alike) ------------
def delivered(weight: torch.Tensor, pre: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
    """What dense delivery adds: ``pre @ weight``, each term ``pre * (w * gain)`` for a
    gated postsynaptic population (``gain`` ``(n_post,)``, or ``(batch, n_post)`` when it
    differs between samples)."""
    if gain is None:
        return pre @ weight
    if gain.dim() == 1:
        return pre @ (weight * gain)
    return torch.bmm(pre.unsqueeze(1), weight.unsqueeze(0) * gain.unsqueeze(1)).squeeze(1)


def delivery_gain(gate: Gate | None, gain: torch.Tensor | None = None) -> torch.Tensor | None:
    """The gain deliveries to ``gate``'s population apply: ``(n,)`` when every sample has
    the same (``gain`` in force, default the gate's arrays), else ``(batch, n)``."""
    if gate is None:
        return None
    gain = gate.gain if gain is None else gain
    if gain.dim() == 1 or not gate.per_sample:
        return gain if gain.dim() == 1 else gain[0]
    return gain


def gate_in_force(gate: Gate, modulators: Any, drive: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The gain and offset a differentiable step uses, as tensors no later in-place write
    touches (a graph may hold them): the trainable parameters; else copies of the arrays
    in force; a driven gate's, with ``drive``, computed from its signal now (and written
    to its arrays, as a normal step does)."""
    if gate.driver is not None:
        if not drive:
            return gate.gain.clone(), gate.offset.clone()
        gain, offset = gate.driven_values(modulators[gate.driver[0]].value)
        gate.version += 1  # (the values a compiled step computes from this signal: see apply_drive)
        gate._compute_again()  # (numba: a held signal it last computed from may come back)
        with torch.no_grad():
            gate.gain.copy_(gain)
            gate.offset.copy_(offset)
        return gain, offset
    gain, offset = gate.in_force()
    return (gain, offset) if gate.gain_parameter is not None else (gain.clone(), offset.clone())


def threshold_array(pop: "Population") -> str | None:
    """The name in ``pop.arrays()`` of the update argument its gate's offset is added to
    (the model's ``threshold_argument``), or None when the offset shifts ``spike()``."""
    name = getattr(type(pop.model), "threshold_argument", None)
    return None if name is None else f"const.{name}"


def offset_math(math: Any, offset: Callable[[], torch.Tensor]) -> dict[str, Any]:
    """``math`` whose ``spike``/``spike_above`` test ``x - offset()`` (a threshold offset
    read when the update runs)."""
    spike, spike_above = math["spike"], math["spike_above"]
    return {**math, "spike": lambda x: spike(x - offset()),
            "spike_above": lambda x: spike_above(x - offset())}


_SOFT = bind(soft_activity_gate, TORCH_MATH)
_HARD = bind(hard_activity_gate, TORCH_MATH)


def sent_activity(gate: Gate, r: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """What a graded unit with an activity gate sends (``offset``: default the gate's in force)."""
    offset = gate.offset if offset is None else offset
    if gate.activity_gate == "soft":
        return _SOFT(r, offset, gate.temperature)
    return _HARD(r, offset)
