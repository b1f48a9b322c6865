"""suite2p plane folders: read_suite2p and write_suite2p."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import roitrace
from roitrace.errors import (
    ParameterError,
    RoiFormatError,
    RoiNotFoundError,
    RoitraceError,
    ShapeMismatchError,
)
from roitrace.io.suite2p import read_suite2p, write_suite2p
from roitrace.rois import Roi, RoiSet

LY, LX, NT = 24, 24, 30


def _stat_entry(rng, y0: int, x0: int, size: int, ly: int = LY, lx: int = LX) -> dict:
    """A stat.npy entry with the fields real suite2p outputs carry."""
    yy, xx = np.mgrid[y0 : y0 + size, x0 : x0 + size]
    ypix = yy.ravel().astype(np.int32)
    xpix = xx.ravel().astype(np.int32)
    lam = rng.random(ypix.size).astype(np.float32) + 0.1
    overlap = np.zeros(ypix.size, bool)
    overlap[0] = True
    ring = np.zeros((ly, lx), bool)
    ring[max(y0 - 3, 0) : y0 + size + 3, max(x0 - 3, 0) : x0 + size + 3] = True
    ring[y0 : y0 + size, x0 : x0 + size] = False
    return {
        "ypix": ypix,
        "xpix": xpix,
        "lam": lam,
        "med": [int(np.median(ypix)), int(np.median(xpix))],
        "npix": int(ypix.size),
        "npix_norm": 1.0,
        "overlap": overlap,
        "radius": float(size / 2),
        "aspect_ratio": 1.0,
        "compact": 1.05,
        "footprint": 1.0,
        "skew": 0.8,
        "std": 12.5,
        "soma_crop": np.ones(ypix.size, bool),
        "neuropil_mask": np.flatnonzero(ring).astype(np.int32),
    }


def make_plane(
    folder: Path,
    *,
    iscell: tuple[float, ...] | None = (1.0, 0.0, 1.0, 1.0),
    ops: dict | None = None,
    with_ops: bool = True,
) -> tuple[Path, np.ndarray]:
    """A suite2p-like plane0 folder with 4 ROIs; returns the folder and the stat array."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    corners = [(2, 2, 4), (2, 12, 3), (12, 4, 5), (15, 15, 4)]
    stat = np.empty(len(corners), dtype=object)
    for k, (y0, x0, size) in enumerate(corners):
        stat[k] = _stat_entry(rng, y0, x0, size)
    np.save(folder / "stat.npy", stat, allow_pickle=True)
    if with_ops:
        o = {"Ly": LY, "Lx": LX, "fs": 15.0, "nframes": NT, "neucoeff": 0.7, "tau": 1.0}
        o.update(ops or {})
        np.save(folder / "ops.npy", np.array(o, dtype=object), allow_pickle=True)
    if iscell is not None:
        flags = np.asarray(iscell, np.float64)
        np.save(folder / "iscell.npy", np.column_stack([flags, np.linspace(0.9, 0.2, 4)]))
    F = rng.random((len(corners), NT)).astype(np.float32)
    np.save(folder / "F.npy", F)
    np.save(folder / "Fneu.npy", 0.5 * F)
    np.save(folder / "spks.npy", np.zeros_like(F))
    return folder, stat


@pytest.fixture
def plane(tmp_path: Path) -> tuple[Path, np.ndarray]:
    return make_plane(tmp_path / "suite2p" / "plane0")


@pytest.fixture(scope="module")
def extracted():
    """A small movie with 3 square cells, extracted with a neuropil ring."""
    rng = np.random.default_rng(0)
    movie = rng.poisson(200, (NT, LY, LX)).astype(np.uint16)
    labels = np.zeros((LY, LX), np.int32)
    labels[3:7, 3:7] = 1
    labels[4:9, 14:19] = 2
    labels[15:19, 8:12] = 3
    return roitrace.extract(movie, labels, neuropil={"gap": 1, "width": 2}), labels


# -- reading -----------------------------------------------------------------------------
def test_refuses_pickles_without_allow_pickle(plane):
    folder, _ = plane
    with pytest.raises(ParameterError) as info:
        read_suite2p(folder)
    msg = str(info.value)
    assert "allow_pickle=True" in msg
    # Python's words only: the command line says --trust-pickle (tests/integration/test_cli.py)
    assert "--trust-pickle" not in msg and "command line" not in msg
    assert "pickle" in msg and "arbitrary code" in msg


def test_reads_cells_with_lam_weights(plane):
    folder, stat = plane
    rois = read_suite2p(folder, allow_pickle=True)
    assert isinstance(rois, RoiSet)
    assert rois.frame_shape == (LY, LX)
    # iscell column 0 is [1, 0, 1, 1]: row 1 is dropped, ids stay row + 1
    assert rois.ids == [1, 3, 4]
    assert rois.names == ["suite2p 0", "suite2p 2", "suite2p 3"]
    np.testing.assert_array_equal(rois.meta["suite2p_index"], [0, 2, 3])
    np.testing.assert_allclose(
        rois.meta["suite2p_probability"], np.linspace(0.9, 0.2, 4)[[0, 2, 3]]
    )
    assert rois.meta["frame_rate"] == 15.0
    for roi, i in zip(rois, [0, 2, 3], strict=True):
        np.testing.assert_array_equal(roi.y, stat[i]["ypix"])
        np.testing.assert_array_equal(roi.x, stat[i]["xpix"])
        np.testing.assert_array_equal(roi.weights, stat[i]["lam"])
        assert roi.npix == stat[i]["npix"]


def test_cells_only_false_keeps_all(plane):
    folder, _ = plane
    rois = read_suite2p(folder, allow_pickle=True, cells_only=False)
    assert rois.ids == [1, 2, 3, 4]
    np.testing.assert_array_equal(rois.meta["suite2p_index"], np.arange(4))


def test_missing_iscell(tmp_path):
    folder, _ = make_plane(tmp_path / "plane0", iscell=None)
    with pytest.raises(RoiNotFoundError) as info:
        read_suite2p(folder, allow_pickle=True)
    assert "iscell.npy" in str(info.value)
    assert "cells_only=False" in str(info.value)
    rois = read_suite2p(folder, allow_pickle=True, cells_only=False)
    assert len(rois) == 4
    assert "suite2p_probability" not in rois.meta


def test_missing_stat_names_folder_and_lists_it(tmp_path):
    folder = tmp_path / "plane0"
    folder.mkdir()
    np.save(folder / "F.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(RoiNotFoundError) as info:
        read_suite2p(folder, allow_pickle=True)
    msg = str(info.value)
    assert str(folder) in msg
    assert "stat.npy" in msg and "F.npy" in msg
    assert isinstance(info.value, RoitraceError) and isinstance(info.value, FileNotFoundError)


def test_missing_folder(tmp_path):
    with pytest.raises(RoiNotFoundError, match="no such file or folder"):
        read_suite2p(tmp_path / "nowhere", allow_pickle=True)


def test_parent_suite2p_folder(plane):
    folder, _ = plane
    (folder.parent / "combined").mkdir()  # not a plane: ignored
    rois = read_suite2p(folder.parent, allow_pickle=True)
    assert rois.ids == [1, 3, 4]
    assert rois.meta["folder"] == str(folder)


def test_parent_with_several_planes(plane):
    folder, _ = plane
    make_plane(folder.parent / "plane1")
    with pytest.raises(ParameterError, match="2 suite2p planes"):
        read_suite2p(folder.parent, allow_pickle=True)


def test_stat_npy_path(plane):
    folder, _ = plane
    rois = read_suite2p(folder / "stat.npy", allow_pickle=True)
    assert rois.ids == [1, 3, 4]
    assert rois.source == str(folder / "stat.npy")


def test_shape_from_ops_or_argument(tmp_path):
    with_ops, _ = make_plane(tmp_path / "a" / "plane0", ops={"Ly": 30, "Lx": 40})
    assert read_suite2p(with_ops, allow_pickle=True).frame_shape == (30, 40)
    assert read_suite2p(with_ops, allow_pickle=True, shape=(30, 40)).frame_shape == (30, 40)
    with pytest.raises(ShapeMismatchError, match="Ly x Lx"):
        read_suite2p(with_ops, allow_pickle=True, shape=(24, 24))

    no_ops, _ = make_plane(tmp_path / "b" / "plane0", with_ops=False)
    rois = read_suite2p(no_ops, allow_pickle=True, shape=(32, 28))
    assert rois.frame_shape == (32, 28)
    assert "frame_rate" not in rois.meta


def test_no_shape_is_an_error(tmp_path):
    folder, _ = make_plane(tmp_path / "plane0", with_ops=False)
    with pytest.raises(ParameterError) as info:
        read_suite2p(folder, allow_pickle=True)
    assert "shape=" in str(info.value) and "ops.npy" in str(info.value)


def test_roi_outside_frame(tmp_path):
    folder, _ = make_plane(tmp_path / "plane0", ops={"Ly": 16, "Lx": 16})
    with pytest.raises(ShapeMismatchError, match="outside the 16 x 16 frame"):
        read_suite2p(folder, allow_pickle=True)


def test_entry_without_pixels_names_index(tmp_path):
    folder, stat = make_plane(tmp_path / "plane0")
    del stat[2]["xpix"]
    np.save(folder / "stat.npy", stat, allow_pickle=True)
    with pytest.raises(RoiFormatError, match="entry 2"):
        read_suite2p(folder, allow_pickle=True)


@pytest.mark.parametrize(
    ("ypix", "xpix", "match"),
    [
        (np.array([1.0, 2.0]), np.array([1, 2]), "integer"),
        (np.array([1, 2, 3]), np.array([1, 2]), "3 ypix but 2 xpix"),
    ],
)
def test_bad_pixel_lists(tmp_path, ypix, xpix, match):
    folder, stat = make_plane(tmp_path / "plane0")
    stat[1]["ypix"], stat[1]["xpix"] = ypix, xpix
    np.save(folder / "stat.npy", stat, allow_pickle=True)
    with pytest.raises(RoiFormatError, match=match):
        read_suite2p(folder, allow_pickle=True, cells_only=False)


def test_corrupt_stat(tmp_path):
    folder, _ = make_plane(tmp_path / "plane0")
    (folder / "stat.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RoiFormatError, match=r"stat\.npy"):
        read_suite2p(folder, allow_pickle=True)


# -- writing -----------------------------------------------------------------------------
def test_round_trip(tmp_path, extracted):
    ds, labels = extracted
    rois = RoiSet.from_labels(labels)
    out = write_suite2p(ds, rois, tmp_path / "out" / "suite2p" / "plane0")
    assert out == tmp_path / "out" / "suite2p" / "plane0"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["F.npy", "Fneu.npy", "spks.npy", "iscell.npy", "stat.npy", "ops.npy"]
    )

    F = np.load(out / "F.npy")
    assert F.dtype == np.float32 and F.shape == (3, NT)
    np.testing.assert_array_equal(F, ds["F"].values.astype(np.float32))
    np.testing.assert_array_equal(np.load(out / "Fneu.npy"), ds["Fneu"].values.astype(np.float32))
    np.testing.assert_array_equal(np.load(out / "spks.npy"), np.zeros((3, NT), np.float32))
    np.testing.assert_array_equal(np.load(out / "iscell.npy"), np.ones((3, 2)))

    back = read_suite2p(out, allow_pickle=True)
    assert back.ids == rois.ids and back.frame_shape == rois.frame_shape
    for a, b in zip(rois, back, strict=True):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_allclose(b.weights, np.full(a.npix, 1 / a.npix), rtol=1e-6)

    stat = np.load(out / "stat.npy", allow_pickle=True)
    s = stat[1]
    assert s["npix"] == 25 and s["med"] == [6, 16]
    assert s["radius"] == pytest.approx(np.sqrt(25 / np.pi))
    assert s["overlap"].shape == (25,) and not s["overlap"].any()
    ops = np.load(out / "ops.npy", allow_pickle=True).item()
    assert (ops["Ly"], ops["Lx"], ops["nframes"]) == (LY, LX, NT)
    assert ops["roitrace_version"] == roitrace.__version__
    assert ops["parameters"] == ds.attrs["parameters"]
    assert "fs" not in ops  # an array movie has no frame rate


def test_round_trip_keeps_weights_and_frame_rate(tmp_path, extracted):
    ds, labels = extracted
    ds = ds.assign_attrs(frame_rate=7.5)
    base = RoiSet.from_labels(labels)
    rng = np.random.default_rng(3)
    weighted = RoiSet(
        [Roi(r.id, r.y, r.x, rng.random(r.npix) + 0.5, r.name) for r in base], base.frame_shape
    )
    out = write_suite2p(ds, weighted, tmp_path / "plane0")
    back = read_suite2p(out, allow_pickle=True)
    assert back.meta["frame_rate"] == 7.5
    for a, b in zip(weighted, back, strict=True):
        np.testing.assert_allclose(b.weights, a.weights, rtol=1e-6)
        np.testing.assert_array_equal(a.y, b.y)


def test_result_read_back_knows_its_frame_rate_and_size(tmp_path, extracted):
    from roitrace.io.suite2p import read_suite2p_result
    from roitrace.result import result_frame_rate, result_frame_shape

    ds, labels = extracted
    out = write_suite2p(
        ds.assign_attrs(frame_rate=7.5), RoiSet.from_labels(labels), tmp_path / "p"
    )
    back = read_suite2p_result(out, allow_pickle=True)
    assert result_frame_rate(back) == 7.5
    assert result_frame_shape(back) == labels.shape
    plain = read_suite2p_result(out)  # no pickle: neither is known
    assert result_frame_rate(plain) is None and result_frame_shape(plain) is None


def test_without_neuropil_writes_zeros_and_warns(tmp_path, extracted, caplog):
    ds, labels = extracted
    bare = ds.drop_vars(["Fneu", "F_corrected"])
    with caplog.at_level(logging.WARNING, logger="roitrace.io.suite2p"):
        out = write_suite2p(bare, RoiSet.from_labels(labels), tmp_path / "plane0")
    assert "no Fneu" in caplog.text
    np.testing.assert_array_equal(np.load(out / "Fneu.npy"), np.zeros((3, NT), np.float32))


def test_write_rejects_other_rois(tmp_path, extracted):
    ds, labels = extracted
    other = RoiSet.from_labels(np.where(labels == 3, 4, labels))
    with pytest.raises(ShapeMismatchError, match="RoiSet"):
        write_suite2p(ds, other, tmp_path / "plane0")
    shrunk = labels.copy()
    shrunk[3, 3] = 0
    with pytest.raises(ShapeMismatchError, match="pixels"):
        write_suite2p(ds, RoiSet.from_labels(shrunk), tmp_path / "plane0")
    assert not (tmp_path / "plane0" / "F.npy").exists()


@pytest.mark.parametrize("fail_at", [0, 3])
def test_write_is_atomic(tmp_path, extracted, monkeypatch, fail_at):
    ds, labels = extracted
    real_save = np.save
    calls = []

    def flaky_save(file, arr, *args, **kwargs):
        calls.append(file)
        if len(calls) > fail_at:
            file.write(b"\x93NUMPY half-written")
            raise OSError("disk full")
        return real_save(file, arr, *args, **kwargs)

    monkeypatch.setattr(np, "save", flaky_save)
    folder = tmp_path / "plane0"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"registered frames")  # suite2p's own files stay
    (folder / "F.npy").write_bytes(b"old F")
    with pytest.raises(OSError, match="disk full"):
        write_suite2p(ds, RoiSet.from_labels(labels), folder)
    monkeypatch.undo()

    # the folder is as it was: no new F.npy beside an old Fneu.npy, no temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane0"]
    assert sorted(p.name for p in folder.iterdir()) == ["F.npy", "data.bin"]
    assert (folder / "F.npy").read_bytes() == b"old F"
    # written undisturbed, every file is new and data.bin is kept
    write_suite2p(ds, RoiSet.from_labels(labels), folder)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "F.npy",
        "Fneu.npy",
        "data.bin",
        "iscell.npy",
        "ops.npy",
        "spks.npy",
        "stat.npy",
    ]
    assert np.load(folder / "F.npy").shape == (ds.sizes["roi"], ds.sizes["time"])
