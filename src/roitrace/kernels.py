"""Deprecated location of :mod:`roitrace._kernels` (the compiled kernels and their
numpy versions); the same module object, so ``roitrace.kernels.X`` keeps working."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("roitrace._kernels")
