"""Reading IDX files (the MNIST format), gzip-compressed or raw."""

from __future__ import annotations

import gzip
import os

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(Exception):
    """A data file is missing, corrupt, or not what it claims to be."""


def decompress(data: bytes, name: str = "data") -> bytes:
    """``data`` gunzipped if it is gzip (detected by its magic bytes), else unchanged."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{name} is not a valid gzip file ({exc})") from None


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The decompressed content of the file at ``path``."""
    with open(path, "rb") as fh:
        return decompress(fh.read(), repr(os.fspath(path)))


def parse_idx(data: bytes, name: str = "data") -> np.ndarray:
    """Parse IDX bytes: magic (0, 0, type, ndim), big-endian int32 sizes, then the values."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DatasetError(f"{name} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(x) for x in np.frombuffer(data[4:header], dtype=">i4"))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{name}: header promises {expected} bytes of data, file has "
                           f"{len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
