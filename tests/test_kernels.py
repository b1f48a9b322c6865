"""The numpy fallback (numba missing, or ``ROITRACE_NUMBA=0``) gives the kernels' numbers.

Each comparison runs the same engine call twice in one process, once with the compiled
kernels and once with ``kernels._nb`` set to None, which sends every kernel entry point
to its numpy twin (what ``ROITRACE_NUMBA=0`` does at import).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace import _kernels as kernels
from roitrace.aggregate import GroupAggregator
from roitrace.engine import stream
from roitrace.options import AGGREGATION_METHODS as HOWS

needs_numba = pytest.mark.skipif(
    not kernels.available(),
    reason="compares the numpy fallback with the compiled kernels, which need numba",
)
DTYPES = [np.float32, np.uint16, np.float64]
# 40 x 130 pixels: a frame longer than one stripe (kernels.STRIPE), so that runs are
# cut at a stripe's edge; 37 frames in chunks of 13: whole 8-frame tiles and the
# single frames left over.
T, Y, X, CHUNK = 37, 40, 130, 13


@pytest.fixture
def fallback(monkeypatch):
    """Call ``f`` with the numpy fallback instead of the compiled kernels."""

    def run(f, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(kernels, "_nb", None)
            return f(*args, **kwargs)

    return run


def _movie(dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # a movie's range: float32 sums of these are exact in float64 in any order
    movie = (rng.random((T, Y, X)) * 3000 + 50).astype(dtype)
    if movie.dtype.kind == "f":
        movie[5].flat[4100] = np.nan  # in a group of each method: NaN from both
    return movie


def _groups(seed: int = 0):
    """Cells of every method, overlapping rings and a group across a stripe's edge."""
    rng = np.random.default_rng(seed)
    flats, methods, weights = [], [], []
    for g in range(48):
        y0, x0 = rng.integers(0, Y - 8), rng.integers(0, X - 30)
        m = np.zeros((Y, X), bool)
        m[y0 : y0 + rng.integers(1, 9), x0 : x0 + rng.integers(1, 30)] = True
        m &= rng.random((Y, X)) < 0.8  # holes: many short runs
        m[y0, x0] = True
        flat = np.flatnonzero(m)
        how = HOWS[g % len(HOWS)]
        flats.append(flat)
        methods.append(how)
        weights.append(rng.random(flat.size) + 0.1 if how == "weighted" else None)
    for how in HOWS:
        flats.append(np.arange(4000, 4200))  # across kernels.STRIPE (4096)
        methods.append(how)
        weights.append(np.linspace(0.5, 2, 200) if how == "weighted" else None)
    flats.append(np.arange(20, Y * X, 3))  # a wide, sparse group: running sums
    methods.append("mean")
    weights.append(None)
    return flats, methods, weights


def _reduce(movie, flats, methods, weights):
    agg = GroupAggregator(flats, methods, movie.shape[0], weights=weights, proportion=0.1)
    return stream(movie, [agg], chunk_frames=CHUNK)[0]


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_group_reductions_equal_the_kernels(dtype, fallback):
    movie = _movie(dtype)
    flats, methods, weights = _groups()
    compiled = _reduce(movie, flats, methods, weights)
    numpy = fallback(_reduce, movie, flats, methods, weights)
    methods = np.array(methods)
    assert set(methods) == set(HOWS)
    for how in HOWS:
        a, b = compiled[methods == how], numpy[methods == how]
        assert np.isnan(a).any() == (movie.dtype.kind == "f")  # the NaN pixel's groups
        if how == "trimmed_mean" and movie.dtype == np.float64:
            # the kernels add the kept pixels in the order their selection leaves
            # them: the same sum to a few float64 ulps, not always to the bit
            np.testing.assert_allclose(b, a, rtol=1e-14, atol=0)
        else:
            assert_array_equal(b, a, err_msg=how)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "kind, options",
    [("mean", {}), ("std", {}), ("correlation", {}), ("correlation", {"subtract_global": True})],
    ids=["mean", "std", "correlation", "correlation-global"],
)
def test_projections_equal_the_kernels(dtype, kind, options, fallback):
    movie = _movie(dtype, seed=1)[:, :21, :17]
    if movie.dtype.kind == "f":
        movie[5, 10, 3] = 7.0  # no NaN here: it would spread to every pixel's correlation
    compiled = rt.projection(movie, kind, chunk_frames=10, **options)
    numpy = fallback(rt.projection, movie, kind, chunk_frames=10, **options)
    assert_array_equal(np.asarray(numpy), np.asarray(compiled))


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_cell_ring_equals_the_kernel(seed, fallback):
    rng = np.random.default_rng(seed)
    ny, nx = 50, 60
    exclude = rng.random((ny, nx)) < 0.15
    for _ in range(8):
        y0, x0 = rng.integers(0, ny - 4), rng.integers(0, nx - 4)  # some at the border
        ys, xs = np.nonzero(rng.random((4, 4)) < 0.7)
        ys, xs = ys + y0, xs + x0
        if ys.size == 0:
            continue
        gap, width = int(rng.integers(0, 4)), int(rng.integers(1, 4))
        need = int(rng.choice([0, 30, 350, 4000]))  # 4000: more than the frame holds
        margin = gap + width + int(np.sqrt(2 * need / np.pi)) + 2 if need else gap + width + 1
        args = (ys, xs, exclude, gap, width, need, margin)
        compiled = kernels.cell_ring(*args)
        numpy = fallback(kernels.cell_ring, *args)
        assert numpy.dtype == compiled.dtype == np.int64
        assert_array_equal(numpy, compiled)


def test_cell_ring_without_numba():
    """``ROITRACE_NUMBA=0``: the compiled ring does not exist; it was a NameError."""
    code = (
        "import numpy as np\n"
        "from roitrace import kernels\n"
        "assert not kernels.available()\n"
        "ex = np.zeros((11, 11), bool); ex[5, 5] = True\n"
        "ring = kernels.cell_ring(np.array([5]), np.array([5]), ex, 2, 1, 0, 4)\n"
        "print(ring.dtype, ' '.join(map(str, ring)))\n"
    )
    env = {**os.environ, "ROITRACE_NUMBA": "0"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    exclude = np.zeros((11, 11), bool)
    exclude[5, 5] = True
    want = kernels._cell_ring_numpy(np.array([5]), np.array([5]), exclude, 2, 1, 0, 4)
    assert want.size == 16  # the ring of neuropil_ring's doctest
    assert run.stdout.split() == ["int64", *map(str, want)]


@needs_numba
def test_rings_take_the_compiled_kernel_only_when_it_pays(monkeypatch):
    """Loading the compiled ring kernel (0.6 s; compiling it, 2-3 s once) pays only
    for thousands of cells or once it is loaded; the scipy twin gives the same rings."""
    from conftest import crowded_disks
    from roitrace.neuropil import neuropil_rings

    loaded = bool(kernels._compiled()._cell_ring.signatures)
    monkeypatch.setattr(kernels, "_rings_asked", 0)
    assert kernels.rings_compiled(10) == loaded
    assert kernels.rings_compiled(kernels.RING_KERNEL_CELLS)  # many cells at once
    # a new process: the first plans take the twin, until their rings add up
    code = (
        "from roitrace import _kernels as k; n = k.RING_KERNEL_CELLS // 2; "
        "print(k.rings_compiled(n), k.rings_compiled(n))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.split() == ["False", "True"], run.stderr
    rois = rt.RoiSet.from_labels(crowded_disks(96, 60, 1, margin=3))
    rings = {}
    for use in (True, False):
        monkeypatch.setattr(kernels, "rings_compiled", lambda n, use=use: use)
        rings[use] = neuropil_rings(rois, gap=2, width=3, exclude_gap=1, min_pixels=200)
    assert len(rings[True]) == len(rings[False]) == len(rois)
    for a, b in zip(rings[True], rings[False], strict=True):
        assert_array_equal(a, b)
