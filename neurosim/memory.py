"""Memory checks before large allocations: a clear error instead of an allocator's.

Populations and projections estimate the bytes they are about to allocate
(state, spike rings, synapses and the temporary arrays needed to build them) and
compare them with the memory available now: on the CPU, ``MemAvailable`` from
``/proc/meminfo`` (or the physical memory, elsewhere), bounded by a cgroup limit
when one is set; on CUDA, the device's free memory. Estimates are rough (within a
small factor): they catch sizes that cannot fit, not tight ones.
"""

from __future__ import annotations

import os

import torch

#: below this many bytes the check is skipped (reading /proc costs more than it saves)
CHECK_FROM_BYTES = 16 << 20


class InsufficientMemoryError(ValueError, MemoryError):
    """A network (part) that cannot fit in the memory available; a ValueError (the
    sizes asked for are the problem) that ``except MemoryError`` catches too."""


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no cgroup limit) -> None


def host_available_bytes() -> int | None:
    """Bytes of host memory a new allocation can use now (None if unknown)."""
    candidates: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_path), _read_int(usage_path)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 "no limit" is huge
            candidates.append(max(0, limit - usage))
            break
    return min(candidates) if candidates else None


def device_available_bytes(device: torch.device) -> int | None:
    """Free bytes on ``device`` (host memory for the CPU)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    return host_available_bytes()


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"


def require(what: str, device_bytes: int, host_bytes: int, device: torch.device,
            advice: str = "") -> None:
    """Raise :class:`InsufficientMemoryError` unless ``device_bytes`` fit on ``device`` and
    ``host_bytes`` (temporaries while building) in host memory; on the CPU both add up."""
    if device.type == "cpu":
        needs = [(device_bytes + host_bytes, "memory", torch.device("cpu"))]
    else:
        needs = [(device_bytes, f"{device} memory", device), (host_bytes, "host memory", torch.device("cpu"))]
    for nbytes, kind, dev in needs:
        if nbytes < CHECK_FROM_BYTES:
            continue
        available = device_available_bytes(dev)
        if available is not None and nbytes > available:
            raise InsufficientMemoryError(
                f"this network needs {_gb(nbytes)} for {what}; {_gb(available)} of {kind} is "
                f"available{'. ' + advice if advice else ''}")
