"""Old location of :mod:`roitrace.datasets.simulate` (the simulator): the same module object,
so ``roitrace.simulate.X`` and ``from roitrace.simulate import X`` keep working."""

import sys

import roitrace.datasets.simulate  # noqa: F401 - loads it

# by its name: the attribute roitrace.datasets.simulate may be a function of the same name
sys.modules[__name__] = sys.modules["roitrace.datasets.simulate"]
