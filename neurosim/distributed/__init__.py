"""Scale-out on ``torch.distributed``: populations split across processes, or samples.

Data-parallel runs (``Network(batch=b, data_parallel=Partition.from_process_group())``,
:mod:`neurosim.distributed.data_parallel`): each process simulates its rows of the batch
and the rules' weight changes are summed across processes where one process applies
them; for gradient training, :func:`sum_gradients` sums the parameters' gradients as
DistributedDataParallel does.

A partitioned run (``Network(partition=Partition.from_process_group())``, launched with
``torchrun``) builds the same network in every process; each process then steps its
share of every spiking population's neurons (:meth:`Partition.share`) and keeps the
synapses onto them. After every slice of steps no longer than the smallest delay of a
projection leaving a split population, the processes exchange those steps' spikes
(:class:`SpikeExchange`, one ``all_gather`` of the spikes' positions or bits), so each process sees
every presynaptic spike before any can arrive: the spikes are those of one process,
bit for bit. The log is written by process 0 from what every process recorded
(:class:`PartitionedLog`). See ``docs/distributed.md``.
"""

from neurosim.distributed.exchange import SpikeExchange
from neurosim.distributed.gradients import sum_gradients
from neurosim.distributed.partition import Partition
from neurosim.distributed.partitioned_log import PartitionedLog

__all__ = ["Partition", "PartitionedLog", "SpikeExchange", "sum_gradients"]
