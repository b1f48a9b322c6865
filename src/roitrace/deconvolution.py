"""Deconvolution of calcium traces into inferred spiking activity, and event detection.

:func:`deconvolve` implements OASIS (Friedrich, Zhou & Paninski 2017, PLoS Comput
Biol 13:e1005423): the calcium ``c`` follows an autoregressive model driven by
non-negative spikes ``s``, ``c_t = g_1 c_{t-1} (+ g_2 c_{t-2}) + s_t``, and the
trace is ``y_t = b + c_t + noise``. The solver is the paper's pool-adjacent-violators
algorithm, compiled and run in parallel across ROIs (see
:mod:`roitrace._kernels.oasis`). :func:`detect_events` turns spikes (or dF/F) into a
table of events.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _kernels
from ._kernels import oasis as _oasis
from ._parallel import by_rows
from ._validate import choice, number
from ._warnings import warn_user
from .errors import NonFiniteError, ParameterError, ShortTraceError
from .options import DECONVOLUTION_MODELS, DECONVOLUTION_PENALTIES

log = logging.getLogger(__name__)

__all__ = ["Deconvolution", "deconvolve", "detect_events", "estimate_ar", "estimate_noise"]

#: Fewest frames for estimating the time constant or the noise from a trace.
MIN_FRAMES = 20
#: The paper's shrinkage of estimated AR roots (the autocovariance over-estimates them).
FUDGE = 0.98


@dataclass(frozen=True)
class Deconvolution:
    """The result of :func:`deconvolve`; arrays are 1-D for one trace, (roi, ...) for many.

    Attributes
    ----------
    calcium : ndarray, (T,) or (roi, T)
        The denoised calcium ``c`` (baseline removed), in the trace's units.
    spikes : ndarray, (T,) or (roi, T)
        Inferred activity ``s_t = c_t - g_1 c_{t-1} - g_2 c_{t-2}``, never negative,
        in the trace's units (a spike of 1 raises the calcium by 1). ``spikes[..., 0]``
        is 0: the first frame's calcium is a starting value, not an inferred spike.
    baseline : float or (roi,) ndarray
        The baseline ``b``: ``trace ~ baseline + calcium``.
    g : (p,) or (roi, p) ndarray
        The AR coefficients (p = 1 for ``"ar1"``, 2 for ``"ar2"``).
    noise : float or (roi,) ndarray
        The noise standard deviation used in the constraint.
    lam : float or (roi,) ndarray
        ``penalty="l1"``: the sparsity weight that makes the constraint tight.
        ``penalty="l0"``: the smallest spike size allowed (``"ar2"``), or the l1 size
        of the smallest spike place kept (``"ar1"``).
    """

    calcium: np.ndarray
    spikes: np.ndarray
    baseline: Any
    g: np.ndarray
    noise: Any
    lam: Any


def estimate_noise(traces: Any, *, method: str = "mean") -> np.ndarray:
    """Noise standard deviation of each trace from its power spectral density.

    White noise has a flat spectrum while calcium transients are slow: the noise
    variance is the PSD averaged over 0.25 to 0.5 of the Nyquist frequency (Welch's
    method), as in Friedrich et al. 2017.

    Parameters
    ----------
    traces : (T,) or (roi, T) array_like
    method : {"mean", "median", "logmexp"}
        How the PSD is averaged over that band (``"logmexp"``: the exponential of
        the mean log, robust to a few slow components reaching it).

    Returns
    -------
    noise : float ndarray, () or (roi,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> float(estimate_noise(rng.normal(0, 2.0, 5000)).round(1))
    2.0
    """
    from scipy.signal import welch

    choice("method", method, ("mean", "median", "logmexp"))
    y = np.asarray(traces, np.float64)
    rows = np.atleast_2d(y)

    def one(block: np.ndarray) -> np.ndarray:
        ff, pxx = welch(block, nperseg=min(256, block.shape[1]), axis=-1)
        band = pxx[:, (ff > 0.25) & (ff < 0.5)] / 2.0
        if method == "mean":
            return np.sqrt(band.mean(axis=1))
        if method == "median":
            return np.sqrt(np.median(band, axis=1))
        with np.errstate(divide="ignore"):
            return np.sqrt(np.exp(np.log(band).mean(axis=1)))

    out = by_rows(one, rows, rows=64)
    return out[0] if y.ndim == 1 else out


def estimate_ar(traces: Any, *, model: str = "ar1", noise: Any = None) -> np.ndarray:
    """AR coefficients of each trace from its autocovariance (Yule-Walker).

    The autocovariance over ``p + 10`` lags, less the noise variance at lag 0, is
    fitted by least squares; roots outside (0, 1) are clipped and all are shrunk by
    2% (the paper's correction of the estimate's bias).

    Parameters
    ----------
    traces : (T,) or (roi, T) array_like
    model : {"ar1", "ar2"}
    noise : float or (roi,) array_like, optional
        Noise standard deviations (default: :func:`estimate_noise`).

    Returns
    -------
    g : (p,) or (roi, p) ndarray

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = np.zeros(5000)
    >>> s = rng.random(5000) < 0.05
    >>> for t in range(1, 5000):
    ...     c[t] = 0.9 * c[t - 1] + s[t]
    >>> float(estimate_ar(c + rng.normal(0, 0.1, 5000)).round(2)[0])
    0.88
    """
    choice("model", model, DECONVOLUTION_MODELS)
    y = np.asarray(traces, np.float64)
    rows = np.atleast_2d(y)
    p = 1 if model == "ar1" else 2
    sn = estimate_noise(rows) if noise is None else np.broadcast_to(noise, rows.shape[:1])
    out = np.stack(
        [_oasis._ar_estimate(r, p, float(n), FUDGE)[:p] for r, n in zip(rows, sn, strict=True)]
    )
    return out[0] if y.ndim == 1 else out


def deconvolve(
    traces: Any,
    *,
    frame_rate: float | None = None,
    model: str = "ar1",
    tau: float | tuple[float, float] | None = None,
    penalty: str = "l1",
    noise: float | Any = None,
    baseline: float | Any = None,
    nonfinite: str = "raise",
) -> Deconvolution:
    """Infer spiking activity from calcium traces (OASIS, Friedrich et al. 2017).

    Each trace ``y`` is modelled as ``y_t = b + c_t + noise`` with calcium
    ``c_t = g_1 c_{t-1} (+ g_2 c_{t-2}) + s_t`` driven by non-negative spikes
    ``s``. With ``penalty="l1"`` the result solves the noise-constrained problem
    ``min |s|_1`` subject to ``|y - b - c|^2 = noise^2 T`` (the sparsest activity
    that explains the trace down to its noise), the baseline ``b`` optimised jointly
    (the paper's ``optimize_b``). Traces run in parallel (compiled with numba).

    Parameters
    ----------
    traces : (T,) or (roi, T) array_like, or DataArray with a ``time`` dim
        Fluorescence traces, time last (a DataArray's ``time`` dim wherever it is):
        dF/F (what :func:`roitrace.extract` deconvolves) or raw fluorescence. Must be
        finite.
    frame_rate : float, optional
        Frames per second; needed only with ``tau``.
    model : {"ar1", "ar2"}
        ``"ar1"``: instantaneous rise, exponential decay. ``"ar2"``: a rise time too.
    tau : float or (rise, decay), optional
        Time constants in seconds (``"ar1"``: the decay; ``"ar2"``: ``(rise,
        decay)``), converted with ``frame_rate`` to ``g``. Default: estimated per
        trace from its autocovariance (see :func:`estimate_ar`).
    penalty : {"l1", "l0"}
        ``"l1"``: the convex problem above. ``"l0"``: fewer spikes with amplitudes
        not shrunk by the penalty: the l1 baseline is kept, the penalty dropped, and
        the noise constraint still met. ``"ar1"``: the l1 solution's spike places,
        largest first, the fewest of them that meet the constraint (greedy);
        ``"ar2"``: every spike either 0 or at least ``s_min``, the largest ``s_min``
        that meets it (thresholded OASIS). A local, not global, optimum.
    noise : float or (roi,) array_like, optional
        Noise standard deviations. Default: estimated from the power spectral
        density (see :func:`estimate_noise`).
    baseline : float or (roi,) array_like, optional
        A known baseline ``b`` (e.g. 0 for dF/F). Default: optimised jointly.
    nonfinite : {"raise", "nan"}
        Traces holding NaN or infinity: raise :class:`NonFiniteError` (default),
        or give NaN for all their outputs, with a warning naming them (for dF/F
        that is NaN where F0 was not positive).

    Returns
    -------
    Deconvolution
        ``calcium``, ``spikes`` (same shape as ``traces``), ``baseline``, ``g``
        (``(roi, p)``), ``noise``, ``lam``.

    Raises
    ------
    NonFiniteError
        If a trace holds NaN or infinity and ``nonfinite="raise"`` (interpolate or
        drop those frames first, or pass ``nonfinite="nan"``).
    ShortTraceError
        If traces have fewer than 20 frames and ``tau`` or ``noise`` must be
        estimated (fewer than 3 frames in any case).
    ParameterError
        For an unknown model or penalty, ``tau`` without ``frame_rate``, ``tau``
        not matching the model, or a negative noise.

    Warns
    -----
    UserWarning
        For constant traces (nothing to deconvolve: their calcium and spikes are
        0, their baseline the constant, their g NaN); the warning names them.

    Notes
    -----
    Spikes are in the units of the trace (for dF/F: the jump of dF/F one spike
    causes), placed at the frame where the calcium rises. The l1 penalty shrinks
    the fit, so the estimated baseline sits a little above the true one when cells
    are active most of the time. ``"ar2"`` starts from the paper's greedy pool
    merging (about 0.5% above the l1 optimum) and finishes with an exact
    active-set refinement. The first call on a
    machine compiles the kernels (about a minute; cached on disk afterwards).
    Without numba (or with ``ROITRACE_NUMBA=0``) the same functions run as
    Python: the same results, about a hundred times slower.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> s = (rng.random((3, 2000)) < 0.02).astype(float)
    >>> c = np.zeros_like(s)
    >>> for t in range(1, 2000):
    ...     c[:, t] = 0.95 * c[:, t - 1] + s[:, t]
    >>> d = deconvolve(c + rng.normal(0, 0.2, c.shape) + 1.0)
    >>> d.spikes.shape, d.g.shape
    ((3, 2000), (3, 1))
    >>> bool((d.spikes >= 0).all()), bool(np.corrcoef(d.spikes[0], s[0])[0, 1] > 0.8)
    (True, True)
    """
    choice("model", model, DECONVOLUTION_MODELS)
    choice("penalty", penalty, DECONVOLUTION_PENALTIES)
    p = 1 if model == "ar1" else 2
    y, _ids, _times = _time_last(traces, "traces")
    if y.dtype.kind not in "biuf":
        raise ParameterError(f"traces must be a numeric array, got dtype {y.dtype}")
    if y.ndim not in (1, 2):
        raise ParameterError(f"traces must be 1-D (time) or 2-D (roi, time), got shape {y.shape}")
    one = y.ndim == 1
    rows = np.ascontiguousarray(np.atleast_2d(y), np.float64)
    n, total = rows.shape
    choice("nonfinite", nonfinite, ("raise", "nan"))
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        which = _list(np.flatnonzero(bad))
        if nonfinite == "raise":
            raise NonFiniteError(
                f"traces of ROIs {which} hold NaN or infinite values; interpolate or "
                "drop those frames before deconvolving, or pass nonfinite='nan'"
            )
        warn_user(f"traces of ROIs {which} hold NaN or infinite values: their outputs are NaN")
        rows = rows.copy()  # never write into the caller's array
        rows[bad] = 0.0
    g_given = _g_from_tau(tau, frame_rate, model)
    need = MIN_FRAMES if (g_given is None or noise is None) else 3
    if total < need:
        what = "to estimate tau and the noise" if need == MIN_FRAMES else "to deconvolve"
        raise ShortTraceError(
            f"traces have {total} frames; at least {need} are needed {what}"
            + (" (or give tau=, frame_rate= and noise=)" if need == MIN_FRAMES else "")
        )
    if noise is None:
        sn = estimate_noise(rows) if n else np.zeros(0)
    else:
        sn = _per_roi("noise", noise, n)
        if (sn < 0).any():
            raise ParameterError("noise must be >= 0 (a standard deviation)")
    fix_b = np.zeros(n, bool)
    b_fixed = np.zeros(n)
    if baseline is not None:
        fix_b[:] = True
        b_fixed[:] = _per_roi("baseline", baseline, n)
    g = np.zeros((n, 2))
    if g_given is not None:
        g[:, :p] = g_given
    # Constant traces (or zero noise) have nothing to deconvolve and would divide by 0.
    flat = ((np.ptp(rows, axis=1) == 0) & ~bad) if n else np.zeros(0, bool)
    if flat.any():
        warn_user(
            f"traces of ROIs {_list(np.flatnonzero(flat))} are constant: nothing to "
            "deconvolve; their calcium and spikes are 0, their g NaN"
        )
    zero_noise = ~flat & ~bad & (sn <= 0)
    if zero_noise.any():
        raise ParameterError(
            f"the noise of ROIs {_list(np.flatnonzero(zero_noise))} is 0; give noise= > 0"
        )
    calcium = np.zeros_like(rows)
    spikes = np.zeros_like(rows)
    b = np.where(flat, rows[:, 0] if total else 0.0, 0.0)
    lam = np.zeros(n)
    work = np.flatnonzero(~flat & ~bad)
    if work.size:
        sub = rows[work] if work.size < n else rows
        gs, cs, ss = g[work], np.zeros_like(sub), np.zeros_like(sub)
        bs, ls = np.zeros(work.size), np.zeros(work.size)
        nb = _kernels._numba_module()
        _oasis.solver(nb)(
            sub,
            p,
            gs,
            np.ascontiguousarray(sn[work], np.float64),
            g_given is None,
            0 if penalty == "l0" else 1,
            fix_b[work],
            b_fixed[work],
            FUDGE,
            cs,
            ss,
            bs,
            ls,
        )
        calcium[work], spikes[work], b[work], lam[work], g[work] = cs, ss, bs, ls, gs
    g = g[:, :p]
    g[flat] = np.nan
    if bad.any():
        sn = np.array(sn, np.float64)
        for arr in (calcium, spikes, b, lam, g, sn):
            arr[bad] = np.nan
    if one:
        return Deconvolution(calcium[0], spikes[0], float(b[0]), g[0], float(sn[0]), float(lam[0]))
    return Deconvolution(calcium, spikes, b, g, np.asarray(sn, np.float64), lam)


#: The per-ROI coordinate of a result that holds the noise its spikes were inferred with.
DECONVOLUTION_NOISE = "deconvolution_noise"


def _time_last(x: Any, name: str) -> tuple[np.ndarray, Any, Any]:
    """An array with time last; from a DataArray also its ROI ids and times (or None)."""
    if hasattr(x, "data_vars"):
        raise ParameterError(
            f"{name} is a whole Dataset: give one of its variables, e.g. ds['dff'] "
            "(or ds['spikes'] for events)"
        )
    dims = getattr(x, "dims", None)
    if dims is None or not hasattr(x, "transpose") or "time" not in dims:
        return np.asarray(x), None, None
    x = x.transpose(..., "time")
    ids = None
    if x.ndim == 2 and x.dims[0] in x.coords:
        ids = np.asarray(x.coords[x.dims[0]].values)
    times = np.asarray(x["time"].values) if "time" in x.coords else None
    return np.asarray(x.values), ids, times


def _list(idx: np.ndarray, most: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:most])
    return shown + (f" and {idx.size - most} more" if idx.size > most else "")


def _per_roi(name: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n):
        raise ParameterError(f"{name} must be one number or one per ROI ({n}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} must be finite")
    return np.broadcast_to(arr, (n,)).astype(np.float64)


def _g_from_tau(tau: Any, frame_rate: Any, model: str) -> np.ndarray | None:
    if tau is None:
        return None
    if frame_rate is None:
        raise ParameterError("tau is in seconds: give frame_rate= (frames per second) too")
    fr = number("frame_rate", frame_rate, low=0, low_open=True)
    if model == "ar1":
        if np.ndim(tau) != 0:
            raise ParameterError(f"model='ar1' takes one decay time tau, got {tau!r}")
        decay = number("tau", tau, low=0, low_open=True)
        return np.array([math.exp(-1.0 / (decay * fr))])
    if np.ndim(tau) != 1 or len(tau) != 2:
        raise ParameterError(f"model='ar2' takes tau=(rise, decay) in seconds, got {tau!r}")
    rise = number("tau[0] (rise)", tau[0], low=0, low_open=True)
    decay = number("tau[1] (decay)", tau[1], low=0, low_open=True)
    if rise >= decay:
        raise ParameterError(f"tau=(rise, decay) needs rise < decay, got {tau!r}")
    d, r = math.exp(-1.0 / (decay * fr)), math.exp(-1.0 / (rise * fr))
    return np.array([d + r, -d * r])


def detect_events(
    trace: Any,
    *,
    threshold: float = 3.0,
    refractory: int = 2,
    frame_rate: float | None = None,
    noise: float | Any = None,
    signal: str = "spikes",
) -> Any:
    """Events: frames where activity exceeds ``threshold`` times the noise.

    Parameters
    ----------
    trace : (T,) or (roi, T) array_like, or Deconvolution
        Deconvolved spikes (a :class:`Deconvolution` gives its ``spikes`` and
        ``noise``) or dF/F.
    threshold : float
        In units of the noise: a frame is part of an event when its value exceeds
        ``threshold * noise``.
    refractory : int
        Frames: runs of supra-threshold frames separated by at most this many frames
        below it are one event (0: every run is its own event).
    frame_rate : float, optional
        Frames per second, for the ``time`` column (NaN without it).
    noise : float or (roi,) array_like, optional
        The noise standard deviation per ROI. Default: the Deconvolution's; for a
        dF/F array, :func:`estimate_noise` of each row; a spike array needs it.
    signal : {"spikes", "dff"}
        What an array holds (a Deconvolution is spikes). An event's amplitude is
        its summed spikes, or its dF/F peak.

    Returns
    -------
    events : pandas.DataFrame
        One row per event: ``roi`` (row index, 0 for a 1-D trace), ``frame`` (the
        event's largest frame), ``time`` (``frame / frame_rate`` in seconds, NaN
        without ``frame_rate``) and ``amplitude`` (the event's summed spikes, or its
        peak for dF/F), sorted by roi then frame.

    Examples
    --------
    >>> s = np.zeros(50)
    >>> s[[10, 11, 30]] = [2.0, 1.0, 3.0]
    >>> detect_events(s, noise=0.3, frame_rate=10.0)
       roi  frame  time  amplitude
    0    0     10   1.0        3.0
    1    0     30   3.0        3.0
    """
    import pandas as pd

    choice("signal", signal, ("spikes", "dff"))
    is_spikes = isinstance(trace, Deconvolution) or signal == "spikes"
    ids = times = None
    if isinstance(trace, Deconvolution):
        y = np.asarray(trace.spikes, np.float64)
        if noise is None:
            noise = trace.noise
    else:
        if noise is None and is_spikes:  # extract(deconvolve=True)'s spikes carry it
            coords = getattr(trace, "coords", {})
            if DECONVOLUTION_NOISE in coords:
                noise = np.asarray(coords[DECONVOLUTION_NOISE].values, np.float64)
        y, ids, times = _time_last(trace, "trace")
        y = np.asarray(y, np.float64)
    if y.ndim not in (1, 2):
        raise ParameterError(f"trace must be 1-D or (roi, time), got shape {y.shape}")
    rows = np.atleast_2d(y)
    n, total = rows.shape
    thr = number("threshold", threshold, low=0)
    gap = refractory
    if isinstance(gap, bool) or int(gap) != gap or gap < 0:
        raise ParameterError(f"refractory={refractory!r}: use a whole number of frames >= 0")
    fr = None if frame_rate is None else number("frame_rate", frame_rate, low=0, low_open=True)
    if not np.isfinite(rows).all():
        raise NonFiniteError("trace holds NaN or infinite values; events need finite values")
    if noise is None and is_spikes:
        raise ParameterError(
            "spikes need noise= (the Deconvolution's noise), the scale of the threshold"
        )
    if noise is None:
        if total < MIN_FRAMES:
            raise ShortTraceError(
                f"trace has {total} frames; give noise= or at least {MIN_FRAMES} frames"
            )
        sn = np.atleast_1d(estimate_noise(rows))
    else:
        sn = _per_roi("noise", noise, n)
    cols: dict[str, list] = {"roi": [], "frame": [], "amplitude": []}
    for i in range(n):
        above = np.flatnonzero(rows[i] > thr * sn[i])
        if above.size == 0:
            continue
        starts = np.concatenate([[0], np.flatnonzero(np.diff(above) > int(gap) + 1) + 1])
        ends = np.append(starts[1:], above.size)
        for a, e in zip(starts, ends, strict=True):
            lo, hi = above[a], above[e - 1] + 1
            seg = rows[i, lo:hi]
            cols["roi"].append(i)
            cols["frame"].append(lo + int(np.argmax(seg)))
            cols["amplitude"].append(float(seg.sum() if is_spikes else seg.max()))
    frames = np.asarray(cols["frame"], np.int64)
    rows_of = np.asarray(cols["roi"], np.int64)
    if fr:
        time = frames / fr
    elif times is not None:  # a DataArray's own time coordinate
        time = np.asarray(times, np.float64)[frames]
    else:
        time = np.full(frames.size, np.nan)
    return pd.DataFrame(
        {
            "roi": rows_of if ids is None else np.asarray(ids)[rows_of],
            "frame": frames,
            "time": time,
            "amplitude": np.asarray(cols["amplitude"], np.float64),
        }
    )
