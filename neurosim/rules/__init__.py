"""Local learning rules: each sees only its projection's pre/post activity, its
weights and named neuromodulators. Attach with ``net.add_rule(projection, rule)``."""

from neurosim.rules.base import Rule, SpikeTrace
from neurosim.rules.bcm import BCM
from neurosim.rules.counter_current import CounterCurrent
from neurosim.rules.diehl_cook import DiehlCookSTDP
from neurosim.rules.eprop import EProp
from neurosim.rules.hebb import Hebb
from neurosim.rules.inhibitory import InhibitoryPlasticity
from neurosim.rules.oja import Oja
from neurosim.rules.rate_homeostasis import RateHomeostasis
from neurosim.rules.rate_rule import RateRule
from neurosim.rules.normalization import WeightNormalization
from neurosim.rules.soft_hebbian import SoftHebbian
from neurosim.rules.stdp import STDP
from neurosim.rules.three_factor import RewardModulatedSTDP
from neurosim.rules.triplet import TripletSTDP

__all__ = ["BCM", "CounterCurrent", "DiehlCookSTDP", "EProp", "Hebb", "InhibitoryPlasticity", "Oja", "RateHomeostasis", "RateRule", "RewardModulatedSTDP", "Rule",
           "STDP", "SoftHebbian", "SpikeTrace", "TripletSTDP", "WeightNormalization"]
