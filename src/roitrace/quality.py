"""Quality control of an extraction: per-ROI metrics and flags, each flag with one
documented rule, in a document that scripts read (``quality_control.json``).

After an extraction a scientist decides which ROIs to trust. :func:`quality_control`
measures each ROI from a result (and, when given, the movie) and flags what makes its
trace doubtful; :func:`roitrace.report` shows the same numbers in a page, and writes
this document beside it, so that a pipeline filters cells without parsing HTML (as
the Allen Institute's pipeline writes ``quality_control.json`` for its portal).

The document (``schema``: ``"roitrace.quality_control/1"``; JSON Schema in
:data:`SCHEMA`)::

    {"schema": "roitrace.quality_control/1",
     "roitrace_version": "...", "created": "...",          # this document
     "recording": {"source": ..., "created": ..., "roitrace_version": ...,
                   "frame_rate": ..., "frame_shape": [Y, X], "n_rois": ...,
                   "n_frames": ..., "parameters": {...}},  # the result's provenance
     "thresholds": {"min_snr": 5.0, ...},
     "flags": {"edge": {"rule": "...", "evaluated": true, "count": 3}, ...},
     "rois": [{"id": 1, "name": "roi 1",
               "metrics": {"snr": 0.42, "npix": 80, ...},
               "flags": ["edge"]}, ...]}

A metric that could not be computed is ``null`` (JSON has no NaN); a flag that could
not be evaluated (``saturated`` without the movie, ``neuropil_not_converged`` when r
was not estimated) has ``"evaluated": false`` and flags no ROI.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import ParameterError
from .result import (
    NEUROPIL_CONVERGED,
    NEUROPIL_FACTOR,
    ROI,
    result_frame_rate,
    result_frame_shape,
    result_parameters,
    result_rois,
)
from .rois import RoiSet

__all__ = ["FLAGS", "SCHEMA", "SCHEMA_ID", "THRESHOLDS", "quality_control", "write_quality"]

SCHEMA_ID = "roitrace.quality_control/1"

#: Default thresholds of the rules (keywords of :func:`quality_control`).
THRESHOLDS: dict[str, float] = {
    "min_snr": 5.0,
    "max_negative": 0.5,
    "min_ring_fraction": 0.5,
    "min_f0_noise": 3.0,
}

#: Every flag and its rule; ``{...}`` are the thresholds in force.
FLAGS: dict[str, str] = {
    "neuropil_empty": "the neuropil ring holds no pixel (npix_neuropil = 0)",
    "neuropil_small": (
        "the neuropil ring holds fewer pixels than asked: fewer than min_pixels when "
        "min_pixels was given, else fewer than {min_ring_fraction} of the ring's "
        "unclipped area for its gap and width (clipped by the frame, or mostly covered by "
        "other cells)"
    ),
    "neuropil_grown": (
        "the neuropil ring was widened beyond its width to reach min_pixels "
        "(npix_neuropil > the pixels its gap and width give)"
    ),
    "low_snr": (
        "peak_snr below {min_snr}: the largest rise of F_corrected (F without a "
        "neuropil) above its median, in noise SDs (noise_level: the MAD of "
        "frame-to-frame differences); pure noise reaches about 3.5 in 500 frames and "
        "4.4 in 50,000"
    ),
    "negative": (
        "F_corrected (F without a neuropil) is below 0 in more than {max_negative} of the "
        "frames: the neuropil was over-subtracted"
    ),
    "f0_nonpositive": "F0 <= 0 in some frame: dF/F is undefined there (NaN)",
    "f0_small": (
        "F0 falls below {min_f0_noise} times the trace's noise SD in some frame: dF/F "
        "is inflated by a near-zero baseline"
    ),
    "saturated": (
        "a pixel of the ROI reaches the largest value of the movie's integer dtype in "
        "some frame (needs the movie)"
    ),
    "edge": "a pixel of the ROI lies on the frame's border (the cell may be cut off)",
    "nan_frames": "a trace is NaN in some frame",
    "neuropil_not_converged": (
        "the estimated neuropil coefficient r fell outside [0, 1] and was filled in "
        "(neuropil_converged is false)"
    ),
}

#: Metrics taken from the result's per-ROI coordinates, when present.
_COORD_METRICS = (
    "npix",
    "npix_neuropil",
    "centroid_y",
    "centroid_x",
    "snr",
    "skewness",
    NEUROPIL_FACTOR,
    "noise",
    "deconvolution_noise",
)

_NUMBER = {"type": ["number", "null"]}
#: The document's JSON Schema (draft 2020-12).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "roitrace quality control",
    "type": "object",
    "required": ["schema", "roitrace_version", "created", "recording", "thresholds", "flags",
                 "rois"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "roitrace_version": {"type": "string"},
        "created": {"type": "string"},
        "report": {"type": ["string", "null"]},
        "recording": {
            "type": "object",
            "required": ["source", "frame_shape", "n_rois", "n_frames", "parameters"],
            "properties": {
                "source": {"type": ["string", "null"]},
                "created": {"type": ["string", "null"]},
                "roitrace_version": {"type": ["string", "null"]},
                "frame_rate": _NUMBER,
                "frame_shape": {"type": ["array", "null"], "items": {"type": "integer"}},
                "n_rois": {"type": "integer", "minimum": 0},
                "n_frames": {"type": "integer", "minimum": 0},
                "parameters": {"type": "object"},
                "movie": {"type": ["string", "null"]},
            },
        },
        "thresholds": {"type": "object", "additionalProperties": {"type": "number"}},
        "flags": {
            "type": "object",
            "propertyNames": {"enum": list(FLAGS)},
            "additionalProperties": {
                "type": "object",
                "required": ["rule", "evaluated", "count"],
                "properties": {
                    "rule": {"type": "string"},
                    "evaluated": {"type": "boolean"},
                    "count": {"type": "integer", "minimum": 0},
                },
            },
        },
        "rois": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "metrics", "flags"],
                "properties": {
                    "id": {"type": ["integer", "string"]},
                    "name": {"type": "string"},
                    "metrics": {"type": "object", "additionalProperties": _NUMBER},
                    "flags": {
                        "type": "array",
                        "items": {"enum": list(FLAGS)},
                        "uniqueItems": True,
                    },
                },
            },
        },
    },
}  # fmt: skip


def quality_control(
    result: Any,
    *,
    movie: Any = None,
    min_snr: float = THRESHOLDS["min_snr"],
    max_negative: float = THRESHOLDS["max_negative"],
    min_ring_fraction: float = THRESHOLDS["min_ring_fraction"],
    min_f0_noise: float = THRESHOLDS["min_f0_noise"],
) -> dict[str, Any]:
    """Per-ROI metrics and quality flags of an extraction result.

    Parameters
    ----------
    result : xarray.Dataset or path
        As returned by :func:`roitrace.extract`, or a file :func:`roitrace.load` reads.
    movie : Movie, (T, Y, X) array_like or path, optional
        The movie the result was extracted from: needed for the ``saturated`` flag
        (its maximum projection is computed, one pass over the movie).
    min_snr, max_negative, min_ring_fraction, min_f0_noise : float
        The thresholds of the rules (see :data:`FLAGS`).

    Returns
    -------
    document : dict
        JSON-ready (see the module's docstring for its keys, :data:`SCHEMA` for its
        schema); ``document["rois"][i]["flags"]`` lists the flags of the i-th ROI.

    Examples
    --------
    >>> import numpy as np
    >>> import roitrace as rt
    >>> movie = np.random.default_rng(0).poisson(100, (50, 20, 20)).astype(np.uint16)
    >>> mask = np.zeros((20, 20), bool); mask[0:4, 8:12] = True
    >>> qc = quality_control(rt.extract(movie, mask))
    >>> qc["rois"][0]["flags"]
    ['low_snr', 'edge']
    """
    thresholds = check_thresholds(
        min_snr=min_snr,
        max_negative=max_negative,
        min_ring_fraction=min_ring_fraction,
        min_f0_noise=min_f0_noise,
    )
    if not (hasattr(result, "data_vars") and hasattr(result, "sizes")):
        from .save import load

        result = load(result)
    max_image = saturation = None
    if movie is not None:
        from .movie import as_movie
        from .projection import projection

        m = as_movie(movie)
        saturation = saturation_level(m.dtype)
        if saturation is not None:
            max_image = projection(m, "max")
    return evaluate(result, thresholds, max_image=max_image, saturation=saturation)


def saturation_level(dtype: Any) -> float | None:
    """The value a saturated pixel takes: the integer dtype's maximum; None for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else None


def evaluate(
    result: Any,
    thresholds: dict[str, float] | None = None,
    *,
    max_image: np.ndarray | None = None,
    saturation: float | None = None,
    movie_name: str | None = None,
    rois: RoiSet | None = None,
) -> dict[str, Any]:
    """:func:`quality_control` from a maximum projection already computed (the report
    computes its projections in one pass and passes the maximum here)."""
    thresholds = {**THRESHOLDS, **(thresholds or {})}
    n_rois = int(result.sizes.get(ROI, 0))
    metrics: dict[str, np.ndarray] = {}
    flags: dict[str, np.ndarray | None] = {}
    for name in _COORD_METRICS:
        if name in result.coords and result[name].dims == (ROI,):
            metrics[name] = np.asarray(result[name].values, float)
    _trace_rules(result, thresholds, metrics, flags)
    rois = rois if rois is not None else _rois_or_none(result)
    _geometry_rules(result, rois, thresholds, metrics, flags)
    _saturation_rule(rois, max_image, saturation, metrics, flags)
    converged = (
        np.asarray(result[NEUROPIL_CONVERGED].values, bool)
        if NEUROPIL_CONVERGED in result.coords
        else None
    )
    flags["neuropil_not_converged"] = None if converged is None else ~converged
    return _document(result, thresholds, metrics, flags, n_rois, movie_name)


def write_quality(document: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a :func:`quality_control` document as JSON, atomically."""
    from ._atomic import write_bytes

    text = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False)
    return write_bytes(path, (text + "\n").encode("utf-8"))


# -- rules --------------------------------------------------------------------------------
def check_thresholds(**values: float) -> dict[str, float]:
    """The rules' thresholds as floats; ParameterError for a negative or non-finite
    one, or a fraction above 1 (``report`` and the command line check them first)."""
    for name, value in values.items():
        v = float(value)
        fraction = name in ("max_negative", "min_ring_fraction")
        if not math.isfinite(v) or v < 0 or (fraction and v > 1):
            raise ParameterError(
                f"{name} must be a number >= 0{' and <= 1' if fraction else ''}, got {value!r}"
            )
    return {k: float(v) for k, v in values.items()}


_BLOCK = 256  # ROIs read at once: a 50,000-frame result never loads whole


def _per_roi(result: Any, name: str, fn, min_frames: int = 1) -> np.ndarray | None:
    """``fn`` of each block of ROIs' rows of one trace, joined; None when the result
    has no such trace or too few frames."""
    if name not in result.data_vars or int(result.sizes.get("time", 0)) < min_frames:
        return None
    var = result[name]
    parts = [
        fn(np.asarray(var[i : i + _BLOCK].values, np.float64))
        for i in range(0, int(result.sizes[ROI]), _BLOCK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def _lowest(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.inf, x).min(axis=1)


def _highest_finite(x: np.ndarray) -> np.ndarray:
    top = np.where(np.isfinite(x), x, -np.inf).max(axis=1)
    return np.where(np.isfinite(top), top, np.nan)  # a ROI with dF/F all NaN (F0 <= 0)


def _finite_sum(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    return np.where(ok.any(axis=1), np.where(ok, x, 0.0).sum(axis=1), np.nan)


def _trace_rules(result, thresholds, metrics, flags) -> None:
    n = int(result.sizes.get(ROI, 0))
    nan = np.zeros(n)
    for name in ("F", "Fneu", "F_corrected"):
        count = _per_roi(result, name, lambda x: np.isnan(x).sum(axis=1))
        if count is not None:
            nan = np.maximum(nan, count)
    metrics["nan_frames"] = nan
    flags["nan_frames"] = nan > 0
    signal = "F_corrected" if "F_corrected" in result.data_vars else "F"
    negative = _per_roi(result, signal, lambda x: np.mean(x < 0, axis=1))
    if negative is not None:
        metrics["negative_fraction"] = negative
        flags["negative"] = negative > thresholds["max_negative"]
    peak = _per_roi(result, signal, _peak_snr, min_frames=3)
    if peak is not None:
        metrics["peak_snr"] = peak
        flags["low_snr"] = ~(peak >= thresholds["min_snr"])
    low = _per_roi(result, "F0", _lowest)
    if low is not None:
        metrics["f0_min"] = low
        flags["f0_nonpositive"] = low <= 0
        if "noise" in metrics:
            small = low < thresholds["min_f0_noise"] * metrics["noise"]
            flags["f0_small"] = small & (low > 0)
    top = _per_roi(result, "dff", _highest_finite)
    if top is not None:
        metrics["dff_peak"] = top
    total = _per_roi(result, "spikes", _finite_sum)
    if total is not None:
        metrics["spike_sum"] = total


def _peak_snr(x: np.ndarray) -> np.ndarray:
    """(max - median) / noise SD of each row; NaN frames left out."""
    from .normalize import noise_level

    out = np.full(x.shape[0], np.nan)
    for i, row in enumerate(x):
        row = row[np.isfinite(row)]
        if row.size < 3:
            continue
        sd = float(noise_level(row))
        if sd > 0:
            out[i] = (row.max() - np.median(row)) / sd
    return out


def _rois_or_none(result: Any) -> RoiSet | None:
    from .errors import ResultError

    try:
        return result_rois(result)
    except ResultError:  # no pixel table (CSV, a suite2p folder read without stat.npy)
        return None


def _geometry_rules(result, rois, thresholds, metrics, flags) -> None:
    npil = metrics.get("npix_neuropil")
    if npil is not None:
        flags["neuropil_empty"] = npil == 0
    if rois is None:
        return
    shape = result_frame_shape(result) or rois.frame_shape
    Y, X = shape
    flags["edge"] = np.array(
        [
            bool(r.y.size) and (r.y.min() == 0 or r.x.min() == 0 or r.y.max() == Y - 1
                                or r.x.max() == X - 1)
            for r in rois
        ]
    )  # fmt: skip
    ring = ring_options(result)
    if npil is None or ring is None:
        return
    nominal = np.array([_ring_area(r.y, r.x, ring["gap"], ring["width"]) for r in rois], float)
    metrics["ring_area_asked"] = nominal
    small = (npil > 0) & (npil < thresholds["min_ring_fraction"] * nominal)
    if ring["min_pixels"]:
        plain = result_rings(result, rois, grown=False)
        if plain is not None:
            flags["neuropil_grown"] = npil > np.array([p.size for p in plain])
        small = (npil > 0) & (npil < ring["min_pixels"])
    flags["neuropil_small"] = small


def ring_options(result: Any) -> dict[str, int] | None:
    """The neuropil ring a result records in its parameters (gap, width, exclude_gap,
    min_pixels; 0 for those not given), or None when it records none."""
    ring = (result_parameters(result) or {}).get("neuropil")
    if not isinstance(ring, dict) or not {"gap", "width"} <= set(ring):
        return None
    return {k: int(ring.get(k) or 0) for k in ("gap", "width", "exclude_gap", "min_pixels")}


def result_rings(result: Any, rois: RoiSet, *, grown: bool = True) -> list[np.ndarray] | None:
    """The neuropil rings a result was extracted with, rebuilt from its parameters
    (flat pixel indices per ROI; ``grown=False``: before widening to min_pixels), or
    None when it records no ring or a ring comes out empty."""
    from .errors import EmptyMaskError
    from .neuropil import neuropil_rings

    ring = ring_options(result)
    if ring is None:
        return None
    try:
        with warnings.catch_warnings():  # the extraction already warned of short rings
            warnings.simplefilter("ignore")
            return neuropil_rings(
                rois, gap=ring["gap"], width=ring["width"], exclude_gap=ring["exclude_gap"],
                min_pixels=ring["min_pixels"] if grown else None,
            )  # fmt: skip
    except EmptyMaskError:
        return None


def _ring_area(y: np.ndarray, x: np.ndarray, gap: int, width: int) -> int:
    """Pixels at distance in (gap, gap + width] from the cell, with no frame around it:
    the ring :func:`roitrace.neuropil_ring` makes, before clipping and exclusions."""
    from scipy import ndimage

    if not y.size:
        return 0
    pad = gap + width + 1
    h, w = int(y.max() - y.min()) + 1 + 2 * pad, int(x.max() - x.min()) + 1 + 2 * pad
    outside = np.ones((h, w), bool)
    outside[y - y.min() + pad, x - x.min() + pad] = False
    d = ndimage.distance_transform_edt(outside)
    return int(np.count_nonzero((d > gap) & (d <= gap + width)))


def _saturation_rule(rois, max_image, saturation, metrics, flags) -> None:
    if rois is None or max_image is None or saturation is None:
        return
    peak = np.asarray(max_image)
    counts = np.array([int(np.count_nonzero(peak[r.y, r.x] >= saturation)) for r in rois])
    metrics["saturated_pixels"] = counts.astype(float)
    flags["saturated"] = counts > 0


# -- the document -------------------------------------------------------------------------
def _document(result, thresholds, metrics, flags, n_rois, movie_name) -> dict[str, Any]:
    ids = result[ROI].values.tolist() if ROI in result.coords else list(range(n_rois))
    names = (
        [str(v) for v in result["name"].values]
        if "name" in result.coords
        else [f"roi {i}" for i in ids]
    )
    rois = []
    for i in range(n_rois):
        rois.append(
            {
                "id": _plain(ids[i]),
                "name": names[i],
                "metrics": {k: _number(v[i]) for k, v in metrics.items()},
                "flags": [k for k in FLAGS if flags.get(k) is not None and bool(flags[k][i])],
            }
        )
    summary = {
        k: {
            "rule": FLAGS[k].format(**thresholds),
            "evaluated": flags.get(k) is not None,
            "count": int(np.count_nonzero(flags[k])) if flags.get(k) is not None else 0,
        }
        for k in FLAGS
    }
    attrs = getattr(result, "attrs", {}) or {}
    return {
        "schema": SCHEMA_ID,
        "roitrace_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "recording": {
            "source": _plain(attrs.get("source")),
            "movie": movie_name,
            "created": _plain(attrs.get("created")),
            "roitrace_version": _plain(attrs.get("roitrace_version")),
            "frame_rate": _number(result_frame_rate(result)),
            "frame_shape": list(result_frame_shape(result) or []) or None,
            "n_rois": n_rois,
            "n_frames": int(result.sizes.get("time", 0)),
            "parameters": result_parameters(result),
        },
        "thresholds": thresholds,
        "flags": summary,
        "rois": rois,
    }


def _number(v: Any) -> float | int | None:
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return None
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
