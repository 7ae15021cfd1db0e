"""What a learning rule sees of its network: a narrow view, not the whole Network.

A rule reads the time step, the batch size, the named modulators and the shared spike
traces, and asks for the runner that evaluates its recipe on torch tensors (a backend
object: the rule itself imports no backend). The network satisfies this protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from neurosim.modulators import Modulators


class RuleHost(Protocol):
    @property
    def dt(self) -> float: ...

    batch: int
    modulators: Modulators
    #: the network's :class:`~neurosim.rules.shared_traces.SharedTraces` (typed loosely: that
    #: module builds the rules' SpikeTraces, so naming it here would close a circle of hints)
    shared_traces: Any

    def torch_rule(self, rule: Any) -> Any:
        """The torch runner of declared ``rule`` (``rule.update_traces``, ``rule.apply``)."""
