"""neurosim: a time-stepped spiking-network simulator with local learning rules.

Quick start::

    import neurosim as ns
    net = ns.Network(dt=0.1, seed=1, log="run.h5")
    exc = net.population(800, ns.LIF(), name="exc", init={"v": ns.Uniform(-65, -50)})
    net.projection(exc, exc, ns.FixedProbability(0.1), weight=0.5)
    net.spike_monitor(exc)
    net.run(1000.0)
"""

__version__ = "0.1.0"

from neurosim.connectors import AllToAll, Connector, FixedProbability, FromMatrix, OneToOne
from neurosim.distributions import Normal, Uniform
from neurosim.inputs import StepCurrent
from neurosim.log_reader import LogError, LogReader
from neurosim.models.adaptive_lif import AdaptiveLIF
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.models.conductance_lif import ConductanceLIF
from neurosim.models.izhikevich import Izhikevich
from neurosim.models.lif import LIF
from neurosim.models.poisson import PoissonSource
from neurosim.models.spike_generator import SpikeGenerator
from neurosim.monitors import SpikeMonitor, StateMonitor, WeightMonitor
from neurosim.network import Network
from neurosim.parameters import Parameter
from neurosim.population import Population
from neurosim.projection import Projection
from neurosim.recording import HDF5Log, MemoryLog
from neurosim import rules  # noqa: E402  (subpackage, after the engine it builds on)

__all__ = [
    "AdaptiveLIF", "AllToAll", "ConductanceLIF", "Connector", "FixedProbability", "FromMatrix", "HDF5Log",
    "Izhikevich", "LIF", "LogError", "LogReader", "MemoryLog", "Network", "NeuronModel", "Normal",
    "OneToOne", "Parameter", "PoissonSource", "Population", "Projection", "SpikeGenerator",
    "SpikeMonitor", "StateMonitor", "StateVariable", "StepCurrent", "Uniform", "WeightMonitor",
    "rules",
    "__version__",
]
