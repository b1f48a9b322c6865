"""The io registries: every suffix finds its format, an unknown one gets one message
listing them, a format refuses options it does not take, a missing package says
what to install."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import roitrace as rt
from roitrace import io
from roitrace.errors import MissingDependencyError, ParameterError


@pytest.fixture(scope="module")
def result():
    labels = np.zeros((8, 8), np.int32)
    labels[1:3, 1:3] = 1
    labels[5:7, 4:7] = 2
    movie = rt.as_movie(np.random.default_rng(0).poisson(50, (6, 8, 8)), frame_rate=5.0)
    return rt.extract(movie, labels)


# -- every format says what it is --------------------------------------------------------
@pytest.mark.parametrize("kind", io.KINDS)
def test_formats_declare_themselves(kind):
    found = io.formats(kind)
    assert found, kind
    names = [f.name for f in found]
    assert len(set(names)) == len(names)
    for fmt in found:
        assert fmt.kind == kind and fmt.title
        assert fmt.folder or fmt.suffixes
        assert all(s.startswith(".") and s == s.lower() for s in fmt.suffixes)
        assert fmt.requires is None or len(fmt.requires) == 3
        assert isinstance(fmt.read_options, tuple) and isinstance(fmt.write_options, tuple)
        assert repr(fmt).startswith(f"<{type(fmt).__name__}")


# -- results -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("t.csv", "csv"),
        ("T.CSV", "csv"),
        ("t.nc", "netcdf"),
        ("t.h5", "netcdf"),
        ("t.hdf5", "netcdf"),
        ("t.nwb", "nwb"),
        ("run/", "suite2p"),
        ("run.v2/", "suite2p"),
        ("run", "suite2p"),
    ],
)
def test_result_suffixes_find_their_format(tmp_path, name, fmt):
    text = str(tmp_path / name) + ("/" if name.endswith("/") else "")
    assert io.result_format(text, for_writing=True).name == fmt
    assert rt.save.__module__ == "roitrace.save"


def test_reading_a_folder_is_suite2p_whatever_its_name(tmp_path):
    (tmp_path / "traces.csv").mkdir()
    assert io.result_format(tmp_path / "traces.csv").name == "suite2p"
    assert io.result_format(tmp_path / "t.nwb").name == "nwb"


def test_an_unknown_result_suffix_lists_the_formats(tmp_path):
    with pytest.raises(ParameterError) as info:
        io.result_format(tmp_path / "t.xlsx", for_writing=True)
    message = str(info.value)
    assert "unknown output format '.xlsx'" in message
    for suffix in io.writable_suffixes("result"):
        assert suffix in message
    assert "folder ending in /" in message
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(rt.ResultFormatError) as info:
        rt.load(tmp_path / "t.xlsx")
    assert "unknown result format '.xlsx'" in str(info.value)
    for word in ("CSV (.csv)", "netCDF (.nc, .h5, .hdf5)", "NWB (.nwb)", "suite2p plane folders"):
        assert word in str(info.value)


def test_save_refuses_a_misspelt_option(result, tmp_path):
    with pytest.raises(ParameterError) as info:
        rt.save(result, tmp_path / "t.csv", indicatr="x")
    message = str(info.value)
    assert "'indicatr'" in message and "CSV files (.csv)" in message
    assert "did you mean 'indicator', an option of NWB files (.nwb)?" in message
    with pytest.raises(ParameterError, match="did you mean 'indicator'\\?"):
        rt.save(result, tmp_path / "t.nwb", indicatr="GCaMP6f")
    assert not list(tmp_path.iterdir())  # nothing written


def test_save_refuses_an_option_of_another_format(result, tmp_path):
    with pytest.raises(ParameterError, match="'indicator' is an option of NWB files"):
        rt.save(result, tmp_path / "t.csv", indicator="GCaMP6f")
    with pytest.raises(ParameterError, match="'subject' is an option of NWB files"):
        rt.save(result, tmp_path / "run/", subject={"subject_id": "m1"})
    with pytest.raises(ParameterError, match=r"netCDF files .* take no option 'colour'"):
        rt.save(result, tmp_path / "t.nc", colour="red")


def test_option_messages_name_what_the_format_takes(result, tmp_path):
    with pytest.raises(ParameterError) as info:
        rt.save(result, tmp_path / "t.nwb", frame_rat=5.0)
    message = str(info.value)
    assert message.startswith("NWB files (.nwb) take no option 'frame_rat' when written")
    assert "'frame_rate'" in message and "'subject'" in message


def test_every_result_format_round_trips(result, tmp_path):
    for name in ("t.csv", "t.nc", "t.h5", "t.hdf5", "t.nwb", "plane0/"):
        out = rt.save(result, f"{tmp_path / name}{'/' if name.endswith('/') else ''}")
        back = rt.load(out, allow_pickle=True)
        if name.endswith("/"):  # suite2p stores float32
            np.testing.assert_allclose(back["F"].values, result["F"].values, rtol=1e-6)
        else:
            np.testing.assert_array_equal(back["F"].values, result["F"].values)


def test_a_missing_package_says_what_to_install(result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5netcdf", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="pip install h5netcdf"):
        rt.save(result, tmp_path / "t.nc")
    assert not (tmp_path / "t.nc").exists()
    fmt = io.result_format(tmp_path / "t.nc", for_writing=True)
    assert not fmt.available()
    with pytest.raises(MissingDependencyError, match="pip install h5netcdf"):
        fmt.require("testing")
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(MissingDependencyError, match="pip install pynwb"):
        io.result_format("t.nwb", for_writing=True).require("writing t.nwb")


def test_require_names_the_extra_when_there_is_one():
    from roitrace._optional import require

    with pytest.raises(MissingDependencyError) as info:
        require("no_such_module_here", "testing", pip="no-such", extra="fast")
    assert "pip install no-such (or pip install 'roitrace[fast]')" in str(info.value)


# -- ROI sets ----------------------------------------------------------------------------
@pytest.fixture
def roiset():
    labels = np.zeros((12, 14), np.int32)
    labels[1:4, 2:6] = 3
    labels[6:10, 7:12] = 8
    labels[11, 0] = 9
    return rt.RoiSet.from_labels(labels)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("RoiSet.zip", "imagej"),
        ("cell.ROI", "imagej"),
        ("labels.tif", "labels"),
        ("labels.tiff", "labels"),
        ("labels.npy", "labels"),
        ("cells.nwb", "nwb"),
    ],
)
def test_roi_suffixes_find_their_format(tmp_path, name, fmt):
    assert io.roi_format(tmp_path / name).name == fmt
    assert io.roi_format(tmp_path / name, for_writing=True).name == fmt


def test_suite2p_folders_and_stat_npy_are_suite2p(tmp_path):
    assert io.roi_format(tmp_path).name == "suite2p"
    assert io.roi_format(tmp_path / "plane0" / "stat.npy").name == "suite2p"
    with pytest.raises(ParameterError, match="suite2p plane folders can be read, not written"):
        rt.write_rois(rt.RoiSet.from_labels(np.eye(3, dtype=int)), f"{tmp_path}/")


def test_an_unknown_roi_suffix_lists_the_formats(tmp_path, roiset):
    (tmp_path / "cells.csv").write_text("")
    with pytest.raises(rt.RoiFormatError) as info:
        rt.read_rois(tmp_path / "cells.csv")
    message = str(info.value)
    assert "unknown ROI format '.csv'" in message
    for word in ("suite2p plane folders", "ImageJ ROI (.zip, .roi)", "(.tif, .tiff, .npy)"):
        assert word in message
    with pytest.raises(ParameterError) as info:
        rt.write_rois(roiset, tmp_path / "cells.csv")
    assert "unknown ROI format '.csv'; use .zip, .roi, .tif, .tiff, .npy, .nwb" in str(info.value)
    with pytest.raises(ParameterError, match="has no suffix"):
        rt.write_rois(roiset, tmp_path / "cells")


@pytest.mark.parametrize(
    "name", ["RoiSet.zip", "labels.tif", "labels.tiff", "labels.npy", "c.nwb"]
)
def test_write_rois_round_trips(tmp_path, roiset, name):
    path = rt.write_rois(roiset, tmp_path / name)
    assert path == tmp_path / name and path.exists()
    back = rt.read_rois(path, shape=roiset.frame_shape)
    assert back.names == roiset.names  # ImageJ numbers its ROIs 1..n: the names stay
    np.testing.assert_array_equal(back.masks(), roiset.masks())
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_write_rois_one_imagej_roi(tmp_path, roiset):
    one = rt.RoiSet([roiset[1]], roiset.frame_shape)
    back = rt.read_rois(rt.write_rois(one, tmp_path / "cell.roi"), shape=roiset.frame_shape)
    np.testing.assert_array_equal(back.to_labels() > 0, one.to_labels() > 0)
    with pytest.raises(ParameterError, match=r"a \.roi file holds one ROI"):
        rt.write_rois(roiset, tmp_path / "all.roi")


def test_write_rois_format_and_options(tmp_path, roiset):
    # the RoiSet methods are write_rois with a format, whatever the suffix
    path = rt.write_rois(roiset, tmp_path / "labels.data", format="labels")
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(path), roiset.to_labels())
    with pytest.raises(ParameterError, match="format='zarr' is no ROI format"):
        rt.write_rois(roiset, tmp_path / "x.zip", format="zarr")
    with pytest.raises(ParameterError, match=r"ImageJ ROI files .* take no option 'indicator'"):
        rt.write_rois(roiset, tmp_path / "x.zip", indicator="GCaMP6f")
    with pytest.raises(ParameterError, match="did you mean 'indicator'"):
        rt.write_rois(roiset, tmp_path / "x.nwb", indicater="GCaMP6f")
    with pytest.raises(ParameterError, match="must be a RoiSet"):
        rt.write_rois(roiset.to_labels(), tmp_path / "x.zip")
    assert not [p for p in tmp_path.iterdir() if p.name != "labels.data"]


def test_roiset_methods_write_through_the_registry(tmp_path, roiset):
    for path in (
        roiset.to_imagej(tmp_path / "RoiSet.zip"),
        roiset.to_label_image(tmp_path / "labels.npy"),
        roiset.to_nwb(tmp_path / "seg.nwb", indicator="GCaMP6f"),
    ):
        back = rt.read_rois(path, shape=roiset.frame_shape)
        np.testing.assert_array_equal(back.masks(), roiset.masks())


def test_format_read_checks_its_options(tmp_path, roiset):
    path = rt.write_rois(roiset, tmp_path / "labels.npy")
    fmt = io.roi_format(path)
    with pytest.raises(ParameterError, match="did you mean 'shape'"):
        fmt.read(path, shap=(12, 14))
    with pytest.raises(ParameterError, match="'plane_segmentation' is an option of NWB files"):
        fmt.read(path, plane_segmentation="A")
    with pytest.raises(rt.ShapeMismatchError, match="12 x 14 frames but the movie's"):
        fmt.read(path, shape=(5, 5))
    assert fmt.read(path, shape=(12, 14)).ids == roiset.ids


# -- movies ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("m.tif", "tiff"),
        ("M.TIFF", "tiff"),
        ("m.btf", "tiff"),
        ("m.ome.tif", "tiff"),
        ("m.npy", "numpy"),
        ("m.h5", "hdf5"),
        ("m.hdf5", "hdf5"),
        ("m.hdf", "hdf5"),
        ("m.he5", "hdf5"),
        ("m.zarr", "zarr"),
        ("M.ZARR", "zarr"),
    ],
)
def test_movie_suffixes_find_their_format(tmp_path, name, fmt):
    assert io.movie_format(tmp_path / name).name == fmt


def test_an_unknown_movie_suffix_lists_the_formats(tmp_path):
    (tmp_path / "m.avi").write_bytes(b"xx")
    with pytest.raises(rt.MovieFormatError) as info:
        rt.open_movie(tmp_path / "m.avi")
    assert str(info.value) == (
        f"{tmp_path / 'm.avi'}: unknown movie format '.avi'; roitrace reads TIFF (.tif, "
        ".tiff, .btf, .tf8), NumPy (.npy), HDF5 (.h5, .hdf5, .hdf, .he5) and Zarr folders"
    )


def test_movie_options_go_to_the_formats_that_take_them(tmp_path):
    import tifffile

    data = np.arange(6 * 3 * 5, dtype=np.uint16).reshape(6, 3, 5)
    tifffile.imwrite(tmp_path / "m.tif", data)
    np.save(tmp_path / "m.npy", np.moveaxis(data, 0, -1))
    with pytest.raises(ParameterError, match="axes= is for NumPy, HDF5 and Zarr files; TIFF"):
        rt.open_movie(tmp_path / "m.tif", axes="TYX")
    with pytest.raises(ParameterError, match="dataset='d' is for HDF5 and Zarr files"):
        rt.open_movie(tmp_path / "m.npy", dataset="d")
    assert rt.open_movie(tmp_path / "m.npy", axes="YXT").shape == (6, 3, 5)
    fmt = io.movie_format(tmp_path / "m.tif")
    with pytest.raises(ParameterError, match=r"TIFF files \(.*\) take no option 'axes'"):
        fmt.read(tmp_path / "m.tif", axes="TYX")
    with pytest.raises(ParameterError, match="did you mean 'frame_rate'"):
        fmt.read(tmp_path / "m.tif", framerate=5.0)
    with pytest.raises(ParameterError, match="frame_rate"):
        fmt.read(tmp_path / "m.tif", frame_rate=-1.0)
    with fmt.read(tmp_path / "m.tif", frame_rate=7.5) as movie:
        assert movie.frame_rate == 7.5
        np.testing.assert_array_equal(movie[:], data)


def test_the_hdf5_dataset_path_is_one_syntax(tmp_path):
    import h5py

    from roitrace._atomic import input_file
    from roitrace._paths import split_dataset_path

    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f["imaging"] = np.zeros((3, 4, 5), np.uint16)
        f["other"] = np.zeros((3, 4, 5), np.uint16)
    text = f"{path}:/imaging"
    assert split_dataset_path(text) == (str(path), "/imaging")
    assert input_file(text) == path
    assert rt.open_movie(text).shape == (3, 4, 5)
    from roitrace.save import check_output

    with pytest.raises(rt.OutputError, match="the input movie"):
        check_output(path, inputs=[("the input movie", text)])  # the file, not its name


def test_movie_classes_keep_their_home():
    from roitrace import movie

    assert movie.Movie is rt.Movie and movie.ArrayMovie.__mro__[1] is movie.Movie
    assert issubclass(movie.TiffMovie, movie.Movie) and issubclass(movie.H5Movie, movie.Movie)
    assert ".tif" in movie.TIFF_SUFFIXES and ".h5" in movie.H5_SUFFIXES


def test_write_rois_never_writes_over_the_file_they_came_from(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.array([[0, 1, 1], [2, 0, 0]]))
    rois = rt.read_rois(path)
    with pytest.raises(rt.OutputError, match="is the ROI file; write the output to another"):
        rt.write_rois(rois, path)
    assert np.array_equal(np.load(path), [[0, 1, 1], [2, 0, 0]])
    rt.write_rois(rois, tmp_path / "copy.npy")


def test_damaged_csv_and_non_result_files_are_result_format_errors(tmp_path):
    sim = rt.simulate(shape=(24, 24), n_frames=40, n_cells=3, seed=1)
    ds = rt.extract(sim.movie, sim.labels)
    good = rt.save(ds, tmp_path / "t.csv")
    lines = good.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:60]) + lines[60][:5])  # cut in the middle of a row
    with pytest.raises(rt.ResultFormatError, match=r"not a number|rows for"):
        rt.load(cut)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:60]))  # whole rows, but ROIs of unequal length
    with pytest.raises(rt.ResultFormatError, match="rows for 40 frames"):
        rt.load(short)
    movie = tmp_path / "movie.h5"
    import h5py

    with h5py.File(movie, "w") as f:
        f["imaging"] = sim.movie
    with pytest.raises(rt.ResultFormatError, match="not a roitrace result"):
        rt.load(movie)
