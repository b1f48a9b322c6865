"""Old location of :mod:`roitrace.threshold` (thresholds and pixel masks): the same module object,
so ``roitrace.masks.X`` and ``from roitrace.masks import X`` keep working."""

import sys

import roitrace.threshold  # noqa: F401 - loads it

# by its name: the attribute roitrace.threshold may be a function of the same name
sys.modules[__name__] = sys.modules["roitrace.threshold"]
