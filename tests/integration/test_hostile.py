"""Hostile files: bounded memory, one line, no traceback (issue 9).

Files whose headers lie (a TIFF claiming 100000 x 100000 frames, an HDF5 dataset
declaring 10^7 frames of 10^4 x 10^4), a corrupt compressed TIFF page, zip bombs
and junk in a RoiSet.zip. Each must fail early, as a RoitraceError that names
the file (and the frame or entry), without allocating what the header claims; on
the command line as one line and exit code 2.

The command-line runs are real processes under an address-space limit
(``ulimit -v``): an allocation of what the header claims fails there at once,
instead of swapping the machine.
"""

from __future__ import annotations

import logging
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import roifile
import tifffile
from numpy.testing import assert_array_equal

import roitrace as rt
import roitrace._memory as memory
import roitrace.engine as engine
from conftest import run_roitrace
from roitrace.errors import MovieError, MovieFormatError, ParameterError, RoiFormatError
from roitrace.io.imagej import _MAX_ENTRIES, _MAX_ROI_BYTES, _read_entries, read_imagej

projection_module = sys.modules["roitrace.projection"]  # roitrace.projection is the function

#: The address space a command-line run gets: enough for Python, numpy and numba
#: (a normal run passes, see test_the_memory_cap_lets_a_normal_run_pass), far less
#: than the frames the hostile headers claim.
CAP = 3 * 1024**3
MiB = 1024**2


def run_capped(*args: str, cap: int = CAP) -> subprocess.CompletedProcess:
    return run_roitrace(*args, cap=cap)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single line of a clean failure (exit 2, no traceback)."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert len(err.splitlines()) == 1, err
    assert err.startswith("roitrace: error:"), err
    return err


# -- TIFF headers that lie ---------------------------------------------------------------
def lying_tiff(path, compression=None, *, one_strip=False, width=100_000, height=100_000):
    """A small valid TIFF (10 frames of 16 x 16) whose every page then claims frames
    of ``height`` x ``width``: ImageWidth and ImageLength (and, with ``one_strip``,
    RowsPerStrip, so the strip count fits the claim) patched in place."""
    data = (np.arange(10 * 16 * 16) % 500).astype(np.uint16).reshape(10, 16, 16)
    kw = {"rowsperstrip": 16} if one_strip else {}
    tifffile.imwrite(path, data, compression=compression, **kw)
    values = {256: width, 257: height, 278: height if one_strip else None}
    patches = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            for tag in page.tags.values():
                if values.get(tag.code) is not None:
                    fmt = tif.byteorder + {3: "H", 4: "I"}[int(tag.dtype)]
                    patches.append((tag.valueoffset, fmt, values[tag.code]))
    with open(path, "r+b") as f:
        for offset, fmt, value in patches:
            f.seek(offset)
            f.write(struct.pack(fmt, min(value, 65535) if fmt.endswith("H") else value))
    return path


@pytest.mark.parametrize("one_strip", [False, True], ids=["strips", "one-strip"])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_lying_tiff_header_is_refused_when_opened(tmp_path, compression, one_strip):
    path = lying_tiff(tmp_path / "lie.tif", compression, one_strip=one_strip)
    with pytest.raises(MovieFormatError) as info:
        rt.open_movie(path)
    msg = str(info.value)
    assert "claims frames of 100000 x 100000 uint16 (18.6 GiB each)" in msg, msg
    assert re.search(r"the file holds \d+\.\d KiB", msg), msg
    assert str(path) in msg


@pytest.mark.parametrize("command", ["project", "extract"])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_lying_tiff_header_on_the_command_line(tmp_path, command, compression):
    path = lying_tiff(tmp_path / "lie.tif", compression)
    extra = ["--auto"] if command == "extract" else []
    out = tmp_path / ("p.tif" if command == "project" else "t.csv")
    err = one_line_error(run_capped(command, str(path), "-o", str(out), *extra))
    assert "claims frames of 100000 x 100000 uint16" in err
    # tifffile's own complaints ("incorrect StripByteCounts count") stay out of it
    assert "StripByteCounts" not in err
    assert not out.exists()


def test_the_memory_cap_lets_a_normal_run_pass(tmp_path):
    path = tmp_path / "fine.tif"
    rng = np.random.default_rng(0)
    data = rng.integers(100, 110, (50, 48, 48)).astype(np.uint16)
    data[:, 20:26, 20:26] += rng.integers(0, 900, (50, 1, 1)).astype(np.uint16)  # a cell
    tifffile.imwrite(path, data, compression="zlib")
    proc = run_capped("extract", str(path), "-o", str(tmp_path / "t.csv"), "--auto")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_tiff_frames_larger_than_memory_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, np.zeros((5, 64, 64), np.uint16))
    monkeypatch.setattr(memory, "available_memory", lambda: 4000)  # what readers ask
    with pytest.raises(
        MovieFormatError, match=r"frames of 64 x 64 uint16 \(8\.0 KiB each\), more"
    ):
        rt.open_movie(path)


def damaged_page_tiff(path, page=5):
    """A deflate TIFF whose page ``page`` lists a 1-byte strip: its directory is
    damaged (found when the file is opened, without decoding anything)."""
    data = np.random.default_rng(2).integers(0, 4000, (10, 64, 64)).astype(np.uint16)
    tifffile.imwrite(path, data, compression="zlib", rowsperstrip=64)
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[page].tags[279]  # StripByteCounts
        fmt = tif.byteorder + {3: "H", 4: "I"}[int(tag.dtype)]
        offset = tag.valueoffset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, 1))
    return path, data


def test_damaged_page_directory_is_found_when_opened_and_keep_uses_the_frames_before(tmp_path):
    path, data = damaged_page_tiff(tmp_path / "d.tif")
    with pytest.raises(MovieFormatError, match=r"damaged at frame 5 .*only frames 0 to 4 of 10"):
        rt.open_movie(path)
    with pytest.warns(UserWarning, match="damaged at frame 5.*using its 5 complete frames"):
        movie = rt.open_movie(path, truncated="keep")
    assert_array_equal(np.asarray(movie), data[:5])


# -- a corrupt compressed page -------------------------------------------------------------
def corrupt_deflate_tiff(path, bad=37, n=60):
    """A deflate TIFF of ``n`` frames whose page ``bad`` holds garbage in its strip."""
    data = np.random.default_rng(1).integers(0, 1000, (n, 32, 32)).astype(np.uint16)
    tifffile.imwrite(path, data, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[bad].dataoffsets[0]
    with open(path, "r+b") as f:
        f.seek(offset + 2)
        f.write(b"\xff" * 40)
    return path, data


def test_corrupt_page_names_the_frame_and_the_frames_before_it(tmp_path):
    path, data = corrupt_deflate_tiff(tmp_path / "c.tif")
    movie = rt.open_movie(path)  # lazy: nothing decoded yet
    assert movie.shape == (60, 32, 32)
    with pytest.raises(MovieFormatError) as info:
        movie[30:40]  # several pages: decoded in tifffile's threads
    msg = str(info.value)
    assert msg.startswith(f"frame 37 of {path} could not be decoded (deflate: "), msg
    assert "frames=(0, 37)" in msg and "\n" not in msg
    assert isinstance(info.value.__cause__, Exception)
    with pytest.raises(MovieFormatError, match="frame 37 of"):
        movie[37]  # one page alone
    assert_array_equal(movie[:37], data[:37])
    assert_array_equal(movie[38:], data[38:])  # the damage is that page's only


def test_corrupt_page_through_the_engine_reader_thread(tmp_path):
    path, data = corrupt_deflate_tiff(tmp_path / "c.tif")
    with pytest.raises(MovieFormatError, match=r"frame 37 of .*frames=\(0, 37\)"):
        rt.projection(path, "mean", chunk_frames=8)
    mean = rt.projection(path, "mean", frames=(0, 37))
    np.testing.assert_allclose(mean, data[:37].mean(axis=0))


def test_corrupt_first_page(tmp_path):
    path, _ = corrupt_deflate_tiff(tmp_path / "c.tif", bad=0)
    with pytest.raises(MovieFormatError, match=r"frame 0 of .*damaged from its first frame"):
        rt.open_movie(path)[0:5]


def test_corrupt_page_in_a_later_series_counts_the_movies_frames(tmp_path):
    path = tmp_path / "two.tif"
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 1000, (6, 16, 16)).astype(np.uint16) for _ in range(2))
    with tifffile.TiffWriter(path) as w:
        w.write(a, compression="zlib")
        w.write(b, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.series[1].pages[3].dataoffsets[0]
    with open(path, "r+b") as f:
        f.seek(offset + 2)
        f.write(b"\xff" * 40)
    with pytest.warns(UserWarning, match="2 series were joined"):
        movie = rt.open_movie(path)
    with pytest.raises(MovieFormatError, match=r"frame 9 of .*frames=\(0, 9\)"):
        movie[:]


@pytest.mark.parametrize("command", ["project", "extract"])
def test_corrupt_page_on_the_command_line(tmp_path, command):
    path, _ = corrupt_deflate_tiff(tmp_path / "c.tif")
    extra = ["--auto"] if command == "extract" else []
    out = tmp_path / ("p.tif" if command == "project" else "t.csv")
    err = one_line_error(run_capped(command, str(path), "-o", str(out), *extra))
    assert "frame 37 of" in err and "could not be decoded (deflate: " in err
    assert re.search(r"frames[ =]\(?0[:,] ?37", err), err  # --frames 0:37
    assert "zlib.error" not in err


# -- HDF5 datasets that declare more than they hold ---------------------------------------
def empty_dataset(path, shape, chunks, **kw):
    with h5py.File(path, "w") as f:
        f.create_dataset("d", shape=shape, dtype="uint16", chunks=chunks, **kw)
    return path


def test_huge_declared_hdf5_on_the_command_line_is_a_clear_error(tmp_path):
    """The issue's file: 10^7 frames of 10^4 x 10^4, a few kB on disk. A std
    projection of 3 frames keeps float64 per-pixel sums of 763 MiB each (not the
    frames), more than the capped process has: refused before it is allocated."""
    path = empty_dataset(tmp_path / "x.h5", (10**7, 10**4, 10**4), (1, 256, 256))
    out = tmp_path / "p.tif"
    args = ("project", str(path), "--dataset", "d", "--frames", "0:3", "-o", str(out))
    err = one_line_error(run_capped(*args))
    assert "std projection of 10000 x 10000 frames needs about" in err, err
    assert not out.exists()


def test_hdf5_frames_larger_than_memory_are_refused_when_opened(tmp_path):
    path = empty_dataset(tmp_path / "x.h5", (10, 10**6, 10**6), (1, 1000, 1000))
    with pytest.raises(MovieFormatError, match=r"'/d' claims frames of 1000000 x 1000000 uint16"):
        rt.open_movie(path, dataset="d")


def test_hdf5_compressed_chunks_larger_than_memory_are_refused(tmp_path, monkeypatch):
    path = empty_dataset(tmp_path / "x.h5", (100, 64, 64), (50, 64, 64), compression="gzip")
    monkeypatch.setattr(memory, "available_memory", lambda: 100_000)
    with pytest.raises(MovieFormatError, match=r"compressed chunks of 50 x 64 x 64 \(400\.0 KiB"):
        rt.open_movie(path, dataset="d")


def test_hdf5_memory_follows_the_frames_asked_for(tmp_path):
    path = empty_dataset(tmp_path / "x.h5", (10**7, 512, 512), (1, 256, 256))
    movie = rt.open_movie(path, dataset="d")
    frame = movie.frame_nbytes
    tracemalloc.start()
    try:
        block = movie[0:3]
        read_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        image = rt.projection(movie, "max", frames=(0, 3))
        max_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert block.shape == (3, 512, 512) and image.shape == (512, 512)
    assert read_peak < 3.3 * frame  # the frames read, without a second copy
    assert max_peak < 12 * frame  # whatever the 10^7 frames declared


# -- projections whose per-pixel sums cannot fit --------------------------------------------
def small_memory(monkeypatch, nbytes):
    monkeypatch.setattr(engine, "available_memory", lambda: nbytes)
    monkeypatch.setattr(projection_module, "available_memory", lambda: nbytes)


def test_projection_larger_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros((4, 256, 256), np.uint16))
    movie = rt.open_movie(path)
    small_memory(monkeypatch, 2 * MiB)  # a frame (128 KiB) fits, 6 float64 images do not
    with pytest.raises(MovieError, match=r"std projection of 256 x 256 frames needs about 3\.2"):
        rt.projection(movie, "std")
    with pytest.raises(MovieError, match="correlation projection"):
        rt.projection(movie, "correlation")
    assert rt.projection(movie, "max").shape == (256, 256)


def test_median_over_more_frames_than_memory_holds_says_how_many_fit(tmp_path, monkeypatch):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros((2000, 64, 64), np.uint16))
    movie = rt.open_movie(path)
    small_memory(monkeypatch, 200_000)
    with pytest.raises(MovieError, match=r"median over 2000 frames .* frames=\(0, \d+\)"):
        rt.projection(movie, "median")


def test_chunks_larger_than_memory_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros((100, 64, 64), np.uint16))
    movie = rt.open_movie(path)
    small_memory(monkeypatch, 100_000)
    with pytest.raises(ParameterError, match="chunk_frames=50: chunks of 50 frames"):
        next(engine.iter_chunks(movie, chunk_frames=50))
    assert next(engine.iter_chunks(movie, chunk_frames=2))[1].shape == (2, 64, 64)


@pytest.mark.parametrize("kind, most", [("std", 6.6), ("correlation", 15)])
def test_projection_temporaries_stay_few(kind, most):
    """Each float64 temporary is an image of the frame's size (763 MiB for 10^8
    pixels): std once took 7.4 such images, the correlation image 21."""
    data = np.random.default_rng(0).integers(0, 100, (3, 500, 500)).astype(np.uint16)
    image = 500 * 500 * 8
    expected = rt.projection(data, kind)  # compiles the kernels outside the count
    tracemalloc.start()
    try:
        got = rt.projection(data, kind)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_array_equal(got, expected)
    assert peak < most * image, peak / image


# -- ImageJ ROI sets: zip bombs and junk ---------------------------------------------------
def roi_bytes(name="cell"):
    return roifile.ImagejRoi.frompoints([[1, 1], [5, 1], [5, 5], [1, 5]], name=name).tobytes()


def zip_bomb(path, mib=256, *, after_roi=False):
    """A zip holding a valid ROI and an entry of ``mib`` MiB of zeros (about 1 MiB
    on disk), written in chunks so that building it stays small; with ``after_roi``
    the zeros follow a valid ROI inside the same entry."""
    chunk = bytes(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("cell.roi", roi_bytes())
        with zf.open("big.roi", "w") as fh:
            if after_roi:
                fh.write(roi_bytes("big"))
            for _ in range(mib):
                fh.write(chunk)
    return path


def patch_declared_size(path, entry, size):
    """Make the zip's central directory declare ``size`` bytes for ``entry``."""
    raw = bytearray(path.read_bytes())
    name = entry.encode()
    at = raw.find(b"PK\x01\x02")  # a central directory record
    while at >= 0 and raw[at + 46 : at + 46 + len(name)] != name:
        at = raw.find(b"PK\x01\x02", at + 4)
    assert at >= 0
    raw[at + 24 : at + 28] = struct.pack("<I", size)  # uncompressed size
    path.write_bytes(bytes(raw))


def test_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = zip_bomb(tmp_path / "RoiSet.zip")
    assert path.stat().st_size < 4 * MiB
    with pytest.raises(RoiFormatError, match=r"entry 'big\.roi'\) holds 256\.0 MiB, more than"):
        read_imagej(path, shape=(10, 10))


def test_zip_bomb_peak_memory_stays_bounded(tmp_path):
    """In a process of its own, so that its peak resident memory is its own: the
    bomb used to be unpacked whole (600 MiB of zeros took 1.4 GiB). The peak is
    read from /proc (VmHWM, the new process's own high-water mark): getrusage's
    ru_maxrss starts from the parent's peak in a forked child."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (Linux)")
    path = zip_bomb(tmp_path / "RoiSet.zip")
    code = (
        "import re, sys\n"
        "from roitrace.io.imagej import read_imagej\n"
        "from roitrace.errors import RoiFormatError\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
        "before = peak()\n"
        "try:\n"
        "    read_imagej(sys.argv[1], shape=(10, 10))\n"
        "except RoiFormatError:\n"
        "    pass\n"
        "print(peak() - before)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    grown_kib = int(proc.stdout.split()[-1])
    assert grown_kib < 64 * 1024, grown_kib


def test_entry_declaring_a_small_size_is_read_no_further(tmp_path):
    path = zip_bomb(tmp_path / "RoiSet.zip")
    patch_declared_size(path, "big.roi", 1000)
    tracemalloc.start()
    try:
        with pytest.raises(RoiFormatError, match=r"entry 'big\.roi'\) cannot be unpacked"):
            read_imagej(path, shape=(10, 10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB  # some pieces of 1 MiB, not the 256 MiB


def test_entry_declaring_a_huge_size_is_refused_unread(tmp_path):
    path = tmp_path / "RoiSet.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cell.roi", roi_bytes())
    patch_declared_size(path, "cell.roi", 2**31)
    with pytest.raises(RoiFormatError, match=r"entry 'cell\.roi'\) holds 2\.0 GiB"):
        read_imagej(path, shape=(10, 10))


def test_valid_roi_followed_by_junk(tmp_path):
    small = tmp_path / "small.zip"  # a little junk after a ROI is ignored, as ImageJ does
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("cell.roi", roi_bytes() + bytes(1000))
    assert read_imagej(small, shape=(10, 10)).names == ["cell"]
    big = zip_bomb(tmp_path / "big.zip", mib=_MAX_ROI_BYTES // MiB + 1, after_roi=True)
    with pytest.raises(RoiFormatError, match=r"entry 'big\.roi'\) holds 17\.0 MiB"):
        read_imagej(big, shape=(10, 10))


def test_roi_file_too_large_is_refused_before_reading(tmp_path):
    path = tmp_path / "cell.roi"
    with open(path, "wb") as f:
        f.write(roi_bytes())
        f.truncate(_MAX_ROI_BYTES + 1)  # sparse: no disk, no time
    tracemalloc.start()
    try:
        with pytest.raises(RoiFormatError, match=r"cell\.roi holds 16\.0 MiB, more than any"):
            read_imagej(path, shape=(10, 10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MiB


def test_too_many_entries_are_refused_before_zipfile_parses_them(tmp_path, monkeypatch):
    import roitrace.io.imagej as imagej

    path = tmp_path / "RoiSet.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(11):
            zf.writestr(f"{i}.roi", roi_bytes(str(i)))
    monkeypatch.setattr(imagej, "_MAX_ENTRIES", 10)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # refused before zipfile is asked
    with pytest.raises(RoiFormatError, match="lists 11 entries"):
        read_imagej(path, shape=(10, 10))


def test_a_hundred_thousand_rois_pass_the_limits(tmp_path):
    assert _MAX_ENTRIES >= 100_000
    path = tmp_path / "RoiSet.zip"
    data = roi_bytes()
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(100_000):
            zf.writestr(f"cell-{i:06d}.roi", data)
    entry, first = next(_read_entries(path))  # every limit is checked before the first
    assert entry == "cell-000000.roi" and first == data


# -- roifile's own warnings ----------------------------------------------------------------
def test_roifile_log_does_not_reach_the_user(tmp_path, caplog):
    roi = roifile.ImagejRoi.frompoints([[1, 1], [5, 1], [5, 5]], name="empty")
    roi.roitype = roifile.ROI_TYPE.NOROI  # roifile logs "cannot handle ImagejRoi type"
    path = tmp_path / "empty.roi"
    roi.tofile(path)
    with caplog.at_level(logging.INFO):
        with pytest.raises(ParameterError, match="'empty' is an empty selection"):
            read_imagej(path, shape=(10, 10))
    assert not [r for r in caplog.records if r.name == "roifile"], caplog.records


def test_unknown_roi_type_in_roitraces_words(tmp_path, caplog):
    data = bytearray(roi_bytes())
    data[6] = 12  # the type byte: no kind of ImageJ's
    path = tmp_path / "odd.roi"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO):
        with pytest.raises(RoiFormatError, match="type 12 is none of the kinds ImageJ writes"):
            read_imagej(path, shape=(10, 10))
    assert not [r for r in caplog.records if r.name == "roifile"]


def test_roi_name_beyond_its_data_is_said_in_roitraces_words(tmp_path):
    data = roi_bytes("a long name for a cell")
    path = tmp_path / "cut.roi"
    path.write_bytes(data[:-10])  # the name is stored last: cut into it
    with pytest.warns(UserWarning, match="name lies beyond the end of its data"):
        rois = read_imagej(path, shape=(10, 10))
    assert rois.names == ["cut"]


def test_noroi_on_the_command_line_is_one_line(tmp_path):
    roi = roifile.ImagejRoi.frompoints([[1, 1], [5, 1], [5, 5]], name="empty")
    roi.roitype = roifile.ROI_TYPE.NOROI
    rois = tmp_path / "RoiSet.zip"
    roi.tofile(rois, name="x.roi")
    movie = tmp_path / "m.npy"
    np.save(movie, np.zeros((5, 10, 10), np.uint16))
    proc = run_capped("extract", str(movie), "--rois", str(rois), "-o", str(tmp_path / "t.csv"))
    err = one_line_error(proc)
    assert "entry 'x.roi'" in err and "empty selection" in err
    assert "cannot handle" not in err
