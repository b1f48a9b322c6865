"""The compiled kernels (numba): imported on first use, never at ``import roitrace``.

Only :mod:`roitrace._kernels` imports this module, and only when numba is in use;
see there for what each kernel computes and for the numpy versions. Every kernel
is serial and releases the GIL: the caller runs them on several threads.
"""

from __future__ import annotations

import numba as _nb
import numpy as np

_jit = _nb.njit(cache=True, nogil=True, fastmath=False)


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
    _select(small, m - m, m, i)  # not the constant 0: numba would compile a copy for it
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
    med = _middle(buf, a, b)
    if med == med:
        state[g, 0] = med
        if not state[g, 1] > 0:
            state[g, 1] = max(abs(med) * 0.02, 1.0)
    return med


@_jit
def _middle(buf, a, b):  # pragma: no cover - compiled
    # the median of buf[a:b], numpy's: the mean of the two middle values
    for k in range(a, b):
        if buf[k] != buf[k]:  # NaN: numpy's median gives NaN too
            return buf[k]
    n = b - a
    half = a + (n >> 1)
    _select(buf, a, b, half)
    if n & 1:
        return buf[half]
    lower = buf[a]
    for k in range(a + 1, half):
        if buf[k] > lower:
            lower = buf[k]
    return (lower + buf[half]) / 2.0


@_jit
def _order_stat(buf, a, b, method, cut):  # pragma: no cover - compiled
    if method == 2:
        return _middle(buf, a, b)
    for k in range(a, b):
        if buf[k] != buf[k]:  # NaN: numpy's median gives NaN too
            return buf[k]
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
def _frames8(block, t0, m):  # pragma: no cover - compiled
    # the 8 frames of a tile; a short last tile repeats its last frame, so one
    # code path serves every tile and the extra lanes are never written out
    last = t0 + m - 1
    return (
        block[t0],
        block[min(t0 + 1, last)],
        block[min(t0 + 2, last)],
        block[min(t0 + 3, last)],
        block[min(t0 + 4, last)],
        block[min(t0 + 5, last)],
        block[min(t0 + 6, last)],
        block[min(t0 + 7, last)],
    )


# Index arrays are uint64 in the hot loops: numba checks a signed index for a
# negative value (wraparound) at every access, which cost 40 % of the time of a
# run's sum; an unsigned index has no such check.


@_jit
def _direct_sums(frames, runs, r0, r1, zero, acc):  # pragma: no cover - compiled
    # runs r0:r1 (start, length, group): each run's 8 sums from ``zero``, then
    # added to its group's row of 8 (one cache line of accumulators per group)
    f0, f1, f2, f3, f4, f5, f6, f7 = frames
    for r in range(r0, r1):
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
        row = acc[g]
        row[0] += s0
        row[1] += s1
        row[2] += s2
        row[3] += s3
        row[4] += s4
        row[5] += s5
        row[6] += s6
        row[7] += s7


@_jit
def _running_sums(frames, runs, r0, r1, bounds, b0, b1, pre, acc):  # pragma: no cover
    # pixels where groups overlap several deep (neuropil rings): one pass reads
    # every covered pixel once, keeping running sums of 8 frames only at the runs'
    # ends (bounds b0:b1: (position, covered up to the next bound)); each run
    # (first bound, last bound, group) is then a difference of two of them,
    # whatever its length
    f0, f1, f2, f3, f4, f5, f6, f7 = frames
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = pre[0, 0] * 0
    one = np.uint64(1)
    for q in range(b0, b1):
        p = pre[q - b0]
        p[0] = a0
        p[1] = a1
        p[2] = a2
        p[3] = a3
        p[4] = a4
        p[5] = a5
        p[6] = a6
        p[7] = a7
        if bounds[q, 1]:
            for j in range(bounds[q, 0], bounds[q + one, 0]):
                a0 += f0[j]
                a1 += f1[j]
                a2 += f2[j]
                a3 += f3[j]
                a4 += f4[j]
                a5 += f5[j]
                a6 += f6[j]
                a7 += f7[j]
    p = pre[b1 - b0]
    p[0] = a0
    p[1] = a1
    p[2] = a2
    p[3] = a3
    p[4] = a4
    p[5] = a5
    p[6] = a6
    p[7] = a7
    for r in range(r0, r1):
        hi = pre[runs[r, 1]]
        lo = pre[runs[r, 0]]
        row = acc[runs[r, 2]]
        row[0] += hi[0] - lo[0]
        row[1] += hi[1] - lo[1]
        row[2] += hi[2] - lo[2]
        row[3] += hi[3] - lo[3]
        row[4] += hi[4] - lo[4]
        row[5] += hi[5] - lo[5]
        row[6] += hi[6] - lo[6]
        row[7] += hi[7] - lo[7]


@_jit
def _dots(frames, runs, weights, acc):  # pragma: no cover - compiled
    # runs (start, length, group, offset of the run's weights)
    f0, f1, f2, f3, f4, f5, f6, f7 = frames
    for r in range(runs.shape[0]):
        a, n, g, o = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for j in range(n):
            w = weights[o + j]
            k = a + j
            s0 += f0[k] * w
            s1 += f1[k] * w
            s2 += f2[k] * w
            s3 += f3[k] * w
            s4 += f4[k] * w
            s5 += f5[k] * w
            s6 += f6[k] * w
            s7 += f7[k] * w
        row = acc[g]
        row[0] += s0
        row[1] += s1
        row[2] += s2
        row[3] += s3
        row[4] += s4
        row[5] += s5
        row[6] += s6
        row[7] += s7


@_jit
def _sum_tiles(  # pragma: no cover - compiled
    block,
    t_lo,
    t_hi,
    direct,
    running,
    stripes,
    bounds,
    dot_runs,
    weights,
    methods,
    scale,
    zero,
    pre,
    acc,
    wacc,
    out,
    col,
):
    """Frames t_lo:t_hi of the mean and weighted groups, 8 frames at a time.

    ``stripes`` rows (kind, first run, end run, first bound, last bound): kind 0
    sums ``direct`` runs pixel by pixel, kind 1 takes ``running`` runs from running
    sums. Means are ``acc / scale``, weighted means ``wacc / scale``, written to
    ``out[group, col + frame]`` (always C-contiguous: one layout, one compile)."""
    n_groups = methods.size
    for t0 in range(t_lo, t_hi, 8):
        m = min(8, t_hi - t0)
        acc[:] = 0
        wacc[:] = 0.0
        frames = _frames8(block, t0, m)
        for s in range(stripes.shape[0]):
            if stripes[s, 0] == 0:
                _direct_sums(frames, direct, stripes[s, 1], stripes[s, 2], zero, acc)
            else:
                _running_sums(
                    frames,
                    running,
                    stripes[s, 1],
                    stripes[s, 2],
                    bounds,
                    stripes[s, 3],
                    stripes[s, 4],
                    pre,
                    acc,
                )
        _dots(frames, dot_runs, weights, wacc)
        for g in range(n_groups):
            method = methods[g]
            if method == 0:
                for k in range(m):
                    out[g, col + t0 + k] = acc[g, k] / scale[g]
            elif method == 1:
                for k in range(m):
                    out[g, col + t0 + k] = wacc[g, k] / scale[g]


@_jit
def _gather(frame, runs, buf):  # pragma: no cover - compiled
    # runs (start, length, group, offset in buf): the groups' pixels, one after another
    for r in range(runs.shape[0]):
        a, c, o = runs[r, 0], runs[r, 1], runs[r, 3]
        for j in range(c):
            buf[o + j] = frame[a + j]


@_jit
def _select_frames(  # pragma: no cover - compiled
    block, t_lo, t_hi, runs, methods, indptr, cuts, buf, small, state, out, col
):
    """Frames t_lo:t_hi of the median and trimmed-mean groups: each frame's pixels
    of these groups gathered (``runs``: start, length, group, offset in ``buf``),
    then each group's order statistics found in place."""
    n_groups = methods.size
    for t in range(t_lo, t_hi):
        _gather(block[t], runs, buf)
        for g in range(n_groups):
            method = methods[g]
            if method == 2:
                out[g, col + t] = _median(buf, indptr[g], indptr[g + 1], small, state, g)
            elif method == 3:
                out[g, col + t] = _order_stat(buf, indptr[g], indptr[g + 1], method, cuts[g])


@_jit
def _trimmed_frames(  # pragma: no cover - compiled
    block, t_lo, t_hi, runs, methods, indptr, cuts, buf, out, col
):
    """:func:`_select_frames` for the trimmed-mean groups alone (the medians of
    integer pixels are counted): without the median's code, a shorter compile."""
    n_groups = methods.size
    for t in range(t_lo, t_hi):
        _gather(block[t], runs, buf)
        for g in range(n_groups):
            if methods[g] == 3:
                out[g, col + t] = _order_stat(buf, indptr[g], indptr[g + 1], methods[g], cuts[g])


@_jit
def _count_median(frame, runs, r0, r1, n, lo, hist):  # pragma: no cover - compiled
    """The median of a group of integer pixels (runs r0:r1, n pixels) by counting:
    values ``lo`` to ``lo + W - 1`` each have a bin of ``hist`` (W + 2 bins, all 0
    on entry and on return), those below or above one bin each. Returns NaN when
    the median is not in the counted range. Exact: the counts place every order
    statistic, and the two middle values are averaged as numpy does."""
    top = hist.size - 1
    for r in range(r0, r1):
        a, c = runs[r, 0], runs[r, 1]
        for j in range(a, a + c):
            # branch-free: bin 0 below, bin top above
            d = min(max(np.int64(frame[j]) - lo + 1, 0), top)
            hist[np.uint64(d)] += 1
    k1, k2 = (n - 1) >> 1, n >> 1
    seen = hist[0]
    ok = seen <= k1 and n - hist[top] > k2
    v1 = v2 = -1
    if ok:
        for i in range(1, top):
            seen += hist[i]
            if v1 < 0 and seen > k1:
                v1 = i
            if seen > k2:
                v2 = i
                break
    hist[:] = 0
    if not ok:
        return np.nan
    return ((lo + v1 - 1) + (lo + v2 - 1)) / 2.0


@_jit
def _median_frames(  # pragma: no cover - compiled
    block, t_lo, t_hi, runs, ptr, groups, small, hist, guess, out, col
):
    """Frames t_lo:t_hi of the median groups of an integer movie: each group's
    median by counting around the last frame's (``guess``, per group), the
    pixels gathered and selected only when it moved out of the counted range.
    ``runs`` (start, length) of group ``groups[i]`` are rows ``ptr[i]:ptr[i+1]``."""
    half = np.int64(hist.size - 2) >> 1
    for t in range(t_lo, t_hi):
        frame = block[t]
        for i in range(groups.size):
            r0, r1 = ptr[i], ptr[i + 1]
            n = 0
            for r in range(r0, r1):
                n += runs[r, 1]
            med = np.nan
            if guess[i] == guess[i]:
                med = _count_median(frame, runs, r0, r1, n, np.int64(guess[i]) - half, hist)
            if med != med:
                m = 0
                for r in range(r0, r1):
                    a, c = runs[r, 0], runs[r, 1]
                    for j in range(a, a + c):
                        small[m] = frame[j]
                        m += 1
                med = _middle(small, m - m, m)
            guess[i] = np.floor(med)
            out[groups[i], col + t] = med


@_jit
def _moments_rows(block, y0, y1, shift, s1, s2):  # pragma: no cover - compiled
    n, _, nx = block.shape
    for y in range(y0, y1):
        for t in range(n):
            for x in range(nx):
                v = np.float64(block[t, y, x])
                s1[y, x] += v
                d = v - shift[y, x]
                s2[y, x] += d * d


@_jit
def _neighbour_rows(  # pragma: no cover - compiled
    block, y0, y1, shift, right, down, down_right, down_left
):
    n, ny, nx = block.shape
    for y in range(y0, y1):
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
    # loops, not ys.min() and the like: each numpy method is one more compile
    ymin, ymax, xmin, xmax = ys[0], ys[0], xs[0], xs[0]
    for k in range(ys.size):
        ymin, ymax = min(ymin, ys[k]), max(ymax, ys[k])
        xmin, xmax = min(xmin, xs[k]), max(xmax, xs[k])
    while True:
        y0, y1 = max(ymin - margin, 0), min(ymax + margin + 1, ny)
        x0, x1 = max(xmin - margin, 0), min(xmax + margin + 1, nx)
        h, w = y1 - y0, x1 - x0
        d2 = _sq_distances(ys - y0, xs - x0, h, w)
        ds = np.empty(h * w, np.float64)  # exact: squared distances are small integers
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
                    _select(ds, n_free - n_free, n_free, need - 1)
                    while (gap + wd) * (gap + wd) < ds[need - 1]:
                        wd += 1
                whole = y0 == 0 and x0 == 0 and y1 == ny and x1 == nx
                if (n_free < need or gap + wd > margin - 1) and not whole:
                    margin += margin // 2 + 1  # the ring reaches the window's edge
                    continue
                if n_free < need:
                    top = d2[0, 0]
                    for y in range(h):
                        for x in range(w):
                            top = max(top, d2[y, x])
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
