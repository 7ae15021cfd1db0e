"""Where the tests find the offline MNIST / Fashion-MNIST copies.

``$NEUROSIM_DATA`` first (the folder holding ``mnist/`` and ``fashion-mnist/``, or
one of those folders itself), then ``../shared/datasets`` beside this clone. Tests
that need the data skip with a reason that says where they looked and what to set;
in CI (``CI`` set) they run and fail instead, so missing data is never silent there.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BESIDE_CLONE = os.path.join(os.path.dirname(ROOT), "shared", "datasets")
NAMES = ("mnist", "fashion-mnist")


def _holds_files(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, "t10k-labels-idx1-ubyte" + ext))
               for ext in (".gz", ""))


def _candidates() -> list[tuple[str, str]]:
    """(folder holding the data sets, MNIST folder), in search order."""
    out = []
    env = os.environ.get("NEUROSIM_DATA")
    if env:
        env = os.path.abspath(env)
        # the variable may name MNIST's own folder (holding the files): its parent
        # holds the other data sets
        if _holds_files(env) or os.path.basename(env) in NAMES:
            out.append((os.path.dirname(env), env))
        else:
            out.append((env, os.path.join(env, "mnist")))
    out.append((BESIDE_CLONE, os.path.join(BESIDE_CLONE, "mnist")))
    return out


def _find() -> tuple[str, str]:
    for datasets, mnist in _candidates():
        if os.path.isdir(mnist):
            return datasets, mnist
    return _candidates()[0]


#: the folder holding ``mnist/`` (and ``fashion-mnist/``), and MNIST's own folder
DATASETS, MNIST = _find()

requires_datasets = pytest.mark.skipif(
    not os.path.isdir(MNIST) and not os.environ.get("CI"),
    reason=f"offline MNIST not found in {' or '.join(m for _, m in _candidates())}: set "
           f"NEUROSIM_DATA to the folder holding mnist/")
