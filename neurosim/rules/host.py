"""What a learning rule sees of its network: a narrow view, not the whole Network.

A rule reads the time step, the batch size, the named modulators and the shared spike
traces, and asks for the runner that evaluates its recipe on torch tensors (a backend
object: the rule itself imports no backend). The network satisfies this protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from neurosim.modulators import Modulators
    from neurosim.rules.shared_traces import SharedTraces


class RuleHost(Protocol):
    @property
    def dt(self) -> float: ...

    batch: int
    modulators: Modulators
    shared_traces: SharedTraces

    def torch_rule(self, rule: Any) -> Any:
        """The torch runner of declared ``rule`` (``rule.update_traces``, ``rule.apply``)."""
