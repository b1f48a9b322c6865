"""The compiled pass of :func:`roitrace.contamination.neuropil_coefficient`'s
regression (numba): imported on first use, only when numba is in use.

:func:`roitrace.contamination._weighted_sums_numpy` computes the same sums.
"""

from __future__ import annotations

import numba as _nb
import numpy as np


@_nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def weighted_sums(x, y, rows, r, c, threshold, scale):  # pragma: no cover - compiled
    """For row ``rows[i]`` of x and y, Huber-weighted sums over the quiet frames
    (``y - r x <= threshold``): ``(sum w, sum w x, sum w y, sum w x x, sum w x y)``,
    the weight of a quiet frame being ``min(1, scale / |y - r x - c|)``; in one
    pass, without temporaries."""
    n_rows, n_t = rows.size, x.shape[1]
    out = np.zeros((n_rows, 5))
    for i in _nb.prange(n_rows):
        k = rows[i]
        ri, ci, ti, si = r[i], c[i], threshold[i], scale[i]
        sw = sx = sy = sxx = sxy = 0.0
        for t in range(n_t):
            xv, yv = x[k, t], y[k, t]
            e = yv - ri * xv
            if e <= ti:
                d = abs(e - ci)
                w = si / d if d > si else 1.0
                wx = w * xv
                sw += w
                sx += wx
                sy += w * yv
                sxx += wx * xv
                sxy += wx * yv
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = sw, sx, sy, sxx, sxy
    return out
