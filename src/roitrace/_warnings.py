"""Warnings that point at the user's code, not at roitrace's.

A fixed ``stacklevel`` is right on one call path only: the same warning reached
through ``extract()``, ``neuropil_rings()`` or the command line is a different
number of roitrace frames deep. :func:`warn_user` counts them instead.
"""

from __future__ import annotations

import functools
import os
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ParameterError

__all__ = ["renamed_keywords", "warn_user"]

F = TypeVar("F", bound=Callable[..., Any])

#: This package's folder; every frame whose code lives under it is roitrace's.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside
    roitrace: the line of the user's code (a script, a notebook cell, a test) that
    called into roitrace, whatever the path from there. Filters and
    ``pytest.warns`` see that file and line.

    When every frame is roitrace's (a thread it started) the outermost one is used.
    """
    frame = sys._getframe(1)  # the caller: stacklevel=2 of warnings.warn in here
    level = 2
    while frame.f_back is not None and _inside(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _inside(filename: str) -> bool:
    # "<frozen runpy>", "<stdin>", "<ipython-input-...>": not a file of ours
    return not filename.startswith("<") and os.path.abspath(filename).startswith(_PACKAGE)


def renamed_keywords(**renamed: str | Callable[[Any], tuple[str, Any]]) -> Callable[[F], F]:
    """Keep old keyword names working, with a DeprecationWarning naming the new one.

    ``@renamed_keywords(how="method")`` passes ``how=x`` on as ``method=x``; a
    callable maps an old value onto ``(new name, new value)`` (e.g.
    ``dff_q=lambda q: ("baseline", {"q": q})``). Giving both names is an error.
    """

    def decorate(fn: F) -> F:
        warn, error = warn_user, ParameterError  # closure cells: see the end

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renamed.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                name, value = new(value) if callable(new) else (new, value)
                if name in kwargs:
                    raise error(f"{fn.__name__}(): give {name}= only ({old}= is its old name)")
                shown = f"{name}={value!r}" if callable(new) else f"{name}="
                warn(
                    f"{fn.__name__}({old}=...) is deprecated; use {shown} instead",
                    DeprecationWarning,
                )
                kwargs[name] = value
            return fn(*args, **kwargs)

        # The wrapper lives in the wrapped function's module (its globals): doctest
        # and other tools that ask "is this function from that module?" then find it
        # and run its Examples. It names nothing global but builtins.
        moved = types.FunctionType(
            wrapper.__code__, fn.__globals__, fn.__name__, None, wrapper.__closure__
        )
        return functools.update_wrapper(moved, fn)  # type: ignore[return-value]

    return decorate
