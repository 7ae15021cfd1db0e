"""The rule recipe: what a learning rule declares, from which every backend derives its code.

A rule is declared once, as data plus small branch-free *hooks* (plain functions
of per-element values, written with the same math as neuron models: arithmetic,
comparisons, ``exp`` and ``where`` from :mod:`neurosim.kernel`). Each backend
derives its own code from the declaration: the torch backend evaluates the hooks
on whole tensors (dense or CSR synapses), the numba backend copies their source
into its event-driven loops. No backend keeps a hand-written twin of a rule.

What a rule declares (:class:`Recipe`):

* ``traces``: exponential traces of the presynaptic spikes (as they arrive at the
  synapses) or of the postsynaptic spikes, one value per neuron and batch row;
* ``neuron_state``: per-neuron variables of the rule shared by the batch (e.g.
  BCM's sliding threshold), updated every step to the batch mean of a hook;
* ``eligibility``: a per-synapse eligibility trace (time constant in ms) that the
  event hooks feed instead of the weight, turned into weight changes by ``gate``;
* ``signals``: neuromodulators the hooks read, by hook argument name.

The hooks, evaluated per synapse ``(i, j)`` and batch row ``b`` (all optional):

* ``on_pre``: the change when a presynaptic spike arrives (row ``b`` of ``i``);
* ``on_post``: the change when the postsynaptic neuron fires;
* ``per_step``: a change every application step, spikes or not (rate rules); with
  ``eligibility``, a term added to the eligibility every step (after the event
  terms), e.g. e-prop's presynaptic trace times a postsynaptic pseudo-derivative;
* ``gate``: with ``eligibility``, the weight change from the eligibility ``e``;
* ``column``: a per-synapse value summed into ``post_sum`` per postsynaptic neuron;
* ``on_apply``: the new weight from the old one ``w`` and the batch-summed change
  ``d`` (default ``w + d``); it sees no per-row values.

A hook's arguments are looked up by name: ``w`` (the weight), ``e``, ``d``,
``post_sum``, a trace's name (its value after this step's spikes) or its name
with ``_before`` (decayed, before this step's spikes), a neuron-state name,
``pre_<var>`` / ``post_<var>`` (a state variable of the pre- or postsynaptic
population, e.g. ``post_v``), a signal's argument name, and otherwise a float
attribute of the rule (read at every run, so ``rule.a_plus = ...`` takes effect;
``lr`` is the rule's :attr:`~neurosim.rules.Rule.effective_lr`).

The order of the sums is part of the definition, so that every backend gives the
same bits: per synapse, add the ``on_pre`` term of each batch row in order where
the presynaptic spike arrived in that row, then the ``on_post`` term of each row
where the postsynaptic neuron fired, then the ``per_step`` term of each row (a
per-sample eligibility takes only its own row's terms). The new weight is
``on_apply(w, d)``, clipped to ``[w_min, w_max]`` where it changed, times the
projection's mask.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

#: the hooks of a recipe, in the order their names are listed in schedules
HOOKS = ("on_pre", "on_post", "per_step", "gate", "column", "on_apply")
#: hooks evaluated per batch row (the others see no per-row values)
ROW_HOOKS = ("on_pre", "on_post", "per_step", "gate")


@dataclass(frozen=True)
class Trace:
    """An exponential spike trace: ``x <- x exp(-dt/tau)``, then ``+1`` (``mode="all"``)
    or ``=1`` (``mode="nearest"``) at the side's spikes.

    Args:
        name: the hook argument name of its value (``<name>_before``: before this step's spikes).
        side: ``"pre"`` (spikes as they arrive at the synapses) or ``"post"``.
        tau_ms: time constant (ms).
        mode: ``"all"`` or ``"nearest"``.
    """

    name: str
    side: str
    tau_ms: float
    mode: str = "all"

    def __post_init__(self) -> None:
        if self.side not in ("pre", "post"):
            raise ValueError(f"trace {self.name!r}: side must be 'pre' or 'post', got {self.side!r}")
        if self.mode not in ("all", "nearest"):
            raise ValueError(f"trace {self.name!r}: mode must be 'all' or 'nearest', got {self.mode!r}")
        if not (math.isfinite(self.tau_ms) and self.tau_ms > 0):
            raise ValueError(f"trace {self.name!r}: tau_ms must be a positive number, got {self.tau_ms!r}")


@dataclass(frozen=True)
class NeuronState:
    """A per-neuron variable of the rule, shared by the batch.

    Every step (after the traces) it becomes the batch mean of ``update``, a hook
    evaluated per batch row that may read the variable itself by ``name``.
    """

    name: str
    side: str
    initial: float
    update: Callable[..., Any]


@dataclass(frozen=True)
class Recipe:
    """Everything a backend needs to run a rule (see the module docstring)."""

    traces: tuple[Trace, ...] = ()
    on_pre: Callable[..., Any] | None = None
    on_post: Callable[..., Any] | None = None
    per_step: Callable[..., Any] | None = None
    gate: Callable[..., Any] | None = None
    column: Callable[..., Any] | None = None
    on_apply: Callable[..., Any] | None = None
    neuron_state: tuple[NeuronState, ...] = ()
    #: eligibility time constant (ms); None: the hooks change the weight directly
    eligibility: float | None = None
    #: hook argument name -> modulator name
    signals: dict[str, str] = field(default_factory=dict)
    #: the name of a presynaptic trace that ``per_step`` is linear in: the term is that
    #: trace times a factor reading no other presynaptic value (e-prop's ``x_i psi_j``), a
    #: promise (checked as far as the hook's arguments go) that lets compiled loops skip
    #: rows where the trace is 0 and the eligibility be folded by matrix products
    per_step_factor: str | None = None
    #: a promise that ``gate`` is ``e`` times a factor that reads no ``e``, weight or
    #: presynaptic value (e.g. ``lr * m * e``): a change can then be made straight from a
    #: folded feed's factors, without the per-sample eligibility (see eligibility_feed)
    gate_scales_e: bool = False

    def hooks(self) -> dict[str, Callable[..., Any]]:
        return {name: getattr(self, name) for name in HOOKS if getattr(self, name) is not None}

    @property
    def event_driven(self) -> bool:
        """Only synapses touched by a spike can change (no per-step, column or gate hooks)."""
        return (self.per_step is None and self.column is None and self.eligibility is None
                and self.on_apply is None)

    def structure(self) -> tuple[Any, ...]:
        """What generated code bakes in: hook functions, trace modes and sides, shapes of use."""
        def ident(fn: Callable[..., Any] | None) -> str | None:
            return None if fn is None else f"{fn.__module__}.{fn.__qualname__}"
        return (self.per_step_factor, self.gate_scales_e, tuple((t.name, t.side, t.mode) for t in self.traces),
                tuple(ident(getattr(self, h)) for h in HOOKS),
                tuple((s.name, s.side, ident(s.update)) for s in self.neuron_state),
                self.eligibility is not None, tuple(sorted(self.signals.items())))


@dataclass(frozen=True)
class Argument:
    """Where a hook argument comes from.

    kind: ``w``, ``e``, ``d``, ``post_sum``, ``trace`` (key: (name, "value"|"before")),
    ``state`` (key: neuron-state name), ``neuron`` (key: (side, variable)),
    ``signal`` (key: modulator name), ``param`` (key: rule attribute).
    ``side``: ``pre``, ``post``, ``synapse`` or ``scalar``.
    """

    name: str
    kind: str
    key: Any
    side: str
    per_row: bool


def hook_arguments(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    bad = [p.name for p in params if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
           or p.default is not p.empty]
    if bad:
        raise TypeError(f"hook {fn.__qualname__}: arguments must be plain names without "
                        f"defaults, got {bad}")
    return [p.name for p in params]


def resolve(recipe: Recipe, hook: str, fn: Callable[..., Any], rule: Any,
            neuron_vars: dict[str, tuple[str, ...]], signal_shapes: dict[str, str]) -> list[Argument]:
    """The sources of ``fn``'s arguments; raises a ValueError naming an unknown one.

    ``neuron_vars``: side -> state variables of that population; ``signal_shapes``:
    modulator name -> ``scalar`` | ``post`` | ``row_post``.
    """
    traces = {t.name: t for t in recipe.traces}
    states = {s.name: s for s in recipe.neuron_state}
    out = []
    owner = f"rule {rule.name}: hook {hook} ({fn.__qualname__})"
    for name in hook_arguments(fn):
        if name in ("w", "d", "e", "post_sum"):
            allowed = {"w": True, "d": hook == "on_apply", "e": hook == "gate",
                       "post_sum": hook == "on_apply" and recipe.column is not None}[name]
            if not allowed:
                raise ValueError(f"{owner}: argument {name!r} is not available in this hook")
            per_row = name == "e" and rule.eligibility_per_row
            arg = Argument(name, name, None, "synapse", per_row)
        elif name in traces:
            arg = Argument(name, "trace", (name, "value"), traces[name].side, True)
        elif name.endswith("_before") and name[:-7] in traces:
            arg = Argument(name, "trace", (name[:-7], "before"), traces[name[:-7]].side, True)
        elif name in states:
            arg = Argument(name, "state", name, states[name].side, False)
        elif name in recipe.signals:
            mod = recipe.signals[name]
            shape = signal_shapes[mod]
            arg = Argument(name, "signal", mod, "scalar" if shape == "scalar" else "post",
                           shape == "row_post")
        elif name.startswith(("pre_", "post_")):
            side, _, var = name.partition("_")
            if var not in neuron_vars[side]:
                raise ValueError(f"{owner}: argument {name!r}: the {side}synaptic population has "
                                 f"no state variable {var!r} (it has {list(neuron_vars[side])})")
            arg = Argument(name, "neuron", (side, var), side, True)
        else:
            attr = "effective_lr" if name == "lr" else name
            value = getattr(rule, attr, None)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{owner}: argument {name!r} is not a weight, trace, state, "
                                 f"neuron variable, signal or number attribute of the rule")
            arg = Argument(name, "param", attr, "scalar", False)
        if arg.per_row and hook not in ROW_HOOKS and not (hook == "update"):
            raise ValueError(f"{owner}: argument {name!r} differs per batch row; {hook} sees "
                             "only values shared by the batch")
        out.append(arg)
    return out
