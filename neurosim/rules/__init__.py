"""Local learning rules: each sees only its projection's pre/post activity, its
weights and named neuromodulators. Attach with ``net.add_rule(projection, rule)``."""

from neurosim.rules.base import Rule, SpikeTrace
from neurosim.rules.normalization import WeightNormalization
from neurosim.rules.stdp import STDP
from neurosim.rules.three_factor import RewardModulatedSTDP

__all__ = ["RewardModulatedSTDP", "Rule", "STDP", "SpikeTrace", "WeightNormalization"]
