"""Moved to :mod:`roitrace.io.nwb`; this name stays an alias of it.

``import roitrace.nwb`` and ``from roitrace.nwb import ...`` give the module
:mod:`roitrace.io.nwb` itself (the same object: patching one patches the other).
"""

import sys

from .io import nwb as _module

sys.modules[__name__] = _module
