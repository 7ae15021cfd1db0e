"""Local learning rules: each sees only its projection's pre/post activity, its
weights and named neuromodulators. Attach with ``net.add_rule(projection, rule)``."""

from neurosim.rules.base import Rule, SpikeTrace
from neurosim.rules.diehl_cook import DiehlCookSTDP
from neurosim.rules.hebbian import BCM, Hebb, Oja, RateRule
from neurosim.rules.inhibitory import InhibitoryPlasticity, RateHomeostasis
from neurosim.rules.normalization import WeightNormalization
from neurosim.rules.stdp import STDP
from neurosim.rules.three_factor import RewardModulatedSTDP
from neurosim.rules.triplet import TripletSTDP

__all__ = ["BCM", "DiehlCookSTDP", "Hebb", "InhibitoryPlasticity", "Oja", "RateHomeostasis", "RateRule", "RewardModulatedSTDP", "Rule",
           "STDP", "SpikeTrace", "TripletSTDP", "WeightNormalization"]
