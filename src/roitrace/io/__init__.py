"""Files in and out: one class per format, for movies, ROI sets and results.

Every format is a :class:`~roitrace.io._base.Format`: it declares its suffixes,
the package it needs, a ``can_open`` check, ``read`` and ``write``, and refuses
keywords it does not know. Three registries list them in the order they are tried:

======== ====================================================================
movies   TIFF (:mod:`.tiff`), HDF5 (:mod:`.hdf5`), NumPy ``.npy`` (:mod:`.numpy`);
         Zarr goes here next (a folder format, like suite2p's)
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

from ._base import (
    KINDS,
    REGISTRIES,
    Format,
    check_options,
    format_named,
    formats,
    movie_format,
    result_format,
    roi_format,
    writable_suffixes,
)
from .csv import CSVFormat
from .netcdf import NetCDFFormat
from .nwb import NWBResultFormat
from .suite2p import Suite2pResultFormat

__all__ = [
    "KINDS",
    "REGISTRIES",
    "Format",
    "check_options",
    "format_named",
    "formats",
    "movie_format",
    "result_format",
    "roi_format",
    "writable_suffixes",
]

# The order is the order of lookup (folder formats are tried first when reading).
REGISTRIES["result"][:] = [
    CSVFormat(),
    NetCDFFormat(),
    NWBResultFormat(),
    Suite2pResultFormat(),
]
