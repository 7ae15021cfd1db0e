"""Saving and loading a network's state: a versioned HDF5 file, never pickle.

Layout (format ``neurosim-state``, version 1): root attributes ``format``,
``format_version``, ``neurosim_version``, ``network_json``; one dataset per
entry of :meth:`neurosim.Network.state_dict`, named by its key (e.g.
``populations.exc.v``) under the group ``state/``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np
import torch

STATE_FORMAT_VERSION = 1


def save_state_file(path: str | os.PathLike[str], state: dict[str, torch.Tensor],
                    description: dict[str, Any], overwrite: bool = False) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory {directory!r} does not exist")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it")
    from neurosim import __version__

    tmp = path + ".partial"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "neurosim-state"
        f.attrs["format_version"] = STATE_FORMAT_VERSION
        f.attrs["neurosim_version"] = __version__
        f.attrs["network_json"] = json.dumps(description)
        group = f.create_group("state")
        for key, tensor in state.items():
            group.create_dataset(key, data=tensor.detach().cpu().numpy())
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated state file at `path`


def load_state_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"state file {path!r} does not exist")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "neurosim-state":
            raise ValueError(f"{path!r} is not a neurosim state file")
        version = int(f.attrs.get("format_version", -1))
        if version != STATE_FORMAT_VERSION:
            raise ValueError(f"{path!r} has state format version {version}; this neurosim reads "
                             f"version {STATE_FORMAT_VERSION}")
        return {key: torch.as_tensor(np.asarray(ds[()])) for key, ds in f["state"].items()}
