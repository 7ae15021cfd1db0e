"""A network's state as named tensors and as a state file: what
:meth:`neurosim.Network.state_dict`, ``load_state_dict``, ``save_state`` and
``load_state`` do.

Loading checks everything before it changes anything, so a rejected state leaves the
network as it was. The functions see the network through
:class:`neurosim.views.StateHost`, so this module does not import
:mod:`neurosim.network` (which calls it). The file format is :mod:`neurosim.state_file`'s.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from neurosim.state_file import load_state_file, save_state_file
from neurosim.views import StateHost

if TYPE_CHECKING:
    from neurosim.projection import Projection


def state_dict(net: StateHost) -> dict[str, torch.Tensor]:
    """Every piece of state of ``net``, by name (see :meth:`neurosim.Network.state_dict`)."""
    net._prepare()  # spike rings get their final length, as in any state a run leaves
    out: dict[str, torch.Tensor] = {"clock.step": torch.tensor(net.clock.step)}
    for name, pop in net.populations.items():
        for var, t in pop.state_tensors().items():
            out[f"populations.{name}.{var}"] = t
    for name, proj in net.projections.items():
        for var, t in proj.state_tensors().items():
            out[f"projections.{name}.{var}"] = t
    for name, rule in net.rules.items():
        for var, t in rule.state_tensors().items():
            out[f"rules.{name}.{var}"] = t
    for mod in net.modulators:
        out[f"modulators.{mod.name}"] = mod.value
        if mod.derived is not None:  # e.g. a count error's counts so far and its target
            for key, t in mod.derived.arrays().items():
                out[f"modulators.{mod.name}.{key}"] = t
    return out


def load_state_dict(net: StateHost, state: Mapping[str, torch.Tensor]) -> None:
    """Restore ``state`` into ``net``, checking every entry before changing anything
    (see :meth:`neurosim.Network.load_state_dict`)."""
    own = state_dict(net)
    # a derived signal's own arrays (a count error's counts and target) are saved since
    # format 2 files of 2026-11-30; older files lack them, and they are then kept as they are
    optional = {f"modulators.{mod.name}.{key}" for mod in net.modulators if mod.derived is not None
                for key in mod.derived.arrays()}
    own = {k: v for k, v in own.items() if k in state or k not in optional}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"state does not match this network: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    checked: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        value = torch.as_tensor(value)
        if key == "clock.step":
            if value.dim() != 0 or value.dtype == torch.bool or value.is_floating_point() \
                    or value.is_complex() or int(value) < 0:
                raise ValueError(f"state 'clock.step' must be a non-negative integer, got {value!r}")
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"state {key!r} has shape {tuple(value.shape)}, this network "
                             f"needs {tuple(own[key].shape)}")
        if (own[key].dtype == torch.bool) != (value.dtype == torch.bool):
            raise ValueError(f"state {key!r} has dtype {value.dtype}, this network needs "
                             f"{own[key].dtype}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"state {key!r} contains NaN or inf")
        checked[key] = value
    for name, proj in net.projections.items():
        check_loaded_weights(proj, checked[f"projections.{name}.weight"])
    with torch.no_grad():  # (a trainable gate's parameters are leaves that require grad)
        for key, value in checked.items():
            own[key].copy_(value.to(own[key].dtype))
    for pop in net.populations.values():
        if pop.gate is not None:
            pop.gate.loaded()
    net.clock.step = int(state["clock.step"])


def check_loaded_weights(proj: Projection, w: torch.Tensor) -> None:
    """Refuse weights between neurons that ``proj`` does not connect."""
    # (no sign check: rules with bounds below 0 may legitimately leave such weights)
    if proj.mask is not None and bool((w.to(proj.device)[~proj.mask] != 0).any()):
        raise ValueError(f"state 'projections.{proj.name}.weight' has nonzero weights between "
                         "unconnected neurons; it comes from a projection with other synapses")
    proj.check_tied(w, f"state 'projections.{proj.name}.weight'")


def structure(net: StateHost) -> dict[str, Any]:
    """What a state file must match beyond names and shapes: population models and
    sizes, and which synapses each projection's weights belong to."""
    return {"populations": {name: [pop.model_name, pop.n] for name, pop in net.populations.items()},
            "projections": {name: proj.structure_digest() for name, proj in net.projections.items()}}


def save_state(net: StateHost, path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Write ``net``'s state to an HDF5 state file (see :meth:`neurosim.Network.save_state`)."""
    save_state_file(path, state_dict(net), net.describe(), overwrite=overwrite,
                    dt_ms=net.dt, structure=structure(net))


def load_state(net: StateHost, path: str | os.PathLike[str]) -> None:
    """Load a state file into ``net`` (see :meth:`neurosim.Network.load_state`)."""
    state, info = load_state_file(path)
    check_state_file(net, os.fspath(path), info)
    load_state_dict(net, state)


def check_state_file(net: StateHost, path: str, info: Mapping[str, Any],
                     own: dict[str, Any] | None = None) -> None:
    """Refuse a state file saved at another time step or from another structure.

    Warns (pointing at the caller of ``Network.load_state``) when the file is too old
    to hold a structure fingerprint.
    """
    saved_dt = info["dt_ms"]
    if saved_dt is not None and saved_dt != net.dt:
        raise ValueError(f"{path!r} was saved at dt = {saved_dt:g} ms, this network has dt = "
                         f"{net.dt:g} ms; delays count steps and the neurons' propagators are "
                         f"computed for dt, so build the network with dt={saved_dt:g} to load it")
    saved = info["structure"]
    if saved is None:
        # stacklevel: here, load_state, Network.load_state, then the user's call
        warnings.warn(f"{path!r} is a version {info['format_version']} state file without a "
                      "structure fingerprint: that its weights belong to the same synapses is "
                      "not checked (save it again to upgrade)", stacklevel=4)
        return
    own = structure(net) if own is None else own  # (a partitioned run's: the whole network's)
    for name in sorted(set(saved["populations"]) | set(own["populations"])):
        a, b = saved["populations"].get(name), own["populations"].get(name)
        if a is None or b is None or list(a) != list(b):
            raise ValueError(f"{path!r} does not fit this network: population {name!r} is "
                             f"{_describe_pop(a)} in the file and {_describe_pop(b)} here")
    for name in sorted(set(saved["projections"]) | set(own["projections"])):
        a, b = saved["projections"].get(name), own["projections"].get(name)
        if a is None or b is None:
            raise ValueError(f"{path!r} does not fit this network: projection {name!r} exists "
                             f"only {'here' if a is None else 'in the file'}")
        if a != b:
            raise ValueError(f"{path!r} does not fit this network: projection {name!r} connects "
                             "other pairs of neurons than the saved one (was the network built "
                             "with another seed, connector or matrix?); its weights would land "
                             "on the wrong synapses")


def _describe_pop(entry: Sequence[Any] | None) -> str:
    return "absent" if entry is None else f"{entry[1]} {entry[0]} neurons"
