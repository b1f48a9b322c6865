"""Every real recording through every ROI format in and every result format out, and back
with the same numbers."""

from __future__ import annotations

import warnings

import pytest
from numpy.testing import assert_allclose, assert_array_equal

import roitrace as rt
from conftest import data_path
from roitrace.result import result_rois


def _recording(name):
    if name == "mouse":
        movie = rt.open_movie(data_path("thunder-mouse", "mouse.tif"), frame_rate=10.0)
        std = rt.projection(movie, "std")
        rois = rt.label(rt.threshold(std, method="percentile", q=95), min_size=4)
    else:
        movie = rt.open_movie(data_path("sima", "example.tif"), frame_rate=15.0)
        rois = rt.read_rois(data_path("sima", "imageJ_ROIs.zip"), shape=movie.frame_shape)
    return movie, rois


def _write_rois(rois, kind, folder, movie):
    if kind == "imagej":
        return rois.to_imagej(folder / "RoiSet.zip"), {}
    if kind == "labels-tif":
        return rois.to_label_image(folder / "labels.tif"), {}
    if kind == "labels-npy":
        return rois.to_label_image(folder / "labels.npy"), {}
    ds = rt.extract(movie, rois)
    if kind == "suite2p":
        return rt.save(ds, folder / "plane0"), {"allow_pickle": True}
    return rt.save(ds, folder / "seg.nwb"), {}


@pytest.mark.parametrize("recording", ["mouse", "sima"])
@pytest.mark.parametrize("roi_format", ["imagej", "labels-tif", "labels-npy", "suite2p", "nwb"])
def test_every_roi_format_in_and_every_result_format_out(tmp_path, recording, roi_format):
    movie, rois = _recording(recording)
    path, kwargs = _write_rois(rois, roi_format, tmp_path, movie)
    back = rt.read_rois(path, shape=movie.frame_shape, **kwargs)
    assert_array_equal(back.masks(), rois.masks())

    npil = {"gap": 1, "width": 2, "min_pixels": 40}
    reference = rt.extract(movie, rois, neuropil=npil)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. a dF/F0 note on dim cells
        ds = rt.extract(movie, back, neuropil=npil)
    assert_array_equal(ds["F"].values, reference["F"].values)
    assert_array_equal(ds["F_corrected"].values, reference["F_corrected"].values)

    for out in ("t.csv", "t.nc", "t.nwb", "plane0_out"):
        saved = rt.save(ds, tmp_path / out)
        loaded = rt.load(saved, allow_pickle=True)
        for v in ("F", "Fneu", "F_corrected"):
            got, want = loaded[v].values, ds[v].values
            if out == "plane0_out":  # suite2p stores float32
                assert_allclose(got, want, rtol=1e-6)
            else:
                assert_array_equal(got, want)
        assert_allclose(loaded["time"], ds["time"])
        if out in ("t.nc", "t.nwb"):  # formats that carry the ROIs too
            assert_array_equal(result_rois(loaded).masks(), rois.masks())
