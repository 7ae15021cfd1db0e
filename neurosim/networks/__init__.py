"""Ready-made networks built from the public API."""

from neurosim.networks.cuba import CUBA, build_cuba

__all__ = ["CUBA", "build_cuba"]
