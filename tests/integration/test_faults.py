"""Faults and bad input: an interrupted run (an error, Ctrl-C, a killed process) never
leaves an output file under its final name; a disk that fills while writing gives an
error naming the file, and no half file.

Three ways of filling the disk are used:

- a simulated disk with a few bytes free: Python-level ``open`` (and h5py's dataset
  writes) is patched so that the write crossing the limit writes what fits and then
  raises ``OSError(ENOSPC)`` (or ``KeyboardInterrupt``): runs everywhere;
- the process's file-size limit (``RLIMIT_FSIZE``): real ``EFBIG`` errors and short
  writes from the kernel, for any user on POSIX;
- a real 64 KiB tmpfs, where ``mount`` is allowed (root): real ``ENOSPC``.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import roitrace as rt
from roitrace._atomic import atomic_path, is_temporary
from roitrace.cli import app
from roitrace.save import write_image

KINDS = ["csv", "nc", "h5", "nwb", "suite2p", "tif", "imagej"]
HDF5 = {"nc", "h5", "nwb"}
# The file each kind writes; for suite2p, the one being written when the disk fills.
FINAL = {
    "csv": "traces.csv",
    "nc": "traces.nc",
    "h5": "traces.h5",
    "nwb": "traces.nwb",
    "suite2p": "plane0/Fneu.npy",
    "tif": "std.tif",
    "imagej": "RoiSet.zip",
}
N_ROI, N_T = 5, 200
F_NPY = 128 + N_ROI * N_T * 4  # bytes of plane0/F.npy (float32 + the .npy header)
# Bytes left on the simulated disk: the disk fills in the middle of the file (for
# suite2p: F.npy fits, Fneu.npy does not, and F.npy must not be left alone).
ROOM = {"csv": 2000, "suite2p": F_NPY + 1000, "tif": 4000, "imagej": 300}
ROOM.update(dict.fromkeys(HDF5, 3000))  # HDF5 files are built in memory, then written
HDF5_FAIL_AT = 6  # the h5py dataset write that fails, out of some 40 (nc) or 80 (nwb)
ROITRACE = [sys.executable, "-m", "roitrace"]
# Subprocesses skip numba (importing and loading the kernels takes seconds): these
# tests are about writing files.
ENV = {**os.environ, "ROITRACE_NUMBA": "0"}


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def result():
    sim = rt.simulate(n_frames=N_T, shape=(48, 48), n_cells=N_ROI, seed=0)
    movie = rt.as_movie(sim.movie, frame_rate=sim.frame_rate)
    ds = rt.extract(movie, sim.labels, neuropil={"gap": 1, "width": 2})
    assert ds.sizes["roi"] == N_ROI
    return ds, sim


def write(kind: str, result, folder: Path) -> Path:
    ds, sim = result
    if kind in ("csv", "nc", "h5", "nwb"):
        if kind == "nwb":
            pytest.importorskip("pynwb")
        return rt.save(ds, folder / FINAL[kind])
    if kind == "suite2p":
        return rt.save(ds, folder / "plane0")
    if kind == "tif":
        return write_image(sim.movie.std(axis=0), folder / FINAL[kind], metadata={"kind": "std"})
    return rt.RoiSet.from_labels(sim.labels).to_imagej(folder / FINAL[kind])


class _Disk:
    """Bytes left on the simulated disk, shared by the files written on it."""

    def __init__(self, folder: Path, room: int, error: Callable[[], BaseException]):
        self.folder, self.room, self.error = folder.resolve(), room, error


class _FillingFile:
    """A file opened for writing on a :class:`_Disk`: the write that does not fit
    writes what fits, then raises ``disk.error()``."""

    def __init__(self, f, disk: _Disk):
        self._f, self._disk = f, disk

    def write(self, data):
        size = len(data) if isinstance(data, str) else memoryview(data).nbytes
        if size > self._disk.room:
            fit = self._disk.room
            self._disk.room = 0
            if fit:
                self._f.write(data[:fit] if isinstance(data, str) else bytes(data)[:fit])
            raise self._disk.error()
        self._disk.room -= size
        return self._f.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def fileno(self):  # numpy's tofile would write through the descriptor, around write()
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __iter__(self):
        return iter(self._f)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._f.close()


def fill_disk(monkeypatch, folder: Path, room: int, error=disk_full) -> None:
    """Leave ``room`` bytes for the files written under ``folder`` with Python's open."""
    disk = _Disk(folder, room, error)
    real_open = io.open

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        writing = set(mode) & set("wax+")
        if writing and isinstance(file, (str, os.PathLike)):
            if Path(file).resolve().is_relative_to(disk.folder):
                return _FillingFile(f, disk)
        return f

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)  # zipfile and pathlib call io.open


def fail_hdf5(monkeypatch, error=disk_full, at: int = HDF5_FAIL_AT) -> None:
    """Make the ``at``-th h5py dataset write raise ``error()``, half-way through a file."""
    import h5py

    real = h5py.Dataset.__setitem__
    calls = []

    def setitem(self, key, value):
        calls.append(key)
        if len(calls) == at:
            raise error()
        return real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)


def break_writes(kind: str, monkeypatch, folder: Path, error=disk_full) -> None:
    fill_disk(monkeypatch, folder, ROOM[kind], error)


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temporary(p) or "roitrace-tmp" in p.name]


def check_complete(path: Path) -> None:
    """Everything under ``path`` (a file or a suite2p folder) reads back whole."""
    if path.is_dir():
        for f in path.glob("*.npy"):
            np.load(f, allow_pickle=True)
    elif path.suffix == ".tif":
        assert tifffile.imread(path).shape == (48, 48)
    elif path.suffix == ".zip":
        assert len(rt.read_rois(path, shape=(48, 48))) == N_ROI
    else:
        ds = rt.load(path)
        assert (ds.sizes["roi"], ds.sizes["time"]) == (N_ROI, N_T)


# -- a disk that fills while writing, Ctrl-C while writing -----------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_disk_full_midway_leaves_old_file_and_no_temporary(kind, result, tmp_path, monkeypatch):
    final = tmp_path / FINAL[kind]
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"old content")
    before = files(tmp_path)
    break_writes(kind, monkeypatch, tmp_path)
    with pytest.raises(rt.DiskFullError) as info:
        write(kind, result, tmp_path)
    monkeypatch.undo()

    error = info.value
    assert isinstance(error, rt.OutputError) and isinstance(error, OSError)
    assert error.errno == errno.ENOSPC
    message = str(error)
    assert "\n" not in message
    named = final.parent if kind == "suite2p" else final  # a folder is written as a whole
    assert message.startswith(f"{named}: the disk is full"), message
    assert "nothing was written" in message and "was left as it was" in message
    assert final.read_bytes() == b"old content"
    assert temporaries(tmp_path) == []
    assert files(tmp_path) == before  # suite2p: not even F.npy, which fitted


@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_midway_leaves_nothing(kind, result, tmp_path, monkeypatch):
    break_writes(kind, monkeypatch, tmp_path, error=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        write(kind, result, tmp_path)
    monkeypatch.undo()

    assert temporaries(tmp_path) == []
    assert not (tmp_path / FINAL[kind]).exists()
    assert files(tmp_path) == {}
    # and the same call, undisturbed, writes a complete file
    check_complete(write(kind, result, tmp_path))
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("kind", sorted(HDF5))
def test_interrupted_hdf5_build_leaves_old_file(kind, result, tmp_path, monkeypatch):
    """HDF5 files are built in memory: stopped half-way, nothing reaches the disk."""
    final = tmp_path / FINAL[kind]
    final.write_bytes(b"old content")
    fail_hdf5(monkeypatch, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        write(kind, result, tmp_path)
    monkeypatch.undo()
    assert files(tmp_path) == {FINAL[kind]: b"old content"}


def _hdf5_report(tmp: Path) -> RuntimeError:
    # What h5py raises when HDF5 fails to close a file on a full disk.
    return RuntimeError(
        "Disable slist on flush dest failure failed (file write failed: time = Sat Nov 21\n"
        f", filename = '{tmp}', file descriptor = 3, errno = {errno.ENOSPC}, error message "
        "= 'No space left on device', buf = 0x55, total write size = 101, offset = 166144)"
    )


@pytest.mark.parametrize("how", ["hdf5-report", "cause", "context"])
def test_full_disk_behind_another_exception(how, tmp_path):
    """HDF5 reports a full disk as a RuntimeError's text; hdmf or xarray may raise
    their own exception from (or while handling) the OSError."""
    final = tmp_path / "traces.nc"
    with pytest.raises(rt.DiskFullError, match="the disk is full") as info:
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"\x89HDF half")
            if how == "hdf5-report":
                raise _hdf5_report(tmp)
            try:
                raise OSError(errno.ENOSPC, "Can't synchronously write data")
            except OSError as exc:
                if how == "cause":
                    raise ValueError("could not write dataset 'F'") from exc
                raise ValueError("could not close the file")  # noqa: B904
    assert info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(f"{final}: the disk is full (No space left on device), ")
    assert list(tmp_path.iterdir()) == []


def test_short_write_without_errno_is_a_full_disk(tmp_path):
    """numpy's tofile (np.save, tifffile) reports a short write with no errno."""
    with pytest.raises(rt.DiskFullError, match="only 8156 of 40000 bytes"):
        with atomic_path(tmp_path / "std.tif") as tmp:
            tmp.write_bytes(b"II*\x00")
            raise OSError("40000 requested and 8156 written")
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(rt.ParameterError), atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("half")
        raise rt.ParameterError("bad option")
    with pytest.raises(ValueError, match="a bug"), atomic_path(tmp_path / "a.csv") as tmp:
        raise ValueError("a bug")
    assert list(tmp_path.iterdir()) == []


# -- the temporary file ----------------------------------------------------------------------
def test_temporary_is_hidden_recognisable_unique_and_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    final = tmp_path / "traces.nc"
    with atomic_path(final) as a, atomic_path(final) as b:  # two runs at once
        assert a != b and a.parent == b.parent == tmp_path
        for t in (a, b):
            assert t.name.startswith(".traces.nc.roitrace-tmp-") and t.suffix == ".nc"
            assert is_temporary(t) and t.exists()
        a.write_text("a")
        b.write_text("b")
    assert final.read_text() == "a"  # the last rename wins; each file is whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.nc"]
    assert len(synced) == 4  # each file, then the folder, per write
    if os.name == "posix":
        umask = os.umask(0o022)
        os.umask(umask)
        assert final.stat().st_mode & 0o777 == 0o666 & ~umask


def test_output_that_cannot_be_written(result, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(rt.OutputError, match="is a file, not a folder") as info:
        rt.save(result[0], tmp_path / "file" / "t.csv")
    assert not isinstance(info.value, rt.DiskFullError)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(rt.OutputError, match="it is a folder"):
        with atomic_path(tmp_path / "folder.csv") as tmp:
            tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.csv"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(rt.OutputError, match="Permission denied"):
            with atomic_path(folder / "t.csv") as tmp:
                tmp.write_text("x")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


# -- real errors from the kernel ---------------------------------------------------------------
@pytest.fixture
def file_size_limit():
    """Set RLIMIT_FSIZE for the test: writes beyond it fail with EFBIG, as on a full disk."""
    resource = pytest.importorskip("resource")
    if not hasattr(signal, "SIGXFSZ"):
        pytest.skip("no SIGXFSZ here")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death

    def set_limit(nbytes: int | None) -> None:
        """Limit files to ``nbytes``; None: back to the limit there was."""
        new = old_limit if nbytes is None else (nbytes, old_limit[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, new)

    yield set_limit
    set_limit(None)
    signal.signal(signal.SIGXFSZ, old_handler)


@pytest.mark.parametrize("kind", ["csv", "nc", "nwb", "suite2p", "tif", "imagej"])
def test_file_size_limit_from_the_kernel(kind, result, tmp_path, file_size_limit):
    if kind == "nwb":
        pytest.importorskip("pynwb")
    final = tmp_path / FINAL[kind]
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"old content")
    file_size_limit(ROOM[kind] if kind != "suite2p" else 2000)
    with pytest.raises(rt.DiskFullError, match="nothing was written"):
        write(kind, result, tmp_path)
    file_size_limit(None)
    assert final.read_bytes() == b"old content"
    assert temporaries(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB tmpfs; skipped where mount is not allowed (not root, a container)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill_up(folder: Path, leave: int = 4096) -> None:
    st = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))


@pytest.mark.parametrize("kind", ["csv", "nc", "nwb", "suite2p", "tif", "imagej"])
def test_real_full_disk(kind, result, tiny_disk):
    if kind == "nwb":
        pytest.importorskip("pynwb")
    final = tiny_disk / FINAL[kind]
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"old content")
    fill_up(tiny_disk)
    with pytest.raises(rt.DiskFullError, match="the disk is full") as info:
        write(kind, result, tiny_disk)
    assert info.value.errno == errno.ENOSPC
    assert temporaries(tiny_disk) == []
    assert final.read_bytes() == b"old content"
    if kind == "suite2p":  # whatever else is there is whole
        for f in (tiny_disk / "plane0").glob("*.npy"):
            if f != final:
                np.load(f, allow_pickle=True)


def _no_core():  # a crashing child must not leave a core file
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def test_real_full_disk_hdf5_cli(result, tiny_disk, tmp_path):
    suffix = "nc"  # .h5 and .nwb go through h5py the same way
    movie = result[1].to_tiff(tmp_path / "movie.tif")
    fill_up(tiny_disk)
    out = tiny_disk / f"traces.{suffix}"
    res = subprocess.run(
        [*ROITRACE, "extract", str(movie), "--auto", "--no-progress", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=ENV,
        preexec_fn=_no_core,
        check=False,
    )
    assert not out.exists()
    assert temporaries(tiny_disk) == []
    lines = res.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("roitrace: error:")]
    assert errors == [f"roitrace: error: {out}: {errors[0].split(f'{out}: ', 1)[-1]}"], lines
    assert "the disk is full" in errors[0]
    # HDF5 files are built in memory: no crash of h5py (issue 914) on the way out
    assert (res.returncode, len(lines)) == (2, 1), res.stderr


# -- the command line ----------------------------------------------------------------------
runner = CliRunner()


@pytest.fixture(scope="module")
def movie_tif(result, tmp_path_factory):
    return result[1].to_tiff(tmp_path_factory.mktemp("movie") / "movie.tif")


@pytest.mark.parametrize("suffix", ["csv", "nc"])
def test_cli_disk_full_is_one_line_and_exit_2(suffix, movie_tif, tmp_path, monkeypatch):
    out = tmp_path / "out" / f"traces.{suffix}"
    out.parent.mkdir()
    break_writes(suffix, monkeypatch, out.parent)
    args = ["extract", str(movie_tif), "--auto", "--no-progress", "-o", str(out)]
    res = runner.invoke(app, args, catch_exceptions=False)
    monkeypatch.undo()
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"roitrace: error: {out}: the disk is full"), res.output
    assert "nothing was written" in lines[0]
    assert list(out.parent.iterdir()) == []


def test_cli_unwritable_output_is_one_line_and_exit_2(movie_tif, tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "traces.csv"
    res = runner.invoke(
        app, ["extract", str(movie_tif), "--auto", "--no-progress", "-o", str(out)]
    )
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    # found before the movie is read (tests/integration/test_data_safety.py), named by its option
    assert len(lines) == 1
    assert lines[0].startswith(f"roitrace: error: -o/--output {out}: could not write")
    assert "is a file, not a folder" in lines[0] and "Traceback" not in res.output
    assert "nothing was read or written" in lines[0]


def test_cli_ctrl_c_is_one_line(movie_tif, tmp_path, monkeypatch):
    out = tmp_path / "traces.csv"
    fill_disk(monkeypatch, tmp_path, 2000, error=KeyboardInterrupt)
    res = runner.invoke(
        app, ["extract", str(movie_tif), "--auto", "--no-progress", "-o", str(out)]
    )
    monkeypatch.undo()
    assert res.exit_code == 130
    assert res.output.splitlines() == ["roitrace: interrupted; no output was left half-written"]
    assert list(tmp_path.iterdir()) == []


# -- a killed process, Ctrl-C in a real process -----------------------------------------------
def _long_movie(path: Path, n_frames: int = 40_000) -> Path:
    """A thin movie with two bright cells and many frames: the CSV write lasts a while."""
    rng = np.random.default_rng(0)
    movie = rng.poisson(100, (n_frames, 8, 16)).astype(np.uint16)
    for x in (2, 10):
        movie[:, 2:5, x : x + 3] += (rng.random((n_frames, 1, 1)) * 2000).astype(np.uint16)
    np.save(path, movie)
    return path


def test_killed_or_interrupted_process_leaves_no_output(tmp_path):
    """SIGKILL or SIGINT (Ctrl-C) as soon as the output's temporary file appears.

    The runs go at once to save time. Should a run finish before its signal lands
    (a busy machine), its output must be complete.
    """
    movie = _long_movie(tmp_path / "movie.npy")
    runs = {"kill-nc": (signal.SIGKILL, "out.nc"), "ctrl-c-csv": (signal.SIGINT, "out.csv")}
    procs = {}
    for name, (_, out) in runs.items():
        folder = tmp_path / name
        folder.mkdir()
        # the cells are 3 x 3: below --auto's default smallest cell (10 pixels)
        args = ["extract", str(movie), "--auto", "--threshold", "200", "--min-size", "5"]
        args.append("--no-progress")
        procs[name] = subprocess.Popen(
            [*ROITRACE, *args, "-o", str(folder / out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            env=ENV,
            start_new_session=True,  # a Ctrl-C at the terminal stays with pytest
        )
    signalled = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
        for name, p in procs.items():
            if name not in signalled and p.poll() is None:
                # the output's temporary, not the probe of the check before the work
                left = os.listdir(tmp_path / name)
                if any(is_temporary(n) and not n.endswith(".probe") for n in left):
                    p.send_signal(runs[name][0])
                    signalled.add(name)
        time.sleep(0.001)
    outputs = {name: p.communicate(timeout=30) for name, p in procs.items()}

    for name, (sig, out) in runs.items():
        p, stderr = procs[name], outputs[name][1]
        final = tmp_path / name / out
        assert "Traceback" not in stderr, stderr
        if final.exists():  # finished before the signal: then the file is whole
            sizes = rt.load(final).sizes
            assert (sizes["roi"], sizes["time"]) == (2, 40_000)
            continue
        assert name in signalled, (name, p.returncode, stderr)
        left = os.listdir(tmp_path / name)
        if sig == signal.SIGKILL:
            assert p.returncode == -signal.SIGKILL
            assert all(is_temporary(n) for n in left), left  # hidden, recognisable leftovers
        else:
            assert p.returncode == 130, stderr
            assert left == []  # Ctrl-C cleans up
            assert stderr.splitlines() == [
                "roitrace: interrupted; no output was left half-written"
            ]


# -- Ctrl-C just as a temporary is created ---------------------------------------------------
# A signal is raised in Python as soon as the call it interrupted returns: right after
# the temporary exists, before its name is known to the code that must remove it. The
# process-level test above hits that window by chance; these hit it every time.
def _interrupt_after(monkeypatch, module, name: str, when: Callable[..., bool]) -> list:
    """Make ``module.name`` do its work, then raise KeyboardInterrupt once ``when(*args)``."""
    real, hits = getattr(module, name), []

    def interrupted(*args, **kwargs):
        value = real(*args, **kwargs)
        if not hits and when(*args, **kwargs):
            hits.append(args)
            if isinstance(value, int):  # a file descriptor: the test leaks none
                os.close(value)
            raise KeyboardInterrupt
        return value

    monkeypatch.setattr(module, name, interrupted)
    return hits


def _in_atomic(target: str):
    """``with`` the writer of ``target`` ("file" or "folder") on a folder holding
    one old file; the block is never reached."""
    from roitrace._atomic import atomic_folder

    if target == "file":
        return atomic_path
    return lambda path: atomic_folder(path, owned=["F.npy"])


def _temporary_name(path, *args, **kwargs) -> bool:
    return is_temporary(os.fsdecode(path))


@pytest.mark.parametrize("target", ["file", "folder"])
@pytest.mark.parametrize("where", ["inside the creating call", "as the helper returns"])
def test_ctrl_c_as_the_temporary_appears_leaves_nothing(target, where, tmp_path, monkeypatch):
    import roitrace._atomic as atomic

    old = tmp_path / "out"
    old.mkdir()
    (old / "F.npy").write_bytes(b"old")
    final = old / "F.npy" if target == "file" else old
    if where == "as the helper returns":
        hits = _interrupt_after(monkeypatch, atomic, "_make_temp", lambda *a, **k: True)
    else:  # the system call itself: os.open for a file, os.mkdir for a staging folder
        hits = _interrupt_after(
            monkeypatch, os, "open" if target == "file" else "mkdir", _temporary_name
        )
    with pytest.raises(KeyboardInterrupt), _in_atomic(target)(final):
        pytest.fail("the block runs only once the temporary is safely made")
    assert hits, "the interrupt was not injected"
    assert files(tmp_path) == {"out/F.npy": b"old"}
    assert temporaries(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="the folder lock needs fcntl")
def test_ctrl_c_while_taking_the_folder_lock_leaves_no_lock_file(tmp_path, monkeypatch):
    import fcntl
    import types

    import roitrace._atomic as atomic

    calls = []

    def flock(fd, op):
        calls.append(op)
        if len(calls) == 1:  # Ctrl-C while waiting for the lock, its file just created
            raise KeyboardInterrupt
        return fcntl.flock(fd, op)

    fake = types.SimpleNamespace(**{k: getattr(fcntl, k) for k in dir(fcntl) if k.isupper()})
    fake.flock = flock
    monkeypatch.setattr(atomic, "fcntl", fake)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_folder(tmp_path / "out") as stage:
        (stage / "F.npy").write_bytes(b"new")
    assert calls[0] == fcntl.LOCK_EX
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("folder", [False, True])
def test_ctrl_c_in_the_writability_probe_leaves_no_probe(folder, tmp_path, monkeypatch):
    import roitrace._atomic as atomic

    hits = _interrupt_after(monkeypatch, atomic, "_make_temp", lambda *a, **k: True)
    with pytest.raises(KeyboardInterrupt):
        atomic.check_writable(tmp_path / ("out" if folder else "out.csv"), folder=folder)
    assert hits
    assert os.listdir(tmp_path) == []
