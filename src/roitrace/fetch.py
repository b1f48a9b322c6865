"""Old location of :mod:`roitrace.datasets.fetch` (example-dataset downloads): the same
module object, so ``roitrace.fetch.X`` and ``from roitrace.fetch import X`` keep working."""

import sys

import roitrace.datasets.fetch  # noqa: F401 - loads it

# by its name: the attribute roitrace.datasets.fetch may be a function of the same name
sys.modules[__name__] = sys.modules["roitrace.datasets.fetch"]
