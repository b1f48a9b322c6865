"""The running NaN-skipping median's compiled kernel (numba), imported on first use
by :mod:`roitrace._kernels.running` only when numba is in use."""

from __future__ import annotations

import numba as _nb
import numpy as np

_jit = _nb.njit(cache=True, nogil=True, fastmath=False)


@_jit
def _kth(tree, n, top, k):  # pragma: no cover - compiled
    # 0-based rank of the k-th smallest counted value (k >= 1): Fenwick tree descent
    pos = 0
    step = top
    while step > 0:
        if pos + step <= n and tree[pos + step] < k:
            pos += step
            k -= tree[pos]
        step //= 2
    return pos


@_jit
def _update(tree, n, p, delta):  # pragma: no cover - compiled
    p += 1
    while p <= n:
        tree[p] += delta
        p += p & -p


@_jit
def _source(j, h, n, nearest):  # pragma: no cover - compiled
    # padded position j -> index of the trace; reflect: d c b a | a b c d | d c b a,
    # nearest: a a a a | a b c d | d d d d
    if j < h:
        return 0 if nearest else h - 1 - j
    if j < h + n:
        return j - h
    return n - 1 if nearest else 2 * n + h - 1 - j


@_jit
def rank_row(x, size, nearest, q, out):  # pragma: no cover - compiled
    """Running order statistic of one row over a centred window (scipy's centring):
    the median of the values that are not NaN (q < 0; two middle values averaged),
    or scipy's percentile rank ``int(count * q / 100)`` of them."""
    n = x.shape[0]
    h = size // 2
    key = np.where(np.isnan(x), np.inf, x)  # NaN sorts last and is never counted
    order = np.argsort(key)  # ties in any order: equal values, same k-th value
    ranked = np.empty(n, np.float64)
    rank = np.empty(n, np.int64)
    for r in range(n):
        ranked[r] = key[order[r]]
        rank[order[r]] = r
    tree = np.zeros(n + 1, np.int64)
    top = 1
    while top * 2 <= n:
        top *= 2
    count = 0
    for j in range(n + size - 1):
        i = _source(j, h, n, nearest)
        if not np.isnan(x[i]):
            _update(tree, n, rank[i], 1)
            count += 1
        if j < size - 1:
            continue
        start = j - size + 1
        if count == 0:
            out[start] = np.nan
        elif q >= 0:
            k = count - 1 if q == 100.0 else int(float(count) * q / 100.0)
            out[start] = ranked[_kth(tree, n, top, k + 1)]
        elif count % 2:
            out[start] = ranked[_kth(tree, n, top, (count + 1) // 2)]
        else:
            lo = ranked[_kth(tree, n, top, count // 2)]
            out[start] = (lo + ranked[_kth(tree, n, top, count // 2 + 1)]) / 2
        i = _source(start, h, n, nearest)  # the position leaving the window
        if not np.isnan(x[i]):
            _update(tree, n, rank[i], -1)
            count -= 1


@_nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def rank_rows(x, size, nearest, q, out):  # pragma: no cover - compiled
    for r in _nb.prange(x.shape[0]):
        rank_row(x[r], size, nearest, q, out[r])
