"""A package missing from a broken environment: one line, with the install command,
everywhere (pynwb and h5netcdf are dependencies, so the README's plain install has them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import roitrace as rt

BLOCK = "import sys\nfor m in {modules!r}: sys.modules[m] = None\n"


def run_without(modules: list[str], code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python where ``modules`` cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(modules=modules) + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def cli(*args: str) -> str:
    argv = ["roitrace", *args, "--no-progress"]
    return f"sys.argv = {argv!r}\nfrom roitrace.cli import main\nmain()\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("optional")
    sim = rt.simulate(shape=(24, 24), n_frames=30, n_cells=2, seed=2)
    sim.to_tiff(d / "movie.tif")
    labels = np.zeros((24, 24), np.int32)
    labels[4:9, 4:9] = 1
    tifffile.imwrite(d / "labels.tif", labels)
    ds = rt.extract(sim.movie, labels)
    rt.save(ds, d / "t.nc")
    rt.RoiSet.from_labels(labels).to_nwb(d / "cells.nwb")
    return d


def test_the_plain_install_has_every_format_the_readme_uses():
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    deps = " ".join(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    for package in ("h5netcdf", "pynwb", "h5py", "tifffile", "roifile"):
        assert package in deps


@pytest.mark.parametrize(
    ("modules", "args", "package"),
    [
        (
            ["pynwb", "hdmf"],
            ["extract", "movie.tif", "--rois", "cells.nwb", "-o", "o.csv"],
            "pynwb",
        ),
        (["pynwb", "hdmf"], ["rois", "movie.tif", "--method", "otsu", "-o", "seg.nwb"], "pynwb"),
        (
            ["pynwb", "hdmf"],
            ["extract", "movie.tif", "--rois", "labels.tif", "-o", "o.nwb"],
            "pynwb",
        ),
        (["h5netcdf"], ["extract", "movie.tif", "--rois", "labels.tif", "-o", "o.nc"], "h5netcdf"),
    ],
)
def test_command_line_says_what_to_install(folder, modules, args, package):
    proc = run_without(modules, cli(*args), folder)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("roitrace: error:") and f"pip install {package}" in line, line
    assert "Traceback" not in proc.stderr
    assert not (folder / "o.nwb").exists() and not (folder / "o.nc").exists()


def test_python_raises_missing_dependency_error(folder):
    code = (
        "import roitrace as rt\n"
        "try:\n    rt.load('t.nc')\n"
        "except rt.MissingDependencyError as e:\n    print('MISSING', e)\n"
        "try:\n    rt.read_rois('cells.nwb')\n"
        "except rt.MissingDependencyError as e:\n    print('MISSING', e)\n"
    )
    proc = run_without(["h5netcdf", "pynwb", "hdmf"], code, folder)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MISSING")]
    assert len(lines) == 2, proc.stdout + proc.stderr
    assert "pip install h5netcdf" in lines[0] and "pip install pynwb" in lines[1]
