"""The kernels in numpy (and scipy): the reference the compiled kernels are tested
against, and what runs without numba or with ``ROITRACE_NUMBA=0``.

Each function takes the kernels' arithmetic (float64, sums in the kernels' order),
so the numbers are those of the compiled kernels to the bit (the trimmed mean of a
float movie to within a few float64 ulps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .codes import MEAN, MEDIAN, WEIGHTED

if TYPE_CHECKING:
    from . import Groups


def reduce_groups(flat: np.ndarray, groups: Groups, out: np.ndarray) -> np.ndarray:
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
        acc = run_sums(flat, runs, weights, n_groups, np.float64 if weights is not None else total)
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


def run_sums(
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
    """Per-pixel sum and shifted sum of squares, in the kernel's order: each pixel's
    values added one frame after the other (a running sum over frames), in float64."""
    for part in frame_steps(block):
        v = part.astype(np.float64)
        d = v - shift
        np.multiply(d, d, out=d)
        add_in_order(s1, v)
        add_in_order(s2, d)


def neighbour_update(
    block: np.ndarray,
    shift: np.ndarray,
    right: np.ndarray,
    down: np.ndarray,
    down_right: np.ndarray,
    down_left: np.ndarray,
) -> None:
    """Shifted products with the right, down, down-right and down-left neighbours."""
    for part in frame_steps(block):
        d = part - shift  # float64, as in the kernel
        add_in_order(right[:, :-1], d[:, :, :-1] * d[:, :, 1:])
        add_in_order(down[:-1, :], d[:, :-1, :] * d[:, 1:, :])
        add_in_order(down_right[:-1, :-1], d[:, :-1, :-1] * d[:, 1:, 1:])
        add_in_order(down_left[:-1, 1:], d[:, :-1, 1:] * d[:, 1:, :-1])


def frame_steps(block: np.ndarray) -> list[np.ndarray]:
    """``block`` in runs of frames whose float64 copies take about 8 MiB."""
    per = max(1, (1 << 20) // max(block[0].size, 1)) if block.shape[0] else 1
    return [block[k : k + per] for k in range(0, block.shape[0], per)]


def add_in_order(total: np.ndarray, terms: np.ndarray) -> None:
    """``total += terms[0]; total += terms[1]; ...`` as the kernels do, one
    frame after the other (a cumulative sum adds in that order; ``sum`` would
    pair the terms differently). ``terms`` (float64) is overwritten."""
    terms[0] += total
    np.cumsum(terms, axis=0, out=terms)
    total[...] = terms[-1]
