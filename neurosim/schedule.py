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

    def __getitem__(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def add(self, phase: str, member: str, action: Callable[[int], Any]) -> None:
        self[phase].members.append(member)
        self[phase].actions.append(action)

    def as_list(self) -> list[dict[str, Any]]:
        return [{"phase": p.name, "does": p.doc, "members": list(p.members)} for p in self.phases]

    def __str__(self) -> str:
        lines = ["step schedule:"]
        for i, p in enumerate(self.phases, 1):
            members = ", ".join(p.members) if p.members else "(nothing)"
            lines.append(f"  {i}. {p.name:<9} {p.doc}: {members}")
        return "\n".join(lines)

    __repr__ = __str__
