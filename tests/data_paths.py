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


def _candidates() -> list[str]:
    out = []
    env = os.environ.get("NEUROSIM_DATA")
    if env:
        env = os.path.abspath(env)
        # the variable may name a data set's own folder: its parent holds the others
        out.append(os.path.dirname(env) if os.path.basename(env) in NAMES else env)
    out.append(BESIDE_CLONE)
    return out


def _find() -> str:
    for c in _candidates():
        if os.path.isdir(os.path.join(c, "mnist")):
            return c
    return _candidates()[0]


#: the folder holding ``mnist/`` (and ``fashion-mnist/``)
DATASETS = _find()
MNIST = os.path.join(DATASETS, "mnist")

requires_datasets = pytest.mark.skipif(
    not os.path.isdir(MNIST) and not os.environ.get("CI"),
    reason=f"offline MNIST not found in {' or '.join(_candidates())}: set NEUROSIM_DATA to the "
           f"folder holding mnist/")
