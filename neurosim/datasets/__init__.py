"""Data sets (MNIST, Fashion-MNIST in IDX format, checksum-verified) and spike encoders.

A subpackage, not a top-level ``datasets`` package, so it never collides with the
widely installed package of that name.
"""

from neurosim.datasets.encoders import latency_code, poisson_spikes, rate_code
from neurosim.datasets.idx import DatasetError, parse_idx, read_bytes
from neurosim.datasets.mnist import (DatasetNotFoundError, DownloadError, load_fashion_mnist,
                                     load_mnist, search_directories)
from neurosim.datasets.presenter import present

__all__ = ["DatasetError", "DatasetNotFoundError", "DownloadError", "latency_code", "load_fashion_mnist", "load_mnist", "parse_idx",
           "poisson_spikes", "present", "rate_code", "read_bytes", "search_directories"]
