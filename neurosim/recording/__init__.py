"""Where recordings go: an in-memory log or an HDF5 file, behind one interface."""

from neurosim.recording.file_claim import LogInUseError
from neurosim.recording.hdf5_log import HDF5Log, LogReplacedError
from neurosim.recording.memory_log import MemoryLog

__all__ = ["HDF5Log", "LogInUseError", "LogReplacedError", "MemoryLog"]
