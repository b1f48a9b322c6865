"""Moved to :mod:`roitrace.io.imagej`; this name stays an alias of it.

``import roitrace.imagej`` and ``from roitrace.imagej import ...`` give the module
:mod:`roitrace.io.imagej` itself (the same object: patching one patches the other).
"""

import sys

from .io import imagej as _module

sys.modules[__name__] = _module
