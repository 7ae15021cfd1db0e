"""Analysis of recorded spikes: statistics in numpy, export to Neo and NWB.

The statistics take spike events as arrays (times in ms, neuron indices) and
read no files::

    from neurosim.analysis import firing_rates, isi_cv, spike_trains
    t, neuron, row = ns.LogReader("run.h5").spike_times("exc")
    rates = firing_rates(t[row == 0], neuron[row == 0], 800, 0.0, 1000.0)

The exports need optional packages: ``pip install -c constraints.txt -e ".[neo]"``
for :func:`to_neo`, ``-e ".[nwb]"`` for :func:`export_nwb`; both are imported only
when called.
"""

from neurosim.analysis.neo_export import to_neo
from neurosim.analysis.nwb_export import export_nwb
from neurosim.analysis.spike_statistics import (binned_rates, fano_factor, firing_rates, isi_cv,
                                                spike_trains, synchrony)

__all__ = ["binned_rates", "export_nwb", "fano_factor", "firing_rates", "isi_cv", "spike_trains",
           "synchrony", "to_neo"]
