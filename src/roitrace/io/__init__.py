"""Files in and out: one class per format, for movies, ROI sets and results.

Every format is a :class:`~roitrace.io._base.Format`: it declares its suffixes,
the package it needs, a ``can_open`` check, ``read`` and ``write``, and refuses
keywords it does not know. Three registries list them in the order they are tried:

======== ====================================================================
movies   TIFF (:mod:`.tiff`), HDF5 (:mod:`.hdf5`), NumPy ``.npy`` (:mod:`.numpy`),
         Zarr and OME-Zarr stores (:mod:`.zarr`, a folder format)
ROI sets suite2p ``plane0`` folders (:mod:`.suite2p`, read only), ImageJ
         ``.roi``/``RoiSet.zip`` (:mod:`.imagej`), label images ``.tif``/``.npy``
         (:mod:`.labels`), NWB PlaneSegmentations (:mod:`.nwb`)
results  CSV (:mod:`.csv`), netCDF/HDF5 (:mod:`.netcdf`), NWB (:mod:`.nwb`),
         suite2p ``plane0`` folders (:mod:`.suite2p`)
======== ====================================================================

:func:`roitrace.open_movie`, :func:`read_rois`, :func:`write_rois`,
:func:`roitrace.save` and :func:`roitrace.load` are lookups in them
(:func:`movie_format`, :func:`roi_format`, :func:`result_format`).

Nothing here imports the extraction or the engine: formats sit below the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ParameterError, RoiNotFoundError
from ..rois import RoiSet
from ._base import (
    KINDS,
    REGISTRIES,
    Format,
    MovieFormat,
    RoiFormat,
    check_options,
    check_read_option,
    format_named,
    formats,
    is_folder_output,
    movie_format,
    result_format,
    roi_format,
    writable_suffixes,
)
from .csv import CSVFormat
from .hdf5 import HDF5MovieFormat
from .imagej import ImageJFormat
from .labels import LabelImageFormat
from .netcdf import NetCDFFormat
from .numpy import NumpyMovieFormat
from .nwb import NWBImagingPlane, NWBResultFormat, NWBRoisFormat, NWBSession
from .suite2p import Suite2pResultFormat, Suite2pRoisFormat
from .tiff import TiffFormat
from .zarr import ZarrMovieFormat

__all__ = [
    "KINDS",
    "REGISTRIES",
    "Format",
    "MovieFormat",
    "NWBImagingPlane",
    "NWBSession",
    "RoiFormat",
    "check_options",
    "format_named",
    "formats",
    "is_folder_output",
    "movie_format",
    "read_rois",
    "result_format",
    "roi_format",
    "writable_suffixes",
    "write_rois",
]

# The order is the order of lookup (folder formats are tried first when reading) and
# of the formats in messages.
REGISTRIES["movie"][:] = [
    TiffFormat(),
    NumpyMovieFormat(),
    HDF5MovieFormat(),
    ZarrMovieFormat(),  # a folder format: tried first, claims *.zarr and Zarr folders
]
REGISTRIES["rois"][:] = [
    Suite2pRoisFormat(),
    ImageJFormat(),
    LabelImageFormat(),
    NWBRoisFormat(),
]
REGISTRIES["result"][:] = [
    CSVFormat(),
    NetCDFFormat(),
    NWBResultFormat(),
    Suite2pResultFormat(),
]


# -- ROI sets --------------------------------------------------------------------------------
def read_rois(
    path: str | os.PathLike,
    *,
    shape: tuple[int, int] | None = None,
    allow_pickle: bool = False,
    cells_only: bool = True,
    plane_segmentation: str | None = None,
) -> RoiSet:
    """Read ROIs from a file; the format follows the path.

    Parameters
    ----------
    path : str or path-like
        ImageJ ``.roi`` or ``RoiSet.zip``; a suite2p ``plane0`` folder (or its
        ``stat.npy``); an NWB file with a PlaneSegmentation; a label image as TIFF
        or ``.npy`` (0 = background, one integer per cell).
    shape : (int, int), optional
        The movie's frame shape (rows, columns). Needed for ImageJ ROIs (which do
        not record it) and checked against the others.
    allow_pickle : bool
        suite2p's ``stat.npy`` and ``ops.npy`` are Python pickles, which can run
        code when loaded: they are read only when this is True.
    cells_only : bool
        suite2p: keep only the ROIs ``iscell.npy`` marks as cells.
    plane_segmentation : str, optional
        NWB: the PlaneSegmentation to read when the file holds several.

    Returns
    -------
    rois : RoiSet

    Raises
    ------
    RoiNotFoundError
        ``path`` does not exist (or a suite2p file it needs is missing).
    RoiFormatError
        No ROI format reads ``path`` (its suffix), or the file is damaged.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.npy")
    >>> np.save(path, np.array([[0, 1], [2, 2]]))
    >>> read_rois(path).ids
    [1, 2]
    """
    p = Path(path)
    if not p.exists():
        raise RoiNotFoundError(f"{p}: no such file or folder; check the path")
    check_read_option("rois", "plane_segmentation", plane_segmentation, p)
    fmt = roi_format(p)
    given = {
        "shape": shape,
        "allow_pickle": allow_pickle,
        "cells_only": cells_only,
        "plane_segmentation": plane_segmentation,
    }
    # each format takes its own: suite2p's pickles, NWB's table
    return fmt.read(p, **{k: v for k, v in given.items() if k in fmt.read_options})


def write_rois(
    rois: RoiSet, path: str | os.PathLike, *, format: str | None = None, **options: Any
) -> Path:
    """Write ROIs to a file; the format follows the suffix (or ``format``).

    Parameters
    ----------
    rois : RoiSet
        The ROIs.
    path : str or path-like
        ``RoiSet.zip`` (an ImageJ/Fiji ROI Manager set) or ``.roi`` (one ImageJ
        ROI); a label image ``.tif``/``.tiff``/``.npy`` (where ROIs overlap the
        later one takes the pixel); ``.nwb``: an NWB PlaneSegmentation without
        traces. Written atomically.
    format : {"imagej", "labels", "nwb"}, optional
        The format, whatever the suffix.
    **options
        The format's own options: for NWB those of
        :func:`roitrace.nwb.write_nwb_rois` (``subject``, ``indicator``,
        ``frame_rate``...). Options the format does not take are a
        :class:`~roitrace.errors.ParameterError`.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> rois = RoiSet.from_labels(np.array([[0, 1, 1], [2, 0, 0]]))
    >>> path = write_rois(rois, os.path.join(tempfile.mkdtemp(), "RoiSet.zip"))
    >>> read_rois(path, shape=(2, 3)).ids
    [1, 2]
    """
    if not isinstance(rois, RoiSet):
        raise ParameterError(
            f"rois must be a RoiSet (e.g. RoiSet.from_labels(labels)), got {type(rois).__name__}"
        )
    fmt = (
        format_named("rois", format) if format is not None else roi_format(path, for_writing=True)
    )
    if rois.source:  # the file they were read from is an input: never written over
        from .._atomic import check_not_input

        check_not_input(path, [("the ROI file", rois.source)])
    return fmt.write(rois, path, **options)
