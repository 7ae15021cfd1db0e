"""MNIST and Fashion-MNIST: find, verify and load the IDX files.

Where the loaders look, in order (``<name>`` is ``mnist`` or ``fashion-mnist``):

1. the ``directory`` argument, if given, and nothing else;
2. ``$NEUROSIM_DATA`` when that environment variable is set;
3. the ``also_look_in`` directories, if given (an example script adds the
   ``shared/datasets`` folder beside its clone);
4. ``~/.cache/neurosim/datasets/<name>`` (where ``download=True`` puts them);
5. ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package).

A directory given by argument or variable may be the folder holding the files
or its parent (the folder holding ``<name>/``): both are accepted.

Files may be gzip-compressed (``*.gz``) or raw; either way the decompressed bytes
are checked against the published MD5 sums, so a truncated or altered file is an
error, not silently wrong data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from neurosim.datasets.idx import DatasetError, decompress, parse_idx, read_bytes

#: seconds to wait for a mirror: an offline machine should hear so soon, not after minutes
DOWNLOAD_TIMEOUT_S = 10.0


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are in none of the searched directories.

    ``searched`` lists the directories in order; ``dataset`` names the data set.
    """

    def __init__(self, message: str, dataset: str, searched: list[str]) -> None:
        super().__init__(message)
        self.dataset, self.searched = dataset, searched


class DownloadError(DatasetError):
    """Every mirror failed (typically: no internet); ``target`` is where files would go."""

    def __init__(self, message: str, dataset: str, target: str) -> None:
        super().__init__(message)
        self.dataset, self.target = dataset, target


@dataclass(frozen=True)
class DatasetFiles:
    name: str
    files: dict[str, str]        # file stem -> md5 of the decompressed bytes
    mirrors: tuple[str, ...]     # base URLs that serve "<stem>.gz"


STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

MNIST = DatasetFiles("mnist", {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}, ("https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/"))

FASHION_MNIST = DatasetFiles("fashion-mnist", {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}, ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",))


def search_directories(dataset: DatasetFiles, directory: str | os.PathLike[str] | None,
                       also_look_in: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """The directories the loader tries, in order (see the module doc)."""
    if directory is not None:
        return _both_forms(os.fspath(directory), dataset)
    dirs: list[str] = []
    if os.environ.get("NEUROSIM_DATA"):
        dirs += _both_forms(os.environ["NEUROSIM_DATA"], dataset)
    for d in also_look_in:
        dirs += _both_forms(os.fspath(d), dataset)
    dirs.append(default_directory(dataset))
    dirs.append(os.path.join("/usr/share/datasets", dataset.name))
    return list(dict.fromkeys(dirs))


def _both_forms(directory: str, dataset: DatasetFiles) -> list[str]:
    """A user's folder may hold the files or a ``<name>/`` folder with them."""
    inner = os.path.join(directory, dataset.name)
    if os.path.basename(os.path.normpath(directory)) == dataset.name:
        return [directory]
    return [directory, inner]


def download_directory(dataset: DatasetFiles, directory: str | os.PathLike[str] | None) -> str:
    """Where ``download=True`` puts missing files: ``directory/<name>`` (or ``directory``
    itself when it is named ``<name>``), else the user's cache. Data sets whose files
    share names (MNIST, Fashion-MNIST) so never land in one folder."""
    if directory is None:
        return default_directory(dataset)
    directory = os.fspath(directory)
    if os.path.basename(os.path.normpath(directory)) == dataset.name:
        return directory
    return os.path.join(directory, dataset.name)


def default_directory(dataset: DatasetFiles) -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "neurosim", "datasets", dataset.name)


def _find(dataset: DatasetFiles, stem: str, dirs: list[str]) -> str | None:
    for d in dirs:
        for candidate in (stem + ".gz", stem):
            path = os.path.join(d, candidate)
            if os.path.isfile(path):
                return path
    return None


def _download(dataset: DatasetFiles, stem: str, target_dir: str) -> str:
    made = _missing_parents(target_dir)
    os.makedirs(target_dir, exist_ok=True)
    errors = []
    try:
        for base in dataset.mirrors:
            url = base + stem + ".gz"
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:  # noqa: S310 - fixed mirrors
                    payload = resp.read()
            except OSError as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            data = decompress(payload, url)
            if hashlib.md5(data).hexdigest() != dataset.files[stem]:
                errors.append(f"{url}: checksum mismatch")
                continue
            fd, tmp = tempfile.mkstemp(dir=target_dir)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            path = os.path.join(target_dir, stem + ".gz")
            os.replace(tmp, path)
            made = []  # keep the folders: they hold a file now
            return path
    finally:
        for d in reversed(made):  # an offline attempt leaves no empty folders behind
            try:
                os.rmdir(d)
            except OSError:
                break
    raise DownloadError(f"could not download {stem} of {dataset.name} (is this machine "
                        f"offline?): " + "; ".join(errors), dataset.name, target_dir)


def _missing_parents(directory: str) -> list[str]:
    """The folders ``os.makedirs(directory)`` would create, outermost first."""
    out = []
    d = os.path.abspath(directory)
    while not os.path.exists(d):
        out.append(d)
        d = os.path.dirname(d)
    return out[::-1]


def locate(dataset: DatasetFiles, split: str = "train",
           directory: str | os.PathLike[str] | None = None,
           also_look_in: Sequence[str | os.PathLike[str]] = ()) -> str | None:
    """The folder that :func:`load` would read ``split`` from, or None if not found."""
    path = _find(dataset, STEMS[split][0], search_directories(dataset, directory, also_look_in))
    return None if path is None else os.path.dirname(path)


def load(dataset: DatasetFiles, split: str = "train", directory: str | os.PathLike[str] | None = None,
         download: bool = False,
         also_look_in: Sequence[str | os.PathLike[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of ``split`` ('train' or 'test')."""
    if split not in STEMS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dirs = search_directories(dataset, directory, also_look_in)
    arrays = []
    for stem in STEMS[split]:
        path = _find(dataset, stem, dirs)
        if path is None and download:
            path = _download(dataset, stem, download_directory(dataset, directory))
        if path is None:
            raise DatasetNotFoundError(
                f"{dataset.name}: {stem}(.gz) not found; looked in {', '.join(map(repr, dirs))}. "
                f"Put the four IDX files of {dataset.name} in one of these directories, set "
                f"NEUROSIM_DATA to a directory holding them (or holding '{dataset.name}/'), or "
                f"pass download=True (needs internet)", dataset.name, dirs)
        data = read_bytes(path)
        digest = hashlib.md5(data).hexdigest()
        if digest != dataset.files[stem]:
            raise DatasetError(f"{path!r}: checksum mismatch (md5 of the decompressed data is "
                               f"{digest}, expected {dataset.files[stem]}); the file is corrupt or "
                               f"not the original: delete it and get it again")
        arrays.append(parse_idx(data, path))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{dataset.name} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def load_mnist(split: str = "train", directory: str | os.PathLike[str] | None = None,
               download: bool = False,
               also_look_in: Sequence[str | os.PathLike[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: (images uint8 (N, 28, 28), labels uint8 (N,) in 0..9). See the module doc."""
    return load(MNIST, split, directory, download, also_look_in)


def load_fashion_mnist(split: str = "train", directory: str | os.PathLike[str] | None = None,
                       download: bool = False,
                       also_look_in: Sequence[str | os.PathLike[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: (images uint8 (N, 28, 28), labels uint8 (N,) in 0..9). See the module doc."""
    return load(FASHION_MNIST, split, directory, download, also_look_in)
