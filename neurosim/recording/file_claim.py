"""Claiming a log path for one writer: atomic, exclusive creation and a writer lock.

A log is built under a hidden temporary name beside its final path and then given
the final name with a hard link, which fails if the name exists: two writers can
never both own a path, and a file that appears there in the meantime is never
replaced. While the writer lives it holds a lock on the file (on Linux an
open-file-description lock on one byte far past the end of the file, which does
not interfere with HDF5's own ``flock`` locking, so readers still open the log
during a run); another process asked to ``overwrite`` the path must take that
lock first, so a live log is never replaced.
"""

from __future__ import annotations

import errno
import os
import secrets
import struct
import sys

try:
    import fcntl
except ImportError:  # Windows: no locks; the exclusive link still protects the path
    fcntl = None  # type: ignore[assignment]

#: the locked byte: far beyond any real file size, so no reader or writer ever touches it
_LOCK_OFFSET = 1 << 62
#: struct flock on 64-bit Linux: short type, short whence, off_t start, off_t len, pid_t pid
_FLOCK = "hhqqi4x"
_HAVE_OFD = (sys.platform.startswith("linux") and sys.maxsize > 2**32
             and hasattr(fcntl, "F_OFD_SETLK"))


class LogInUseError(FileExistsError):
    """Another run is writing the log file at this path."""


def temporary_name(path: str) -> str:
    """A hidden, unique name beside ``path`` (same directory, so a link can move it)."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.partial")


def _lock_request(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, _LOCK_OFFSET, 1, 0)


class WriterLock:
    """An open descriptor on the log file that (on Linux) holds its writer lock.

    The descriptor also pins the file's identity: :meth:`same_file` tells whether
    a path still names the file this writer created.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        self.locked = False
        if _HAVE_OFD:
            try:
                fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _lock_request(fcntl.F_WRLCK))
                self.locked = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    os.close(self.fd)
                    raise LogInUseError(f"log file {path!r} belongs to a network that is running or "
                                       f"may run again (in this or another process)") from None
                # a file system without these locks: the exclusive link still protects the path

    def same_file(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        own = os.fstat(self.fd)
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock
            self.fd = -1


def in_use(path: str) -> bool:
    """Whether a live writer holds the lock of the log file at ``path``."""
    if not _HAVE_OFD:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _lock_request(fcntl.F_WRLCK))
        return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK
    except OSError:
        return False
    finally:
        os.close(fd)


def publish(temporary: str, path: str, overwrite: bool) -> None:
    """Give the finished file ``temporary`` the name ``path``, atomically.

    Without ``overwrite`` an existing ``path`` is an error (``FileExistsError``), even
    one created a moment ago by another process. With it, an existing file is
    replaced only if no live writer holds its lock.
    """
    if overwrite and os.path.exists(path):
        old = None
        try:
            old = WriterLock(path)  # refuses (LogInUseError) while its writer lives
        except (FileNotFoundError, PermissionError):
            pass
        try:  # the old file's lock is held across the replace: no other writer slips in
            os.replace(temporary, path)
        finally:
            if old is not None:
                old.close()
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        if in_use(path):
            raise LogInUseError(f"log file {path!r} belongs to a network that is running or "
                                f"may run again (in this or another process); choose another "
                                f"path") from None
        raise FileExistsError(f"log file {path!r} already exists (created after this network "
                              f"was built); choose another path") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        _publish_without_links(temporary, path)
        return
    os.unlink(temporary)


def _publish_without_links(temporary: str, path: str) -> None:
    """File systems without hard links: claim the name with an exclusive create, then
    move the finished file over the (empty) claim."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise FileExistsError(f"log file {path!r} already exists (created after this network "
                              f"was built); choose another path") from None
    os.close(fd)
    os.replace(temporary, path)
