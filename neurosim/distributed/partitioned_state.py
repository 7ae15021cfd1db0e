"""State files of partitioned runs: written whole, as one process writes them.

:func:`save_state` gathers every process's share to process 0, which writes the state
of the whole network in the one-process layout (populations whole, each projection's
weights in its whole storage order, its structure fingerprint the whole one's). So a
file saved by N processes loads into one process, and :func:`load_state` loads a file
of any origin into a partitioned network, each process taking its share.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from neurosim import network_state
from neurosim.distributed.collect import gather_to_first
from neurosim.distributed.projection_share import whole_digest, whole_positions
from neurosim.state_file import load_state_file, save_state_file

if TYPE_CHECKING:
    from neurosim.network import Network


def _is_mirror(pop: Any) -> bool:
    return getattr(pop, "mirror_of", None) is not None


def _is_split(pop: Any) -> bool:
    return getattr(pop, "mirror", None) is not None


def structure(net: "Network") -> dict[str, Any]:
    """The whole network's structure fingerprint (see ``network_state.structure``);
    collective: every process calls it (a projection drawn share by share is hashed
    whole by process 0, :func:`~neurosim.distributed.projection_share.whole_digest`)."""
    def digest(proj: Any) -> str:
        whole = getattr(proj, "whole", None)
        if not whole:
            return proj.structure_digest()
        return whole["digest"] or whole_digest(net.partition, proj)
    return {"populations": {name: [pop.model_name, pop.n_global] for name, pop in net.populations.items()
                            if not _is_mirror(pop)},
            "projections": {name: digest(proj) for name, proj in net.projections.items()}}


def whole_state(net: "Network") -> dict[str, torch.Tensor] | None:
    """The state of the whole network, as one process would have it, in process 0
    (None in the others). Collective: every process calls it."""
    local = network_state.state_dict(net)
    mine: dict[str, Any] = {}  # what process 0 cannot know: this process's shares
    for name, pop in net.populations.items():
        if _is_split(pop):
            for var, t in pop.state_tensors().items():
                if var != "spike_history":
                    mine[f"populations.{name}.{var}"] = t.cpu().numpy()
    for name, proj in net.projections.items():
        if getattr(proj, "whole", None) is not None:  # (CSR: with the synapses' whole places)
            mine[f"projections.{name}.weight"] = (whole_positions(proj) if proj.sparse else None,
                                                  proj.weight.detach().cpu().numpy())
    cut = _cut_rule_sides(net)
    for key, (proj, side) in cut.items():
        t = local[key].detach().cpu().numpy()
        if side == "post":
            mine[key] = t
        elif side == "synapse":
            mine[key] = (whole_positions(proj) if proj.sparse else None, t)
    gathered = gather_to_first(net.partition, mine)
    if gathered is None:
        return None
    out: dict[str, torch.Tensor] = {}
    for key, value in local.items():
        name = key.split(".")[1] if key.startswith(("populations.", "projections.")) else None
        if key.startswith("populations."):
            pop = net.populations[name]
            if _is_mirror(pop):
                continue
            if _is_split(pop):
                var = key[len(f"populations.{name}."):]
                value = (pop.mirror.history if var == "spike_history" else
                         torch.as_tensor(np.concatenate([g[key] for g in gathered], axis=-1)))
        elif key.startswith("projections."):
            proj = net.projections[name]
            whole = getattr(proj, "whole", None)
            if whole is not None:
                if proj.sparse:
                    weights = np.zeros(whole["nnz"], dtype=gathered[0][key][1].dtype)
                    for positions, values in (g[key] for g in gathered):
                        weights[positions] = values
                else:
                    weights = np.concatenate([g[key][1] for g in gathered], axis=1)
                value = torch.as_tensor(weights)
        elif key in cut and cut[key][1] in ("post", "synapse"):
            proj, side = cut[key]
            if side == "synapse" and proj.sparse:  # (synapses on the last axis, by whole place)
                first = gathered[0][key][1]
                joined = np.zeros(first.shape[:-1] + (proj.whole["nnz"],), dtype=first.dtype)
                for positions, values in (g[key] for g in gathered):
                    joined[..., positions] = values
            else:  # postsynaptic neurons (or a dense projection's columns) on the last axis
                joined = np.concatenate([g[key][1] if side == "synapse" else g[key]
                                         for g in gathered], axis=-1)
            value = torch.as_tensor(joined)
        out[key] = value
    return out


def _cut_rule_sides(net: "Network") -> dict[str, tuple[Any, str]]:
    """The state of the rules on projections cut to this process's share, by state-dict
    key: (projection, side), the side being which neurons the last axis runs over:
    ``post`` (this process's share), ``synapse`` (its synapses), ``pre`` or ``scalar``
    (the same in every process)."""
    out: dict[str, tuple[Any, str]] = {}
    for name, rule in net.rules.items():
        proj = rule.projection
        if getattr(proj, "whole", None) is None:
            continue
        recipe = rule.declared
        sides = {"eligibility": "synapse"}
        for trace in recipe.traces:
            sides[f"{trace.name}.value"] = sides[f"{trace.name}.before"] = trace.side
        for state in recipe.neuron_state:
            sides[state.name] = state.side
        for var in rule.state_tensors():
            if var not in sides:
                raise ValueError(f"rule '{name}': its state {var!r} is not a declared trace or "
                                 "neuron state, so a partitioned run cannot join it into a state file")
            out[f"rules.{name}.{var}"] = (proj, sides[var])
    return out


def save_state(net: "Network", path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Write the whole network's state (process 0 writes; collective)."""
    fingerprint = structure(net)
    state = whole_state(net)
    if state is not None:
        description = net.describe()
        description.pop("processes", None)
        save_state_file(path, state, description, overwrite=overwrite, dt_ms=net.dt,
                        structure=fingerprint)
    if net.partition.size > 1:
        dist.barrier(group=net.partition.group)  # the file is whole before any process goes on


def load_state(net: "Network", path: str | os.PathLike[str]) -> None:
    """Load a whole state file (saved by any number of processes) into a partitioned
    network: each process takes its share."""
    state, info = load_state_file(path)
    own_structure = structure(net)
    network_state.check_state_file(net, os.fspath(path), info, own_structure)
    local = network_state.state_dict(net)
    cut = _cut_rule_sides(net)
    mine: dict[str, torch.Tensor] = {}
    for key, value in local.items():
        name = key.split(".")[1] if key.startswith(("populations.", "projections.")) else None
        if key.startswith("populations."):
            pop = net.populations[name]
            var = key[len(f"populations.{name}."):]
            if _is_mirror(pop):
                mine[key] = _recent_slots(_saved(state, f"populations.{pop.mirror_of.name}.spike_history"),
                                          value.shape[0], int(_saved(state, "clock.step")))
                continue
            saved = _saved(state, key)
            if _is_split(pop):
                if var == "spike_history":
                    saved = _recent_slots(saved, value.shape[0], int(_saved(state, "clock.step")))
                saved = saved[..., pop.offset:pop.offset + pop.n]
            mine[key] = saved
        elif key.startswith("projections."):
            proj = net.projections[name]
            saved = _saved(state, key)
            whole = getattr(proj, "whole", None)
            if whole is not None:
                post = proj.post
                saved = (saved[torch.as_tensor(whole_positions(proj))] if proj.sparse else
                         saved[:, post.offset:post.offset + post.n])
            mine[key] = saved
        elif key in cut and cut[key][1] in ("post", "synapse"):
            proj, side = cut[key]
            saved = _saved(state, key)
            post = proj.post
            mine[key] = (saved[..., torch.as_tensor(whole_positions(proj))]
                         if side == "synapse" and proj.sparse else
                         saved[..., post.offset:post.offset + post.n])
        else:
            mine[key] = _saved(state, key)
    network_state.load_state_dict(net, mine)


def _saved(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"state file lacks {key!r}: it comes from another network")
    return torch.as_tensor(state[key])


def _recent_slots(ring: torch.Tensor, length: int, step: int) -> torch.Tensor:
    """A spike ring of ``length`` slots holding the latest steps of ``ring`` (slot ``t %
    slots`` holds step ``t``; steps before ``step``). Steps the saved ring no longer held
    stay empty: no projection reads them (a ring is as long as its longest reader needs;
    a split population's own ring only holds a slice until it is sent)."""
    slots = ring.shape[0]
    out = torch.zeros((length,) + tuple(ring.shape[1:]), dtype=ring.dtype)
    for t in range(max(0, step - min(length, slots)), step):
        out[t % length] = ring[t % slots]
    return out
