"""Compiled kernels for the engine's hot loops (numba), with numpy equivalents.

The engine (:mod:`roitrace.engine`) hands each chunk of frames to consumers; the
consumers that touch every pixel of every frame call these kernels:

* :func:`reduce_groups`: gather + reduce. Many pixel *groups* (the cells and their
  neuropil rings), stored as one CSR table (``indptr``, flat pixel ``indices``,
  per-pixel ``weights``), are each reduced to one value per frame by their own
  method (mean, weighted mean, median, trimmed mean), in parallel over frames.
  Median and trimmed mean use in-place selection (quickselect), not sorting.
  Plain means of integer movies, where groups overlap a lot (crowded neuropil
  rings), come from running sums along stripes of the frame: each run of pixels
  is then the difference of two running sums, whatever its length.
* :func:`cell_ring`: one cell's neuropil ring from exact squared distances.
* :func:`moments_update`: per-pixel sum and shifted sum of squares (mean and std).
* :func:`neighbour_update`: per-pixel sums of products with the 4 forward
  neighbours, for the local correlation image.

Accumulation is float64. For integer movies the sums are exact, so means equal
numpy's to the last bit; median and trimmed-mean order statistics are exact for
any dtype. Kernels are compiled once per input dtype and cached on disk (numba's
``cache=True``: next to this module, or in the user's cache folder when that is
read-only), so a new process does not compile again.

Without numba (``pip install numba``) or with ``ROITRACE_NUMBA=0`` every kernel
runs as plain numpy (and scipy for :func:`cell_ring`), slower but with the same
results: float64 accumulation in the kernels' order, so the same numbers to the
bit, except the trimmed mean of a float movie, whose sum follows the kernels'
selection order (the same to within a few float64 ulps).
"""

from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MEAN", "MEDIAN", "TRIMMED", "WEIGHTED", "available", "reduce_groups"]

#: Method codes of a group in :func:`reduce_groups`.
MEAN, WEIGHTED, MEDIAN, TRIMMED = 0, 1, 2, 3
#: Pixels per stripe of the frame for the running-sum path of plain means: its
#: int32 running sums of 16-bit pixels cannot overflow (4096 * 65535 < 2**31), and
#: 8 frames of them (128 KiB) stay in a core's L2 cache.
STRIPE = 4096
#: A stripe takes the running-sum path when its runs hold more pixels than this
#: many times its span: one pass over the span then costs less than reading every
#: pixel of every run (measured: ~1 ns per pixel and frame either way).
PREFIX_RATIO = 1.5
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


def first_compile() -> bool:
    """Whether the next pass will compile kernels (none in numba's on-disk cache yet).

    Compiling takes tens of seconds once per machine (and numba version); the
    progress bar says so, instead of seeming to hang.
    """
    if _nb is None:
        return False
    try:
        return any(
            not os.path.exists(d._cache._cache_file._index_path)  # numba internals: a guess
            for d in (_reduce_groups, _moments_update)
            if not d.signatures  # compiled in this process already
        )
    except AttributeError:  # another numba version: no message rather than a wrong one
        return False


# -- the compiled kernels -------------------------------------------------------------------
if _nb is not None:
    _jit = _nb.njit(cache=True, nogil=True, fastmath=False)
    _pjit = _nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
    _prange = _nb.prange

    @_jit
    def _select(buf, lo, hi, k):  # pragma: no cover - compiled
        """Put the k-th smallest of buf[lo:hi] at buf[k], smaller ones before it and
        larger ones after (Hoare's partition around a median of three)."""
        hi -= 1
        while hi > lo:
            x, y, z = buf[lo], buf[(lo + hi) >> 1], buf[hi]
            pivot = max(min(x, y), min(max(x, y), z))
            i, j = lo, hi
            while i <= j:
                while buf[i] < pivot:
                    i += 1
                while buf[j] > pivot:
                    j -= 1
                if i <= j:
                    buf[i], buf[j] = buf[j], buf[i]
                    i += 1
                    j -= 1
            # now buf[lo:j+1] <= pivot, buf[j+1:i] == pivot, buf[i:hi+1] >= pivot
            if k <= j:
                hi = j
            elif k >= i:
                lo = i
            else:
                return

    @_jit
    def _bracket_median(buf, a, b, small, guess, spread):  # pragma: no cover - compiled
        """The median of buf[a:b] when it lies within ``guess +- spread``: one pass
        counts the values below and copies those inside the bracket, then a small
        selection finishes. Returns (median, pixels inside), or (NaN, -1) when the
        median is outside the bracket (or a value is NaN) and a full selection is
        needed. Exact either way: the counts place every order statistic."""
        n = b - a
        k1, k2 = (n - 1) >> 1, n >> 1
        lo_v, hi_v = guess - spread, guess + spread
        below = 0
        m = 0
        nan = 0
        for k in range(a, b):
            # branch-free: whether a pixel is below, inside or above is a coin toss
            # for the branch predictor
            v = buf[k]
            small[m] = v
            below += v < lo_v
            m += (v >= lo_v) & (v <= hi_v)
            nan += v != v
        if nan:
            return np.nan, -1
        if below > k1 or k2 >= below + m:
            return np.nan, -1
        i = k1 - below
        _select(small, 0, m, i)
        if k2 == k1:
            return small[i], m
        upper = small[i + 1]
        for k in range(i + 2, m):
            if small[k] < upper:
                upper = small[k]
        return (small[i] + upper) / 2.0, m

    @_jit
    def _median(buf, a, b, small, state, g):  # pragma: no cover - compiled
        # state[g] = (last median, bracket half-width): a cell's median moves little
        # from one frame to the next, so the last one brackets the next one
        n = b - a
        guess, spread = state[g, 0], state[g, 1]
        if guess == guess:
            med, m = _bracket_median(buf, a, b, small, guess, spread)
            if m >= 0:
                if 4 * m > n:
                    spread *= 0.7
                state[g, 0], state[g, 1] = med, spread
                return med
            state[g, 1] = spread * 2.0
        med = _order_stat(buf, a, b, 2, 0)
        if med == med:
            state[g, 0] = med
            if not state[g, 1] > 0:
                state[g, 1] = max(abs(med) * 0.02, 1.0)
        return med

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

    @_jit
    def _sums8(block, t0, runs, zero, acc):  # pragma: no cover - compiled
        # 8 frames per pass over the runs: each run's bounds are read once for 8
        # frames and the 8 sums are independent, so the core overlaps them
        f0, f1, f2, f3 = block[t0], block[t0 + 1], block[t0 + 2], block[t0 + 3]
        f4, f5, f6, f7 = block[t0 + 4], block[t0 + 5], block[t0 + 6], block[t0 + 7]
        for r in range(runs.shape[0]):
            a, n, g = runs[r, 0], runs[r, 1], runs[r, 2]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
            for j in range(a, a + n):
                s0 += f0[j]
                s1 += f1[j]
                s2 += f2[j]
                s3 += f3[j]
                s4 += f4[j]
                s5 += f5[j]
                s6 += f6[j]
                s7 += f7[j]
            acc[0, g] += s0
            acc[1, g] += s1
            acc[2, g] += s2
            acc[3, g] += s3
            acc[4, g] += s4
            acc[5, g] += s5
            acc[6, g] += s6
            acc[7, g] += s7

    @_jit
    def _prefix8(block, t0, runs, r0, r1, lo, hi, pre, acc):  # pragma: no cover - compiled
        # runs r0:r1 lie in pixels lo:hi, where they overlap a lot (neuropil rings):
        # running sums along the pixels of 8 frames, then each run is a difference
        # of two of them, whatever its length
        f0, f1, f2, f3 = block[t0], block[t0 + 1], block[t0 + 2], block[t0 + 3]
        f4, f5, f6, f7 = block[t0 + 4], block[t0 + 5], block[t0 + 6], block[t0 + 7]
        p0, p1, p2, p3 = pre[0], pre[1], pre[2], pre[3]
        p4, p5, p6, p7 = pre[4], pre[5], pre[6], pre[7]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = pre[0, 0]
        for j in range(lo, hi):
            i = j - lo + 1
            a0 += f0[j]
            p0[i] = a0
            a1 += f1[j]
            p1[i] = a1
            a2 += f2[j]
            p2[i] = a2
            a3 += f3[j]
            p3[i] = a3
            a4 += f4[j]
            p4[i] = a4
            a5 += f5[j]
            p5[i] = a5
            a6 += f6[j]
            p6[i] = a6
            a7 += f7[j]
            p7[i] = a7
        for r in range(r0, r1):
            a, n, g = runs[r, 0] - lo, runs[r, 1], runs[r, 2]
            b = a + n
            acc[0, g] += p0[b] - p0[a]
            acc[1, g] += p1[b] - p1[a]
            acc[2, g] += p2[b] - p2[a]
            acc[3, g] += p3[b] - p3[a]
            acc[4, g] += p4[b] - p4[a]
            acc[5, g] += p5[b] - p5[a]
            acc[6, g] += p6[b] - p6[a]
            acc[7, g] += p7[b] - p7[a]

    @_jit
    def _striped_sums8(block, t0, runs, stripes, zero, pre, acc):  # pragma: no cover
        # stripes: rows (first run, end run, lo, hi, by running sums?)
        for s in range(stripes.shape[0]):
            r0, r1, lo, hi = stripes[s, 0], stripes[s, 1], stripes[s, 2], stripes[s, 3]
            if stripes[s, 4]:
                _prefix8(block, t0, runs, r0, r1, lo, hi, pre, acc)
            else:
                _sums8(block, t0, runs[r0:r1], zero, acc)

    @_jit
    def _dots8(block, t0, runs, weights, acc):  # pragma: no cover - compiled
        f0, f1, f2, f3 = block[t0], block[t0 + 1], block[t0 + 2], block[t0 + 3]
        f4, f5, f6, f7 = block[t0 + 4], block[t0 + 5], block[t0 + 6], block[t0 + 7]
        for r in range(runs.shape[0]):
            a, n, g, o = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
            for j in range(n):
                w = weights[o + j]
                s0 += f0[a + j] * w
                s1 += f1[a + j] * w
                s2 += f2[a + j] * w
                s3 += f3[a + j] * w
                s4 += f4[a + j] * w
                s5 += f5[a + j] * w
                s6 += f6[a + j] * w
                s7 += f7[a + j] * w
            acc[0, g] += s0
            acc[1, g] += s1
            acc[2, g] += s2
            acc[3, g] += s3
            acc[4, g] += s4
            acc[5, g] += s5
            acc[6, g] += s6
            acc[7, g] += s7

    @_jit
    def _sums1(frame, runs, zero, acc):  # pragma: no cover - compiled
        for r in range(runs.shape[0]):
            a, n, g = runs[r, 0], runs[r, 1], runs[r, 2]
            s = zero
            for j in range(a, a + n):
                s += frame[j]
            acc[g] += s

    @_jit
    def _dots1(frame, runs, weights, acc):  # pragma: no cover - compiled
        for r in range(runs.shape[0]):
            a, n, g, o = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
            s = 0.0
            for j in range(n):
                s += frame[a + j] * weights[o + j]
            acc[g] += s

    @_pjit
    def _reduce_groups(  # pragma: no cover - compiled
        block,
        mean_runs,
        stripes,
        prefix_zero,
        span,
        weighted_runs,
        select_runs,
        methods,
        npix,
        wsums,
        cuts,
        indptr,
        weights,
        zero,
        maxlen,
        n_parts,
        out,
    ):
        # runs: (R, 4) rows (start, length, group, offset in indices), sorted by start
        # so that every frame is read front to back; one table per kind of method so
        # the hot loops do not branch
        n, n_groups = block.shape[0], methods.size
        n_tiles = (n + 7) // 8
        per = (n_tiles + n_parts - 1) // n_parts
        for part in _prange(n_parts):
            acc = np.zeros((8, n_groups), zero.dtype)
            pre = np.zeros((8, span + 1), prefix_zero.dtype)
            wacc = np.zeros((8, n_groups), np.float64)
            buf = np.empty(indptr[-1] if select_runs.shape[0] else 0, np.float64)
            small = np.empty(maxlen, np.float64)
            state = np.full((n_groups, 2), np.nan)
            for tile in range(part * per, min(n_tiles, (part + 1) * per)):
                t0 = tile * 8
                m = min(8, n - t0)
                acc[:] = 0
                wacc[:] = 0.0
                if m == 8:
                    _striped_sums8(block, t0, mean_runs, stripes, zero[0], pre, acc)
                    _dots8(block, t0, weighted_runs, weights, wacc)
                else:
                    for k in range(m):
                        _sums1(block[t0 + k], mean_runs, zero[0], acc[k])
                        _dots1(block[t0 + k], weighted_runs, weights, wacc[k])
                for k in range(m):
                    t = t0 + k
                    frame = block[t]
                    for r in range(select_runs.shape[0]):
                        a, c, o = select_runs[r, 0], select_runs[r, 1], select_runs[r, 3]
                        for j in range(c):
                            buf[o + j] = frame[a + j]
                    for g in range(n_groups):
                        method = methods[g]
                        if method == 0:
                            out[t, g] = acc[k, g] / npix[g]
                        elif method == 1:
                            out[t, g] = wacc[k, g] / wsums[g]
                        elif method == 2:
                            out[t, g] = _median(buf, indptr[g], indptr[g + 1], small, state, g)
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

    @_jit
    def _sq_distances(ys, xs, h, w):  # pragma: no cover - compiled
        """Squared Euclidean distance of every pixel of an (h, w) window to the
        nearest of the pixels (ys, xs), exact integers (Felzenszwalb & Huttenlocher:
        distances down the columns, then the lower envelope of parabolas per row)."""
        big = np.int64(1) << 40
        cell = np.zeros((h, w), np.bool_)
        for k in range(ys.size):
            cell[ys[k], xs[k]] = True
        g = np.empty((h, w), np.int64)
        for x in range(w):
            last = -1
            for y in range(h):
                if cell[y, x]:
                    last = y
                g[y, x] = big if last < 0 else (y - last) * (y - last)
            nxt = -1
            for y in range(h - 1, -1, -1):
                if cell[y, x]:
                    nxt = y
                if nxt >= 0 and (nxt - y) * (nxt - y) < g[y, x]:
                    g[y, x] = (nxt - y) * (nxt - y)
        d2 = np.empty((h, w), np.int64)
        v = np.empty(w, np.int64)
        z = np.empty(w + 1, np.float64)
        for y in range(h):
            f = g[y]
            k = -1
            for q in range(w):
                if f[q] >= big:
                    continue  # no cell pixel in this column
                if k < 0:
                    k = 0
                    v[0] = q
                    z[0] = -np.inf
                    z[1] = np.inf
                    continue
                while True:
                    p = v[k]
                    s = ((f[q] + q * q) - (f[p] + p * p)) / (2.0 * (q - p))
                    if s <= z[k]:
                        k -= 1
                    else:
                        break
                k += 1
                v[k] = q
                z[k] = s
                z[k + 1] = np.inf
            k = 0
            for x in range(w):
                while z[k + 1] < x:
                    k += 1
                d2[y, x] = (x - v[k]) * (x - v[k]) + f[v[k]]
        return d2

    @_jit
    def _cell_ring(ys, xs, exclude, gap, width, need, margin):  # pragma: no cover - compiled
        """One cell's neuropil ring (see :func:`roitrace.neuropil.neuropil_rings`):
        flat indices, ascending. A window around the cell grows until it holds the
        ring; within it, the pixels farther than ``gap`` and not excluded, out to the
        narrowest width that gives ``need`` of them."""
        ny, nx = exclude.shape
        while True:
            y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, ny)
            x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, nx)
            h, w = y1 - y0, x1 - x0
            d2 = _sq_distances(ys - y0, xs - x0, h, w)
            ds = np.empty(h * w, np.int64)
            n_free = 0
            for y in range(h):
                for x in range(w):
                    if d2[y, x] > gap * gap and not exclude[y + y0, x + x0]:
                        ds[n_free] = d2[y, x]
                        n_free += 1
            wd = width
            if need > 0:
                lim = (gap + wd) * (gap + wd)
                inside = 0
                for k in range(n_free):
                    inside += ds[k] <= lim
                if inside < need:
                    if n_free >= need:
                        _select(ds, 0, n_free, need - 1)
                        while (gap + wd) * (gap + wd) < ds[need - 1]:
                            wd += 1
                    whole = y0 == 0 and x0 == 0 and y1 == ny and x1 == nx
                    if (n_free < need or gap + wd > margin - 1) and not whole:
                        margin += margin // 2 + 1  # the ring reaches the window's edge
                        continue
                    if n_free < need:
                        top = d2.max()
                        while (gap + wd) * (gap + wd) < top:
                            wd += 1
            lim = (gap + wd) * (gap + wd)
            out = np.empty(h * w, np.int64)
            n = 0
            for y in range(h):
                for x in range(w):
                    dd = d2[y, x]
                    if dd > gap * gap and dd <= lim and not exclude[y + y0, x + x0]:
                        out[n] = (y + y0) * nx + x + x0
                        n += 1
            return out[:n].copy()


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
        runs = _runs(self.indices, self.indptr)
        kind = self.methods[runs[:, 2]]
        self.mean_runs, self.stripes = _stripes(runs[kind == MEAN])
        self.direct_stripes = self.stripes.copy()
        self.direct_stripes[:, 4] = 0
        self.weighted_runs = np.ascontiguousarray(runs[kind == WEIGHTED])
        self.select_runs = np.ascontiguousarray(runs[kind >= MEDIAN])

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


def _stripes(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs cut at every :data:`STRIPE` boundary, sorted by start, and a table of
    the stripes that hold runs: rows ``(first run, end run, lo, hi, use running
    sums)``, ``lo:hi`` being the pixels the stripe's runs cover."""
    if runs.shape[0] == 0:
        return np.zeros((0, 4), np.int64), np.zeros((0, 5), np.int64)
    pieces = [runs]
    while True:
        last = pieces[-1]
        start, end = last[:, 0], last[:, 0] + last[:, 1]
        cut = (start // STRIPE + 1) * STRIPE
        over = end > cut
        if not over.any():
            break
        head, tail = last.copy(), last[over].copy()
        head[over, 1] = cut[over] - start[over]
        tail[:, 0] = cut[over]
        tail[:, 1] = end[over] - cut[over]
        tail[:, 3] += head[over, 1]
        pieces[-1] = head
        pieces.append(tail)
    runs = np.concatenate(pieces)
    runs = np.ascontiguousarray(runs[np.argsort(runs[:, 0], kind="stable")])
    stripe = runs[:, 0] // STRIPE
    first = np.flatnonzero(np.diff(stripe, prepend=-1))  # runs are sorted by start
    bounds = np.append(first, runs.shape[0])
    end = runs[:, 0] + runs[:, 1]
    lo = runs[first, 0]
    hi = np.maximum.reduceat(end, first)
    pixels = np.add.reduceat(runs[:, 1], first)
    use = pixels > PREFIX_RATIO * (hi - lo)
    table = np.stack([bounds[:-1], bounds[1:], lo, hi, use], axis=1).astype(np.int64)
    return runs, np.ascontiguousarray(table)


def _exact_prefix(dtype: np.dtype) -> bool:
    """Whether running sums of this dtype in a stripe are exact (int32/int64)."""
    return dtype.kind in "iu" and dtype.itemsize <= 4


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
        stripes = groups.stripes if _exact_prefix(flat.dtype) else groups.direct_stripes
        spans = (stripes[:, 3] - stripes[:, 2])[stripes[:, 4] == 1]
        _reduce_groups(
            flat,
            groups.mean_runs,
            stripes,
            np.zeros(1, np.int32 if flat.dtype.itemsize <= 2 else np.int64),
            int(np.max(spans, initial=0)),
            groups.weighted_runs,
            groups.select_runs,
            groups.methods,
            groups.sizes.astype(np.float64),
            groups.wsums,
            groups.cuts,
            groups.indptr,
            groups.weights,
            zero,
            int(groups.sizes.max()),
            _n_parts((n + 7) // 8),
            out,
        )
        return out
    return _reduce_groups_numpy(flat, groups, out)


def _reduce_groups_numpy(flat: np.ndarray, groups: Groups, out: np.ndarray) -> np.ndarray:
    """:func:`reduce_groups` in numpy, with the kernels' arithmetic: pixels made
    float64 before any sum, sums taken in the kernels' order, so that the numbers
    are the same to the bit (the trimmed mean of a float movie, whose order follows
    the kernels' selection, may differ in its last bits)."""
    n_groups = len(groups)
    # The kernels' accumulators: exact int64 sums for integer pixels, else float64.
    total = np.int64 if flat.dtype.kind not in "fc" else np.float64
    for runs, method, weights, scale in (
        (groups.mean_runs, MEAN, None, groups.sizes.astype(np.float64)),
        (groups.weighted_runs, WEIGHTED, groups.weights, groups.wsums),
    ):
        if runs.shape[0] == 0:
            continue
        acc = _run_sums(
            flat, runs, weights, n_groups, np.float64 if weights is not None else total
        )
        use = groups.methods == method
        out[:, use] = acc[:, use] / scale[use]
    for g in np.flatnonzero(groups.methods >= MEDIAN):
        a, b = groups.indptr[g], groups.indptr[g + 1]
        px = flat[:, groups.indices[a:b]].astype(np.float64)
        if groups.methods[g] == MEDIAN:
            # the mean of the two middle values of an even count, (lo + hi) / 2 in
            # float64: numpy's median of float32 pixels would take it in float32
            out[:, g] = np.median(px, axis=1)
            continue
        cut = groups.cuts[g]
        px.sort(axis=1)
        kept = px[:, cut : px.shape[1] - cut]
        value = kept.sum(axis=1) / kept.shape[1]
        value[np.isnan(px[:, -1])] = np.nan  # NaN sorts last; the kernels give NaN for any
        out[:, g] = value
    return out


def _run_sums(
    flat: np.ndarray, runs: np.ndarray, weights: np.ndarray | None, n_groups: int, dtype: type
) -> np.ndarray:
    """Per frame and group, the sum of its pixels (times ``weights``) as the kernels
    add them: each run of pixels from zero, left to right, then the group's runs
    in the order of their starts. Returns (n, n_groups) of ``dtype``."""
    n = flat.shape[0]
    starts, lengths, group, offsets = runs.T
    # runs longest first: the runs still going at step j are a leading slice
    order = np.argsort(-lengths, kind="stable")
    starts, lengths, offsets = starts[order], lengths[order], offsets[order]
    going = np.searchsorted(-lengths, -np.arange(lengths[0]), side="left")  # lengths > j
    sums = np.zeros((n, runs.shape[0]), dtype)
    for j, k in enumerate(going):
        v = flat[:, starts[:k] + j]
        if weights is not None:
            v = v * weights[offsets[:k] + j]
        sums[:, :k] += v
    # each group's runs in the order of their starts (runs are sorted by start),
    # added one rank at a time: one run per group in each step
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    by_group = np.argsort(group, kind="stable")
    rank = np.empty_like(group)
    rank[by_group] = np.arange(group.size) - np.searchsorted(group[by_group], group[by_group])
    acc = np.zeros((n, n_groups), dtype)
    for r in range(int(rank.max()) + 1):
        at = np.flatnonzero(rank == r)
        acc[:, group[at]] += sums[:, back[at]]
    return acc


def cell_ring(
    ys: np.ndarray,
    xs: np.ndarray,
    exclude: np.ndarray,
    gap: int,
    width: int,
    need: int,
    margin: int,
) -> np.ndarray:
    """One cell's neuropil ring as flat indices, ascending (compiled; see
    :func:`roitrace.neuropil.neuropil_rings` for the rule and its scipy twin).

    ``ys, xs`` are the cell's pixels, ``exclude`` the (Y, X) pixels no ring may
    hold, ``need`` the fewest pixels wanted (0: none) and ``margin`` the first
    window's reach around the cell's bounding box. Without numba, the scipy twin.
    """
    args = (
        np.ascontiguousarray(ys, np.int64),
        np.ascontiguousarray(xs, np.int64),
        np.ascontiguousarray(exclude, np.bool_),
        int(gap),
        int(width),
        int(need),
        int(margin),
    )
    if _nb is None:
        return _cell_ring_numpy(*args).astype(np.int64)
    return _cell_ring(*args)


def _cell_ring_numpy(
    ys: np.ndarray,
    xs: np.ndarray,
    exclude: np.ndarray,
    gap: int,
    width: int,
    need: int,
    margin: int,
) -> np.ndarray:
    """One cell's ring with scipy: the reference of the compiled :func:`cell_ring`
    (the same pixels), and what runs without numba."""
    from scipy.ndimage import distance_transform_edt

    ny, nx = exclude.shape
    while True:
        y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, ny)
        x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, nx)
        outside = np.ones((y1 - y0, x1 - x0), bool)
        outside[ys - y0, xs - x0] = False
        # squared distance to the cell: exact integers (rounding undoes the sqrt)
        d2 = np.rint(distance_transform_edt(outside) ** 2).astype(np.int64)
        free = (d2 > gap * gap) & ~exclude[y0:y1, x0:x1]
        w = width
        if need and np.count_nonzero(free & (d2 <= (gap + w) ** 2)) < need:
            ds = np.sort(d2[free])
            if ds.size >= need:
                while (gap + w) ** 2 < ds[need - 1]:
                    w += 1
            whole = (y0, x0, y1, x1) == (0, 0, ny, nx)
            if (ds.size < need or gap + w > margin - 1) and not whole:
                margin += margin // 2 + 1  # the ring reaches the window's edge: look further
                continue
            if ds.size < need:
                while (gap + w) ** 2 < d2.max():
                    w += 1
        yy, xx = np.nonzero(free & (d2 <= (gap + w) ** 2))
        return (yy + y0) * nx + (xx + x0)


def moments_update(block: np.ndarray, shift: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """Add a chunk's per-pixel sum to ``s1`` and sum of ``(x - shift)**2`` to ``s2``.

    ``s1`` is exact for integer movies, so ``s1 / n`` is numpy's mean to the bit;
    the shift (a per-pixel value near the mean) keeps the variance free of
    cancellation: ``var = s2 / n - (s1 / n - shift)**2``.
    """
    if _nb is not None:
        _moments_update(np.ascontiguousarray(block), shift, s1, s2)
        return
    # the kernel's order: each pixel's values added one frame after the other
    # (a running sum over frames), in float64
    for part in _frame_steps(block):
        v = part.astype(np.float64)
        d = v - shift
        np.multiply(d, d, out=d)
        _add_in_order(s1, v)
        _add_in_order(s2, d)


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
    for part in _frame_steps(block):
        d = part - shift  # float64, as in the kernel
        _add_in_order(right[:, :-1], d[:, :, :-1] * d[:, :, 1:])
        _add_in_order(down[:-1, :], d[:, :-1, :] * d[:, 1:, :])
        _add_in_order(down_right[:-1, :-1], d[:, :-1, :-1] * d[:, 1:, 1:])
        _add_in_order(down_left[:-1, 1:], d[:, :-1, 1:] * d[:, 1:, :-1])


def _frame_steps(block: np.ndarray) -> list[np.ndarray]:
    """``block`` in runs of frames whose float64 copies take about 8 MiB."""
    per = max(1, (1 << 20) // max(block[0].size, 1)) if block.shape[0] else 1
    return [block[k : k + per] for k in range(0, block.shape[0], per)]


def _add_in_order(total: np.ndarray, terms: np.ndarray) -> None:
    """``total += terms[0]; total += terms[1]; ...`` as the kernels do, one
    frame after the other (a cumulative sum adds in that order; ``sum`` would
    pair the terms differently). ``terms`` (float64) is overwritten."""
    terms[0] += total
    np.cumsum(terms, axis=0, out=terms)
    total[...] = terms[-1]
