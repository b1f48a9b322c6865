"""Damaged TIFF headers: never a traceback, always a RoitraceError (issue: header fuzz).

A new user's trial flipped random header bytes of small TIFFs; one file in five
ended in a Python traceback (from tifffile, numpy or roitrace itself) instead of
roitrace's one-line error. Here a seeded generator writes small valid TIFFs of
several flavours (plain, BigTIFF, ImageJ hyperstack, deflate, tiled, several
series, big-endian), mutates bytes of their headers and page directories, and
checks that opening, projecting and reading each one either works or raises a
RoitraceError: never another exception. The trial's crash cases are rebuilt
byte for byte (the same base file, the same bytes patched) and run through the
command line too: exit code 2, one line, no traceback. (An ImageJ description
saying ``images=xx`` is now read without it, with a warning.)

Each mutant runs under a deadline: tifffile once followed a page directory that
points back at itself for ever.

The memory roitrace believes it has is capped for the whole run, so a mutated
header claiming huge frames is refused rather than allocated.
"""

from __future__ import annotations

import contextlib
import io
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import roitrace as rt
import roitrace._memory as memory
import roitrace.engine as engine
from conftest import run_roitrace
from roitrace.errors import MovieFormatError, RoitraceError

projection_module = sys.modules["roitrace.projection"]  # roitrace.projection is the function

SEED = 20240611
N_MUTANTS = 300
#: the memory roitrace is told it has while the mutants are read
FAKE_MEMORY = 64 * 1024**2


# -- the valid files ----------------------------------------------------------------------
def _data(shape: tuple[int, ...], dtype: str = "uint16") -> np.ndarray:
    return np.random.default_rng(0).integers(0, 1000, shape).astype(dtype)


def _write(data: np.ndarray, **kw) -> bytes:
    kw.setdefault("photometric", "minisblack")
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kw)
    return buf.getvalue()


def _multi_series() -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(_data((3, 16, 16)), photometric="minisblack")
        tif.write(_data((2, 16, 16)), photometric="minisblack")
        tif.write(_data((2, 8, 8), "uint8"), photometric="minisblack")
    return buf.getvalue()


def flavours() -> dict[str, bytes]:
    """Small valid TIFFs, by flavour (each a few KiB)."""
    movie = _data((6, 16, 16))
    return {
        "plain": _write(movie),
        "bigtiff": _write(movie, bigtiff=True),
        "imagej": _write(movie, imagej=True, metadata={"axes": "TYX"}),
        "hyperstack": _write(
            _data((3, 2, 2, 16, 16)), imagej=True, metadata={"axes": "TZCYX", "fps": 5.0}
        ),
        "deflate": _write(movie, compression="zlib"),
        "deflate-strips": _write(movie, compression="zlib", rowsperstrip=4),
        "tiled": _write(_data((4, 32, 32)), tile=(16, 16)),
        "tiled-deflate": _write(_data((4, 32, 32)), tile=(16, 16), compression="zlib"),
        "multi-series": _multi_series(),
        "big-endian": _write(movie.astype(">u2"), byteorder=">"),
        "float32": _write(movie.astype(np.float32)),
        "rgb": _write(_data((3, 16, 16, 3), "uint8"), photometric="rgb"),
    }


def header_positions(raw: bytes) -> np.ndarray:
    """The byte positions of a TIFF outside its pixel data: the file header, page
    directories, tag values (descriptions, strip tables)."""
    is_data = np.zeros(len(raw), bool)
    with tifffile.TiffFile(io.BytesIO(raw)) as tif:
        for page in tif.pages:
            for o, c in zip(page.dataoffsets, page.databytecounts, strict=True):
                is_data[o : o + c] = True
    return np.flatnonzero(~is_data)


#: values a mutated byte is drawn from besides any random byte: edges of types
_SPECIAL = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x20, 0x30, 0x39, 0x2D]


def mutate(raw: bytes, positions: np.ndarray, rng: np.random.Generator) -> tuple:
    """``(patched bytes, [(position, value), ...])``: 1 to 4 bytes changed, mostly in
    the header (now and then in the pixel data, as a random flip would)."""
    out = bytearray(raw)
    patches = []
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.9:
            pos = int(positions[rng.integers(positions.size)])
        else:
            pos = int(rng.integers(len(raw)))
        value = int(rng.choice(_SPECIAL)) if rng.random() < 0.4 else int(rng.integers(256))
        out[pos] = value
        patches.append((pos, value))
    return bytes(out), patches


def mutants(n: int = N_MUTANTS, seed: int = SEED):
    """``n`` mutated files: ``(name, bytes, patches)``, the same ones on every run."""
    rng = np.random.default_rng(seed)
    bases = flavours()
    names = sorted(bases)
    positions = {k: header_positions(v) for k, v in bases.items()}
    for i in range(n):
        name = names[i % len(names)]
        raw, patches = mutate(bases[name], positions[name], rng)
        yield f"{i:03d}-{name}", raw, patches


# -- the trial's crash cases, rebuilt -----------------------------------------------------
def _trial_base(kind: str) -> bytes:
    """The trial's base files: 6 frames of 16 x 16 uint16 written by tifffile."""
    movie = _data((6, 16, 16))
    kw = {
        "plain": {},
        "imagej": {"imagej": True, "metadata": {"axes": "TYX"}},
        "bigtiff": {"bigtiff": True},
        "deflate": {"compression": "zlib"},
    }[kind]
    return _write(movie, **kw)


#: name: (base, [(position, new byte)], what crashed in the trial)
TRIAL_CRASHES = {
    "f127": ("plain", [(38, 82), (139, 111), (1558, 39)], "AssertionError (tifffile)"),
    "f140": ("plain", [(52, 57), (88, 81), (125, 106), (189, 108)], "ValueError: zip()"),
    "f15": ("imagej", [(87, 197), (1712, 221), (2116, 55)], "incompatible keyframe"),
    "f197": ("plain", [(58, 175), (179, 9)], "TiffFileError: corrupted IFD structure"),
    "f2": ("imagej", [(15, 11), (105, 110), (117, 52)], "KeyError: 256"),
    "f24": ("imagej", [(28, 136), (104, 39), (144, 58), (1206, 64)], "ZeroDivisionError"),
    "f27": ("imagej", [(14, 5), (151, 163), (193, 150), (2576, 51)], "TypeError (tifffile)"),
    "f285": ("deflate", [(52, 163), (166, 83)], "TypeError: str - str (tifffile)"),
    "f3": ("imagej", [(11, 213), (202, 235), (253, 119), (270, 113)], "TypeError: str < int"),
    "f449": ("bigtiff", [(163, 207)], "OverflowError (numpy.memmap)"),
    "f71": ("imagej", [(22, 27), (23, 104), (37, 128)], "ValueError: broadcast (projection)"),
}


#: the sizes of the trial's base files: another tifffile may lay them out otherwise,
#: and the patched bytes would then fall elsewhere
TRIAL_SIZES = {"plain": 4158, "imagej": 4254, "bigtiff": 4720, "deflate": 3804}


def trial_crash(name: str) -> bytes:
    kind, patches, _ = TRIAL_CRASHES[name]
    out = bytearray(_trial_base(kind))
    if len(out) != TRIAL_SIZES[kind]:
        pytest.skip(f"tifffile {tifffile.__version__} writes the trial's {kind} file otherwise")
    for pos, value in patches:
        out[pos] = value
    return bytes(out)


def imagej_description_lie(images: bytes) -> bytes:
    """The trial's ImageJ file whose description says ``images=<images>``: 10 frames
    of 64 x 64 int16 and the same number of bytes in the description as ``10``."""
    raw = _write(
        np.random.default_rng(1).integers(0, 1000, (10, 64, 64)).astype(np.int16),
        imagej=True,
        metadata={"axes": "TYX"},
    )
    i = raw.index(b"images=10") + len(b"images=")
    return raw[:i] + images + raw[i + 2 :]


def bigtiff_lying_strip(path: Path) -> Path:
    """The trial's BigTIFF whose every page claims 100000 x 100000 frames in one strip
    of 20 GB (RowsPerStrip patched too): a file of 84 KiB."""
    data = np.random.default_rng(2).integers(0, 1000, (10, 64, 64)).astype(np.uint16)
    tifffile.imwrite(path, data, bigtiff=True)
    values = {256: 100_000, 257: 100_000, 278: 100_000, 279: 20_000_000_000}
    patches = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            for tag in page.tags.values():
                if tag.code in values:
                    fmt = tif.byteorder + {3: "H", 4: "I", 16: "Q"}[int(tag.dtype)]
                    patches.append((tag.valueoffset, fmt, values[tag.code]))
    with open(path, "r+b") as f:
        for offset, fmt, value in patches:
            f.seek(offset)
            f.write(struct.pack(fmt, value))
    return path


# -- the checks ---------------------------------------------------------------------------
@pytest.fixture
def small_memory(monkeypatch):
    """roitrace believes it has FAKE_MEMORY: claims of larger frames are refused."""
    monkeypatch.setattr(memory, "available_memory", lambda: FAKE_MEMORY)  # the readers
    monkeypatch.setattr(engine, "available_memory", lambda: FAKE_MEMORY)
    monkeypatch.setattr(projection_module, "available_memory", lambda: FAKE_MEMORY)


def exercise(path: Path) -> str:
    """Open, project and read ``path``: 'ok', or the RoitraceError's message (one
    line, naming the file). Any other exception propagates: the caller fails."""
    try:
        with rt.open_movie(path, truncated="keep") as movie:
            rt.projection(movie, "mean")
            movie[:]
        with rt.open_movie(path) as movie:
            movie[:]
    except RoitraceError as exc:
        msg = str(exc)
        assert "\n" not in msg.strip(), msg
        assert str(path) in msg or path.name in msg, msg
        return msg
    return "ok"


class _TooSlow(BaseException):
    """Not an Exception: roitrace's handlers of what tifffile raises must not take it
    for a damaged file (as they must not take Ctrl-C)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise _TooSlow in the main thread after ``seconds``: a damaged file must not
    make the reader loop for ever (tifffile once followed a directory loop)."""

    def expire(signum, frame):
        raise _TooSlow(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.filterwarnings("ignore")
def test_mutated_headers_work_or_raise_a_roitrace_error(tmp_path, small_memory):
    outcomes = {"ok": 0, "error": 0}
    crashes = []
    for name, raw, patches in mutants():
        path = tmp_path / f"{name}.tif"
        path.write_bytes(raw)
        try:
            with deadline(20):
                result = exercise(path)
        except (Exception, _TooSlow) as exc:  # the failures this test is about: all
            crashes.append(f"{name} {patches}: {type(exc).__name__}: {exc}"[:300])
            continue
        outcomes["ok" if result == "ok" else "error"] += 1
    assert not crashes, f"{len(crashes)} of {N_MUTANTS} mutants crashed:\n" + "\n".join(crashes)
    # the mutations are not all harmless nor all fatal: both paths are exercised
    assert outcomes["ok"] > 10 and outcomes["error"] > 10, outcomes


def test_the_mutants_are_the_same_on_every_run():
    first = [(n, p) for n, _, p in mutants(20)]
    assert first == [(n, p) for n, _, p in mutants(20)]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(TRIAL_CRASHES))
def test_trial_crash_cases_raise_a_movie_format_error(tmp_path, small_memory, name):
    path = tmp_path / f"{name}.tif"
    path.write_bytes(trial_crash(name))
    with pytest.raises(MovieFormatError) as info:
        with rt.open_movie(path) as movie:
            rt.projection(movie, "mean")
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    assert "damaged" in msg or "truncated" in msg, msg


def test_a_page_without_pixels_is_said_so(tmp_path):
    path = tmp_path / "f24.tif"
    path.write_bytes(trial_crash("f24"))  # ImageLength patched to 0: the projection crashed
    with pytest.raises(MovieFormatError, match=r"pages of shape \(0, 16\).*without pixels"):
        rt.open_movie(path)


def test_a_loop_in_the_page_directories_is_refused_not_followed(tmp_path):
    """A directory whose next-directory offset points back at itself: tifffile, listing
    the pages of a file without a shape description one at a time, followed it for
    ever (up to 2**32 pages, in time and memory)."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:  # pages of two shapes: tifffile lists them all
        for shape in [(16, 16)] * 3 + [(8, 8)] * 3:
            tif.write(np.zeros(shape, np.uint16), photometric="minisblack", metadata=None)
    raw = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(raw))) as tif:
        last = tif.pages[-1]
        n_tags = len(last.tags)
        next_at = last.offset + 2 + 12 * n_tags
    raw[next_at : next_at + 4] = last.offset.to_bytes(4, "little")
    path = tmp_path / "loop.tif"
    path.write_bytes(bytes(raw))
    with pytest.raises(MovieFormatError, match=r"page 5 points back to that of page 5"):
        with deadline(30):
            rt.open_movie(path)


def test_imagej_description_with_images_xx_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "ij.tif"
    path.write_bytes(imagej_description_lie(b"xx"))
    with pytest.warns(UserWarning, match="ImageJ description is damaged"):
        movie = rt.open_movie(path)
    expected = tifffile.imread(path, is_imagej=False)
    assert movie.shape == (10, 64, 64)
    np.testing.assert_array_equal(movie[:], expected)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("images", [b"-1", b"1e", b"  ", b"0x", b"99"])
def test_imagej_description_with_a_bad_image_count(tmp_path, images):
    path = tmp_path / "ij.tif"
    path.write_bytes(imagej_description_lie(images))
    exercise(path)  # works, or a RoitraceError


def test_bigtiff_strip_larger_than_the_file_is_damage_not_memory(tmp_path, small_memory):
    path = bigtiff_lying_strip(tmp_path / "lie.tif")
    with pytest.raises(MovieFormatError) as info:
        rt.open_movie(path)
    msg = str(info.value)
    assert "claims frames of 100000 x 100000 uint16 (18.6 GiB each)" in msg, msg
    assert "damaged" in msg and "beyond the end of the file" in msg, msg
    assert "more memory" not in msg, msg
    assert str(path) in msg


#: the address space a command-line run gets (as test_hostile's): far less than the
#: frames a lying header claims, as on the trial's machine
CAP = 3 * 1024**3


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return run_roitrace(*args, cap=CAP, timeout=120)


def _crash_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.tif"
    if name == "ij_xx":
        path.write_bytes(imagej_description_lie(b"xx"))
    elif name == "big_sbc":
        bigtiff_lying_strip(path)
    else:
        path.write_bytes(trial_crash(name))
    return path


@pytest.mark.parametrize("name", ["f24", "f449", "f71", "f2", "f127", "big_sbc"])
def test_trial_crash_cases_on_the_command_line(tmp_path, name):
    path = _crash_file(tmp_path, name)
    out = tmp_path / "p.npy"
    proc = run_cli("project", str(path), "-o", str(out))
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert len(err.splitlines()) == 1, err
    assert err.startswith("roitrace: error:") and path.name in err, err
    assert "more memory" not in err, err
    assert not out.exists()


def test_imagej_description_with_images_xx_on_the_command_line(tmp_path):
    path = _crash_file(tmp_path, "ij_xx")
    out = tmp_path / "p.npy"
    proc = run_cli("project", str(path), "-o", str(out))
    err = proc.stderr.strip()
    assert proc.returncode == 0, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert "ImageJ description is damaged" in err, err
    assert out.exists()
