"""Exceptions raised by roitrace.

Every error roitrace raises on purpose is a :class:`RoitraceError`. The specific
subclasses also derive from the matching built-in exception (``ValueError``,
``FileNotFoundError``, ``IndexError``, ``OSError``), so code that already catches
those keeps working. Messages say what was wrong and what to do about it; the command line
prints them as one line and exits with code 2.

The tree::

    RoitraceError
    ├── ParameterError (ValueError)         an option's value cannot be used
    │   └── ResultError                     a result Dataset lacks what is asked of it
    ├── InputNotFoundError (FileNotFoundError)   an input path does not exist
    │   ├── MovieNotFoundError              ... a movie (also a MovieError)
    │   ├── RoiNotFoundError                ... an ROI set (ImageJ, suite2p, NWB, labels)
    │   └── ResultNotFoundError             ... a saved result (CSV, netCDF, NWB, suite2p)
    ├── InputFormatError (ValueError)       an input file is unreadable or damaged
    │   ├── MovieFormatError                ... a movie (also a MovieError)
    │   ├── RoiFormatError                  ... an ROI set
    │   └── ResultFormatError               ... a saved result
    ├── MovieError                          a movie could not be opened or read
    │   ├── MovieNotFoundError, MovieFormatError (above)
    │   └── NotAMovieError (ValueError)     the data is no (time, y, x) stack
    ├── FrameRangeError (IndexError)
    ├── ShapeMismatchError, EmptyMaskError, WeightsError, NonFiniteError,
    │   BaselineError (ValueError)
    ├── MissingDependencyError (ImportError)
    ├── FetchError
    └── OutputError (OSError)
        └── DiskFullError

Catch :class:`InputFormatError` for "this file cannot be read, whatever it is";
:class:`MovieError` is about movies only (a damaged ``RoiSet.zip`` is a
:class:`RoiFormatError`, not a :class:`MovieError`).
"""

from __future__ import annotations


class RoitraceError(Exception):
    """Base class of every error roitrace raises on purpose."""


class ParameterError(RoitraceError, ValueError):
    """An option has a value roitrace cannot use (unknown method, bad proportion...)."""


class ShortTraceError(ParameterError):
    """A trace has too few frames to deconvolve (or to estimate its parameters)."""


class ResultError(ParameterError):
    """A result Dataset lacks what is asked of it (a variable, the ROIs' pixel table) or
    holds an attribute roitrace cannot read (see :mod:`roitrace.result`).

    A :class:`ParameterError`: the result is an argument of the writer that refuses it.
    """


class InputNotFoundError(RoitraceError, FileNotFoundError):
    """An input's path (a movie, an ROI set, a saved result) does not exist."""


class InputFormatError(RoitraceError, ValueError):
    """An input file is of no format roitrace reads (an unknown suffix), or is not
    what its suffix says, or is damaged (truncated, corrupt, inconsistent)."""


class MovieError(RoitraceError):
    """A movie could not be opened or read."""


class MovieNotFoundError(MovieError, InputNotFoundError):
    """The movie's path does not exist."""


class MovieFormatError(MovieError, InputFormatError):
    """The file is not a movie roitrace can read (not a TIFF, truncated, unknown suffix)."""


class RoiNotFoundError(InputNotFoundError):
    """The path of an ROI set (a ``RoiSet.zip``, a suite2p folder...) does not exist,
    or a file it needs is missing (suite2p's ``stat.npy``, ``iscell.npy``)."""


class RoiFormatError(InputFormatError):
    """The file is not an ROI set roitrace can read (an unknown suffix, a damaged
    ``RoiSet.zip``, a ``stat.npy`` entry without pixels, an NWB file without a
    PlaneSegmentation...)."""


class ResultNotFoundError(InputNotFoundError):
    """The path of a saved result (see :func:`roitrace.load`) does not exist."""


class ResultFormatError(InputFormatError):
    """A saved result cannot be read back: an unknown suffix, a CSV file that is no
    roitrace table, a suite2p folder without ``F.npy`` or mixing runs, an NWB file
    without fluorescence traces..."""


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


class ClusterError(RoitraceError):
    """The Dask cluster could not be reached, lost its workers for good, or its
    workers cannot read an input."""


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
    "ClusterError",
    "DiskFullError",
    "EmptyMaskError",
    "FetchError",
    "FrameRangeError",
    "InputFormatError",
    "InputNotFoundError",
    "MissingDependencyError",
    "MovieError",
    "MovieFormatError",
    "MovieNotFoundError",
    "NonFiniteError",
    "NotAMovieError",
    "OutputError",
    "ParameterError",
    "ResultError",
    "ResultFormatError",
    "ResultNotFoundError",
    "RoiFormatError",
    "RoiNotFoundError",
    "RoitraceError",
    "ShapeMismatchError",
    "ShortTraceError",
    "WeightsError",
]
