"""NWB in and out: ROIs from a PlaneSegmentation, results as NWB optical physiology.

:func:`read_nwb_rois` turns the PlaneSegmentation of any NWB file into a
:class:`~roitrace.rois.RoiSet`; :func:`write_nwb` stores an :func:`roitrace.extract`
result and its ROIs as an NWB file that passes nwbinspector; :func:`read_nwb_result`
reads such a file back into the same :class:`xarray.Dataset`.

Conventions (NWB leaves some of them open, so they are spelled out here):

* roitrace writes ``pixel_mask``: one ``(x, y, weight)`` row per ROI pixel, as the
  NWB schema documents, ``x`` the column and ``y`` the row, ``weight`` float32 (1.0
  for unweighted pixels). It grows with the ROIs' pixels; a dense ``image_mask``
  grows with ROIs x frame size (20,000 ROIs of 512 x 512 frames: 5 GB to compress).
  The frame size goes beside it, as the 2-D image ``roi_coverage`` (how many ROIs
  cover each pixel) in the Images container ``SummaryImages`` of the ``ophys``
  module.
* The reader takes ``image_mask`` too: ``(n_rois, Y, X)``, indexed like the
  movie's frames, row then column; nonzero pixels belong to the ROI, their values
  are its pixel weights. Some writers store ``pixel_mask`` as ``(y, x, weight)``:
  the reader checks the order against the frame size (from a TwoPhotonSeries of
  the imaging plane, a reference image or the largest image in an Images container
  of the table's module, e.g. suite2p's ``meanImg``) and swaps it, with a warning,
  when only the swapped order fits.
* Traces are written time first, ``(n_frames, n_rois)``, as NWB requires.

Needs ``pynwb`` (``pip install pynwb``); it is imported only when these functions
are called.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import difflib
import itertools
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import hdf5_file
from .._optional import require
from .._validate import check_subject
from .._version import __version__
from .._warnings import warn_user
from ..errors import (
    InputFormatError,
    InputNotFoundError,
    ParameterError,
    ResultFormatError,
    ResultNotFoundError,
    RoiFormatError,
    RoiNotFoundError,
    ShapeMismatchError,
)
from ..options import NWBImagingPlane, NWBSession
from ..result import (
    BASELINE_VARS,
    CENTROID_X,
    CENTROID_Y,
    CREATED,
    DECONVOLUTION_VARS,
    DFF_VARS,
    FLUORESCENCE_VARS,
    FRAME,
    FRAME_RATE,
    FRAME_SHAPE,
    NAME,
    NPIX,
    PARAMETERS,
    PIXEL_VARS,
    ROI,
    ROITRACE_VERSION,
    SOURCE,
    TIME,
    VAR_DFF,
    VAR_F,
    check_result,
    pixel_table,
    result_frame_rate,
    result_frame_shape,
    result_rois,
)
from ..rois import Roi, RoiSet
from ._base import Format, RoiFormat

__all__ = [
    "NWBImagingPlane",
    "NWBResultFormat",
    "NWBRoisFormat",
    "NWBSession",
    "read_nwb_result",
    "read_nwb_rois",
    "write_nwb",
    "write_nwb_rois",
]

#: The processing module, interfaces and tables that :func:`write_nwb` creates.
MODULE = "ophys"
PLANE_SEGMENTATION = "PlaneSegmentation"
FRAME_INDEX = "frame_index"
#: PlaneSegmentation columns that are not per-ROI coordinates of a result.
_MASK_COLUMNS = ("image_mask", "pixel_mask", "voxel_mask", "roi_name")
_COLUMN_DESCRIPTIONS = {
    "npix": "number of pixels whose values make the ROI's trace",
    "npix_neuropil": "number of pixels in the ROI's neuropil ring (Fneu is their aggregate)",
    "centroid_y": "row of the ROI's centroid, in pixels",
    "centroid_x": "column of the ROI's centroid, in pixels",
    "snr": "signal-to-noise proxy of the trace (suite2p's 1 - 0.5 var(diff(x)) / var(x))",
    "skewness": "skewness of the trace",
    "neuropil_factor": "r in F_corrected = F - r * Fneu (fixed, or estimated per ROI)",
    "neuropil_converged": "whether the estimate of r converged (r <= 1); if not, r was "
    "filled in with the mean of the converged ROIs",
    "noise": "noise standard deviation of the trace dF/F0 was made from",
    "deconvolution_noise": "noise standard deviation of dF/F0 the spikes were inferred with",
}
_UNIT = "a.u."
#: The Fluorescence interface holding deconvolved traces (suite2p's name for it).
DECONVOLVED = "Deconvolved"
#: Trace variables written, in order, and the interface of those not in Fluorescence.
_WRITTEN = (*FLUORESCENCE_VARS, *BASELINE_VARS, *DFF_VARS, *DECONVOLUTION_VARS)
_INTERFACE = {
    **{v: "DfOverF" for v in DFF_VARS},
    **{v: DECONVOLVED for v in DECONVOLUTION_VARS},
}
_SESSION_DESCRIPTION = "calcium imaging: fluorescence traces of cells, extracted by roitrace"
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
#: NWB's pixel_mask row, as the schema defines it.
_PIXEL_MASK_DTYPE = np.dtype([("x", np.uint32), ("y", np.uint32), ("weight", np.float32)])
#: Bytes of image_mask read at once (as float64) when reading one.
_IMAGE_MASK_BLOCK = 64 << 20
#: The Images container and image that record the frame size beside the pixel_mask.
SUMMARY_IMAGES = "SummaryImages"
COVERAGE_IMAGE = "roi_coverage"

#: What a missing or unreadable file is, by what was read from it: ROIs or a result.
_Errors = tuple[type[InputNotFoundError], type[InputFormatError]]
_ROI_ERRORS: _Errors = (RoiNotFoundError, RoiFormatError)
_RESULT_ERRORS: _Errors = (ResultNotFoundError, ResultFormatError)


# -- metadata (NWBSession, NWBImagingPlane: roitrace.options) -------------------------------
_SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(NWBSession))
_PLANE_FIELDS = tuple(f.name for f in dataclasses.fields(NWBImagingPlane))

#: The keywords of write_nwb and write_nwb_rois: the two metadata objects, the frame
#: rate, and each object's fields one by one (the keywords of earlier versions).
METADATA_OPTIONS = ("session", "plane", "frame_rate", *_SESSION_FIELDS, *_PLANE_FIELDS)


def _metadata(
    session: NWBSession | Mapping[str, Any] | None,
    plane: NWBImagingPlane | Mapping[str, Any] | None,
    flat: Mapping[str, Any],
    writer: str,
) -> tuple[NWBSession, NWBImagingPlane]:
    """``session`` and ``plane`` with the fields given one by one (``flat``, as
    ``subject=...``, ``indicator=...``) filled in; a field given both ways, or an
    unknown keyword, is a :class:`~roitrace.errors.ParameterError`."""
    unknown = [k for k in flat if k not in _SESSION_FIELDS and k not in _PLANE_FIELDS]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, METADATA_OPTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ParameterError(
            f"{writer} takes no option {name!r}: {hint}its options are rois, "
            f"{', '.join(METADATA_OPTIONS)}"
        )
    objects = []
    for given, cls, names, keyword in (
        (session, NWBSession, _SESSION_FIELDS, "session"),
        (plane, NWBImagingPlane, _PLANE_FIELDS, "plane"),
    ):
        if given is None:
            given = cls()
        elif isinstance(given, Mapping):
            bad = sorted(set(given) - set(names))
            if bad:
                raise ParameterError(
                    f"{keyword}={dict(given)!r}: {cls.__name__} has no field {bad[0]!r}; "
                    f"its fields are {', '.join(names)}"
                )
            given = cls(**given)
        elif not isinstance(given, cls):
            raise ParameterError(
                f"{keyword} must be a roitrace.{cls.__name__}(...) (or a dict of its "
                f"fields), got {type(given).__name__}"
            )
        extra = {k: v for k, v in flat.items() if k in names and v is not None}
        twice = [k for k in extra if getattr(given, k) is not None]
        if twice:
            raise ParameterError(
                f"{twice[0]} is given twice, as {writer}({twice[0]}=...) and in "
                f"{keyword}={cls.__name__}({twice[0]}=...); give it once"
            )
        objects.append(dataclasses.replace(given, **extra))
    return objects[0], objects[1]


# -- the io registries' entries --------------------------------------------------------------
class NWBResultFormat(Format):
    """Results as NWB files: :func:`write_nwb` and :func:`read_nwb_result`."""

    name = "nwb"
    title = "NWB"
    kind = "result"
    suffixes = (".nwb",)
    requires = ("pynwb", "pynwb", None)
    write_options = ("rois", *METADATA_OPTIONS)

    def _read(self, path: str | os.PathLike) -> Any:
        return read_nwb_result(path)

    def _write(
        self, result: Any, path: str | os.PathLike, *, rois: RoiSet | None = None, **options: Any
    ) -> Path:
        return write_nwb(result, rois or result_rois(result), path, **options)


class NWBRoisFormat(RoiFormat):
    """ROI sets as NWB PlaneSegmentations: :func:`read_nwb_rois` and
    :func:`write_nwb_rois` (the ROIs alone, no traces)."""

    name = "nwb"
    title = "NWB"
    suffixes = (".nwb",)
    requires = ("pynwb", "pynwb", None)
    read_options = ("shape", "plane_segmentation")
    write_options = METADATA_OPTIONS

    def _read(
        self,
        path: str | os.PathLike,
        *,
        shape: tuple[int, int] | None = None,
        plane_segmentation: str | None = None,
    ) -> RoiSet:
        return read_nwb_rois(path, shape=shape, plane_segmentation=plane_segmentation)

    def _write(self, rois: RoiSet, path: str | os.PathLike, **metadata: Any) -> Path:
        return write_nwb_rois(rois, path, **metadata)


# -- reading ROIs --------------------------------------------------------------------------
def _pynwb() -> None:
    """Fail with one message and the install command when pynwb is missing."""
    require("pynwb", "reading or writing NWB files")
    require("hdmf", "reading or writing NWB files")


def read_nwb_rois(
    path: str | os.PathLike,
    *,
    plane_segmentation: str | None = None,
    shape: tuple[int, int] | None = None,
) -> RoiSet:
    """Read the ROIs of an NWB PlaneSegmentation.

    Parameters
    ----------
    path : str or path-like
        An NWB file (HDF5).
    plane_segmentation : str, optional
        The PlaneSegmentation to read, by name (``"PlaneSegmentation"``) or by path
        (``"ophys/ImageSegmentation/PlaneSegmentation"``). Needed only when the file
        holds several.
    shape : (int, int), optional
        The frame shape ``(Y, X)``. Only needed for ``pixel_mask`` ROIs when the
        file records no frame size (no ``image_mask``, no TwoPhotonSeries of the
        imaging plane or reference image, no image in an Images container of the
        table's module, as roitrace and suite2p write); otherwise the frame is
        taken as just big enough to hold the ROIs.

    Returns
    -------
    rois : RoiSet
        One :class:`~roitrace.rois.Roi` per table row: ``id`` from the table's
        ``id`` column, ``name`` from a ``roi_name`` or ``name`` column (else
        ``"roi <id>"``), ``weights`` from the mask values (None when they are all
        1). ``meta`` records the table's path, description and imaging plane.

    Raises
    ------
    RoiNotFoundError
        The file does not exist.
    RoiFormatError
        The file is not NWB, holds no PlaneSegmentation, or only 3-D
        ``voxel_mask`` ROIs.
    ParameterError
        Several PlaneSegmentations and no (or an unknown) ``plane_segmentation``.
    ShapeMismatchError
        A ``pixel_mask`` fits the frame in neither (x, y) nor (y, x) order.

    Warns
    -----
    UserWarning
        When a ``pixel_mask`` is stored as (y, x) and is read swapped.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roitrace import extract
    >>> labels = np.zeros((8, 10), int); labels[1:3, 1:4] = 1; labels[5:7, 6:9] = 2
    >>> ds = extract(np.ones((6, 8, 10)), labels)
    >>> p = write_nwb(ds, RoiSet.from_labels(labels),
    ...               os.path.join(tempfile.mkdtemp(), "cells.nwb"), frame_rate=10.0)
    >>> rois = read_nwb_rois(p)
    >>> rois.ids, rois.names, rois.frame_shape, [r.npix for r in rois]
    ([1, 2], ['roi 1', 'roi 2'], (8, 10), [6, 6])
    """
    _pynwb()
    path = Path(path)
    with _open_nwb(path, _ROI_ERRORS) as nwbfile:
        key, table = _pick_plane_segmentation(nwbfile, path, plane_segmentation)
        return _rois_from_table(table, key, path, shape, RoiFormatError)


def _rois_from_table(
    table: Any, key: str, path: Path, shape: Any, error: type[InputFormatError]
) -> RoiSet:
    where = f"PlaneSegmentation {key!r} in {path}"
    if shape is not None:
        shape = _check_shape(shape)
    cols = set(table.colnames)
    ids = [int(i) for i in np.asarray(table.id.data[:])]
    names = _roi_names(table, ids)
    if "image_mask" in cols:
        pixels, frame_shape = _image_mask_pixels(table["image_mask"].data, where, shape, error)
    elif "pixel_mask" in cols:
        pixels, frame_shape = _pixel_mask_pixels(table, where, path, shape, error)
    elif "voxel_mask" in cols:
        raise error(
            f"{where} holds 3-D voxel_mask ROIs, which roitrace does not support: "
            "it extracts 2-D ROIs only; store a 2-D image_mask or pixel_mask per plane"
        )
    else:
        raise error(
            f"{where} has no image_mask, pixel_mask or voxel_mask column "
            f"(columns: {', '.join(table.colnames) or 'none'}); it is not a usable ROI table"
        )
    rois = [Roi(i, y, x, w, name) for i, name, (y, x, w) in zip(ids, names, pixels, strict=True)]
    meta = {
        "plane_segmentation": key,
        "description": str(table.description or ""),
        "imaging_plane": getattr(table.imaging_plane, "name", ""),
    }
    return RoiSet(rois, frame_shape, source=str(path), meta=meta)


def _roi_names(table: Any, ids: list[int]) -> list[str]:
    for col in ("roi_name", "name"):
        if col in table.colnames:
            values = table[col].data[:]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return [f"roi {i}" for i in ids]


def _image_mask_pixels(
    data: Any, where: str, shape: tuple[int, int] | None, error: type[InputFormatError]
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], tuple[int, int]]:
    dshape = tuple(int(n) for n in data.shape)
    if len(dshape) == 4:
        raise error(
            f"{where} holds 3-D image_mask ROIs {dshape[1:]}, which roitrace does not "
            "support: it extracts 2-D ROIs only; store one 2-D mask per plane"
        )
    if len(dshape) != 3:
        raise error(
            f"{where}: image_mask has shape {dshape}, expected (n_rois, Y, X); "
            "the file is not valid NWB"
        )
    frame_shape = dshape[1:]
    if shape is not None and shape != frame_shape:
        raise ShapeMismatchError(
            f"{where}: image_mask frames are {frame_shape[0]} x {frame_shape[1]} but "
            f"shape={shape} was given; leave shape out or pass the ROIs' own frame size"
        )
    out = []
    # some ROIs at a time (up to 64 MB): one read a ROI is slow for 10^4 ROIs, and
    # all of them at once can be gigabytes
    step = max(1, _IMAGE_MASK_BLOCK // (8 * max(1, frame_shape[0] * frame_shape[1])))
    for k0 in range(0, dshape[0], step):
        block = np.asarray(data[k0 : k0 + step], dtype=np.float64)
        kk, y, x = np.nonzero(block)  # sorted by ROI, then row-major as before
        values = block[kk, y, x]
        bounds = np.searchsorted(kk, np.arange(block.shape[0] + 1))
        for a, b in itertools.pairwise(bounds):
            out.append((y[a:b], x[a:b], _weights(values[a:b])))
    return out, frame_shape


def _pixel_mask_pixels(
    table: Any,
    where: str,
    path: Path,
    shape: tuple[int, int] | None,
    error: type[InputFormatError],
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], tuple[int, int]]:
    col = table["pixel_mask"]
    target = getattr(col, "target", col)  # the flat (x, y, weight) rows behind the index
    flat = np.asarray(target.data[:])
    ends = np.asarray(col.data[:], dtype=np.int64) if hasattr(col, "target") else None
    if flat.dtype.names:
        fields = flat.dtype.names
        a = np.asarray(flat[fields[0]], dtype=np.float64)
        b = np.asarray(flat[fields[1]], dtype=np.float64)
        w = np.asarray(flat[fields[-1]], dtype=np.float64)
    else:
        arr = np.asarray(flat, dtype=np.float64).reshape(len(flat), -1)
        a, b, w = arr[:, 0], arr[:, 1], arr[:, -1]
    if ends is None:
        ends = np.array([len(a)], np.int64)
    if a.size and (np.any(a != np.round(a)) or np.any(b != np.round(b))):
        raise error(
            f"{where}: pixel_mask holds non-integer pixel coordinates; "
            "it is not a valid pixel mask"
        )
    if a.size and (a.min() < 0 or b.min() < 0):
        raise ShapeMismatchError(
            f"{where}: pixel_mask holds negative pixel coordinates; it is not a valid pixel mask"
        )
    a, b = a.astype(np.int64), b.astype(np.int64)
    frame_shape = shape or _frame_shape_from_file(table)
    if frame_shape is None:
        # nothing to check against: trust the documented (x, y) order
        frame_shape = (int(b.max()) + 1 if b.size else 1, int(a.max()) + 1 if a.size else 1)
        x, y = a, b
    else:
        ny, nx = frame_shape
        if a.size == 0 or (a.max() < nx and b.max() < ny):
            x, y = a, b  # (x, y) as documented fits (on square frames both may)
        elif a.max() < ny and b.max() < nx:
            warn_user(
                f"{where}: pixel_mask is stored as (y, x, weight) instead of NWB's "
                f"(x, y, weight): as (x, y) pixels fall outside the {ny} x {nx} frame, "
                "as (y, x) they fit; reading it as (y, x)",
            )
            x, y = b, a
        else:
            raise ShapeMismatchError(
                f"{where}: pixel_mask coordinates reach x={a.max()}, y={b.max()}, outside "
                f"the {ny} x {nx} frame in either (x, y) or (y, x) order; pass the right "
                "shape=(Y, X), or the file's masks belong to another movie"
            )
    out = []
    start = 0
    for stop in ends:
        yy, xx, ww = y[start:stop], x[start:stop], w[start:stop]
        order = np.lexsort((xx, yy))  # row-major, as np.nonzero gives for image masks
        out.append((yy[order], xx[order], _weights(ww[order])))
        start = int(stop)
    return out, frame_shape


def _frame_shape_from_file(table: Any) -> tuple[int, int] | None:
    """The frame shape ``(Y, X)`` the table's masks refer to, when the file records it."""
    from pynwb.ophys import TwoPhotonSeries

    plane = table.imaging_plane
    refs = list(table.reference_images or [])
    nwbfile = table.get_ancestor("NWBFile")
    if nwbfile is not None:
        refs += [
            o
            for o in nwbfile.objects.values()
            if isinstance(o, TwoPhotonSeries) and o.imaging_plane is plane
        ]
    for series in refs:
        data = getattr(series, "data", None)
        dshape = getattr(data, "shape", None)
        if dshape is not None and len(dshape) >= 3 and dshape[1] > 0 and dshape[2] > 0:
            return int(dshape[1]), int(dshape[2])
    for series in refs:
        dim = getattr(series, "dimension", None)
        if dim is not None and len(dim) >= 2:
            return int(dim[1]), int(dim[0])  # NWB documents dimension as (x, y)
    images = _module_images(table)
    if images:
        # roitrace's roi_coverage, else the largest: suite2p's Backgrounds hold the
        # full-frame meanImg beside cropped max_proj and Vcorr
        named = [shape for name, shape in images if name == COVERAGE_IMAGE]
        return named[0] if named else max((shape for _, shape in images), key=np.prod)
    manifold = getattr(plane, "manifold", None)
    if manifold is not None and len(manifold.shape) == 3:
        return int(manifold.shape[0]), int(manifold.shape[1])
    return None


def _module_images(table: Any) -> list[tuple[str, tuple[int, int]]]:
    """Name and (Y, X) shape of every 2-D image in the Images containers of the
    processing module that holds ``table`` (its ImageSegmentation's parent)."""
    from pynwb.base import Images

    module = getattr(getattr(table, "parent", None), "parent", None)
    out = []
    for container in getattr(module, "data_interfaces", {}).values():
        if isinstance(container, Images):
            for name, image in container.images.items():
                dshape = getattr(getattr(image, "data", None), "shape", ())
                if len(dshape) == 2 and min(dshape) > 0:
                    out.append((str(name), (int(dshape[0]), int(dshape[1]))))
    return out


def _weights(values: np.ndarray) -> np.ndarray | None:
    return None if np.all(values == 1.0) else np.asarray(values, dtype=np.float64)


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        ny, nx = (int(n) for n in shape)
    except (TypeError, ValueError):
        raise ParameterError(f"shape={shape!r}: give the frame size as (Y, X)") from None
    if ny < 1 or nx < 1:
        raise ParameterError(f"shape={shape!r}: the frame size (Y, X) must be positive")
    return ny, nx


# -- finding things in a file --------------------------------------------------------------
@contextlib.contextmanager
def _open_nwb(path: Path, errors: _Errors) -> Iterator[Any]:
    """Open an NWB file for reading; errors become roitrace errors naming the file
    (``errors``: the classes for a missing file and an unreadable one)."""
    missing, unreadable = errors
    if not path.exists():
        raise missing(f"{path}: no such file")
    import pynwb

    try:
        io = pynwb.NWBHDF5IO(str(path), "r")
    except Exception as e:  # h5py/hdmf raise OSError, ValueError... for non-NWB files
        raise unreadable(
            f"{path}: not a readable NWB (HDF5) file ({e}); check that it is an NWB file"
        ) from e
    with io:
        try:
            nwbfile = io.read()
        except Exception as e:  # corrupt or not NWB: hdmf raises many kinds
            raise unreadable(
                f"{path}: not a readable NWB file ({e}); check that it is complete NWB"
            ) from e
        yield nwbfile


def _object_path(obj: Any) -> str:
    parts = []
    while obj is not None and obj.parent is not None:
        parts.append(obj.name)
        obj = obj.parent
    return "/".join(reversed(parts))


def _contents(nwbfile: Any) -> str:
    """What a file holds, for error messages."""
    items = [f"acquisition/{k} ({type(v).__name__})" for k, v in nwbfile.acquisition.items()]
    for mname, module in nwbfile.processing.items():
        if not module.data_interfaces:
            items.append(f"processing/{mname} (empty)")
        items += [
            f"processing/{mname}/{k} ({type(v).__name__})"
            for k, v in module.data_interfaces.items()
        ]
    if not items:
        return "no acquisition or processed data"
    shown = ", ".join(items[:12])
    return shown + (f" and {len(items) - 12} more" if len(items) > 12 else "")


def _pick_plane_segmentation(nwbfile: Any, path: Path, name: str | None) -> tuple[str, Any]:
    from pynwb.ophys import PlaneSegmentation

    tables = {
        _object_path(o): o for o in nwbfile.objects.values() if isinstance(o, PlaneSegmentation)
    }
    tables = dict(sorted(tables.items()))
    if not tables:
        raise RoiFormatError(
            f"no PlaneSegmentation in {path} (it holds: {_contents(nwbfile)}); "
            "give the ROIs another way, e.g. as a label image"
        )
    if name is None:
        if len(tables) > 1:
            raise ParameterError(
                f"{path} holds {len(tables)} PlaneSegmentations: {', '.join(tables)}; "
                "choose one with plane_segmentation=NAME"
            )
        return next(iter(tables.items()))
    matches = [(k, t) for k, t in tables.items() if name in (k, t.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ParameterError(
            f"plane_segmentation={name!r} is not in {path}; it holds: {', '.join(tables)}"
        )
    raise ParameterError(
        f"plane_segmentation={name!r} matches several tables in {path}: "
        f"{', '.join(k for k, _ in matches)}; give the full path"
    )


# -- writing ---------------------------------------------------------------------------------
def write_nwb(
    result: Any,
    rois: RoiSet | None,
    path: str | os.PathLike,
    *,
    session: NWBSession | Mapping[str, Any] | None = None,
    plane: NWBImagingPlane | Mapping[str, Any] | None = None,
    frame_rate: float | None = None,
    **metadata: Any,
) -> Path:
    """Write an :func:`roitrace.extract` result and its ROIs as an NWB file.

    The file holds a Device, an ImagingPlane (with its OpticalChannel) and a
    processing module ``"ophys"`` with:

    * ``ImageSegmentation/PlaneSegmentation``: one row per ROI with ``pixel_mask``
      (its pixels' ``(x, y, weight)``, weight 1.0 when unweighted; NWB stores
      weights as float32), ``roi_name`` and a column per per-ROI coordinate of the
      result (``npix``, ``npix_neuropil``, ``centroid_y``...); row ids are the ROI
      ids;
    * ``SummaryImages/roi_coverage``: how many ROIs cover each pixel, an image of
      the whole frame, which records the frame size;
    * ``Fluorescence``: RoiResponseSeries ``F``, and ``Fneu``, ``F_corrected`` and
      ``F0`` (the baseline of dF/F) when present;
    * ``DfOverF``: RoiResponseSeries ``dff`` when present;
    * ``Deconvolved`` (a Fluorescence interface, as suite2p names it):
      RoiResponseSeries ``calcium`` and ``spikes`` when the result was deconvolved;
    * ``frame_index``: the movie frame of each time point.

    Data is time first, ``(n_frames, n_rois)``, gzip-compressed, unit ``"a.u."``.
    Other per-ROI variables are not written (a warning names them).
    Timing is ``rate`` and ``starting_time`` when time points are evenly spaced
    (all frames, or every n-th), else ``timestamps``. The roitrace version and the
    extraction parameters go into the file's ``notes`` and ``was_generated_by`` and
    each series' ``description`` and ``comments``. The file is written under a
    temporary name and renamed, so an error never leaves a partial file.

    Parameters
    ----------
    result : xarray.Dataset
        Dims ``(roi, time)``, as returned by :func:`roitrace.extract` (``dff`` may be
        added to it).
    rois : RoiSet or None
        The ROIs the result was extracted with; every ROI id of ``result`` must be
        in it. Only the result's ROIs are written, in the result's order. None:
        the pixel table the result carries (:func:`roitrace.result.result_rois`).
    path : str or path-like
        The file to write (``.nwb`` by convention); replaced if it exists.
    session : NWBSession or dict, optional
        The session's metadata: ``session_description`` (default: a generic calcium
        imaging description), ``identifier``, ``session_start_time``, ``subject``
        (without it nwbinspector reports the subject missing), ``experimenter``,
        ``lab``, ``institution``, ``nwbfile_kwargs``. See :class:`NWBSession`.
    plane : NWBImagingPlane or dict, optional
        The imaging plane's: ``indicator``, ``location``, ``device``,
        ``excitation_lambda``, ``emission_lambda``. See :class:`NWBImagingPlane`.
    frame_rate : float, optional
        Frames per second; default the result's ``frame_rate`` attribute. Needed
        when the result has neither a frame rate nor a ``time`` coordinate.
    **metadata
        The fields of ``session`` and ``plane`` one by one, as earlier versions
        took them (``subject={...}``, ``indicator="GCaMP6f"``...): they fill the
        objects' fields (a field given both ways is an error).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ParameterError
        A malformed result, unknown subject keys, or no frame rate and no time.
    ShapeMismatchError
        ``rois`` does not hold the result's ROIs (ids or frame size differ).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roitrace import as_movie, extract
    >>> labels = np.zeros((8, 8), int); labels[1:3, 1:3] = 1; labels[5:7, 4:7] = 2
    >>> movie = as_movie(np.random.default_rng(0).poisson(50, (12, 8, 8)), frame_rate=5.0)
    >>> ds = extract(movie, labels)
    >>> p = write_nwb(ds, RoiSet.from_labels(labels),
    ...               os.path.join(tempfile.mkdtemp(), "session.nwb"),
    ...               session=NWBSession(subject={"subject_id": "m1"}),
    ...               plane=NWBImagingPlane(indicator="GCaMP6f", location="VISp"))
    >>> p.name
    'session.nwb'
    >>> bool(np.array_equal(read_nwb_result(p)["F"], ds["F"]))
    True
    """
    _pynwb()
    import pynwb
    from hdmf.common import DynamicTableRegion
    from pynwb import H5DataIO
    from pynwb.ophys import DfOverF, Fluorescence, RoiResponseSeries

    path = Path(path)
    session, plane = _metadata(session, plane, metadata, "write_nwb")
    if rois is None:
        check_result(result, pixels=True, writer="write_nwb")
        rois = result_rois(result)
    _, order = _check_result(result, rois)
    attrs = dict(result.attrs)
    version = str(attrs.get(ROITRACE_VERSION) or __version__)
    movie_rate = _movie_rate(frame_rate, result)
    frames = np.asarray(result[FRAME].values, np.int64) if FRAME in result.coords else None
    if frames is None:
        frames = np.arange(result.sizes[TIME], dtype=np.int64)
    timing = _timing(result, frames, movie_rate, explicit_rate=frame_rate is not None)

    if NAME in result.coords and result[NAME].dims == (ROI,):
        names = [str(v) for v in result[NAME].values]
    else:
        names = None
    chosen = [rois[k] for k in order]
    nwbfile, module, table = _segmentation_file(
        chosen,
        rois.frame_shape,
        names=names,
        coords=result.coords,
        source=str(attrs.get(SOURCE) or "array"),
        version=version,
        notes=_notes(version, attrs),
        imaging_rate=movie_rate,
        session=session,
        plane=plane,
        description=_SESSION_DESCRIPTION,
    )

    # the interfaces join the file before their series: a series' ROI region must
    # share an ancestor with the PlaneSegmentation it points to
    interfaces = {"Fluorescence": Fluorescence(name="Fluorescence")}
    if any(v in result.data_vars for v in DFF_VARS):
        interfaces["DfOverF"] = DfOverF(name="DfOverF")
    if any(v in result.data_vars for v in DECONVOLUTION_VARS):
        interfaces[DECONVOLVED] = Fluorescence(name=DECONVOLVED)
    for holder in interfaces.values():
        module.add(holder)
    first = None
    for var in _WRITTEN:
        if var not in result.data_vars:
            continue
        # an array, not create_roi_table_region's list: hdmf checks the type of
        # every element of a list, seconds for 10^4 ROIs
        region = DynamicTableRegion(
            name="rois",
            data=np.arange(len(chosen)),
            description=f"the ROIs of {PLANE_SEGMENTATION}, in the order of the columns of data",
            table=table,
        )
        data = np.ascontiguousarray(result[var].transpose(ROI, TIME).values.T)
        series = RoiResponseSeries(
            name=var,
            data=H5DataIO(data, **_COMPRESSION),
            rois=region,
            unit=_UNIT,
            description=_series_description(var, result[var].attrs, version),
            comments=_comments(version, result[var].attrs, attrs),
            **_timing_kwargs(timing, first),
        )
        holder = interfaces[_INTERFACE.get(var, "Fluorescence")]
        holder.add_roi_response_series(series)
        if first is None:
            first = series
    module.add(
        pynwb.TimeSeries(
            name=FRAME_INDEX,
            data=H5DataIO(frames, **_COMPRESSION),
            unit="frame",
            description="the index (0-based) in the source movie of the frame behind each "
            "time point of the RoiResponseSeries",
            **_timing_kwargs(timing, first),
        )
    )
    skipped = sorted(set(result.data_vars) - {*_WRITTEN, *PIXEL_VARS})
    if skipped:
        warn_user(
            f"write_nwb: variables {skipped} are not written to {path.name}: NWB files from "
            f"roitrace hold {', '.join(_WRITTEN)} only",
        )

    return _write_nwbfile(nwbfile, path)


def _segmentation_file(
    chosen: list[Roi],
    frame_shape: tuple[int, int],
    *,
    names: list[str] | None,
    coords: Mapping[str, Any],
    source: str,
    version: str,
    notes: str,
    imaging_rate: float | None,
    session: NWBSession,
    plane: NWBImagingPlane,
    description: str,
) -> tuple[Any, Any, Any]:
    """An NWBFile with a Device, an ImagingPlane and ``ophys/ImageSegmentation`` holding
    one PlaneSegmentation of ``chosen``; returns the file, the module and the table."""
    from hdmf.common import VectorData, VectorIndex
    from pynwb import H5DataIO
    from pynwb.base import Images
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import ImageSegmentation, OpticalChannel, PlaneSegmentation

    nwbfile = _make_nwbfile(session, notes=notes, description=description)
    dev = _make_device(plane.device)
    nwbfile.add_device(dev)
    source = "a movie given as an array" if source == "array" else source
    channel = OpticalChannel(
        name="OpticalChannel",
        description="the channel the movie was recorded in (not specified to roitrace)",
        emission_lambda=_wavelength(plane.emission_lambda, "emission_lambda"),
    )
    imaging_plane = nwbfile.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        description=f"the imaging plane of {source}",
        device=dev,
        excitation_lambda=_wavelength(plane.excitation_lambda, "excitation_lambda"),
        indicator=plane.indicator or "unknown",
        location=plane.location or "unknown",
        imaging_rate=imaging_rate,
    )
    module = nwbfile.create_processing_module(
        name=MODULE,
        description=f"optical physiology: ROIs and their fluorescence traces from {source}, "
        f"by roitrace {version}",
    )
    segmentation = ImageSegmentation(name="ImageSegmentation")
    module.add(segmentation)

    if names is None:
        names = [r.name or f"roi {r.id}" for r in chosen]
    # pixel_mask, not image_mask: a dense (n, Y, X) image_mask is ROIs x frame size
    # (minutes of gzip for 10^4 ROIs); pixel rows grow with the ROIs' pixels only
    sizes = np.fromiter((r.npix for r in chosen), np.int64, len(chosen))
    rows = np.zeros(int(sizes.sum()), _PIXEL_MASK_DTYPE)
    if chosen:
        rows["x"] = np.concatenate([np.asarray(r.x) for r in chosen])
        rows["y"] = np.concatenate([np.asarray(r.y) for r in chosen])
        rows["weight"] = np.concatenate(
            [np.ones(r.npix) if r.weights is None else np.asarray(r.weights) for r in chosen]
        )
    pixel_mask = VectorData(
        name="pixel_mask",
        description="each ROI's pixels as (x: column, y: row, weight) rows; weight 1.0 "
        "for unweighted pixels",
        data=H5DataIO(rows, **_COMPRESSION),
    )
    columns = [
        pixel_mask,
        VectorIndex(name="pixel_mask_index", target=pixel_mask, data=np.cumsum(sizes)),
        VectorData(name="roi_name", description="the ROI's name in roitrace", data=names),
    ]
    for name, coord in coords.items():
        if coord.dims != (ROI,) or name in (ROI, NAME, *_MASK_COLUMNS):
            continue
        description = _COLUMN_DESCRIPTIONS.get(name) or str(
            coord.attrs.get("long_name") or f"the result's per-ROI coordinate {name!r}"
        )
        values = coord.values
        if values.dtype.kind not in "biuf":
            values = values.astype(str)
        columns.append(VectorData(name=str(name), description=description, data=values))
    table = PlaneSegmentation(
        name=PLANE_SEGMENTATION,
        description="the ROIs (cells), one row per ROI; row ids are roitrace's ROI ids",
        imaging_plane=imaging_plane,
        id=np.fromiter((r.id for r in chosen), np.int64, len(chosen)),
        columns=columns,
    )
    segmentation.add_plane_segmentation(table)
    # pixel_mask does not record the frame size: an image of the frame does
    ny, nx = frame_shape
    flat = rows["y"].astype(np.int64) * nx + rows["x"]
    coverage = np.bincount(flat, minlength=ny * nx).reshape(ny, nx)
    module.add(
        Images(
            name=SUMMARY_IMAGES,
            description="images of the field of view, made by roitrace",
            images=[
                GrayscaleImage(
                    name=COVERAGE_IMAGE,
                    data=H5DataIO(coverage.astype(np.uint32), **_COMPRESSION),
                    description="how many ROIs of the PlaneSegmentation cover each pixel, "
                    "over the whole (y, x) frame: its shape is the frame size the "
                    "pixel_mask coordinates refer to",
                )
            ],
        )
    )
    return nwbfile, module, table


def write_nwb_rois(
    rois: RoiSet,
    path: str | os.PathLike,
    *,
    session: NWBSession | Mapping[str, Any] | None = None,
    plane: NWBImagingPlane | Mapping[str, Any] | None = None,
    frame_rate: float | None = None,
    **metadata: Any,
) -> Path:
    """Write a RoiSet alone (a segmentation, no traces) as an NWB file.

    The file holds ``ophys/ImageSegmentation/PlaneSegmentation`` exactly as
    :func:`write_nwb` writes it (``pixel_mask`` with the ROIs' weights, ``roi_name``,
    and columns ``npix``, ``centroid_y``, ``centroid_x``; and the ``roi_coverage``
    image that records the frame size), so
    :func:`read_nwb_rois` and :func:`roitrace.read_rois` read it back to the same
    ROIs. Written atomically. The options are those of :func:`write_nwb`
    (``session``, ``plane`` or their fields one by one); ``frame_rate`` becomes the
    imaging plane's rate when given. The default session description says that the
    file holds a segmentation.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> labels = np.zeros((8, 10), int); labels[1:3, 1:4] = 1; labels[5:7, 6:9] = 2
    >>> p = write_nwb_rois(RoiSet.from_labels(labels),
    ...                    os.path.join(tempfile.mkdtemp(), "segmentation.nwb"))
    >>> bool(np.array_equal(read_nwb_rois(p).to_labels(), labels))
    True
    """
    _pynwb()
    import xarray as xr

    if not isinstance(rois, RoiSet):
        raise ParameterError(
            f"rois must be a RoiSet (e.g. RoiSet.from_labels(labels)), got {type(rois).__name__}"
        )
    rois.check_not_empty()
    path = Path(path)
    session, plane = _metadata(session, plane, metadata, "write_nwb_rois")
    coords = xr.Dataset(
        coords={
            NPIX: (ROI, np.array([r.npix for r in rois], np.int64)),
            CENTROID_Y: (ROI, rois.centroids()[:, 0]),
            CENTROID_X: (ROI, rois.centroids()[:, 1]),
        }
    ).coords
    nwbfile, _, _ = _segmentation_file(
        list(rois),
        rois.frame_shape,
        names=None,
        coords=coords,
        source=rois.source or "array",
        version=__version__,
        notes=f"ROIs written by roitrace {__version__}",
        imaging_rate=_movie_rate(frame_rate, None) if frame_rate is not None else None,
        session=session,
        plane=plane,
        description="calcium imaging: cell ROIs (segmentation), by roitrace",
    )
    return _write_nwbfile(nwbfile, path)


def _write_nwbfile(nwbfile: Any, path: Path) -> Path:
    """Write an NWBFile in memory, then its bytes to ``path`` atomically."""
    import pynwb

    with hdf5_file(path) as f, pynwb.NWBHDF5IO(file=f, mode="w") as io:
        io.write(nwbfile)
    return path


def _check_result(result: Any, rois: RoiSet) -> tuple[np.ndarray, list[int]]:
    """The result's ROI ids and, for each, its index in ``rois``."""
    check_result(result, needs=(VAR_F,), writer="write_nwb")
    if not isinstance(rois, RoiSet):
        raise ParameterError(
            f"rois must be a RoiSet (e.g. RoiSet.from_labels(labels)), got {type(rois).__name__}"
        )
    n = result.sizes[ROI]
    ids = np.asarray(result[ROI].values) if ROI in result.coords else np.arange(1, n + 1)
    index = {r.id: k for k, r in enumerate(rois)}
    missing = [int(i) for i in ids if int(i) not in index]
    if missing:
        raise ShapeMismatchError(
            f"the result has ROIs {missing[:10]} that are not in rois (ids {rois.ids[:10]}"
            f"{'...' if len(rois) > 10 else ''}); pass the RoiSet the result was extracted with"
        )
    shape = result_frame_shape(result)
    if shape and shape != rois.frame_shape:
        raise ShapeMismatchError(
            f"the result comes from {shape[0]} x {shape[1]} frames but rois are for "
            f"{rois.frame_shape[0]} x {rois.frame_shape[1]} frames; pass the RoiSet the "
            "result was extracted with"
        )
    return ids, [index[int(i)] for i in ids]


def _movie_rate(frame_rate: float | None, result: Any) -> float | None:
    """``frame_rate`` checked, else the rate ``result`` records (None: unknown)."""
    if frame_rate is not None:
        rate = float(frame_rate)
        if not np.isfinite(rate) or rate <= 0:
            raise ParameterError(f"frame_rate={frame_rate!r}: give frames per second, > 0")
        return rate
    return result_frame_rate(result)


def _timing(
    result: Any, frames: np.ndarray, movie_rate: float | None, *, explicit_rate: bool
) -> dict[str, Any]:
    """``{"rate", "starting_time"}`` for evenly spaced time points, else ``{"timestamps"}``."""
    n = frames.size
    if TIME in result.coords and not explicit_rate:
        times = np.asarray(result[TIME].values, np.float64)
    elif movie_rate is not None:
        times = frames / movie_rate
    else:
        raise ParameterError(
            "the result has no frame rate and no time coordinate, but NWB needs the time "
            "of every sample: pass frame_rate= (frames per second) to write_nwb"
        )
    if movie_rate is not None and np.array_equal(times, frames / movie_rate):
        steps = np.unique(np.diff(frames))
        if n == 1:
            return {"rate": movie_rate, "starting_time": float(times[0])}
        if steps.size == 1 and steps[0] > 0:  # all frames, or every n-th
            return {"rate": movie_rate / float(steps[0]), "starting_time": float(times[0])}
    elif n > 1:
        dt = np.diff(times)
        if dt[0] > 0 and np.allclose(dt, dt[0], rtol=1e-12, atol=0):
            return {
                "rate": (n - 1) / float(times[-1] - times[0]),
                "starting_time": float(times[0]),
            }
    return {"timestamps": times}


def _timing_kwargs(timing: dict[str, Any], first: Any) -> dict[str, Any]:
    if "timestamps" in timing:
        # later series link to the first one's timestamps instead of copying them
        return {"timestamps": first if first is not None else timing["timestamps"]}
    return dict(timing)


def _make_nwbfile(session: NWBSession, *, notes: str, description: str) -> Any:
    """The NWBFile of ``session``'s metadata; ``description`` when it has none."""
    import pynwb

    session_description = session.session_description
    if session_description is None:
        session_description = description
    if not session_description or not str(session_description).strip():
        raise ParameterError("session_description must be a non-empty text")
    session_start_time = session.session_start_time
    if session_start_time is None:
        session_start_time = _dt.datetime.now().astimezone()
    elif not isinstance(session_start_time, _dt.datetime):
        raise ParameterError(
            f"session_start_time={session_start_time!r}: give a datetime.datetime"
        )
    elif session_start_time.tzinfo is None:
        session_start_time = session_start_time.astimezone()  # naive: local time
    kwargs = dict(session.nwbfile_kwargs or {})
    taken = {"session_description", "identifier", "session_start_time", "subject"} & set(kwargs)
    if taken:
        raise ParameterError(
            f"nwbfile_kwargs repeats {sorted(taken)}: pass those as write_nwb's own options"
        )
    for name in ("experimenter", "lab", "institution"):
        value = getattr(session, name)
        if value is not None:
            if name in kwargs:
                raise ParameterError(
                    f"nwbfile_kwargs repeats {name!r}: give it once, as NWBSession({name}=...)"
                )
            kwargs[name] = value
    kwargs.setdefault("notes", notes)
    kwargs.setdefault("was_generated_by", [["roitrace", __version__]])
    identifier = session.identifier if session.identifier is not None else uuid.uuid4()
    try:
        return pynwb.NWBFile(
            session_description=str(session_description),
            identifier=str(identifier),
            session_start_time=session_start_time,
            subject=_make_subject(session.subject),
            **kwargs,
        )
    except (TypeError, ValueError) as e:
        raise ParameterError(f"NWB file metadata rejected by pynwb: {e}") from e


def _make_subject(subject: Any) -> Any:
    from pynwb.file import Subject

    if subject is None or isinstance(subject, Subject):
        return subject
    if not isinstance(subject, Mapping):
        raise ParameterError(
            f"subject must be a dict such as {{'subject_id': 'm1', 'species': 'Mus musculus'}} "
            f"or a pynwb.file.Subject, got {type(subject).__name__}"
        )
    allowed = (
        "age",
        "age__reference",
        "date_of_birth",
        "description",
        "genotype",
        "sex",
        "species",
        "strain",
        "subject_id",
        "weight",
    )
    unknown = sorted(set(subject) - set(allowed))
    if unknown:
        raise ParameterError(f"subject has unknown keys {unknown}; use {', '.join(allowed)}")
    check_subject(subject)  # sex, age and species as nwbinspector checks them
    try:
        return Subject(**subject)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"subject {dict(subject)!r} rejected by pynwb: {e}") from e


def _make_device(device: Any) -> Any:
    from pynwb.device import Device

    if isinstance(device, Device):
        return device
    if device is None:
        return Device(
            name="Microscope",
            description="the microscope that recorded the movie (not specified to roitrace)",
        )
    if not isinstance(device, str) or not device.strip() or "/" in device:
        raise ParameterError(
            f"device={device!r}: give the microscope's name (no '/') or a pynwb Device"
        )
    return Device(name=device, description=f"the microscope that recorded the movie: {device}")


def _wavelength(value: float | None, name: str) -> float:
    if value is None:
        return float("nan")  # unknown
    v = float(value)
    if not np.isfinite(v) or v < 10:
        raise ParameterError(f"{name}={value!r}: give the wavelength in nm, e.g. 920.0")
    return v


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _notes(version: str, attrs: Mapping[str, Any]) -> str:
    return (
        f"Fluorescence traces extracted by roitrace {version} from "
        f"{attrs.get('source') or 'a movie'} on {attrs.get('created') or 'an unknown date'}; "
        f"extraction parameters: {attrs.get('parameters') or '{}'}"
    )


def _series_description(var: str, var_attrs: Mapping[str, Any], version: str) -> str:
    text = str(var_attrs.get("long_name") or var)
    if "aggregation" in var_attrs:
        whose = "each ROI's neuropil ring" if var == "Fneu" else "each ROI"
        text += f": the {var_attrs['aggregation']} of the pixels of {whose}"
    if "formula" in var_attrs:
        text += f": {var_attrs['formula']}"
    return f"{text}, per frame (roitrace {version}; columns are the rows of the ROI table)"


def _comments(version: str, var_attrs: Mapping[str, Any], attrs: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "roitrace_version": version,
            "variable_attrs": dict(var_attrs),
            "dataset_attrs": dict(attrs),
        },
        default=_json_default,
    )


# -- reading results -------------------------------------------------------------------------
def read_nwb_result(path: str | os.PathLike) -> Any:
    """Read an NWB file written by :func:`write_nwb` back into a result Dataset.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    result : xarray.Dataset
        As :func:`roitrace.extract` returns: dims ``(roi, time)``; ``F`` and, when the
        file has them, ``Fneu``, ``F_corrected``, ``F0``, ``dff``, ``calcium`` and
        ``spikes``; coordinates ``roi``
        (ROI ids), ``frame``, ``time`` (s); per ROI ``name``, ``npix`` and the
        ROI table's other columns (``npix_neuropil``, ``centroid_y``, ``snr``...);
        the pixel table (``pixel_roi``, ``pixel_y``, ``pixel_x``, ``pixel_weight``)
        from the masks; ``.attrs`` as written (``roitrace_version``, ``created``,
        ``source``, ``frame_rate``, ``frame_shape``, ``parameters``). Files from
        other software work too when they hold a RoiResponseSeries named ``F`` in a
        Fluorescence interface; their attrs are then filled from the file.

    Raises
    ------
    ResultNotFoundError, ResultFormatError
        No such file, or no RoiResponseSeries ``F`` in it.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roitrace import extract
    >>> labels = np.zeros((6, 6), int); labels[1:3, 1:3] = 1; labels[3:5, 3:5] = 2
    >>> ds = extract(np.arange(5 * 36.0).reshape(5, 6, 6), labels)
    >>> p = write_nwb(ds, RoiSet.from_labels(labels),
    ...               os.path.join(tempfile.mkdtemp(), "traces.nwb"), frame_rate=20.0)
    >>> back = read_nwb_result(p)
    >>> back["F"].dims, back["roi"].values.tolist(), back["time"].values[:2].tolist()
    (('roi', 'time'), [1, 2], [0.0, 0.05])
    """
    _pynwb()
    import xarray as xr

    path = Path(path)
    with _open_nwb(path, _RESULT_ERRORS) as nwbfile:
        f_series = _find_f_series(nwbfile, path)
        holder = f_series.parent
        module = holder.parent
        series = {VAR_F: f_series}
        for var in (*FLUORESCENCE_VARS[1:], *BASELINE_VARS):
            if var in holder.roi_response_series:
                series[var] = holder.roi_response_series[var]
        dff_holders = [
            v
            for v in getattr(module, "data_interfaces", {}).values()
            if type(v).__name__ == "DfOverF" and VAR_DFF in v.roi_response_series
        ]
        if dff_holders:
            series[VAR_DFF] = dff_holders[0].roi_response_series[VAR_DFF]
        deconvolved = getattr(module, "data_interfaces", {}).get(DECONVOLVED)
        for var in DECONVOLUTION_VARS:
            if deconvolved is not None and var in getattr(deconvolved, "roi_response_series", {}):
                series[var] = deconvolved.roi_response_series[var]

        region = f_series.rois
        rows = np.asarray(region.data[:], np.int64)
        table = region.table
        roiset = _rois_from_table(table, _object_path(table), path, None, ResultFormatError)
        chosen = [roiset[int(k)] for k in rows]
        n_t = int(f_series.data.shape[0])
        data_vars: dict[str, Any] = {}
        meta = _parse_comments(f_series.comments)
        for var, s in series.items():
            values = np.asarray(s.data[:], np.float64)
            if values.ndim == 1:
                values = values[:, np.newaxis]
            if values.shape != (n_t, rows.size):
                raise ResultFormatError(
                    f"{path}: RoiResponseSeries {var!r} has shape {values.shape}, expected "
                    f"{(n_t, rows.size)} like F; the file is inconsistent"
                )
            var_attrs = _parse_comments(s.comments).get("variable_attrs") or {}
            data_vars[var] = ((ROI, TIME), values.T.copy(), var_attrs)
        data_vars.update(pixel_table(chosen))

        plane = getattr(table, "imaging_plane", None)
        movie_rate = float(getattr(plane, "imaging_rate", None) or 0.0)
        series_times, rate = _series_times(f_series, n_t)
        frames = _read_frames(module, n_t, series_times, movie_rate)
        times = series_times
        if movie_rate and np.allclose(frames / movie_rate, series_times, rtol=1e-9, atol=1e-9):
            times = frames / movie_rate  # bit-identical to what roitrace.extract computes
        coords: dict[str, Any] = {
            ROI: (ROI, np.array([r.id for r in chosen], np.int64)),
            FRAME: (TIME, frames),
            TIME: (TIME, times, {"units": "s", "long_name": "time"}),
            NAME: (ROI, np.array([r.name for r in chosen], dtype=object).astype(str)),
            NPIX: (ROI, np.array([r.npix for r in chosen], np.int64)),
        }
        coords.update(_roi_columns(table, rows))
        attrs = _result_attrs(meta, nwbfile, path, movie_rate or (rate or 0.0))
        attrs.setdefault(FRAME_SHAPE, json.dumps(list(roiset.frame_shape)))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _roi_columns(table: Any, rows: np.ndarray) -> dict[str, Any]:
    """The table's plain 1-D columns (numbers or text), as per-ROI coordinates."""
    out: dict[str, Any] = {}
    for name in table.colnames:
        if name in _MASK_COLUMNS or name in (ROI, NAME):
            continue
        col = table[name]
        if hasattr(col, "target") or hasattr(col, "table"):  # ragged, or a reference
            continue
        data = getattr(col, "data", None)
        if data is None or len(getattr(data, "shape", (len(data),))) != 1:
            continue
        values = np.asarray(data[:])
        if values.dtype.kind in "biuf":
            out[name] = (ROI, values[rows])
        elif values.dtype.kind in "OSU":
            text = [v.decode() if isinstance(v, bytes) else str(v) for v in values[rows]]
            out[name] = (ROI, np.array(text, dtype=object).astype(str))
    return out


def _find_f_series(nwbfile: Any, path: Path) -> Any:
    from pynwb.ophys import Fluorescence, RoiResponseSeries

    found = [
        o
        for o in nwbfile.objects.values()
        if isinstance(o, RoiResponseSeries)
        and o.name == "F"
        and isinstance(o.parent, Fluorescence)
    ]
    if not found:
        raise ResultFormatError(
            f"no RoiResponseSeries 'F' in a Fluorescence interface in {path} (it holds: "
            f"{_contents(nwbfile)}); read_nwb_result reads files written by write_nwb"
        )
    found.sort(key=lambda s: (getattr(s.parent.parent, "name", "") != MODULE, _object_path(s)))
    return found[0]


def _series_times(series: Any, n_t: int) -> tuple[np.ndarray, float | None]:
    if series.timestamps is not None:
        ts = series.timestamps
        ts = ts.timestamps if hasattr(ts, "timestamps") else ts  # a linked TimeSeries
        return np.asarray(ts[:], np.float64), None
    rate = float(series.rate)
    start = float(series.starting_time or 0.0)
    return start + np.arange(n_t) / rate, rate


def _read_frames(module: Any, n_t: int, times: np.ndarray, movie_rate: float) -> np.ndarray:
    interfaces = getattr(module, "data_interfaces", {})
    if FRAME_INDEX in interfaces:
        frames = np.asarray(interfaces[FRAME_INDEX].data[:], np.int64)
        if frames.shape == (n_t,):
            return frames
    if movie_rate:
        guess = np.rint(times * movie_rate)
        if np.allclose(guess, times * movie_rate, atol=1e-6) and guess.min() >= 0:
            return guess.astype(np.int64)
    return np.arange(n_t, dtype=np.int64)


def _parse_comments(comments: Any) -> dict[str, Any]:
    try:
        out = json.loads(comments)
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _result_attrs(
    meta: Mapping[str, Any], nwbfile: Any, path: Path, frame_rate: float
) -> dict[str, Any]:
    attrs = dict(meta.get("dataset_attrs") or {})
    if not attrs.get(ROITRACE_VERSION):
        attrs[ROITRACE_VERSION] = str(meta.get(ROITRACE_VERSION) or _generated_by(nwbfile))
    if CREATED not in attrs:
        dates = nwbfile.file_create_date
        attrs[CREATED] = dates[0].isoformat(timespec="seconds") if len(dates) else ""
    attrs.setdefault(SOURCE, str(path))
    attrs.setdefault(PARAMETERS, "{}")
    attrs[FRAME_RATE] = float(frame_rate)
    return attrs


def _generated_by(nwbfile: Any) -> str:
    rows = getattr(nwbfile, "was_generated_by", None)
    if rows is None:
        return ""
    for row in rows[:]:
        name, *rest = (v.decode() if isinstance(v, bytes) else str(v) for v in row)
        if name == "roitrace" and rest:
            return rest[0]
    return ""
