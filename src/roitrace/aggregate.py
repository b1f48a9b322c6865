"""Aggregation: combine a cell's pixel traces into one trace."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._kernels import Groups, kernels_for, reduce_into
from ._validate import choice
from ._warnings import renamed_keywords
from .errors import EmptyMaskError, ParameterError, ShapeMismatchError, WeightsError
from .options import AGGREGATION_METHODS

__all__ = ["HOWS", "GroupAggregator", "aggregate", "check_weights"]

#: Deprecated name of :data:`roitrace.options.AGGREGATION_METHODS`.
HOWS = AGGREGATION_METHODS


@renamed_keywords(how="method")
def aggregate(
    pixel_traces: Any,
    method: str = "mean",
    *,
    weights: Any = None,
    proportion: float = 0.1,
) -> np.ndarray:
    """Combine pixel traces (time x pixels) into one trace per time point.

    Parameters
    ----------
    pixel_traces : (T, P) array_like
        One column per pixel, as returned by :func:`roitrace.pixel_traces`.
    method : {"mean", "median", "weighted", "trimmed_mean"}
        ``mean``: ``np.mean(x, axis=1)``. ``median``: ``np.median(x, axis=1)``,
        robust to a few outlying pixels. ``weighted``: ``np.average(x, axis=1,
        weights=weights)``. ``trimmed_mean``: ``scipy.stats.trim_mean(x,
        proportion, axis=1)``, the mean after cutting ``proportion`` of the pixels
        from each end at every time point.
    weights : (P,) array_like, optional
        Pixel weights for ``method="weighted"`` (see :func:`roitrace.pixel_weights`).
    proportion : float
        Fraction cut from each end for ``method="trimmed_mean"``, in [0, 0.5).

    Returns
    -------
    trace : (T,) ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0, 9.0], [2.0, 3.0, 4.0]])
    >>> aggregate(x, "mean")
    array([4., 3.])
    >>> aggregate(x, "median")
    array([2., 3.])
    >>> aggregate(x, "weighted", weights=[0.5, 0.5, 0.0])
    array([1.5, 2.5])
    """
    x = np.asarray(pixel_traces)
    if x.ndim != 2:
        raise ShapeMismatchError(
            f"pixel_traces must be (time, pixels), got shape {x.shape}; "
            "use pixel_traces(movie, mask)"
        )
    if x.shape[1] == 0:
        raise EmptyMaskError("there are no pixel traces to combine (the mask holds no pixel)")
    choice("method", method, AGGREGATION_METHODS)
    if x.dtype.kind == "f" and x.dtype.itemsize < 8:
        x = x.astype(np.float64)  # float64 accumulation, as the engine's kernels
    if method == "mean":
        return np.mean(x, axis=1)
    if method == "median":
        return np.median(x, axis=1)
    if method == "weighted":
        if weights is None:
            raise ParameterError(
                "method='weighted' needs weights=, e.g. pixel_weights(movie, mask)"
            )
        w = check_weights(weights, x.shape[1])
        return np.average(x, axis=1, weights=w)
    check_proportion(proportion)
    from scipy.stats import trim_mean

    return trim_mean(x, proportion, axis=1)


def check_proportion(proportion: float) -> None:
    if not 0 <= proportion < 0.5:
        raise ParameterError(
            f"proportion={proportion} is outside [0, 0.5): it is the fraction cut from EACH "
            "end, so 0.1 keeps the middle 80% of pixels"
        )


def check_weights(weights: Any, n_pixels: int) -> np.ndarray:
    """Check pixel weights: one finite value per pixel, not summing to zero."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_pixels,):
        raise ShapeMismatchError(
            f"weights have shape {w.shape} but there are {n_pixels} pixels; give one weight "
            "per pixel, in np.where(mask) order"
        )
    if not np.all(np.isfinite(w)):
        raise WeightsError("weights contain NaN or infinite values")
    total = w.sum()
    if total == 0 or not np.isfinite(total):
        raise WeightsError(
            f"weights sum to {total:g}, so the weighted mean is undefined; for brightness "
            "weights this means the pixels' mean fluorescence is 0: use method='mean'"
        )
    return w


class GroupAggregator:
    """Engine consumer: one trace per pixel group (cells and their neuropil rings).

    All groups are reduced from each chunk in one compiled pass
    (:func:`roitrace._kernels.reduce_groups`), each by its own method, with the same
    numbers as :func:`aggregate` on each group's pixel traces.

    Parameters
    ----------
    flats : list of (P_g,) int arrays, or Groups
        Flat pixel indices (``y * X + x``) of each group, or the groups built
        already (then ``methods``, ``weights`` and ``proportion`` are not used).
    methods : list of str
        One of :data:`roitrace.options.AGGREGATION_METHODS` per group.
    n_frames : int
        Frames the engine will feed.
    weights : list of (P_g,) arrays or None, optional
        Pixel weights of the ``"weighted"`` groups.
    proportion : float
        For ``"trimmed_mean"`` groups.
    """

    def __init__(
        self,
        flats: list[np.ndarray] | Groups,
        methods: list[str] | None,
        n_frames: int,
        *,
        weights: list[np.ndarray | None] | None = None,
        proportion: float = 0.1,
    ) -> None:
        if isinstance(flats, Groups):  # built already (an ExtractionPlan keeps its own)
            self.groups = flats
        else:
            for m in methods or ():
                choice("method", m, AGGREGATION_METHODS)
            self.groups = Groups(flats, methods or [], weights, proportion)
        # (groups, frames), each chunk written into its columns: no copy at the end
        self.out = np.empty((len(self.groups), n_frames), np.float64)

    def kernels(self, dtype: np.dtype) -> tuple[str, ...]:
        """The compiled kernels the updates run on pixels of ``dtype``."""
        return kernels_for(self.groups, np.dtype(dtype))

    def update(self, offset: int, block: np.ndarray) -> None:
        reduce_into(block, self.groups, self.out, offset)

    def result(self) -> np.ndarray:
        """The traces, (n_groups, n_frames)."""
        return self.out
