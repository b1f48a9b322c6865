"""Projections over time: one image that summarises a movie (the first stage).

A projection picks out where the cells are: the mean shows where the indicator is,
the standard deviation where fluorescence changes (active cells), max and
percentiles bright transient pixels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .engine import FramesLike, default_chunk_frames, iter_chunks, n_selected, resolve_frames
from .errors import ParameterError
from .movie import as_movie

log = logging.getLogger(__name__)

__all__ = ["KINDS", "projection"]

KINDS = ("mean", "max", "min", "std", "median", "percentile")

#: Default memory for the pixel band that median / percentile hold at once.
DEFAULT_BAND_BYTES = 512 * 1024**2


class Moments:
    """Streaming mean and variance per pixel, merged chunk by chunk (Chan et al.).

    Each chunk's own mean and sum of squared deviations are computed in float64 and
    merged with the running ones, which stays accurate where the textbook
    ``E[x^2] - E[x]^2`` formula cancels catastrophically.
    """

    def __init__(self, frame_shape: tuple[int, int], *, with_var: bool = True) -> None:
        self.n = 0
        self.mean = np.zeros(frame_shape, np.float64)
        self.m2 = np.zeros(frame_shape, np.float64) if with_var else None

    def update(self, offset: int, block: np.ndarray) -> None:
        nb = block.shape[0]
        bmean = block.mean(axis=0, dtype=np.float64)
        if self.m2 is not None:
            dev = block - bmean
            bm2 = np.einsum("tyx,tyx->yx", dev, dev)
            delta = bmean - self.mean
            self.m2 += bm2 + delta**2 * (self.n * nb / (self.n + nb))
        self.mean += (bmean - self.mean) * (nb / (self.n + nb))
        self.n += nb

    def result(self) -> dict[str, np.ndarray]:
        out = {"mean": self.mean}
        if self.m2 is not None:
            out["std"] = np.sqrt(self.m2 / self.n)
        return out


class Extremes:
    """Streaming per-pixel max and min, in the movie's own dtype."""

    def __init__(self) -> None:
        self.max: np.ndarray | None = None
        self.min: np.ndarray | None = None

    def update(self, offset: int, block: np.ndarray) -> None:
        bmax, bmin = block.max(axis=0), block.min(axis=0)
        if self.max is None:
            self.max, self.min = bmax, bmin
        else:
            np.maximum(self.max, bmax, out=self.max)
            np.minimum(self.min, bmin, out=self.min)

    def result(self) -> dict[str, np.ndarray]:
        return {"max": self.max, "min": self.min}


def projection(
    movie: Any,
    kind: str = "mean",
    *,
    q: float | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    band_bytes: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Project a movie over time into one image.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
        The movie (see :func:`roitrace.open_movie`).
    kind : {"mean", "max", "min", "std", "median", "percentile"}
        Which statistic of each pixel's time series to take.
    q : float, optional
        The percentile (0-100), for ``kind="percentile"`` only.
    frames : slice, (start, stop) or sequence of int, optional
        Use only these frames.
    chunk_frames : int, optional
        Frames read at once (default: about 64 MiB of frames).
    band_bytes : int, optional
        For median and percentile: the memory the pixel band may take
        (default 512 MiB); see Notes.
    progress : bool
        Show a progress bar.

    Returns
    -------
    image : (Y, X) ndarray
        float64 for mean, std, median and percentile; the movie's dtype for max
        and min. Equal to ``np.<kind>(data, axis=0)`` on the in-memory array
        (``np.std`` with ``ddof=0``).

    Notes
    -----
    Mean and std are accumulated in float64 chunk by chunk and merged with Chan's
    parallel update, so their memory is one chunk plus two float64 images. Max and
    min are exact in the movie's dtype.

    Median and percentile need every frame of a pixel at once. They are computed
    exactly over bands of image rows: each band holds all T frames of its pixels,
    so a band takes ``T * rows * X * itemsize`` bytes (limited by ``band_bytes``),
    plus np.median's working copy of the same size. The movie is read once per
    band: a movie of 20 GB with the default band of 512 MiB is read about 40 times.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(24, dtype=np.uint16).reshape(4, 2, 3)
    >>> projection(data, "std").shape
    (2, 3)
    >>> bool(np.allclose(projection(data, "mean"), data.mean(axis=0)))
    True
    """
    if kind not in KINDS:
        raise ParameterError(f"kind={kind!r} is not a projection; use one of {', '.join(KINDS)}")
    if kind == "percentile":
        if q is None or not 0 <= q <= 100:
            raise ParameterError(f"kind='percentile' needs q between 0 and 100 (got q={q})")
    elif q is not None:
        raise ParameterError(f"q={q} is only for kind='percentile'")
    movie = as_movie(movie)
    if kind in ("median", "percentile"):
        return _order_statistic(movie, kind, q, frames, chunk_frames, band_bytes, progress)
    consumer = (
        Extremes()
        if kind in ("max", "min")
        else Moments(movie.frame_shape, with_var=kind == "std")
    )
    for off, block in iter_chunks(
        movie,
        frames=frames,
        chunk_frames=chunk_frames,
        progress=progress,
        desc=f"{kind} projection",
    ):
        consumer.update(off, block)
    return consumer.result()[kind]


def projections(
    movie: Any,
    kinds: tuple[str, ...] = ("mean", "std", "max"),
    *,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Several streaming projections (mean, std, max, min) from one read of the movie.

    Examples
    --------
    >>> import numpy as np
    >>> p = projections(np.ones((3, 2, 2)), ("mean", "max"))
    >>> sorted(p)
    ['max', 'mean']
    """
    bad = [k for k in kinds if k not in ("mean", "std", "max", "min")]
    if bad:
        raise ParameterError(f"projections() streams mean, std, max and min only, not {bad}")
    movie = as_movie(movie)
    moments = Moments(movie.frame_shape, with_var="std" in kinds)
    extremes = Extremes() if {"max", "min"} & set(kinds) else None
    for off, block in iter_chunks(
        movie, frames=frames, chunk_frames=chunk_frames, progress=progress, desc="projections"
    ):
        moments.update(off, block)
        if extremes is not None:
            extremes.update(off, block)
    out = moments.result() | (extremes.result() if extremes is not None else {})
    return {k: out[k] for k in kinds}


def _order_statistic(movie, kind, q, frames, chunk_frames, band_bytes, progress) -> np.ndarray:
    sel = resolve_frames(movie.n_frames, frames)
    t = n_selected(sel)
    ny, nx = movie.frame_shape
    row_bytes = t * nx * movie.dtype.itemsize
    budget = DEFAULT_BAND_BYTES if band_bytes is None else band_bytes
    rows = max(1, min(ny, budget // max(row_bytes, 1)))
    if chunk_frames is None:
        chunk_frames = default_chunk_frames(movie)
    out = np.empty((ny, nx), np.float64)
    n_bands = -(-ny // rows)
    if n_bands > 1:
        log.info(
            "%s projection: %d bands of %d rows, reading the movie %d times",
            kind,
            n_bands,
            rows,
            n_bands,
        )
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        band = np.empty((t, r1 - r0, nx), movie.dtype)
        for off, block in iter_chunks(
            movie,
            frames=frames,
            chunk_frames=chunk_frames,
            progress=progress,
            desc=f"{kind} rows {r0}-{r1 - 1}",
        ):
            band[off : off + block.shape[0]] = block[:, r0:r1]
        if kind == "median":
            out[r0:r1] = np.median(band, axis=0)
        else:
            out[r0:r1] = np.percentile(band, q, axis=0)
    return out
