"""Pixel traces and pixel weights: each ROI pixel's time series, and how much it counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import choice
from ._warnings import renamed_keywords
from .aggregate import check_weights
from .engine import FramesLike, n_selected, resolve_frames, stream
from .errors import EmptyMaskError, ParameterError
from .movie import as_movie
from .options import Execution
from .threshold import check_mask

__all__ = ["PixelGather", "PixelMeans", "pixel_traces", "pixel_weights", "weights_image"]


class PixelGather:
    """Consumer: copy the time series of fixed pixels into a (T, P) array."""

    def __init__(self, flat_index: np.ndarray, n_frames: int, dtype: np.dtype) -> None:
        self.flat = flat_index
        self.out = np.empty((n_frames, flat_index.size), dtype)

    def update(self, offset: int, block: np.ndarray) -> None:
        n = block.shape[0]
        np.take(block.reshape(n, -1), self.flat, axis=1, out=self.out[offset : offset + n])

    def result(self) -> np.ndarray:
        return self.out


class PixelMeans:
    """Consumer: each pixel's mean over time, accumulated in float64."""

    def __init__(self, flat_index: np.ndarray) -> None:
        self.flat = flat_index
        self.sum = np.zeros(flat_index.size, np.float64)
        self.n = 0

    def update(self, offset: int, block: np.ndarray) -> None:
        n = block.shape[0]
        self.sum += block.reshape(n, -1)[:, self.flat].sum(axis=0, dtype=np.float64)
        self.n += n

    def part(self, n_frames: int) -> PixelMeans:
        """Empty sums for a part of the frames (a cluster task)."""
        return PixelMeans(self.flat)

    def merge(self, offset: int, part: PixelMeans) -> None:
        self.sum += part.sum
        self.n += part.n

    def result(self) -> np.ndarray:
        return self.sum / self.n


def pixel_traces(
    movie: Any,
    mask: Any,
    *,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """The time series of every pixel in a mask, as a (time, pixels) array.

    Equal to ``data[frames][:, y, x]`` with ``(y, x) = np.where(mask)``, but reads
    only the frames asked for, chunk by chunk.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
    mask : (Y, X) array_like of bool
    execution, frames, chunk_frames, progress
        How the movie is read: see :class:`roitrace.Execution`.

    Returns
    -------
    traces : (T, P) ndarray
        In the movie's dtype; column ``i`` is pixel ``(y[i], x[i])``.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    >>> mask = np.array([[True, False, False], [False, False, True]])
    >>> pixel_traces(data, mask)
    array([[ 0,  5],
           [ 6, 11]])
    """
    movie = as_movie(movie)
    mask = check_mask(mask, movie.frame_shape, allow_empty=False)
    flat = np.flatnonzero(mask)
    ex = Execution.of(execution, frames=frames, chunk_frames=chunk_frames, progress=progress)
    sel = resolve_frames(movie.n_frames, ex.frames)
    gather = PixelGather(flat, n_selected(sel), movie.dtype)
    (out,) = stream(movie, [gather], execution=ex, desc="pixel traces")
    return out


@renamed_keywords(by="method")
def pixel_weights(
    movie: Any,
    mask: Any,
    *,
    method: str = "brightness",
    sigma: float | None = None,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Weights for the mask's pixels, summing to 1, in ``np.where(mask)`` order.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
        Needed for ``method="brightness"``; unused (may be None) for ``"proximity"``.
    mask : (Y, X) array_like of bool
    method : {"brightness", "proximity"}
        ``brightness`` (the notebook's): each pixel's mean over time divided by
        their sum, ``means / means.sum()``; bright pixels count more.
        ``proximity``: a Gaussian fall-off with the distance ``d`` from the mask's
        centroid, ``w = exp(-d**2 / (2 * sigma**2))``, normalised to sum to 1;
        pixels at the cell's edge count less.
    sigma : float, optional
        Width of the proximity fall-off in pixels. Default: the radius of a disk
        with the mask's area, ``sqrt(P / pi)``.
    execution, frames, chunk_frames, progress
        How the movie is read: see :class:`roitrace.Execution`.

    Returns
    -------
    weights : (P,) ndarray of float64

    Raises
    ------
    WeightsError
        When the weights sum to 0 (e.g. all pixels are 0 on average).

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((4, 3, 3)); data[:, 1, 1] = 3
    >>> mask = np.zeros((3, 3), bool); mask[1, :] = True
    >>> pixel_weights(data, mask)
    array([0.2, 0.6, 0.2])
    """
    choice("method", method, ("brightness", "proximity"))
    if method == "proximity":
        mask = check_mask(mask, allow_empty=False)
        return proximity_weights(mask, sigma=sigma)
    movie = as_movie(movie)
    mask = check_mask(mask, movie.frame_shape, allow_empty=False)
    ex = Execution.of(execution, frames=frames, chunk_frames=chunk_frames, progress=progress)
    (means,) = stream(movie, [PixelMeans(np.flatnonzero(mask))], execution=ex, desc="pixel means")
    return brightness_weights(means)


def brightness_weights(means: np.ndarray) -> np.ndarray:
    """The notebook's weights from each pixel's mean: ``means / means.sum()``."""
    check_weights(means, means.size)
    return means / np.sum(means)


def proximity_weights(mask: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
    """Gaussian weights by distance from the mask's centroid (see :func:`pixel_weights`)."""
    y, x = np.nonzero(mask)
    return proximity_weights_of(y, x, sigma=sigma)


def proximity_weights_of(
    y: np.ndarray, x: np.ndarray, *, sigma: float | None = None
) -> np.ndarray:
    """:func:`proximity_weights` of the pixels ``(y, x)`` (in ``np.nonzero`` order)."""
    if sigma is None:
        sigma = float(np.sqrt(y.size / np.pi))
    if sigma <= 0:
        raise ParameterError(f"sigma={sigma}: the fall-off width must be positive")
    d2 = (y - y.mean()) ** 2 + (x - x.mean()) ** 2
    w = np.exp(-d2 / (2.0 * sigma**2))
    return w / w.sum()


def proximity_weights_groups(flats: list[np.ndarray], nx: int) -> list[np.ndarray]:
    """:func:`proximity_weights_of` of many pixel groups at once (flat indices
    ``y * nx + x``), each with its own default sigma; vectorised over all groups."""
    sizes = np.array([f.size for f in flats], np.int64)
    if sizes.size == 0:
        return []
    if (sizes == 0).any():
        raise ParameterError("a pixel group holds no pixel: proximity weights need pixels")
    flat = np.concatenate(flats)
    owner = np.repeat(np.arange(sizes.size), sizes)
    y, x = flat // nx, flat % nx
    cy = np.bincount(owner, y) / sizes
    cx = np.bincount(owner, x) / sizes
    two_var = 2.0 * (sizes / np.pi)  # 2 sigma**2, sigma = sqrt(npix / pi)
    w = np.exp(-((y - cy[owner]) ** 2 + (x - cx[owner]) ** 2) / two_var[owner])
    w /= np.bincount(owner, w)[owner]
    return np.split(w, np.cumsum(sizes)[:-1])


def weights_image(weights: Any, mask: Any, *, fill: float = 0.0) -> np.ndarray:
    """Put per-pixel weights back into an image of the mask's shape.

    Parameters
    ----------
    weights : (P,) array_like
        One value per mask pixel, in ``np.where(mask)`` order.
    mask : (Y, X) array_like of bool
    fill : float
        Value outside the mask.

    Returns
    -------
    image : (Y, X) ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[True, False], [False, True]])
    >>> weights_image([0.25, 0.75], mask)
    array([[0.25, 0.  ],
           [0.  , 0.75]])
    """
    mask = check_mask(mask)
    w = np.asarray(weights, dtype=np.float64)
    n = int(mask.sum())
    if n == 0:
        raise EmptyMaskError("the mask holds no pixel")
    if w.shape != (n,):
        raise ParameterError(
            f"{w.size} weights for a mask of {n} pixels: give one weight per mask pixel"
        )
    image = np.full(mask.shape, fill, np.float64)
    image[mask] = w
    return image
