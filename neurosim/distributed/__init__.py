"""Scale-out on ``torch.distributed``: populations split across processes.

A partitioned run (``Network(partition=Partition.from_process_group())``, launched with
``torchrun``) builds the same network in every process; each process then steps its
share of every spiking population's neurons (:meth:`Partition.share`) and keeps the
synapses onto them. After every slice of steps no longer than the smallest delay of a
projection leaving a split population, the processes exchange those steps' spikes
(:class:`SpikeExchange`, one ``all_gather`` of bit-packed spikes), so each process sees
every presynaptic spike before any can arrive: the spikes are those of one process,
bit for bit. The log is written by process 0 from what every process recorded
(:class:`PartitionedLog`). See ``docs/distributed.md``.
"""

from neurosim.distributed.exchange import SpikeExchange
from neurosim.distributed.partition import Partition
from neurosim.distributed.partitioned_log import PartitionedLog

__all__ = ["Partition", "PartitionedLog", "SpikeExchange"]
