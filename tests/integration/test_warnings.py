"""Warnings point at the caller's line, whatever the path through roitrace.

A warning raised deep inside ``extract()`` (a neuropil ring grown to ``min_pixels``,
a dF/F baseline <= 0, a TIFF whose extra axes are flattened into time) names the
file and line of the user's call, as ``warnings`` filters and ``pytest.warns`` see
them, not a line of roitrace's own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import roitrace as rt
from roitrace.neuropil import neuropil_rings

HERE = str(Path(__file__).resolve())


def _next_line() -> int:
    """The line after the caller's: the call under test."""
    return sys._getframe(1).f_lineno + 1


def _check(records, match: str, line: int) -> None:
    """Every warning matching ``match`` was attributed to this file, at ``line``."""
    hits = [r for r in records if match in str(r.message)]
    assert hits, [str(r.message) for r in records]
    for r in hits:
        assert (str(Path(r.filename).resolve()), r.lineno) == (HERE, line), str(r.message)


@pytest.fixture
def small_cell():
    movie = np.random.default_rng(0).poisson(50, (20, 12, 12)).astype(np.int16)
    mask = np.zeros((12, 12), bool)
    mask[5:7, 5:7] = True
    return movie, mask


def test_ring_grown_to_min_pixels_through_extract(small_cell):
    movie, mask = small_cell
    with pytest.warns(UserWarning, match="fewer than min_pixels") as rec:
        line = _next_line()
        rt.extract(movie, mask, neuropil={"gap": 1, "width": 1, "min_pixels": 350})
    _check(rec, "fewer than min_pixels", line)


def test_ring_grown_to_min_pixels_called_directly(small_cell):
    _, mask = small_cell
    rois = rt.RoiSet.from_masks([mask])
    with pytest.warns(UserWarning, match="fewer than min_pixels") as rec:
        line = _next_line()
        neuropil_rings(rois, gap=1, width=1, min_pixels=350)
    _check(rec, "fewer than min_pixels", line)


def test_dff_baseline_warning_through_extract(small_cell):
    movie, mask = small_cell
    with pytest.warns(UserWarning, match="so their dff is NaN") as rec:
        line = _next_line()
        rt.extract(movie - 100, mask)  # an offset: F, and so F0, below 0
    _check(rec, "so their dff is NaN", line)


@pytest.fixture
def tzyx_tif(tmp_path):
    data = np.random.default_rng(1).poisson(50, (10, 3, 12, 12)).astype(np.uint16)
    path = tmp_path / "tzyx.tif"
    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TZYX"})
    return path


def test_tiff_flattened_axes_through_open_movie(tzyx_tif):
    with pytest.warns(UserWarning, match="flattened into time") as rec:
        line = _next_line()
        movie = rt.open_movie(tzyx_tif)
    movie.close()
    _check(rec, "flattened into time", line)


def test_tiff_flattened_axes_through_extract(tzyx_tif, small_cell):
    _, mask = small_cell
    with pytest.warns(UserWarning, match="flattened into time") as rec:
        line = _next_line()
        rt.extract(tzyx_tif, mask)
    _check(rec, "flattened into time", line)


def test_threshold_selecting_the_whole_frame():
    with pytest.warns(UserWarning, match="the whole frame is selected") as rec:
        line = _next_line()
        rt.threshold(np.full((4, 4), 5.0), 1.0)
    _check(rec, "the whole frame is selected", line)


def test_warn_user_outside_roitrace_points_at_its_caller():
    from roitrace._warnings import warn_user

    with pytest.warns(RuntimeWarning, match="plain") as rec:
        line = _next_line()
        warn_user("plain", RuntimeWarning)
    _check(rec, "plain", line)


def test_many_short_rings_are_one_warning():
    """Rings that stay under min_pixels: one warning naming them, not one per ROI."""
    labels = np.zeros((30, 30), int)
    for k in range(12):
        labels[2 + (k // 4) * 9 : 5 + (k // 4) * 9, 2 + (k % 4) * 7 : 5 + (k % 4) * 7] = k + 1
    with pytest.warns(UserWarning) as rec:
        rt.extract(
            np.ones((5, 30, 30)), labels, neuropil={"gap": 1, "width": 1, "min_pixels": 10**5}
        )
    short = [r for r in rec if "fewer than min_pixels" in str(r.message)]
    assert len(short) == 1, [str(r.message) for r in rec]
    assert str(short[0].message).startswith("12 of 12 ROIs have neuropil rings with fewer than")
    assert "ROI 1 (" in str(short[0].message) and str(short[0].message).endswith(", ...")
