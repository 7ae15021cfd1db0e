"""The CIFAR loaders read the official python-version pickles (a made-up copy here)."""

import os
import pickle

import numpy as np
import pytest

from neurosim.datasets import DatasetError, DatasetNotFoundError
from neurosim.datasets.cifar import load_cifar10, load_cifar100, standardized_channels


def _write(folder, name, data, labels, key=b"labels"):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        pickle.dump({b"data": data, key: list(labels)}, f)


def test_cifar10_batches_are_joined_in_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 256, (4, 3072), dtype=np.uint8) for _ in range(5)]
    for k, part in enumerate(parts, start=1):
        _write(folder, f"data_batch_{k}", part, [k] * 4)
    _write(folder, "test_batch", parts[0][:2], [9, 0])
    x, y = load_cifar10("train", tmp_path)  # the parent folder is accepted
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[4:8].reshape(4, -1), parts[1])
    np.testing.assert_array_equal(y, np.repeat(np.arange(1, 6), 4))
    xt, yt = load_cifar10("test", folder)
    assert list(yt) == [9, 0]
    z = standardized_channels(x[:1], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert z.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(z[0, 1, 0, 0].item(), (x[0, 1, 0, 0] / 255 - 0.5) / 0.25, rtol=1e-6)


def test_cifar100_fine_labels_and_errors(tmp_path):
    folder = tmp_path / "cifar-100-python"
    data = np.zeros((3, 3072), np.uint8)
    _write(folder, "train", data, [0, 50, 99], key=b"fine_labels")
    x, y = load_cifar100("train", folder)
    assert list(y) == [0, 50, 99]
    _write(folder, "test", data, [0, 100, 1], key=b"fine_labels")
    with pytest.raises(DatasetError, match="labels outside 0..99"):
        load_cifar100("test", folder)
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        load_cifar10("train", tmp_path / "nothing")
    (folder / "test").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="not a readable"):
        load_cifar100("test", folder)
