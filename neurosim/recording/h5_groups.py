"""Groups whose object header has room for many links from the start.

Linking a new object into a group rewrites the group's object header. When the
header has to grow a continuation block, or the group switches to dense link
storage (past 8 links by default), HDF5 writes several blocks in an order that a
killed writer can leave inconsistent (seen: a reader looping forever on the group).
A group created with room for :data:`LINK_CAPACITY` links keeps them all in its
first header block, so each later link is one in-place write.

h5py does not expose ``H5Pset_link_phase_change`` / ``H5Pset_est_link_info``; they
are called through ctypes on the HDF5 library h5py itself loaded (found in
``/proc/self/maps``, Linux only). Elsewhere, or if anything does not match, groups
are made with HDF5's defaults.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
from typing import Any

import h5py

#: links a group can take in its first header block (names up to ~24 bytes)
LINK_CAPACITY = 256


@functools.lru_cache(maxsize=1)
def _hdf5_library() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = sorted(set(re.findall(r"(/\S*/libhdf5(?:_serial)?(?:-[0-9a-f]+)?\.so[.0-9]*)$",
                                          fh.read(), re.M)))
    except OSError:
        return None
    h5py_dir = os.path.dirname(os.path.dirname(os.path.abspath(h5py.__file__)))
    own = [p for p in paths if p.startswith(os.path.join(h5py_dir, "h5py"))]
    if len(own) != 1 and len(paths) != 1:
        return None  # several HDF5 libraries loaded: cannot tell which one is h5py's
    try:
        lib = ctypes.CDLL((own or paths)[0])
        major, minor, release = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
        if lib.H5get_libversion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(release)) < 0:
            return None
        if (major.value, minor.value, release.value) != h5py.version.hdf5_version_tuple[:3]:
            return None
        return lib
    except (OSError, AttributeError):
        return None


def roomy_group_plist() -> h5py.h5p.PropGCID:
    """A group creation property list with room for :data:`LINK_CAPACITY` compact links
    (HDF5's defaults where that cannot be set)."""
    plist = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    lib = _hdf5_library()
    if lib is None:
        return plist
    hid = ctypes.c_int64(plist.id)
    ok = (lib.H5Pset_link_phase_change(hid, ctypes.c_uint(LINK_CAPACITY),
                                        ctypes.c_uint(LINK_CAPACITY - 1)) >= 0
          and lib.H5Pset_est_link_info(hid, ctypes.c_uint(LINK_CAPACITY), ctypes.c_uint(24)) >= 0)
    return plist if ok else h5py.h5p.create(h5py.h5p.GROUP_CREATE)


def create_roomy_group(parent: h5py.Group, name: str) -> h5py.Group:
    """Create ``parent/name`` (one level) with room for many links."""
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=roomy_group_plist()))
