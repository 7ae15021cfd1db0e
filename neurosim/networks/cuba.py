"""The Vogels & Abbott (2005) current-based (CUBA) benchmark network."""

from __future__ import annotations

from dataclasses import dataclass

from neurosim.connectors import FixedProbability
from neurosim.connectors_by_post import PairwiseBernoulli
from neurosim.distributions import Uniform
from neurosim.models.lif import LIF
from neurosim.network import Network
from neurosim.population import Population
from neurosim.projection import Projection

#: Parameters of the benchmark as in Brian2's CUBA example (after Vogels & Abbott 2005).
CUBA_NEURON = dict(tau_m=20.0, v_rest=-49.0, v_reset=-60.0, v_thresh=-50.0, t_ref=5.0,
                   tau_syn_e=5.0, tau_syn_i=10.0)
W_EXC = 60 * 0.27 / 10   # mV, 1.62
W_INH = -20 * 4.5 / 10   # mV, -9.0
INPUTS_PER_NEURON = 80   # 2% of 4,000


@dataclass
class CUBA:
    """Handles to the CUBA network's populations and projections."""

    exc: Population
    inh: Population
    projections: list[Projection]


def build_cuba(net: Network, n_neurons: int = 4000, connection_p: float | None = None,
               sparse: bool | None = None, gated: bool = False, delay_steps: int = 1,
               draw_by_post: bool = False) -> CUBA:
    """Add the CUBA network to ``net``.

    ``n_neurons`` LIF neurons, 80% excitatory and 20% inhibitory, randomly
    connected with probability ``connection_p`` (default ``80 / n_neurons``,
    i.e. 2% at 4,000 neurons, about 80 inputs per neuron at any size), with
    excitatory weight 1.62 mV and inhibitory weight -9 mV on exponential
    current synapses (5 ms and 10 ms), and membrane potentials starting
    uniformly between reset and threshold. The network settles in an
    asynchronous irregular state. ``gated``: both populations gated (see
    :mod:`neurosim.gating`; in the neutral mode the dynamics are the same).
    ``delay_steps``: the synaptic delay of every projection (the benchmark's is one step;
    a longer one, as in NEST's HPC benchmark's 1.5 ms, lets a partitioned run exchange
    spikes less often, see :mod:`neurosim.distributed`). ``draw_by_post``: connect with
    :class:`~neurosim.connectors_by_post.PairwiseBernoulli` (the same distribution, drawn
    by postsynaptic neuron: each process of a partitioned run draws only its share)
    instead of ``FixedProbability``.

    Reference: T. P. Vogels and L. F. Abbott, Signal propagation and logic
    gating in networks of integrate-and-fire neurons, J. Neurosci. 25(46), 2005;
    the parameters follow Brian2's ``CUBA.py`` example (Brette et al. 2007).
    """
    if n_neurons < 5:
        raise ValueError(f"build_cuba: need at least 5 neurons, got {n_neurons}")
    p = INPUTS_PER_NEURON / n_neurons if connection_p is None else connection_p
    n_exc = int(round(0.8 * n_neurons))
    model = LIF(**CUBA_NEURON)
    init = {"v": Uniform(CUBA_NEURON["v_reset"], CUBA_NEURON["v_thresh"])}
    exc = net.population(n_exc, model, name="exc", init=init, gated=gated)
    inh = net.population(n_neurons - n_exc, model, name="inh", init=init, gated=gated)
    projections = []
    connector = PairwiseBernoulli if draw_by_post else FixedProbability
    for pre, w, receptor in ((exc, W_EXC, "exc"), (inh, W_INH, "inh")):
        for post in (exc, inh):
            projections.append(net.projection(pre, post, connector(min(1.0, p)), weight=w,
                                              receptor=receptor, sparse=sparse, delay=delay_steps))
    return CUBA(exc, inh, projections)
