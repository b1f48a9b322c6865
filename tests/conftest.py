"""Shared fixtures: the real recordings in ../shared/data, skipped when absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_path(*parts: str) -> Path:
    """Path of a file in ../shared/data; skip the test when it is not there."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data {p} is absent (../shared/data is not beside this checkout)")
    return p


@pytest.fixture(scope="session")
def mouse_path() -> Path:
    return data_path("thunder-mouse", "mouse.tif")


@pytest.fixture(scope="session")
def single_cell(mouse_path: Path) -> np.ndarray:
    """A "single cell" movie like the notebook's: a 28 x 28 crop of the Thunder mouse
    recording around one active soma (centre at row 27, column 29), scaled by 10
    into uint16 so that the notebook's thresholds (std > 1000, mean > 2000...) fall
    inside its range as they do in the notebook's own data."""
    import tifffile

    raw = tifffile.imread(mouse_path)
    return (raw[:, 13:41, 15:43].astype(np.int32) * 10).astype(np.uint16)


@pytest.fixture(scope="session")
def single_cell_tif(single_cell: np.ndarray, tmp_path_factory) -> Path:
    """The same movie written as a TIFF, so the file readers are exercised too."""
    import tifffile

    path = tmp_path_factory.mktemp("single") / "single_cell.tif"
    tifffile.imwrite(path, single_cell)
    return path


def crowded_disks(size: int, n: int, seed: int, *, margin: int = 0) -> np.ndarray:
    """A (size, size) label image of ``n`` disks of radius 3 at random places (a later
    disk wins overlaps): a crowded field whose neuropil rings overlap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    for i in range(n):
        cy, cx = rng.integers(margin, size - margin, 2)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = i + 1
    return labels


def run_roitrace(*args, cwd=None, cap: int | None = None, timeout: float = 300):
    """Run the installed command line in a real process (``python -m roitrace``), as a
    user types it, optionally under an address-space cap of ``cap`` bytes."""
    import subprocess
    import sys

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return subprocess.run(
        [sys.executable, "-m", "roitrace", *map(str, args), "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit if cap else None,
    )


def roifile_bytes(roi, name: str) -> bytes:
    """The ImageJ ROI roitrace wrote with roifile before it wrote them itself: its
    outline along the pixel edges as a traced polygon, or a composite of outlines."""
    import roifile

    from roitrace.io.imagej import _pixel_loops

    loops = _pixel_loops(np.asarray(roi.y), np.asarray(roi.x))
    if len(loops) == 1:
        pts = loops[0].astype(np.int32)
        out = roifile.ImagejRoi.frompoints(pts, name=name)
        out.roitype = roifile.ROI_TYPE.TRACED
        out.options = roifile.ROI_OPTIONS.NONE
        out.right = int(pts[:, 0].max())
        out.bottom = int(pts[:, 1].max())
        return out.tobytes()
    parts = []
    for loop in loops:
        seg = np.ones((len(loop), 3), np.float32)
        seg[0, 0] = 0
        seg[:, 1:] = loop
        parts += [seg.ravel(), np.array([4], np.float32)]
    allpts = np.concatenate(loops)
    out = roifile.ImagejRoi()
    out.roitype = roifile.ROI_TYPE.RECT
    out.multi_coordinates = np.concatenate(parts)
    out.shape_roi_size = int(out.multi_coordinates.size)
    out.left, out.top = (int(v) for v in allpts.min(axis=0))
    out.right, out.bottom = (int(v) for v in allpts.max(axis=0))
    out.name = name
    return out.tobytes()
