"""Which neurons each process of a partitioned run steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.distributed as dist


@dataclass(frozen=True)
class Partition:
    """Process ``rank`` of ``size`` processes; ``group`` is the ``torch.distributed``
    process group the spikes are exchanged in (``None``: the default group).

    A population of ``n`` neurons is split into ``size`` contiguous ranges of
    ``n // size`` or ``n // size + 1`` neurons, in rank order (:meth:`share`).
    """

    rank: int
    size: int
    group: Any = None

    def __post_init__(self) -> None:
        for name in ("rank", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Partition: {name} must be an integer, got {value!r}")
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise ValueError(f"Partition: need 0 <= rank < size, got rank {self.rank} of size {self.size}")

    @classmethod
    def from_process_group(cls, group: Any = None) -> "Partition":
        """This process's place in an initialised ``torch.distributed`` group (as
        ``torchrun`` sets up with ``dist.init_process_group``)."""
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("Partition.from_process_group: torch.distributed is not initialised; "
                               "call torch.distributed.init_process_group('gloo') first (torchrun "
                               "sets the environment it reads)")
        return cls(dist.get_rank(group), dist.get_world_size(group), group)

    def share(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """The range ``[lo, hi)`` of a population of ``n`` neurons that ``rank`` (default:
        this process) steps."""
        r = self.rank if rank is None else rank
        return n * r // self.size, n * (r + 1) // self.size
