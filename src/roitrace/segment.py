"""Segmentation: cells as the connected components of a thresholded projection."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import size_range
from ._warnings import warn_user
from .errors import RoitraceError
from .options import Execution
from .rois import RoiSet, label
from .threshold import threshold

__all__ = ["DEFAULT_MIN_SIZE", "find_rois"]

#: Components smaller than this many pixels are noise, not somata (unless min_size says).
DEFAULT_MIN_SIZE = 10


def find_rois(
    data: Any,
    *,
    projection: str = "std",
    method: str = "sigma",
    value: float | None = None,
    q: float | None = None,
    k: float | None = None,
    block_size: int | None = None,
    offset: float | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    connectivity: int = 1,
    execution: Execution | None = None,
    frames: Any = None,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> RoiSet:
    """Find cells: project the movie, threshold the image, one ROI per component.

    Parameters
    ----------
    data : (T, Y, X) movie, path, or (Y, X) image
        A movie is projected first (``projection``); a 2-D image is thresholded as
        it is.
    projection : str
        The projection a movie is reduced to (see :func:`roitrace.projection`).
    method, value, q, k, block_size, offset
        The threshold (see :func:`roitrace.threshold`); default the 3-sigma rule.
    min_size : int, optional
        Smallest component kept, in pixels. Default 10, and a warning says how many
        smaller specks were left out; give ``min_size=1`` to keep every component.
    max_size : int, optional
        Largest component kept, in pixels.
    connectivity : {1, 2}
        1: pixels touching by an edge are connected; 2: corners too.
    execution, frames, chunk_frames, progress
        How a movie is read for its projection: see :class:`roitrace.Execution`.

    Returns
    -------
    rois : RoiSet
        Ids 1..n in scan order; ``rois.meta`` records the threshold and sizes used.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((12, 12)); image[2:6, 2:6] = 5; image[8:11, 8:11] = 4
    >>> rois = find_rois(image, method="absolute", value=1, min_size=10)
    >>> [r.npix for r in rois]
    [16]
    >>> [r.npix for r in find_rois(image, method="absolute", value=1, min_size=1)]
    [16, 9]
    """
    lo, hi = size_range(min_size, max_size)
    image = (
        np.asarray(data)
        if _is_image(data)
        else _project(
            data,
            projection,
            Execution.of(execution, frames=frames, chunk_frames=chunk_frames, progress=progress),
        )
    )
    options = {"q": q, "k": k, "block_size": block_size, "offset": offset}
    mask = threshold(image, value, method=method, **options)
    chosen = DEFAULT_MIN_SIZE if lo is None else lo
    try:
        rois = label(mask, min_size=chosen, max_size=hi, connectivity=connectivity)
    except RoitraceError as exc:
        if lo is None:
            raise type(exc)(
                f"{exc}; components under {DEFAULT_MIN_SIZE} pixels are left out by default: "
                "choose a looser threshold or a smaller min_size"
            ) from exc
        raise
    if lo is None:
        n_small = len(label(mask, connectivity=connectivity)) - len(rois)
        if n_small:
            warn_user(
                f"left out {n_small} component{'s' if n_small > 1 else ''} of under "
                f"{DEFAULT_MIN_SIZE} pixels (the default min_size); pass min_size to change it"
            )
    used = {"method": method, **{n: v for n, v in options.items() if v is not None}}
    if value is not None:
        used["value"] = value
    if method == "sigma" and k is None:
        used["k"] = 3.0  # the value used is recorded, never left unsaid
    rois.meta.update(threshold=used, min_size=chosen, max_size=hi)
    return rois


def _is_image(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.ndim == 2


def _project(movie: Any, method: str, execution: Execution) -> np.ndarray:
    from .projection import projection

    return projection(movie, method, execution=execution)
