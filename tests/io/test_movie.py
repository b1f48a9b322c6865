"""The movie readers: every TIFF flavour of the peer corpus, .npy, HDF5, bad files."""

from __future__ import annotations

import re
import warnings

import h5py
import numpy as np
import pytest
import tifffile
from numpy.testing import assert_array_equal

import roitrace as rt
from conftest import DATA, data_path


def _variant_files():
    folder = DATA / "tiff-variants"
    if not folder.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{folder} is absent"))]
    return sorted(folder.glob("*.tif"))


def _expected_for(path):
    """The README's rule: unsigned dtypes take abs(), floats are divided by 10;
    imageio files hold the first frame only."""
    expected = np.load(path.parent / "expected.npy")
    dtype = re.search(r"_(u?int\d+|float\d+)\.tif$", path.name).group(1)
    if dtype.startswith("u"):
        expected = np.abs(expected)
    if dtype.startswith("float"):
        expected = expected / 10
    expected = expected.astype(dtype)
    return expected[:1] if path.name.startswith("imageio") else expected


@pytest.mark.parametrize("path", _variant_files(), ids=lambda p: p.name if p else "absent")
def test_tiff_variants(path):
    expected = _expected_for(path)
    shaped = re.search(r"_\d+(,\d+)+_", path.name) or "mixed" in path.name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        movie = rt.open_movie(path)
        data = np.asarray(movie)
    assert movie.shape == expected.shape
    assert data.dtype == expected.dtype
    assert_array_equal(data, expected)
    if shaped:
        assert any("flattened" in str(w.message) or "joined" in str(w.message) for w in caught), (
            "flattening extra dimensions must be announced"
        )
    # Lazy reads of any frame range give the same numbers.
    assert_array_equal(movie[1:3], expected[1:3])
    assert_array_equal(movie[[-1, 0]], expected[[-1, 0]])
    movie.close()


def test_uncompressed_tiff_is_memory_mapped(tmp_path):
    data = np.arange(40 * 8 * 9, dtype=np.uint16).reshape(40, 8, 9)
    tifffile.imwrite(tmp_path / "m.tif", data)
    movie = rt.open_movie(tmp_path / "m.tif")
    assert movie.memory_mapped
    assert_array_equal(movie[5:9], data[5:9])


def test_compressed_tiff_reads_pages_lazily(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (30, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", data, compression="zlib")
    movie = rt.open_movie(tmp_path / "z.tif")
    assert not movie.memory_mapped
    assert_array_equal(movie[10:20], data[10:20])
    assert_array_equal(np.asarray(movie), data)


def test_bigtiff_imagej_and_ome(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (12, 6, 7)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", data, bigtiff=True)
    tifffile.imwrite(
        tmp_path / "ij.tif", data, imagej=True, metadata={"axes": "TYX", "finterval": 0.05}
    )
    tifffile.imwrite(
        tmp_path / "x.ome.tif",
        data,
        ome=True,
        metadata={"axes": "TYX", "TimeIncrement": 0.1, "TimeIncrementUnit": "s"},
    )
    for name, rate in (("big.tif", None), ("ij.tif", 20.0), ("x.ome.tif", 10.0)):
        movie = rt.open_movie(tmp_path / name)
        assert_array_equal(np.asarray(movie), data)
        assert movie.frame_rate == pytest.approx(rate) if rate else movie.frame_rate is None


def test_imagej_channel_selection(tmp_path):
    data = np.random.default_rng(2).integers(0, 100, (5, 2, 6, 7)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", data, imagej=True, metadata={"axes": "TCYX"})
    movie = rt.open_movie(tmp_path / "c.tif", channel=1)
    assert movie.shape == (5, 6, 7)
    assert_array_equal(np.asarray(movie), data[:, 1])
    with pytest.raises(rt.ParameterError, match="channel=2 but there are 2"):
        rt.open_movie(tmp_path / "c.tif", channel=2)
    with pytest.warns(UserWarning, match="channel="):
        assert rt.open_movie(tmp_path / "c.tif").shape == (10, 6, 7)


def test_npy_memory_mapped_with_axes(tmp_path):
    data = np.random.default_rng(3).random((9, 5, 4))
    np.save(tmp_path / "m.npy", np.transpose(data, (1, 2, 0)))  # stored Y, X, T
    movie = rt.open_movie(tmp_path / "m.npy", axes="YXT")
    assert movie.shape == (9, 5, 4)
    assert_array_equal(movie[2:5], data[2:5])
    with pytest.raises(rt.ParameterError, match="axes="):
        rt.open_movie(tmp_path / "m.npy", axes="TY")


def test_hdf5_dataset_in_path_and_axes(tmp_path):
    data = np.random.default_rng(4).integers(0, 1000, (8, 5, 6)).astype(np.int16)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.create_dataset("group/imaging", data=np.transpose(data, (1, 2, 0)))
        f["group/imaging"].attrs["frame_rate"] = 15.0
        f.create_dataset("other", data=np.zeros((2, 2, 2)))
    movie = rt.open_movie(f"{tmp_path}/m.h5:/group/imaging", axes="YXT")
    assert movie.shape == (8, 5, 6) and movie.frame_rate == 15.0
    assert_array_equal(np.asarray(movie), data)
    assert_array_equal(movie[[6, 2, 2]], data[[6, 2, 2]])
    with pytest.raises(rt.MovieFormatError, match="candidates"):
        rt.open_movie(tmp_path / "m.h5")
    with pytest.raises(rt.MovieFormatError, match="no dataset 'nope'"):
        rt.open_movie(tmp_path / "m.h5", dataset="nope")


def test_sima_hdf5_stored_yxt_equals_tiff():
    tif = rt.open_movie(data_path("sima", "example.tif"))
    h5 = rt.open_movie(data_path("sima", "example.h5"), dataset="imaging", axes="YXT")
    assert tif.shape == h5.shape == (20, 128, 256)
    assert_array_equal(np.asarray(h5), np.asarray(tif))
    assert tif.dtype == np.uint16 and np.asarray(tif).max() <= 4095


def test_thunder_mouse():
    movie = rt.open_movie(data_path("thunder-mouse", "mouse.tif"))
    assert movie.shape == (500, 64, 64) and movie.dtype == np.int16
    assert_array_equal(movie[100:110], tifffile.imread(movie.path)[100:110])


# -- bad input -----------------------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(rt.MovieNotFoundError, match="no such file"):
        rt.open_movie(tmp_path / "nope.tif")


def test_not_a_tiff(tmp_path):
    (tmp_path / "fake.tif").write_text("this is not a TIFF")
    with pytest.raises(rt.MovieFormatError, match="not a readable TIFF"):
        rt.open_movie(tmp_path / "fake.tif")


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path, compression):
    data = np.random.default_rng(5).integers(0, 4000, (10, 32, 32)).astype(np.uint16)
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, data, compression=compression)
    raw = path.read_bytes()
    # Cut in the middle of the 8th frame's pixels (tifffile writes pages in order).
    with tifffile.TiffFile(path) as tif:
        cut = tif.pages[7].dataoffsets[0] + tif.pages[7].databytecounts[0] // 2
    path.write_bytes(raw[:cut])
    with pytest.raises(rt.MovieFormatError, match="truncated: only frames 0 to 6 of 10"):
        rt.open_movie(path)
    with pytest.warns(UserWarning, match="7 complete frames"):
        movie = rt.open_movie(path, truncated="keep")
    assert_array_equal(np.asarray(movie), data[:7])


def test_unknown_suffix(tmp_path):
    (tmp_path / "m.avi").write_bytes(b"xx")
    with pytest.raises(rt.MovieFormatError, match="unknown movie format"):
        rt.open_movie(tmp_path / "m.avi")


def test_2d_image_is_not_a_movie(tmp_path):
    with pytest.raises(rt.NotAMovieError, match="2-D image"):
        rt.as_movie(np.zeros((4, 5)))
    np.save(tmp_path / "img.npy", np.zeros((4, 5)))
    with pytest.raises(rt.NotAMovieError, match="2-D image"):
        rt.open_movie(tmp_path / "img.npy")
    with pytest.raises(rt.NotAMovieError):
        rt.projection(np.zeros((4, 5)), "mean")


def test_frames_outside_movie():
    movie = rt.as_movie(np.zeros((5, 2, 2)))
    with pytest.raises(rt.FrameRangeError, match="5 frames"):
        movie.read(3, 9)
    with pytest.raises(rt.FrameRangeError):
        movie.take([7])


def test_hdf5_dimension_labels_give_the_axis_order(tmp_path):
    """A dataset stored (Y, X, T) whose dimensions are labelled (h5py's dims[i].label,
    as the demo's cells.h5) is read in the right order without axes=; unlabelled or
    unknown labels keep the default order, and axes= still wins."""
    import h5py

    data = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)  # T, Y, X
    path = tmp_path / "yxt.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("imaging", data=np.moveaxis(data, 0, -1))
        for dim, label in zip(ds.dims, ("y", "x", "time"), strict=True):
            dim.label = label
        other = f.create_dataset("plain", data=np.moveaxis(data, 0, -1))
        other.dims[0].label = "depth"
    m = rt.open_movie(path, dataset="imaging")
    assert m.shape == (4, 5, 6)
    np.testing.assert_array_equal(np.asarray(m), data)
    assert rt.open_movie(path, dataset="plain").shape == (5, 6, 4)  # the default order
    assert rt.open_movie(path, dataset="imaging", axes="TYX").shape == (5, 6, 4)
