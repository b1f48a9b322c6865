"""ROI sets, label(), read_rois for label images, and many-cell extraction options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import tifffile
from numpy.testing import assert_allclose, assert_array_equal

import roitrace as rt
from roitrace.neuropil import dilate


@pytest.fixture
def field():
    """A simulated field of view with several cells and its true label image."""
    return rt.simulate(shape=(64, 64), n_frames=400, n_cells=6, seed=4)


def test_label_splits_mask_into_cells_with_size_filters():
    m = np.zeros((10, 10), bool)
    m[1:3, 1:3] = True  # 4 px
    m[6:9, 6:9] = True  # 9 px
    m[0, 9] = True  # 1 px
    rois = rt.label(m)
    assert [r.npix for r in rois] == [1, 4, 9]  # scan order: row 0 first
    assert [r.npix for r in rt.label(m, min_size=2)] == [4, 9]
    assert [r.npix for r in rt.label(m, min_size=2, max_size=5)] == [4]
    with pytest.raises(rt.EmptyMaskError, match="component sizes"):
        rt.label(m, min_size=50)


def test_roiset_from_labels_round_trip_and_validation():
    labels = np.zeros((8, 9), np.int32)
    labels[1:3, 1:4] = 5
    labels[5:7, 5:8] = 2
    rois = rt.RoiSet.from_labels(labels)
    assert rois.ids == [2, 5]
    assert_array_equal(rois.to_labels(), labels)
    assert rois.masks().shape == (2, 8, 9)
    with pytest.raises(rt.ParameterError, match="duplicate ROI ids"):
        rt.RoiSet([rois[0], rois[0]], (8, 9))
    with pytest.raises(rt.ShapeMismatchError, match="another frame size"):
        rt.RoiSet(list(rois), (4, 4))
    with pytest.raises(rt.EmptyMaskError, match="holds no ROI"):
        rt.extract(np.zeros((3, 8, 9)), rt.RoiSet([], (8, 9)))


def test_read_rois_label_image_files(tmp_path, field):
    tifffile.imwrite(tmp_path / "labels.tif", field.labels)
    np.save(tmp_path / "labels.npy", field.labels)
    for name in ("labels.tif", "labels.npy"):
        rois = rt.read_rois(tmp_path / name, shape=(64, 64))
        assert_array_equal(rois.to_labels(), field.labels)
    with pytest.raises(rt.ShapeMismatchError, match="32 x 32"):
        rt.read_rois(tmp_path / "labels.npy", shape=(32, 32))
    with pytest.raises(rt.RoiNotFoundError):
        rt.read_rois(tmp_path / "none.zip")
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(rt.RoiFormatError, match="unknown ROI format"):
        rt.read_rois(tmp_path / "x.csv")


def test_extract_from_a_path_equals_from_labels(tmp_path, field):
    np.save(tmp_path / "labels.npy", field.labels)
    a = rt.extract(field.movie, tmp_path / "labels.npy", neuropil={"gap": 2, "width": 2})
    b = rt.extract(field.movie, field.labels, neuropil={"gap": 2, "width": 2})
    assert_array_equal(a["F_corrected"], b["F_corrected"])


def test_rings_avoid_every_cell_dilated_by_exclude_gap(field):
    rois = rt.RoiSet.from_labels(field.labels)
    ds = rt.extract(field.movie, rois, neuropil={"gap": 1, "width": 3, "exclude_gap": 2})
    every = dilate(field.labels > 0, 2)
    for i, r in enumerate(rois):
        ring = rt.neuropil_ring(r.mask((64, 64)), gap=1, width=3, exclude=every)
        assert int(ds["npix_neuropil"][i]) == ring.sum()
        assert_allclose(ds["Fneu"][i], field.movie[:, ring].mean(axis=1), rtol=1e-12)


def test_min_pixels_grows_rings(field):
    ds = rt.extract(field.movie, field.labels, neuropil={"gap": 2, "width": 1, "min_pixels": 350})
    assert (ds["npix_neuropil"] >= 350).all()
    small = rt.extract(field.movie, field.labels, neuropil={"gap": 2, "width": 1})
    assert (small["npix_neuropil"] < 350).all()


def test_min_pixels_unreachable_warns_naming_roi():
    movie = np.random.default_rng(0).poisson(50, (20, 12, 12)).astype(np.uint16)
    mask = np.zeros((12, 12), bool)
    mask[5:7, 5:7] = True
    with pytest.warns(UserWarning, match=r"ROI 1 .*fewer than min_pixels=350"):
        rt.extract(movie, mask, neuropil={"gap": 1, "width": 1, "min_pixels": 350})


def test_overlap_keep_or_drop():
    movie = np.random.default_rng(1).poisson(100, (30, 10, 10)).astype(np.float64)
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.zeros((10, 10), bool)
    b[4:8, 4:8] = True
    rois = rt.RoiSet.from_masks([a, b])
    keep = rt.extract(movie, rois)
    drop = rt.extract(movie, rois, overlap="drop")
    assert_allclose(keep["F"][0], movie[:, a].mean(axis=1))
    assert_allclose(drop["F"][0], movie[:, a & ~b].mean(axis=1))
    assert int(drop["npix"][1]) == (b & ~a).sum()
    inside = rt.RoiSet.from_masks([a, a & b])  # the second lies wholly inside the first
    with pytest.raises(rt.EmptyMaskError, match=r"ROI 2 .*no pixel left"):
        rt.extract(movie, inside, overlap="drop")


def test_roi_weights_are_used_for_weighted(field):
    rois = rt.RoiSet.from_labels(field.labels)
    weighted = []
    for r in rois:
        w = np.linspace(1, 2, r.npix)
        weighted.append(rt.Roi(r.id, r.y, r.x, w, r.name))
    ws = rt.RoiSet(weighted, (64, 64))
    ds = rt.extract(field.movie, ws, method="weighted")
    r = weighted[2]
    assert_allclose(ds["F"][2], np.average(field.movie[:, r.y, r.x], axis=1, weights=r.weights))
    bright = rt.extract(field.movie, ws, method="weighted", weights="brightness")
    assert not np.allclose(bright["F"][2], ds["F"][2])


def test_result_coordinates_snr_skew_dff(field):
    ds = rt.extract(
        rt.as_movie(field.movie, frame_rate=field.frame_rate),
        field.labels,
        neuropil={"gap": 2, "width": 3},
    )
    x = ds["F_corrected"].values
    snr = 1 - 0.5 * np.var(np.diff(x, axis=1), axis=1) / np.var(x, axis=1)
    assert_allclose(ds["snr"], snr)
    assert_allclose(ds["skewness"], scipy.stats.skew(x, axis=1))
    assert_allclose(ds["dff"], rt.dff(x), rtol=1e-12)
    assert list(ds["name"].values) == [f"roi {i}" for i in ds["roi"].values]
    for i, r in enumerate(rt.RoiSet.from_labels(field.labels)):
        assert ds["centroid_y"][i] == pytest.approx(r.y.mean())
    # active simulated cells have positive skew: transients are upward
    assert (ds["skewness"] > 0).all()


def test_neuropil_correction_helps_every_simulated_cell(field):
    ds = rt.extract(field.movie, field.labels, neuropil={"gap": 2, "width": 3, "exclude_gap": 1})
    for i in range(field.n_cells):
        truth = field.traces[i]
        r_raw = np.corrcoef(ds["F"][i], truth)[0, 1]
        r_corr = np.corrcoef(ds["F_corrected"][i], truth)[0, 1]
        assert r_corr > r_raw, f"cell {i}: {r_corr:.3f} <= {r_raw:.3f}"


def test_min_pixels_ring_is_the_narrowest_wide_enough():
    """neuropil_rings (exact distances, per-cell windows) gives what growing
    neuropil_ring one pixel of width at a time gives, in a crowded field."""
    from conftest import crowded_disks
    from roitrace.neuropil import neuropil_rings

    labels = crowded_disks(96, 60, 1)
    rois = rt.RoiSet.from_labels(labels)
    rings = neuropil_rings(rois, gap=2, width=1, exclude_gap=1, min_pixels=150)
    every = dilate(labels > 0, 1)
    for k in range(0, len(rois), 5):
        mask, w = rois[k].mask((96, 96)), 1
        ring = rt.neuropil_ring(mask, gap=2, width=w, exclude=every, allow_empty=True)
        while ring.sum() < 150:
            w += 1
            ring = rt.neuropil_ring(mask, gap=2, width=w, exclude=every, allow_empty=True)
        assert_array_equal(rings[k], np.flatnonzero(ring))


@pytest.mark.parametrize("need", [0, 150, 5000, 7100])
def test_compiled_rings_equal_the_scipy_rings(need, monkeypatch):
    """The compiled ring kernel (exact squared distances by Felzenszwalb &
    Huttenlocher) picks the same pixels as scipy's distance transform, also when
    the window must grow, reaches the border, or the whole frame is too small."""
    from roitrace import _kernels as kernels
    from roitrace.neuropil import neuropil_rings

    if not kernels.available():
        pytest.skip("numba is not installed: only the scipy rings run")
    rng = np.random.default_rng(need)
    yy, xx = np.mgrid[:80, :90]
    labels = np.zeros((80, 90), np.int32)
    for i in range(40):
        cy, cx = rng.integers(0, (80, 90))
        ry, rx = rng.integers(1, 5, 2)
        labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = i + 1
    rois = rt.RoiSet.from_labels(labels)
    kw = {"gap": 1, "width": 2, "exclude_gap": 1, "min_pixels": need}
    with warnings.catch_warnings(record=True) as fast_warned:
        warnings.simplefilter("always")
        fast = neuropil_rings(rois, **kw)
    monkeypatch.setattr(kernels, "available", lambda: False)
    with warnings.catch_warnings(record=True) as slow_warned:
        warnings.simplefilter("always")
        slow = neuropil_rings(rois, **kw)
    assert len(fast) == len(slow) == len(rois)
    for a, b in zip(fast, slow, strict=True):
        assert_array_equal(a, b)
    n_warned = (len(fast_warned), len(slow_warned))
    # one warning names every ring left under min_pixels (here all of them)
    assert n_warned == ((1, 1) if need == 7100 else (0, 0)), n_warned
    for w in fast_warned + slow_warned:
        assert str(w.message).startswith(f"{len(rois)} of {len(rois)} ROIs have neuropil rings")


def test_compiled_squared_distances_equal_scipy():
    from scipy.ndimage import distance_transform_edt

    from roitrace import _kernels as kernels

    if not kernels.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(3)
    for _ in range(200):
        h, w = rng.integers(1, 40, 2)
        cell = rng.random((h, w)) < rng.uniform(0.001, 0.3)
        cell[rng.integers(h), rng.integers(w)] = True
        ys, xs = np.nonzero(cell)
        d2 = kernels._compiled()._sq_distances(ys.astype(np.int64), xs.astype(np.int64), h, w)
        assert_array_equal(d2, np.rint(distance_transform_edt(~cell) ** 2).astype(np.int64))


def test_proximity_weights_of_many_groups_equal_one_at_a_time():
    from roitrace.traces import proximity_weights_groups, proximity_weights_of

    rng = np.random.default_rng(0)
    flats = [np.sort(rng.choice(100 * 90, rng.integers(1, 300), replace=False)) for _ in range(40)]
    for w, f in zip(proximity_weights_groups(flats, 90), flats, strict=True):
        assert_allclose(w, proximity_weights_of(f // 90, f % 90), rtol=1e-12)
        assert_allclose(w.sum(), 1.0, rtol=1e-14)
    assert proximity_weights_groups([], 90) == []
