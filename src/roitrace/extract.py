"""Extraction in one call: cell and neuropil traces for every ROI, as an xarray Dataset."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import number
from ._warnings import warn_user
from .aggregate import GroupAggregator, check_how, check_proportion, check_weights
from .engine import FramesLike, n_selected, resolve_frames, stream
from .errors import EmptyMaskError, NonFiniteError, ParameterError, ShapeMismatchError
from .io import read_rois
from .movie import as_movie
from .neuropil import neuropil_rings
from .normalize import baseline
from .result import build_result, result_rois
from .rois import Roi, RoiSet
from .traces import PixelMeans, brightness_weights, proximity_weights_groups

log = logging.getLogger(__name__)

__all__ = ["as_roiset", "extract", "rois_from_result", "to_labels"]


@dataclass
class _Roi:
    id: int
    flat: np.ndarray  # flat pixel indices in np.where order
    weights: np.ndarray | None = None
    roi_weights: np.ndarray | None = None  # the RoiSet's own per-pixel weights


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
    return RoiSet.from_labels(arr).to_labels()


def extract(
    movie: Any,
    rois: Any,
    *,
    how: str = "mean",
    weights: Any = None,
    neuropil: dict[str, int] | None = None,
    neuropil_factor: float | None = None,
    neuropil_how: str | None = None,
    proportion: float | None = None,
    overlap: str = "keep",
    dff_q: float = 8.0,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
):
    """Extract one fluorescence trace per cell, and optionally its neuropil.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
    rois : (Y, X) array_like, RoiSet or path
        One boolean mask (one cell), an integer label image (0 = background,
        one cell per positive label), a :class:`roitrace.RoiSet`, or a file that
        :func:`roitrace.read_rois` reads (ImageJ ``.roi``/``RoiSet.zip``, label
        TIFF/``.npy``, NWB; suite2p folders via ``read_rois(..., allow_pickle=True)``).
    how : {"mean", "median", "weighted", "trimmed_mean"}
        How each cell's pixels are combined (see :func:`roitrace.aggregate`).
    weights : {"brightness", "proximity", "roi"} or (P,) array_like, optional
        Pixel weights for ``how="weighted"``: ``"brightness"`` (the notebook's
        ``means / means.sum()``), ``"proximity"``, or ``"roi"`` (the RoiSet's own
        weights, e.g. suite2p's ``lam``; a ROI without weights weighs its pixels
        equally). Default: ``"roi"`` when the ROIs carry weights, else
        ``"brightness"``. An array is allowed for one cell.
    neuropil : dict, optional
        ``{"gap": g, "width": w}``: subtract a neuropil ring ``w`` pixels wide
        starting ``g`` pixels away (:func:`roitrace.neuropil_ring`). Every ring
        leaves out the pixels of every cell, dilated by ``"exclude_gap"`` pixels
        (default 0). With ``"min_pixels": n`` (suite2p uses 350) a ring grows
        outward, one pixel of width at a time, until it holds ``n`` pixels.
    neuropil_factor : float, optional
        ``F_corrected = F - neuropil_factor * Fneu``; default 0.7 (as in suite2p).
        Only with ``neuropil``.
    neuropil_how : str, optional
        How ring pixels are combined; default the same as ``how``, but ``"mean"``
        when ``how="weighted"``.
    proportion : float, optional
        For ``how="trimmed_mean"`` only: the fraction cut from each end (default 0.1).
    overlap : {"keep", "drop"}
        Pixels shared by several ROIs: keep them in each, or drop them from all
        (suite2p's ``allow_overlap=False``). A ROI left with no pixel is an error.
    dff_q : float
        Percentile of the F0 baseline for the ``dff`` variable.
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
        and ``F_corrected``; ``dff``: dF/F0 of ``F_corrected`` (or ``F``), F0 its
        ``dff_q``-th percentile. Coordinates ``roi`` (ids), ``frame`` (frame
        index in the movie) and ``time`` (seconds, when the frame rate is known);
        per ROI ``name``, ``npix``, ``npix_neuropil``, ``centroid_y``,
        ``centroid_x``, ``snr`` and ``skewness`` of ``F_corrected`` (suite2p's:
        ``1 - 0.5 var(diff(x)) / var(x)`` and ``scipy.stats.skew``).
        ``.attrs`` records the parameters and the roitrace version.

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
    movie = as_movie(movie)
    check_how(how)
    if proportion is not None and how != "trimmed_mean":
        raise ParameterError(
            f"proportion is used only with how='trimmed_mean' (how={how!r}): leave it out"
        )
    proportion = 0.1 if proportion is None else proportion
    check_proportion(proportion)
    if neuropil is None and neuropil_factor is not None:
        raise ParameterError(
            "neuropil_factor is used only with a neuropil ring: give neuropil={'gap': ..., "
            "'width': ...} or leave neuropil_factor out"
        )
    neuropil_factor = number(
        "neuropil_factor", 0.7 if neuropil_factor is None else neuropil_factor, low=0.0
    )
    if overlap not in ("keep", "drop"):
        raise ParameterError(f"overlap={overlap!r}: use 'keep' or 'drop'")
    roiset = as_roiset(rois, movie.frame_shape)
    roiset.check_not_empty()
    ids = np.array(roiset.ids, np.int64)
    sel = resolve_frames(movie.n_frames, frames)
    n_t = n_selected(sel)

    cells = _cells(roiset, overlap)
    if how == "weighted":
        _set_weights(movie, cells, roiset, weights, sel, chunk_frames, progress)
    elif weights is not None:
        raise ParameterError(f"weights= is only used with how='weighted' (how={how!r})")

    rings: list[_Roi] = []
    npil_how = None
    if neuropil is not None:
        npil = _neuropil_params(neuropil)
        npil_how = neuropil_how or ("mean" if how == "weighted" else how)
        check_how(npil_how)
        if npil_how == "weighted":
            raise ParameterError("neuropil_how='weighted' is not supported; use mean or median")
        rings = _rings(roiset, **npil)
    # cells and rings in one consumer: one compiled pass over each chunk
    traces = GroupAggregator(
        [c.flat for c in cells] + [r.flat for r in rings],
        [how] * len(cells) + [npil_how] * len(rings),
        n_t,
        weights=[c.weights for c in cells] + [None] * len(rings),
        proportion=proportion,
    )
    (both,) = stream(
        movie,
        [traces],
        frames=sel,
        chunk_frames=chunk_frames,
        progress=progress,
        desc="extracting",
    )
    results = [both[: len(cells)], both[len(cells) :]]

    frame_idx = np.arange(sel.start, sel.stop) if isinstance(sel, slice) else sel
    traces_out = {"F": results[0]}
    trace_attrs: dict[str, dict[str, Any]] = {"F": {"aggregation": how}}
    npix_neuropil = None
    if neuropil is not None:
        npix_neuropil = np.array([r.flat.size for r in rings], np.int64)
        fneu = results[1]
        corrected = fneu * -neuropil_factor
        corrected += results[0]
        traces_out.update(Fneu=fneu, F_corrected=corrected)
        trace_attrs["Fneu"] = {"aggregation": npil_how}
        trace_attrs["F_corrected"] = {"formula": f"F - {neuropil_factor} * Fneu"}
    for name, values in traces_out.items():
        _check_finite(name, values, ids)
    signal = traces_out["F_corrected" if neuropil is not None else "F"]
    traces_out["dff"] = _dff_or_warn(signal, ids, dff_q, corrected=neuropil is not None)
    trace_attrs["dff"] = {"baseline": f"{dff_q}th percentile"}
    params = {
        "how": how,
        "weights": _weights_label(how, weights),
        "proportion": proportion if how == "trimmed_mean" else None,
        "neuropil": neuropil,
        "overlap": overlap,
        "dff_q": dff_q,
        "neuropil_factor": neuropil_factor if neuropil is not None else None,
        "neuropil_how": npil_how,
        "frames": _frames_label(sel, movie.n_frames),
    }
    result = build_result(
        traces_out,
        _extracted(roiset, cells, overlap),
        frames=frame_idx,
        frame_rate=movie.frame_rate,
        # the centroids of the ROIs as given, even when overlap="drop" thinned them
        centroids=roiset.centroids(),
        npix_neuropil=npix_neuropil,
        snr=_snr(signal),
        skewness=_skew(signal),
        trace_attrs=trace_attrs,
        source=str(movie.path) if movie.path is not None else "array",
        parameters=params,
    )
    if roiset.source:  # a ROI file: save() then refuses to write over it
        result.attrs["rois"] = roiset.source
    return result


def _weights_label(how: str, weights: Any) -> str | None:
    if how != "weighted":
        return None
    return weights if isinstance(weights, str) else "default" if weights is None else "array"


def _frames_label(sel: slice | np.ndarray, n_frames: int) -> str:
    if isinstance(sel, slice):
        return "all" if (sel.start, sel.stop) == (0, n_frames) else f"{sel.start}:{sel.stop}"
    return f"{sel.size} selected frames"


def as_roiset(rois: Any, frame_shape: tuple[int, int]) -> RoiSet:
    """A RoiSet from a RoiSet, a path, one boolean mask or a label image."""
    if isinstance(rois, RoiSet):
        roiset = rois
    elif isinstance(rois, (str, os.PathLike)):
        roiset = read_rois(rois, shape=frame_shape)
    else:
        to_labels(rois, frame_shape)  # checks the shape against the movie's frames
        roiset = RoiSet.from_labels(rois)
    if roiset.frame_shape != tuple(frame_shape):
        raise ShapeMismatchError(
            f"the ROIs were made for {roiset.frame_shape[0]} x {roiset.frame_shape[1]} frames "
            f"but the movie's frames are {frame_shape[0]} x {frame_shape[1]}"
            f"{' (' + roiset.source + ')' if roiset.source else ''}"
        )
    return roiset


def _cells(roiset: RoiSet, overlap: str) -> list[_Roi]:
    nx = roiset.frame_shape[1]
    shared = roiset.coverage() > 1 if overlap == "drop" else None
    cells = []
    for r in roiset:
        flat = r.y.astype(np.intp) * nx + r.x
        keep = None
        if shared is not None:
            keep = ~shared[r.y, r.x]
            if not keep.any():
                raise EmptyMaskError(
                    f"ROI {r.id} ({r.name}) has no pixel left once the pixels it shares with "
                    "other ROIs are dropped; use overlap='keep' or remove it"
                )
            flat = flat[keep]
        w = r.weights if r.weights is None or keep is None else r.weights[keep]
        cells.append(_Roi(r.id, flat, None, w))
    return cells


def _set_weights(movie, cells, roiset, weights, sel, chunk_frames, progress) -> None:
    if weights is None:
        weights = "roi" if all(c.roi_weights is not None for c in cells) else "brightness"
    if isinstance(weights, str):
        if weights == "roi":
            if all(c.roi_weights is None for c in cells):
                raise ParameterError(
                    "weights='roi' but the ROIs carry no weights; use 'brightness' or 'proximity'"
                )
            for c in cells:
                # a ROI stored without weights (NWB, ImageJ) has equal weights
                w = np.ones(c.flat.size) if c.roi_weights is None else c.roi_weights
                c.weights = check_weights(w, c.flat.size)
            return
        if weights == "proximity":
            # one weight per pixel of c.flat, in its order
            flats = [c.flat for c in cells]
            for c, w in zip(
                cells, proximity_weights_groups(flats, movie.frame_shape[1]), strict=True
            ):
                c.weights = w
            return
        if weights != "brightness":
            raise ParameterError(
                f"weights={weights!r}: use 'brightness', 'proximity', 'roi' or an array"
            )
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
            "weights='brightness', 'proximity' or 'roi'"
        )
    cells[0].weights = check_weights(weights, cells[0].flat.size)


NEUROPIL_KEYS = ("gap", "width", "exclude_gap", "min_pixels")


def _neuropil_params(neuropil: Any) -> dict[str, Any]:
    if (
        not isinstance(neuropil, dict)
        or set(neuropil) - set(NEUROPIL_KEYS)
        or not {"gap", "width"} <= set(neuropil)
    ):
        raise ParameterError(
            f"neuropil={neuropil!r}: give a dict with 'gap' and 'width' in pixels, e.g. "
            "{'gap': 2, 'width': 1}, and optionally 'exclude_gap' and 'min_pixels'"
        )
    out = {
        "gap": neuropil["gap"],
        "width": neuropil["width"],
        "exclude_gap": neuropil.get("exclude_gap", 0),
        "min_pixels": neuropil.get("min_pixels"),
    }
    for k in ("exclude_gap", "min_pixels"):
        v = out[k]
        if v is not None and (int(v) != v or v < 0):
            raise ParameterError(f"neuropil {k}={v}: use a whole number, 0 or more")
    return out


def _rings(
    roiset: RoiSet, gap: int, width: int, exclude_gap: int, min_pixels: int | None
) -> list[_Roi]:
    flats = neuropil_rings(
        roiset, gap=gap, width=width, exclude_gap=exclude_gap, min_pixels=min_pixels
    )
    return [_Roi(r.id, f) for r, f in zip(roiset, flats, strict=True)]


def _extracted(roiset: RoiSet, cells: list[_Roi], overlap: str) -> RoiSet:
    """The pixels the traces were computed from, for the result's pixel table (NWB and
    suite2p outputs need them): the RoiSet itself, or, with overlap="drop", its ROIs
    without the shared pixels."""
    if overlap == "keep":
        return roiset
    nx = roiset.frame_shape[1]
    return RoiSet(
        [
            Roi(c.id, c.flat // nx, c.flat % nx, c.roi_weights, r.name)
            for r, c in zip(roiset, cells, strict=True)
        ],
        roiset.frame_shape,
        source=roiset.source,
    )


def rois_from_result(result: Any) -> RoiSet:
    """The RoiSet an :func:`extract` result was made from (from its pixel table).

    Deprecated: use :func:`roitrace.result.result_rois` (file formats read results
    through :mod:`roitrace.result`, not through the extraction).
    """
    warn_user(
        "roitrace.extract.rois_from_result is deprecated; use roitrace.result.result_rois",
        DeprecationWarning,
    )
    return result_rois(result)


def _by_rows(fn, x: np.ndarray, rows: int = 128) -> np.ndarray:
    """``fn`` applied to blocks of rows, in threads (numpy releases the GIL):
    temporaries stay small for long recordings, and every core takes a share."""
    blocks = [x[i : i + rows] for i in range(0, x.shape[0], rows)]
    if len(blocks) < 2:
        return np.concatenate([fn(b) for b in blocks]) if blocks else fn(x)
    with ThreadPoolExecutor(min(len(blocks), os.cpu_count() or 1)) as pool:
        return np.concatenate(list(pool.map(fn, blocks)))


def _snr(x: np.ndarray) -> np.ndarray:
    return _by_rows(_snr_rows, x)


def _snr_rows(x: np.ndarray) -> np.ndarray:
    """suite2p's SNR proxy: 1 - 0.5 var(diff(x)) / var(x), per row; 0 for rows of
    fewer than 2 values (a one-frame extraction has no differences)."""
    if x.shape[1] < 2:
        return np.zeros(x.shape[0])
    var = np.var(x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - 0.5 * np.var(np.diff(x, axis=1), axis=1) / var
    return np.where(var > 0, out, 0.0)


def _skew(x: np.ndarray) -> np.ndarray:
    return _by_rows(_skew_rows, x)


def _skew_rows(x: np.ndarray) -> np.ndarray:
    """scipy.stats.skew (biased, Fisher-Pearson) per row; 0 for constant rows and
    rows of fewer than 3 values."""
    if x.shape[1] < 3:
        return np.zeros(x.shape[0])
    d = x - x.mean(axis=1, keepdims=True)
    d2 = d * d
    m2 = d2.mean(axis=1)
    m3 = np.einsum("ij,ij->i", d2, d) / x.shape[1]
    flat = np.ptp(x, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, 0.0, m3 / np.where(flat, 1.0, m2) ** 1.5)


def _dff_or_warn(signal: np.ndarray, ids: np.ndarray, q: float, *, corrected: bool) -> np.ndarray:
    if signal.shape[1] < 2:
        return np.zeros_like(signal)
    f0 = _by_rows(lambda rows: baseline(rows, q=q), signal)  # the same F0 as roitrace.dff
    bad = f0[:, 0] <= 0
    if bad.any():
        n_bad = int(bad.sum())
        listed = ", ".join(map(str, ids[bad][:10])) + (", ..." if n_bad > 10 else "")
        trace, fix = (
            ("corrected trace", "lower neuropil_factor, or use roitrace.zscore")
            if corrected
            else ("trace", "the movie may have an offset to remove; or use roitrace.zscore")
        )
        warn_user(
            f"{n_bad} of {ids.size} ROIs ({listed}): F0 (the {q:g}th percentile of the {trace}) "
            f"is <= 0, so their dff is NaN; {fix}",
        )
    out = signal - f0
    with np.errstate(divide="ignore", invalid="ignore"):
        out /= np.where(bad[:, None], 1, f0)
    out[bad] = np.nan
    return out


def _check_finite(name: str, values: np.ndarray, ids: np.ndarray) -> None:
    bad = ~np.all(np.isfinite(values), axis=1)
    if bad.any():
        raise NonFiniteError(
            f"{name} of ROI {', '.join(map(str, ids[bad][:5]))} has NaN or infinite values: "
            "the movie holds NaN/inf pixels there; fix the movie or leave those pixels out"
        )
