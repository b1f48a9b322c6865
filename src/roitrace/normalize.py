"""Normalisation: dF/F0, z-scores and min-max scaling, for comparing traces.

Each function takes a 1-D trace, a (roi, time) array (time on the last axis, or
``axis=``), or an xarray DataArray with a ``time`` dimension (returned as a
DataArray with the same coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._parallel import by_rows
from ._validate import choice
from ._validate import frame_rate as _frame_rate
from ._warnings import renamed_keywords
from .errors import BaselineError, ParameterError
from .options import Baseline

__all__ = ["Dff", "baseline", "dff", "minmax", "noise_level", "zscore"]

#: 1.4826: the median absolute deviation of a normal distribution times this is its SD.
MAD_TO_SD = 1.4826


class Dff(NamedTuple):
    """What :func:`dff` gives with ``full_output=True``.

    Attributes
    ----------
    dff : ndarray or DataArray, shape of the trace
        dF/F0.
    f0 : ndarray or DataArray
        The baseline F0: one value per trace (shape ``(..., 1)``) for
        ``method="percentile"`` without a window, else one per frame (the
        trace's shape). For ``"inactive_median"`` dF/F divides by
        ``max(F0, noise)`` (Allen's noise), not by F0 alone.
    noise : ndarray or DataArray, shape ``(...)``: the trace's without time
        The noise SD of each trace, :func:`noise_level` (in the trace's units).
    """

    dff: Any
    f0: Any
    noise: Any


def noise_level(trace: Any, *, axis: int = -1) -> Any:
    """The noise standard deviation of each trace, robust to transients and drift.

    ``1.4826 * median(|d - median(d)|) / sqrt(2)`` where ``d`` are the first
    differences of the trace: for white noise of SD s the differences have SD
    ``s * sqrt(2)``, and 1.4826 times the median absolute deviation is the SD of
    a normal distribution. Slow changes (bleaching, F0) barely move the
    differences, and the median ignores the few large ones of calcium transients.

    Parameters
    ----------
    trace : (..., T) array_like or xarray.DataArray
    axis : int
        The time axis of an ndarray.

    Returns
    -------
    noise : ndarray or DataArray, the shape of ``trace`` without its time axis
        0 for a constant trace.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(100.0, 2.0, (3, 20000))
    >>> noise_level(x).round(1)
    array([2., 2., 2.])
    """
    return _apply(trace, axis, _noise_level, reduce=True)


def _noise_level(x: np.ndarray, axis: int) -> np.ndarray:
    def rows(block: np.ndarray) -> np.ndarray:
        d = np.diff(block, axis=-1)
        mad = np.median(np.abs(d - np.median(d, axis=-1, keepdims=True)), axis=-1)
        return mad * (MAD_TO_SD / math.sqrt(2.0))

    r = _rows(x, axis)
    return by_rows(rows, r).reshape(_lead_shape(x, axis))


def baseline(
    trace: Any,
    *,
    method: str = "percentile",
    q: float | None = None,
    window: int | str | None = None,
    sigma: float | None = None,
    noise_window: int | str | None = None,
    frame_rate: float | None = None,
    axis: int = -1,
) -> Any:
    """F0, the resting fluorescence of each trace.

    Parameters
    ----------
    trace : (..., T) array_like or xarray.DataArray
        Fluorescence (finite values; no NaN).
    method : {"percentile", "rolling_percentile", "maximin", "inactive_median"}
        ``"percentile"``: the ``q``-th percentile of the whole trace (numpy's,
        interpolated), or, with ``window``, of a centred sliding window (an order
        statistic: ``scipy.ndimage.percentile_filter`` with ``mode="nearest"``).

        ``"rolling_percentile"``: the ``q``-th percentile in a sliding ``window``:
        exactly ``"percentile"`` with a window, but the window is required (or
        60 s with ``frame_rate``; our choice, not a published value).

        ``"maximin"``: suite2p's baseline (Pachitariu et al. 2017; suite2p's
        ``extraction.dcnv.preprocess``, ``baseline="maximin"``): a Gaussian
        smoothing of ``sigma`` frames (``gaussian_filter``), then a running minimum
        and a running maximum over ``window`` frames (``minimum_filter1d``, then
        ``maximum_filter1d``; scipy's ``"reflect"`` edges). suite2p's defaults:
        ``sig_baseline=10`` frames and ``win_baseline=60`` s, ``int(60 * fs)``
        frames.

        ``"inactive_median"``: the Allen Institute's (ophys_etl_pipelines,
        ``modules/dff``: ``compute_dff_trace``, ``noise_std``,
        ``nanmedian_filter``). The noise ``s`` is Allen's ``noise_std``: the
        residual of a ``noise_window``-frame median filter, its positive outliers
        (above 1.5 times the most negative residual) dropped, then those beyond 2.5
        robust SDs, then 1.4826 times the median absolute deviation of the rest.
        A frame is active where F exceeds the running ``q``-th percentile over
        ``window`` frames plus ``3 s``; F0 is the running median of the other
        frames over ``window`` frames (reflected edges; windows without an
        inactive frame are interpolated linearly). With ``q`` 0 or 100, F0 is the
        plain running median. Defaults as published: ``q=10``, ``window`` 600 s
        and ``noise_window`` 3.333 s (rounded, made odd), or 31 frames without a
        frame rate. Where Allen's ``noise_std`` gives NaN (nothing left after its
        outlier steps, e.g. a constant trace) the noise here is 0.
    q : float, optional
        The percentile, 0 to 100: default 8 for the percentile methods, 10 for
        ``"inactive_median"``. Not for ``"maximin"``.
    window : int or str, optional
        The sliding window in frames, or seconds as text (``"60s"``, needs
        ``frame_rate``). Without it: one value over the whole trace for
        ``"percentile"``; the published default in seconds for the others, which
        then need ``frame_rate``.
    sigma : float, optional
        ``"maximin"``: the Gaussian's SD in frames (default 10).
    noise_window : int or str, optional
        ``"inactive_median"``: the noise's median filter, in odd frames or seconds.
    frame_rate : float, optional
        Frames per second, for windows in seconds and the default windows.
    axis : int
        The time axis of an ndarray.

    Returns
    -------
    f0 : ndarray or DataArray
        Shape ``(..., 1)`` for ``"percentile"`` without a window, else the
        trace's shape.

    Raises
    ------
    ParameterError
        An option that does not apply to the method, a running method without a
        window or a frame rate, a window longer than the trace (for
        ``"inactive_median"``: not shorter, or even), NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> float(baseline(np.arange(101.0), q=10)[0])
    10.0
    >>> f = np.array([5.0, 5.0, 9.0, 5.0, 6.0, 6.0, 6.0])
    >>> baseline(f, method="rolling_percentile", q=0, window=3)
    array([5., 5., 5., 5., 5., 6., 6.])
    """
    opts = Baseline(method, q, window, sigma, noise_window)
    rate = _frame_rate(frame_rate)
    return _apply(trace, axis, lambda x, ax: _baseline(x, ax, opts, rate)[0])


def _baseline(
    x: np.ndarray, axis: int, opts: Baseline, rate: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """F0 and, for inactive_median, the denominator's floor (Allen's noise) per row."""
    n = x.shape[axis]
    opts = opts.in_frames(rate, n)
    method, q, window = opts.method, float(opts.q or 0.0), opts.window
    if method == "percentile" and window is None:
        if x.ndim == 2 and axis in (1, -1):  # many traces: row blocks in threads
            return by_rows(lambda rows: np.percentile(rows, q, axis=1, keepdims=True), x), None
        return np.percentile(x, q, axis=axis, keepdims=True), None
    r = _rows(x, axis)
    floor = None
    if method in ("percentile", "rolling_percentile"):
        f0 = _running_percentile(r, q, window, "nearest")
    elif method == "maximin":
        from scipy.ndimage import gaussian_filter1d, maximum_filter1d, minimum_filter1d

        f0 = gaussian_filter1d(r, opts.sigma, axis=-1) if opts.sigma > 0 else r.copy()
        f0 = maximum_filter1d(minimum_filter1d(f0, window, axis=-1), window, axis=-1)
    else:
        f0, floor = _inactive_median(r, q, window, opts.noise_window)
        floor = floor.reshape(_lead_shape(x, axis))
    return _unrows(f0, x.shape, axis), floor


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """The traces as C-contiguous (rows, T) float64."""
    x = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float64)


def _unrows(r: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(r.reshape(moved), -1, axis)


def _lead_shape(x: np.ndarray, axis: int) -> tuple[int, ...]:
    return tuple(s for i, s in enumerate(x.shape) if i != axis % x.ndim)


def _running_percentile(r: np.ndarray, q: float, size: int, mode: str) -> np.ndarray:
    from ._kernels.running import percentile_filter

    return percentile_filter(r, q, size, mode)


def _median_rows(r: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    out = np.empty_like(r)
    for i, row in enumerate(r):
        median_filter(row, size=size, output=out[i])
    return out


def _allen_noise(r: np.ndarray, size: int) -> np.ndarray:
    """The Allen Institute's ``noise_std`` of each row (0 where theirs is NaN)."""
    residual = r - _median_rows(r, size)
    out = np.zeros(r.shape[0])
    for i, res in enumerate(residual):  # outlier cuts leave rows of unequal length
        kept = res[res < 1.5 * abs(res.min())]
        if kept.size == 0:
            continue
        rstd = MAD_TO_SD * np.median(np.abs(kept - np.median(kept)))
        kept = kept[np.abs(kept) < 2.5 * rstd]
        if kept.size:
            out[i] = MAD_TO_SD * np.median(np.abs(kept - np.median(kept)))
    return out


def _inactive_median(
    r: np.ndarray, q: float, size: int, noise_size: int
) -> tuple[np.ndarray, np.ndarray]:
    from ._kernels.running import nanmedian_filter

    noise = _allen_noise(r, noise_size)
    if not 0 < q < 100:  # as published: no active frames to leave out
        return _median_rows(r, size), noise
    low = _running_percentile(r, q, size, "reflect")
    inactive = np.where(r > low + 3 * noise[:, None], np.nan, r)
    f0 = nanmedian_filter(inactive, size)
    for i in np.flatnonzero(np.isnan(f0).any(axis=1)):  # windows with no inactive frame
        row = f0[i]
        gap = np.isnan(row)
        row[gap] = np.interp(np.flatnonzero(gap), np.flatnonzero(~gap), row[~gap])
    return f0, noise


@renamed_keywords(baseline="method")
def dff(
    trace: Any,
    *,
    method: str = "percentile",
    q: float | None = None,
    window: int | str | None = None,
    sigma: float | None = None,
    noise_window: int | str | None = None,
    frame_rate: float | None = None,
    axis: int = -1,
    nonpositive: str = "raise",
    full_output: bool = False,
) -> Any:
    """dF/F0: the change of fluorescence relative to its baseline, ``(F - F0) / F0``.

    Parameters
    ----------
    trace : (..., T) array_like or xarray.DataArray
        Fluorescence, e.g. ``extract(...)["F_corrected"]`` (finite; no NaN).
    method, q, window, sigma, noise_window, frame_rate
        How F0 is found: see :func:`roitrace.baseline`. For ``"inactive_median"``
        dF/F is ``(F - F0) / max(F0, s)`` with ``s`` Allen's noise, as published.
    axis : int
        The time axis of an ndarray.
    nonpositive : {"raise", "nan"}
        Where F0 (the denominator) is zero or negative, dF/F0 is meaningless:
        raise :class:`BaselineError` naming the traces (default), or give NaN at
        those frames, silently (:func:`extract` does so and warns, naming the ROIs
        whose ``dff`` holds NaN).
    full_output : bool
        Return a :class:`Dff` ``(dff, f0, noise)`` instead of dF/F alone; ``noise``
        is :func:`noise_level` of the trace.

    Returns
    -------
    dff : ndarray or DataArray, same shape as ``trace``; or :class:`Dff`

    Raises
    ------
    BaselineError
        When F0 is zero or negative for any trace (e.g. after a strong neuropil
        subtraction) and ``nonpositive="raise"``. Add an offset or use
        :func:`zscore`.
    ParameterError
        As :func:`roitrace.baseline`.

    Examples
    --------
    >>> import numpy as np
    >>> dff(np.array([100.0, 100.0, 150.0, 100.0]), q=0)
    array([0. , 0. , 0.5, 0. ])
    >>> dff(np.array([[1.0, 2.0], [-1.0, 1.0]]), q=0, nonpositive="nan")
    array([[ 0.,  1.],
           [nan, nan]])
    >>> f = 100 + 10 * (np.arange(200) % 50 == 0)
    >>> out = dff(f, method="maximin", window=20, sigma=0, full_output=True)
    >>> float(out.dff.max()), float(out.f0.min()), float(out.noise)
    (0.1, 100.0, 0.0)
    """
    choice("nonpositive", nonpositive, ("raise", "nan"))
    opts = Baseline(method, q, window, sigma, noise_window)
    rate = _frame_rate(frame_rate)

    def fn(x: np.ndarray, ax: int) -> tuple[np.ndarray, ...]:
        f0, floor = _baseline(x, ax, opts, rate)
        denom = f0 if floor is None else np.maximum(f0, np.expand_dims(floor, ax))
        bad = ~(denom > 0)  # NaN too
        if bad.any():
            if nonpositive == "raise":
                raise BaselineError(_nonpositive_message(x, ax, denom, bad, opts))
            denom = np.where(bad, 1.0, denom)
        out = x - f0
        out /= denom
        if bad.any():
            out[np.broadcast_to(bad, out.shape)] = np.nan
        if not full_output:
            return (out,)
        return out, f0, _noise_level(x, ax)

    res = _apply(trace, axis, fn, outputs=3 if full_output else 1)
    return Dff(*res) if full_output else res


def _nonpositive_message(
    x: np.ndarray, axis: int, denom: np.ndarray, bad: np.ndarray, opts: Baseline
) -> str:
    low = float(np.nanmin(np.where(bad, denom, np.inf))) if not np.isnan(denom).all() else None
    worst = "" if low is None or math.isinf(low) else f" (lowest {low:.4g})"
    if x.ndim == 1:
        where = "the trace"
    else:
        rows = np.flatnonzero(_rows(np.broadcast_to(bad, x.shape), axis).any(axis=1))
        listed = ", ".join(map(str, rows[:10])) + (", ..." if rows.size > 10 else "")
        where = f"{rows.size} of {_rows(x, axis).shape[0]} traces (index {listed})"
    return (
        f"the baseline F0 ({opts.describe()}) is <= 0 for {where}{worst}, so dF/F0 is "
        "undefined; neuropil subtraction can do this: lower neuropil_factor, normalise F "
        "instead, use zscore(), or pass nonpositive='nan' for NaN there"
    )


def zscore(trace: Any, *, axis: int = -1) -> Any:
    """Z-score: ``(F - mean) / std`` over time (population std, ddof=0).

    Examples
    --------
    >>> import numpy as np
    >>> zscore(np.array([1.0, 2.0, 3.0])).round(4)
    array([-1.2247,  0.    ,  1.2247])
    """

    def fn(x: np.ndarray, ax: int) -> np.ndarray:
        sd = np.std(x, axis=ax, keepdims=True)
        if np.any(sd == 0):
            raise BaselineError("a trace is constant (std 0): it has no z-score")
        return (x - np.mean(x, axis=ax, keepdims=True)) / sd

    return _apply(trace, axis, fn)


def minmax(trace: Any, *, axis: int = -1) -> Any:
    """Scale each trace to [0, 1]: ``(F - min) / (max - min)``.

    Examples
    --------
    >>> import numpy as np
    >>> minmax(np.array([2.0, 4.0, 3.0]))
    array([0. , 1. , 0.5])
    """

    def fn(x: np.ndarray, ax: int) -> np.ndarray:
        lo = np.min(x, axis=ax, keepdims=True)
        span = np.max(x, axis=ax, keepdims=True) - lo
        if np.any(span == 0):
            raise BaselineError("a trace is constant (max = min): it cannot be scaled to [0, 1]")
        return (x - lo) / span

    return _apply(trace, axis, fn)


def _apply(
    trace: Any,
    axis: int,
    fn: Callable[[np.ndarray, int], Any],
    *,
    outputs: int = 0,
    reduce: bool = False,
) -> Any:
    """``fn`` on the trace as float64; a DataArray in, DataArrays out.

    ``outputs=0``: ``fn`` gives one array; else a tuple of ``outputs`` arrays, the
    last one (when ``outputs == 3``) without the time axis. ``reduce``: the one
    array has no time axis.
    """
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        xr = None
    if xr is not None and isinstance(trace, xr.DataArray):
        if "time" not in trace.dims:
            raise ParameterError(f"the DataArray has dims {trace.dims}; it needs a 'time' dim")
        x = _checked(trace.values, trace.get_axis_num("time"))
        res = fn(x, trace.get_axis_num("time"))
        full = lambda a: trace.copy(data=np.broadcast_to(a, trace.shape).copy())  # noqa: E731
        reduced = lambda a: trace.isel(time=0, drop=True).copy(data=np.asarray(a))  # noqa: E731
        if outputs == 0:
            return reduced(res) if reduce else full(res)
        # the third output (the noise) has no time axis: never broadcast it over time
        parts = [reduced(a) if i == 2 else full(a) for i, a in enumerate(res)]
        return parts[0] if outputs == 1 else tuple(parts)
    x = _checked(trace, axis)
    res = fn(x, axis)
    if outputs == 1:
        return res[0]
    return res


def _checked(trace: Any, axis: int) -> np.ndarray:
    x = np.asarray(trace, dtype=np.float64)
    if x.ndim == 0 or x.shape[axis] < 2:
        raise ParameterError(f"a trace needs at least 2 time points, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError(
            "the trace holds NaN or infinite values: fill or cut them (e.g. interpolate "
            "over NaN frames) before computing a baseline"
        )
    return x
