"""Figures of a run's log (matplotlib, headless): the functions behind ``neurosim plot``.

Each takes a :class:`~neurosim.LogReader` and an output PNG path and returns the path:
:func:`raster`, :func:`rates`, :func:`isi`, :func:`weights`, :func:`state`, :func:`learning`.
"""

from neurosim.plots.learning import learning
from neurosim.plots.spikes import isi, raster, rates
from neurosim.plots.state import state
from neurosim.plots.weights import weights

__all__ = ["raster", "rates", "isi", "weights", "state", "learning"]
