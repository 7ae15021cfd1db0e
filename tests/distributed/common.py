"""What the 2-process test scripts share: joining torchrun's processes and writing results."""

from __future__ import annotations

import faulthandler
import os
import sys
from typing import Any

import numpy as np

from neurosim.distributed import Partition
from neurosim.distributed.launch import join_torchrun, leave_torchrun

faulthandler.enable()  # (the scripts that join the group themselves too: see leave)


def join() -> Partition | None:
    """This process's partition under torchrun (gloo), None when run alone."""
    return join_torchrun("cpu")[0]


def finish(dp: Partition | None, out: str, **arrays: Any) -> int:
    """Process 0 (or the lone process) writes ``arrays`` to ``out`` (npz); all leave the group."""
    if dp is None or dp.rank == 0:
        np.savez(out, **arrays)
    return leave(dp)


def leave(dp: Partition | None) -> int:
    """Leave torchrun's group (barrier, destroy); then, under torchrun, exit at once.

    Twice in many suite runs, on a loaded machine, a process aborted after its work was
    done and written ("terminate called without an active exception", SIGABRT; not
    reproduced in 12 runs beside a busy loop, cause not proven: C++ threads of the
    collectives torn down while the interpreter finalises are the likely place). The
    results are on disk and the group is destroyed, so the scripts skip finalisation;
    a failure before this point still fails the test (join_torchrun's faulthandler
    prints where).
    """
    leave_torchrun(dp)
    if dp is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
