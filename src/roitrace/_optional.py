"""Packages that only some tasks need: one message, with the install command, everywhere."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["available", "require"]

#: The pip requirement that brings each module, when its name differs.
_PIP_NAME = {"imagecodecs": "imagecodecs", "pynwb": "pynwb", "h5netcdf": "h5netcdf"}


def _message(module: str, purpose: str, pip: str | None = None, extra: str | None = None) -> str:
    pip = pip or _PIP_NAME.get(module, module)
    also = (
        f"pip install 'roitrace[{extra}]'" if extra else "reinstall roitrace: pip install roitrace"
    )
    return (
        f"{purpose} needs the Python package {module}, which is not installed here: "
        f"pip install {pip} (or {also})"
    )


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def require(
    module: str, purpose: str, *, pip: str | None = None, extra: str | None = None
) -> ModuleType:
    """Import ``module`` or raise :class:`~roitrace.errors.MissingDependencyError`.

    The message says ``pip install PIP`` (default: the module's pip name) and, when
    given, the roitrace ``extra`` that installs it.

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
        raise MissingDependencyError(_message(module, purpose, pip, extra))
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # installed but broken (a missing sub-dependency)
        raise MissingDependencyError(f"{_message(module, purpose, pip, extra)} ({exc})") from exc
