"""The result schema (roitrace.result): building, checking and reading a result back."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace import result as schema
from roitrace.errors import ParameterError, ResultError, RoitraceError, ShapeMismatchError
from roitrace.result import (
    build_result,
    check_result,
    result_frame_rate,
    result_frame_shape,
    result_parameters,
    result_rois,
)
from roitrace.rois import Roi, RoiSet

SHAPE = (20, 24)


@pytest.fixture(scope="module")
def movie():
    data = np.random.default_rng(3).poisson(200, (30, *SHAPE)).astype(np.uint16)
    return rt.as_movie(data, frame_rate=12.5)


@pytest.fixture(scope="module")
def labels():
    out = np.zeros(SHAPE, np.int32)
    out[2:6, 3:8] = 4
    out[10:14, 10:13] = 1
    out[15:18, 18:22] = 9
    return out


@pytest.fixture(scope="module")
def weighted():
    """suite2p-like ROIs: ids out of order, pixels out of raster order, lam weights."""
    rng = np.random.default_rng(5)
    rois = []
    for rid, (y0, x0) in zip((7, 2, 30), ((2, 2), (8, 12), (14, 4)), strict=True):
        yy, xx = np.mgrid[y0 : y0 + 4, x0 : x0 + 5]
        order = rng.permutation(yy.size)
        lam = rng.random(yy.size) + 0.1
        rois.append(Roi(rid, yy.ravel()[order], xx.ravel()[order], lam, f"cell {rid}"))
    return RoiSet(rois, SHAPE)


def assert_same_rois(got: RoiSet, want: RoiSet) -> None:
    assert got.ids == want.ids
    assert got.names == want.names
    assert got.frame_shape == want.frame_shape
    for g, w in zip(got, want, strict=True):
        assert_array_equal(g.y, w.y)
        assert_array_equal(g.x, w.x)
        if w.weights is None:
            assert g.weights is None
        else:
            assert_array_equal(g.weights, w.weights)


# -- build_result ----------------------------------------------------------------------
def test_build_result_rebuilds_what_extract_returns(movie, labels):
    ds = rt.extract(movie, labels, neuropil={"gap": 1, "width": 2}, frames=(4, 25))
    trace_attrs = {
        v: {k: a for k, a in ds[v].attrs.items() if k != "long_name"}
        for v in schema.TRACE_VARS
        if v in ds
    }
    rebuilt = build_result(
        {v: ds[v].values for v in schema.TRACE_VARS if v in ds},
        result_rois(ds),
        frames=ds["frame"].values,
        frame_rate=result_frame_rate(ds),
        centroids=np.stack([ds["centroid_y"].values, ds["centroid_x"].values], axis=1),
        npix_neuropil=ds["npix_neuropil"].values,
        snr=ds["snr"].values,
        skewness=ds["skewness"].values,
        neuropil_factor=ds["neuropil_factor"].values,
        noise=ds["noise"].values,
        trace_attrs=trace_attrs,
        source=ds.attrs["source"],
        parameters=result_parameters(ds),
        created=ds.attrs["created"],
    )
    xr.testing.assert_identical(rebuilt, ds)
    assert list(rebuilt.variables) == list(ds.variables)
    assert list(rebuilt.attrs.items()) == list(ds.attrs.items())


def test_build_result_round_trip(tmp_path, weighted):
    rng = np.random.default_rng(0)
    F = rng.random((3, 8))
    frames = np.arange(10, 18)
    ds = build_result(
        {"F": F, "dff": F - 0.5},
        weighted,
        frames=frames,
        frame_rate=4.0,
        source="movie.tif",
        parameters={"how": "weighted", "neuropil": None},
    )
    check_result(ds, needs=("F", "dff"), pixels=True)
    assert ds["F"].dims == ("roi", "time")
    assert_array_equal(ds["F"].values, F)
    assert_array_equal(ds["roi"].values, [7, 2, 30])
    assert_array_equal(ds["frame"].values, frames)
    assert_array_equal(ds["time"].values, frames / 4.0)
    assert_array_equal(ds["npix"].values, [20, 20, 20])
    assert ds["F"].attrs["long_name"] == "cell fluorescence"
    assert set(ds.attrs) == set(schema.ATTRS)
    assert "Fneu" not in ds and "npix_neuropil" not in ds.coords
    for back in (ds, rt.load(rt.save(ds, tmp_path / "r.nc"))):
        assert result_frame_rate(back) == 4.0
        assert result_frame_shape(back) == SHAPE
        assert result_parameters(back) == {"how": "weighted", "neuropil": None}
        assert_same_rois(result_rois(back), weighted)


def test_build_result_refuses_what_does_not_fit(labels):
    rois = RoiSet.from_labels(labels)
    with pytest.raises(ParameterError, match="give 'F'"):
        build_result({"Fneu": np.zeros((3, 4))}, rois, frames=np.arange(4))
    with pytest.raises(ParameterError, match="spks"):
        build_result({"F": np.zeros((3, 4)), "spks": 1}, rois, frames=np.arange(4))
    with pytest.raises(ShapeMismatchError, match=r"\(3, 4\)"):
        build_result({"F": np.zeros((2, 4))}, rois, frames=np.arange(4))
    with pytest.raises(ShapeMismatchError, match="snr"):
        build_result({"F": np.zeros((3, 4))}, rois, frames=np.arange(4), snr=np.zeros(2))
    with pytest.raises(ParameterError, match="RoiSet"):
        build_result({"F": np.zeros((3, 4))}, labels, frames=np.arange(4))


# -- check_result ----------------------------------------------------------------------
def test_check_result_says_what_is_missing(movie, labels, tmp_path):
    ds = rt.extract(movie, labels)
    check_result(ds, pixels=True)
    with pytest.raises(ResultError, match=r"xarray\.Dataset") as info:
        check_result(ds["F"].values, writer="write_nwb")
    assert isinstance(info.value, ParameterError) and isinstance(info.value, RoitraceError)
    with pytest.raises(ResultError, match="write_nwb needs 'F'"):
        check_result(ds.drop_vars("F"), writer="write_nwb")
    with pytest.raises(ResultError, match="needs 'frame'"):
        check_result(ds.drop_vars("frame"), needs=("frame",))
    bad = ds.assign(dff=(("roi", "extra"), ds["dff"].values))
    with pytest.raises(ResultError, match=r"result\['dff'\] has dims"):
        check_result(bad)
    # a CSV file keeps the traces, not the ROIs' pixels
    from_csv = rt.load(rt.save(ds, tmp_path / "t.csv"))
    check_result(from_csv)
    with pytest.raises(ResultError, match="no ROI pixels"):
        check_result(from_csv, pixels=True)
    with pytest.raises(ResultError, match="no ROI pixels"):
        result_rois(from_csv)
    cut = ds.assign(pixel_x=("other", ds["pixel_x"].values[:-1]))
    with pytest.raises(ResultError, match="not one 1-D table"):
        result_rois(cut)


def test_writers_refuse_a_result_without_pixels_clearly(movie, labels, tmp_path):
    ds = rt.extract(movie, labels).drop_vars(list(schema.PIXEL_VARS))
    for out in ("t.nwb", "plane0/"):
        with pytest.raises(ResultError, match="no ROI pixels"):
            rt.save(ds, tmp_path / out)
    # with the ROIs given, the same result is written
    rt.save(ds, tmp_path / "t.nwb", rois=RoiSet.from_labels(labels))


def test_unreadable_attributes_are_result_errors():
    with pytest.raises(ResultError, match="frame_shape"):
        result_frame_shape(xr.Dataset(attrs={"frame_shape": "[12]"}))
    with pytest.raises(ResultError, match="frame_shape"):
        result_frame_shape(xr.Dataset(attrs={"frame_shape": "[12.5, 3]"}))
    with pytest.raises(ResultError, match="parameters"):
        result_parameters(xr.Dataset(attrs={"parameters": "[1, 2]"}))
    assert result_frame_shape(xr.Dataset(attrs={"frame_shape": [4, 5]})) == (4, 5)
    assert result_parameters(xr.Dataset()) == {}


# -- result_rois -----------------------------------------------------------------------
def test_result_rois_is_the_label_image_roiset(movie, labels):
    ds = rt.extract(movie, labels, neuropil={"gap": 1, "width": 1})
    rois = result_rois(ds)
    assert_same_rois(rois, RoiSet.from_labels(labels))
    assert all(r.weights is None for r in rois)
    assert_array_equal(rois.to_labels(), labels)


def test_result_rois_is_the_weighted_roiset(movie, weighted):
    ds = rt.extract(movie, weighted, method="weighted")
    assert_same_rois(result_rois(ds), weighted)
    # and back through the files that carry ROIs
    rebuilt = rt.extract(movie, result_rois(ds), method="weighted")
    assert_array_equal(rebuilt["F"].values, ds["F"].values)


def test_result_rois_after_overlap_drop_holds_the_pixels_used(movie):
    a = Roi(1, np.array([2, 2, 3, 3]), np.array([2, 3, 2, 3]), name="a")
    b = Roi(2, np.array([3, 3, 4]), np.array([3, 4, 4]), name="b")
    ds = rt.extract(movie, RoiSet([a, b], SHAPE), overlap="drop")
    rois = result_rois(ds)
    assert [r.npix for r in rois] == [3, 2] == ds["npix"].values.tolist()
    assert (3, 3) not in set(zip(rois[0].y.tolist(), rois[0].x.tolist(), strict=True))
    # the centroids are those of the ROIs as given
    assert ds["centroid_y"].values.tolist() == [2.5, 10 / 3]


def test_rois_from_result_is_deprecated(movie, labels):
    from roitrace.extract import rois_from_result

    ds = rt.extract(movie, labels)
    with pytest.warns(DeprecationWarning, match="result_rois") as record:
        rois = rois_from_result(ds)
    assert record[0].filename == __file__  # the caller's line, not roitrace's
    assert_same_rois(rois, result_rois(ds))


# -- frame rate and shape ----------------------------------------------------------------
def test_frame_rate_is_none_when_unknown(labels):
    ds = rt.extract(np.ones((5, *SHAPE)), labels)
    assert result_frame_rate(ds) is None
    assert "frame_rate" not in ds.attrs and "time" not in ds.coords
    assert result_frame_shape(ds) == SHAPE
    for unknown in (0.0, -2.0, float("nan"), "fast", None, True):
        assert result_frame_rate(ds.assign_attrs(frame_rate=unknown)) is None
    assert result_frame_rate(ds.assign_attrs(frame_rate="30")) == 30.0
    assert result_frame_rate(object()) is None


def test_frame_rate_survives_every_format(movie, labels, tmp_path):
    ds = rt.extract(movie, labels, neuropil={"gap": 1, "width": 1})
    for out in ("t.csv", "t.nc", "t.nwb"):
        assert result_frame_rate(rt.load(rt.save(ds, tmp_path / out))) == 12.5


# -- dependencies: tests/test_layout.py (imports of every module, cycles, io's rules) ------
