"""Saving results (the last stage): :func:`save` and :func:`load`, lookups in the io
registry of result formats (:mod:`roitrace.io`); images as TIFF.

Every file records the roitrace version and the parameters that made it, and is
written under a temporary name then renamed, so an error or Ctrl-C never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path, check_not_input, check_writable
from ._version import __version__
from .errors import ResultNotFoundError
from .io import result_format
from .io._attrs import jsonable
from .io._base import is_folder_output as _is_folder_output
from .io._base import suffix_of
from .result import SOURCE

__all__ = ["check_output", "is_folder_output", "load", "result_inputs", "save", "write_image"]


def save(
    result: Any,
    path: str | os.PathLike,
    *,
    rois: Any = None,
    inputs: Iterable[str | os.PathLike] = (),
    **options: Any,
) -> Path:
    """Save an :func:`roitrace.extract` result; the format follows the suffix.

    Parameters
    ----------
    result : xarray.Dataset
        Dims ``(roi, time)``, as returned by :func:`roitrace.extract`.
    path : str or path-like
        ``.csv``: tidy table, one row per (roi, frame) with columns ``roi, name,
        frame, time, F, Fneu, F_corrected, dff`` (those present; a name with a
        comma or quote is quoted), preceded by ``#`` comment lines holding the
        parameters (read it with ``pandas.read_csv(path, comment="#")``).
        ``.nc`` / ``.h5`` / ``.hdf5``: the Dataset itself as netCDF4 (h5netcdf).
        ``.nwb``: an NWB file (pynwb) with the ROIs' pixel masks, ``F``/``Fneu``/
        ``F_corrected`` as RoiResponseSeries and ``dff`` as DfOverF. A folder
        (a path ending in ``/``, without a suffix, or an existing folder): a
        suite2p-style ``plane0`` folder (``F.npy``, ``Fneu.npy``, ``stat.npy``,
        ``iscell.npy``, ``ops.npy``, plus ``F_corrected.npy`` and ``dff.npy``).
    rois : RoiSet, optional
        The ROIs, for NWB and suite2p outputs; default: the pixel table that
        :func:`roitrace.extract` stores in the result.
    inputs : iterable of paths, optional
        Further files the result was made from. ``path`` may be none of them, nor
        the movie (``result.attrs["source"]``) or ROI file (``result.attrs["rois"]``)
        the result records: :class:`~roitrace.errors.OutputError` before anything is
        written, rather than an input replaced by its own result.
    **options
        The chosen format's own options; only NWB takes any:
        ``session=NWBSession(subject=..., ...)``,
        ``plane=NWBImagingPlane(indicator=..., location=...)``, ``frame_rate``, or
        the objects' fields one by one (``subject=``, ``indicator=``...; see
        :func:`roitrace.nwb.write_nwb`). An option the format does not take is a
        :class:`~roitrace.errors.ParameterError` (a misspelt ``indicatr=``, or an
        NWB option given for a ``.csv`` file), never ignored.

    Returns
    -------
    path : pathlib.Path

    Notes
    -----
    A suite2p folder written again holds only the new run's files: those of
    roitrace's set that the new result lacks (``F_corrected.npy`` after a run
    without neuropil...) are removed, in the same step as the new ones move in.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from roitrace import extract
    >>> ds = extract(np.ones((3, 4, 4)), np.eye(4, dtype=bool))
    >>> p = save(ds, os.path.join(tempfile.mkdtemp(), "traces.csv"))
    >>> load(p)["F"].shape
    (1, 3)
    """
    check_output(path, inputs=result_inputs(result, inputs), name="path")
    fmt = result_format(path, for_writing=True)
    if "rois" in fmt.write_options:
        options["rois"] = rois
    return fmt.write(result, path, **options)


def result_inputs(
    result: Any, inputs: Iterable[str | os.PathLike] = ()
) -> list[tuple[str, str | os.PathLike, str]]:
    """The files a result was made from: the movie and ROI file its attrs record
    (:func:`roitrace.extract` and the command line record them), and ``inputs``."""
    attrs = getattr(result, "attrs", {}) or {}
    found: list[tuple[str, str | os.PathLike, str]] = []
    source = attrs.get(SOURCE)
    if isinstance(source, str) and source and source != "array":
        found.append(("the file this result was read from", source, "result.attrs['source']"))
    if isinstance(attrs.get("rois"), str) and attrs["rois"]:
        found.append(("the ROI source of this result", attrs["rois"], "result.attrs['rois']"))
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found += [("an input", p, "inputs=") for p in inputs]
    return found


def is_folder_output(path: str | os.PathLike) -> bool:
    """Whether :func:`save` writes ``path`` as a suite2p folder: it ends with a
    slash (``"run.v2/"``), is an existing folder, or has no suffix at all (a
    ``pathlib.Path`` cannot end with a slash). The command line is stricter: there
    ``-o`` without a suffix is an error unless it ends with ``/``."""
    return _is_folder_output(path)


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[tuple[str, Any] | tuple[str, Any, str]] = (),
    name: str = "path",
    writable: bool = False,
) -> None:
    """Raise now if :func:`save` could not write ``path``, so that a long extraction
    does not run first: :class:`~roitrace.errors.ParameterError` for an unknown
    suffix, :class:`~roitrace.errors.MissingDependencyError` for a missing writer
    package; :class:`~roitrace.errors.OutputError` when ``path`` (or, for a suite2p
    folder, a file it would replace) is one of ``inputs`` (``(description, path)``
    pairs), or, with ``writable``, when it cannot be written there. ``name`` is how
    the interface calls the output (``"-o/--output"`` on the command line).

    Examples
    --------
    >>> check_output("traces.csv")
    >>> check_output("traces.xlsx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: traces.xlsx is of an unknown output format '.xlsx'; use ...
    """
    folder = is_folder_output(path)
    # First: "this is your movie" says more than "a movie's suffix is no output format".
    # A folder write replaces (or removes) roitrace's set of files in it.
    replaces = getattr(result_format(path, for_writing=True), "owned", ()) if folder else ()
    check_not_input(Path(path), inputs, name=name, folder=folder, replaces=replaces)
    fmt = result_format(path, for_writing=True)  # an unknown suffix: ParameterError
    if not fmt.available():
        fmt.require(f"writing {Path(path)} ({'a folder' if folder else suffix_of(path)})")
    if writable:
        check_writable(Path(path), name=name, folder=folder)


def load(path: str | os.PathLike, *, allow_pickle: bool = False) -> Any:
    """Read a file written by :func:`save` back into an xarray Dataset.

    The format follows the path, as for :func:`save`: a folder is a suite2p plane
    folder, else the suffix decides. ``allow_pickle`` lets a suite2p folder's
    ``ops.npy`` (a pickle) give the frame rate; without it the folder's traces are
    read and ``time`` is left out (the other formats hold no pickle).
    """
    path = Path(path)
    if not path.exists():
        raise ResultNotFoundError(f"{path}: no such file or folder")
    fmt = result_format(path)
    options = {"allow_pickle": allow_pickle} if "allow_pickle" in fmt.read_options else {}
    return fmt.read(path, **options)


def write_image(
    image: np.ndarray, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a 2-D image (a projection, a mask) as TIFF, with its metadata as JSON.

    The metadata (plus the roitrace version) is stored in the TIFF's
    ImageDescription by tifffile and read back by ``tifffile.TiffFile(path).
    shaped_metadata``.
    """
    import tifffile

    path = Path(path)
    meta = {"roitrace_version": __version__, **(metadata or {})}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(image), metadata=jsonable(meta))
    return path
