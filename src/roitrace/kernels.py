"""Compiled kernels for the engine's hot loops (numba), with numpy equivalents.

The engine (:mod:`roitrace.engine`) hands each chunk of frames to consumers; the
consumers that touch every pixel of every frame call these kernels:

* :func:`reduce_groups`: gather + reduce. Many pixel *groups* (the cells and their
  neuropil rings), stored as one CSR table (``indptr``, flat pixel ``indices``,
  per-pixel ``weights``), are each reduced to one value per frame by their own
  method (mean, weighted mean, median, trimmed mean), in parallel over frames.
  Median and trimmed mean use in-place selection (quickselect), not sorting.
* :func:`moments_update`: per-pixel sum and shifted sum of squares (mean and std).
* :func:`neighbour_update`: per-pixel sums of products with the 4 forward
  neighbours, for the local correlation image.

Accumulation is float64. For integer movies the sums are exact, so means equal
numpy's to the last bit; median and trimmed-mean order statistics are exact for
any dtype. Kernels are compiled once per input dtype and cached on disk (numba's
``cache=True``: next to this module, or in the user's cache folder when that is
read-only), so a new process does not compile again.

Without numba (``pip install numba``) or with ``ROITRACE_NUMBA=0`` every kernel
runs as plain numpy, slower but with the same results.
"""

from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MEAN", "MEDIAN", "TRIMMED", "WEIGHTED", "available", "reduce_groups"]

#: Method codes of a group in :func:`reduce_groups`.
MEAN, WEIGHTED, MEDIAN, TRIMMED = 0, 1, 2, 3
METHOD_CODES = {"mean": MEAN, "weighted": WEIGHTED, "median": MEDIAN, "trimmed_mean": TRIMMED}


def _numba():
    if os.environ.get("ROITRACE_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import numba
    except ImportError:  # an optional speed-up: numpy does the same, slower
        return None
    return numba


_nb = _numba()


def available() -> bool:
    """Whether the compiled kernels are in use (numba importable, not disabled)."""
    return _nb is not None


# -- the compiled kernels -------------------------------------------------------------------
if _nb is not None:
    _jit = _nb.njit(cache=True, nogil=True, fastmath=False)
    _pjit = _nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
    _prange = _nb.prange

    @_jit
    def _select(buf, lo, hi, k):  # pragma: no cover - compiled
        """Put the k-th smallest of buf[lo:hi] at buf[k], smaller ones before it."""
        hi -= 1
        while hi > lo:
            mid = (lo + hi) >> 1
            # median of three as pivot, moved to buf[hi]
            if buf[mid] < buf[lo]:
                buf[mid], buf[lo] = buf[lo], buf[mid]
            if buf[hi] < buf[lo]:
                buf[hi], buf[lo] = buf[lo], buf[hi]
            if buf[mid] < buf[hi]:
                buf[mid], buf[hi] = buf[hi], buf[mid]
            pivot = buf[hi]
            i = lo
            for j in range(lo, hi):
                if buf[j] < pivot:
                    buf[i], buf[j] = buf[j], buf[i]
                    i += 1
            buf[i], buf[hi] = buf[hi], buf[i]
            if i == k:
                return
            if k < i:
                hi = i - 1
            else:
                lo = i + 1

    @_jit
    def _run_sum(frame, a, n, zero):  # pragma: no cover - compiled
        s = zero  # int64 for integer movies: exact, and free to vectorise
        for j in range(a, a + n):
            s += frame[j]
        return s

    @_jit
    def _run_dot(frame, a, n, weights, o):  # pragma: no cover - compiled
        s = 0.0
        for j in range(n):
            s += frame[a + j] * weights[o + j]
        return s

    @_jit
    def _order_stat(buf, a, b, method, cut):  # pragma: no cover - compiled
        n = b - a
        for k in range(a, b):
            if buf[k] != buf[k]:  # NaN: numpy's median gives NaN too
                return buf[k]
        if method == 2:
            half = a + (n >> 1)
            _select(buf, a, b, half)
            if n & 1:
                return buf[half]
            lower = buf[a]
            for k in range(a + 1, half):
                if buf[k] > lower:
                    lower = buf[k]
            return (lower + buf[half]) / 2.0
        # trimmed mean: the values between the cut-th and (n - cut - 1)-th order statistics
        lo, hi = a + cut, b - cut
        if cut > 0:
            _select(buf, a, b, lo)
            _select(buf, lo, b, hi - 1)
        s = 0.0
        for k in range(lo, hi):
            s += buf[k]
        return s / (hi - lo)

    @_pjit
    def _reduce_groups(  # pragma: no cover - compiled
        block, runs, methods, npix, wsums, cuts, indptr, weights, zero, n_parts, out
    ):
        # runs: (R, 4) rows (start, length, group, offset) in pixel order, so each
        # frame is read front to back; accumulators (one per group) stay in cache
        n, n_groups = block.shape[0], methods.size
        per = (n + n_parts - 1) // n_parts
        for part in _prange(n_parts):
            acc = np.zeros(n_groups, zero.dtype)
            wacc = np.zeros(n_groups, np.float64)
            buf = np.empty(indptr[-1], np.float64)
            for t in range(part * per, min(n, (part + 1) * per)):
                frame = block[t]
                acc[:] = 0
                wacc[:] = 0.0
                for r in range(runs.shape[0]):
                    a, m, g, o = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
                    method = methods[g]
                    if method == 0:
                        acc[g] += _run_sum(frame, a, m, zero[0])
                    elif method == 1:
                        wacc[g] += _run_dot(frame, a, m, weights, o)
                    else:
                        for j in range(m):
                            buf[o + j] = frame[a + j]
                for g in range(n_groups):
                    method = methods[g]
                    if method == 0:
                        out[t, g] = acc[g] / npix[g]
                    elif method == 1:
                        out[t, g] = wacc[g] / wsums[g]
                    else:
                        out[t, g] = _order_stat(buf, indptr[g], indptr[g + 1], method, cuts[g])

    @_pjit
    def _moments_update(block, shift, s1, s2):  # pragma: no cover - compiled
        n, ny, nx = block.shape
        for y in _prange(ny):
            for t in range(n):
                for x in range(nx):
                    v = np.float64(block[t, y, x])
                    s1[y, x] += v
                    d = v - shift[y, x]
                    s2[y, x] += d * d

    @_pjit
    def _neighbour_update(block, shift, right, down, down_right, down_left):  # pragma: no cover
        n, ny, nx = block.shape
        for y in _prange(ny):
            for t in range(n):
                for x in range(nx):
                    v = block[t, y, x] - shift[y, x]
                    if x + 1 < nx:
                        right[y, x] += v * (block[t, y, x + 1] - shift[y, x + 1])
                    if y + 1 < ny:
                        down[y, x] += v * (block[t, y + 1, x] - shift[y + 1, x])
                        if x + 1 < nx:
                            down_right[y, x] += v * (block[t, y + 1, x + 1] - shift[y + 1, x + 1])
                        if x > 0:
                            down_left[y, x] += v * (block[t, y + 1, x - 1] - shift[y + 1, x - 1])


# -- the public entry points ------------------------------------------------------------------
class Groups:
    """Pixel groups as one CSR table, ready for :func:`reduce_groups`.

    Parameters
    ----------
    flats : list of (P_g,) int arrays
        Flat pixel indices (``y * X + x``) of each group.
    methods : list of str
        ``"mean"``, ``"weighted"``, ``"median"`` or ``"trimmed_mean"`` per group.
    weights : list of (P_g,) arrays or None, optional
        Weights for the ``"weighted"`` groups (None elsewhere).
    proportion : float
        Fraction cut from each end by ``"trimmed_mean"`` groups.
    """

    def __init__(
        self,
        flats: list[np.ndarray],
        methods: list[str],
        weights: list[np.ndarray | None] | None = None,
        proportion: float = 0.1,
    ) -> None:
        sizes = np.array([f.size for f in flats], np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.indices = np.concatenate(flats).astype(np.int64) if flats else np.zeros(0, np.int64)
        weights = weights or [None] * len(flats)
        parts = [
            np.ones(n) if w is None else np.asarray(w, np.float64)
            for n, w in zip(sizes, weights, strict=True)
        ]
        self.weights = np.concatenate(parts) if parts else np.zeros(0)
        # np.average divides by numpy's own sum of the weights: take the same number
        self.wsums = np.array(
            [1.0 if w is None else float(np.asarray(w, np.float64).sum()) for w in weights]
        )
        self.methods = np.array([METHOD_CODES[m] for m in methods], np.int64)
        # scipy.stats.trim_mean's cut: int(proportion * n) from each end
        self.cuts = np.array([int(proportion * s) for s in sizes], np.int64)
        self.proportion = proportion
        self.sizes = sizes
        self.runs = _runs(self.indices, self.indptr)

    def __len__(self) -> int:
        return self.sizes.size


def _runs(indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Each group's pixels as runs of consecutive flat indices, all runs sorted by
    start: rows ``(start, length, group, offset of the run in indices)``."""
    if indices.size == 0:
        return np.zeros((0, 4), np.int64)
    group = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    # a run breaks where the next pixel is not the next index, or another group begins
    brk = np.ones(indices.size, bool)
    brk[1:] = (np.diff(indices) != 1) | (group[1:] != group[:-1])
    first = np.flatnonzero(brk)
    length = np.diff(np.append(first, indices.size))
    runs = np.stack([indices[first], length, group[first], first], axis=1).astype(np.int64)
    return runs[np.argsort(runs[:, 0], kind="stable")]


def _n_parts(n: int) -> int:
    threads = _nb.get_num_threads() if _nb is not None else 1
    return max(1, min(n, threads))


def reduce_groups(block: np.ndarray, groups: Groups, out: np.ndarray | None = None) -> np.ndarray:
    """Reduce every pixel group of every frame of ``block`` to one value.

    Parameters
    ----------
    block : (n, Y, X) or (n, Y * X) ndarray
        A chunk of frames.
    groups : Groups
    out : (n, G) float64 ndarray, optional
        Where to write (a slice of a bigger output is fine if C-contiguous rows).

    Returns
    -------
    values : (n, G) ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> block = np.arange(2 * 3 * 3, dtype=np.int16).reshape(2, 3, 3)
    >>> g = Groups([np.array([0, 1, 8]), np.array([0, 1, 8])], ["mean", "median"])
    >>> reduce_groups(block, g)
    array([[ 3.,  1.],
           [12., 10.]])
    """
    n = block.shape[0]
    flat = np.ascontiguousarray(block.reshape(n, -1))
    if out is None:
        out = np.empty((n, len(groups)), np.float64)
    if n == 0 or len(groups) == 0:
        return out
    if _nb is not None:
        zero = np.zeros(1, np.float64 if flat.dtype.kind in "fc" else np.int64)
        _reduce_groups(
            flat,
            groups.runs,
            groups.methods,
            groups.sizes.astype(np.float64),
            groups.wsums,
            groups.cuts,
            groups.indptr,
            groups.weights,
            zero,
            _n_parts(n),
            out,
        )
        return out
    return _reduce_groups_numpy(flat, groups, out)


def _reduce_groups_numpy(flat: np.ndarray, groups: Groups, out: np.ndarray) -> np.ndarray:
    from scipy.stats import trim_mean

    gathered = flat[:, groups.indices]
    for g in range(len(groups)):
        a, b = groups.indptr[g], groups.indptr[g + 1]
        px = gathered[:, a:b]
        method = groups.methods[g]
        if method == MEAN:
            out[:, g] = np.mean(px, axis=1)
        elif method == WEIGHTED:
            out[:, g] = np.average(px, axis=1, weights=groups.weights[a:b])
        elif method == MEDIAN:
            out[:, g] = np.median(px, axis=1)
        else:
            out[:, g] = trim_mean(px, groups.proportion, axis=1)
    return out


def moments_update(block: np.ndarray, shift: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """Add a chunk's per-pixel sum to ``s1`` and sum of ``(x - shift)**2`` to ``s2``.

    ``s1`` is exact for integer movies, so ``s1 / n`` is numpy's mean to the bit;
    the shift (a per-pixel value near the mean) keeps the variance free of
    cancellation: ``var = s2 / n - (s1 / n - shift)**2``.
    """
    if _nb is not None:
        _moments_update(np.ascontiguousarray(block), shift, s1, s2)
        return
    s1 += block.sum(axis=0, dtype=np.float64)
    d = block - shift
    s2 += np.einsum("tyx,tyx->yx", d, d)


def neighbour_update(
    block: np.ndarray,
    shift: np.ndarray,
    right: np.ndarray,
    down: np.ndarray,
    down_right: np.ndarray,
    down_left: np.ndarray,
) -> None:
    """Add each pixel's shifted products with its right, down, down-right and
    down-left neighbours (the other 4 of the 8 are these, seen from the neighbour)."""
    if _nb is not None:
        _neighbour_update(np.ascontiguousarray(block), shift, right, down, down_right, down_left)
        return
    d = block - shift
    right[:, :-1] += np.einsum("tyx,tyx->yx", d[:, :, :-1], d[:, :, 1:])
    down[:-1, :] += np.einsum("tyx,tyx->yx", d[:, :-1, :], d[:, 1:, :])
    down_right[:-1, :-1] += np.einsum("tyx,tyx->yx", d[:, :-1, :-1], d[:, 1:, 1:])
    down_left[:-1, 1:] += np.einsum("tyx,tyx->yx", d[:, :-1, 1:], d[:, 1:, :-1])
