"""Compiled kernels for the engine's hot loops (numba), with numpy equivalents.

The engine (:mod:`roitrace.engine`) hands each chunk of frames to consumers; the
consumers that touch every pixel of every frame call these kernels:

* :func:`reduce_groups` (:func:`reduce_into`): gather + reduce. Many pixel *groups*
  (the cells and their neuropil rings), stored as one CSR table (``indptr``, flat
  pixel ``indices``, per-pixel ``weights``), are each reduced to one value per frame
  by their own method (mean, weighted mean, median, trimmed mean). Means and
  weighted means take 8 frames at a time, each group's 8 sums in one cache line;
  where groups overlap several deep (crowded neuropil rings), the covered pixels
  of a stripe of the frame are read once and each run of a group's pixels is the
  difference of two running sums. Medians of integer pixels are counted around
  the last frame's median; other medians and trimmed means use in-place selection
  (quickselect), not sorting.
* :func:`cell_ring`: one cell's neuropil ring from exact squared distances.
* :func:`moments_update`: per-pixel sum and shifted sum of squares (mean and std).
* :func:`neighbour_update`: per-pixel sums of products with the 4 forward
  neighbours, for the local correlation image.

The kernels release the GIL; :func:`reduce_groups` splits the frames of a chunk,
the projections the rows of a frame, between :func:`threads` threads of a Python
pool (numba's own parallel loops took most of a first run's compile time).

Accumulation is float64 (int64 for the sums of integer pixels). For integer
movies the sums are exact, so means equal numpy's to the last bit; median and
trimmed-mean order statistics are exact for any dtype. A kernel is compiled when
a call first needs it, once per input dtype, and cached on disk (numba's
``cache=True``: next to this module, or in the user's cache folder when that is
read-only), so a new process only loads it; the progress bar says when a pass
compiles (:func:`first_compile`).

Without numba (``pip install numba``) or with ``ROITRACE_NUMBA=0`` every kernel
runs as plain numpy (and scipy for :func:`cell_ring`), slower but with the same
results: float64 accumulation in the kernels' order, so the same numbers to the
bit, except the trimmed mean of a float movie, whose sum follows the kernels'
selection order (the same to within a few float64 ulps).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import reference
from .codes import (
    MEAN,
    MEDIAN,
    MEDIAN_BINS,
    METHOD_CODES,
    PREFIX_RATIO,
    STRIPE,
    TRIMMED,
    WEIGHTED,
)

log = logging.getLogger(__name__)

__all__ = [
    "MEAN",
    "MEDIAN",
    "METHOD_CODES",
    "PREFIX_RATIO",
    "STRIPE",
    "TRIMMED",
    "WEIGHTED",
    "Groups",
    "available",
    "cell_ring",
    "first_compile",
    "kernels_for",
    "moments_update",
    "neighbour_update",
    "reduce_groups",
    "reduce_into",
    "rings_compiled",
]

#: Cells from which the compiled ring kernel pays for its loading (:func:`rings_compiled`).
RING_KERNEL_CELLS = 4000
#: The numpy twin of the compiled ring (tests compare the two).
_cell_ring_numpy = reference.cell_ring


def _numba():
    if os.environ.get("ROITRACE_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import numba
    except ImportError:  # an optional speed-up: numpy does the same, slower
        return None
    return numba


_UNRESOLVED: Any = object()
#: numba once looked up (None: not installed or disabled); tests set it to None.
_nb: Any = _UNRESOLVED
_kernels: Any = None


def _numba_module() -> Any:
    global _nb
    if _nb is _UNRESOLVED:
        _nb = _numba()
    return _nb


def _compiled() -> Any:
    """The compiled kernels' module (imports numba and defines them, once)."""
    global _kernels
    if _kernels is None:
        from . import compiled

        _kernels = compiled
    return _kernels


def available() -> bool:
    """Whether the compiled kernels are in use (numba importable, not disabled)."""
    return _numba_module() is not None


def first_compile(kernels: Iterable[str] = ("_sum_tiles",)) -> bool:
    """Whether the next pass will compile one of ``kernels`` (the compiled
    module's function names): none of its code in numba's on-disk cache yet.

    Compiling takes seconds once per machine (and numba version); the progress
    bar says so, instead of seeming to hang.
    """
    if not available():
        return False
    c = _compiled()
    try:
        return any(
            not os.path.exists(d._cache._cache_file._index_path)  # numba internals: a guess
            for d in (getattr(c, name) for name in kernels)
            if not d.signatures  # compiled in this process already
        )
    except AttributeError:  # another numba version: no message rather than a wrong one
        return False


def kernels_for(groups: Groups, dtype: np.dtype) -> tuple[str, ...]:
    """The compiled kernels :func:`reduce_groups` runs for these groups and pixels."""
    names = []
    if groups.mean_runs.shape[0] + groups.weighted_runs.shape[0]:
        names.append("_sum_tiles")
    medians = bool(np.any(groups.methods == MEDIAN))
    trimmed = bool(np.any(groups.methods == TRIMMED))
    if _counts(dtype):
        names += ["_median_frames"] * medians + ["_trimmed_frames"] * trimmed
    elif medians or trimmed:
        names.append("_select_frames")
    return tuple(names)


def _counts(dtype: np.dtype) -> bool:
    """Whether medians of these pixels are counted (integers, exact in int64: not
    64-bit), so that selection serves only the trimmed means."""
    return dtype.kind in "iu" and dtype.itemsize <= 4


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
        self.weighted_runs = np.ascontiguousarray(runs[kind == WEIGHTED])
        self.select_runs = np.ascontiguousarray(runs[kind >= MEDIAN])
        # median groups' runs group by group, for counting medians of integer pixels
        by_group = runs[kind == MEDIAN]
        by_group = by_group[np.lexsort((by_group[:, 0], by_group[:, 2]))]
        self.median_groups = np.flatnonzero(self.methods == MEDIAN).astype(np.uint64)
        self.median_runs = np.ascontiguousarray(by_group[:, :2], dtype=np.uint64)
        counts = np.bincount(by_group[:, 2], minlength=self.sizes.size)[self.median_groups]
        self.median_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)
        self._tables: dict[bool, SumTables] = {}

    def sum_tables(self, running: bool) -> SumTables:
        """The compiled kernels' tables of the mean groups: with ``running``, the
        stripes marked in :attr:`stripes` take running sums (exact for integer
        pixels only); without, every stripe sums its runs pixel by pixel."""
        if running not in self._tables:
            use = self.stripes[:, 4] == 1 if running else np.zeros(len(self.stripes), bool)
            self._tables[running] = SumTables(self.mean_runs, self.stripes, use)
        return self._tables[running]

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
    use = pixels > PREFIX_RATIO * _covered(runs, bounds)
    table = np.stack([bounds[:-1], bounds[1:], lo, hi, use], axis=1).astype(np.int64)
    return runs, np.ascontiguousarray(table)


def _covered(runs: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Pixels covered by at least one run, per stripe (runs ``bounds[s]:bounds[s+1]``)."""
    out = np.zeros(bounds.size - 1, np.int64)
    for s in range(bounds.size - 1):
        pos, cov = _bounds(runs[bounds[s] : bounds[s + 1]])
        out[s] = int(np.sum(np.diff(pos) * cov[:-1]))
    return out


def _bounds(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs' ends, sorted and unique, and whether the pixels from each end up
    to the next one are covered by a run."""
    start, end = runs[:, 0], runs[:, 0] + runs[:, 1]
    pos = np.unique(np.concatenate([start, end]))
    depth = np.zeros(pos.size + 1, np.int64)
    np.add.at(depth, np.searchsorted(pos, start), 1)
    np.add.at(depth, np.searchsorted(pos, end), -1)
    return pos, (np.cumsum(depth)[:-1] > 0).astype(np.int64)


class SumTables:
    """The mean groups' runs as the compiled kernel reads them (uint64 tables).

    ``stripes`` rows ``(kind, first run, end run, first bound, last bound)``: kind 0
    sums the ``direct`` runs ``(start, length, group)`` pixel by pixel; kind 1 reads
    the stripe's covered pixels once and takes each ``running`` run ``(first bound,
    last bound, group)`` as a difference of running sums at ``bounds`` rows
    ``(position, covered up to the next bound)``.
    """

    def __init__(self, runs: np.ndarray, stripes: np.ndarray, running: np.ndarray) -> None:
        direct, indexed, table, bounds = [], [], [], []
        n_direct = n_indexed = n_bounds = 0
        self.span = 1
        for (r0, r1, *_), use in zip(stripes, running, strict=True):
            part = runs[r0:r1]
            if use:
                pos, cov = _bounds(part)
                ends = part[:, 0] + part[:, 1]
                rows = np.stack(
                    [np.searchsorted(pos, part[:, 0]), np.searchsorted(pos, ends), part[:, 2]],
                    axis=1,
                )
                table.append(
                    (1, n_indexed, n_indexed + len(rows), n_bounds, n_bounds + pos.size - 1)
                )
                indexed.append(rows)
                bounds.append(np.stack([pos, cov], axis=1))
                n_indexed += len(rows)
                n_bounds += pos.size
                self.span = max(self.span, pos.size)
            else:
                table.append((0, n_direct, n_direct + len(part), 0, 0))
                direct.append(part[:, :3])
                n_direct += len(part)
        self.direct = _uint_table(direct, 3)
        self.running = _uint_table(indexed, 3)
        self.bounds = _uint_table(bounds, 2)
        self.stripes = _uint_table([np.array(table, np.int64).reshape(-1, 5)], 5)


def _uint_table(parts: list[np.ndarray], width: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, width), np.uint64)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.uint64)


def _exact_prefix(dtype: np.dtype) -> bool:
    """Whether running sums of this dtype in a stripe are exact (int32/int64)."""
    return dtype.kind in "iu" and dtype.itemsize <= 4


def threads() -> int:
    """Threads the compiled kernels use: numba's thread count (``NUMBA_NUM_THREADS``,
    or what :func:`roitrace.engine.kernel_threads` set)."""
    return _numba_module().get_num_threads() if available() else 1


#: The kernels' thread pool and its size, made when first needed.
_POOL: tuple[ThreadPoolExecutor, int] | None = None
_POOL_LOCK = threading.Lock()


def _in_parallel(work: Callable[[int, int], None], n: int, step: int = 1) -> None:
    """``work(lo, hi)`` over ``0:n`` cut into one part per thread (cuts on
    multiples of ``step``), the last part on this thread. The kernels release the
    GIL, so the parts run at once; numba's own parallel loops are not used because
    compiling them took most of the first run's time."""
    global _POOL
    n_parts = max(1, min(threads(), -(-n // step)))
    per = -(-n // (n_parts * step)) * step
    cuts = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
    if len(cuts) <= 1:
        work(0, n)
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL[1] < len(cuts) - 1:
            size = len(cuts) - 1
            _POOL = (ThreadPoolExecutor(size, thread_name_prefix="roitrace-kernel"), size)
        pool = _POOL[0]
    futures = [pool.submit(work, lo, hi) for lo, hi in cuts[:-1]]
    try:
        work(*cuts[-1])
    finally:
        for f in futures:
            f.result()


def reduce_groups(block: np.ndarray, groups: Groups, out: np.ndarray | None = None) -> np.ndarray:
    """Reduce every pixel group of every frame of ``block`` to one value.

    Parameters
    ----------
    block : (n, Y, X) or (n, Y * X) ndarray
        A chunk of frames.
    groups : Groups
    out : (n, G) float64 ndarray, optional
        Where to write (any layout; :func:`reduce_into` writes in place).

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
    traces = np.empty((len(groups), block.shape[0]), np.float64)
    reduce_into(block, groups, traces, 0)
    if out is None:
        return traces.T
    out[...] = traces.T
    return out


def reduce_into(block: np.ndarray, groups: Groups, traces: np.ndarray, offset: int) -> None:
    """:func:`reduce_groups` written into ``traces[:, offset : offset + n]``, where
    ``traces`` is a C-contiguous (G, T) float64 array of every frame's values."""
    n = block.shape[0]
    flat = _read_only(np.ascontiguousarray(block.reshape(n, -1)))
    if n == 0 or len(groups) == 0:
        return
    if available():
        _reduce_compiled(flat, groups, traces, offset)
    else:
        reference.reduce_groups(flat, groups, traces[:, offset : offset + n].T)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: numba compiles a kernel apart for read-only and writable
    arrays, and chunks come as both (memory-mapped files, arrays in memory); the
    kernels only read them, so one kind means one compile."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _reduce_compiled(flat: np.ndarray, groups: Groups, out: np.ndarray, col: int) -> None:
    c = _compiled()
    n, n_groups = flat.shape[0], len(groups)
    sums = groups.sum_tables(running=_exact_prefix(flat.dtype))
    has_sums = groups.mean_runs.shape[0] + groups.weighted_runs.shape[0] > 0
    select_runs = groups.select_runs
    ints = _counts(flat.dtype)
    counting = ints and groups.median_groups.size > 0
    select_methods = groups.methods
    if ints:  # medians of integer pixels by counting; trimmed means by selection
        select_runs = select_runs[groups.methods[select_runs[:, 2]] == TRIMMED]
        select_methods = np.where(select_methods == MEDIAN, MEAN, select_methods)
    has_select = select_runs.shape[0] > 0
    # integer pixels add up exactly in int64 (numpy's mean to the bit); running
    # sums of 8- and 16-bit pixels in a stripe fit in int32
    zero = np.float64(0) if flat.dtype.kind in "fc" else np.int64(0)
    pre_dtype = np.int32 if flat.dtype.itemsize <= 2 else np.int64
    scale = np.where(groups.methods == WEIGHTED, groups.wsums, groups.sizes.astype(np.float64))
    select_runs = select_runs.astype(np.uint64)
    dot_runs = groups.weighted_runs.astype(np.uint64)

    def work(lo: int, hi: int) -> None:
        if has_sums:
            c._sum_tiles(
                flat,
                lo,
                hi,
                sums.direct,
                sums.running,
                sums.stripes,
                sums.bounds,
                dot_runs,
                groups.weights,
                groups.methods,
                scale,
                zero,
                np.zeros((sums.span, 8), pre_dtype),
                np.zeros((n_groups, 8), type(zero)),
                np.zeros((n_groups, 8), np.float64),
                out,
                col,
            )
        if counting:
            c._median_frames(
                flat,
                lo,
                hi,
                groups.median_runs,
                groups.median_ptr,
                groups.median_groups,
                np.empty(int(groups.sizes.max()), np.float64),
                np.zeros(MEDIAN_BINS + 2, np.int64),
                np.full(groups.median_groups.size, np.nan),
                out,
                col,
            )
        if has_select:
            gathered = (
                flat,
                lo,
                hi,
                select_runs,
                select_methods,
                groups.indptr,
                groups.cuts,
                np.empty(groups.indptr[-1], np.float64),
            )
            if ints:  # trimmed means only: the medians were counted
                c._trimmed_frames(*gathered, out, col)
            else:
                small = np.empty(int(groups.sizes.max()), np.float64)
                c._select_frames(*gathered, small, np.full((n_groups, 2), np.nan), out, col)

    _in_parallel(work, n, step=8)


def cell_ring(
    ys: np.ndarray,
    xs: np.ndarray,
    exclude: np.ndarray,
    gap: int,
    width: int,
    need: int,
    margin: int,
    *,
    compiled: bool = True,
) -> np.ndarray:
    """One cell's neuropil ring as flat indices, ascending (compiled; see
    :func:`roitrace.neuropil.neuropil_rings` for the rule and its scipy twin).

    ``ys, xs`` are the cell's pixels, ``exclude`` the (Y, X) pixels no ring may
    hold, ``need`` the fewest pixels wanted (0: none) and ``margin`` the first
    window's reach around the cell's bounding box. Without numba, or with
    ``compiled=False`` (see :func:`rings_compiled`), the scipy twin: the same rings.
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
    if not (compiled and available()):
        return reference.cell_ring(*args).astype(np.int64)
    return _compiled()._cell_ring(*args)


def rings_compiled(n_cells: int) -> bool:
    """Whether :func:`cell_ring` should run compiled for ``n_cells`` more rings:
    when the kernel is loaded in this process already, or once this process has
    asked for so many rings that the scipy twin (0.15 ms a ring) costs more than
    loading it from numba's cache (0.6 s; its first compile, once per machine,
    takes 2 to 3 s). A first plan of up to a few thousand cells skips both."""
    global _rings_asked
    if not available():
        return False
    _rings_asked += n_cells
    return _rings_asked >= RING_KERNEL_CELLS or bool(_compiled()._cell_ring.signatures)


#: Rings asked for in this process so far (:func:`rings_compiled`).
_rings_asked = 0


def moments_update(block: np.ndarray, shift: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """Add a chunk's per-pixel sum to ``s1`` and sum of ``(x - shift)**2`` to ``s2``.

    ``s1`` is exact for integer movies, so ``s1 / n`` is numpy's mean to the bit;
    the shift (a per-pixel value near the mean) keeps the variance free of
    cancellation: ``var = s2 / n - (s1 / n - shift)**2``.
    """
    if available():
        block = _read_only(np.ascontiguousarray(block))
        kernel = _compiled()._moments_rows
        _in_parallel(lambda y0, y1: kernel(block, y0, y1, shift, s1, s2), block.shape[1])
    else:
        reference.moments_update(block, shift, s1, s2)


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
    if available():
        block = _read_only(np.ascontiguousarray(block))
        kernel = _compiled()._neighbour_rows

        def rows(y0: int, y1: int) -> None:
            kernel(block, y0, y1, shift, right, down, down_right, down_left)

        _in_parallel(rows, block.shape[1])
    else:
        reference.neighbour_update(block, shift, right, down, down_right, down_left)
