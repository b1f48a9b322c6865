"""Projections over time: one image that summarises a movie (the first stage).

A projection picks out where the cells are: the mean shows where the indicator is,
the standard deviation where fluorescence changes (active cells), max and
percentiles bright transient pixels.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from . import _kernels as kernels
from ._memory import human_bytes as _human
from ._validate import choice
from ._warnings import renamed_keywords
from .engine import (
    FramesLike,
    available_memory,
    default_chunk_frames,
    iter_chunks,
    n_selected,
    resolve_frames,
    stream,
)
from .errors import MovieError, ParameterError
from .movie import as_movie
from .options import PROJECTION_METHODS, Execution

log = logging.getLogger(__name__)

__all__ = ["KINDS", "projection", "projections"]

#: Deprecated name of :data:`roitrace.options.PROJECTION_METHODS`.
KINDS = PROJECTION_METHODS
#: The kinds one streaming pass computes (median and percentile need all frames of a pixel).
STREAMED = ("mean", "std", "max", "min", "correlation")

#: Default memory for the pixel band that median / percentile hold at once.
DEFAULT_BAND_BYTES = 512 * 1024**2


class Moments:
    """Streaming per-pixel mean and variance, in float64.

    The per-pixel sum is exact for integer movies (so the mean equals numpy's to
    the last bit); the variance is accumulated around a per-pixel shift (the first
    frame's values), which keeps ``E[(x-s)^2] - (E[x]-s)^2`` free of the catastrophic
    cancellation of the textbook formula. For integer movies the shift is an
    integer, so every sum is exact and parts of the movie summed apart (on a
    cluster, :meth:`part` and :meth:`merge`) give the same bits as one pass.
    """

    def __init__(self, frame_shape: tuple[int, int], *, with_var: bool = True) -> None:
        self.frame_shape = frame_shape
        self.n = 0
        self.s1 = np.zeros(frame_shape, np.float64)
        self.s2 = np.zeros(frame_shape, np.float64) if with_var else None
        self.shift: np.ndarray | None = None

    def prepare(self, first: np.ndarray) -> None:
        """Fix the shift to the selection's first frame (before parts are made)."""
        if self.s2 is not None:
            self.shift = np.array(first, np.float64)

    def part(self, n_frames: int) -> Moments:
        """An empty accumulator with the same shift, for a part of the frames."""
        p = Moments(self.frame_shape, with_var=self.s2 is not None)
        p.shift = self.shift
        return p

    def merge(self, offset: int, part: Moments) -> None:
        self.s1 += part.s1
        if self.s2 is not None:
            self.s2 += part.s2
        self.n += part.n

    def kernels(self, dtype: np.dtype) -> tuple[str, ...]:
        """The compiled kernels the updates run (none for the mean alone)."""
        return ("_moments_rows",) if self.s2 is not None else ()

    def update(self, offset: int, block: np.ndarray) -> None:
        if self.s2 is None:
            self.s1 += block.sum(axis=0, dtype=np.float64)
        else:
            if self.shift is None:
                self.prepare(block[0])
            kernels.moments_update(block, self.shift, self.s1, self.s2)
        self.n += block.shape[0]

    @property
    def mean(self) -> np.ndarray:
        return self.s1 / self.n

    def variance(self, mean: np.ndarray | None = None) -> np.ndarray:
        """Per-pixel variance (``ddof=0``).

        Computed in place in two new images: a frame of 10^8 pixels takes 763 MiB
        per float64 image, and the textbook expression made four of them.
        """
        # an infinite pixel makes inf - inf: NaN, its variance undefined, said nowhere else
        with np.errstate(invalid="ignore"):
            d = np.subtract(self.mean if mean is None else mean, self.shift)
            np.multiply(d, d, out=d)
            var = np.divide(self.s2, self.n)
            var -= d
            del d
            return np.maximum(var, 0.0, out=var)

    def result(self) -> dict[str, np.ndarray]:
        mean = self.mean
        out = {"mean": mean}
        if self.s2 is not None:
            std = self.variance(mean)
            out["std"] = np.sqrt(std, out=std)
        return out


class Correlation:
    """Streaming local correlation image: each pixel's mean temporal correlation
    (Pearson) with its 8 neighbours, as suite2p and CaImAn use to find cells.

    Sums of products with the right, down and two diagonal neighbours are
    accumulated around the same shift as :class:`Moments`; the other four
    neighbours are the same pairs seen from the other side. Border pixels average
    over the neighbours they have (5, or 3 in a corner). A pixel whose value never
    changes has correlation 0 with every neighbour.

    With ``subtract_global`` the global signal (each frame's mean over all pixels)
    is regressed out of every pixel's time series before correlating (a partial
    correlation): what the whole field does together (brightness fluctuations,
    neuropil, a drifting laser) then no longer correlates every pixel with its
    neighbours. It needs only the per-pixel sums of products with the global
    signal, so it is still one pass; mean and std stay those of the movie.
    """

    #: (dy, dx) of the accumulated neighbour of each cross-product image
    OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))
    #: frames made float64 at once for the products with the global signal
    STEP = 16

    def __init__(self, frame_shape: tuple[int, int], *, subtract_global: bool = False) -> None:
        self.moments = Moments(frame_shape)
        self.cross = [np.zeros(frame_shape, np.float64) for _ in self.OFFSETS]
        self.subtract_global = subtract_global
        self.g_shift: float | None = None  # the first frame's mean: the global signal's shift
        self.g_sums = np.zeros(2)  # sum of (g - g_shift) and of its square
        # per pixel: sum of x * (g - g_shift); a whole float64 image, so only when used
        self.xg = np.zeros(frame_shape if subtract_global else (0, 0), np.float64)

    def prepare(self, first: np.ndarray) -> None:
        """Fix the shifts to the selection's first frame (before parts are made)."""
        self.moments.prepare(first)
        if self.subtract_global:
            with np.errstate(invalid="ignore"):  # +inf and -inf pixels: a NaN frame mean
                self.g_shift = float(first.mean(dtype=np.float64))

    def part(self, n_frames: int) -> Correlation:
        """Empty sums with the same shifts, for a part of the frames."""
        p = Correlation(self.moments.frame_shape, subtract_global=self.subtract_global)
        p.moments = self.moments.part(n_frames)
        p.g_shift = self.g_shift
        return p

    def merge(self, offset: int, part: Correlation) -> None:
        self.moments.merge(offset, part.moments)
        for mine, theirs in zip(self.cross, part.cross, strict=True):
            mine += theirs
        self.g_sums += part.g_sums
        self.xg += part.xg

    def kernels(self, dtype: np.dtype) -> tuple[str, ...]:
        """The compiled kernels the updates run."""
        return ("_moments_rows", "_neighbour_rows")

    def update(self, offset: int, block: np.ndarray) -> None:
        if self.moments.shift is None:
            self.prepare(block[0])
        self.moments.update(offset, block)
        kernels.neighbour_update(block, self.moments.shift, *self.cross)
        if self.subtract_global:
            with np.errstate(invalid="ignore"):  # +inf and -inf pixels: a NaN frame mean
                g = block.mean(axis=(1, 2), dtype=np.float64)
            g -= self.g_shift
            self.g_sums += g.sum(), g @ g
            for k in range(0, block.shape[0], self.STEP):  # a float copy of a few frames
                self.xg += np.tensordot(g[k : k + self.STEP], block[k : k + self.STEP], 1)

    def _covariances(self, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Each pixel's variance, its covariance with the global signal and the
        signal's variance (None, 0 without ``subtract_global``)."""
        m = self.moments
        var = m.variance(mean)
        if not self.subtract_global:
            return var, None, 0.0
        g_mean, g_sq = self.g_sums / m.n
        var_g = g_sq - g_mean * g_mean
        if not var_g > 0:  # a constant global signal: nothing to regress out
            return var, None, 0.0
        cov_g = self.xg / m.n - mean * g_mean
        var -= cov_g * cov_g / var_g
        return np.maximum(var, 0.0, out=var), cov_g, var_g

    def result(self) -> dict[str, np.ndarray]:
        # an infinite pixel makes inf - inf: its correlations are NaN, said nowhere else
        with np.errstate(invalid="ignore"):
            return self._result()

    def _result(self) -> dict[str, np.ndarray]:
        # In place where the values stay the same to the bit: each temporary is a
        # float64 image of the frame's size (763 MiB for 10^8 pixels).
        m = self.moments
        mean = m.mean
        d = np.subtract(mean, m.shift)  # mean of the shifted values
        var, cov_g, var_g = self._covariances(mean)
        std = np.sqrt(var, out=var)
        ny, nx = std.shape
        total = np.zeros((ny, nx))
        count = np.zeros((ny, nx), np.uint8)
        for (dy, dx), cross in zip(self.OFFSETS, self.cross, strict=True):
            # pixel (y, x) and its neighbour (y + dy, x + dx), both inside the frame
            ys = slice(0, ny - dy)
            xs = slice(max(0, -dx), nx - max(0, dx))
            yn = slice(dy, ny)
            xn = slice(max(0, dx), nx + min(0, dx))
            r = np.divide(cross[ys, xs], m.n)
            r -= d[ys, xs] * d[yn, xn]  # the covariance
            if cov_g is not None:  # what is left once the global signal is regressed out
                r -= cov_g[ys, xs] * cov_g[yn, xn] / var_g
            scale = std[ys, xs] * std[yn, xn]
            ok = scale > 0
            np.divide(r, scale, out=r, where=ok)
            r[~ok] = 0.0
            del scale, ok
            for sy, sx in ((ys, xs), (yn, xn)):
                total[sy, sx] += r
                count[sy, sx] += 1
            del r
        del d
        np.divide(total, count, out=total, where=count > 0)
        total[count == 0] = 0.0
        del count
        if cov_g is None:  # std is the movie's: the variance was not partial
            movie_std = std
        else:
            del std, cov_g
            movie_std = np.sqrt(m.variance(mean))
        return {
            "correlation": np.clip(total, -1.0, 1.0, out=total),
            "mean": mean,
            "std": movie_std,
        }


class Extremes:
    """Streaming per-pixel max and min, in the movie's own dtype."""

    def __init__(self) -> None:
        self.max: np.ndarray | None = None
        self.min: np.ndarray | None = None

    def update(self, offset: int, block: np.ndarray) -> None:
        self._add(block.max(axis=0), block.min(axis=0))

    def _add(self, bmax: np.ndarray, bmin: np.ndarray) -> None:
        if self.max is None:
            self.max, self.min = bmax, bmin
        else:
            np.maximum(self.max, bmax, out=self.max)
            np.minimum(self.min, bmin, out=self.min)

    def part(self, n_frames: int) -> Extremes:
        return Extremes()

    def merge(self, offset: int, part: Extremes) -> None:
        self._add(part.max, part.min)

    def result(self) -> dict[str, np.ndarray]:
        return {"max": self.max, "min": self.min}


@renamed_keywords(kind="method")
def projection(
    movie: Any,
    method: str = "mean",
    *,
    q: float | None = None,
    band_bytes: int | None = None,
    subtract_global: bool = False,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    client: Any = None,
) -> np.ndarray:
    """Project a movie over time into one image.

    Parameters
    ----------
    movie : Movie, (T, Y, X) array_like or path
        The movie (see :func:`roitrace.open_movie`).
    method : {"mean", "max", "min", "std", "median", "percentile", "correlation"}
        Which statistic of each pixel's time series to take. ``"correlation"``
        is the local correlation image: each pixel's mean temporal correlation
        with its 8 neighbours (fewer at the border), the image suite2p and CaImAn
        find cells in; active cells stand out in it even when they are dim.
    q : float, optional
        The percentile (0-100), for ``method="percentile"`` only.
    band_bytes : int, optional
        For median and percentile: the memory the pixel band may take
        (default 512 MiB); see Notes.
    subtract_global : bool
        For the correlation image: regress the global signal (each frame's mean
        over all pixels) out of every pixel first, so that what the whole field
        does together (global brightness changes, neuropil) does not make every
        pixel correlate with its neighbours. Use it when the raw correlation
        image is high everywhere.
    execution, frames, chunk_frames, progress
        How the movie is read: see :class:`roitrace.Execution`.
    client : distributed.Client, optional
        Run on this Dask cluster (:mod:`roitrace.cluster`). Streamed projections are
        cut into frame ranges and their sums merged (the same bits as without a
        cluster for integer movies); median and percentile give each task a band of
        image rows over all frames.

    Returns
    -------
    image : (Y, X) ndarray
        float64 for mean, std, median, percentile and correlation; the movie's
        dtype for max and min. Equal to ``np.<method>(data, axis=0)`` on the
        in-memory array (``np.std`` with ``ddof=0``); for integer movies the mean,
        and for every movie max, min, median and percentile, to the last bit.

    Notes
    -----
    Mean, std and correlation are accumulated in float64 in one pass by compiled
    kernels (:mod:`roitrace._kernels`), so their memory is one chunk plus two (six
    for correlation) float64 images, whatever the movie's length. Max and min are
    exact in the movie's dtype.

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
    choice("method", method, PROJECTION_METHODS)
    if method == "percentile":
        if q is None or not 0 <= q <= 100:
            raise ParameterError(f"method='percentile' needs q between 0 and 100 (got q={q})")
    elif q is not None:
        raise ParameterError(f"q={q} is only for method='percentile'")
    if subtract_global and method != "correlation":
        raise ParameterError("subtract_global=True is only for method='correlation'")
    ex = Execution.of(
        execution, frames=frames, chunk_frames=chunk_frames, progress=progress, client=client
    )
    movie = as_movie(movie)
    if method in ("median", "percentile"):
        return _order_statistic(movie, method, q, ex, band_bytes)
    return projections(movie, (method,), subtract_global=subtract_global, execution=ex)[method]


@renamed_keywords(kinds="methods")
def projections(
    movie: Any,
    methods: tuple[str, ...] = ("mean", "std", "max"),
    *,
    subtract_global: bool = False,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    client: Any = None,
) -> dict[str, np.ndarray]:
    """Several streaming projections (mean, std, max, min, correlation) from one read
    of the movie. ``subtract_global`` and ``execution`` are as in :func:`projection`.

    Examples
    --------
    >>> import numpy as np
    >>> p = projections(np.ones((3, 2, 2)), ("mean", "max"))
    >>> sorted(p)
    ['max', 'mean']
    """
    bad = [k for k in methods if k not in STREAMED]
    if bad:
        raise ParameterError(
            f"projections() streams {', '.join(STREAMED)} only, not {bad}; use projection() "
            "for median and percentile"
        )
    movie = as_movie(movie)
    _check_working_memory(movie, methods, subtract_global)
    consumers: list[Any] = []
    if "correlation" in methods:
        consumers.append(Correlation(movie.frame_shape, subtract_global=subtract_global))
    elif {"mean", "std"} & set(methods):
        consumers.append(Moments(movie.frame_shape, with_var="std" in methods))
    if {"max", "min"} & set(methods):
        consumers.append(Extremes())
    name = methods[0] if len(methods) == 1 else "projections"
    results = stream(
        movie,
        consumers,
        execution=Execution.of(
            execution, frames=frames, chunk_frames=chunk_frames, progress=progress, client=client
        ),
        desc=f"{name} projection" if len(methods) == 1 else name,
    )
    out = {k: v for r in results for k, v in r.items()}
    return {k: out[k] for k in methods}


#: Frame-sized float64 images each streamed projection holds at its peak (the
#: per-pixel sums and the temporaries of ``result()``), measured with tracemalloc.
_WORK_IMAGES = {"mean": 3, "std": 6, "correlation": 14}


def _check_working_memory(movie: Any, kinds: tuple[str, ...], subtract_global: bool) -> None:
    """Refuse, before the movie is read, projections whose per-pixel sums cannot fit
    in memory: they take several float64 images of the frame's size (763 MiB each
    for 10^8 pixels), whatever the number of frames, and would fail only at the end."""
    avail = available_memory()
    if avail is None:
        return
    ny, nx = movie.frame_shape
    images = max((_WORK_IMAGES.get(k, 0) for k in kinds), default=0)
    if "correlation" in kinds and subtract_global:
        images += 1
    need = images * 8 * ny * nx
    if {"max", "min"} & set(kinds):
        need += 4 * movie.frame_nbytes  # max, min and a chunk's of each
    need += 2 * movie.frame_nbytes  # at the least, a frame read and one read ahead
    if need > avail:
        name = " and ".join(kinds)
        raise MovieError(
            f"{movie.path or 'the movie'}: a {name} projection of {ny} x {nx} frames needs "
            f"about {_human(need)} of memory (per-pixel sums in float64, whatever the number "
            f"of frames), more than the {_human(avail)} available; use a machine with more "
            "memory"
        )


def _order_statistic(
    movie: Any, kind: str, q: float | None, ex: Execution, band_bytes: int | None
) -> np.ndarray:
    sel = resolve_frames(movie.n_frames, ex.frames)
    t = n_selected(sel)
    ny, nx = movie.frame_shape
    row_bytes = t * nx * movie.dtype.itemsize
    chunk_frames = ex.chunk_frames or default_chunk_frames(movie, ex.chunk_memory)
    # Per band row: the row of every frame, np.median's partitioned copy of it and
    # the float64 middle values it averages; besides the bands: the image and two chunks.
    row_cost = 2 * row_bytes + 16 * nx
    fixed = ny * nx * 8 + 2 * min(chunk_frames, t) * movie.frame_nbytes
    avail = available_memory()
    if avail is not None and fixed + row_cost > avail:
        fit = (avail - fixed - 16 * nx) // (2 * nx * movie.dtype.itemsize)
        first = sel.start if isinstance(sel, slice) else 0
        fewer = (
            f"use at most {fit} frames, e.g. frames=({first}, {first + fit}), or " if fit else ""
        )
        raise MovieError(
            f"{movie.path or 'the movie'}: a {kind} over {t} frames holds every frame of an "
            f"image row at once: it needs {_human(fixed + row_cost)} at the least, more than "
            f"the {_human(avail)} of memory available; {fewer}use a machine with more memory"
        )
    if band_bytes is None:
        budget = DEFAULT_BAND_BYTES if avail is None else min(DEFAULT_BAND_BYTES, avail - fixed)
        rows = max(1, min(ny, budget // row_cost))
    else:
        rows = max(1, min(ny, band_bytes // max(row_bytes, 1)))
    if ex.client is not None:
        return _bands_on_cluster(movie, kind, q, ex, rows, band_bytes is not None)
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
    band_ex = dataclasses.replace(ex, chunk_frames=chunk_frames, chunk_memory=None)
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        out[r0:r1] = _band(movie, band_ex, (r0, r1), kind, q)
    return out


def _band(
    movie: Any, ex: Execution, band: tuple[int, int], kind: str, q: float | None
) -> np.ndarray:
    """The median or percentile of image rows ``band[0]`` to ``band[1] - 1``, from
    every selected frame of those rows, held at once."""
    r0, r1 = band
    t = n_selected(resolve_frames(movie.n_frames, ex.frames))
    rows = np.empty((t, r1 - r0, movie.frame_shape[1]), movie.dtype)
    for off, block in iter_chunks(movie, execution=ex, desc=f"{kind} rows {r0}-{r1 - 1}"):
        rows[off : off + block.shape[0]] = block[:, r0:r1]
    if kind == "median":
        return np.median(rows, axis=0)
    return np.percentile(rows, q, axis=0)


def _bands_on_cluster(
    movie: Any, kind: str, q: float | None, ex: Execution, rows: int, given: bool
) -> np.ndarray:
    """Median or percentile on a Dask cluster: one task per band of image rows,
    each reading every selected frame of its rows (the movie is read once per
    band, in parallel). Without ``band_bytes`` the bands are made small enough
    for every worker thread to have one."""
    from .cluster import run_tasks

    ny, nx = movie.frame_shape
    if not given:
        threads = sum(ex.client.nthreads().values()) or 1
        rows = max(1, min(rows, -(-ny // threads)))
    bands = [((r0, min(ny, r0 + rows)),) * 2 for r0 in range(0, ny, rows)]
    out = np.empty((ny, nx), np.float64)
    for (r0, r1), image in run_tasks(ex, movie, bands, _band, kind, q):
        out[r0:r1] = image
    return out
