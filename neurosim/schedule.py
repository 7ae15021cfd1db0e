"""The fixed order of a step, as data that can be printed and timed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Phase:
    """One phase of a step: a name, what it does, and the actions it runs in order."""

    name: str
    doc: str
    members: list[str] = field(default_factory=list)
    actions: list[Callable[[int], Any]] = field(default_factory=list)
    #: what each member is: (kind, object); compiled backends generate their code from these
    entries: list[tuple[str, Any]] = field(default_factory=list)

    def run(self, step: int) -> None:
        for action in self.actions:
            action(step)


class Schedule:
    """The step order of a network. ``print(net.schedule)`` shows it.

    1. inputs: injected currents change, user callbacks run, input populations
       (Poisson sources, spike generators) emit this step's spikes;
    2. deliver: spikes arriving now (emitted ``delay`` steps ago) add their
       weights to the receptors' state variables;
    3. neurons: every neuron population integrates, fires and resets;
    4. traces: synaptic traces update (used by learning rules);
    5. rules: learning rules update weights;
    6. monitors: monitors record into their buffers; whole chunks go to the log.
    """

    ORDER = (
        ("inputs", "currents change, callbacks run, input populations emit spikes"),
        ("deliver", "spikes arriving now add their weights to receptor variables"),
        ("neurons", "neurons integrate, fire and reset"),
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

    def add(self, phase: str, member: str, action: Callable[[int], Any], kind: str = "python",
            obj: Any = None) -> None:
        """Append ``member`` to ``phase``: ``action(step)`` runs it on the torch backend;
        ``kind`` and ``obj`` tell a compiled backend what to generate for it (kinds:
        ``population``, ``delivery``, ``modulators``, ``rule traces``, ``rule apply``,
        ``monitor``; ``python``: run from Python at its place in the step)."""
        self[phase].members.append(member)
        self[phase].actions.append(action)
        self[phase].entries.append((kind, obj))

    def entries(self) -> list[tuple[str, str, str, Any]]:
        """Every member in order, as (phase, member, kind, object)."""
        return [(p.name, m, kind, obj) for p in self.phases
                for m, (kind, obj) in zip(p.members, p.entries)]

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
