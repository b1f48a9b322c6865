"""``roitrace report`` and ``extract --report`` as a user types them: one line and exit
code 2 for every mistake, in the command line's words, and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

import roitrace as rt
from conftest import run_roitrace


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    f = tmp_path_factory.mktemp("report-cli")
    sim = rt.simulate(n_cells=6, n_frames=300, shape=(48, 48), seed=2)
    tifffile.imwrite(f / "movie.tif", sim.movie)
    tifffile.imwrite(f / "labels.tif", sim.labels.astype(np.uint16))
    args = ["extract", "movie.tif", "--rois", "labels.tif", "--neuropil-gap", "2",
            "--neuropil-width", "2", "-o", "r.nc", "--report", "r.html"]  # fmt: skip
    proc = run_roitrace(*args, cwd=f)
    assert proc.returncode == 0, proc.stderr
    return f


def _fails(folder, *args):
    proc = run_roitrace(*args, cwd=folder)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    return proc.stderr


def test_extract_report_and_report_command(folder):
    qc = json.loads((folder / "quality_control.json").read_text())
    assert qc["report"] == "r.html" and qc["recording"]["n_rois"] == 6
    proc = run_roitrace("report", "r.nc", "--movie", "movie.tif", "-o", "again.html",
                        "--qc", "again.json", "--min-snr", "3", cwd=folder)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "again.json").read_text())["thresholds"]["min_snr"] == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("report", "missing.nc", "-o", "x.html"), "missing.nc: no such file"),
        (("report", "movie.tif", "-o", "x.html", "--qc", "x.json"), "unknown result format"),
        (("report", "r.nc", "-o", "x.png"), "end its name in .html"),
        (("report", "r.nc", "-o", "x.html"), "belongs to the report r.html"),
        (("report", "r.nc", "-o", "x.html", "--qc", "x.json", "--max-mb", "0"), "--max-mb"),
        (("report", "r.nc", "-o", "x.html", "--qc", "x.json", "--min-snr", "-1"), "--min-snr"),
        (("report", "r.nc", "-o", "x.html", "--qc", "x.json", "--axes", "TYX"), "--axes"),
        (("extract", "movie.tif", "--rois", "labels.tif", "-o", "y.nc", "--qc", "y.json"),
         "--qc does not apply without --report"),
        (("extract", "movie.tif", "--rois", "labels.tif", "-o", "y.nc", "--report", "y.nc"),
         "is the -o/--output file"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_and_write_nothing(folder, args, says):
    assert says in _fails(folder, *args)
    assert not (folder / "x.html").exists() and not (folder / "y.nc").exists()
