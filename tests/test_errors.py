"""The error tree: an unreadable input is an InputFormatError of its own kind (movie,
ROI set, result), so ``except MovieError`` catches movies only."""

from __future__ import annotations

import numpy as np
import pytest

import roitrace as rt
from roitrace import errors


def test_every_error_is_exported_and_a_roitrace_error():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert getattr(rt, name) is cls, name
        assert issubclass(cls, errors.RoitraceError), name


def test_the_movie_classes_keep_their_old_bases():
    assert issubclass(rt.MovieFormatError, rt.MovieError)
    assert issubclass(rt.MovieFormatError, ValueError)
    assert issubclass(rt.MovieNotFoundError, rt.MovieError)
    assert issubclass(rt.MovieNotFoundError, FileNotFoundError)
    for kind in ("Movie", "Roi", "Result"):
        assert issubclass(getattr(rt, f"{kind}FormatError"), rt.InputFormatError)
        assert issubclass(getattr(rt, f"{kind}NotFoundError"), rt.InputNotFoundError)
    assert issubclass(rt.InputFormatError, ValueError)
    assert issubclass(rt.InputNotFoundError, FileNotFoundError)
    for cls in (rt.RoiFormatError, rt.RoiNotFoundError, rt.ResultFormatError):
        assert not issubclass(cls, rt.MovieError)
    assert not issubclass(rt.ResultFormatError, rt.ResultError)  # a file, not an argument


def test_a_bad_movie_is_a_movie_format_error(tmp_path):
    path = tmp_path / "movie.tif"
    path.write_bytes(b"not a tiff at all")
    with pytest.raises(rt.MovieFormatError) as info:
        rt.open_movie(path)
    assert isinstance(info.value, rt.MovieError)
    assert isinstance(info.value, rt.InputFormatError)
    with pytest.raises(rt.MovieNotFoundError):
        rt.open_movie(tmp_path / "missing.tif")


def test_a_corrupt_roi_set_is_no_movie_error(tmp_path):
    path = tmp_path / "RoiSet.zip"
    path.write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(rt.RoiFormatError) as info:
        rt.read_rois(path, shape=(8, 8))
    assert isinstance(info.value, rt.InputFormatError)
    assert not isinstance(info.value, rt.MovieError)
    try:  # code that catches movie errors lets it through
        rt.read_rois(path, shape=(8, 8))
    except rt.MovieError:  # pragma: no cover - the point of the test
        pytest.fail("a damaged RoiSet.zip was caught as a movie error")
    except rt.RoiFormatError:
        pass
    with pytest.raises(rt.RoiNotFoundError) as missing:
        rt.read_rois(tmp_path / "none.zip", shape=(8, 8))
    assert not isinstance(missing.value, rt.MovieError)


def test_a_corrupt_label_image_is_a_roi_format_error(tmp_path):
    path = tmp_path / "labels.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(rt.RoiFormatError, match="not a readable label image"):
        rt.read_rois(path)


def test_a_corrupt_result_is_a_result_format_error(tmp_path):
    path = tmp_path / "traces.csv"
    path.write_text("# roitrace_version: 1\nnot,a,roitrace,table\n1,2,3,4\n")
    with pytest.raises(rt.ResultFormatError, match="no roi and frame columns") as info:
        rt.load(path)
    assert isinstance(info.value, rt.InputFormatError)
    assert not isinstance(info.value, rt.MovieError)
    folder = tmp_path / "plane0"
    folder.mkdir()
    np.save(folder / "Fneu.npy", np.zeros((2, 3)))
    with pytest.raises(rt.ResultFormatError, match=r"no F\.npy"):
        rt.load(folder)
    with pytest.raises(rt.ResultNotFoundError):
        rt.load(tmp_path / "missing.csv")
