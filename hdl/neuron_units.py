"""One-neuron update units, one per neuron kind (``hdl/kinds/<kind>.py``); re-exported here.

A layer engine instantiates one unit per lane. A unit is a fixed-latency pipeline without stalls:
it takes a new neuron every cycle and gives its spike and next state ``latency`` cycles later.
All per-neuron constants are input ports; the engine ties the ones shared by the whole layer to
constants, which synthesis folds into the logic.
"""
from __future__ import annotations

from .kinds.alif import ALIFUnit
from .kinds.lif import LIFUnit

__all__ = ["LIFUnit", "ALIFUnit"]
