"""Zarr movies (roitrace.io.zarr): Zarr format 3 and 2 arrays and groups, OME-Zarr
images (NGFF 0.5 on format 3, 0.4 on format 2), lazy chunk-by-chunk reads, hostile
metadata, and the real recordings in ../shared/data converted to Zarr: the same
traces as from their TIFF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from numpy.testing import assert_array_equal

import roitrace as rt
import roitrace._memory as memory
from conftest import data_path, run_roitrace
from roitrace.errors import MovieFormatError, OutputError, ParameterError
from roitrace.io.zarr import ZarrMovie

MOVIE = np.arange(20 * 6 * 8, dtype=np.uint16).reshape(20, 6, 8)


def write(where, data, *, name=None, chunks=None, **kw):
    """``data`` as a Zarr array: the store ``where``, or ``name`` in the group ``where``."""
    make = where.create_array if name is not None else zarr.create_array
    target = name if name is not None else where
    z = make(target, shape=data.shape, chunks=chunks or data.shape, dtype=data.dtype, **kw)
    z[:] = data
    return z


def chunk_file(store: Path, *index: int) -> Path:
    """The file of chunk ``index`` of a format 3 array (default chunk key encoding)."""
    return store.joinpath("c", *map(str, index))


# -- plain arrays and groups ---------------------------------------------------------------
def test_v3_array_is_a_lazy_tyx_movie_that_reopens_from_its_source(tmp_path):
    path = tmp_path / "movie.zarr"
    write(path, MOVIE, chunks=(4, 6, 8), attributes={"frame_rate": 30.0})
    movie = rt.open_movie(path)
    assert isinstance(movie, ZarrMovie)
    assert movie.shape == (20, 6, 8) and movie.dtype == np.uint16
    assert movie.frame_rate == 30.0 and movie.frame_chunk == 4
    assert_array_equal(np.asarray(movie), MOVIE)
    assert_array_equal(movie[5:11], MOVIE[5:11])
    assert_array_equal(movie[[9, 2, 2, 17]], MOVIE[[9, 2, 2, 17]])
    again = movie.source.open()
    assert movie.source.path == str(path.resolve()) and again.shape == movie.shape


def test_v2_array_is_read_too(tmp_path):
    """zarr-python 3 reads Zarr format 2 stores (.zarray, .zattrs): so does roitrace,
    xarray's _ARRAY_DIMENSIONS giving the axis order."""
    path = tmp_path / "v2.zarr"
    write(
        path,
        np.moveaxis(MOVIE, 0, -1),
        chunks=(6, 8, 5),
        zarr_format=2,
        attributes={"_ARRAY_DIMENSIONS": ["y", "x", "time"]},
    )
    assert (path / ".zarray").is_file()
    movie = rt.open_movie(path)
    assert movie.shape == (20, 6, 8) and movie.frame_chunk == 5
    assert_array_equal(movie[3:9], MOVIE[3:9])


def test_a_folder_holding_zarr_metadata_is_a_store_whatever_its_name(tmp_path):
    write(tmp_path / "plain", MOVIE)
    assert_array_equal(np.asarray(rt.open_movie(tmp_path / "plain")), MOVIE)
    (tmp_path / "other").mkdir()
    with pytest.raises(MovieFormatError, match="is a folder; give the movie file inside it"):
        rt.open_movie(tmp_path / "other")


def test_group_with_one_movie_array_is_found_and_can_be_named(tmp_path):
    path = tmp_path / "session.zarr"
    group = zarr.open_group(path, mode="w")
    write(group, MOVIE, name="imaging/raw", chunks=(5, 6, 8))
    write(group, np.arange(20.0), name="timestamps")  # 1-D: not a candidate
    movie = rt.open_movie(path)
    assert_array_equal(np.asarray(movie), MOVIE)
    assert movie.source.options == ()
    named = rt.open_movie(f"{path}:/imaging/raw")
    assert dict(named.source.options) == {"dataset": "/imaging/raw"}
    assert named.source.path == str(path.resolve())
    assert_array_equal(np.asarray(named.source.open()), MOVIE)
    assert_array_equal(np.asarray(rt.open_movie(path, dataset="imaging/raw")), MOVIE)


def test_several_arrays_need_dataset(tmp_path):
    path = tmp_path / "two.zarr"
    group = zarr.open_group(path, mode="w")
    write(group, MOVIE, name="green")
    write(group, MOVIE + 1, name="red")
    with pytest.raises(
        MovieFormatError, match=r"say which array .* dataset=.*candidates: '/green', '/red'"
    ):
        rt.open_movie(path)
    with pytest.raises(MovieFormatError, match=r"no array 'blue'; it holds '/green', '/red'"):
        rt.open_movie(path, dataset="blue")
    with pytest.raises(MovieFormatError, match=r"no array '\.\./green'"):
        rt.open_movie(path, dataset="../green")
    assert_array_equal(np.asarray(rt.open_movie(path, dataset="red")), MOVIE + 1)
    with pytest.raises(MovieFormatError, match="a single array, not a group: leave dataset="):
        rt.open_movie(path / "red", dataset="x")


def test_dimension_names_give_the_axis_order_and_channel(tmp_path):
    data = np.stack([MOVIE, MOVIE * 2])  # (C, T, Y, X)
    path = tmp_path / "ctyx.zarr"
    write(path, np.moveaxis(data, 0, 1), dimension_names=["t", "c", "y", "x"])
    with pytest.raises(ParameterError, match="channel axis of size 2: pass channel="):
        rt.open_movie(path)
    assert_array_equal(np.asarray(rt.open_movie(path, channel=1)), MOVIE * 2)
    with pytest.raises(ParameterError, match="channel=2 but there are 2 channels"):
        rt.open_movie(path, channel=2)
    yxt = tmp_path / "yxt.zarr"
    write(yxt, np.moveaxis(MOVIE, 0, -1), dimension_names=["row", "column", "frame"])
    assert_array_equal(np.asarray(rt.open_movie(yxt)), MOVIE)
    with pytest.raises(ParameterError, match="has no channel axis"):
        rt.open_movie(yxt, channel=0)


def test_axes_option_wins_and_is_checked(tmp_path):
    path = tmp_path / "m.zarr"
    write(path, np.moveaxis(MOVIE, 0, -1), chunks=(6, 8, 4))
    assert rt.open_movie(path).shape == (6, 8, 20)  # unnamed: T, Y, X
    movie = rt.open_movie(path, axes="YXT")
    assert_array_equal(np.asarray(movie), MOVIE)
    assert movie.frame_chunk == 4
    assert dict(movie.source.options) == {"axes": "YXT"}
    with pytest.raises(ParameterError, match="axes='YXTT' does not describe data of shape"):
        rt.open_movie(path, axes="YXTT")
    four = tmp_path / "four.zarr"
    write(four, MOVIE[None])
    with pytest.raises(MovieFormatError, match=r"4 dimensions .* give axes="):
        rt.open_movie(four)
    assert rt.open_movie(four, axes="ZTYX").shape == (20, 6, 8)  # one plane: dropped


# -- OME-Zarr --------------------------------------------------------------------------------
AXES_TCZYX = [
    {"name": "t", "type": "time", "unit": "second"},
    {"name": "c", "type": "channel"},
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def multiscales(axes, levels, version):
    """NGFF multiscales metadata: ``levels`` is a list of (path, scale)."""
    return [
        {
            "version": version,
            "name": "movie",
            "axes": axes,
            "datasets": [
                {"path": p, "coordinateTransformations": [{"type": "scale", "scale": s}]}
                for p, s in levels
            ],
        }
    ]


def ome_v05(path, data, axes, levels, chunks):
    """An OME-Zarr 0.5 image: Zarr format 3, metadata under the ``ome`` attribute,
    each level's dimension_names the axes' names (as NGFF 0.5 asks)."""
    ms = multiscales(axes, levels, "0.5")
    group = zarr.open_group(
        path, mode="w", zarr_format=3, attributes={"ome": {"version": "0.5", "multiscales": ms}}
    )
    names = [a["name"] for a in axes]
    for k, (p, _) in enumerate(levels):
        level = data[..., :: 2**k, :: 2**k]
        z = group.create_array(
            p, shape=level.shape, chunks=chunks, dtype=level.dtype, dimension_names=names
        )
        z[:] = level
    return path


def test_ome_zarr_v05_level_0_axes_and_frame_rate(tmp_path):
    data = np.stack([MOVIE, MOVIE + 7], axis=1)[:, :, None]  # (t, c, z=1, y, x)
    scale = [0.05, 1.0, 2.0, 0.5, 0.5]  # 50 ms per frame: 20 Hz
    path = ome_v05(
        tmp_path / "image.ome.zarr",
        data,
        AXES_TCZYX,
        [("0", scale), ("1", [0.05, 1.0, 2.0, 1.0, 1.0])],
        chunks=(3, 1, 1, 6, 8),
    )
    with pytest.raises(ParameterError, match="channel axis of size 2: pass channel="):
        rt.open_movie(path)
    movie = rt.open_movie(path, channel=1)
    assert movie.shape == (20, 6, 8) and movie.frame_chunk == 3
    assert movie.frame_rate == pytest.approx(20.0)
    assert_array_equal(np.asarray(movie), MOVIE + 7)
    half = rt.open_movie(path, channel=0, dataset="1")  # another level, named
    assert_array_equal(np.asarray(half), MOVIE[:, ::2, ::2])
    assert rt.open_movie(path, channel=0, frame_rate=5).frame_rate == 5.0


def test_ome_zarr_v04_on_zarr_v2(tmp_path):
    axes = [
        {"name": "t", "type": "time", "unit": "millisecond"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    ms = multiscales(axes, [("0", [40.0, 1.0, 1.0])], "0.4")
    ms[0]["coordinateTransformations"] = [{"type": "scale", "scale": [2.0, 1.0, 1.0]}]
    path = tmp_path / "v04.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2, attributes={"multiscales": ms})
    z = group.create_array("0", shape=MOVIE.shape, chunks=(7, 6, 8), dtype=MOVIE.dtype)
    z[:] = MOVIE
    assert (path / ".zattrs").is_file() and (path / "0" / ".zarray").is_file()
    movie = rt.open_movie(path)
    assert_array_equal(np.asarray(movie), MOVIE)
    assert movie.frame_chunk == 7
    assert movie.frame_rate == pytest.approx(1000 / 80)  # 40 ms x 2


def test_ome_zarr_image_inside_a_bioformats2raw_style_group(tmp_path):
    root = tmp_path / "b2r.zarr"
    zarr.open_group(root, mode="w", attributes={"bioformats2raw.layout": 3})
    ome_v05(root / "0", MOVIE[:, None, None], AXES_TCZYX, [("0", [1.0] * 5)], (5, 1, 1, 6, 8))
    movie = rt.open_movie(root)
    assert_array_equal(np.asarray(movie), MOVIE)
    assert movie.frame_rate == 1.0  # 1 second per frame, as the metadata says


def test_ome_zarr_z_planes_are_flattened_into_time_with_a_warning(tmp_path):
    data = MOVIE.reshape(10, 1, 2, 6, 8)  # 10 time points of 2 planes
    path = ome_v05(tmp_path / "z.zarr", data, AXES_TCZYX, [("0", [1.0] * 5)], (2, 1, 1, 6, 8))
    with pytest.warns(UserWarning, match=r"axis Z .*2 planes.* flattened into time \(20 frames"):
        movie = rt.open_movie(path)
    assert movie.frame_chunk == 4  # 2 time points of 2 planes
    assert_array_equal(np.asarray(movie), MOVIE)
    assert_array_equal(movie[3:8], MOVIE[3:8])
    assert_array_equal(movie[[7, 0, 19, 7]], MOVIE[[7, 0, 19, 7]])


def test_ome_zarr_without_a_time_axis_is_not_a_movie(tmp_path):
    axes = [{"name": n, "type": "space"} for n in "zyx"]
    path = ome_v05(tmp_path / "stack.zarr", MOVIE, axes, [("0", [1.0] * 3)], (5, 6, 8))
    with pytest.raises(MovieFormatError, match=r"no time axis \(axes z, y, x\).* give axes="):
        rt.open_movie(path)
    assert rt.open_movie(path, axes="TYX").shape == (20, 6, 8)


# -- lazy reads, chunks --------------------------------------------------------------------
def test_reads_only_the_chunks_of_the_frames_asked_for(tmp_path):
    """Frames 8-11 live in chunk 2: with every other chunk gone (read as the fill
    value, as Zarr defines missing chunks) or replaced by junk, they still read."""
    path = tmp_path / "m.zarr"
    write(path, MOVIE, chunks=(4, 3, 8), fill_value=7)
    for k in (0, 1):
        for j in (0, 1):
            chunk_file(path, k, j, 0).write_bytes(b"not a zstd frame")
    for k in (3, 4):
        shutil.rmtree(path / "c" / str(k))
    with pytest.warns(UserWarning, match=r"4 of 10 chunks are missing from the store; zarr"):
        movie = rt.open_movie(path)
    assert_array_equal(movie[8:12], MOVIE[8:12])
    assert_array_equal(movie[[11, 9]], MOVIE[[11, 9]])
    assert (movie[12:20] == 7).all()  # missing chunks: the fill value
    with pytest.raises(MovieFormatError) as err:
        movie[2:10]
    msg = str(err.value)
    assert "\n" not in msg
    assert f"frames 0-3 of {path} (chunk 0 along time) could not be read" in msg, msg
    assert "the store is damaged there: re-copy it" in msg


def test_a_damaged_chunk_after_the_first_says_which_frames_to_use(tmp_path):
    path = tmp_path / "m.zarr"
    write(path, MOVIE, chunks=(5, 6, 8))
    chunk_file(path, 2, 0, 0).write_bytes(b"\x00" * 10)
    movie = rt.open_movie(path)
    with pytest.raises(MovieFormatError, match=r"frames 10-14 .* with frames=\(0, 10\)"):
        rt.projection(movie, "mean")
    assert rt.projection(movie, "mean", frames=(0, 10)).shape == (6, 8)


def test_sharded_array_reads_and_its_frame_chunk_is_the_inner_chunk(tmp_path):
    path = tmp_path / "sharded.zarr"
    write(path, MOVIE, chunks=(2, 6, 8), shards=(10, 6, 8))
    movie = rt.open_movie(path)
    assert movie.frame_chunk == 2
    assert_array_equal(movie[3:17], MOVIE[3:17])


# -- hostile metadata ----------------------------------------------------------------------
def test_chunks_larger_than_roitrace_reads_are_refused_before_reading(tmp_path):
    path = tmp_path / "huge.zarr"
    zarr.create_array(path, shape=(10, 64, 64), chunks=(10**6, 64, 64), dtype="uint16")
    with pytest.raises(MovieFormatError, match=r"chunks of 1000000 x 64 x 64 \(7\.6 GiB"):
        rt.open_movie(path)


def test_chunks_larger_than_memory_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.zarr"
    zarr.create_array(path, shape=(100, 64, 64), chunks=(50, 64, 64), dtype="uint16")
    monkeypatch.setattr(memory, "available_memory", lambda: 100_000)
    with pytest.raises(MovieFormatError, match=r"400\.0 KiB each\), more than the 97\.7 KiB"):
        rt.open_movie(path)


def test_shard_index_larger_than_memory_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    zarr.create_array(
        path, shape=(2, 1024, 1024), chunks=(1, 1, 1), shards=(1, 1024, 1024), dtype="uint8"
    )
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 1024**2)
    with pytest.raises(MovieFormatError, match=r"index takes 16\.0 MiB"):
        rt.open_movie(path)


def test_frames_larger_than_memory_are_refused_when_opened(tmp_path):
    path = tmp_path / "x.zarr"
    zarr.create_array(path, shape=(10, 10**6, 10**6), chunks=(1, 1000, 1000), dtype="uint16")
    with pytest.raises(MovieFormatError, match=r"claims frames of 1000000 x 1000000 uint16"):
        rt.open_movie(path)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ("{not json", "not a readable Zarr store"),
        (json.dumps({"zarr_format": 3, "node_type": "array"}), "not a readable Zarr store"),
        (
            json.dumps(
                {"zarr_format": 3, "node_type": "group", "attributes": {"multiscales": "junk"}}
            ),
            "OME-Zarr multiscales metadata is malformed",
        ),
        (
            json.dumps(
                {
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": {"ome": {"multiscales": [{"axes": [], "datasets": []}]}},
                }
            ),
            "OME-Zarr multiscales metadata is malformed",
        ),
        (
            json.dumps(
                {
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": {"multiscales": multiscales(AXES_TCZYX, [("9", [1] * 5)], "")},
                }
            ),
            "names its level '9', which is not in the store",
        ),
    ],
    ids=["not-json", "incomplete-array", "junk-multiscales", "no-datasets", "missing-level"],
)
def test_damaged_metadata_is_a_clear_error(tmp_path, metadata, message):
    path = tmp_path / "bad.zarr"
    path.mkdir()
    (path / "zarr.json").write_text(metadata)
    with pytest.raises(MovieFormatError, match=message) as err:
        rt.open_movie(path)
    assert "\n" not in str(err.value)


def test_a_file_named_zarr_or_a_folder_without_metadata_is_not_a_store(tmp_path):
    (tmp_path / "f.zarr").write_bytes(b"junk")
    with pytest.raises(MovieFormatError, match="is not a Zarr store"):
        rt.open_movie(tmp_path / "f.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(MovieFormatError, match="not a readable Zarr store"):
        rt.open_movie(tmp_path / "empty.zarr")


def test_non_numeric_arrays_are_not_movies(tmp_path):
    path = tmp_path / "s.zarr"
    zarr.create_array(path, shape=(2, 3, 4), dtype="complex64")
    with pytest.raises(MovieFormatError, match="complex64 values, not numbers"):
        rt.open_movie(path)


# -- the real recordings -------------------------------------------------------------------
# dim real cells minus 0.7 x their neuropil can dip below 0: dff warns, traces are fine
@pytest.mark.filterwarnings("ignore:.*ROIs .*F0:UserWarning")
@pytest.mark.parametrize(
    "parts",
    [("thunder-mouse", "mouse.tif"), ("sima", "example.tif")],
    ids=["thunder-mouse", "sima"],
)
def test_real_recordings_as_zarr_give_the_tiffs_traces(tmp_path, parts):
    tif = data_path(*parts)
    data = tifffile.imread(tif)
    std = rt.projection(data, "std")
    rois = rt.label(rt.threshold(std, method="percentile", q=90), min_size=4)
    _, y, x = data.shape
    chunks = (7, (y + 1) // 2, (x + 1) // 2)  # several chunks per frame, 7 frames deep
    v3 = tmp_path / "v3.zarr"
    write(v3, data, chunks=chunks, dimension_names=["t", "y", "x"])
    v2 = tmp_path / "v2.zarr"
    write(v2, np.moveaxis(data, 0, -1), chunks=chunks[1:] + chunks[:1], zarr_format=2)
    neuropil = {"gap": 1, "width": 2, "exclude_gap": 1, "min_pixels": 40}
    ref = rt.extract(tif, rois, neuropil=neuropil, chunk_frames=5)
    for path, axes in ((v3, None), (v2, "YXT")):
        movie = rt.open_movie(path, axes=axes)
        assert movie.frame_chunk == 7
        ds = rt.extract(movie, rois, neuropil=neuropil, chunk_frames=5)
        for name in ref.data_vars:
            assert_array_equal(ds[name].values, ref[name].values, err_msg=f"{path}: {name}")


# -- the command line ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sima_store(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(TIFF, the same movie as a Zarr group's array, its cells as a label image)."""
    tif = data_path("sima", "example.tif")
    folder = tmp_path_factory.mktemp("cli")
    data = tifffile.imread(tif)
    store = folder / "store.zarr"
    write(zarr.open_group(store, mode="w"), data, name="imaging", chunks=(8, 64, 128))
    labels = rt.label(rt.threshold(rt.projection(data, "std"), method="percentile", q=90))
    labels.to_label_image(folder / "labels.npy")
    return tif, store, folder / "labels.npy"


def test_cli_extract_project_and_rois_read_a_store(sima_store, tmp_path):
    tif, store, labels = sima_store
    for movie, out in ((store, "z.csv"), (tif, "t.csv")):
        res = run_roitrace("extract", movie, "--rois", labels, "-o", tmp_path / out)
        assert res.returncode == 0, res.stderr
    z, t = rt.load(tmp_path / "z.csv"), rt.load(tmp_path / "t.csv")
    assert_array_equal(z["F"].values, t["F"].values)
    res = run_roitrace("project", f"{store}:/imaging", "--kind", "mean", "-o", tmp_path / "m.tif")
    assert res.returncode == 0, res.stderr
    expected = tifffile.imread(tif).mean(axis=0)
    assert np.allclose(tifffile.imread(tmp_path / "m.tif"), expected)
    res = run_roitrace(
        "rois", store, "--dataset", "imaging", "--q", "90", "-o", tmp_path / "RoiSet.zip"
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "RoiSet.zip").is_file()


def test_cli_errors_name_the_command_line_options(sima_store, tmp_path):
    _, store, labels = sima_store
    zarr.open_group(store, mode="r+").create_array("other", shape=(4, 4, 4), dtype="uint8")
    try:
        res = run_roitrace("extract", store, "--rois", labels, "-o", tmp_path / "t.csv")
        assert res.returncode == 2
        err = res.stderr.strip()
        assert "\n" not in err and "--dataset" in err and "dataset=" not in err, err
        res = run_roitrace(
            "extract", store, "--dataset", "imaging", "--axes", "TT", "--rois", labels, "-o",
            tmp_path / "t.csv",
        )  # fmt: skip
        assert res.returncode == 2 and "--axes TT does not describe" in res.stderr
    finally:
        shutil.rmtree(store / "other")


def test_no_output_is_written_inside_the_input_store(sima_store, tmp_path):
    _, store, labels = sima_store
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    for out in ("t.csv", "imaging/t.csv", "plane/"):
        res = run_roitrace("extract", store, "--rois", labels, "-o", f"{store}/{out}")
        assert res.returncode == 2, res.stdout
        assert "a Zarr store: writing there would change the store" in res.stderr
    res = run_roitrace("project", store, "-o", store / "mean.tif")
    assert res.returncode == 2 and "inside the input movie" in res.stderr
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    with pytest.raises(OutputError, match="a Zarr store"):
        rt.save(rt.extract(store, labels), store / "imaging" / "t.nc")
