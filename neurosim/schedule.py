"""The fixed order of a step, as data that can be printed and timed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


#: the kinds of schedule entry; every backend implements each kind once
#: (``TorchBackend.run_<kind>``, ``numba_codegen.KernelWriter.emit_<kind>``)
KINDS = {
    "population": "a population's neuron update (or a spike generator's replay)",
    "delivery": "a projection's spikes arriving now, dense, CSR or with per-synapse delays",
    "modulators": "the dynamic and derived neuromodulator signals",
    "spike_traces": "the spike traces rules share, once per population side",
    "rule_traces": "a rule's own per-step state (eligibility, neuron state)",
    "rule_apply": "a rule's hooks changing its weights",
    "record_spikes": "a spike monitor recording this step's spikes",
    "count_spikes": "a spike counter adding this step's spikes",
    "record_state": "a state monitor sampling variables",
    "python": "a Python callable, run at its place in the step (callbacks, step currents, snapshots)",
}


@dataclass
class Entry:
    """One member of a phase: what it is called, its kind (:data:`KINDS`) and its object
    (for ``python``: the callable taking the step)."""

    member: str
    kind: str
    obj: Any


@dataclass
class Phase:
    """One phase of a step: a name, what it does, and its entries in order."""

    name: str
    doc: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def members(self) -> list[str]:
        return [e.member for e in self.entries]


class Schedule:
    """The step order of a network. ``print(net.schedule)`` shows it.

    1. inputs: injected currents change, user callbacks run, input populations
       (Poisson sources, spike generators) emit this step's spikes;
    2. deliver: spikes arriving now (emitted ``delay`` steps ago) add their
       weights to the receptors' state variables;
    3. neurons: every neuron population integrates, fires and resets; a delay-0
       projection delivers here, after its presynaptic population's update and
       before its postsynaptic one's;
    4. traces: synaptic traces update (used by learning rules);
    5. rules: learning rules update weights;
    6. monitors: monitors record into their buffers; whole chunks go to the log.
    """

    ORDER = (
        ("inputs", "currents change, callbacks run, input populations emit spikes"),
        ("deliver", "spikes arriving now add their weights to receptor variables"),
        ("neurons", "neurons integrate, fire and reset (delay-0 spikes delivered between)"),
        ("traces", "synaptic traces update"),
        ("rules", "learning rules update weights"),
        ("monitors", "monitors record (the log is written per chunk, not per step)"),
    )

    def __init__(self) -> None:
        self.phases = [Phase(name, doc) for name, doc in self.ORDER]
        #: what a backend does differently (e.g. rules run from Python between compiled steps)
        self.notes: list[str] = []
        #: rules applied when an event fires (``net.trigger``), not in the step
        self.events: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def add(self, phase: str, member: str, kind: str, obj: Any) -> None:
        """Append ``member`` of ``kind`` (see :data:`KINDS`) to ``phase``; each backend
        runs it with its own implementation of that kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown schedule entry kind {kind!r}; known: {list(KINDS)}")
        self[phase].entries.append(Entry(member, kind, obj))

    def entries(self) -> list[tuple[str, str, str, Any]]:
        """Every member in order, as (phase, member, kind, object)."""
        return [(p.name, e.member, e.kind, e.obj) for p in self.phases for e in p.entries]

    def as_list(self) -> list[dict[str, Any]]:
        return ([{"phase": p.name, "does": p.doc, "members": list(p.members)} for p in self.phases]
                + [{"event": e, "members": list(m)} for e, m in self.events.items()])

    def __str__(self) -> str:
        lines = ["step schedule:"]
        for i, p in enumerate(self.phases, 1):
            members = ", ".join(p.members) if p.members else "(nothing)"
            lines.append(f"  {i}. {p.name:<9} {p.doc}: {members}")
        lines += [f"  on {event}: {', '.join(members)}" for event, members in self.events.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    __repr__ = __str__


def same_step_order(populations: list[Any], same_step: list[Any]) -> list[Any]:
    """``populations`` ordered so that the pre side of every delay-0 projection in
    ``same_step`` updates before its post side (otherwise in the order given).

    Raises ValueError naming the projections of a loop: spikes that arrive in the
    step they are fired cannot go round a cycle.
    """
    remaining = list(populations)
    order: list[Any] = []
    while remaining:
        ready = [pop for pop in remaining
                 if not any(proj.post is pop and any(proj.pre is r for r in remaining)
                            for proj in same_step)]
        if not ready:
            # the loop: what is left after dropping, again and again, populations that
            # feed no remaining one (they hang off the loop, they are not in it)
            cycle = list(remaining)
            while True:
                tails = [pop for pop in cycle if not any(
                    proj.pre is pop and any(proj.post is c for c in cycle) for proj in same_step)]
                if not tails:
                    break
                cycle = [pop for pop in cycle if not any(pop is t for t in tails)]
            loop = [proj.name for proj in same_step
                    if any(proj.post is c for c in cycle) and any(proj.pre is c for c in cycle)]
            raise ValueError(f"projections {loop} form a loop of delay-0 connections: spikes cannot "
                             "arrive in the step they are fired all the way round; give at least "
                             "one of them delay >= 1")
        order.append(ready[0])
        remaining.remove(ready[0])
    return order
