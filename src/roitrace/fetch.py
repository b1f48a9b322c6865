"""Old location of :mod:`roitrace.datasets.fetch` (example-dataset downloads): the same
module object, so ``roitrace.fetch.X`` and ``from roitrace.fetch import X`` keep working."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("roitrace.datasets.fetch")
