"""Extraction in one call: cell and neuropil traces for every ROI, as an xarray Dataset."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._version import __version__
from .aggregate import aggregate, check_how, check_proportion, check_weights
from .engine import FramesLike, n_selected, resolve_frames, stream
from .errors import EmptyMaskError, NonFiniteError, ParameterError, ShapeMismatchError
from .movie import as_movie
from .neuropil import neuropil_ring
from .traces import PixelMeans, brightness_weights, proximity_weights

log = logging.getLogger(__name__)

__all__ = ["RoiAggregator", "extract", "to_labels"]


@dataclass
class _Roi:
    id: int
    flat: np.ndarray  # flat pixel indices in np.where order
    weights: np.ndarray | None = None


class RoiAggregator:
    """Consumer: one aggregated trace per ROI, chunk by chunk.

    Every ROI's pixels are gathered from the chunk at once; each ROI's slice is
    then combined with :func:`roitrace.aggregate`. Aggregations are per time
    point, so chunking in time gives exactly the whole-movie numbers.
    """

    def __init__(self, rois: list[_Roi], n_frames: int, how: str, proportion: float) -> None:
        self.rois = rois
        self.how = how
        self.proportion = proportion
        self.flat = np.concatenate([r.flat for r in rois])
        self.bounds = np.cumsum([0] + [r.flat.size for r in rois])
        self.out = np.empty((len(rois), n_frames), np.float64)

    def update(self, offset: int, block: np.ndarray) -> None:
        n = block.shape[0]
        gathered = block.reshape(n, -1)[:, self.flat]
        for i, roi in enumerate(self.rois):
            px = gathered[:, self.bounds[i] : self.bounds[i + 1]]
            self.out[i, offset : offset + n] = aggregate(
                px, self.how, weights=roi.weights, proportion=self.proportion
            )

    def result(self) -> np.ndarray:
        return self.out


def to_labels(rois: Any, frame_shape: tuple[int, int]) -> np.ndarray:
    """A label image (0 = background) from one boolean mask or an integer label image."""
    arr = np.asarray(rois)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"rois must be a 2-D mask or label image, got shape {arr.shape}")
    if arr.shape != tuple(frame_shape):
        raise ShapeMismatchError(
            f"rois have shape {arr.shape} but the movie's frames are {tuple(frame_shape)}: "
            "make the mask from this movie's projection"
        )
    if arr.dtype == bool:
        return arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise ParameterError(
                f"rois must be a boolean mask or an integer label image, got {arr.dtype} values"
            )
    if arr.min() < 0:
        raise ParameterError("label images use 0 for background and positive ids for cells")
    return arr


def extract(
    movie: Any,
    rois: Any,
    *,
    how: str = "mean",
    weights: Any = None,
    neuropil: dict[str, int] | None = None,
    neuropil_factor: float = 0.7,
    neuropil_how: str | None = None,
    proportion: float = 0.1,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
):
    """Extract one fluorescence trace per cell, and optionally its neuropil.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
    rois : (Y, X) array_like
        One boolean mask (one cell) or an integer label image (0 = background,
        one cell per positive label).
    how : {"mean", "median", "weighted", "trimmed_mean"}
        How each cell's pixels are combined (see :func:`roitrace.aggregate`).
    weights : {"brightness", "proximity"} or (P,) array_like, optional
        Pixel weights for ``how="weighted"`` (default ``"brightness"``, the
        notebook's ``means / means.sum()``). An array is allowed for one cell.
    neuropil : dict, optional
        ``{"gap": g, "width": w}``: subtract a neuropil ring ``w`` pixels wide
        starting ``g`` pixels away (:func:`roitrace.neuropil_ring`). With several
        cells every ring excludes every cell's pixels.
    neuropil_factor : float
        ``F_corrected = F - neuropil_factor * Fneu`` (0.7 as in suite2p).
    neuropil_how : str, optional
        How ring pixels are combined; default the same as ``how``, but ``"mean"``
        when ``how="weighted"``.
    proportion : float
        For ``trimmed_mean``: the fraction cut from each end.
    frames : slice, (start, stop) or sequence of int, optional
        Only these frames.
    chunk_frames : int, optional
        Frames read at once.
    progress : bool
        Show a progress bar.

    Returns
    -------
    result : xarray.Dataset
        Dims ``(roi, time)``. ``F``: the cell trace; with a neuropil also ``Fneu``
        and ``F_corrected``. Coordinates ``roi`` (label ids), ``frame`` (frame
        index in the movie) and ``time`` (seconds, when the frame rate is known);
        ``npix`` and ``npix_neuropil`` per ROI. ``.attrs`` records the parameters
        and the roitrace version.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.random.default_rng(0).poisson(100, (50, 20, 20)).astype(np.uint16)
    >>> mask = np.zeros((20, 20), bool); mask[8:12, 8:12] = True
    >>> ds = extract(data, mask, how="median", neuropil={"gap": 2, "width": 1})
    >>> ds["F"].dims, ds.sizes["time"]
    (('roi', 'time'), 50)
    >>> bool(np.allclose(ds["F"][0], np.median(data[:, 8:12, 8:12].reshape(50, -1), axis=1)))
    True
    """
    import xarray as xr

    movie = as_movie(movie)
    check_how(how)
    check_proportion(proportion)
    labels = to_labels(rois, movie.frame_shape)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size == 0:
        raise EmptyMaskError("rois hold no pixel: the mask is empty or all labels are 0")
    sel = resolve_frames(movie.n_frames, frames)
    n_t = n_selected(sel)

    cells = _cells(labels, ids)
    if how == "weighted":
        _set_weights(movie, cells, weights, sel, chunk_frames, progress)
    elif weights is not None:
        raise ParameterError(f"weights= is only used with how='weighted' (how={how!r})")

    consumers: list[Any] = [RoiAggregator(cells, n_t, how, proportion)]
    rings: list[_Roi] = []
    npil_how = None
    if neuropil is not None:
        gap, width = _neuropil_params(neuropil)
        npil_how = neuropil_how or ("mean" if how == "weighted" else how)
        check_how(npil_how)
        if npil_how == "weighted":
            raise ParameterError("neuropil_how='weighted' is not supported; use mean or median")
        rings = _rings(labels, cells, gap, width)
        consumers.append(RoiAggregator(rings, n_t, npil_how, proportion))
    results = stream(
        movie,
        consumers,
        frames=sel,
        chunk_frames=chunk_frames,
        progress=progress,
        desc="extracting",
    )

    frame_idx = np.arange(sel.start, sel.stop) if isinstance(sel, slice) else sel
    coords: dict[str, Any] = {
        "roi": ("roi", ids.astype(np.int64)),
        "frame": ("time", frame_idx.astype(np.int64)),
        "npix": ("roi", np.array([c.flat.size for c in cells], np.int64)),
    }
    if movie.frame_rate:
        coords["time"] = (
            "time",
            frame_idx / float(movie.frame_rate),
            {"units": "s", "long_name": "time"},
        )
    data_vars = {
        "F": (("roi", "time"), results[0], {"long_name": "cell fluorescence", "aggregation": how})
    }
    if neuropil is not None:
        coords["npix_neuropil"] = ("roi", np.array([r.flat.size for r in rings], np.int64))
        fneu = results[1]
        data_vars["Fneu"] = (
            ("roi", "time"),
            fneu,
            {"long_name": "neuropil fluorescence", "aggregation": npil_how},
        )
        data_vars["F_corrected"] = (
            ("roi", "time"),
            results[0] - neuropil_factor * fneu,
            {
                "long_name": "neuropil-corrected fluorescence",
                "formula": f"F - {neuropil_factor} * Fneu",
            },
        )
    for name, (_, values, _attrs) in data_vars.items():
        _check_finite(name, values, ids)
    params = {
        "how": how,
        "weights": _weights_label(how, weights),
        "proportion": proportion,
        "neuropil": neuropil,
        "neuropil_factor": neuropil_factor if neuropil is not None else None,
        "neuropil_how": npil_how,
        "frames": _frames_label(sel, movie.n_frames),
    }
    attrs = {
        "roitrace_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": str(movie.path) if movie.path is not None else "array",
        "frame_rate": float(movie.frame_rate) if movie.frame_rate else 0.0,
        "parameters": json.dumps(params),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _weights_label(how: str, weights: Any) -> str | None:
    if how != "weighted":
        return None
    return weights if isinstance(weights, str) else "brightness" if weights is None else "array"


def _frames_label(sel: slice | np.ndarray, n_frames: int) -> str:
    if isinstance(sel, slice):
        return "all" if (sel.start, sel.stop) == (0, n_frames) else f"{sel.start}:{sel.stop}"
    return f"{sel.size} selected frames"


def _cells(labels: np.ndarray, ids: np.ndarray) -> list[_Roi]:
    flat_labels = labels.reshape(-1)
    order = np.argsort(flat_labels, kind="stable")  # stable keeps np.where order per label
    sorted_labels = flat_labels[order]
    starts = np.searchsorted(sorted_labels, ids, side="left")
    stops = np.searchsorted(sorted_labels, ids, side="right")
    return [_Roi(int(i), order[a:b]) for i, a, b in zip(ids, starts, stops, strict=True)]


def _set_weights(movie, cells, weights, sel, chunk_frames, progress) -> None:
    if weights is None:
        weights = "brightness"
    if isinstance(weights, str):
        if weights == "proximity":
            for c in cells:
                mask = np.zeros(movie.frame_shape, bool)
                mask.reshape(-1)[c.flat] = True
                c.weights = proximity_weights(mask)
            return
        if weights != "brightness":
            raise ParameterError(f"weights={weights!r}: use 'brightness', 'proximity' or an array")
        (means,) = stream(
            movie,
            [PixelMeans(np.concatenate([c.flat for c in cells]))],
            frames=sel,
            chunk_frames=chunk_frames,
            progress=progress,
            desc="pixel means",
        )
        start = 0
        for c in cells:
            c.weights = brightness_weights(means[start : start + c.flat.size])
            start += c.flat.size
        return
    if len(cells) != 1:
        raise ParameterError(
            "an array of weights= fits one cell only; for several cells use "
            "weights='brightness' or 'proximity'"
        )
    cells[0].weights = check_weights(weights, cells[0].flat.size)


def _neuropil_params(neuropil: Any) -> tuple[int, int]:
    if (
        not isinstance(neuropil, dict)
        or set(neuropil) - {"gap", "width"}
        or not {"gap", "width"} <= set(neuropil)
    ):
        raise ParameterError(
            f"neuropil={neuropil!r}: give a dict with 'gap' and 'width' in pixels, "
            "e.g. {'gap': 2, 'width': 1}"
        )
    return neuropil["gap"], neuropil["width"]


def _rings(labels: np.ndarray, cells: list[_Roi], gap: int, width: int) -> list[_Roi]:
    every_cell = labels > 0
    rings = []
    for c in cells:
        mask = np.zeros(labels.shape, bool)
        mask.reshape(-1)[c.flat] = True
        ring = neuropil_ring(mask, gap=gap, width=width, exclude=every_cell, allow_empty=True)
        if not ring.any():
            raise EmptyMaskError(
                f"ROI {c.id}: its neuropil ring (gap={gap}, width={width}) holds no pixel: "
                "it is clipped away at the image border or covered by other cells; "
                "use a wider ring"
            )
        rings.append(_Roi(c.id, np.flatnonzero(ring)))
    return rings


def _check_finite(name: str, values: np.ndarray, ids: np.ndarray) -> None:
    bad = ~np.all(np.isfinite(values), axis=1)
    if bad.any():
        raise NonFiniteError(
            f"{name} of ROI {', '.join(map(str, ids[bad][:5]))} has NaN or infinite values: "
            "the movie holds NaN/inf pixels there; try how='median' or fix the movie"
        )
