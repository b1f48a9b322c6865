"""Deprecated location of :mod:`roitrace._kernels` (the compiled kernels and their
numpy versions); the same module object, so ``roitrace.kernels.X`` keeps working."""

import sys

import roitrace._kernels  # noqa: F401 - loads it

# by its name: the attribute roitrace._kernels may be a function of the same name
sys.modules[__name__] = sys.modules["roitrace._kernels"]
