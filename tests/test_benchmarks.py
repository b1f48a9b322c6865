"""The benchmarks' own helpers (benchmarks/extraction.py and benchmarks/scaling.py):
the movies and ROIs they make, the targets they judge, whether time grows linearly,
and one tiny end-to-end run of each script."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ex():
    return _benchmark("extraction")


@pytest.fixture(scope="module")
def sc():
    return _benchmark("scaling")


# -- data -------------------------------------------------------------------------------
@pytest.mark.parametrize("radius", [3, 4, 9])
def test_make_labels_draws_disks_of_the_given_radius(ex, radius):
    labels = ex.make_labels(6, seed=3, radius=radius)
    area = ex.disk_offsets(radius)[0].size
    ids = np.unique(labels[labels > 0])
    assert ids.tolist() == [1, 2, 3, 4, 5, 6]
    for k in ids:
        ys, xs = np.nonzero(labels == k)
        assert ys.size == area  # 6 disks in 512 x 512: no overlap with this seed
        assert ys.max() - ys.min() == xs.max() - xs.min() == 2 * radius


def test_make_labels_beyond_the_movies_cells_keeps_their_places(ex):
    n = ex.MOVIE_CELLS
    few, more = ex.make_labels(n, 0, 3), ex.make_labels(n + 50, 0, 3)
    assert np.unique(more).size > np.unique(few).size
    # the first n disks are where they were, except where the later ones cover them
    covered = more > n
    assert np.array_equal(few[~covered], more[~covered])


def test_the_cases_have_the_issues_sizes(ex):
    cases = ex.make_cases(quick=False, tiff_gb=12, subset=100)
    a, b, long = cases["A"], cases["B"], cases["L"]
    assert (a.n_frames, a.n_rois, a.radius) == (2000, 500, 6)
    assert (b.n_frames, b.n_rois, b.radius) == (2000, 2000, 4)
    assert long.n_frames >= 20_000 and (long.n_rois, long.radius) == (500, 6)
    assert all(c.in_memory for c in (a, b, long))
    assert set(a.methods) == set(ex.METHOD_NAMES)
    # the notebook routes are timed on a subset where a whole run is too slow
    assert a.subset is None and b.subset == long.subset == 100


def test_write_npy_writes_the_repeated_movie(ex, tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "WRITE_CHUNK", 3)  # chunks that cross repetitions
    path = tmp_path / "movie.npy"
    ex.write_npy(path, 11, 4, seed=1, radius=5)
    expected = np.stack(list(ex.repeated_frames(11, 4, 1, 5)))
    got = np.load(path, mmap_mode="r")
    assert got.dtype == np.int16 and got.shape == (11, 512, 512)
    assert np.array_equal(got, expected)
    assert np.array_equal(got[4], got[0] + 1)


def test_repeating_movie_gives_the_frames_of_repeated_frames(ex, sc):
    pattern = ex.make_movie(7, 2)
    movie = sc.RepeatingMovie(pattern, 23)
    expected = np.stack(list(ex.repeated_frames(23, 7, 2)))
    assert movie.shape == (23, 512, 512) and movie.dtype == np.int16
    assert np.array_equal(movie[:], expected)
    assert np.array_equal(movie.read(5, 19), expected[5:19])
    idx = [22, 0, 7, 7, 13]
    assert np.array_equal(movie[idx], expected[idx])
    assert np.array_equal(movie[-1], expected[-1])
    assert np.array_equal(movie[::5], expected[::5])


def test_repeating_movie_extracts_like_the_array_it_stands_for(ex, sc):
    import roitrace
    from roitrace.extract import run_plan

    pattern = ex.make_movie(5, 0)
    movie = sc.RepeatingMovie(pattern, 17)
    plan = roitrace.plan_extraction(
        ex.make_labels(8, 0), ex.FRAME_SHAPE, method="mean", neuropil=ex.NEUROPIL
    )
    cells, rings = run_plan(movie, plan)
    want_cells, want_rings = run_plan(np.asarray(movie[:]), plan)
    np.testing.assert_array_equal(cells, want_cells)
    np.testing.assert_array_equal(rings, want_rings)


# -- targets ----------------------------------------------------------------------------
def _verdicts(lines):
    """{target line's text before the colon: "met" / "not met" / "not measured"}"""
    out = {}
    for line in lines:
        if not line.startswith("- "):
            continue
        what, _, rest = line[2:].partition(": ")
        if rest.startswith("not measured"):
            out[what] = "not measured"
        else:
            out[what] = rest.split("-> ", 1)[1].split(" (")[0]
    return out


def test_targets_say_met_and_not_met_from_warm_numbers(ex):
    def rows(**fps):
        return {"rows": {k.replace("_", "-"): {"fps": v} for k, v in fps.items()}}

    results = {
        "A": rows(
            roitrace_mean=1000.0,
            roitrace_weighted=790.0,
            roitrace_median=500.0,
            suite2p=100.0,
            floor=2000.0,
            notebook_median=100.0,
        ),
        "B": rows(
            roitrace_mean=400.0,
            roitrace_weighted=900.0,
            roitrace_median=499.0,
            suite2p=100.0,
            floor=1000.0,
            notebook_median=100.0,
        ),
        "C": {
            "case": {"n_frames": 24576},
            "rows": {"roitrace-extract": {"peak_rss_mb": 1100.0}},
        },
    }
    # cold numbers must not count
    results["A"]["rows"]["suite2p"]["fps_cold"] = 1.0
    got = _verdicts(ex.targets(results, quick=False))
    assert got == {
        "roitrace mean >= 10x suite2p, case A": "met",  # exactly 10x
        "roitrace mean >= 10x suite2p, case B": "not met",
        "roitrace mean >= 0.6 of the floor, case A": "not met",  # 0.5
        "roitrace mean >= 0.35 of the floor, case B": "met",  # 0.4
        "roitrace weighted >= 8x suite2p, case A": "not met",  # 7.9
        "roitrace weighted >= 8x suite2p, case B": "met",
        "roitrace median >= 5x notebook median, case A": "met",
        "roitrace median >= 5x notebook median, case B": "not met",  # 4.99
        "12 GB file, roitrace.extract() peak RSS < 1 GiB (1024 MB), case C": "not met",
    }
    del results["B"]
    results["C"]["rows"]["roitrace-extract"]["peak_rss_mb"] = 700.0
    got = _verdicts(ex.targets(results, quick=False))
    assert got["roitrace mean >= 10x suite2p, case B"] == "not measured"
    assert got["12 GB file, roitrace.extract() peak RSS < 1 GiB (1024 MB), case C"] == "met"


# -- scaling: linearity -----------------------------------------------------------------
def test_linearity_compares_time_per_unit_at_both_ends(sc):
    def row(frames, seconds, ns=1.0, rois=500, radius=6):
        return {
            "n_frames": frames,
            "seconds": seconds,
            "ns_per_read": ns,
            "n_rois": rois,
            "radius": radius,
        }

    linear = sc.linearity("frames", [row(2000, 1.0), row(10_000, 5.2), row(50_000, 26.0)])
    assert "1.04x" in linear and "linear (within 25%)" in linear
    worse = sc.linearity("frames", [row(2000, 1.0), row(50_000, 40.0)])
    assert "1.60x" in worse and "faster than linear" in worse
    rois = sc.linearity("ROIs", [row(2000, 1.0, ns=2.0, rois=100), row(2000, 3.0, ns=1.0)])
    assert "0.50x" in rois and "slower than linear" in rois
    assert "not enough points" in sc.linearity("ROIs", [row(2000, 1.0), {"error": "x"}])


# -- end to end, tiny -------------------------------------------------------------------
def _run(script, *args, timeout=300):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--tiny", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_extraction_end_to_end_tiny(tmp_path):
    out = tmp_path / "results.json"
    methods = "roitrace-mean,notebook-mean,floor,suite2p"
    text = _run(
        "extraction.py", "--cases", "A", "--methods", methods, "--repeat", "2", "--out", str(out)
    )
    assert "### Case A" in text and "| roitrace mean |" in text and "## Targets" in text
    rows = json.loads(out.read_text())["results"]["A"]["rows"]
    assert set(rows) == {"roitrace-mean", "notebook-mean", "floor", "suite2p"}
    measured = {m: r for m, r in rows.items() if "fps" in r}
    assert {"roitrace-mean", "notebook-mean", "floor"} <= set(measured)
    for row in measured.values():
        assert row["calls"] == 2 and len(row["seconds_calls"]) == 2  # the same N for all
        assert row["seconds"] == min(row["seconds_calls"])
        assert row["first_s"] > 0 and row["fps_cold"] > 0 and row["import_s"] >= 0
        assert row["calls_agree"]
    assert rows["roitrace-mean"]["max_diff"]["F"] < 1e-9
    assert rows["roitrace-mean"]["max_diff"]["Fneu"] < 1e-9
    assert not rows["roitrace-mean"]["ring_mismatch"]
    # a worker that is no roitrace method does not import roitrace (as suite2p's must not)
    assert rows["notebook-mean"]["imported_roitrace"] is False
    assert rows["floor"]["imported_roitrace"] is False
    assert rows["roitrace-mean"]["imported_roitrace"] is True


def test_scaling_end_to_end_tiny(tmp_path):
    out = tmp_path / "scaling.json"
    text = _run("scaling.py", "--repeat", "1", "--out", str(out))
    assert "| axis | frames |" in text and "Does time grow linearly?" in text
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"frames", "ROIs", "ROI radius"}
    frames = [r["n_frames"] for r in results["frames"]]
    assert frames == [40, 100]  # 100 frames: the 40-frame pattern repeated
    for rows in results.values():
        for row in rows:
            assert row["seconds"] > 0 and row["ns_per_read"] > 0 and row["read_s"] > 0
            assert row["peak_rss_mb"] >= row["baseline_rss_mb"] > row["pattern_mb"]
    radius = results["ROI radius"]
    assert radius[0]["pixels_per_frame"] != radius[1]["pixels_per_frame"]
