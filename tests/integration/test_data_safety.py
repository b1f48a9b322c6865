"""An output never replaces an input; an output that cannot be written is refused
before the movie is read; a suite2p folder always holds one run's files (issue 9)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import roitrace as rt
from conftest import data_path
from roitrace import _atomic
from roitrace._atomic import check_not_input, check_writable, is_temporary
from roitrace.cli import app
from roitrace.io.suite2p import read_suite2p, write_suite2p

# The installed entry point, as a user runs it (python -m roitrace where it is absent).
_SCRIPT = Path(sys.executable).with_name("roitrace")
ROITRACE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "roitrace"]
ENV = {**os.environ, "ROITRACE_NUMBA": "0"}  # these tests are about files, not speed
runner = CliRunner()


def cli(*args):
    """The command line in this process (to patch it), without a progress bar."""
    return runner.invoke(app, [*map(str, args), "--no-progress"])


def roitrace(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ROITRACE, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=120,
        check=False,
    )


def one_error(res: subprocess.CompletedProcess) -> str:
    """The single error line of a failed run (exit code 2, no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("roitrace: error: "), res.stderr
    return lines[0].removeprefix("roitrace: error: ")


def _movie(n_frames: int = 40, n_cells: int = 2) -> np.ndarray:
    """(T, 24, 24) uint16 with ``n_cells`` bright 4 x 4 cells that flicker."""
    rng = np.random.default_rng(0)
    movie = rng.poisson(100, (n_frames, 24, 24)).astype(np.uint16)
    for i in range(n_cells):
        y, x = 3 + 6 * (i // 3), 3 + 6 * (i % 3)
        movie[:, y : y + 4, x : x + 4] += (rng.random((n_frames, 1, 1)) * 2000).astype(np.uint16)
    return movie


def _labels(n_cells: int) -> np.ndarray:
    labels = np.zeros((24, 24), np.int32)
    for i in range(n_cells):
        y, x = 1 + 4 * (i // 5), 1 + 4 * (i % 5)
        labels[y : y + 3, x : x + 3] = i + 1
    return labels


@pytest.fixture
def files(tmp_path) -> Path:
    movie = _movie()
    tifffile.imwrite(tmp_path / "in.tif", movie)
    np.save(tmp_path / "mov.npy", movie)
    np.save(tmp_path / "labels.npy", _labels(2))
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# -- 1. an output that is an input is refused, before any work ---------------------------------
def test_project_onto_its_real_movie_is_refused(tmp_path):
    """The report: project in.tif -o in.tif replaced a 500-frame movie with its projection."""
    movie = tmp_path / "in.tif"
    shutil.copy(data_path("thunder-mouse", "mouse.tif"), movie)
    (tmp_path / "link.tif").symlink_to("in.tif")
    before = movie.read_bytes()
    for args in (["in.tif", "-o", "in.tif"], ["link.tif", "-o", "in.tif"]):
        res = roitrace("project", *args, "--no-progress", cwd=tmp_path)
        message = one_error(res)
        assert message.startswith("-o/--output in.tif is the input movie"), message
        assert message.endswith("write the output to another file")
    assert movie.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "link.tif"]


def test_extract_onto_its_hdf5_movie_is_refused(tmp_path):
    """extract ex.h5 --dataset imaging -o ex.h5 replaced the raw movie with traces."""
    h5 = tmp_path / "ex.h5"
    shutil.copy(data_path("sima", "example.h5"), h5)
    before = h5.read_bytes()
    common = ["--axes", "YXT", "--threshold", "1000", "--no-progress"]
    for movie in (["ex.h5", "--dataset", "imaging"], ["ex.h5:/imaging"]):
        res = roitrace("extract", *movie, *common, "-o", "ex.h5", cwd=tmp_path)
        assert "-o/--output ex.h5 is the input movie" in one_error(res)
    assert h5.read_bytes() == before
    assert os.listdir(tmp_path) == ["ex.h5"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("rois mov.npy -o mov.npy", "-o/--output mov.npy is the input movie;"),
        ("project in.tif -o hard.tif", "-o/--output hard.tif is the input movie in.tif;"),
        (
            "extract in.tif --rois labels.npy --figures in.tif -o t.csv",
            "--figures in.tif is the input movie; write the output to another folder",
        ),
        (
            "extract in.tif --rois sub/../labels.npy -o t.csv --figures labels.npy",
            "--figures labels.npy is the ROI source --rois sub/../labels.npy;",
        ),
        # project -o X.npy writes X.npy.json beside it: that may not be an input either
        (
            "project m.npy.json -o m.npy",
            "the sidecar m.npy.json of -o/--output m.npy is the input movie",
        ),
    ],
)
def test_cli_output_that_is_an_input(files, args, message, monkeypatch):
    monkeypatch.chdir(files)
    os.link(files / "in.tif", files / "hard.tif")
    (files / "sub").mkdir()
    (files / "m.npy.json").write_text("{}")
    before = snapshot(files)
    res = cli(*args.split())
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and message in lines[0], res.output
    assert snapshot(files) == before


@pytest.fixture
def nwb_rois(files) -> Path:
    pytest.importorskip("pynwb")
    path = files / "cells.nwb"
    rt.RoiSet.from_labels(_labels(2)).to_nwb(path, frame_rate=10.0)
    return path


def test_extract_onto_its_nwb_roi_source_is_refused(files, nwb_rois):
    before = nwb_rois.read_bytes()
    args = ["--rois", "cells.nwb", "-o", "cells.nwb", "--frame-rate", "10", "--no-progress"]
    res = roitrace("extract", "in.tif", *args, cwd=files)
    message = one_error(res)
    assert message == (
        "-o/--output cells.nwb is the ROI source --rois; write the output to another file"
    )
    assert nwb_rois.read_bytes() == before


def _plane(folder: Path, n_cells: int = 2, *, neuropil: bool = True) -> Path:
    movie = _movie(n_cells=0)
    ds = rt.extract(movie, _labels(n_cells), neuropil={"gap": 1, "width": 1} if neuropil else None)
    return rt.save(ds, folder)


@pytest.mark.parametrize(
    ("rois", "output", "message"),
    [
        ("run/plane0", "run/plane0/", "-o/--output run/plane0 is the ROI source --rois;"),
        (
            "run",
            "run/plane0/",
            "-o/--output run/plane0 is run/plane0, the plane folder the ROI source --rois run "
            "is read from;",
        ),
        (
            "run/plane0/stat.npy",
            "run/plane0/",
            "-o/--output run/plane0 would replace run/plane0/stat.npy, which is the ROI "
            "source --rois run/plane0/stat.npy;",
        ),
    ],
)
def test_suite2p_output_over_its_roi_source_is_refused(files, rois, output, message):
    _plane(files / "run" / "plane0")
    before = snapshot(files)
    res = cli("extract", "in.tif", "--rois", files / rois, "--trust-pickle", "-o", files / output)
    assert res.exit_code == 2, res.output
    assert message.replace("run", str(files / "run")) in res.output
    assert res.output.rstrip().endswith("write the output to another folder")
    assert snapshot(files) == before


def test_suite2p_output_beside_the_movie_is_allowed(files, monkeypatch):
    """A folder output that holds the movie is fine: the movie is not among the files
    written; one named like them (F.npy) would be replaced, and is refused."""
    monkeypatch.chdir(files)
    res = cli("extract", "mov.npy", "--rois", "labels.npy", "-o", "./")
    assert res.exit_code == 0, res.output
    assert rt.load(files).sizes["roi"] == 2
    np.save(files / "Fneu.npy", _movie())
    res = cli("extract", "Fneu.npy", "--rois", "labels.npy", "-o", "./")
    assert res.exit_code == 2
    assert "would replace Fneu.npy, which is the input movie Fneu.npy" in res.output


def test_save_refuses_the_files_the_result_was_made_from(files):
    ds = rt.extract(rt.open_movie(files / "mov.npy"), rt.read_rois(files / "labels.npy"))
    assert ds.attrs["source"] == str(files / "mov.npy")
    before = snapshot(files)
    read_from = (
        r"path .*mov\.npy is the file this result was read from \(result\.attrs\['source'\]\)"
    )
    with pytest.raises(rt.OutputError, match=read_from):
        rt.save(ds, files / "mov.npy")
    # the report's case: an HDF5 movie and an HDF5 output
    with h5py.File(files / "ex.h5", "w") as f:
        f["imaging"] = _movie()
    ds_h5 = rt.extract(rt.open_movie(f"{files / 'ex.h5'}:/imaging"), _labels(2))
    with pytest.raises(rt.OutputError, match=r"ex\.h5 is the file this result was read from"):
        rt.save(ds_h5, files / "ex.h5")
    (files / "other.csv").write_text("an input")
    before = snapshot(files)
    # the CLI records the ROI file; a result also names its inputs with inputs=
    ds.attrs["rois"] = str(files / "labels.npy")
    with pytest.raises(rt.OutputError, match=r"ROI source of this result"):
        rt.save(ds, files / "labels.npy")
    with pytest.raises(rt.OutputError, match=r"is an input .*other\.csv \(inputs=\); write"):
        rt.save(ds, files / "sub" / ".." / "other.csv", inputs=[files / "other.csv"])
    assert snapshot(files) == before
    # a suite2p folder over the ROI folder it was extracted from
    plane = _plane(files / "plane0")
    ds = rt.extract(files / "mov.npy", rt.read_rois(plane, allow_pickle=True))
    with pytest.raises(rt.OutputError, match=r"would replace .*stat\.npy"):
        rt.save(ds, plane, inputs=[plane / "stat.npy"])


def test_check_not_input_compares_files_not_names(tmp_path):
    movie = tmp_path / "in.tif"
    movie.write_bytes(b"movie")
    (tmp_path / "link.tif").symlink_to(movie)
    os.link(movie, tmp_path / "hard.tif")
    for out in ("in.tif", "link.tif", "hard.tif", "sub/../in.tif"):
        with pytest.raises(rt.OutputError, match="is the input movie"):
            check_not_input(tmp_path / out, [("the input movie", movie)], name="-o/--output")
    check_not_input(tmp_path / "out.tif", [("the input movie", movie)], name="-o/--output")
    check_not_input(movie, [("the ROI source --rois", None)])  # no such input


# -- 2. an output that cannot be written is refused before the movie is read -----------------
def _bad_movie(folder: Path) -> Path:
    """A movie that fails as soon as it is opened: an error about the output instead
    shows that the output was checked first."""
    path = folder / "broken.tif"
    path.write_bytes(b"not a TIFF at all")
    return path


@pytest.mark.parametrize(
    ("command", "output", "why"),
    [
        ("extract", "file/traces.csv", "file is a file, not a folder"),
        ("extract", "file/deeper/plane0/", "file is a file, not a folder"),
        ("project", "folder.tif", "it is a folder"),
        ("rois", "file/rois.zip", "file is a file, not a folder"),
        pytest.param(
            "extract",
            "/proc/roitrace-test/traces.csv",
            "cannot create a file in /proc",
            marks=pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's"),
        ),
    ],
)
def test_unwritable_output_is_refused_before_the_movie_is_read(tmp_path, command, output, why):
    """Also as root, who may write into read-only folders: a file in the way, /proc."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.tif").mkdir()
    movie = _bad_movie(tmp_path)
    before = snapshot(tmp_path)
    args = ["--threshold", "1"] if command != "project" else []
    res = roitrace(command, movie, *args, "-o", output, "--no-progress", cwd=tmp_path)
    message = one_error(res)
    assert message.startswith(f"-o/--output {output.rstrip('/')}: could not write it"), message
    assert why in message and "nothing was read or written" in message
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["broken.tif", "file", "folder.tif"]  # no probe left


def test_unwritable_figures_folder_is_refused_first(tmp_path):
    (tmp_path / "figs").write_text("a file")
    movie = _bad_movie(tmp_path)
    out, figs = tmp_path / "t.csv", tmp_path / "figs"
    res = cli("extract", movie, "--threshold", "1", "-o", out, "--figures", figs)
    assert res.exit_code == 2
    assert f"--figures {tmp_path / 'figs'}: could not write it" in res.output
    assert "is a file, not a folder" in res.output


@pytest.mark.parametrize("command", ["project", "extract", "rois"])
def test_the_movie_is_not_opened_when_the_output_is_refused(files, command, monkeypatch):
    import roitrace.movie

    def fail(*args, **kwargs):
        raise AssertionError("the movie was opened before the output was checked")

    monkeypatch.setattr(roitrace.movie, "open_movie", fail)
    (files / "file").write_text("x")
    out = {"project": "in.tif", "extract": "file/t.csv", "rois": "file/r.zip"}[command]
    args = [] if command == "project" else ["--threshold", "1"]
    res = cli(command, files / "in.tif", *args, "-o", files / out)
    assert res.exit_code == 2, res.output
    assert "-o/--output" in res.output and "AssertionError" not in res.output


def test_missing_output_folders_are_created_only_when_written(files):
    """-o new/sub/t.csv creates the folders (as mkdir -p would), but a run that fails
    first leaves none behind."""
    movie = _bad_movie(files)
    out = files / "new" / "sub" / "t.csv"
    res = cli("extract", movie, "--threshold", "1", "-o", out)
    assert res.exit_code == 2 and "not a readable TIFF" in res.output, res.output
    assert not (files / "new").exists()
    res = cli("extract", files / "in.tif", "--rois", files / "labels.npy", "-o", out)
    assert res.exit_code == 0, res.output
    assert rt.load(out).sizes["roi"] == 2


def test_check_writable_leaves_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "t.csv")
    check_writable(tmp_path / "plane0", folder=True)
    (tmp_path / "plane0").mkdir()
    check_writable(tmp_path / "plane0", folder=True)
    with pytest.raises(rt.OutputError, match="it is a folder"):
        check_writable(tmp_path / "plane0", name="-o/--output")
    assert sorted(os.listdir(tmp_path)) == ["plane0"] and not os.listdir(tmp_path / "plane0")


# -- 3. a suite2p folder holds one run's files ------------------------------------------------
def _result(n_cells: int, *, neuropil: bool, n_frames: int = 30):
    movie = _movie(n_frames, n_cells=0)
    labels = _labels(n_cells)
    npil = {"gap": 1, "width": 1} if neuropil else None
    return rt.extract(movie, labels, neuropil=npil), rt.RoiSet.from_labels(labels)


def test_rewritten_folder_drops_the_earlier_runs_files(tmp_path):
    """The report: a 25-ROI run with neuropil, then a 2-ROI run without, left a stale
    25-row F_corrected.npy and load() failed with xarray's "conflicting sizes"."""
    folder = tmp_path / "plane0"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"suite2p's registered frames")
    (folder / "notes.txt").write_text("mine")
    big, _ = _result(25, neuropil=True)
    rt.save(big, folder)
    assert (folder / "F_corrected.npy").exists()
    small, _ = _result(2, neuropil=False, n_frames=20)
    rt.save(small, folder)
    names = sorted(os.listdir(folder))
    assert names == [
        "F.npy", "F0.npy", "Fneu.npy", "data.bin", "dff.npy", "iscell.npy", "notes.txt",
        "ops.npy", "spks.npy", "stat.npy",
    ]  # fmt: skip
    back = rt.load(folder, allow_pickle=True)
    assert back.sizes == {"roi": 2, "time": 20} and "F_corrected" not in back
    assert len(read_suite2p(folder, allow_pickle=True)) == 2
    assert sorted(os.listdir(tmp_path)) == ["plane0"]  # no stage, no lock left


def test_a_folder_name_with_a_dot_ends_with_a_slash(tmp_path):
    ds, _ = _result(2, neuropil=True)
    out = rt.save(ds, f"{tmp_path / 'run.v2'}/")
    assert out.is_dir() and rt.load(out).sizes["roi"] == 2
    with pytest.raises(rt.ParameterError, match=r"unknown output format '\.v3'"):
        rt.save(ds, tmp_path / "run.v3")


def test_extra_variables_of_an_earlier_run_are_removed(tmp_path):
    ds, rois = _result(3, neuropil=True)
    write_suite2p(ds, rois, tmp_path, extra=("F_corrected", "skewness_trace"))
    assert (tmp_path / "F_corrected.npy").exists()
    ds["skewness_trace"] = ds["F"] * 2
    write_suite2p(ds, rois, tmp_path, extra=("skewness_trace",))
    assert not (tmp_path / "F_corrected.npy").exists()
    write_suite2p(ds, rois, tmp_path, extra=("F_corrected", "skewness_trace"))
    write_suite2p(ds, rois, tmp_path)  # an extra the call does not name is not roitrace's set
    assert (tmp_path / "skewness_trace.npy").exists()
    assert not (tmp_path / "F_corrected.npy").exists()


def _check_one_run(folder: Path) -> int:
    """Every file of ``folder`` agrees: one run's complete set. Returns its ROI count."""
    back = rt.load(folder, allow_pickle=True)
    n = back.sizes["roi"]
    rois = read_suite2p(folder, allow_pickle=True)
    assert len(rois) == n
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    assert ops["nframes"] == back.sizes["time"]
    for name in ("F", "Fneu", "spks", "iscell", "dff"):
        assert np.load(folder / f"{name}.npy").shape[0] == n
    # the runs with an odd number of ROIs have a neuropil (see the writers)
    assert (folder / "F_corrected.npy").exists() == (n % 2 == 1)
    return n


def _slow_renames(seed: int, real_replace=os.replace):
    """A slow, uneven disk: each rename takes 0 to 2 ms, so that concurrent writers'
    renames interleave and overtake each other (unlocked, they left F.npy of one
    run beside Fneu.npy of another)."""
    rng = random.Random(seed)

    def replace(src, dst, **kwargs):
        time.sleep(rng.random() * 0.002)
        return real_replace(src, dst, **kwargs)

    return replace


def test_concurrent_writers_in_threads_leave_one_runs_set(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _slow_renames(seed=0))
    counts = [1, 2, 3, 4]
    results = {n: _result(n, neuropil=n % 2 == 1, n_frames=10 + n) for n in counts}
    folder = tmp_path / "plane0"
    for _ in range(6):  # rounds of writers that start together
        start = threading.Barrier(len(counts))
        errors = []

        def write(n, start=start, errors=errors):
            try:
                start.wait()
                write_suite2p(*results[n], folder, extra=("F_corrected", "dff"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in counts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert _check_one_run(folder) in counts
    assert sorted(os.listdir(tmp_path)) == ["plane0"]


_WRITER = """
import logging, os, random, sys, time
from pathlib import Path
import numpy as np
import roitrace as rt

logging.disable(logging.WARNING)  # "no Fneu" at every save would fill the stderr pipe

folder, n, sync = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
# as _result(n, neuropil=n % 2 == 1) and _slow_renames(seed=n), without importing the
# test module (and pytest, typer...): a lighter start
rng = np.random.default_rng(0)
movie = rng.poisson(100, (10 + n, 24, 24)).astype(np.uint16)
labels = np.zeros((24, 24), np.int32)
for i in range(n):
    y, x = 1 + 4 * (i // 5), 1 + 4 * (i % 5)
    labels[y : y + 3, x : x + 3] = i + 1
ds = rt.extract(movie, labels, neuropil={"gap": 1, "width": 1} if n % 2 else None)
rois = rt.RoiSet.from_labels(labels)
real_replace, uneven = os.replace, random.Random(n)
os.replace = lambda src, dst, **kw: time.sleep(uneven.random() * 0.002) or real_replace(src, dst)
(sync / f"ready-{n}").touch()
while not (sync / "go").exists():  # start together, once every writer is ready
    time.sleep(0.001)
end = time.monotonic() + 1.0  # and write until the same moment: any one may be last
while time.monotonic() < end:
    rt.save(ds, folder, rois=rois)
"""


def test_concurrent_writer_processes_leave_one_runs_set(tmp_path):
    """The report: two concurrent runs into one folder gave a mixed folder 5 times in 7."""
    folder = tmp_path / "out" / "plane0"
    counts = (2, 5, 25)
    for round_ in range(2):
        sync = tmp_path / f"sync{round_}"
        sync.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(folder), str(n), str(sync)],
                env=ENV,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in counts
        ]
        deadline = time.monotonic() + 120
        while len(os.listdir(sync)) < len(counts) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs]
            time.sleep(0.01)
        (sync / "go").touch()
        reads = 0
        while any(p.poll() is None for p in procs):  # a reader meanwhile sees one run's set
            try:
                back = rt.load(folder)
            except rt.ResultNotFoundError:  # not written yet
                continue
            assert (back.sizes["roi"], back.sizes["time"]) in [(n, 10 + n) for n in counts]
            assert ("F_corrected" in back) == (back.sizes["roi"] % 2 == 1)
            reads += 1
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read()
            p.stderr.close()
        assert reads > 0
        assert _check_one_run(folder) in counts
    assert sorted(os.listdir(folder.parent)) == ["plane0"]


def test_load_of_a_mixed_folder_names_the_files(tmp_path):
    folder = tmp_path / "plane0"
    big, _ = _result(25, neuropil=True)
    rt.save(big, folder)
    stale = np.load(folder / "F_corrected.npy")
    small, _ = _result(2, neuropil=False)
    rt.save(small, folder)
    np.save(folder / "F_corrected.npy", stale)  # as earlier versions of roitrace left it
    with pytest.raises(rt.ResultFormatError) as info:
        rt.load(folder)
    assert str(info.value) == (
        f"suite2p folder {folder}: F.npy has 2 ROIs (shape (2, 30)) but F_corrected.npy has "
        "25 (shape (25, 30)); the folder mixes files of different runs: write it again"
    )
    # read_suite2p checks the traces beside stat.npy too
    with pytest.raises(rt.RoiFormatError, match=r"F\.npy has 2 ROIs .* F_corrected\.npy has 25"):
        read_suite2p(folder, allow_pickle=True)
    np.save(folder / "F_corrected.npy", stale[:2, :20])
    with pytest.raises(rt.ResultFormatError, match=r"F\.npy has 30 frames .* has 20 \(shape"):
        rt.load(folder)
    (folder / "F_corrected.npy").unlink()
    np.save(folder / "iscell.npy", np.ones((25, 2)))
    with pytest.raises(rt.RoiFormatError, match=r"iscell\.npy has 25"):
        read_suite2p(folder, allow_pickle=True)
    with pytest.raises(rt.ResultFormatError, match=r"iscell\.npy has 25"):
        rt.load(folder)
    np.save(folder / "iscell.npy", np.ones((2, 2)))
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    np.save(folder / "ops.npy", np.array({**ops, "nframes": 99}, dtype=object), allow_pickle=True)
    with pytest.raises(rt.ResultFormatError, match=r"but ops\.npy has 99 \(nframes 99\)"):
        rt.load(folder, allow_pickle=True)
    assert rt.load(folder).sizes == {"roi": 2, "time": 30}  # ops.npy is not read without it


def test_reader_waits_for_a_writer_at_work(tmp_path):
    """A load() that finds the folder mid-swap waits for the writer and reads again."""
    folder = tmp_path / "plane0"
    ds, _ = _result(4, neuropil=True)
    rt.save(ds, folder)
    old = np.load(folder / "F.npy")
    got = []
    with _atomic._folder_lock(folder.resolve()):  # a writer between its renames
        np.save(folder / "F.npy", old[:2])  # the next run's F.npy is in, its other files not
        reader = threading.Thread(target=lambda: got.append(rt.load(folder)))
        reader.start()
        time.sleep(0.3)
        assert reader.is_alive() and not got  # it waits rather than fail
        np.save(folder / "F.npy", old)  # the writer's set is complete
    reader.join(timeout=30)
    assert got and got[0].sizes["roi"] == 4
    assert not any(is_temporary(p) for p in os.listdir(tmp_path))


def test_python_save_refuses_the_roi_file_the_result_was_extracted_from(tmp_path):
    labels = np.zeros((20, 20), int)
    labels[2:6, 2:6] = 1
    seg = rt.RoiSet.from_labels(labels).to_nwb(tmp_path / "seg.nwb")
    before = seg.read_bytes()
    movie = np.random.default_rng(0).poisson(100, (10, 20, 20)).astype(np.uint16)
    ds = rt.extract(movie, rt.read_rois(seg))
    with pytest.raises(rt.OutputError, match="ROI source"):
        rt.save(ds, seg)
    assert seg.read_bytes() == before
