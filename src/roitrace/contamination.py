"""The neuropil coefficient r of ``F - r * Fneu``, estimated for each ROI.

A cell's trace ``F`` holds the out-of-focus neuropil under it, which a ring
around the cell samples as ``Fneu``; ``F - r * Fneu`` removes it when ``r`` is
right. The usual fixed ``r = 0.7`` suits some preparations and not others; the
methods here estimate ``r`` from the traces themselves.

``"smoothness"``
    The method the Allen Brain Observatory was processed with (de Vries et al.
    2020, Nature Neuroscience 23:138, Methods, "Neuropil subtraction"; the code
    is AllenSDK's ``allensdk/brain_observatory/r_neuropil.py``, which
    ophys_etl_pipelines' ``neuropil_correction`` copies). The trace is cut into
    4 folds of ``T // 4`` frames (the last ``T % 4`` frames are unused); on
    each fold F_C minimises ``|F_C - (F - r Fneu)|^2 + lam |D F_C|^2`` (D the
    first difference, ``lam = 0.05``) and the fold's error is ``RMS(F_C - (F -
    r Fneu)) / mean(F)``, with F the fold's raw trace. (An earlier version of
    r_neuropil.py first rescaled each fold so that Fneu spans [0, 1], its
    ``normalize_F``, since commented out: ``fold_normalization=True``.) ``r``
    minimises the mean error of the folds on AllenSDK's grid: ``np.arange(0, 2,
    0.1)``, then ``0.01`` and ``0.001`` steps between the neighbours of the
    best value, the range moving up whenever the best value is its last one.
    Here each fold's squared error is the quadratic ``(aa - 2 r ab + r^2
    bb) / n`` of ``a = F - M^-1 F`` and ``b = Fneu - M^-1 Fneu``
    (``M = I + lam D'D``): two banded solves per fold for all ROIs at once, then
    the same grid search on the closed form. r is the same as AllenSDK's to its
    0.001 step (only exact ties between grid values, equal to rounding, could
    go either way).

    What it measures: ``I - M^-1`` keeps only the fastest fluctuations (near
    the frame rate), so r is the one that makes ``F - r Fneu`` smoothest
    frame to frame: the slope of F on Fneu at those frequencies, where the
    ring's own shot noise is a large part of Fneu. Like any slope on a noisy
    regressor it is pulled towards 0: on the simulator (benchmark
    ``benchmarks/neuropil_coefficient.py``) it is 0.3-0.7 below the truth in
    every condition, while given the true neuropil instead of the ring it
    recovers the truth (median error +0.01 to +0.07).

``"regression"``
    A robust slope of F on Fneu over the frames where the cell is quiet, after
    the idea of Dipoppa et al. 2018 (Neuron 98:602): while the cell is silent
    its trace follows the neuropil with slope r. Both traces lose their slow
    trend first (bleaching would otherwise pass for neuropil): the baseline of
    each is a piecewise-linear curve through the ``q``-th percentile of
    consecutive blocks of ``window`` frames. Both are then smoothed over
    ``smooth`` frames (a moving average), which leaves the slope as it is but
    averages away the ring's shot noise, which would bias a slope of F on Fneu
    towards 0. A frame is quiet when ``F - r Fneu`` (both detrended) is below
    its ``q``-th percentile plus ``n_sigma`` noise sigmas, sigma being
    ``(median - q-th percentile) / z_q`` of that trace (the
    spread of its lower part, which the cell's activity barely reaches; ``z_q``
    the normal quantile). r starts from the least-squares slope over all
    frames and is refitted (Huber weights on the quiet frames, then a new quiet
    set) until it changes by less than 1e-4, at most 30 times.

``"estimate"``
    The method the benchmark chose, :data:`ESTIMATE_METHOD` (``"regression"``).
    On simulated fields (80 cells, contamination drawn from 0.3-1.0, bleaching
    30 %, 7 noise and neuropil conditions) its median absolute error is
    0.04-0.09 and its median bias within +-0.06, against 0.31-0.67 (always
    low) for ``"smoothness"`` and 0.15-0.21 for a fixed 0.7. On the real
    Thunder recording (no truth known; 500 frames, ROIs of 5-8 pixels) it
    finds r > 1 (unconverged, so filled) for 7 of 12 ROIs where
    ``"smoothness"`` finds 0.16-0.65: check the ``converged`` field of
    ``full_output=True`` on your own data.

Whatever the method, an r outside [0, 1] (or undefined) has not converged: as in
the Allen pipeline (ophys_etl_pipelines' ``fill_unconverged_r``) it is replaced
by the mean r of the converged ROIs with r in (0, 1] when there are at least 5
of them, else by 0.7, and a warning names the ROIs filled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import Any

import numpy as np

from ._kernels import _numba_module
from ._validate import choice, integer, number
from ._warnings import warn_user
from .errors import NonFiniteError, ParameterError, ShapeMismatchError

log = logging.getLogger(__name__)

__all__ = [
    "ESTIMATE_METHOD",
    "NEUROPIL_FACTOR_METHODS",
    "NeuropilCoefficient",
    "fill_value",
    "neuropil_coefficient",
]

#: The methods :func:`neuropil_coefficient` accepts.
NEUROPIL_FACTOR_METHODS = ("estimate", "smoothness", "regression")

#: The method behind ``method="estimate"``; chosen on the simulator's truth
#: (``benchmarks/neuropil_coefficient.py``): it recovers the contamination in
#: every noise and neuropil condition (median absolute error 0.04-0.09), and
#: "smoothness" does not (0.31-0.67, always low).
ESTIMATE_METHOD = "regression"

#: AllenSDK's defaults.
_FOLDS = 4
_LAMBDA = 0.05
_R_RANGE = (0.0, 2.0)
_DR = 0.1
_DR_FACTOR = 0.1
_ITERATIONS = 3
#: Past this many upward moves of the search range (r beyond ~1900) the search
#: stops: the ROI is far from converged and will be filled anyway.
_MAX_EXTENSIONS = 1000

#: The fill rule of the Allen pipeline.
_CONVERGED_MAX = 1.0
_FILL_VALUE = 0.7
_FILL_MIN_ROIS = 5

_REGRESSION_ITERATIONS = 30
_HUBER_K = 1.345
#: Bytes of float64 work arrays the banded solves may hold at once.
_CHUNK_BYTES = 64 << 20
#: The regression's quiet level and noise come from at most this many frames.
_LEVEL_FRAMES = 8192


@dataclass(frozen=True, eq=False)
class NeuropilCoefficient:
    """Everything :func:`neuropil_coefficient` found, with ``full_output=True``.

    Attributes
    ----------
    r : numpy.ndarray of float64, shape (roi,) or ()
        The coefficient to use, unconverged ROIs filled.
    raw : numpy.ndarray of float64, shape (roi,) or ()
        The method's own value before filling (NaN where undefined).
    converged : numpy.ndarray of bool, shape (roi,) or ()
        ``raw`` is finite and within [0, 1].
    filled : numpy.ndarray of bool, shape (roi,) or ()
        ``r`` was filled in (``~converged``; all False with ``fill=False``).
    method : str
        The method that ran (``"estimate"`` resolved to its method).
    """

    r: np.ndarray
    raw: np.ndarray
    converged: np.ndarray
    filled: np.ndarray
    method: str


def neuropil_coefficient(
    F: Any,
    Fneu: Any,
    *,
    method: str = "smoothness",
    fill: bool = True,
    full_output: bool = False,
    lam: float | None = None,
    fold_normalization: bool | None = None,
    window: int | None = None,
    q: float | None = None,
    n_sigma: float | None = None,
    smooth: int | None = None,
) -> np.ndarray | NeuropilCoefficient:
    """Estimate each ROI's neuropil coefficient r (``F_corrected = F - r * Fneu``).

    Parameters
    ----------
    F, Fneu : array_like, shape (roi, time) or (time,)
        Cell and neuropil-ring traces, in the same (raw, not dF/F) units; an
        xarray DataArray with a ``time`` dimension is taken along it.
    method : {"smoothness", "regression", "estimate"}
        ``"smoothness"``: the Allen Brain Observatory's method, exactly;
        ``"regression"``: robust slope over the quiet frames; ``"estimate"``:
        the method the benchmark chose (:data:`ESTIMATE_METHOD`). See
        :mod:`roitrace.contamination`.
    fill : bool
        Replace unconverged r (outside [0, 1], or undefined) by the mean of the
        converged ones in (0, 1] when there are at least 5, else by 0.7, with a
        warning naming them (default). False returns them as found.
    full_output : bool
        Return a :class:`NeuropilCoefficient` (r before and after filling,
        which converged) instead of r alone.
    lam : float, optional
        ``"smoothness"`` only: weight of the smoothness penalty (> 0; 0.05 as
        published). Each method's options are an error with the other method.
    fold_normalization : bool, optional
        ``"smoothness"`` only: rescale each fold so that Fneu spans [0, 1]
        before the error is measured, as an earlier AllenSDK ``r_neuropil.py``
        did; the default (False) measures it on the raw traces, as AllenSDK's
        current code and ophys_etl_pipelines do.
    window : int, optional
        ``"regression"`` only: frames per block of the running baseline
        (>= 3, at most T); default 900 frames or ``T // 4`` when shorter.
    q : float, optional
        ``"regression"`` only: the baseline's percentile, in (0, 100); default 10.
    n_sigma : float, optional
        ``"regression"`` only: a frame is quiet up to this many noise sigmas
        above the baseline (> 0); default 2.
    smooth : int, optional
        ``"regression"`` only (default 5): width in frames of the moving average applied to
        both traces before the fit (>= 1; 1 leaves them as they are).

    Returns
    -------
    r : numpy.ndarray of float64, shape (roi,) or ()
        One coefficient per ROI (a 0-d array for 1-D traces); a
        :class:`NeuropilCoefficient` with ``full_output=True``.

    Raises
    ------
    ParameterError
        An unknown method, an option out of range, ``window`` longer than the
        traces.
    ShapeMismatchError
        F and Fneu differ in shape, or are not 1-D or 2-D, or are too short
        (fewer than 8 frames: 4 folds of 2).
    NonFiniteError
        A trace holds NaN or infinity.

    Warns
    -----
    UserWarning
        When ROIs were filled, naming them.

    Notes
    -----
    Constant traces: a constant F holds no neuropil and gets r = 0; a constant
    Fneu (for ``"smoothness"``: constant on every fold, or on any fold with
    ``fold_normalization=True``) cannot tell one r from another: its raw r is
    NaN, it has not converged, and is filled (and named in the warning) like
    the other unconverged ROIs.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> neu = 100 + np.cumsum(rng.normal(0, 1, 2000))
    >>> cell = 50 + 0.6 * neu + rng.normal(0, 0.5, 2000)
    >>> round(float(neuropil_coefficient(cell, neu, method="smoothness")), 2)
    0.59
    >>> round(float(neuropil_coefficient(cell, neu, method="regression")), 2)
    0.6
    """
    method = choice("method", method, NEUROPIL_FACTOR_METHODS)
    resolved = ESTIMATE_METHOD if method == "estimate" else method
    options = {
        "smoothness": {"lam": lam, "fold_normalization": fold_normalization},
        "regression": {"window": window, "q": q, "n_sigma": n_sigma, "smooth": smooth},
    }
    wrong = [
        k for m, kw in options.items() if m != resolved for k, v in kw.items() if v is not None
    ]
    if wrong:
        raise ParameterError(
            f"{', '.join(f'{k}=' for k in wrong)} {'is' if len(wrong) == 1 else 'are'} for "
            f"another method than method={method!r} ({resolved}): leave "
            f"{'it' if len(wrong) == 1 else 'them'} out"
        )
    lam = _LAMBDA if lam is None else lam
    q = 10.0 if q is None else q
    n_sigma = 2.0 if n_sigma is None else n_sigma
    smooth = 5 if smooth is None else smooth
    f, n, one = _traces(F, Fneu)
    if resolved == "smoothness":
        lam = number("lam", lam, low=0.0, low_open=True)
        raw = _smoothness(f, n, lam=lam, normalize=bool(fold_normalization))
    else:
        t = f.shape[1]
        if window is None:
            window = max(3, min(900, t // 4))
        window = integer("window", window, low=3)
        if window > t:
            raise ParameterError(
                f"window={window} frames is longer than the traces ({t} frames); "
                "give a window of at most the number of frames"
            )
        q = number("q", q, low=0.0, high=100.0, low_open=True, high_open=True)
        n_sigma = number("n_sigma", n_sigma, low=0.0, low_open=True)
        smooth = integer("smooth", smooth, low=1)
        raw = _regression(f, n, window=window, q=q, n_sigma=n_sigma, smooth=smooth)
    converged = np.isfinite(raw) & (raw >= 0.0) & (raw <= _CONVERGED_MAX)
    r = raw.copy()
    filled = np.zeros_like(converged)
    if fill and not converged.all():
        filled = ~converged
        r[filled] = fill_value(raw)
        ids = np.flatnonzero(filled)
        shown = ", ".join(str(i) for i in ids[:20]) + (", ..." if ids.size > 20 else "")
        warn_user(
            f"neuropil_coefficient(method={method!r}): {ids.size} of {raw.size} ROIs did not "
            f"converge (r outside [0, 1] or undefined) and took r = {r[filled][0]:.3f} "
            f"(ROI index {shown}); full_output=True gives their raw values"
        )
    if one:
        r, raw, converged, filled = (a.reshape(()) for a in (r, raw, converged, filled))
    if full_output:
        return NeuropilCoefficient(r, raw, converged, filled, resolved)
    return r


def fill_value(raw: Any) -> float:
    """The r given to unconverged ROIs: the mean of the ``raw`` values in (0, 1]
    when there are at least 5 of them, else 0.7 (the Allen pipeline's rule).

    Examples
    --------
    >>> fill_value([0.2, 0.4, 1.5])
    0.7
    >>> fill_value([0.2, 0.4, 0.6, 0.8, 1.0, 1.5])
    0.6
    """
    raw = np.asarray(raw, np.float64)
    good = raw[np.isfinite(raw) & (raw > 0.0) & (raw <= _CONVERGED_MAX)]
    return float(good.mean()) if good.size >= _FILL_MIN_ROIS else _FILL_VALUE


# -- input --------------------------------------------------------------------------------------


def _traces(F: Any, Fneu: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both traces as float64 (roi, time); whether they were 1-D."""
    arrays = []
    for name, x in (("F", F), ("Fneu", Fneu)):
        dims = getattr(x, "dims", None)
        if dims is not None and "time" in dims and dims[-1] != "time":
            x = x.transpose(..., "time")
        a = np.asarray(x, dtype=np.float64)
        if a.ndim not in (1, 2):
            raise ShapeMismatchError(
                f"{name} must be (roi, time) or (time,), got shape {a.shape}; give one row per ROI"
            )
        arrays.append(a)
    f, n = arrays
    if f.shape != n.shape:
        raise ShapeMismatchError(
            f"F and Fneu must have the same shape, got {f.shape} and {n.shape}; "
            "give each ROI's ring trace beside its cell trace"
        )
    one = f.ndim == 1
    f, n = np.atleast_2d(f), np.atleast_2d(n)
    if f.shape[1] < 2 * _FOLDS:
        raise ShapeMismatchError(
            f"the traces have {f.shape[1]} frames; estimating r needs at least "
            f"{2 * _FOLDS} ({_FOLDS} folds of 2 frames)"
        )
    for name, a in (("F", f), ("Fneu", n)):
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise NonFiniteError(
                f"{name} holds NaN or infinite values (ROI index {rows[:10].tolist()}); "
                "drop those ROIs or frames, or fill the gaps, before estimating r"
            )
    return f, n, one


# -- smoothness (de Vries et al. 2020) ------------------------------------------------------------


def smoothing_banded(n: int, lam: float = _LAMBDA) -> np.ndarray:
    """``M = I + lam D'D`` (D the first difference) in ``solve_banded((1, 1), ...)`` form."""
    ab = np.zeros((3, n))
    ab[1] = 1.0 + 2.0 * lam
    ab[1, [0, -1]] = 1.0 + lam
    if n == 1:
        ab[1, 0] = 1.0
    ab[0, 1:] = -lam
    ab[2, :-1] = -lam
    return ab


def fold_quadratics(
    f: np.ndarray, n: np.ndarray, *, lam: float = _LAMBDA, folds: int = _FOLDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per fold and ROI, ``aa``, ``ab``, ``bb`` (each (folds, roi)) and the fold length.

    The fold's mean squared error at r is ``(aa - 2 r ab + r^2 bb) / length``.
    """
    from scipy.linalg import solve_banded

    n_roi, t = f.shape
    length = t // folds
    ab_matrix = smoothing_banded(length, lam)
    out = np.zeros((3, folds, n_roi))
    step = max(1, _CHUNK_BYTES // (8 * 4 * length))
    for i in range(folds):
        cut = slice(i * length, (i + 1) * length)
        for r0 in range(0, n_roi, step):
            rows = slice(r0, min(r0 + step, n_roi))
            # (length, rois) Fortran-ordered: the layout LAPACK's gtsv wants
            fb = np.asfortranarray(f[rows, cut].T)
            nb = np.asfortranarray(n[rows, cut].T)
            both = np.concatenate([fb, nb], axis=1)
            smooth = solve_banded((1, 1), ab_matrix, both, overwrite_b=False, check_finite=False)
            resid = both - smooth
            a, b = resid[:, : fb.shape[1]], resid[:, fb.shape[1] :]
            out[0, i, rows] = np.einsum("ij,ij->j", a, a)
            out[1, i, rows] = np.einsum("ij,ij->j", a, b)
            out[2, i, rows] = np.einsum("ij,ij->j", b, b)
    return out[0], out[1], out[2], length


def _smoothness(f: np.ndarray, n: np.ndarray, *, lam: float, normalize: bool) -> np.ndarray:
    aa, ab, bb, length = fold_quadratics(f, n, lam=lam)
    cuts = [slice(i * length, (i + 1) * length) for i in range(_FOLDS)]
    mean_f = np.stack([f[:, c].mean(axis=1) for c in cuts])
    lo = np.stack([n[:, c].min(axis=1) for c in cuts])
    flat = lo == np.stack([n[:, c].max(axis=1) for c in cuts])
    # a constant Fneu has no fast part: keep rounding from making one up
    ab[flat] = 0.0
    bb[flat] = 0.0
    if normalize:
        # The early AllenSDK rescaled each fold by Fneu's range and minimum: the
        # residual scales by 1/range (the offset is smooth and drops out), and so
        # does mean(F) - min(Fneu); the range cancels. A flat fold divides by 0.
        denom = np.abs(mean_f - lo)
        undefined = flat.any(axis=0)
    else:
        denom = np.abs(mean_f)
        undefined = flat.all(axis=0)
    undefined |= (denom == 0.0).any(axis=0)
    raw = np.full(f.shape[0], np.nan)
    for k in np.flatnonzero(~undefined):
        raw[k] = allen_search(_fold_error(aa[:, k], ab[:, k], bb[:, k], length, denom[:, k]))
    return raw


def _fold_error(aa, ab, bb, length, denom):
    """Mean over folds of ``sqrt(mean squared residual) / |denominator|``, as a function of r."""
    aa, ab, bb = (np.asarray(x, np.float64)[:, None] for x in (aa, ab, bb))
    scale = (1.0 / np.asarray(denom, np.float64))[:, None]

    def error(rs: np.ndarray) -> np.ndarray:
        q = (aa - 2.0 * rs * ab + rs * rs * bb) / length
        return (np.sqrt(np.maximum(q, 0.0)) * scale).mean(axis=0)

    return error


def allen_search(error: Any) -> float:
    """AllenSDK's ``NeuropilSubtract.fit`` grid search on an error function of r.

    ``error`` maps an array of r to their errors. Grid ``np.arange(0, 2, 0.1)``;
    each pass keeps the best r and searches between its neighbours with a step
    10 times smaller (3 passes: 0.1, 0.01, 0.001), except when the best r is the
    grid's last, when the range moves up by its own length at the same step.
    """
    lo, hi = _R_RANGE
    dr = _DR
    best_err = None
    best_r = lo
    it = 0
    moves = 0
    while it < _ITERATIONS:
        rs = np.arange(lo, hi, dr)
        errs = error(rs)
        i = int(np.argmin(errs))
        if best_err is None or errs[i] < best_err:
            best_err, best_r = errs[i], rs[i]
        if i == rs.size - 1:
            moves += 1
            if moves > _MAX_EXTENSIONS:
                break
            lo, hi = rs[-1], rs[-1] + (rs[-1] - rs[0])
        else:
            lo, hi = rs[max(i - 1, 0)], rs[min(i + 1, rs.size - 1)]
            dr *= _DR_FACTOR
            it += 1
    return float(best_r)


# -- regression on quiet frames -------------------------------------------------------------------


def running_baseline(x: np.ndarray, window: int, q: float) -> np.ndarray:
    """Piecewise-linear baseline through the ``q``-th percentile of consecutive blocks
    of at least ``window`` frames (constant before the first block's centre and
    after the last's), for each row of ``x``."""
    t = x.shape[-1]
    n_blocks = max(1, t // window)
    edges = np.linspace(0, t, n_blocks + 1).round().astype(int)
    levels = np.stack(
        [np.percentile(x[..., a:b], q, axis=-1) for a, b in pairwise(edges)],
        axis=-1,
    )
    if n_blocks == 1:
        return np.repeat(levels, t, axis=-1)
    centres = (edges[:-1] + edges[1:] - 1) / 2.0
    frames = np.arange(t)
    flat = levels.reshape(-1, n_blocks)
    out = np.empty((flat.shape[0], t))
    for i, row in enumerate(flat):
        out[i] = np.interp(frames, centres, row)
    return out.reshape(x.shape)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(x, width, axis=-1, mode="nearest")


def _line(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept from the weighted sums ``(w, wx, wy, wxx, wxy)`` per row."""
    sw, sx, sy, sxx, sxy = sums.T
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / sw, sy / sw
        # x is detrended (mean near 0): the one-pass sums lose nothing to cancellation
        vxx = sxx - sx * mx
        slope = np.where(vxx > 0, (sxy - sx * my) / vxx, np.nan)
    return slope, my - slope * mx


def _weighted_sums_numpy(x, y, rows, r, c, threshold, scale) -> np.ndarray:
    """What the compiled ``weighted_sums`` computes (see _kernels/neuropil_fit.py)."""
    x, y = x[rows], y[rows]
    e = y - r[:, None] * x
    d = np.abs(e - c[:, None])
    with np.errstate(divide="ignore"):
        w = np.where(d > scale[:, None], scale[:, None] / d, 1.0)
    w *= e <= threshold[:, None]
    wx = w * x
    return np.stack(
        [
            w.sum(axis=1),
            wx.sum(axis=1),
            np.einsum("ij,ij->i", w, y),
            np.einsum("ij,ij->i", wx, x),
            np.einsum("ij,ij->i", wx, y),
        ],
        axis=1,
    )


def _weighted_sums(x, y, rows, r, c, threshold, scale) -> np.ndarray:
    if _numba_module() is None:
        return _weighted_sums_numpy(x, y, rows, r, c, threshold, scale)
    from ._kernels.neuropil_fit import weighted_sums

    return weighted_sums(x, y, rows, r, c, threshold, scale)


def _regression(
    f: np.ndarray, n: np.ndarray, *, window: int, q: float, n_sigma: float, smooth: int
) -> np.ndarray:
    out = np.empty(f.shape[0])
    # rows at a time: a few (rows, T) work arrays stay within a few _CHUNK_BYTES
    step = max(1, _CHUNK_BYTES // (8 * f.shape[1]))
    for r0 in range(0, f.shape[0], step):
        rows = slice(r0, r0 + step)
        out[rows] = _regression_rows(
            f[rows], n[rows], window=window, q=q, n_sigma=n_sigma, smooth=smooth
        )
    # rounding in the baselines would fake a slope: a constant F holds no
    # neuropil, a constant Fneu tells no r from another
    out[np.ptp(f, axis=1) == 0] = 0.0
    out[np.ptp(n, axis=1) == 0] = np.nan
    return out


def _regression_rows(
    f: np.ndarray, n: np.ndarray, *, window: int, q: float, n_sigma: float, smooth: int
) -> np.ndarray:
    y = _moving_average(f - running_baseline(f, window, q), smooth)
    x = _moving_average(n - running_baseline(n, window, q), smooth)
    # The quiet level and noise come from evenly spaced frames, at most
    # _LEVEL_FRAMES of them: percentiles of more cost time and change nothing.
    stride = -(-y.shape[1] // _LEVEL_FRAMES)
    xs, ys = x[:, ::stride], y[:, ::stride]
    # Noise below the baseline is the quiet cell's alone (activity only adds
    # fluorescence): median - q-th percentile is z_q sigmas of it.
    z = -NormalDist().inv_cdf(q / 100.0) if q < 50.0 else 1.0
    rows = np.arange(y.shape[0])
    everything = np.full(rows.size, np.inf)
    zero = np.zeros(rows.size)
    r, c = _line(_weighted_sums(x, y, rows, zero, zero, everything, everything))
    active = rows[np.isfinite(r)]
    for _ in range(_REGRESSION_ITERATIONS):
        if active.size == 0:
            break
        ra, ca = r[active], c[active]
        # both traces are detrended already: one level per ROI is its baseline
        low, mid = np.percentile(ys[active] - ra[:, None] * xs[active], [q, 50.0], axis=1)
        sigma = np.maximum((mid - low) / z, 0.0)
        # Huber weights on the quiet frames' distances from the current line
        scale = _HUBER_K * np.where(sigma > 0, sigma, 1.0)
        sums = _weighted_sums(x, y, active, ra, ca, low + n_sigma * sigma, scale)
        new, new_c = _line(sums)
        moved = ~(np.abs(new - ra) < 1e-4)  # NaN: stop too
        r[active], c[active] = new, new_c
        active = active[moved & np.isfinite(new)]
    return r
