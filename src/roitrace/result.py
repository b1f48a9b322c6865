"""The result Dataset's schema: names, assembly, checks, and reading ROIs and timing back.

:func:`roitrace.extract` returns one xarray Dataset; every file format writes it and
reads it back. This module is the one place that knows what such a Dataset holds
(as :mod:`xarray.conventions` is for xarray's on-disk conventions), so that readers
and writers call it instead of re-deriving names and attributes, and none of them
needs the extraction itself:

* dims ``roi`` and ``time`` (and ``pixel`` for the pixel table);
* trace variables, dims ``(roi, time)``: ``F``, ``Fneu``, ``F_corrected``, ``F0``
  (the baseline of dF/F), ``dff``, and after deconvolution ``calcium`` and ``spikes``;
* coordinates ``roi`` (ids), ``frame`` (movie frame of each time point), ``time``
  (seconds, when the frame rate is known), and per ROI ``name``, ``npix``,
  ``npix_neuropil``, ``centroid_y``, ``centroid_x``, ``snr``, ``skewness``,
  ``neuropil_factor`` (the r of ``F_corrected = F - r Fneu``), ``neuropil_converged``
  (when r was estimated), ``noise`` (the noise SD of the trace dF/F was made from) and
  ``deconvolution_noise`` (the noise SD of dF/F the spikes were inferred with);
* the pixel table, dim ``pixel``: ``pixel_roi``, ``pixel_y``, ``pixel_x``,
  ``pixel_weight``, so that a saved result carries its ROIs;
* attributes ``roitrace_version``, ``created``, ``source``, ``frame_rate`` (left out
  when unknown, never 0), ``frame_shape`` and ``parameters`` (both JSON text).

It imports numpy, xarray (on first use, so that ``import roitrace`` stays fast) and
roitrace's errors and ROIs, nothing of the pipeline.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._version import __version__
from .errors import ParameterError, ResultError, ShapeMismatchError
from .rois import Roi, RoiSet

__all__ = [
    "ATTRS",
    "BASELINE_VARS",
    "DECONVOLUTION_VARS",
    "DFF_VARS",
    "FLUORESCENCE_VARS",
    "PIXEL_VARS",
    "ROI_COORDS",
    "TRACE_VARS",
    "build_result",
    "check_result",
    "pixel_table",
    "result_frame_rate",
    "result_frame_shape",
    "result_parameters",
    "result_rois",
]

# -- names -----------------------------------------------------------------------------
#: Dims (``roi`` and ``time`` are also coordinates: ROI ids, seconds).
ROI = "roi"
TIME = "time"
PIXEL = "pixel"
#: The movie frame of each time point (a coordinate along ``time``).
FRAME = "frame"

#: Trace variables, dims ``(roi, time)``.
VAR_F = "F"
VAR_FNEU = "Fneu"
VAR_F_CORRECTED = "F_corrected"
VAR_DFF = "dff"
VAR_F0 = "F0"
VAR_CALCIUM = "calcium"
VAR_SPIKES = "spikes"
#: Fluorescence (NWB ``Fluorescence``), its baseline (a further series there),
#: normalised (NWB ``DfOverF``) and deconvolved (NWB ``Fluorescence`` named
#: ``Deconvolved``) traces.
FLUORESCENCE_VARS = (VAR_F, VAR_FNEU, VAR_F_CORRECTED)
BASELINE_VARS = (VAR_F0,)
DFF_VARS = (VAR_DFF,)
DECONVOLUTION_VARS = (VAR_CALCIUM, VAR_SPIKES)
TRACE_VARS = (*FLUORESCENCE_VARS, *BASELINE_VARS, *DFF_VARS, *DECONVOLUTION_VARS)

#: Per-ROI coordinates.
NAME = "name"
NPIX = "npix"
NPIX_NEUROPIL = "npix_neuropil"
CENTROID_Y = "centroid_y"
CENTROID_X = "centroid_x"
SNR = "snr"
SKEWNESS = "skewness"
NEUROPIL_FACTOR = "neuropil_factor"
NEUROPIL_CONVERGED = "neuropil_converged"
NOISE = "noise"
DECONVOLUTION_NOISE = "deconvolution_noise"
ROI_COORDS = (
    NAME,
    NPIX,
    NPIX_NEUROPIL,
    CENTROID_Y,
    CENTROID_X,
    SNR,
    SKEWNESS,
    NEUROPIL_FACTOR,
    NEUROPIL_CONVERGED,
    NOISE,
    DECONVOLUTION_NOISE,
)


#: The pixel table: one entry per (ROI, pixel), in ROI order then each ROI's own order.
PIXEL_ROI = "pixel_roi"
PIXEL_Y = "pixel_y"
PIXEL_X = "pixel_x"
PIXEL_WEIGHT = "pixel_weight"
PIXEL_VARS = (PIXEL_ROI, PIXEL_Y, PIXEL_X, PIXEL_WEIGHT)

#: Attributes.
ROITRACE_VERSION = "roitrace_version"
CREATED = "created"
SOURCE = "source"
FRAME_RATE = "frame_rate"
FRAME_SHAPE = "frame_shape"
PARAMETERS = "parameters"
ATTRS = (ROITRACE_VERSION, CREATED, SOURCE, FRAME_RATE, FRAME_SHAPE, PARAMETERS)

#: Each trace's ``long_name`` attribute.
LONG_NAMES = {
    VAR_F: "cell fluorescence",
    VAR_FNEU: "neuropil fluorescence",
    VAR_F_CORRECTED: "neuropil-corrected fluorescence",
    VAR_DFF: "dF/F0",
    VAR_F0: "baseline fluorescence F0 of dF/F0",
    VAR_CALCIUM: "denoised calcium (deconvolution of dF/F0)",
    VAR_SPIKES: "inferred spiking activity (deconvolution of dF/F0)",
}


# -- building ------------------------------------------------------------------------------
def build_result(
    traces: Mapping[str, Any],
    rois: RoiSet,
    *,
    frames: Any,
    frame_rate: float | None = None,
    centroids: Any = None,
    npix_neuropil: Any = None,
    snr: Any = None,
    skewness: Any = None,
    neuropil_factor: Any = None,
    neuropil_converged: Any = None,
    noise: Any = None,
    deconvolution_noise: Any = None,
    trace_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "array",
    parameters: Mapping[str, Any] | None = None,
    created: str | None = None,
):
    """Assemble a result Dataset from traces and the ROIs they were computed from.

    Parameters
    ----------
    traces : mapping of str to (n_rois, T) array_like
        ``"F"`` and optionally ``"Fneu"``, ``"F_corrected"``, ``"F0"``, ``"dff"``,
        ``"calcium"`` and ``"spikes"``.
    rois : RoiSet
        The pixels each trace was computed from, in the traces' row order: they
        give the ``roi`` ids, ``name``, ``npix``, the pixel table and
        ``frame_shape``.
    frames : (T,) array_like of int
        The movie frame of each time point.
    frame_rate : float, optional
        Frames per second of the movie; with it a ``time`` coordinate (s) and a
        ``frame_rate`` attribute. None or 0: unknown, both left out.
    centroids : (n_rois, 2) array_like, optional
        ``(y, x)`` per ROI; default :meth:`RoiSet.centroids` of ``rois``.
    npix_neuropil, snr, skewness, neuropil_factor, neuropil_converged, noise, \
deconvolution_noise : (n_rois,) array_like, optional
        Per-ROI coordinates, left out when not given.
    trace_attrs : mapping of str to mapping, optional
        More attributes per trace variable (``aggregation``, ``formula``...), after
        its ``long_name``.
    source : str
        The movie's path, or ``"array"``.
    parameters : mapping, optional
        The parameters that made the traces, stored as JSON text.
    created : str, optional
        ISO 8601 time of creation; default now (UTC).

    Returns
    -------
    result : xarray.Dataset
        Dims ``(roi, time)`` and ``pixel``, as :func:`roitrace.extract` returns.

    Raises
    ------
    ParameterError
        No ``F``, or a trace name outside the schema.
    ShapeMismatchError
        A trace, coordinate or ``frames`` does not fit the ROIs and time points.

    Examples
    --------
    >>> import numpy as np
    >>> rois = RoiSet.from_labels(np.array([[1, 1, 0], [0, 0, 2]]))
    >>> ds = build_result({"F": np.ones((2, 4))}, rois, frames=np.arange(4), frame_rate=2.0)
    >>> ds["F"].dims, ds["time"].values.tolist(), ds["npix"].values.tolist()
    (('roi', 'time'), [0.0, 0.5, 1.0, 1.5], [2, 1])
    >>> ds.attrs["frame_shape"], result_frame_rate(ds)
    ('[2, 3]', 2.0)
    """
    import xarray as xr

    if not isinstance(rois, RoiSet):
        raise ParameterError(f"rois must be a RoiSet, got {type(rois).__name__}")
    unknown = sorted(set(traces) - set(TRACE_VARS))
    if VAR_F not in traces or unknown:
        raise ParameterError(
            f"traces hold {sorted(traces)}: give 'F' and optionally any of "
            f"{', '.join(repr(v) for v in TRACE_VARS[1:])}"
        )
    frames = np.asarray(frames)
    n_roi, n_t = len(rois), frames.size
    if frames.ndim != 1:
        raise ShapeMismatchError(f"frames must be 1-D, got shape {frames.shape}")
    trace_attrs = trace_attrs or {}
    arrays = {v: np.asarray(traces[v]) for v in TRACE_VARS if v in traces}
    for v, values in arrays.items():
        if values.shape != (n_roi, n_t):
            raise ShapeMismatchError(
                f"{v} has shape {values.shape}, expected {(n_roi, n_t)} "
                f"({n_roi} ROIs x {n_t} frames)"
            )
    centroids = rois.centroids() if centroids is None else np.asarray(centroids)
    per_roi = {CENTROID_Y: centroids[:, 0], CENTROID_X: centroids[:, 1]}
    given = {
        NPIX_NEUROPIL: npix_neuropil,
        SNR: snr,
        SKEWNESS: skewness,
        NEUROPIL_FACTOR: neuropil_factor,
        NEUROPIL_CONVERGED: neuropil_converged,
        NOISE: noise,
        DECONVOLUTION_NOISE: deconvolution_noise,
    }
    for key, values in given.items():
        if values is not None:
            per_roi[key] = np.asarray(values)
    for key, values in per_roi.items():
        if values.shape != (n_roi,):
            raise ShapeMismatchError(
                f"{key} has shape {values.shape}, expected ({n_roi},): one per ROI"
            )

    # Coordinates and variables in the order extract() has always made them, so
    # that files written from a result keep their layout.
    coords: dict[str, Any] = {
        ROI: (ROI, np.array(rois.ids, np.int64)),
        FRAME: (TIME, frames.astype(np.int64)),
        NAME: (ROI, np.array(rois.names, dtype=object).astype(str)),
        NPIX: (ROI, np.array([r.npix for r in rois], np.int64)),
        CENTROID_Y: (ROI, per_roi[CENTROID_Y]),
        CENTROID_X: (ROI, per_roi[CENTROID_X]),
    }
    if frame_rate:
        coords[TIME] = (TIME, frames / float(frame_rate), {"units": "s", "long_name": "time"})
    for key in given:
        if key in per_roi:
            coords[key] = (ROI, per_roi[key])

    def variable(v: str) -> tuple[Any, ...]:
        return ((ROI, TIME), arrays[v], {"long_name": LONG_NAMES[v], **trace_attrs.get(v, {})})

    data_vars = {v: variable(v) for v in FLUORESCENCE_VARS if v in arrays}
    data_vars.update(pixel_table(rois))
    data_vars.update({v: variable(v) for v in TRACE_VARS[len(FLUORESCENCE_VARS) :] if v in arrays})

    attrs: dict[str, Any] = {
        ROITRACE_VERSION: __version__,
        CREATED: created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        SOURCE: str(source),
        FRAME_SHAPE: json.dumps(list(rois.frame_shape)),
        PARAMETERS: json.dumps(dict(parameters or {})),
    }
    if frame_rate:  # an unknown rate is left out, never written as 0
        attrs[FRAME_RATE] = float(frame_rate)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def pixel_table(rois: RoiSet | list[Roi]) -> dict[str, tuple[Any, ...]]:
    """The pixel-table variables of ``rois`` (``data_vars`` entries along ``pixel``).

    A ROI without weights gets weight 1 for every pixel.

    Examples
    --------
    >>> import numpy as np
    >>> table = pixel_table(RoiSet.from_labels(np.array([[1, 0], [2, 2]])))
    >>> [(k, v[1].tolist()) for k, v in table.items()]  # doctest: +NORMALIZE_WHITESPACE
    [('pixel_roi', [1, 2, 2]), ('pixel_y', [0, 1, 1]), ('pixel_x', [0, 0, 1]),
     ('pixel_weight', [1.0, 1.0, 1.0])]
    """
    rois = list(rois)
    counts = [r.npix for r in rois]

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    weights = [r.weights if r.weights is not None else np.ones(r.npix) for r in rois]
    return {
        PIXEL_ROI: (
            PIXEL,
            np.repeat(np.array([r.id for r in rois], np.int64), counts),
            {"long_name": "ROI id of each pixel"},
        ),
        PIXEL_Y: (PIXEL, joined([r.y for r in rois], np.int32), {"long_name": "pixel row"}),
        PIXEL_X: (PIXEL, joined([r.x for r in rois], np.int32), {"long_name": "pixel column"}),
        PIXEL_WEIGHT: (
            PIXEL,
            joined(weights, np.float64),
            {"long_name": "ROI pixel weight"},
        ),
    }


# -- checking ------------------------------------------------------------------------------
def check_result(
    result: Any,
    *,
    needs: tuple[str, ...] = (VAR_F,),
    pixels: bool = False,
    writer: str = "this",
) -> None:
    """Raise :class:`~roitrace.errors.ResultError` when ``result`` lacks what a writer needs.

    Checks that ``result`` is a Dataset, that every name in ``needs`` (variables or
    coordinates) is in it, that its trace variables have dims ``(roi, time)``, and,
    with ``pixels``, that it carries the pixel table :func:`result_rois` reads ROIs
    from. (Attributes are checked where they are read: :func:`result_frame_shape`...)

    Parameters
    ----------
    result : xarray.Dataset
    needs : tuple of str
        Variables or coordinates the writer reads.
    pixels : bool
        Whether the writer needs the ROIs' pixels from the result.
    writer : str
        Who needs them, for the message (``"write_nwb"``...).

    Examples
    --------
    >>> import numpy as np
    >>> rois = RoiSet.from_labels(np.array([[1, 0], [0, 2]]))
    >>> ds = build_result({"F": np.zeros((2, 3))}, rois, frames=np.arange(3))
    >>> check_result(ds, pixels=True)
    >>> check_result(ds.drop_vars("F"), writer="write_nwb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.ResultError: write_nwb needs 'F' but the result has no 'F' ...
    """
    _check_dataset(result, writer)
    for name in needs:
        if name not in result.variables:
            raise ResultError(
                f"{writer} needs {name!r} but the result has no {name!r} (it holds "
                f"{sorted(map(str, result.variables))}); pass the Dataset roitrace.extract "
                "returned, or a file roitrace.load read"
            )
    for v in TRACE_VARS:
        if v in result.data_vars and set(result[v].dims) != {ROI, TIME}:
            raise ResultError(
                f"result[{v!r}] has dims {result[v].dims}, expected ('roi', 'time') "
                "as roitrace.extract returns"
            )
    if pixels:
        _check_pixels(result)


def _check_dataset(result: Any, writer: str) -> None:
    # duck-typed: checking needs no xarray import
    if not all(hasattr(result, a) for a in ("data_vars", "coords", "variables", "attrs")):
        raise ResultError(
            f"{writer} needs the xarray.Dataset that roitrace.extract returns, "
            f"got {type(result).__name__}"
        )


def _check_pixels(result: Any) -> None:
    if any(v not in result.variables for v in (PIXEL_ROI, PIXEL_Y, PIXEL_X)):
        raise ResultError(
            "this result holds no ROI pixels (pixel_roi, pixel_y, pixel_x); pass rois= explicitly"
        )
    if ROI not in result.coords:
        raise ResultError("this result has no 'roi' coordinate: its ROIs have no ids")
    shapes = {tuple(result[v].shape) for v in PIXEL_VARS if v in result.variables}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ResultError(
            f"the result's pixel table ({', '.join(PIXEL_VARS)}) is not one 1-D table "
            f"(shapes {sorted(shapes)}); was it edited?"
        )


# -- reading back ------------------------------------------------------------------------------
def result_rois(result: Any) -> RoiSet:
    """The ROIs a result was extracted from, rebuilt from its pixel table.

    Ids, names, pixels (in their original order) and weights (None for a ROI whose
    weights are all 1) are those of the RoiSet :func:`roitrace.extract` used; the
    frame shape is the ``frame_shape`` attribute, else the pixels' extent.

    Raises
    ------
    ResultError
        The result holds no pixel table (e.g. one read from CSV or a suite2p folder).

    Examples
    --------
    >>> import numpy as np
    >>> rois = RoiSet.from_labels(np.array([[1, 1, 0], [0, 0, 2]]))
    >>> ds = build_result({"F": np.zeros((2, 3))}, rois, frames=np.arange(3))
    >>> back = result_rois(ds)
    >>> back.ids, back.names, back.frame_shape, back[0].x.tolist()
    ([1, 2], ['roi 1', 'roi 2'], (2, 3), [0, 1])
    """
    _check_dataset(result, "result_rois")
    _check_pixels(result)
    owner = np.asarray(result[PIXEL_ROI].values)
    y, x = np.asarray(result[PIXEL_Y].values), np.asarray(result[PIXEL_X].values)
    w = (
        np.asarray(result[PIXEL_WEIGHT].values)
        if PIXEL_WEIGHT in result.variables
        else np.ones(owner.size)
    )
    names = result[NAME].values if NAME in result.coords else None
    shape = result_frame_shape(result) or (
        int(y.max()) + 1 if y.size else 1,
        int(x.max()) + 1 if x.size else 1,
    )
    # one stable sort groups the pixels by ROI (in table order): linear in the pixels,
    # not ROIs x pixels
    ids = np.asarray(result[ROI].values)
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    starts = np.searchsorted(sorted_owner, ids, side="left")
    stops = np.searchsorted(sorted_owner, ids, side="right")
    ys, xs, ws = y[order].astype(np.intp), x[order].astype(np.intp), w[order]
    rois = []
    for k, (rid, a, b) in enumerate(zip(ids, starts, stops, strict=True)):
        ww = ws[a:b]
        rois.append(
            Roi(
                int(rid),
                ys[a:b],
                xs[a:b],
                None if np.all(ww == 1) else ww,
                str(names[k]) if names is not None else f"roi {rid}",
            )
        )
    return RoiSet(rois, shape)


def result_frame_rate(result: Any) -> float | None:
    """The movie's frame rate (frames per second) a result records; None when unknown.

    Reads the ``frame_rate`` attribute, a number or its text (as CSV files hold
    it); a missing, zero, negative or unreadable rate is unknown. Works on a
    DataArray too (its own attributes).

    Examples
    --------
    >>> import xarray as xr
    >>> result_frame_rate(xr.Dataset(attrs={"frame_rate": "30.0"}))
    30.0
    >>> result_frame_rate(xr.Dataset(attrs={"frame_rate": 0.0})) is None
    True
    """
    value = (getattr(result, "attrs", None) or {}).get(FRAME_RATE)
    if value is None or isinstance(value, bool):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    # 0 is how some files (an NWB file without an imaging rate) say "unknown"
    return rate if math.isfinite(rate) and rate > 0 else None


def result_frame_shape(result: Any) -> tuple[int, int] | None:
    """The movie's frame shape ``(Y, X)`` a result records; None when it records none.

    Raises
    ------
    ResultError
        The ``frame_shape`` attribute is not two positive whole numbers.

    Examples
    --------
    >>> import xarray as xr
    >>> result_frame_shape(xr.Dataset(attrs={"frame_shape": "[512, 256]"}))
    (512, 256)
    >>> result_frame_shape(xr.Dataset()) is None
    True
    """
    value = (getattr(result, "attrs", None) or {}).get(FRAME_SHAPE)
    if value is None:
        return None
    try:
        shape = json.loads(value) if isinstance(value, str) else np.asarray(value).tolist()
        if shape is None:
            return None
        ny, nx = (int(v) for v in shape)
        if (ny, nx) != tuple(shape) or ny < 1 or nx < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ResultError(
            f"the result's frame_shape attribute is {value!r}, not two positive whole "
            "numbers such as '[512, 512]'; fix or delete the attribute"
        ) from None
    return ny, nx


def result_parameters(result: Any) -> dict[str, Any]:
    """The extraction parameters a result records (its ``parameters`` JSON); ``{}`` if none.

    Examples
    --------
    >>> import xarray as xr
    >>> result_parameters(xr.Dataset(attrs={"parameters": '{"how": "mean"}'}))
    {'how': 'mean'}
    """
    value = (getattr(result, "attrs", None) or {}).get(PARAMETERS)
    if not value:
        return {}
    try:
        params = json.loads(value) if isinstance(value, str) else dict(value)
    except (TypeError, ValueError):
        params = None
    if not isinstance(params, dict):
        raise ResultError(
            f"the result's parameters attribute is not a JSON object: {str(value)[:80]!r}"
        )
    return params
