"""Moved to :mod:`roitrace.io.suite2p`; this name stays an alias of it.

``import roitrace.suite2p`` and ``from roitrace.suite2p import ...`` give the module
:mod:`roitrace.io.suite2p` itself (the same object: patching one patches the other).
"""

import sys

from .io import suite2p as _module

sys.modules[__name__] = _module
