"""How a network is built and prepared for a partitioned run (``Network(partition=...)``).

Every process builds the whole network description, in the same order, from the same
seed. A split population (:func:`population_share`) keeps the state of this process's
share of its neurons and gets a *mirror* (:func:`add_mirror`): a spike ring of the
whole population, filled by :class:`~neurosim.distributed.SpikeExchange`, that every
projection leaving it reads. A projection onto a split population is drawn whole, as
one process draws it, then cut to the synapses onto this process's share
(:func:`build_projection`), so weights, delays and the order of each sum are those of
one process; a projection whose connector draws by postsynaptic neuron
(:mod:`neurosim.connectors_by_post`) is drawn share by share, each process drawing only
its own (:mod:`neurosim.distributed.projection_share`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.distributed.projection_share import draw_projection_share, draws_share
from neurosim.models.base import NeuronModel
from neurosim.models.spike_generator import SpikeGenerator
from neurosim.monitors import SpikeCounter, SpikeMonitor
from neurosim.population import Population
from neurosim.projection import Projection
from neurosim.seeding import numpy_stream
from neurosim.validation import is_real

if TYPE_CHECKING:
    from neurosim.network import Network

#: a split population's mirror is named ``<population><MIRROR_SUFFIX>``
MIRROR_SUFFIX = "~spikes"


def population_share(net: "Network", name: str, n: Any, model: Any, split: Any,
                     gated: bool) -> tuple[int, int] | None:
    """This process's ``[lo, hi)`` of a new population, or None when it steps all of it."""
    if split is not None and not isinstance(split, (bool, np.bool_)):
        raise TypeError(f"population '{name}': split must be True, False or None, got {split!r}")
    part = net.partition
    if part is None:
        if split:
            raise ValueError(f"population '{name}': split=True needs a partitioned network "
                             "(Network(partition=Partition.from_process_group()))")
        return None
    splittable = isinstance(model, NeuronModel) and getattr(model, "output", "spike") != "graded"
    if split is None:
        split = splittable
    if not split:
        return None
    if not splittable:
        raise ValueError(f"population '{name}': only spiking neuron populations can be split "
                         f"across processes (a {type(model).__name__} runs whole in each); "
                         "leave split unset")
    if gated:
        raise ValueError(f"population '{name}': a gated population cannot be split across "
                         "processes yet; give split=False")
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 0 < n < part.size:
        raise ValueError(f"population '{name}': {n} neurons cannot be split over {part.size} "
                         "processes; give split=False")
    return part.share(int(n)) if isinstance(n, (int, np.integer)) and n > 0 else None


def add_mirror(net: "Network", pop: Population) -> None:
    """Give split population ``pop`` its mirror: the whole population's spike ring."""
    mirror = Population(pop.name + MIRROR_SUFFIX, pop.n_global, SpikeGenerator([], []), None,
                        net.batch, net.dt, net.device, net.dtype,
                        numpy_stream(net.seed, f"population/{pop.name}/mirror"), net.seed)
    mirror.mirror_of = pop
    pop.mirror = mirror
    net.populations[mirror.name] = mirror


class _Whole:
    """A split population seen whole, for drawing a projection onto it."""

    def __init__(self, pop: Population) -> None:
        self.pop, self.n, self.name, self.model = pop, pop.n_global, pop.name, pop.model
        self.model_name, self.gate, self.is_generator = pop.model_name, None, False

    def require_history(self, length: int) -> None:
        self.pop.mirror.require_history(length)


def build_projection(net: "Network", name: str, pre: Population, post: Population, connector: Any,
                     weight: Any, receptor: str, delay: Any, sparse: Any, trainable: Any,
                     stop_gradient: Any) -> Projection:
    """A projection of a partitioned network: read from ``pre``'s mirror when ``pre`` is
    split; drawn whole and cut to this process's share when ``post`` is split."""
    if trainable:
        raise ValueError(f"projection '{name}': trainable projections are not supported in a "
                         "partitioned run yet (for training by gradient use data-parallel DDP)")
    pre_split = getattr(pre, "mirror", None) is not None
    post_split = getattr(post, "mirror", None) is not None
    source = pre.mirror if pre_split else pre
    rng = numpy_stream(net.seed, f"projection/{name}")
    if pre_split and is_real(delay) and delay < 1:  # (before drawing: no collective is started)
        _refuse_delay(name, pre)
    if post_split and draws_share(connector, weight, delay):
        proj = draw_projection_share(net.partition, name, source, post, pre is post, connector, weight,
                                     receptor, delay, sparse, rng, net.device, net.dtype, stop_gradient)
    elif post_split:
        whole = _Whole(post)
        proj = Projection(name, whole if pre is post else source, whole, connector, weight, receptor,
                          delay, sparse, rng, net.device, net.dtype, trainable, stop_gradient)
        proj.pre = source
        proj.keep_columns(post)
    else:
        proj = Projection(name, source, post, connector, weight, receptor, delay, sparse, rng,
                          net.device, net.dtype, trainable, stop_gradient)
    if pre_split and proj.min_delay < 1:
        _refuse_delay(name, pre)
    return proj


def check_split_rule(key: str, rule: Any) -> None:
    """Refuse a rule on a projection from or onto a split population that reads what a
    process does not hold. Such a rule runs in each process on its share of the synapses
    (every synapse onto its own neurons): its presynaptic traces follow the mirror's
    spikes (the whole population's, exchanged a delay ahead), its postsynaptic traces and
    neuron state are those of its own neurons, so it needs nothing from the others."""
    recipe = rule.declared
    if recipe is None or rule.as_gradient:
        raise ValueError(f"rule '{key}': on a projection from or onto a population split across "
                         "processes only rules declared as a recipe (traces and hooks, see "
                         "neurosim.rules.recipe) can learn, without as_gradient; for other learning, "
                         "run data-parallel")
    proj = rule.projection
    whole = getattr(proj, "whole", None)
    if whole is not None and len(whole["delays"]) > 1:
        raise ValueError(f"rule '{key}': projection '{proj.name}' has several delays and is cut "
                         "to this process's share: a rule on it is not supported yet in a "
                         "partitioned run (give the projection one delay)")
    mirrored = getattr(proj.pre, "mirror_of", None) is not None
    functions = [*recipe.hooks().items(), *((f"update of {state.name}", state.update)
                                            for state in recipe.neuron_state)]
    for hook, fn in functions:
        for arg in rule.hook_arguments("update" if hook.startswith("update of") else hook, fn):
            if arg.kind == "neuron" and arg.side == "pre" and mirrored:
                raise ValueError(f"rule '{key}': hook {hook} reads {arg.name!r}, a state variable of "
                                 "the presynaptic population, which is split across processes: a "
                                 "process holds only its spikes")
            if arg.kind == "signal" and arg.side != "scalar":
                raise ValueError(f"rule '{key}': hook {hook} reads the per-neuron signal "
                                 f"{arg.key!r} on a projection onto a population split across "
                                 "processes: only scalar signals can be read there, so far")
    if whole is not None:  # (its state must be joinable into a state file: know it now)
        declared = {"eligibility", *(s.name for s in recipe.neuron_state),
                    *(f"{t.name}.{part}" for t in recipe.traces for part in ("value", "before"))}
        extra = sorted(set(rule.state_tensors()) - declared)
        if extra:
            raise ValueError(f"rule '{key}': its state {extra} is not a declared trace or neuron "
                             "state, so a partitioned run cannot keep it by share")


def _refuse_delay(name: str, pre: Population) -> None:
    raise ValueError(f"projection '{name}': population '{pre.name}' is split across processes, "
                     "so its spikes reach other processes one exchange later: give its "
                     "projections a delay of at least 1 step")


def prepare(net: "Network") -> None:
    """Check what a partitioned run supports and set up the spike exchange and the log."""
    from neurosim.distributed.exchange import SpikeExchange
    # a list in the order populations were added: every process packs its spikes alike
    split = [pop.name for pop in net.populations.values() if getattr(pop, "mirror", None) is not None]
    for key, mon in net.monitors.items():
        pop = getattr(mon, "population", None)
        proj = getattr(mon, "projection", None)
        if (pop is not None and pop.name in split and not isinstance(mon, (SpikeMonitor, SpikeCounter))) \
                or (proj is not None and proj.post.name in split):
            raise ValueError(f"monitor '{key}' ({type(mon).__name__}) records a population split "
                             "across processes: only spike monitors and spike counters can, so far")
    for key, rule in net.rules.items():
        proj = rule.projection
        if proj.post.name in split or getattr(proj.pre, "mirror_of", None) is not None:
            check_split_rule(key, rule)
    for inp in net.inputs:
        if inp.population.name in split and (not isinstance(inp._index, slice) or inp._amp.dim()):
            raise ValueError(f"step_current into population '{inp.population.name}', which is split "
                             "across processes: give one amplitude for all its neurons (per-neuron "
                             "amplitudes and neuron lists are not supported there yet)")
    for mod in net.modulators:
        source = getattr(mod.derived, "population", None)
        if source is None and mod.driver is not None:
            source = mod.driver[0]
        if source is not None and source.name in split:
            raise ValueError(f"signal '{mod.name}' is computed from population '{source.name}', which "
                             "is split across processes: signals read whole populations, so far")
    pairs = [(net.populations[name], net.populations[name].mirror) for name in split]
    previous = net._exchange
    net._exchange = SpikeExchange(net.partition, pairs, net.backend)
    if previous is not None:  # the time spent exchanging adds up over the network's runs
        net._exchange.seconds, net._exchange.calls = previous.seconds, previous.calls
    net.log.split_bases = {f"spikes/{mon.name}" for mon in net.monitors.values()
                           if isinstance(mon, SpikeMonitor) and mon.population.name in split}
