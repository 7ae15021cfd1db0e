"""What every learning rule shares: attachment, local views, bounds, freezing, gradients.

A rule attaches to one projection and sees only local quantities: the spikes of
its presynaptic neurons as they arrive at the synapses, the spikes of its
postsynaptic neurons, traces it keeps of both, the projection's weights, and
named neuromodulators broadcast by the network. Each step it runs in two phases
of the schedule: ``traces`` (update its traces) and ``rules`` (every ``every``
steps, compute a weight change ``dw`` and apply it within the bounds, or, with
``as_gradient=True``, subtract it from ``weight.grad`` for a torch optimiser).

Recipe for a new rule: subclass :class:`Rule` and return a
:class:`~neurosim.rules.recipe.Recipe` from :meth:`Rule.recipe`: the traces it
keeps, and small branch-free hooks (``on_pre``, ``on_post``, ``per_step``, ...)
whose arguments name what they read (see :mod:`neurosim.rules.recipe`). Every
backend derives its code from that one declaration: the torch backend evaluates
the hooks on whole tensors, the numba backend compiles them into its
event-driven step loop, and both give the same bits.
A rule whose equation is a rate of change (``dw/dt = lr * f``, e.g. a rate-based
Hebbian rule) sets ``continuous = True``: its hooks' ``lr`` is then
:attr:`Rule.effective_lr` (``lr * every * dt``), so that results do not depend on
``dt``; a rule whose changes happen at spikes (STDP-like) uses ``lr`` as given.

Escape hatch: a rule may instead be plain tensor code, overriding
:meth:`Rule.weight_change` (and :meth:`Rule.update_traces` if it keeps traces,
with :meth:`Rule.outer` for per-synapse products). It runs on every backend, but
the numba backend must then return to Python for it (after every step if it keeps
traces); ``print(net.schedule)`` marks it and the numba backend warns once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from neurosim.rules.recipe import Argument, Recipe, hook_arguments as hook_names, resolve

if TYPE_CHECKING:
    from neurosim.projection import Projection
    from neurosim.rules.host import RuleHost


#: events a rule can be applied at instead of every few steps (``Rule(apply_at=...)``):
#: ``end_of_sample`` fires after each presentation of ``datasets.present`` (before the rest),
#: or whenever a script calls ``net.trigger("end_of_sample")``
EVENTS = ("end_of_sample",)


class SpikeTrace:
    r"""An exponentially decaying trace of spikes, one per neuron and batch row.

    Each step :math:`x \leftarrow x e^{-\Delta t/\tau}`, then at a spike
    :math:`x \leftarrow x + 1` (``mode="all"``: all-to-all pairing) or
    :math:`x \leftarrow 1` (``mode="nearest"``: only the nearest spike counts).
    ``before`` keeps the decayed value before this step's spikes were added.
    """

    def __init__(self, shape: tuple[int, int], tau_ms: float, dt: float, mode: str,
                 device: torch.device, dtype: torch.dtype, side: str = "pre") -> None:
        if mode not in ("all", "nearest"):
            raise ValueError(f"trace mode must be 'all' or 'nearest', got {mode!r}")
        self.decay = math.exp(-dt / tau_ms)
        self.mode = mode
        self.side = side  # whose spikes it follows: "pre" or "post"
        self.value = torch.zeros(shape, dtype=dtype, device=device)
        self.before = torch.zeros(shape, dtype=dtype, device=device)

    def update(self, spikes: torch.Tensor) -> None:
        torch.mul(self.value, self.decay, out=self.before)
        if self.mode == "all":
            torch.add(self.before, spikes.to(self.value.dtype), out=self.value)
        else:
            torch.where(spikes, torch.ones_like(self.before), self.before, out=self.value)

    def reset(self) -> None:
        self.value.zero_()
        self.before.zero_()


def check_positive(owner: str, **values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{owner}: {name} must be a positive number, got {v!r}")


class Rule:
    """Base class of learning rules.

    Units of ``lr``: a rule whose equation is a rate of change (``continuous = True``:
    Hebb, Oja, BCM, rate homeostasis, the modulator-gated change of reward-modulated
    STDP) takes ``lr`` per ms and changes weights by ``lr * f * every * dt`` at each
    application (``dw/dt = lr * f``), so results converge as ``dt`` shrinks. A rule
    whose changes are per spike or spike pair (STDP, triplet STDP, Vogels'
    inhibitory rule, Diehl & Cook's STDP) is dimensionless: ``lr`` scales each
    event's change, whatever ``dt``.

    Args:
        lr: learning rate (scales ``dw``; per ms for continuous rules, see above).
        w_min, w_max: weight bounds (hard: a weight the rule changes is clipped to them).
        every: apply the weight change every ``every`` steps (traces update every step).
        learning: False freezes the rule (weights do not change); toggle any time.
        as_gradient: instead of changing the weights, subtract ``dw`` from
            ``projection.weight.grad`` so that a torch optimiser applies it.
        apply_at: ``"end_of_sample"``: apply the change once whenever that event fires
            (after each presentation of ``datasets.present``, or ``net.trigger``), not
            every ``every`` steps; traces and eligibility still follow every step.
    """

    #: the post population must spike (not a spike generator)
    needs_spiking_post: bool = True
    #: True: the equation is a rate ``dw/dt = lr * f`` and each application is scaled by
    #: the time it stands for (``every * dt`` ms); False: changes are per spike event
    continuous: bool = False

    def __init__(self, *, lr: float = 1.0, w_min: float = 0.0, w_max: float = math.inf,
                 every: int = 1, learning: bool = True, as_gradient: bool = False,
                 apply_at: str | None = None) -> None:
        name = type(self).__name__
        if not math.isfinite(lr):
            raise ValueError(f"{name}: lr must be finite")
        if math.isnan(w_min) or math.isnan(w_max) or w_min > w_max:
            raise ValueError(f"{name}: bounds need w_min <= w_max, got w_min={w_min}, w_max={w_max}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"{name}: 'every' must be a positive integer of steps, got {every!r}")
        self.lr, self.w_min, self.w_max, self.every = float(lr), float(w_min), float(w_max), every
        #: a data-parallel run (or a weight window) clips the summed change (see
        #: neurosim.distributed.data_parallel): the backends then apply no bounds themselves
        self.bounds_deferred = False
        #: a data-parallel run (or a weight window) applies this (weights-only) rule itself,
        #: after the other rules' summed change: the backends skip it meanwhile
        self.held = False
        #: with a weight window (see neurosim.distributed.data_parallel) the backends add
        #: each change here instead of to the weights, which stay fixed until it ends
        self.pending: torch.Tensor | None = None
        self.learning, self.as_gradient = bool(learning), bool(as_gradient)
        if apply_at not in (None, *EVENTS):
            raise ValueError(f"{name}: apply_at must be None (every 'every' steps) or one of "
                             f"{list(EVENTS)}, got {apply_at!r}")
        #: None: apply every ``every`` steps; an event name: apply when the network fires it
        self.apply_at = apply_at
        self.projection: "Projection | None" = None
        self.net: "RuleHost | None" = None
        self.name = name
        self.declared: Recipe | None = None
        self._torch: Any = None

    # -- attachment -------------------------------------------------------------------
    def attach(self, projection: "Projection", net: "RuleHost", name: str) -> None:
        self.projection, self.net, self.name = projection, net, name
        if projection.receptor == "inh" and self.w_min == 0.0 and math.isinf(self.w_max):
            self.w_min, self.w_max = -math.inf, 0.0  # inhibitory weights stay <= 0
        if self.needs_spiking_post and projection.post.is_generator:
            raise ValueError(f"rule {name}: post population '{projection.post.name}' is a spike "
                             "generator; it has no activity of its own to learn from")
        p = projection
        self.dt = net.dt
        self.batch = net.batch
        #: the delays (steps) of a projection with per-synapse delays, one per delay block
        #: (None: one delay); a presynaptic trace then has one column block per delay
        #: (:meth:`pre_index`), so each synapse reads the spikes as they reach it
        self.pre_delays: tuple[int, ...] | None = (
            tuple(b.delay for b in p.blocks) if len(p.blocks) > 1 else None)
        if p.sparse:
            counts = p.indptr[1:] - p.indptr[:-1]
            self._rows = torch.repeat_interleave(torch.arange(p.pre.n, device=p.device), counts)
            self._pre_index = self._rows
            if self.pre_delays is not None:
                block = torch.empty(p.nnz, dtype=torch.long, device=p.device)
                for q, b in enumerate(p.blocks):
                    block[b.positions.long()] = q
                self._synapse_blocks = block  # (private: part of the structure, not state)
                self._pre_index = block * p.pre.n + self._rows
        self.setup()
        self.declared: Recipe | None = None if self.is_tensor_code else self.recipe()
        if self.pre_delays is not None and self.declared is None:
            raise ValueError(f"rule {name}: projection '{projection.name}' has per-synapse delays; "
                             f"{type(self).__name__} is tensor code (weight_change), which sees one "
                             "delay per projection: declare it as a recipe to learn there")
        self._torch = None
        if self.declared is not None:
            self._refuse_graded(self.declared)
            self._refuse_untied(self.declared)
            known = set(net.shared_traces.items)
            try:
                self._allocate(self.declared)
            except Exception:  # a refused rule leaves no trace behind for others to update
                for key in set(net.shared_traces.items) - known:
                    del net.shared_traces.items[key]
                raise

    def _refuse_untied(self, recipe: Recipe) -> None:
        """Tied weights (a Convolution) take the summed change of their synapses, then one
        ``on_apply`` per synapse: that keeps them equal only if ``on_apply`` reads no
        per-neuron value (a column sum, e.g. a normalisation, differs between the synapses
        of one kernel entry)."""
        if self.projection.tie is None or recipe.on_apply is None and recipe.column is None:
            return
        args = self.hook_arguments("on_apply", recipe.on_apply) if recipe.on_apply is not None else []
        if recipe.column is not None or any(a.side in ("pre", "post") for a in args):
            raise ValueError(f"rule {self.name}: {type(self).__name__} sets each weight from values "
                             f"of its own neurons (on_apply/column hooks), which would untie the shared "
                             f"kernel weights of projection '{self.projection.name}' "
                             f"({type(self.projection.connector).__name__})")

    def _refuse_graded(self, recipe: Recipe) -> None:
        """Spike traces and spike hooks need spikes: refuse a graded side they would read."""
        p = self.projection
        sides = {t.side for t in recipe.traces}
        sides |= {"pre"} if recipe.on_pre is not None else set()
        sides |= {"post"} if recipe.on_post is not None else set()
        for side in sorted(sides):
            pop = p.pre if side == "pre" else p.post
            if getattr(pop, "graded", False):
                raise ValueError(f"rule {self.name}: {type(self).__name__} reacts to {side}synaptic "
                                 f"spikes, but '{pop.name}' is graded (it emits values); use a rule "
                                 "for graded activity (e.g. CounterCurrent) or a spiking population")

    # -- declared rules -----------------------------------------------------------------
    def recipe(self) -> Recipe:
        """The rule's declaration (traces, hooks, signals); see :mod:`neurosim.rules.recipe`."""
        raise NotImplementedError(f"{type(self).__name__}: a rule declares a recipe() or is "
                                  "tensor code overriding weight_change()")

    @property
    def is_tensor_code(self) -> bool:
        """True for the escape hatch: a rule written as tensor code (``weight_change``)."""
        return type(self).weight_change is not Rule.weight_change

    @property
    def synapse_rows(self) -> torch.Tensor:
        """The presynaptic neuron of each synapse of a CSR projection."""
        return self._rows

    @property
    def synapse_blocks(self) -> torch.Tensor:
        """With per-synapse delays: the delay block of each CSR synapse (its index in
        :attr:`pre_delays`)."""
        return self._synapse_blocks

    @property
    def pre_index(self) -> torch.Tensor:
        """Each CSR synapse's column in its presynaptic traces and :meth:`pre_spikes`:
        its presynaptic neuron, plus ``n_pre`` times its delay block's index when the
        projection has per-synapse delays (block ``q`` holds the spikes ``pre_delays[q]``
        steps late)."""
        return self._pre_index

    def _signal_shape(self, name: str) -> str:
        size = self.net.modulators[name].value.shape
        return "scalar" if len(size) == 0 else ("row_post" if len(size) == 2 else "post")

    def _allocate(self, recipe: Recipe) -> None:
        p = self.projection
        for mod in recipe.signals.values():
            self.check_modulator(mod)
        for trace in recipe.traces:  # stored once per population side (neurosim.rules.shared_traces)
            pre_delay = self.pre_delays if self.pre_delays is not None else p.min_delay
            pop, delay = (p.pre, pre_delay) if trace.side == "pre" else (p.post, 0)
            setattr(self, trace.name, self.net.shared_traces.get(
                pop, delay, trace.tau_ms, trace.mode, self.batch, self.net.dt, p.device, p.dtype))
        for state in recipe.neuron_state:
            n = (p.pre if state.side == "pre" else p.post).n
            setattr(self, state.name, torch.full((n,), float(state.initial), dtype=p.dtype,
                                                 device=p.device))
        self.eligibility_per_row = recipe.eligibility is not None and any(
            self._signal_shape(m) == "row_post" for m in recipe.signals.values())
        if recipe.eligibility is not None:
            self.decay_e = math.exp(-self.net.dt / recipe.eligibility)
            shape = ((self.batch,) if self.eligibility_per_row else ()) + tuple(p.weight.shape)
            self._eligibility = torch.zeros(shape, dtype=p.dtype, device=p.device)
        elif recipe.gate is not None:
            raise ValueError(f"rule {self.name}: a gate hook needs an eligibility time constant")
        if recipe.per_step_factor is not None and not any(
                t.name == recipe.per_step_factor and t.side == "pre" for t in recipe.traces):
            raise ValueError(f"rule {self.name}: per_step_factor {recipe.per_step_factor!r} must name "
                             "one of the recipe's presynaptic traces")
        # every hook's arguments resolve now: a wrong name fails at add_rule, not mid-run
        for hook, fn in recipe.hooks().items():
            self.hook_arguments(hook, fn)
        factor = recipe.per_step_factor
        if factor is not None:
            others = [a for a in self.hook_arguments("per_step", recipe.per_step) if a.name != factor]
            if factor not in hook_names(recipe.per_step) or any(a.side not in ("post", "scalar") for a in others):
                raise ValueError(f"rule {self.name}: per_step_factor {factor!r}: the per_step hook must "
                                 f"read {factor!r} and otherwise only postsynaptic values and numbers")
        #: the eligibility feed is folded in by matrix products (neurosim.rules.eligibility_feed):
        #: a factorised per-step term, no event terms, dense weights (or CSR ones that fill
        #: enough of the product), changes only at events
        from neurosim.rules.eligibility_feed import folds_csr

        self.folded = (factor is not None and recipe.eligibility is not None and recipe.on_pre is None
                       and recipe.on_post is None and self.apply_at is not None
                       and (not p.sparse or folds_csr(self)))
        if recipe.gate_scales_e:
            bad = [] if recipe.gate is None else [
                a.name for a in self.hook_arguments("gate", recipe.gate)
                if a.name != "e" and (a.side in ("pre", "synapse") or a.kind == "w")]
            if recipe.gate is None or "e" not in hook_names(recipe.gate) or bad:
                raise ValueError(f"rule {self.name}: gate_scales_e: the gate hook must read 'e' and "
                                 f"otherwise only postsynaptic values, signals and numbers (not {bad})")
        self.feed = None
        if self.folded:
            from neurosim.rules.eligibility_feed import EligibilityFeed

            self.feed = EligibilityFeed(self)
        for state in recipe.neuron_state:
            for arg in self.hook_arguments("update", state.update):
                if arg.side not in (state.side, "scalar"):
                    raise ValueError(f"rule {self.name}: the update of {state.name} reads "
                                     f"{arg.name!r} of the other side")
                if arg.kind == "trace" and arg.side == "pre" and self.pre_delays is not None:
                    raise ValueError(f"rule {self.name}: the update of {state.name} reads the "
                                     f"presynaptic trace {arg.name!r}, but projection '{p.name}' has "
                                     "per-synapse delays (a neuron has one value per delay there)")

    def hook_arguments(self, hook: str, fn: Any) -> list[Argument]:
        """Where each argument of hook ``fn`` comes from (see :func:`recipe.resolve`)."""
        p = self.projection
        # (a partitioned run's mirror of a split population stands for it: name its variables,
        # so that a hook reading them is refused for what it is, see partitioning.check_split_rule)
        pre = getattr(p.pre, "mirror_of", None) or p.pre
        neuron_vars = {"pre": tuple(pre.state), "post": tuple(p.post.state)}
        shapes = {m: self._signal_shape(m) for m in self.declared.signals.values()}
        return resolve(self.declared, hook, fn, self, neuron_vars, shapes)

    def schedule_label(self, phase: str) -> str:
        """What the rule does in ``phase`` ("traces" or "rules"), as schedules show it."""
        recipe = self.declared
        if recipe is None:
            return "(python tensor code)"
        if phase == "traces":  # (its spike traces are updated with the shared ones)
            parts = [f"state {s.name}" for s in recipe.neuron_state]
            if recipe.eligibility is not None:
                parts.append("eligibility" + (" per sample" if self.eligibility_per_row else "")
                             + " <- " + ",".join(h for h in ("on_pre", "on_post", "per_step")
                                                  if getattr(recipe, h) is not None))
            return f"({'; '.join(parts) or 'nothing'})"
        hooks = [h for h in ("on_pre", "on_post", "per_step", "gate", "column", "on_apply")
                 if getattr(recipe, h) is not None and not (recipe.eligibility is not None
                                                            and h in ("on_pre", "on_post", "per_step"))]
        when = (f"at {self.apply_at}" if self.apply_at else
                f"every {self.every} steps" if self.every > 1 else "every step")
        mode = ", as gradient" if self.as_gradient else ""
        return f"({', '.join(hooks)}; {when}{mode})"

    @property
    def has_step_work(self) -> bool:
        """Whether the rule does anything of its own in the traces phase (besides the
        shared spike traces): neuron state, eligibility, or tensor code of its own
        (a tensor-code rule that keeps no per-step state, such as one applied at an
        event from what the last step left, has no entry: a network of such rules and
        device entries runs its steps without host calls)."""
        recipe = self.declared
        if recipe is None:
            return type(self).update_traces is not Rule.update_traces
        return bool(recipe.neuron_state) or recipe.eligibility is not None

    @property
    def torch_form(self) -> Any:
        """The torch backend's runner of this declared rule (built on first use)."""
        if self._torch is None:  # the network hands it over: a rule imports no backend
            self._torch = self.net.torch_rule(self)
        return self._torch

    def setup(self) -> None:
        """Allocate traces; ``self.projection`` and ``self.net`` are set."""

    def require_receptor(self, receptor: str) -> None:
        """Refuse a projection onto another receptor (e.g. an inhibitory rule on 'exc')."""
        if self.projection.receptor != receptor:
            raise ValueError(f"rule {self.name}: {type(self).__name__} needs a projection with "
                             f"receptor '{receptor}', got '{self.projection.receptor}'")

    def arrays(self) -> dict[str, torch.Tensor]:
        """The arrays a backend runs a declared rule's hooks on, by name (the rule's state
        contract): ``weight`` (the projection's), ``trace.<name>`` and
        ``trace.<name>.before`` (``(batch, n)`` of its side, presynaptic ones ``(batch,
        n_pre * len(pre_delays))`` with per-synapse delays; shared with other rules on
        the side), ``state.<name>`` (per-neuron rule state, ``(n,)``) and
        ``eligibility`` (the weights' shape, with a leading batch axis when a signal it
        reads is per sample)."""
        out = {"weight": self.projection.weight}
        recipe = self.declared
        if recipe is None:
            return out
        for trace in recipe.traces:
            t = getattr(self, trace.name)
            out[f"trace.{trace.name}"], out[f"trace.{trace.name}.before"] = t.value, t.before
        for state in recipe.neuron_state:
            out[f"state.{state.name}"] = getattr(self, state.name)
        if recipe.eligibility is not None and self.feed is None:
            # (a folded eligibility is the feed's business: rule.eligibility folds it)
            out["eligibility"] = self._eligibility
        return out

    @property
    def eligibility(self) -> torch.Tensor:
        """The per-synapse eligibility (the weights' shape, with a leading batch axis when a
        signal the rule reads is per sample), up to date: a folded feed is folded first."""
        if getattr(self, "feed", None) is not None:
            self.feed.fold()
        return self._eligibility

    @eligibility.setter
    def eligibility(self, value: torch.Tensor) -> None:  # (tensor-code rules keep their own)
        self._eligibility = value

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The rule's state (traces), listed in the network's state dict."""
        out = {}
        for attr, value in vars(self).items():
            if isinstance(value, SpikeTrace):
                out[f"{attr}.value"], out[f"{attr}.before"] = value.value, value.before
            elif isinstance(value, torch.Tensor) and not attr.startswith("_"):
                out[attr] = value
        if getattr(self, "_eligibility", None) is not None:
            out["eligibility"] = self.eligibility
        return out

    def pre_trace(self, tau_ms: float, mode: str = "all") -> SpikeTrace:
        """A new trace of the presynaptic spikes, ``(batch, n_pre)``."""
        p = self.projection
        return SpikeTrace((self.net.batch, p.pre.n), tau_ms, self.net.dt, mode, p.device, p.dtype,
                          "pre")

    def post_trace(self, tau_ms: float, mode: str = "all") -> SpikeTrace:
        """A new trace of the postsynaptic spikes, ``(batch, n_post)``."""
        p = self.projection
        return SpikeTrace((self.net.batch, p.post.n), tau_ms, self.net.dt, mode, p.device, p.dtype,
                          "post")

    def reset(self) -> None:
        """Clear the rule's traces and eligibility, restore its neuron state (``reset_state``)."""
        for value in vars(self).values():
            if isinstance(value, SpikeTrace):
                value.reset()
        if self.declared is not None:
            for state in self.declared.neuron_state:
                getattr(self, state.name).fill_(float(state.initial))
            if getattr(self, "feed", None) is not None:
                self.feed.reset()  # (zeroes the eligibility lazily, at its next fold)
            elif self.declared.eligibility is not None:
                self._eligibility.zero_()


    # -- local views --------------------------------------------------------------------
    def pre_spikes(self, t: int) -> torch.Tensor:
        """Presynaptic spikes arriving at the synapses in step ``t``: ``(batch, n_pre)``,
        or ``(batch, n_pre * len(pre_delays))`` with per-synapse delays (one block of
        columns per delay; see :attr:`pre_index`)."""
        p = self.projection
        if self.pre_delays is not None:
            return torch.cat([p.pre.spikes_at(t - d) for d in self.pre_delays], dim=1)
        return p.pre.spikes_at(t - p.min_delay)

    def post_spikes(self, t: int) -> torch.Tensor:
        return self.projection.post.spikes_at(t)

    def outer(self, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """Per-synapse ``sum_b pre[b, i] * post[b, j]``, shaped like the weights."""
        p = self.projection
        pre, post = pre.to(p.dtype), post.to(p.dtype)
        if not p.sparse:
            out = pre.transpose(0, 1) @ post
            return out * p.mask if p.mask is not None else out
        return (pre[:, self._rows] * post[:, p.indices]).sum(0)

    def per_post(self, values: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-postsynaptic-neuron vector ``(n_post,)`` to the weights' shape."""
        p = self.projection
        return values.unsqueeze(0).expand_as(p.weight) if not p.sparse else values[p.indices]

    def per_pre(self, values: torch.Tensor) -> torch.Tensor:
        p = self.projection
        return values.unsqueeze(1).expand_as(p.weight) if not p.sparse else values[self._rows]

    def modulator(self, name: str) -> torch.Tensor:
        """A named modulator as a scalar or broadcast per synapse (per-post vectors)."""
        value = self.net.modulators.get(name)
        if value.dim() == 0:
            return value
        return self.per_post(value)

    def check_modulator(self, name: str) -> None:
        mods = self.net.modulators
        if name not in mods:
            known = ", ".join(repr(m.name) for m in mods) or "none"
            raise ValueError(f"rule {self.name}: unknown modulator {name!r}; registered: {known} "
                             "(add it with net.modulators.add)")
        size = mods[name].size
        if size is not None and size != self.projection.post.n:
            raise ValueError(f"rule {self.name}: modulator {name!r} has {size} values but the "
                             f"post population '{self.projection.post.name}' has "
                             f"{self.projection.post.n} neurons")

    # -- stepping -----------------------------------------------------------------------
    def update_traces(self, t: int) -> None:
        """Phase 4: update the rule's traces (and eligibility) with this step's spikes."""
        if self.declared is not None:
            self.torch_form.traces(t)

    def weight_change(self, t: int) -> torch.Tensor | None:
        """Phase 5: the weight change of this step (shaped like the weights), or None.
        A continuous rule scales it by :attr:`effective_lr`, an event rule by ``lr``."""
        raise NotImplementedError

    def gradient(self, t: int) -> torch.Tensor | None:
        """What ``as_gradient`` adds to ``.grad`` in step ``t``: ``-weight_change(t)`` (a
        rule may compute it directly, sparing a pass over the weights); a new tensor."""
        dw = self.weight_change(t)
        return None if dw is None else -dw

    @property
    def step_scale(self) -> float:
        """Time one application stands for: ``every * dt`` (ms) for continuous rules, else 1."""
        if not self.continuous:
            return 1.0
        if self.net is None:
            raise RuntimeError(f"{self.name}: the time step is known once the rule is attached "
                               "(net.add_rule)")
        return self.every * self.net.dt

    @property
    def effective_lr(self) -> float:
        """``lr`` of one application: ``lr * every * dt`` for continuous rules, else ``lr``.
        Continuous rules multiply by this (one Python float, so every backend rounds alike)."""
        return self.lr * self.step_scale

    def apply(self, t: int, event: bool = False) -> None:
        """Rules phase of step ``t`` (``event``: the event the rule waits for fired)."""
        if (self.apply_at is not None) != event:
            return
        if self.declared is not None:
            self.torch_form.apply(t, force=event)
            return
        if t % self.every and not event:
            return
        if self.as_gradient:
            grad = self.gradient(t)
            if grad is not None and self.learning:
                self.projection.add_to_grad(grad)
            return
        dw = self.weight_change(t)
        if dw is None or not self.learning:
            return
        dw = self.projection.tied_sum(dw)  # (a shared weight takes its synapses' summed change)
        if self.pending is not None:
            self.pending.add_(dw)
            return
        w = self.projection.weight
        w.add_(dw)
        if (self.w_min > -math.inf or self.w_max < math.inf) and not self.bounds_deferred:
            # the bounds hold for the weights this change moved (as in event-driven
            # simulators): a weight another rule (e.g. a normalisation) set beyond them
            # stays until this rule changes it
            torch.where(dw != 0, w.clamp(self.w_min, self.w_max), w, out=w)
        if self.projection.mask is not None:
            w.mul_(self.projection.mask)

    @property
    def clip_bounds(self) -> tuple[float, float]:
        """The bounds the backends clip a changed weight to: (w_min, w_max), or no bounds
        while a data-parallel run or a weight window defers them (:attr:`bounds_deferred`)."""
        return (-math.inf, math.inf) if self.bounds_deferred else (self.w_min, self.w_max)

    def describe(self) -> dict[str, Any]:
        return {"rule": type(self).__name__, "name": self.name, "projection": self.projection.name,
                "lr": self.lr, "w_min": self.w_min, "w_max": self.w_max, "every": self.every,
                "learning": self.learning, "as_gradient": self.as_gradient,
                "apply_at": self.apply_at}
