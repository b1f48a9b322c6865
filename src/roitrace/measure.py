"""Per-ROI statistics of traces (one number per trace), like scikit-image's
``regionprops_table`` for regions: what ``extract`` records beside the traces and
what plots and reports sort ROIs by.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._parallel import by_rows

__all__ = ["STATISTICS", "skewness", "snr", "trace_statistics"]


def snr(traces: Any) -> np.ndarray:
    """suite2p's signal-to-noise proxy of each trace: ``1 - 0.5 var(diff(x)) / var(x)``.

    Near 1 for slow signals, near 0 for white noise; 0 for a constant trace or one
    of fewer than 2 frames.

    Parameters
    ----------
    traces : (roi, time) or (time,) array_like

    Returns
    -------
    snr : (roi,) ndarray or float

    Examples
    --------
    >>> import numpy as np
    >>> float(snr(np.sin(np.linspace(0, 6, 200)))) > 0.99
    True
    """
    return _per_row(_snr_rows, traces)


def skewness(traces: Any) -> np.ndarray:
    """Skewness of each trace (``scipy.stats.skew``: biased, Fisher-Pearson); 0 for a
    constant trace or one of fewer than 3 frames. Active cells' traces are skewed
    to the right (rare large transients).

    Examples
    --------
    >>> import numpy as np
    >>> float(skewness(np.array([0.0, 0.0, 0.0, 3.0])).round(4))
    1.1547
    """
    return _per_row(_skew_rows, traces)


#: The statistics :func:`trace_statistics` computes, by name.
STATISTICS = {"snr": snr, "skewness": skewness}


def trace_statistics(traces: Any, names: tuple[str, ...] = tuple(STATISTICS)) -> dict[str, Any]:
    """Several statistics of each trace, by name (a table's columns).

    Examples
    --------
    >>> import numpy as np
    >>> sorted(trace_statistics(np.ones((2, 5))))
    ['skewness', 'snr']
    """
    return {name: STATISTICS[name](traces) for name in names}


def _per_row(fn, traces: Any) -> Any:
    x = np.asarray(traces, np.float64)
    if x.ndim == 1:
        return fn(x[None])[0]
    return by_rows(fn, x)


def _snr_rows(x: np.ndarray) -> np.ndarray:
    if x.shape[1] < 2:
        return np.zeros(x.shape[0])
    var = np.var(x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - 0.5 * np.var(np.diff(x, axis=1), axis=1) / var
    return np.where(var > 0, out, 0.0)


def _skew_rows(x: np.ndarray) -> np.ndarray:
    if x.shape[1] < 3:
        return np.zeros(x.shape[0])
    d = x - x.mean(axis=1, keepdims=True)
    d2 = d * d
    m2 = d2.mean(axis=1)
    m3 = np.einsum("ij,ij->i", d2, d) / x.shape[1]
    flat = np.ptp(x, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, 0.0, m3 / np.where(flat, 1.0, m2) ** 1.5)
