"""How many threads a run steps with, chosen so that a busy machine does not collapse.

Measured on the 2-core development machine with two other processes busy
(load average 2.2; CUBA, 4,000 neurons, 1 s of biological time):

- torch backend, torch's default 2 threads: 20.8 s for 200 ms; 1 thread: 1.1 s.
  One step is a few dozen small tensor operations: threads cannot share them
  out, and OpenMP workers that spin while waiting compete with the other
  processes for the cores.
- numba backend with ``parallel=True``, 2 threads: 7.2 s; 1 thread: 0.07 s (the
  serial kernel: 0.04 s). Each step ends in a barrier, so a thread the
  scheduler has put aside stalls all the others, 10,000 times per second of
  biological time.

- torch backend on an idle machine, CUBA at 64,000 neurons (one update of 64,000
  elements per step): 1,209-1,262 µs per step on 1 thread, 873-883 µs on 2; at
  32,000 neurons no difference (782 and 789 µs): torch shares out only operations
  of at least 32,768 elements (its grain size).
So, unless told otherwise: torch steps with one thread (the default of both
backends; the tensor work between compiled numba calls is small too), or, when a
neuron update has at least :data:`PARALLEL_ELEMENTS` elements, with the cores not
busy with other work; numba's parallel loops use those cores too
(:func:`free_cores`, from the 1-minute load average; at least 1).
``Network(threads=k)`` or the environment variable ``NEUROSIM_THREADS=k`` sets
both to ``k`` instead. The user's own torch setting is restored after each run.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Iterator

import numpy as np
import torch

ENV = "NEUROSIM_THREADS"
#: a torch step whose largest neuron update has this many elements steps on the free
#: cores (torch's grain size: smaller operations run on one thread whatever the count)
PARALLEL_ELEMENTS = 32768


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def free_cores() -> int:
    """Cores not busy with other work: ``cores() - round(load average)``, at least 1.

    The 1-minute load average counts runnable threads, this process's included,
    so on an otherwise idle machine a long single-threaded run lowers the figure
    by one: erring towards fewer threads is the safe side (a thread too many
    costs 10-100x, one too few at most the parallel speed-up).
    """
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # unreadable, or not a Unix system: be safe
        return 1
    return max(1, cores() - int(math.floor(load + 0.5)))


def requested(threads: int | None) -> int | None:
    """``threads`` if given, else ``$NEUROSIM_THREADS`` if set, else None (choose)."""
    if threads is not None:
        return threads
    env = os.environ.get(ENV, "").strip()
    if not env:
        return None
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV} must be a positive integer of threads, got {env!r}")
    return value


def check_threads(threads: int | None) -> int | None:
    """Validate the ``threads`` argument of a network."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads must be a positive integer or None, got {threads!r} "
                        f"({type(threads).__name__})")
    if threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


@contextlib.contextmanager
def stepping_threads(threads: int | None, parallel: bool, torch_default: int = 1) -> Iterator[int]:
    """Set torch's (and, with ``parallel``, numba's) thread counts while stepping;
    torch's is ``torch_default`` unless ``threads`` (or the environment) asks otherwise.

    Yields the number of numba threads in use (1 without ``parallel``).
    """
    asked = requested(threads)
    # numba's OpenMP layer and torch share OpenMP's thread-count setting: numba's is set
    # (and restored) first and torch's last, so torch's count is the one that stays
    numba_before = numba_now = None
    if parallel:
        import numba

        numba_before = numba.get_num_threads()
        numba_now = min(asked or free_cores(), numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(numba_now)
    torch_before = torch.get_num_threads()
    torch_now = asked or torch_default
    if torch_now != torch_before:
        torch.set_num_threads(torch_now)
    try:
        yield numba_now or 1
    finally:
        if numba_before is not None:
            import numba

            numba.set_num_threads(numba_before)
        if torch_now != torch_before:
            torch.set_num_threads(torch_before)
