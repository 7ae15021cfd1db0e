"""Ready-made networks built from the public API."""

from neurosim.networks.ccl import CCLNet
from neurosim.networks.ccl_rule_net import CCLRuleNet
from neurosim.networks.ccl_spiking import SpikingCCL
from neurosim.networks.cuba import CUBA, build_cuba
from neurosim.networks.feedback_alignment import AlignmentMLP
from neurosim.networks.structured_snn import StructuredRecurrentSNN

__all__ = ["AlignmentMLP", "CCLNet", "CCLRuleNet", "CUBA", "SpikingCCL", "StructuredRecurrentSNN", "build_cuba"]
