"""snnTorch models as neurosim networks, and back.

An ``nn.Sequential`` of ``nn.Linear`` + ``snn.Leaky`` (or ``snn.Synaptic``) pairs becomes
one :class:`~neurosim.SnnTorchLeaky` (:class:`~neurosim.SnnTorchSynaptic`) population per
spiking layer and one dense projection
(receptor ``"syn"``, the layer's weights; its bias as the neurons' ``i_bias``) per
``nn.Linear``; the result then runs in neurosim with logs, plots and plasticity.

Time: in snnTorch a layer sees the spikes its input layer emitted in the same step.
The converted projections have delay 0 (by default), so the converted network is
snnTorch's ``Sequential`` step for step and spike for spike (the source population
emitting at step ``t`` what the module is given at ``t``;
``tests/test_snntorch_interop.py``). With ``delay=1`` every layer instead sees the
spikes of the step before, as projections between biological populations usually do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from neurosim.network import Network
    from neurosim.population import Population

_RESETS = {"subtract": 1.0, "zero": 0.0}


def _layers(module: torch.nn.Module) -> list[tuple[torch.nn.Linear, torch.nn.Module]]:
    import snntorch as snn

    mods = [m for m in module if not isinstance(m, torch.nn.Flatten)] \
        if isinstance(module, torch.nn.Sequential) else None
    if mods is None:
        raise TypeError(f"from_sequential: expected an nn.Sequential, got {type(module).__name__}")
    if not mods or len(mods) % 2 or not all(
            isinstance(a, torch.nn.Linear) and type(b) in (snn.Leaky, snn.Synaptic)
            for a, b in zip(mods[::2], mods[1::2])):
        raise ValueError("from_sequential: the module must be nn.Linear, snn.Leaky (or "
                         "snn.Synaptic) pairs (an nn.Flatten may come first); got "
                         + ", ".join(type(m).__name__ for m in mods))
    return list(zip(mods[::2], mods[1::2]))


def from_sequential(module: torch.nn.Sequential, net: "Network", source: "Population", *,
                    prefix: str = "layer", delay: int = 0) -> list["Population"]:
    """Add the layers of ``module`` to ``net``, fed by the spikes of ``source`` (whose
    size is the first ``nn.Linear``'s ``in_features``); returns the new populations,
    named ``<prefix>1``, ``<prefix>2``, ... ``delay`` (steps) is every new
    projection's: 0 is snnTorch's timing (see the module docstring)."""
    import snntorch as snn

    from neurosim.models.snntorch_leaky import SnnTorchLeaky
    from neurosim.models.snntorch_synaptic import SnnTorchSynaptic

    pre = source
    out = []
    for k, (linear, leaky) in enumerate(_layers(module), 1):
        if linear.in_features != pre.n:
            raise ValueError(f"from_sequential: layer {k} takes {linear.in_features} inputs, "
                             f"population '{pre.name}' has {pre.n} neurons")
        reset = getattr(leaky, "reset_mechanism", "subtract")
        if reset not in _RESETS:
            raise ValueError(f"from_sequential: layer {k}: reset_mechanism {reset!r} is not "
                             f"supported; use one of {sorted(_RESETS)}")
        if getattr(leaky, "inhibition", False) or getattr(leaky, "state_quant", False):
            raise ValueError(f"from_sequential: layer {k}: {type(leaky).__name__} with inhibition "
                             "or state_quant has no neurosim equivalent")
        if getattr(leaky, "reset_delay", True) is False:
            raise ValueError(f"from_sequential: layer {k}: {type(leaky).__name__} with "
                             "reset_delay=False has no neurosim equivalent (the models reset "
                             "one step later, snnTorch's default)")
        n = linear.out_features
        beta = leaky.beta.detach().clamp(0, 1).cpu().double().numpy()
        threshold = torch.as_tensor(leaky.threshold).detach().cpu().double().numpy()
        bias = (linear.bias.detach().cpu().double().numpy() if linear.bias is not None
                else np.zeros(n))
        common = dict(beta=_per_neuron(beta, n), threshold=_per_neuron(threshold, n),
                      subtract=_RESETS[reset], i_bias=bias)
        if isinstance(leaky, snn.Synaptic):
            alpha = leaky.alpha.detach().clamp(0, 1).cpu().double().numpy()
            model = SnnTorchSynaptic(alpha=_per_neuron(alpha, n), **common)
        else:
            model = SnnTorchLeaky(**common)
        pop = net.population(n, model, name=f"{prefix}{k}")
        net.projection(pre, pop, weight=linear.weight.detach().cpu().double().numpy().T,
                       receptor="syn", sparse=False, delay=delay, name=f"{pre.name}_{pop.name}")
        out.append(pop)
        pre = pop
    return out


def _per_neuron(value: np.ndarray, n: int) -> float | np.ndarray:
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(value[0]) if value.size == 1 else np.broadcast_to(value, (n,)).copy()


def to_sequential(net: "Network", populations: Sequence["Population"]) -> torch.nn.Sequential:
    """The ``nn.Sequential`` (``nn.Linear`` + ``snn.Leaky`` / ``snn.Synaptic`` pairs, with
    ``init_hidden=True``) of the chain ``populations[0] -> populations[1] -> ...`` of
    :class:`~neurosim.SnnTorchLeaky` / :class:`~neurosim.SnnTorchSynaptic` populations,
    with the weights (as learned so far) of the ``"syn"`` projections between
    consecutive populations."""
    import snntorch as snn

    from neurosim.models.snntorch_leaky import SnnTorchLeaky
    from neurosim.models.snntorch_synaptic import SnnTorchSynaptic

    layers: list[torch.nn.Module] = []
    for pre, post in zip(populations[:-1], populations[1:]):
        if not isinstance(post.model, (SnnTorchLeaky, SnnTorchSynaptic)):
            raise ValueError(f"to_sequential: population '{post.name}' is {post.model_name}, "
                             "not SnnTorchLeaky or SnnTorchSynaptic")
        projs = [p for p in net.projections.values() if p.pre is pre and p.post is post
                 and p.receptor == "syn"]
        if len(projs) != 1:
            raise ValueError(f"to_sequential: expected one 'syn' projection from '{pre.name}' to "
                             f"'{post.name}', found {len(projs)}")
        weights = torch.as_tensor(projs[0].weight_matrix(), dtype=torch.float32)
        linear = torch.nn.Linear(pre.n, post.n)
        p = post.params
        with torch.no_grad():
            linear.weight.copy_(weights.T)
            linear.bias.copy_(torch.as_tensor(np.broadcast_to(p["i_bias"], (post.n,)).copy()))
        subtract = np.unique(np.asarray(p["subtract"]))
        if subtract.size != 1:
            raise ValueError(f"to_sequential: population '{post.name}' mixes reset mechanisms")
        common = dict(beta=torch.as_tensor(p["beta"], dtype=torch.float32),
                      threshold=torch.as_tensor(p["threshold"], dtype=torch.float32),
                      reset_mechanism="subtract" if subtract[0] else "zero", init_hidden=True)
        if isinstance(post.model, SnnTorchSynaptic):
            layers += [linear, snn.Synaptic(alpha=torch.as_tensor(p["alpha"], dtype=torch.float32),
                                            **common)]
        else:
            layers += [linear, snn.Leaky(**common)]
    return torch.nn.Sequential(*layers)
