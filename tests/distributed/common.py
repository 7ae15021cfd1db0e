"""What the 2-process test scripts share: joining torchrun's processes and writing results."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosim.distributed import Partition
from neurosim.distributed.launch import join_torchrun, leave_torchrun


def join() -> Partition | None:
    """This process's partition under torchrun (gloo), None when run alone."""
    return join_torchrun("cpu")[0]


def finish(dp: Partition | None, out: str, **arrays: Any) -> int:
    """Process 0 (or the lone process) writes ``arrays`` to ``out`` (npz); all leave the group."""
    if dp is None or dp.rank == 0:
        np.savez(out, **arrays)
    leave_torchrun(dp)
    return 0
