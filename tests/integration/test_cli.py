"""The command line: demo, project, extract, fetch; errors as one line with exit code 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

import roitrace as rt
from roitrace.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def movie_tif(tmp_path):
    sim = rt.simulate(shape=(40, 40), n_frames=300, n_cells=1, seed=1)
    return sim.to_tiff(tmp_path / "movie.tif"), sim


def test_demo_writes_csv_and_figures_and_scores(tmp_path):
    res = run("demo", "--out", tmp_path / "d", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "Correlation" in res.output
    pngs = sorted((tmp_path / "d").glob("*.png"))
    assert len(pngs) == 8
    header = (tmp_path / "d" / "traces.csv").read_text().splitlines()
    assert header[0].startswith("# roitrace_version")
    body = "\n".join(ln for ln in header if not ln.startswith("#"))
    table = np.genfromtxt(io.StringIO(body), delimiter=",", names=True)
    truth = table["true_calcium"]
    r_raw = np.corrcoef(table["F_mean"], truth)[0, 1]
    r_corr = np.corrcoef(table["F_corrected_mean"], truth)[0, 1]
    assert r_corr > r_raw > 0.8  # neuropil correction must help on the simulation


def test_project(movie_tif, tmp_path):
    path, sim = movie_tif
    res = run("project", path, "--kind", "std", "-o", tmp_path / "proj.tif", "--no-progress")
    assert res.exit_code == 0, res.output
    with tifffile.TiffFile(tmp_path / "proj.tif") as tif:
        image = tif.asarray()
        meta = tif.shaped_metadata[0]
    assert_allclose(image, np.std(sim.movie, axis=0), rtol=1e-9)
    assert meta["kind"] == "std" and meta["roitrace_version"] == rt.__version__


def test_project_correlation_without_global_signal(movie_tif, tmp_path):
    path, sim = movie_tif
    out = tmp_path / "corr.npy"
    args = ["project", path, "--kind", "correlation", "--subtract-global", "-o", out]
    res = run(*args, "--no-progress")
    assert res.exit_code == 0, res.output
    want = rt.projection(sim.movie, "correlation", subtract_global=True)
    assert_allclose(np.load(out), want, atol=1e-12)
    assert json.loads(out.with_name("corr.npy.json").read_text())["subtract_global"] is True
    res = run("project", path, "--kind", "std", "--subtract-global", "-o", out, "--no-progress")
    assert res.exit_code == 2
    assert "--subtract-global does not apply to --kind std" in res.output


def test_extract_csv_matches_api(movie_tif, tmp_path):
    path, sim = movie_tif
    out = tmp_path / "traces.csv"
    res = run(
        "extract",
        path,
        "--method",
        "sigma",
        "--k",
        "3",
        "--neuropil-gap",
        "2",
        "--neuropil-width",
        "1",
        "--how",
        "median",
        "-o",
        out,
        "--figures",
        tmp_path / "figs",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    ds = rt.load(out)
    mask = rt.threshold(np.std(sim.movie, axis=0), method="sigma", k=3)
    ref = rt.extract(sim.movie, mask, method="median", neuropil={"gap": 2, "width": 1})
    for v in ("F", "Fneu", "F_corrected"):
        assert_array_equal(ds[v].values, ref[v].values)
    assert_allclose(ds["time"], np.arange(300) / sim.frame_rate)
    assert json.loads(ds.attrs["parameters"])["method"] == "median"
    assert ds.attrs["roitrace_version"] == rt.__version__
    assert len(list((tmp_path / "figs").glob("*.png"))) == 3


def test_extract_absolute_threshold_and_frames(movie_tif, tmp_path):
    path, sim = movie_tif
    out = tmp_path / "t.csv"
    std = np.std(sim.movie[100:200], axis=0)
    value = float(np.percentile(std, 95))
    res = run(
        "extract", path, "--threshold", value, "--frames", "100:200", "-o", out, "--no-progress"
    )
    assert res.exit_code == 0, res.output
    ds = rt.load(out)
    assert ds["frame"].values.tolist() == list(range(100, 200))
    assert_allclose(ds["F"][0], sim.movie[100:200][:, std > value].mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", "{movie}", "--threshold", "1e9", "-o", "{out}"], "no pixel is above"),
        (["extract", "{missing}", "--threshold", "1", "-o", "{out}"], "no such file"),
        (["extract", "{movie}", "-o", "{out}"], "--threshold VALUE"),
        (
            ["extract", "{movie}", "--threshold", "1", "--frames", "200:900", "-o", "{out}"],
            "outside the movie",
        ),
        (
            [
                "extract",
                "{movie}",
                "--threshold",
                "1",
                "--how",
                "trimmed_mean",
                "--proportion",
                "0.6",
                "-o",
                "{out}",
            ],
            r"[0, 0.5)",
        ),
        (
            [
                "extract",
                "{movie}",
                "--method",
                "sigma",
                "--neuropil-gap",
                "40",
                "--neuropil-width",
                "1",
                "-o",
                "{out}",
            ],
            "ring",
        ),
        (["project", "{image}", "-o", "{out_image}"], "2-D image"),
        (["project", "{fake}", "-o", "{out_image}"], "not a readable TIFF"),
    ],
)
def test_errors_are_one_line_exit_2(movie_tif, tmp_path, args, message):
    path, _ = movie_tif
    np.save(tmp_path / "image.npy", np.zeros((8, 8), np.uint16))
    (tmp_path / "fake.tif").write_text("not a tiff")
    names = {
        "movie": path,
        "out": tmp_path / "out.csv",
        "out_image": tmp_path / "out.tif",
        "missing": tmp_path / "nope.tif",
        "image": tmp_path / "image.npy",
        "fake": tmp_path / "fake.tif",
    }
    res = run(*[a.format(**names) for a in args], "--no-progress")
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.startswith("roitrace: error")]
    assert len(lines) == 1 and message in res.output, res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.tif").exists()


def test_real_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "roitrace",
            "project",
            str(tmp_path / "nope.tif"),
            "-o",
            str(tmp_path / "p.tif"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("roitrace: error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and rt.__version__ in res.output


def test_fetch_command(tmp_path, monkeypatch):
    src = tmp_path / "served.tif"
    tifffile.imwrite(src, np.zeros((3, 4, 4), np.uint16))
    import hashlib

    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    res = run(
        "fetch",
        "single-cell",
        "--cache-dir",
        tmp_path / "cache",
        "--url",
        "http://127.0.0.1:9/none.tif",
        "--sha256",
        digest,
    )
    assert res.exit_code == 2 and "roitrace: error" in res.output


@pytest.fixture
def field_tif(tmp_path):
    sim = rt.simulate(shape=(64, 64), n_frames=300, n_cells=6, seed=7)
    return sim.to_tiff(tmp_path / "field.tif"), sim


def test_extract_auto_many_cells_with_figures(field_tif, tmp_path):
    path, _ = field_tif
    out = tmp_path / "cells.nc"
    res = run(
        "extract",
        path,
        "--auto",
        "--method",
        "sigma",
        "--k",
        "1.5",
        "--min-size",
        "15",
        "--neuropil-gap",
        "2",
        "--neuropil-width",
        "2",
        "--neuropil-min-pixels",
        "60",
        "-o",
        out,
        "--figures",
        tmp_path / "figs",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    ds = rt.load(out)
    assert ds.sizes["roi"] >= 3
    assert (ds["npix"] >= 15).all() and (ds["npix_neuropil"] >= 60).all()
    assert sorted(p.name for p in (tmp_path / "figs").glob("*.png")) == [
        "dff_heatmap.png",
        "rois.png",
        "traces.png",
    ]


def test_rois_command_then_extract_with_rois(field_tif, tmp_path):
    path, sim = field_tif
    labels = tmp_path / "labels.tif"
    res = run(
        "rois",
        path,
        "--method",
        "percentile",
        "--q",
        "80",
        "--min-size",
        "15",
        "-o",
        labels,
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    res = run("extract", path, "--rois", labels, "-o", tmp_path / "t.csv", "--no-progress")
    assert res.exit_code == 0, res.output
    ds = rt.load(tmp_path / "t.csv")
    ref = rt.extract(sim.movie, tifffile.imread(labels))
    assert_array_equal(ds["F"].values, ref["F"].values)


def test_rois_command_writes_nwb_segmentation(field_tif, tmp_path):
    pytest.importorskip("pynwb")
    path, _ = field_tif
    seg = tmp_path / "seg.nwb"
    args = ("--method", "percentile", "--q", "80", "--min-size", "15", "--no-progress")
    res = run("rois", path, *args, "-o", seg)
    assert res.exit_code == 0, res.output
    res = run("rois", path, *args, "-o", tmp_path / "labels.npy")
    assert res.exit_code == 0, res.output
    assert_array_equal(rt.read_rois(seg).to_labels(), np.load(tmp_path / "labels.npy"))


def test_suite2p_folder_needs_trust_pickle(field_tif, tmp_path):
    path, sim = field_tif
    ds = rt.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 2})
    rt.save(ds, tmp_path / "plane0")
    res = run(
        "extract", path, "--rois", tmp_path / "plane0", "-o", tmp_path / "o.csv", "--no-progress"
    )
    assert res.exit_code == 2 and "asked with --trust-pickle; do so only" in res.output
    assert "allow_pickle" not in res.output
    res = run(
        "extract",
        path,
        "--rois",
        tmp_path / "plane0",
        "--trust-pickle",
        "-o",
        tmp_path / "o.csv",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    back = rt.load(tmp_path / "o.csv")
    assert_allclose(back["F"].values, ds["F"].values, rtol=1e-12)


@pytest.mark.parametrize(("suffix", "package"), [(".nc", "h5netcdf"), (".nwb", "pynwb")])
def test_missing_writer_package_fails_before_extracting(
    suffix, package, movie_tif, tmp_path, monkeypatch
):
    import importlib
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )

    def no_extraction(*args, **kwargs):
        raise AssertionError("extract() ran although the output cannot be written")

    monkeypatch.setattr(importlib.import_module("roitrace.extract"), "extract", no_extraction)
    out = tmp_path / f"traces{suffix}"
    res = run("extract", movie_tif[0], "--auto", "--no-progress", "-o", out)
    assert res.exit_code == 2
    assert f"needs the Python package {package}" in res.output
    assert f"pip install {package}" in res.output
    assert not out.exists()


def test_nwb_without_frame_rate_fails_before_extracting(tmp_path):
    sim = rt.simulate(shape=(40, 40), n_frames=50, n_cells=1, seed=1)
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, sim.movie)  # a plain TIFF: no frame rate recorded
    out = tmp_path / "traces.nwb"
    res = run("extract", movie, "--auto", "--no-progress", "-o", out)
    assert res.exit_code == 2
    assert "pass --frame-rate" in res.output and not out.exists()
    res = run(
        "extract", movie, "--auto", "--min-size", "1", "--no-progress", "--frame-rate", "30",
        "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert rt.load(out)["F"].shape[1] == 50
