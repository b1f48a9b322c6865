"""Extraction in one call: cell and neuropil traces for every ROI, as an xarray Dataset.

:func:`extract` is a composition of the pipeline's stages: plan (which pixels,
:func:`roitrace.plan_extraction`) -> run (one pass over the frames,
:func:`run_plan`) -> assemble (:func:`roitrace.result.build_result`) -> per-ROI
statistics (:mod:`roitrace.measure`) -> dF/F (:func:`roitrace.dff`).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any

import numpy as np

from ._progress import status
from ._validate import choice, number
from ._warnings import renamed_keywords, warn_user
from .aggregate import GroupAggregator
from .engine import FramesLike, n_selected, resolve_frames, stream, task_jobs
from .errors import NonFiniteError, ParameterError, ShapeMismatchError
from .measure import trace_statistics
from .movie import Movie, as_movie
from .normalize import Dff, dff
from .options import Baseline, Deconvolve, Execution, Neuropil
from .plan import ExtractionPlan, as_roiset, plan_extraction, to_labels
from .result import build_result, result_rois
from .traces import PixelMeans

log = logging.getLogger(__name__)

__all__ = ["as_roiset", "extract", "rois_from_result", "run_plan", "to_labels"]


@renamed_keywords(
    how="method",
    neuropil_how="neuropil_method",
    dff_q=lambda q: ("baseline", {"q": q}),
)
def extract(
    movie: Any,
    rois: Any,
    *,
    method: str | None = None,
    weights: Any = None,
    neuropil: Neuropil | dict[str, Any] | None = None,
    neuropil_factor: float | str | None = None,
    neuropil_method: str | None = None,
    proportion: float | None = None,
    overlap: str | None = None,
    baseline: Baseline | dict[str, Any] | None = None,
    deconvolve: bool | Deconvolve | dict[str, Any] | None = None,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    client: Any = None,
):
    """Extract one fluorescence trace per cell, and optionally its neuropil.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
    rois : (Y, X) array_like, RoiSet, path or ExtractionPlan
        One boolean mask (one cell), an integer label image (0 = background,
        one cell per positive label), a :class:`roitrace.RoiSet`, a file that
        :func:`roitrace.read_rois` reads (ImageJ ``.roi``/``RoiSet.zip``, label
        TIFF/``.npy``, NWB; suite2p folders via ``read_rois(..., allow_pickle=True)``),
        or a plan from :func:`roitrace.plan_extraction` (which then holds
        ``method``, ``weights``, ``neuropil``, ``neuropil_method``, ``proportion``
        and ``overlap``; those are not given again).
    method : {"mean", "median", "weighted", "trimmed_mean"}
        How each cell's pixels are combined (see :func:`roitrace.aggregate`);
        default ``"mean"``.
    weights : {"brightness", "proximity", "roi"} or (P,) array_like, optional
        Pixel weights for ``method="weighted"``: ``"brightness"`` (the notebook's
        ``means / means.sum()``), ``"proximity"``, or ``"roi"`` (the RoiSet's own
        weights, e.g. suite2p's ``lam``; a ROI without weights weighs its pixels
        equally). Default: ``"roi"`` when the ROIs carry weights, else
        ``"brightness"``. An array is allowed for one cell.
    neuropil : Neuropil or dict, optional
        Subtract a neuropil ring ``width`` pixels wide starting ``gap`` pixels
        away, e.g. ``Neuropil(gap=2, width=3)`` or ``{"gap": 2, "width": 3}``;
        every ring leaves out every cell's pixels (see :class:`roitrace.Neuropil`
        for ``exclude_gap`` and ``min_pixels``).
    neuropil_factor : float or {"estimate", "smoothness", "regression"}, optional
        r in ``F_corrected = F - r * Fneu``: one number for every ROI (default 0.7,
        as in suite2p), or estimated per ROI from its F and Fneu by
        :func:`roitrace.neuropil_coefficient` with this ``method`` (``"estimate"``:
        the method roitrace recommends). Only with ``neuropil``.
    neuropil_method : str, optional
        How ring pixels are combined; default the same as ``method``, but
        ``"mean"`` when ``method="weighted"``.
    proportion : float, optional
        For ``method="trimmed_mean"`` only: the fraction cut from each end (default 0.1).
    overlap : {"keep", "drop"}
        Pixels shared by several ROIs: keep them in each (default), or drop them
        from all (suite2p's ``allow_overlap=False``). A ROI left with no pixel is
        an error.
    baseline : Baseline or dict, optional
        How F0 of the ``dff`` variable is found: by default the 8th percentile of
        the whole trace; e.g. ``{"method": "maximin", "window": "60s"}`` for
        suite2p's running baseline, ``{"method": "inactive_median"}`` for the
        Allen Brain Observatory's (see :class:`roitrace.Baseline`; windows in
        seconds need the movie's frame rate).
    deconvolve : bool, Deconvolve or dict, optional
        Infer spikes from each ``dff`` trace with OASIS (:func:`roitrace.deconvolve`):
        ``True`` for the defaults (AR(1), l1, time constant estimated per ROI), or
        e.g. ``{"model": "ar2", "penalty": "l0"}`` (see :class:`roitrace.Deconvolve`).
    execution, frames, chunk_frames, progress
        How the movie is read: see :class:`roitrace.Execution`.
    client : distributed.Client, optional
        Run on this Dask cluster (:mod:`roitrace.cluster`): each task reads a range
        of frames on a worker; the traces are the same as without it.

    Returns
    -------
    result : xarray.Dataset
        Dims ``(roi, time)``. ``F``: the cell trace; with a neuropil also ``Fneu``
        and ``F_corrected``; ``dff``: dF/F0 of ``F_corrected`` (or ``F``), F0 as
        ``baseline`` says (NaN, with a warning, for a ROI whose F0 is <= 0);
        ``F0``, that baseline, one value per frame; per ROI ``noise``, the noise
        SD of the trace dF/F0 was made from (:func:`roitrace.noise_level`). With
        ``deconvolve``, ``calcium`` (denoised dF/F0) and ``spikes`` (inferred
        activity, >= 0, in dF/F0 units) and per ROI ``deconvolution_noise`` (the
        noise SD of dF/F0 OASIS used: :func:`roitrace.detect_events` reads it).
        Coordinates ``roi`` (ids), ``frame`` (frame index in the movie) and
        ``time`` (seconds, when the frame rate is known); per ROI ``name``,
        ``npix``, ``npix_neuropil``, ``centroid_y``, ``centroid_x``, ``snr``
        and ``skewness`` of ``F_corrected`` (see :mod:`roitrace.measure`); with a
        neuropil ``neuropil_factor`` (r per ROI, also when one number was given)
        and, when r was estimated, ``neuropil_converged``.
        ``.attrs`` records the parameters and the roitrace version.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.random.default_rng(0).poisson(100, (50, 20, 20)).astype(np.uint16)
    >>> mask = np.zeros((20, 20), bool); mask[8:12, 8:12] = True
    >>> ds = extract(data, mask, method="median", neuropil={"gap": 2, "width": 1})
    >>> ds["F"].dims, ds.sizes["time"]
    (('roi', 'time'), 50)
    >>> bool(np.allclose(ds["F"][0], np.median(data[:, 8:12, 8:12].reshape(50, -1), axis=1)))
    True
    """
    movie = as_movie(movie)
    ex = Execution.of(
        execution, frames=frames, chunk_frames=chunk_frames, progress=progress, client=client
    )
    plan = _plan(
        rois,
        movie.frame_shape,
        method=method,
        weights=weights,
        neuropil=neuropil,
        neuropil_method=neuropil_method,
        proportion=proportion,
        overlap=overlap,
    )
    factor = _neuropil_factor(plan, neuropil_factor)
    sel = resolve_frames(movie.n_frames, ex.frames)
    f0 = (Baseline.coerce(baseline) or Baseline()).in_frames(movie.frame_rate, n_selected(sel))
    spikes = _deconvolve_options(deconvolve, movie.frame_rate)
    ex = dataclasses.replace(ex, frames=sel)
    if plan.needs_brightness():
        plan = weigh_by_brightness(movie, plan, execution=ex)
    cells, rings = run_plan(movie, plan, execution=ex)
    with status(f"estimating the neuropil factor ({factor})", show=_shows(ex, factor)):
        traces, attrs, per_roi = _traces(plan, cells, rings, factor)
    signal = traces["F_corrected" if rings is not None else "F"]
    with status(f"dF/F: {f0.describe()}", show=ex.progress and f0.method != "percentile"):
        normalised = _dff(signal, plan.ids, f0, corrected=rings is not None)
    traces["F0"], traces["dff"] = normalised.f0, normalised.dff
    per_roi["noise"] = normalised.noise
    attrs["dff"] = attrs["F0"] = {"baseline": f0.describe()}
    if spikes is not None:
        # the first run on a machine also compiles OASIS (about a minute): say what runs
        with status("deconvolving (OASIS)", show=ex.progress):
            traces["calcium"], traces["spikes"], per_roi["deconvolution_noise"] = _spikes(
                traces["dff"], spikes, movie.frame_rate, plan.ids
            )
        attrs["calcium"] = attrs["spikes"] = {"deconvolution": _describe(spikes)}
    params = {
        **plan.parameters(),
        "neuropil_factor": factor,
        "baseline": f0.as_dict(),
        "deconvolve": None if spikes is None else spikes.as_dict(),
        "frames": _frames_label(sel, movie.n_frames),
    }
    result = build_result(
        traces,
        plan.rois(),
        frames=np.arange(sel.start, sel.stop) if isinstance(sel, slice) else sel,
        frame_rate=movie.frame_rate,
        # the centroids of the ROIs as given, even when overlap="drop" thinned them
        centroids=plan.centroids,
        npix_neuropil=None if rings is None else np.array([r.size for r in plan.rings]),
        **trace_statistics(signal),
        **per_roi,
        trace_attrs=attrs,
        source=str(movie.path) if movie.path is not None else "array",
        parameters=params,
    )
    if plan.source:  # a ROI file: save() then refuses to write over it
        result.attrs["rois"] = plan.source
    return result


def run_plan(
    movie: Any, plan: ExtractionPlan, *, execution: Execution | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a plan over the movie's frames: the cells' traces and the rings' traces
    (None without neuropil), each (roi, time), from one pass over the frames.

    Examples
    --------
    >>> import numpy as np
    >>> from roitrace import plan_extraction
    >>> data = np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4)
    >>> mask = np.zeros((4, 4), bool); mask[1:3, 1:3] = True
    >>> cells, rings = run_plan(data, plan_extraction(mask, (4, 4)))
    >>> cells, rings
    (array([[ 7.5, 23.5]]), None)
    """
    movie = as_movie(movie)
    ex = Execution.coerce(execution) or Execution()
    if plan.frame_shape != movie.frame_shape:
        raise ShapeMismatchError(
            f"the plan was made for {plan.frame_shape[0]} x {plan.frame_shape[1]} frames "
            f"but the movie's frames are {movie.frame_shape[0]} x {movie.frame_shape[1]}"
        )
    if ex.client is not None:
        both = _run_on_cluster(movie, plan, ex)
    else:
        n_t = n_selected(resolve_frames(movie.n_frames, ex.frames))
        traces = GroupAggregator(plan.kernel_groups(), None, n_t)
        (both,) = stream(movie, [traces], execution=ex, desc="extracting")
    n = plan.n_rois
    return both[:n], (both[n:] if plan.neuropil is not None else None)


def _run_on_cluster(movie: Movie, plan: ExtractionPlan, ex: Execution) -> np.ndarray:
    """:func:`run_plan` on a Dask cluster: one task per frame range, the plan
    scattered once; each block of traces is put in place as its task finishes."""
    from .cluster import run_tasks

    jobs, total = task_jobs(movie, ex)
    n_groups = plan.n_rois * (2 if plan.neuropil is not None else 1)
    both = np.empty((n_groups, total), np.float64)
    blocks = run_tasks(ex, movie, jobs, _run_part, plan, progress_total=total, desc="extracting")
    for (off, _), (cells, rings) in blocks:
        both[: plan.n_rois, off : off + cells.shape[1]] = cells
        if rings is not None:
            both[plan.n_rois :, off : off + rings.shape[1]] = rings
    return both


def _run_part(
    movie: Movie, ex: Execution, frames: Any, plan: ExtractionPlan
) -> tuple[np.ndarray, np.ndarray | None]:
    """On a worker: the plan run over one frame range."""
    return run_plan(movie, plan, execution=dataclasses.replace(ex, frames=frames))


def weigh_by_brightness(
    movie: Any, plan: ExtractionPlan, *, execution: Execution | None = None
) -> ExtractionPlan:
    """The plan with brightness weights measured from the movie (each cell pixel's
    mean over the frames of ``execution``), for ``weights="brightness"``."""
    (means,) = stream(
        movie,
        [PixelMeans(np.concatenate(plan.cells))],
        execution=execution,
        desc="pixel means",
    )
    return plan.with_brightness(means)


_PLAN_OPTIONS = ("method", "weights", "neuropil", "neuropil_method", "proportion", "overlap")


def _plan(rois: Any, frame_shape: tuple[int, int], **options: Any) -> ExtractionPlan:
    if not isinstance(rois, ExtractionPlan):
        given = {k: v for k, v in options.items() if v is not None}
        return plan_extraction(rois, frame_shape, **given)
    given = [k for k in _PLAN_OPTIONS if options[k] is not None]
    if given:
        them = "them" if len(given) > 1 else "it"
        raise ParameterError(
            f"{', '.join(given)} given with a plan: the plan holds {them} already; give "
            f"{them} to plan_extraction(), or pass the ROIs instead of the plan"
        )
    return rois


def _neuropil_factor(plan: ExtractionPlan, factor: float | str | None) -> float | str | None:
    """The fixed factor, or the name of the method that estimates one per ROI."""
    if plan.neuropil is None:
        if factor is not None:
            raise ParameterError(
                "neuropil_factor is used only with a neuropil ring: give neuropil={'gap': ..., "
                "'width': ...} or leave neuropil_factor out"
            )
        return None
    if isinstance(factor, str):
        from .contamination import NEUROPIL_FACTOR_METHODS

        return choice("neuropil_factor", factor, NEUROPIL_FACTOR_METHODS, hint=" or a number")
    return number("neuropil_factor", 0.7 if factor is None else factor, low=0.0)


def _traces(
    plan: ExtractionPlan, cells: np.ndarray, rings: np.ndarray | None, factor: float | str | None
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """F, and with a neuropil Fneu and F_corrected, each checked finite; their attrs;
    the per-ROI neuropil factor (and whether its estimate converged)."""
    traces = {"F": cells}
    attrs: dict[str, dict[str, Any]] = {"F": {"aggregation": plan.method}}
    for name, values in traces.items():
        _check_finite(name, values, plan.ids)
    per_roi: dict[str, np.ndarray] = {}
    if rings is not None:
        _check_finite("Fneu", rings, plan.ids)
        if isinstance(factor, str):
            from .contamination import neuropil_coefficient

            with warnings.catch_warnings():
                # said again below in the ROIs' ids, not their row indices
                warnings.filterwarnings("ignore", "neuropil_coefficient", UserWarning)
                fit = neuropil_coefficient(cells, rings, method=factor, full_output=True)
            r = np.asarray(fit.r, np.float64).reshape(-1)
            per_roi["neuropil_converged"] = np.asarray(fit.converged, bool).reshape(-1)
            _warn_filled(np.asarray(fit.filled, bool).reshape(-1), r, plan.ids, factor)
            formula = (
                f"F - neuropil_factor * Fneu, neuropil_factor per ROI estimated by "
                f"roitrace.neuropil_coefficient(method={fit.method!r})"
            )
        else:
            r = np.full(plan.n_rois, factor)
            formula = f"F - {factor} * Fneu"
        per_roi["neuropil_factor"] = r
        corrected = rings * -r[:, None]
        corrected += cells
        traces.update(Fneu=rings, F_corrected=corrected)
        attrs["Fneu"] = {"aggregation": plan.neuropil_method}
        attrs["F_corrected"] = {"formula": formula}
    return traces, attrs, per_roi


def _shows(ex: Execution, factor: Any) -> bool:
    return bool(ex.progress) and isinstance(factor, str)


def _warn_filled(filled: np.ndarray, r: np.ndarray, ids: np.ndarray, method: str) -> None:
    if not filled.any():
        return
    n = int(filled.sum())
    listed = ", ".join(map(str, ids[filled][:10])) + (", ..." if n > 10 else "")
    warn_user(
        f"neuropil_factor={method!r}: the estimate did not converge for {n} of {ids.size} "
        f"ROIs ({listed}); they took r = {float(r[filled][0]):.3g} (the mean r of the "
        "converged ROIs when at least 5 converged, else 0.7); the result's "
        "neuropil_converged marks them"
    )


def _frames_label(sel: slice | np.ndarray, n_frames: int) -> str:
    if isinstance(sel, slice):
        return "all" if (sel.start, sel.stop) == (0, n_frames) else f"{sel.start}:{sel.stop}"
    return f"{sel.size} selected frames"


def rois_from_result(result: Any):
    """The RoiSet an :func:`extract` result was made from (from its pixel table).

    Deprecated: use :func:`roitrace.result.result_rois` (file formats read results
    through :mod:`roitrace.result`, not through the extraction).
    """
    warn_user(
        "roitrace.extract.rois_from_result is deprecated; use roitrace.result.result_rois",
        DeprecationWarning,
    )
    return result_rois(result)


def _dff(signal: np.ndarray, ids: np.ndarray, f0: Baseline, *, corrected: bool) -> Dff:
    """dF/F0, F0 (per frame) and the noise of every trace (:func:`roitrace.dff`);
    NaN and a warning where F0 <= 0."""
    if signal.shape[1] < 2:  # one frame: no change, and no noise to measure
        return Dff(np.zeros_like(signal), signal.copy(), np.full(signal.shape[0], np.nan))
    got = dff(signal, **f0.as_dict(), nonpositive="nan", full_output=True)
    out = got.dff
    f0_values = np.array(np.broadcast_to(got.f0, signal.shape), np.float64)
    low = ~(f0_values > 0)
    bad = low.any(axis=1)
    if bad.any():
        n_bad = int(bad.sum())
        listed = ", ".join(map(str, ids[bad][:10])) + (", ..." if n_bad > 10 else "")
        trace, fix = (
            ("corrected trace", "lower neuropil_factor, or use roitrace.zscore")
            if corrected
            else ("trace", "the movie may have an offset to remove; or use roitrace.zscore")
        )
        # the Allen Institute's dF/F divides by max(F0, noise): defined, but not dF/F0
        then = (
            "their dff divides by the noise there (max(F0, noise), as published)"
            if f0.method == "inactive_median"
            else "their dff is NaN there (and they are not deconvolved)"
        )
        warn_user(
            f"{n_bad} of {ids.size} ROIs ({listed}): F0 (the {f0.describe()} of the {trace}) "
            f"is <= 0{_where(low[bad])}, so {then}; {fix}",
        )
    return Dff(out, f0_values, np.asarray(got.noise, np.float64))


def _where(nan: np.ndarray) -> str:
    """Where F0 <= 0: in every frame, or in how many (a running F0)."""
    if nan.all():
        return ""
    return f" in {int(nan.sum())} of {nan.size} frames of those ROIs"


def _deconvolve_options(value: Any, frame_rate: float | None) -> Deconvolve | None:
    """``deconvolve=``: None/False (no), True (the defaults), or the options."""
    if value is None or value is False:
        return None
    options = Deconvolve() if value is True else Deconvolve.coerce(value)
    if options.tau is not None and not frame_rate:
        raise ParameterError(
            f"deconvolve tau={options.tau!r} is in seconds, and the movie records no frame "
            "rate: give it one (frame_rate=, e.g. roitrace.as_movie(array, frame_rate=30)), "
            "or leave tau out to estimate it per ROI"
        )
    return options


def _spikes(
    dff_values: np.ndarray, options: Deconvolve, frame_rate: float | None, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calcium, spikes and the noise used, of each dF/F0 trace (NaN rows, whose F0 was
    <= 0, stay NaN)."""
    from .deconvolution import deconvolve as oasis

    calcium = np.full_like(dff_values, np.nan)
    spikes = np.full_like(dff_values, np.nan)
    noise = np.full(dff_values.shape[0], np.nan)
    ok = np.all(np.isfinite(dff_values), axis=1)
    if ok.any():
        with warnings.catch_warnings():
            # said below by ROI id: deconvolve() counts the rows it was given
            warnings.filterwarnings("ignore", "traces of ROIs .* are constant", UserWarning)
            got = oasis(
                dff_values[ok],
                frame_rate=frame_rate,
                model=options.model,
                tau=options.tau,
                penalty=options.penalty,
            )
        calcium[ok], spikes[ok], noise[ok] = got.calcium, got.spikes, got.noise
    flat = ok & (np.ptp(np.where(ok[:, None], dff_values, 0.0), axis=1) == 0)
    if flat.any():
        warn_user(
            f"the dff of ROIs {', '.join(map(str, ids[flat][:10]))}"
            f"{', ...' if flat.sum() > 10 else ''} is constant: nothing to deconvolve; "
            "their calcium and spikes are 0"
        )
    return calcium, spikes, noise


def _describe(options: Deconvolve) -> str:
    tau = "estimated per ROI" if options.tau is None else f"{options.tau} s"
    return f"OASIS {options.model.upper()}, {options.penalty} penalty, tau {tau}, of dff"


def _check_finite(name: str, values: np.ndarray, ids: np.ndarray) -> None:
    bad = ~np.all(np.isfinite(values), axis=1)
    if bad.any():
        raise NonFiniteError(
            f"{name} of ROI {', '.join(map(str, ids[bad][:5]))} has NaN or infinite values: "
            "the movie holds NaN/inf pixels there; fix the movie or leave those pixels out"
        )
