"""Saving and loading a network's state: a versioned HDF5 file, never pickle.

Layout (format ``neurosim-state``, version 2): root attributes ``format``,
``format_version``, ``neurosim_version``, ``network_json``, ``dt_ms`` and
``structure`` (JSON: population models and sizes, and a hash of each
projection's synapses); one dataset per entry of
:meth:`neurosim.Network.state_dict`, named by its key (e.g.
``populations.exc.v``) under the group ``state/``. Version 1 files (without
``dt_ms`` and ``structure``) still load; their dt is read from ``network_json``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np
import torch

STATE_FORMAT_VERSION = 2
#: versions this neurosim reads
READABLE_VERSIONS = (1, 2)


def save_state_file(path: str | os.PathLike[str], state: dict[str, torch.Tensor],
                    description: dict[str, Any], overwrite: bool = False, *,
                    dt_ms: float, structure: dict[str, Any]) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"state file path {path!r} is a directory; give a file name")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it")
    from neurosim import __version__

    tmp = path + ".partial"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "neurosim-state"
        f.attrs["format_version"] = STATE_FORMAT_VERSION
        f.attrs["neurosim_version"] = __version__
        f.attrs["network_json"] = json.dumps(description)
        f.attrs["dt_ms"] = float(dt_ms)
        f.attrs["structure"] = json.dumps(structure)
        group = f.create_group("state")
        for key, tensor in state.items():
            group.create_dataset(key, data=tensor.detach().cpu().numpy())
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated state file at `path`


def load_state_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state, info): the saved tensors, and ``format_version``, ``dt_ms`` (None if
    unknown), ``structure`` (None in version 1) and ``network`` (the description)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"state file {path!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"state file {path!r} is a directory; give the file written by "
                                "Network.save_state")
    try:
        f = h5py.File(path, "r")
    except OSError:
        # h5py's own text is a page of HDF5 internals; what matters is that the file is unusable
        raise ValueError(f"{path!r} cannot be read as a neurosim state file: it is not an HDF5 "
                         "file, or it is truncated or damaged") from None
    with f:
        if f.attrs.get("format") != "neurosim-state":
            raise ValueError(f"{path!r} is not a neurosim state file")
        version = int(f.attrs.get("format_version", -1))
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{path!r} has state format version {version}; this neurosim reads "
                             f"versions {', '.join(map(str, READABLE_VERSIONS))}")
        try:
            network = json.loads(f.attrs.get("network_json", "{}"))
            structure = json.loads(f.attrs["structure"]) if "structure" in f.attrs else None
            dt = f.attrs.get("dt_ms", network.get("dt_ms"))
            state = {key: torch.as_tensor(np.asarray(ds[()])) for key, ds in f["state"].items()}
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path!r} is damaged or truncated: its state could not be read "
                             f"({type(exc).__name__})") from None
    info = {"format_version": version, "dt_ms": None if dt is None else float(dt),
            "structure": structure, "network": network}
    return state, info
