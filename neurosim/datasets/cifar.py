"""CIFAR-10 and CIFAR-100 (the "python version" archives), for users who have them.

Not shipped with the offline copies here, and never downloaded: put the extracted
folder (``cifar-10-batches-py`` or ``cifar-100-python``) in ``directory``, in
``$NEUROSIM_DATA``, or in ``~/.cache/neurosim/datasets``; a directory may be that
folder or its parent. The files are the official pickles (``data_batch_1`` ..
``data_batch_5`` and ``test_batch``; ``train`` and ``test``), each a dict with
``data`` (N x 3072 uint8, channels first) and ``labels`` (``fine_labels`` for CIFAR-100).
"""

from __future__ import annotations

import os
import pickle
from typing import Sequence

import numpy as np

from neurosim.datasets.idx import DatasetError
from neurosim.datasets.mnist import DatasetFiles, DatasetNotFoundError, search_directories

CIFAR10 = DatasetFiles("cifar-10-batches-py", {}, ())
CIFAR100 = DatasetFiles("cifar-100-python", {}, ())
_FILES = {("cifar-10-batches-py", "train"): [f"data_batch_{k}" for k in range(1, 6)],
          ("cifar-10-batches-py", "test"): ["test_batch"],
          ("cifar-100-python", "train"): ["train"], ("cifar-100-python", "test"): ["test"]}
#: per-channel (mean, std) of the training pixels in [0, 1]
CHANNEL_STATISTICS = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                      "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}


def _load(dataset: DatasetFiles, split: str, directory, also_look_in, classes: int,
          label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    names = _FILES[(dataset.name, split)]
    dirs = search_directories(dataset, directory, also_look_in)
    folder = next((d for d in dirs if all(os.path.isfile(os.path.join(d, n)) for n in names)), None)
    if folder is None:
        raise DatasetNotFoundError(
            f"{dataset.name}: {', '.join(names)} not found; looked in {', '.join(map(repr, dirs))}. "
            f"Extract the python version of the data set and pass its folder (or the folder "
            f"holding '{dataset.name}/'), or set NEUROSIM_DATA", dataset.name, dirs)
    images, labels = [], []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labs = np.asarray(batch[label_key], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path!r}: not a readable {dataset.name} batch ({exc})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(labs) != len(data):
            raise DatasetError(f"{path!r}: expected N x 3072 images and N labels, got {data.shape} "
                               f"and {labs.shape}")
        if labs.size and (labs.min() < 0 or labs.max() >= classes):
            raise DatasetError(f"{path!r}: labels outside 0..{classes - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(labs)
    return np.concatenate(images), np.concatenate(labels)


def load_cifar10(split: str = "train", directory: str | os.PathLike[str] | None = None,
                 also_look_in: Sequence[str | os.PathLike[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,) in 0..9)."""
    return _load(CIFAR10, split, directory, also_look_in, 10, b"labels")


def load_cifar100(split: str = "train", directory: str | os.PathLike[str] | None = None,
                  also_look_in: Sequence[str | os.PathLike[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,) in 0..99, the fine labels)."""
    return _load(CIFAR100, split, directory, also_look_in, 100, b"fine_labels")


def standardized_channels(images: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """``(N, 3, 32, 32)`` float32 tensor of ``(pixel / 255 - mean_c) / std_c``."""
    import torch

    x = torch.as_tensor(np.asarray(images)).float() / 255.0
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s
