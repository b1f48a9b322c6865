"""Exceptions raised by roitrace.

Every error roitrace raises on purpose is a :class:`RoitraceError`. The specific
subclasses also derive from the matching built-in exception (``ValueError``,
``FileNotFoundError``, ``IndexError``, ``OSError``), so code that already catches
those keeps working. Messages say what was wrong and what to do about it; the command line
prints them as one line and exits with code 2.
"""

from __future__ import annotations


class RoitraceError(Exception):
    """Base class of every error roitrace raises on purpose."""


class ParameterError(RoitraceError, ValueError):
    """An option has a value roitrace cannot use (unknown method, bad proportion...)."""


class ResultError(ParameterError):
    """A result Dataset lacks what is asked of it (a variable, the ROIs' pixel table) or
    holds an attribute roitrace cannot read (see :mod:`roitrace.result`).

    A :class:`ParameterError`: the result is an argument of the writer that refuses it.
    """


class MovieError(RoitraceError):
    """A movie could not be opened or read."""


class MovieNotFoundError(MovieError, FileNotFoundError):
    """The movie's path does not exist."""


class MovieFormatError(MovieError, ValueError):
    """The file is not a movie roitrace can read (not a TIFF, truncated, unknown suffix)."""


class NotAMovieError(MovieError, ValueError):
    """The data is not a (time, y, x) stack, for example a single 2-D image."""


class FrameRangeError(RoitraceError, IndexError):
    """Frames were asked for that the movie does not have."""


class ShapeMismatchError(RoitraceError, ValueError):
    """A mask, label image or weight vector does not fit the movie's frames."""


class EmptyMaskError(RoitraceError, ValueError):
    """A mask, ROI or neuropil ring holds no pixel."""


class WeightsError(RoitraceError, ValueError):
    """Pixel weights cannot be used (they sum to zero, are not finite...)."""


class NonFiniteError(RoitraceError, ValueError):
    """The movie has NaN or infinite values where a trace is computed."""


class BaselineError(RoitraceError, ValueError):
    """A normalisation's reference (F0, standard deviation, range) is zero or negative."""


class MissingDependencyError(RoitraceError, ImportError):
    """A package roitrace needs for this task is not installed; the message says how
    to install it."""


class FetchError(RoitraceError):
    """A dataset could not be downloaded or failed its checksum."""


class OutputError(RoitraceError, OSError):
    """An output file could not be written (read-only folder, a folder in the way...).

    Nothing is left under the file's name: an older file there keeps its content.
    """


class DiskFullError(OutputError):
    """The disk, or the user's quota, filled up while an output file was written.

    ``errno`` is ``ENOSPC``, ``EDQUOT`` or ``EFBIG``. Nothing is left under the file's
    name: an older file there keeps its content.
    """


__all__ = [
    "BaselineError",
    "DiskFullError",
    "EmptyMaskError",
    "FetchError",
    "FrameRangeError",
    "MissingDependencyError",
    "MovieError",
    "MovieFormatError",
    "MovieNotFoundError",
    "NonFiniteError",
    "NotAMovieError",
    "OutputError",
    "ParameterError",
    "ResultError",
    "RoitraceError",
    "ShapeMismatchError",
    "WeightsError",
]
