"""The README's command-line examples run as written, on the files the README names.

The README says to try them inside the demo's folder; this test makes that folder with
the demo and runs every ``roitrace`` line of the "Command line" section, in order,
through the installed entry point (a real process, as a user types it).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands(section: str = "## Command line") -> list[list[str]]:
    """The ``roitrace ...`` lines of the bash blocks of one README section."""
    text = README.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    body = text[start : end if end > 0 else None]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", body, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "roitrace":
                commands.append(words)
    return commands


def test_the_readme_has_examples():
    commands = readme_commands()
    assert len(commands) >= 10
    assert any(c[1] == "rois" for c in commands) and any("--rois" in c for c in commands)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    from roitrace.datasets.demo import run_demo

    folder = tmp_path_factory.mktemp("readme") / "roitrace-demo"
    run_demo(folder)
    return folder


def run_as_written(words: list[str], folder: Path) -> None:
    """One README command, through the entry point, in ``folder``: it must succeed."""
    proc = subprocess.run(
        [sys.executable, "-m", "roitrace", *words[1:], "--no-progress"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{shlex.join(words)}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def test_readme_examples_run_as_written(demo_folder):
    ran = 0
    for words in readme_commands():
        if (
            words[1] == "fetch"
        ):  # needs the internet; tests/datasets/test_fetch.py covers it offline
            continue
        run_as_written(words, demo_folder)
        ran += 1
    assert ran >= 10
    for name in ("std.tif", "corr.tif", "RoiSet.zip", "labels.tif", "cells.nwb", "cells.nc"):
        assert (demo_folder / name).is_file(), name
    assert (demo_folder / "suite2p_out" / "F.npy").is_file()
    assert sorted(p.name for p in (demo_folder / "figs").glob("*.png"))


def test_readme_cluster_examples_run_as_written(demo_folder):
    """The commands of "On a cluster", the scheduler's placeholder address replaced by
    a scheduler running here (with one worker process)."""
    distributed = pytest.importorskip("distributed", reason="the [cluster] extra is absent")
    if not (demo_folder / "labels.tif").is_file():
        test_readme_examples_run_as_written(demo_folder)
    commands = readme_commands("## On a cluster")
    assert len(commands) >= 3
    assert any("--workers" in c for c in commands)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        for words in commands:
            words = [
                cluster.scheduler_address if w == "tcp://scheduler:8786" else w for w in words
            ]
            run_as_written(words, demo_folder)
    assert (demo_folder / "cells_remote.nc").is_file()


def test_readme_python_examples_run_in_the_demo_folder(demo_folder):
    """Every ```python block of the README runs as written in the demo's folder,
    after the command-line examples (which write the files it reads)."""
    if not (demo_folder / "labels.tif").is_file():
        test_readme_examples_run_as_written(demo_folder)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for code in blocks:
        proc = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            cwd=demo_folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{code}\n{proc.stdout}\n{proc.stderr}"


def test_readme_report_examples_run_as_written(demo_folder):
    """The commands of "Quality report", after the command-line examples (whose
    cells_spikes.nc and labels.tif they read)."""
    if not (demo_folder / "cells_spikes.nc").is_file():
        test_readme_examples_run_as_written(demo_folder)
    commands = readme_commands("## Quality report")
    assert len(commands) >= 2 and any(c[1] == "report" for c in commands)
    for words in commands:
        run_as_written(words, demo_folder)
    for name in ("cells_report.html", "quality_control.json", "cells_qc.html",
                 "cells_qc.quality_control.json"):  # fmt: skip
        assert (demo_folder / name).is_file(), name
    qc = json.loads((demo_folder / "quality_control.json").read_text())
    assert qc["report"] == "cells_report.html" and qc["recording"]["n_rois"] > 0
