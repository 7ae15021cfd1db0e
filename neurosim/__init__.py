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

import importlib
from typing import Any

#: public name -> the module that defines it. Imported on first use (PEP 562), so that
#: ``neurosim inspect`` and other log readers start without importing torch and numba
#: (3 of their 4 seconds); ``import neurosim as ns; ns.Network`` works as before.
_EXPORTS = {
    "AllToAll": "neurosim.connectors", "Connector": "neurosim.connectors",
    "FixedProbability": "neurosim.connectors", "FromMatrix": "neurosim.connectors",
    "OneToOne": "neurosim.connectors", "FromPairs": "neurosim.connectors",
    "WattsStrogatz": "neurosim.connectors", "Convolution": "neurosim.convolution",
    "PairwiseBernoulli": "neurosim.connectors_by_post", "FixedInDegree": "neurosim.connectors_by_post",
    "Normal": "neurosim.distributions", "Uniform": "neurosim.distributions",
    "StepCurrent": "neurosim.inputs",
    "LogError": "neurosim.log_reader", "LogReader": "neurosim.log_reader",
    "AdaptiveLIF": "neurosim.models.adaptive_lif",
    "NeuronModel": "neurosim.models.base", "StateVariable": "neurosim.models.base",
    "ConductanceLIF": "neurosim.models.conductance_lif",
    "Izhikevich": "neurosim.models.izhikevich",
    "Graded": "neurosim.models.graded", "GradedInput": "neurosim.models.graded",
    "LIF": "neurosim.models.lif",
    "PoissonSource": "neurosim.models.poisson",
    "SpikeGenerator": "neurosim.models.spike_generator",
    "SnnTorchLeaky": "neurosim.models.snntorch_leaky",
    "SnnTorchSynaptic": "neurosim.models.snntorch_synaptic",
    "SpikeMonitor": "neurosim.monitors", "StateMonitor": "neurosim.monitors",
    "WeightMonitor": "neurosim.monitors",
    "Network": "neurosim.network",
    "Parameter": "neurosim.parameters",
    "Population": "neurosim.population",
    "Projection": "neurosim.projection",
    "HDF5Log": "neurosim.recording", "MemoryLog": "neurosim.recording",
}
_SUBPACKAGES = ("rules", "networks", "datasets", "analysis", "plots", "recording", "backends")

__all__ = sorted(_EXPORTS) + ["rules", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"neurosim.{name}")
    else:
        raise AttributeError(f"module 'neurosim' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))
