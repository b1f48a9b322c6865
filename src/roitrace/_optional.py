"""Packages that only some tasks need: one message, with the install command, everywhere."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["available", "require"]

#: The pip requirement that brings each module, when its name differs.
_PIP_NAME = {"imagecodecs": "imagecodecs", "pynwb": "pynwb", "h5netcdf": "h5netcdf"}


def _message(module: str, purpose: str) -> str:
    pip = _PIP_NAME.get(module, module)
    return (
        f"{purpose} needs the Python package {module}, which is not installed here: "
        f"pip install {pip} (or reinstall roitrace: pip install roitrace)"
    )


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`~roitrace.errors.MissingDependencyError`.

    Examples
    --------
    >>> require("numpy", "this").__name__
    'numpy'
    >>> require("no_such_module", "reading .xyz files")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.MissingDependencyError: reading .xyz files needs the Python package ...
    """
    if not available(module):
        raise MissingDependencyError(_message(module, purpose))
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # installed but broken (a missing sub-dependency)
        raise MissingDependencyError(f"{_message(module, purpose)} ({exc})") from exc
