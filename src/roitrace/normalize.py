"""Normalisation: dF/F0, z-scores and min-max scaling, for comparing traces.

Each function takes a 1-D trace, a (roi, time) array (time on the last axis, or
``axis=``), or an xarray DataArray with a ``time`` dimension (returned as a
DataArray with the same coordinates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._parallel import by_rows
from ._validate import choice
from ._warnings import renamed_keywords
from .errors import BaselineError, ParameterError
from .options import BASELINE_METHODS

__all__ = ["baseline", "dff", "minmax", "zscore"]


def baseline(
    trace: Any,
    *,
    method: str = "percentile",
    q: float = 8.0,
    window: int | None = None,
    axis: int = -1,
) -> Any:
    """F0, the resting fluorescence: a low percentile of the trace.

    Parameters
    ----------
    trace : (..., T) array_like or xarray.DataArray
    method : {"percentile"}
        The baseline is the ``q``-th percentile.
    q : float
        Percentile, 0 to 100 (8 by default: low enough to skip transients).
    window : int, optional
        Frames in a sliding window (centred; edges use the nearest frames); the
        baseline then follows slow drifts such as bleaching. Default: one value
        over the whole trace.
    axis : int
        The time axis of an ndarray.

    Returns
    -------
    f0 : ndarray or DataArray, broadcastable against ``trace``

    Examples
    --------
    >>> import numpy as np
    >>> float(baseline(np.arange(101.0), q=10)[0])
    10.0
    """
    return _apply(trace, axis, lambda x, ax: _baseline(x, ax, method, q, window))


def _baseline(x: np.ndarray, axis: int, method: str, q: float, window: int | None):
    choice("method", method, BASELINE_METHODS)
    if not 0 <= q <= 100:
        raise ParameterError(f"q={q}: a percentile is between 0 and 100")
    if window is None:
        if x.ndim == 2 and axis in (1, -1):  # many traces: row blocks in threads
            return by_rows(lambda rows: np.percentile(rows, q, axis=1, keepdims=True), x)
        return np.percentile(x, q, axis=axis, keepdims=True)
    from scipy.ndimage import percentile_filter

    n = x.shape[axis]
    if int(window) != window or not 1 <= window <= n:
        raise ParameterError(f"window={window}: use a whole number of frames from 1 to {n}")
    size = [1] * x.ndim
    size[axis] = int(window)
    return percentile_filter(np.asarray(x, np.float64), q, size=size, mode="nearest")


@renamed_keywords(baseline="method")
def dff(
    trace: Any,
    *,
    method: str = "percentile",
    q: float = 8.0,
    window: int | None = None,
    axis: int = -1,
    nonpositive: str = "raise",
) -> Any:
    """dF/F0: the change of fluorescence relative to its baseline, ``(F - F0) / F0``.

    Parameters
    ----------
    trace : (..., T) array_like or xarray.DataArray
        Fluorescence, e.g. ``extract(...)["F_corrected"]``.
    method : {"percentile"}
        F0 is the ``q``-th percentile of the trace (see :func:`roitrace.baseline`).
    q : float
        The percentile for F0 (default 8).
    window : int, optional
        Sliding window in frames for a running F0 (default: the whole trace).
    axis : int
        The time axis of an ndarray.
    nonpositive : {"raise", "nan"}
        Where F0 is zero or negative, dF/F0 is meaningless: raise
        :class:`BaselineError` (default), or give NaN there (what :func:`extract`
        does, with a warning that lists the ROIs).

    Returns
    -------
    dff : ndarray or DataArray, same shape as ``trace``

    Raises
    ------
    BaselineError
        When F0 is zero or negative for any trace (e.g. after a strong neuropil
        subtraction) and ``nonpositive="raise"``. Add an offset or use
        :func:`zscore`.

    Examples
    --------
    >>> import numpy as np
    >>> dff(np.array([100.0, 100.0, 150.0, 100.0]), q=0)
    array([0. , 0. , 0.5, 0. ])
    >>> dff(np.array([[1.0, 2.0], [-1.0, 1.0]]), q=0, nonpositive="nan")
    array([[ 0.,  1.],
           [nan, nan]])
    """
    choice("nonpositive", nonpositive, ("raise", "nan"))

    def fn(x: np.ndarray, ax: int) -> np.ndarray:
        f0 = _baseline(x, ax, method, q, window)
        bad = ~(f0 > 0)  # NaN too
        if nonpositive == "raise" and bad.any():
            raise BaselineError(
                f"the baseline F0 ({q}th percentile) is {float(np.min(f0)):.4g} <= 0 for some "
                "trace, so dF/F0 is undefined; neuropil subtraction can do this: lower "
                "neuropil_factor, normalise F instead, or use zscore()"
            )
        out = x - f0
        with np.errstate(divide="ignore", invalid="ignore"):
            out /= np.where(bad, 1.0, f0)
        if bad.any():
            out[np.broadcast_to(bad, out.shape)] = np.nan
        return out

    return _apply(trace, axis, fn)


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


def _apply(trace: Any, axis: int, fn: Callable[[np.ndarray, int], np.ndarray]) -> Any:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        xr = None
    if xr is not None and isinstance(trace, xr.DataArray):
        if "time" not in trace.dims:
            raise ParameterError(f"the DataArray has dims {trace.dims}; it needs a 'time' dim")
        out = fn(np.asarray(trace.values, np.float64), trace.get_axis_num("time"))
        return trace.copy(data=np.broadcast_to(out, trace.shape).copy())
    x = np.asarray(trace, dtype=np.float64)
    if x.ndim == 0 or x.shape[axis] < 2:
        raise ParameterError(f"a trace needs at least 2 time points, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError("the trace holds NaN or infinite values")
    return fn(x, axis)
