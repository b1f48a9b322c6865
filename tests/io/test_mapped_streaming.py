"""The engine streams memory-mapped movies (``.npy``, uncompressed TIFF) as views of
the map, with no copy, and gives the pages back after each chunk; everything else
is read as before. The values are the same either way, and a user's own map is
never changed or dropped."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace.aggregate import GroupAggregator
from roitrace.engine import stream
from roitrace.io import _movie

RING = {"gap": 1, "width": 2}


@pytest.fixture
def data():
    return np.random.default_rng(0).integers(0, 4000, (90, 24, 30)).astype(np.uint16)


@pytest.fixture
def labels():
    lab = np.zeros((24, 30), int)
    lab[3:8, 3:9] = 1
    lab[12:20, 15:22] = 2
    return lab


def _rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile"))


@pytest.mark.parametrize("kind", ["npy", "tiff"])
def test_a_mapped_movie_streams_as_read_only_views_with_the_same_traces(
    tmp_path, data, labels, kind
):
    path = tmp_path / f"m.{'npy' if kind == 'npy' else 'tif'}"
    if kind == "npy":
        np.save(path, data)
    else:
        tifffile.imwrite(path, data, photometric="minisblack")
    movie = rt.open_movie(path)
    view = movie.stream_range(5, 17)
    assert not view.flags.owndata and not view.flags.writeable  # no copy
    assert_array_equal(view, data[5:17])
    movie.release(view)
    assert_array_equal(view, data[5:17])  # pages given back, values still there
    assert id(view) not in _movie._MAPPED
    want = rt.extract(data, labels, neuropil=RING, chunk_frames=13)
    got = rt.extract(path, labels, neuropil=RING, chunk_frames=13)
    for name in ("F", "Fneu", "dff"):
        assert_array_equal(got[name].values, want[name].values)
    assert not _movie._MAPPED  # every block given back


@pytest.mark.parametrize("mode", ["r+", "c"])
def test_a_writable_or_copy_on_write_map_is_read_not_viewed(tmp_path, data, labels, mode):
    """A user's writable map may hold changes not on disk (copy-on-write): giving
    its pages back would lose them, so its frames are read (copied) as before."""
    path = tmp_path / "m.npy"
    np.save(path, data)
    mm = np.load(path, mmap_mode=mode)
    mm[7] += 1  # a change in memory only (mode "c"), or written through ("r+")
    changed = np.array(mm)
    block = rt.as_movie(mm).stream_range(0, 20)
    assert block.flags.writeable and id(block) not in _movie._MAPPED  # a copy
    assert_array_equal(block, changed[:20])
    direct = _movie.ArrayMovie(mm)  # the map itself, not a view of it
    assert_array_equal(direct.read(0, 20), changed[:20])  # memory, not the file
    got = rt.extract(mm, labels, chunk_frames=13)
    assert_array_equal(got["F"].values, rt.extract(changed, labels)["F"].values)
    assert_array_equal(mm, changed)  # the change is still there


def test_streaming_a_mapped_file_keeps_its_pages_out_of_resident_memory(tmp_path, labels):
    """Pages touched through a map count in resident memory until they are given
    back: 120 MB streamed in 8 MB chunks leave far less than 120 MB resident."""
    frames = np.random.default_rng(1).integers(0, 4000, (24, 24, 30)).astype(np.uint16)
    path = tmp_path / "long.npy"
    n = 120 * 2**20 // frames[0].nbytes
    mm = np.lib.format.open_memmap(path, "w+", np.uint16, (n, 24, 30))
    for t in range(0, n, 24):
        mm[t : t + 24] = frames[: n - t]
    mm.flush()
    del mm
    before = _rss_file_kb()
    movie = rt.open_movie(path)
    (agg,) = stream(
        movie,
        [GroupAggregator([np.arange(30)], ["mean"], n)],
        chunk_frames=8 * 2**20 // frames[0].nbytes,
    )
    grown_mb = (_rss_file_kb() - before) / 1024
    assert grown_mb < 40, f"{grown_mb:.0f} MB of the file stayed resident"
    assert_array_equal(agg[0, :24], frames[:, 0].mean(axis=1))
