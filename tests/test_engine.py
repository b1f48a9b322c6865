"""The engine and its compiled kernels equal the plain numpy reference.

On the real recordings in ../shared/data: every aggregator (cells and neuropil
rings of many ROIs at once) and every projection, through files and arrays, with
several chunk sizes; then property tests of the kernels on random data.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import trim_mean

import roitrace as rt
from roitrace import _kernels as kernels
from roitrace.aggregate import aggregate
from roitrace.options import AGGREGATION_METHODS as HOWS
from roitrace.options import PROJECTION_METHODS as KINDS

EXACT_HOWS = ("mean", "median", "trimmed_mean")  # exact for integer movies


def numpy_correlation(x: np.ndarray) -> np.ndarray:
    """The local correlation image, written plainly: z-score every pixel, average the
    products with each of the 8 neighbours that exist."""
    x = x.astype(np.float64)
    sd = x.std(axis=0)
    z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1), 0.0)
    _, ny, nx = x.shape
    total, count = np.zeros((ny, nx)), np.zeros((ny, nx))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            ys, yn = slice(max(0, -dy), ny - max(0, dy)), slice(max(0, dy), ny + min(0, dy))
            xs, xn = slice(max(0, -dx), nx - max(0, dx)), slice(max(0, dx), nx + min(0, dx))
            total[ys, xs] += (z[:, ys, xs] * z[:, yn, xn]).mean(axis=0)
            count[ys, xs] += 1
    return total / count


@pytest.fixture(
    scope="module",
    params=[("thunder-mouse", "mouse.tif"), ("sima", "example.tif")],
    ids=["thunder-mouse", "sima"],
)
def recording(request):
    """(path, data, rois) of a real recording: its cells found by the notebook's
    threshold route on the std projection."""
    from conftest import data_path

    path = data_path(*request.param)
    data = np.asarray(rt.open_movie(path))
    std = rt.projection(data, "std")
    rois = rt.label(rt.threshold(std, method="percentile", q=90), min_size=4)
    assert len(rois) >= 2
    return path, data, rois


NEUROPIL = {"gap": 1, "width": 2, "exclude_gap": 1, "min_pixels": 40}
#: dim real cells minus 0.7 x their neuropil can dip below 0: dff warns, traces are fine
pytestmark = pytest.mark.filterwarnings("ignore:.*ROIs .*F0:UserWarning")


def reference(data, rois, how, *, weights=None, neuropil_how=None):
    """F and Fneu the plain numpy way: fancy-index each ROI's pixels, then aggregate."""
    plan = rt.plan_extraction(rois, rois.frame_shape, neuropil=NEUROPIL)
    flat = data.reshape(data.shape[0], -1)
    f = np.array(
        [
            aggregate(flat[:, c], how, weights=None if weights is None else weights[k])
            for k, c in enumerate(plan.cells)
        ]
    )
    fneu = np.array([aggregate(flat[:, r], neuropil_how or how) for r in plan.rings])
    return f, fneu


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("chunk_frames", [None, 7])
def test_extract_equals_numpy_on_real_recordings(recording, how, chunk_frames):
    path, data, rois = recording
    opts = {"weights": "proximity", "neuropil_method": "median"} if how == "weighted" else {}
    ds = rt.extract(path, rois, method=how, neuropil=NEUROPIL, chunk_frames=chunk_frames, **opts)
    weights = None
    if how == "weighted":
        weights = [rt.traces.proximity_weights(r.mask(rois.frame_shape)) for r in rois]
    f, fneu = reference(data, rois, how, weights=weights, neuropil_how=opts.get("neuropil_method"))
    if how in EXACT_HOWS:
        assert_array_equal(ds["F"].values, f)
        assert_array_equal(ds["Fneu"].values, fneu)
    else:
        assert_allclose(ds["F"].values, f, rtol=1e-13)
        assert_array_equal(ds["Fneu"].values, fneu)  # median rings: exact


def test_numpy_fallback_gives_the_same_traces(recording, monkeypatch):
    _, data, rois = recording
    compiled = {how: rt.extract(data, rois, method=how, neuropil=NEUROPIL) for how in EXACT_HOWS}
    monkeypatch.setattr(kernels, "_nb", None)
    assert not kernels.available()
    for how, ds in compiled.items():
        plain = rt.extract(data, rois, method=how, neuropil=NEUROPIL)
        assert_array_equal(plain["F"].values, ds["F"].values)
        assert_array_equal(plain["Fneu"].values, ds["Fneu"].values)


@pytest.mark.parametrize("kind", KINDS)
def test_projections_equal_numpy_on_real_recordings(recording, kind):
    path, data, _ = recording
    q = 20.0 if kind == "percentile" else None
    got = rt.projection(path, kind, q=q, chunk_frames=6, band_bytes=data[:, :5].nbytes)
    if kind == "correlation":
        assert_allclose(got, numpy_correlation(data), rtol=0, atol=1e-12)
        return
    if kind == "percentile":
        want = np.percentile(data, q, axis=0)
    else:
        want = getattr(np, kind)(data, axis=0)
    if kind == "std":
        assert_allclose(got, want, rtol=1e-12)
    else:  # mean of integers, max, min, median, percentile: to the last bit
        assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_one_pass_feeds_every_projection(recording):
    path, data, _ = recording
    both = rt.projections(path, ("correlation", "mean", "std", "max", "min"))
    assert_array_equal(both["mean"], data.mean(axis=0))
    assert_array_equal(both["max"], data.max(axis=0))
    assert_allclose(both["correlation"], numpy_correlation(data), atol=1e-12)


def test_correlation_finds_the_active_cells():
    sim = rt.simulate(n_frames=400, shape=(48, 48), n_cells=6, seed=3)
    corr = rt.projection(sim.movie, "correlation")
    inside = corr[sim.labels > 0].mean()
    outside = corr[sim.labels == 0].mean()
    assert inside > outside + 0.1, (inside, outside)


def test_float_movies_accumulate_in_float64():
    rng = np.random.default_rng(0)
    data = (rng.normal(1e4, 1, (50, 6, 7))).astype(np.float32)
    mask = np.zeros((6, 7), bool)
    mask[1:4, 2:6] = True
    ds = rt.extract(data, mask)
    ref = data[:, mask].astype(np.float64).mean(axis=1)
    assert_allclose(ds["F"].values[0], ref, rtol=1e-14)
    assert_allclose(rt.projection(data, "mean"), data.mean(axis=0, dtype=np.float64), rtol=1e-14)
    assert_allclose(
        rt.projection(data, "std"), data.astype(np.float64).std(axis=0), rtol=1e-9, atol=0
    )


def test_nan_pixels_make_nan_medians():
    data = np.ones((4, 3, 3))
    data[2, 1, 1] = np.nan
    g = kernels.Groups([np.array([3, 4, 5])] * 3, ["median", "trimmed_mean", "mean"])
    out = kernels.reduce_groups(data, g)
    assert np.isnan(out[2]).all() and np.isfinite(np.delete(out, 2, axis=0)).all()


# -- property tests of the kernels ----------------------------------------------------------
DTYPES = (np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64)


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    n, ny, nx = draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        block = rng.normal(0, 100, (n, ny, nx)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        block = rng.integers(max(info.min, -1000), min(info.max, 1000), (n, ny, nx)).astype(dtype)
    n_groups = draw(st.integers(1, 5))
    flats, methods, weights = [], [], []
    for _ in range(n_groups):
        size = draw(st.integers(1, ny * nx))
        flats.append(np.sort(rng.choice(ny * nx, size, replace=False)))
        methods.append(draw(st.sampled_from(HOWS)))
        weights.append(rng.random(size) + 0.1 if methods[-1] == "weighted" else None)
    proportion = draw(st.sampled_from([0.0, 0.1, 0.25, 0.49]))
    return block, flats, methods, weights, proportion


@settings(max_examples=150, deadline=None)
@given(problems())
def test_kernel_equals_aggregate(problem):
    block, flats, methods, weights, proportion = problem
    groups = kernels.Groups(flats, methods, weights, proportion)
    got = kernels.reduce_groups(block, groups)
    flat = block.reshape(block.shape[0], -1)
    for g, (f, how, w) in enumerate(zip(flats, methods, weights, strict=True)):
        want = aggregate(flat[:, f], how, weights=w, proportion=proportion)
        if how in ("median",) or (how != "weighted" and block.dtype.kind in "iu"):
            assert_array_equal(got[:, g], want)
        else:
            assert_allclose(got[:, g], want, rtol=1e-12, atol=1e-9)


def test_trimmed_mean_matches_scipy_cut():
    # 10 pixels, proportion 0.25: scipy cuts int(2.5) = 2 from each end
    x = np.array([[9, 1, 8, 2, 7, 3, 6, 4, 5, 100]], np.int16)
    g = kernels.Groups([np.arange(10)], ["trimmed_mean"], proportion=0.25)
    out = kernels.reduce_groups(x.reshape(1, 1, 10), g)
    assert out[0, 0] == trim_mean(x[0], 0.25) == np.mean([3, 4, 5, 6, 7, 8])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32])
@pytest.mark.parametrize("stripe", [7, 64, kernels.STRIPE])
@pytest.mark.parametrize("ratio", [0.0, np.inf])
def test_running_sums_equal_direct_sums(dtype, stripe, ratio, monkeypatch):
    """Plain means by running sums over stripes of the frame (the path for heavily
    overlapping groups) equal numpy's, bit for bit, at the dtype's extremes, for runs
    cut at stripe boundaries and for chunks whose length is not a multiple of 8."""
    monkeypatch.setattr(kernels, "STRIPE", stripe)
    monkeypatch.setattr(kernels, "PREFIX_RATIO", ratio)
    rng = np.random.default_rng(stripe)
    info = np.iinfo(dtype)
    block = rng.integers(info.min, info.max, (21, 30, 37), endpoint=True).astype(dtype)
    block[3] = info.max
    block[4] = info.min
    flats = [np.sort(rng.choice(30 * 37, size, replace=False)) for size in (1, 40, 500, 1110)]
    flats += [np.arange(s, s + 300) for s in (0, 5, 400)]  # long runs, overlapping
    groups = kernels.Groups(flats, ["mean"] * len(flats))
    if ratio == 0.0:
        assert groups.stripes[:, 4].all()
    got = kernels.reduce_groups(block, groups)
    flat = block.reshape(block.shape[0], -1)
    for g, f in enumerate(flats):
        assert_array_equal(got[:, g], np.mean(flat[:, f], axis=1))


def test_crowded_rings_take_the_running_sums():
    """120 cells' rings of >= 350 pixels in a 128 x 128 field overlap several deep:
    every stripe takes the running-sum path, and the traces still equal the numpy
    route."""
    from conftest import crowded_disks

    rois = rt.RoiSet.from_labels(crowded_disks(128, 120, 0, margin=3))
    movie = np.random.default_rng(0).integers(0, 4000, (19, 128, 128)).astype(np.uint16)
    npil = {"gap": 2, "width": 3, "exclude_gap": 1, "min_pixels": 350}
    plan = rt.plan_extraction(rois, rois.frame_shape, neuropil=npil)
    groups = kernels.Groups(*plan.groups()[:2])
    assert groups.stripes[:, 4].all()
    ds = rt.extract(movie, plan)
    flat = movie.reshape(19, -1)
    assert_array_equal(ds["Fneu"].values, [flat[:, r].mean(axis=1) for r in plan.rings])
    assert_array_equal(ds["F"].values, [flat[:, c].mean(axis=1) for c in plan.cells])


def test_correlation_without_the_global_signal():
    """A field-wide fluctuation makes every pixel correlate with its neighbours;
    regressing out the global signal brings the background down and the cells
    out, and equals the correlation image of the regression's residuals."""
    sim = rt.simulate(n_frames=400, shape=(48, 48), n_cells=6, seed=3)
    rng = np.random.default_rng(0)
    wobble = rng.normal(0, 1, 400).cumsum()
    movie = sim.movie + (40 * (wobble - wobble.mean()) / wobble.std())[:, None, None]
    movie = np.clip(np.rint(movie), 0, None).astype(np.uint16)
    raw = rt.projection(movie, "correlation")
    clean = rt.projection(movie, "correlation", subtract_global=True, chunk_frames=37)
    cells, background = sim.labels > 0, sim.labels == 0
    assert np.median(raw[background]) > 0.5
    assert np.median(clean[background]) < 0.25

    def contrast(image):
        return image[cells].mean() - np.median(image[background])

    assert contrast(clean) > contrast(raw) + 0.15, (contrast(clean), contrast(raw))
    x = movie.reshape(400, -1).astype(np.float64)
    g = x.mean(axis=1)
    design = np.stack([np.ones(400), g], axis=1)
    residual = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    assert_allclose(clean, numpy_correlation(residual.reshape(movie.shape)), atol=1e-9)
    both = rt.projections(movie, ("mean", "std", "correlation"), subtract_global=True)
    assert_allclose(both["correlation"], clean, atol=1e-12)
    assert_array_equal(both["mean"], movie.mean(axis=0))  # of the movie, not the residuals
    assert_allclose(both["std"], movie.std(axis=0), rtol=1e-12)
    with pytest.raises(rt.ParameterError, match="only for method='correlation'"):
        rt.projection(movie, "mean", subtract_global=True)


@pytest.mark.skipif(not kernels.available(), reason="numba kernels off: nothing compiles")
def test_the_first_compile_is_announced_only_when_the_cache_is_empty(tmp_path):
    import os
    import subprocess
    import sys

    code = "from roitrace import _kernels; print(_kernels.first_compile())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty")}
    fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert fresh.stdout.strip() == "True", fresh.stderr
    # after a mean extraction, its kernel is cached (no message), a median's is not
    used = (
        "import numpy as np, roitrace as rt; from roitrace import _kernels as k; "
        "rt.extract(np.ones((9, 8, 8), np.uint16), np.pad(np.ones((2, 2), int), 3)); "
        "print(k.first_compile(['_sum_tiles']), k.first_compile(['_median_frames']))"
    )
    run = subprocess.run([sys.executable, "-c", used], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["False", "True"], run.stderr
    from roitrace.aggregate import GroupAggregator  # the consumers name their kernels

    means = GroupAggregator([np.arange(3)], ["mean"], 4)
    medians = GroupAggregator([np.arange(3)], ["median"], 4)
    assert means.kernels(np.uint16) == ("_sum_tiles",)
    assert medians.kernels(np.uint16) == ("_median_frames",)
    assert medians.kernels(np.float32) == ("_select_frames",)
    trimmed = GroupAggregator([np.arange(3)], ["trimmed_mean"], 4)
    assert trimmed.kernels(np.int16) == ("_trimmed_frames",)
    env["ROITRACE_NUMBA"] = "0"  # no compiled kernels: nothing to compile, nothing to say
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert off.stdout.strip() == "False", off.stderr


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32])
def test_integer_medians_by_counting_equal_numpy(dtype):
    """Medians of integer pixels are counted around each group's last median
    (kernels.MEDIAN_BINS values); a median that jumps out of that range (the
    dtype's extremes, a step far beyond the bins) is found by selection. Both equal
    numpy's median to the bit, for odd and even pixel counts, over many frames."""
    if not kernels.available():
        pytest.skip("counting medians are the compiled kernels' (numba is off)")
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    n, ny, nx = 70, 9, 11
    mid = (int(info.min) + int(info.max)) // 2
    block = rng.integers(mid - 20, mid + 20, (n, ny, nx), endpoint=True)
    block[10:14] += 10 * kernels.MEDIAN_BINS  # a step: out of the counted range and back
    block[30] = info.max
    block[31] = info.min
    block[40:] = np.clip(block[40:] + np.arange(30)[:, None, None] * 3, info.min, info.max)
    block = block.astype(dtype)
    flats = [np.arange(size) * 3 % (ny * nx) for size in (1, 2, 7, 8, 33)]
    flats = [np.unique(f) for f in flats] + [np.arange(ny * nx)]
    groups = kernels.Groups(flats, ["median"] * len(flats))
    got = kernels.reduce_groups(block, groups)
    flat = block.reshape(n, -1)
    for g, f in enumerate(flats):
        assert_array_equal(got[:, g], np.median(flat[:, f], axis=1), err_msg=f"group {g}")


def test_read_only_and_writable_chunks_share_one_compiled_kernel():
    """Chunks come writable (arrays in memory) and read-only (memory-mapped files):
    the kernels see both as read-only, so a movie of each kind compiles once."""
    if not kernels.available():
        pytest.skip("numba kernels off: nothing compiles")
    block = np.arange(3 * 4 * 5, dtype=np.int8).reshape(3, 4, 5)
    frozen = block.copy()
    frozen.flags.writeable = False
    groups = kernels.Groups([np.arange(7)], ["mean"])
    assert_array_equal(kernels.reduce_groups(block, groups), kernels.reduce_groups(frozen, groups))
    sums = kernels._compiled()._sum_tiles
    int8 = [sig for sig in sums.signatures if str(sig[0].dtype) == "int8"]
    assert len(int8) == 1, int8
