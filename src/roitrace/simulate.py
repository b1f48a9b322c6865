"""Old location of :mod:`roitrace.datasets.simulate` (the simulator): the same module object,
so ``roitrace.simulate.X`` and ``from roitrace.simulate import X`` keep working."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("roitrace.datasets.simulate")
