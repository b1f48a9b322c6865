"""Old location of :mod:`roitrace.threshold` (thresholds and pixel masks): the same module object,
so ``roitrace.masks.X`` and ``from roitrace.masks import X`` keep working."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("roitrace.threshold")
