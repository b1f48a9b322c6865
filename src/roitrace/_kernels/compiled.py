"""The compiled kernels (numba): imported on first use, never at ``import roitrace``.

Only :mod:`roitrace._kernels` imports this module, and only when numba is in use;
see there for what each kernel computes and for the numpy versions.
"""

from __future__ import annotations

import numba as _nb
import numpy as np

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
