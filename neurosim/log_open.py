"""Opening a log file read-only without ever waiting long, whatever the file holds.

Why this exists: a log whose writer was killed keeps HDF5's SWMR-write flag, so it
opens only in SWMR-read mode. In that mode HDF5 retries every metadata read whose
checksum fails (a writer may be half-way through updating it) up to 100 times,
sleeping 2**k ns before retry k: on a truncated or garbled file one read sleeps for
hours. So before opening, :func:`check_file` reads the superblock itself (signature,
version, checksum, and the end-of-file address it records, which a truncated copy
no longer reaches), and :func:`open_hdf5` caps the retries
(``H5Pset_metadata_read_attempts``, which h5py does not wrap, called through ctypes)
and turns off HDF5's file locking, which a reader does not need.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from dataclasses import dataclass
from typing import Any

import h5py
import h5py.h5p

from neurosim.log_checks import LogError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: SWMR-read metadata attempts: retry k sleeps 2**k ns, so 24 attempts wait at most
#: ~17 ms per damaged object, long enough for a live writer to finish a flush
READ_ATTEMPTS = 24
#: a file still flagged as being written may be growing: how long to let a
#: size below the recorded end of file catch up before calling it truncated
GROWTH_WAIT_S = 0.3
_SWMR_WRITE_FLAG = 0x04  # superblock v3 file consistency flags: opened for SWMR writing
_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class FileCheck:
    """What the superblock says about a file, checked against the file itself."""

    size: int          # bytes on disk
    end_of_file: int   # bytes the superblock says the file has
    version: int       # superblock version
    swmr_write: bool   # flagged as open for SWMR writing (a live or killed writer)

    @property
    def truncated(self) -> bool:
        return self.size < self.end_of_file

    def describe(self) -> str:
        """'truncated to 54 of 54,451 bytes (0.1%)' or ''."""
        if not self.truncated:
            return ""
        return (f"truncated to {self.size:,} of {self.end_of_file:,} bytes "
                f"({100.0 * self.size / self.end_of_file:.3g}%)")


def check_file(path: str) -> FileCheck:
    """Read and verify the HDF5 superblock of ``path`` without HDF5.

    Raises :class:`LogError` (one-line message) for an empty file, a file
    without the HDF5 signature, or a superblock that is malformed or fails its
    checksum. A file still flagged as being written that looks truncated is
    re-checked for up to :data:`GROWTH_WAIT_S` seconds in case it is growing.
    """
    check = _check_once(path)
    deadline = time.monotonic() + GROWTH_WAIT_S
    while check.truncated and check.swmr_write and time.monotonic() < deadline:
        time.sleep(0.05)
        check = _check_once(path)
    return check


def superblock(path: str) -> FileCheck:
    """:func:`check_file` in one look, without waiting for a growing file."""
    return _check_once(path)


def _check_once(path: str) -> FileCheck:
    size = os.path.getsize(path)
    if size == 0:
        raise LogError(f"{path!r} is empty (0 bytes), not a log")
    with open(path, "rb") as fh:
        offset = _find_signature(fh, size)
        if offset is None:
            raise LogError(f"{path!r} is not an HDF5 file (no HDF5 signature)")
        fh.seek(offset)
        head = fh.read(256)
    bad = f"{path!r} starts like an HDF5 file but its superblock is damaged"
    if len(head) < 12:
        raise LogError(f"{bad} (the file ends after {size} bytes)")
    version = head[8]
    if version in (0, 1):
        o_size, l_size = head[13], head[14]
        flags = int.from_bytes(head[20:24], "little")
        pos = 24 if version == 0 else 28
        fields = 4  # base, free-space info, end-of-file, driver info addresses
    elif version in (2, 3):
        o_size, l_size, flags = head[9], head[10], head[11]
        pos, fields = 12, 4  # base, extension, end-of-file, root object header addresses
    else:
        raise LogError(f"{bad} (superblock version {version} is not one HDF5 writes)")
    if o_size not in (2, 4, 8, 16, 32) or l_size not in (2, 4, 8, 16, 32):
        raise LogError(f"{bad} (address size {o_size}, length size {l_size})")
    end = pos + fields * o_size
    if len(head) < end + (4 if version >= 2 else 0):
        raise LogError(f"{bad} (the file ends inside it)")
    if version >= 2:
        stored = int.from_bytes(head[end:end + 4], "little")
        if lookup3(head[:end]) != stored:
            raise LogError(f"{bad} (checksum mismatch)")
    base = int.from_bytes(head[pos:pos + o_size], "little")
    eof_address = int.from_bytes(head[pos + 2 * o_size:pos + 3 * o_size], "little")
    if eof_address == (1 << (8 * o_size)) - 1:  # "undefined address": nothing to compare
        eof_address = 0
    return FileCheck(size=size, end_of_file=base + eof_address, version=version,
                     swmr_write=version >= 3 and bool(flags & _SWMR_WRITE_FLAG))


def _find_signature(fh, size: int) -> int | None:
    """The superblock is at 0 or, after a user block, at 512, 1024, 2048, ..."""
    offset = 0
    while offset + len(SIGNATURE) <= size:
        fh.seek(offset)
        if fh.read(len(SIGNATURE)) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    for x, y, z, k in ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8),
                       (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)):
        r = [a, b, c]
        r[x] = ((r[x] - r[y]) & _MASK) ^ _rot(r[y], k)  # x -= y; x ^= rot(y, k)
        r[y] = (r[y] + r[z]) & _MASK                      # y += z
        a, b, c = r
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    for x, y, k in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16),
                    (0, 2, 4), (1, 0, 14), (2, 1, 24)):
        r = [a, b, c]
        r[x] = ((r[x] ^ r[y]) - _rot(r[y], k)) & _MASK    # x ^= y; x -= rot(y, k)
        a, b, c = r
    return a, b, c


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum HDF5 puts on its metadata."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    if length == 0:
        return c
    padded = data + bytes(-length % 12)  # zero bytes add nothing to the last block
    blocks = (length + 11) // 12
    for i in range(0, 12 * blocks, 12):
        a = (a + int.from_bytes(padded[i:i + 4], "little")) & _MASK
        b = (b + int.from_bytes(padded[i + 4:i + 8], "little")) & _MASK
        c = (c + int.from_bytes(padded[i + 8:i + 12], "little")) & _MASK
        if i + 12 < 12 * blocks:
            a, b, c = _mix(a, b, c)
    return _final(a, b, c)[2]


@functools.cache
def _read_attempts_setter() -> Any:
    # dlsym on an h5py extension module's handle also searches the HDF5 library it links
    setter = ctypes.CDLL(h5py.h5p.__file__).H5Pset_metadata_read_attempts
    setter.argtypes = [ctypes.c_int64, ctypes.c_uint]  # hid_t is 64-bit since HDF5 1.10
    setter.restype = ctypes.c_int
    return setter


def _set_read_attempts(fapl: h5py.h5p.PropFAID, attempts: int) -> None:
    if _read_attempts_setter()(fapl.id, attempts) < 0:
        raise OSError("H5Pset_metadata_read_attempts failed")


def open_hdf5(path: str, swmr: bool) -> h5py.File:
    """``path`` read-only, without file locking, in SWMR-read mode if ``swmr``.

    In SWMR mode HDF5's metadata retries are capped at :data:`READ_ATTEMPTS`; if
    this h5py build does not let us set that, SWMR mode is refused
    (:class:`LogError`) rather than risking a wait of hours.
    """
    try:
        return _open(path, swmr, locking=False)  # a writer's lock must not block (or fail) a reader
    except OSError as exc:
        # the file is open in this very process (a network writing it): HDF5 shares that
        # open file and wants the same locking setting as the writer's
        if "locking flag values don't match" not in str(exc):
            raise
        return _open(path, swmr, locking=True)


def _open(path: str, swmr: bool, locking: bool) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(locking, True)
    flags = h5py.h5f.ACC_RDONLY
    if swmr:
        try:
            _set_read_attempts(fapl, READ_ATTEMPTS)
        except (OSError, AttributeError) as exc:
            raise LogError(
                f"{path!r} can only be read in HDF5's SWMR mode (it is flagged as being written, "
                f"or truncated), and this h5py build cannot bound that mode's retries ({exc}); "
                f"if it is not truncated, run `h5clear -s {path}` and read it again") from None
        flags |= h5py.h5f.ACC_SWMR_READ
    fid = h5py.h5f.open(os.fsencode(path), flags, fapl=fapl)
    return h5py.File(fid)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: the same real path (symlinks resolved), or the
    same inode (hard links). Used to refuse writing an output over its input."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return False
