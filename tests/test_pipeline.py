"""Projections, thresholds, rings, traces, aggregation and extract beyond the notebook:
chunking, many cells, options, and every bad input the API must refuse clearly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from skimage.filters import threshold_li, threshold_local, threshold_otsu, threshold_triangle

import roitrace as rt
from roitrace.engine import iter_chunks, resolve_frames
from roitrace.options import AGGREGATION_METHODS


@pytest.fixture
def movie():
    rng = np.random.default_rng(0)
    return rng.poisson(200, (37, 12, 14)).astype(np.uint16)


# -- engine and projections ----------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 5, 37, 100])
def test_projections_do_not_depend_on_chunking(movie, chunk):
    for kind in ("mean", "std", "max", "min", "median"):
        ref = getattr(np, kind)(movie, axis=0)
        got = rt.projection(movie, kind, chunk_frames=chunk)
        assert_allclose(got, ref, rtol=1e-12)
    assert_array_equal(
        rt.projection(movie, "percentile", q=30, chunk_frames=chunk, band_bytes=1),
        np.percentile(movie, 30, axis=0),
    )


def test_std_is_stable_for_large_offsets():
    rng = np.random.default_rng(1)
    data = 1e9 + rng.normal(0, 1, (200, 4, 4))
    assert_allclose(rt.projection(data, "std", chunk_frames=7), np.std(data, axis=0), rtol=1e-6)


def test_median_by_bands_reads_rows_in_pieces(movie):
    got = rt.projection(movie, "median", band_bytes=movie.shape[0] * 14 * 2 * 3)  # 3 rows
    assert_array_equal(got, np.median(movie, axis=0))


def test_projections_in_one_pass(movie):
    p = rt.projections(movie, ("mean", "std", "max", "min"), chunk_frames=4)
    assert_allclose(p["std"], movie.std(axis=0), rtol=1e-12)
    assert_array_equal(p["min"], movie.min(axis=0))


def test_frame_selection(movie):
    assert_allclose(rt.projection(movie, "mean", frames=(5, 9)), movie[5:9].mean(axis=0))
    assert_allclose(rt.projection(movie, "mean", frames=[0, 3, 3]), movie[[0, 3, 3]].mean(axis=0))
    offsets = [off for off, _ in iter_chunks(movie, frames=slice(2, 20), chunk_frames=5)]
    assert offsets == [0, 5, 10, 15]
    assert isinstance(resolve_frames(37, range(0, 10, 2)), np.ndarray)


@pytest.mark.parametrize("frames", [(30, 40), (-1, 3), (5, 5), [37], [-2]])
def test_frames_outside_the_movie(movie, frames):
    with pytest.raises(rt.FrameRangeError):
        rt.projection(movie, "mean", frames=frames)
    with pytest.raises(rt.FrameRangeError):
        rt.extract(movie, np.ones((12, 14), bool), frames=frames)


def test_projection_bad_kind(movie):
    with pytest.raises(
        rt.ParameterError, match="method='average' is unknown; use one of mean, max"
    ):
        rt.projection(movie, "average")
    with pytest.raises(rt.ParameterError, match="needs q"):
        rt.projection(movie, "percentile")


# -- thresholds --------------------------------------------------------------------------
def test_automatic_thresholds_match_scikit_image(movie):
    image = rt.projection(movie, "std")
    for method, fn in (
        ("otsu", threshold_otsu),
        ("li", threshold_li),
        ("triangle", threshold_triangle),
    ):
        assert_array_equal(rt.threshold(image, method=method), image > fn(image))
    local = rt.threshold(image, method="local", block_size=5, offset=-1.0)
    assert_array_equal(local, image > threshold_local(image, 5, offset=-1.0))


def test_local_threshold_handles_uneven_illumination():
    yy, xx = np.mgrid[:40, :40]
    image = xx * 10.0  # a strong illumination gradient
    cells = ((yy - 10) ** 2 + (xx - 8) ** 2 < 9) | ((yy - 30) ** 2 + (xx - 32) ** 2 < 9)
    image = image + cells * 60
    assert not (rt.threshold(image, method="otsu") & cells)[10, 8]  # dim cell lost
    local = rt.threshold(image, method="local", block_size=15, offset=-20)
    assert local[10, 8] and local[30, 32]


def test_threshold_selecting_nothing_says_threshold_and_range():
    image = np.linspace(3.1, 170.5, 100).reshape(10, 10)
    with pytest.raises(rt.EmptyMaskError, match=r"1000.*ranges from 3\.1 to 170\.5"):
        rt.threshold(image, 1000)
    assert not rt.threshold(image, 1000, allow_empty=True).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "absolute"}, "needs a value"),
        ({"method": "percentile"}, "needs q"),
        ({"method": "percentile", "q": 120}, "between 0 and 100"),
        ({"method": "local", "block_size": 4}, "odd block_size"),
        ({"method": "magic"}, "unknown"),
    ],
)
def test_threshold_bad_options(kwargs, match):
    with pytest.raises(rt.ParameterError, match=match):
        rt.threshold(np.arange(16.0).reshape(4, 4), **kwargs)


def test_threshold_needs_an_image():
    with pytest.raises(rt.ShapeMismatchError, match="project the movie first"):
        rt.threshold(np.zeros((3, 4, 4)), 1)


# -- rings ------------------------------------------------------------------------------
def test_ring_excludes_other_cells_and_is_clipped():
    mask = np.zeros((20, 20), bool)
    mask[9:11, 9:11] = True
    other = np.zeros_like(mask)
    other[9:11, 12:14] = True
    ring = rt.neuropil_ring(mask, gap=1, width=2, exclude=other | mask)
    assert not (ring & other).any() and not (ring & mask).any()
    corner = np.zeros((6, 6), bool)
    corner[0, 0] = True
    with pytest.raises(rt.EmptyMaskError, match="clipped"):
        rt.neuropil_ring(corner, gap=1, width=1, exclude=np.ones((6, 6), bool))
    with pytest.raises(rt.ParameterError, match="width=0"):
        rt.neuropil_ring(mask, gap=1, width=0)


def test_ring_clipped_to_nothing_at_the_border_in_extract():
    movie = np.ones((5, 4, 4))
    with pytest.raises(rt.EmptyMaskError, match=r"ROI 1 \(roi 1\): its neuropil ring"):
        rt.extract(movie, np.ones((4, 4), bool), neuropil={"gap": 1, "width": 1})


# -- traces, weights, aggregation -------------------------------------------------------------
def test_mask_shape_mismatch(movie):
    with pytest.raises(rt.ShapeMismatchError, match=r"\(5, 5\).*\(12, 14\)"):
        rt.pixel_traces(movie, np.ones((5, 5), bool))
    with pytest.raises(rt.ShapeMismatchError):
        rt.extract(movie, np.ones((5, 5), bool))


def test_empty_mask(movie):
    with pytest.raises(rt.EmptyMaskError):
        rt.pixel_traces(movie, np.zeros((12, 14), bool))
    with pytest.raises(rt.EmptyMaskError):
        rt.extract(movie, np.zeros((12, 14), bool))


def test_weights_summing_to_zero():
    data = np.zeros((4, 3, 3))
    mask = np.ones((3, 3), bool)
    with pytest.raises(rt.WeightsError, match="sum to 0"):
        rt.pixel_weights(data, mask)
    with pytest.raises(rt.WeightsError, match="sum to 0"):
        rt.extract(data, mask, method="weighted")
    with pytest.raises(rt.WeightsError):
        rt.aggregate(np.ones((2, 3)), "weighted", weights=[1, -1, 0])


@pytest.mark.parametrize("p", [-0.1, 0.5, 0.7])
def test_proportion_outside_range(p):
    with pytest.raises(rt.ParameterError, match=r"\[0, 0\.5\)"):
        rt.aggregate(np.ones((2, 3)), "trimmed_mean", proportion=p)


def test_proximity_weights():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True
    w = rt.pixel_weights(None, mask, method="proximity")
    img = rt.weights_image(w, mask)
    assert_allclose(w.sum(), 1)
    assert img[4, 4] == w.max() and img[2, 2] == w.min()
    sigma = np.sqrt(25 / np.pi)
    assert_allclose(img[4, 2] / img[4, 4], np.exp(-4 / (2 * sigma**2)))


def test_nan_pixels_never_give_a_silent_nan_trace():
    data = np.ones((6, 4, 4))
    data[2, 1, 1] = np.nan
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    with pytest.raises(rt.NonFiniteError, match="ROI 1"):
        rt.extract(data, mask)


traces_strategy = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 9)),
    elements=st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(traces_strategy)
def test_equal_weights_give_the_mean(x):
    w = np.full(x.shape[1], 1 / x.shape[1])
    assert_allclose(
        rt.aggregate(x, "weighted", weights=w), rt.aggregate(x, "mean"), rtol=1e-9, atol=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-1e6, 1e6),
    st.integers(1, 5),
    st.integers(1, 9),
    st.sampled_from(AGGREGATION_METHODS),
    st.floats(0, 0.49),
)
def test_constant_movie_gives_the_constant(c, t, p, how, proportion):
    x = np.full((t, p), c)
    w = np.arange(1, p + 1, dtype=float)
    got = rt.aggregate(x, how, weights=w, proportion=proportion)
    assert_allclose(got, c, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    traces_strategy,
    st.randoms(use_true_random=False),
    st.sampled_from(["mean", "median", "weighted", "trimmed_mean"]),
)
def test_pixel_order_does_not_matter(x, rnd, how):
    w = np.linspace(1, 2, x.shape[1])
    perm = list(range(x.shape[1]))
    rnd.shuffle(perm)
    a = rt.aggregate(x, how, weights=w, proportion=0.2)
    b = rt.aggregate(x[:, perm], how, weights=w[perm], proportion=0.2)
    assert_allclose(a, b, rtol=1e-9, atol=1e-6)


def test_aggregations_equal_numpy_and_scipy():
    x = np.random.default_rng(2).normal(100, 10, (50, 31))
    w = np.random.default_rng(3).random(31)
    assert_array_equal(rt.aggregate(x, "mean"), np.mean(x, axis=1))
    assert_array_equal(rt.aggregate(x, "median"), np.median(x, axis=1))
    assert_array_equal(rt.aggregate(x, "weighted", weights=w), np.average(x, axis=1, weights=w))
    assert_array_equal(
        rt.aggregate(x, "trimmed_mean", proportion=0.2), scipy.stats.trim_mean(x, 0.2, axis=1)
    )


# -- extract with several cells -----------------------------------------------------------------
def test_extract_label_image_with_rings_excluding_every_cell(movie):
    labels = np.zeros((12, 14), np.int32)
    labels[2:5, 2:5] = 3
    labels[2:5, 7:10] = 8
    ds = rt.extract(movie, labels, method="mean", neuropil={"gap": 0, "width": 2}, chunk_frames=6)
    assert ds["roi"].values.tolist() == [3, 8]
    assert ds["F"].dims == ("roi", "time")
    every = labels > 0
    for i, lab in enumerate((3, 8)):
        cell = labels == lab
        assert_allclose(ds["F"][i], movie[:, cell].mean(axis=1), rtol=1e-12)
        ring = rt.neuropil_ring(cell, gap=0, width=2, exclude=every)
        assert_allclose(ds["Fneu"][i], movie[:, ring].mean(axis=1), rtol=1e-12)
        assert int(ds["npix_neuropil"][i]) == ring.sum()
    assert ds.attrs["roitrace_version"] == rt.__version__
    assert "time" not in ds.coords  # no frame rate known


def test_extract_time_coordinate_from_frame_rate(tmp_path, movie):
    import tifffile

    tifffile.imwrite(
        tmp_path / "m.tif", movie, imagej=True, metadata={"axes": "TYX", "finterval": 0.1}
    )
    ds = rt.extract(rt.open_movie(tmp_path / "m.tif"), np.ones((12, 14), bool), frames=(10, 20))
    assert_allclose(ds["time"], np.arange(10, 20) * 0.1)
    assert ds["frame"].values.tolist() == list(range(10, 20))


def test_extract_array_weights_and_errors(movie):
    mask = np.zeros((12, 14), bool)
    mask[3:6, 3:6] = True
    w = np.arange(1, 10, dtype=float)
    ds = rt.extract(movie, mask, method="weighted", weights=w)
    assert_allclose(ds["F"][0], np.average(movie[:, mask], axis=1, weights=w))
    with pytest.raises(rt.ShapeMismatchError, match="9 pixels"):
        rt.extract(movie, mask, method="weighted", weights=[1, 2])
    with pytest.raises(rt.ParameterError, match="only used with method='weighted'"):
        rt.extract(movie, mask, weights=w)
    with pytest.raises(rt.ParameterError, match="'gap' and 'width'"):
        rt.extract(movie, mask, neuropil={"gap": 1})
