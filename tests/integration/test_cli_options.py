"""Options that do not apply, values that make no sense, and the command line's words.

Every case runs the installed ``roitrace`` entry point in a real process, as a user
types it: exit code 2, one line on stderr, no traceback, no output written.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

import roitrace as rt
from conftest import run_roitrace


def roitrace(*args, cwd: Path) -> subprocess.CompletedProcess:
    return run_roitrace(*args, cwd=cwd)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A small many-cell movie (30 Hz), its label image, and an HDF5 copy stored (Y, X, T)."""
    d = tmp_path_factory.mktemp("options")
    sim = rt.simulate(shape=(40, 30), n_frames=60, n_cells=3, seed=3, cell_radius=(4.0, 5.0))
    sim.to_tiff(d / "movie.tif")
    labels = np.zeros((40, 30), np.int32)
    labels[5:10, 5:10] = 1
    labels[20:26, 12:18] = 2
    tifffile.imwrite(d / "labels.tif", labels)
    (d / "broken.tif").write_bytes(b"II*\x00 not really a TIFF")
    with h5py.File(d / "yxt.h5", "w") as f:
        f["imaging"] = np.moveaxis(sim.movie, 0, -1)
    return d


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # an option of another method than the one chosen or implied
        (["rois", "movie.tif", "--method", "otsu", "--k", "5", "-o", "r.zip"], "--k is for"),
        (["rois", "movie.tif", "--method", "otsu", "--q", "3", "-o", "r.zip"], "--q is for"),
        (
            ["rois", "movie.tif", "--threshold", "50", "--q", "90", "--k", "1", "-o", "r.zip"],
            "different threshold methods",
        ),
        (["rois", "movie.tif", "--method", "percentile", "-o", "r.zip"], "needs --q"),
        (["rois", "movie.tif", "--method", "local", "-o", "r.zip"], "needs --block-size"),
        # options that do not apply to the command as given
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--min-size", "5", "-o", "t.csv"],
            "--min-size does not apply with --rois",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--projection",
                "mean",
                "-o",
                "t.csv",
            ],
            "--projection does not apply",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--neuropil-factor",
                "0.5",
                "-o",
                "t.csv",
            ],
            "--neuropil-factor does not apply without a neuropil ring",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--neuropil-min-pixels",
                "350",
                "-o",
                "t.csv",
            ],
            "--neuropil-min-pixels does not apply",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--dataset", "x", "-o", "t.csv"],
            "--dataset is for HDF5 and Zarr movies",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--proportion", "0.2", "-o", "t.csv"],
            "--proportion does not apply to --how mean",
        ),
        (
            ["extract", "movie.tif", "--threshold", "100", "--min-size", "5", "-o", "t.csv"],
            "--min-size does not apply without --auto",
        ),
        (
            ["extract", "movie.tif", "--auto", "--trust-pickle", "-o", "t.csv"],
            "--trust-pickle does not apply without --rois",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--all-rois", "-o", "t.csv"],
            "--all-rois does not apply to ROIs that are not a suite2p folder",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--plane-segmentation",
                "P",
                "-o",
                "t.csv",
            ],
            "--plane-segmentation does not apply to ROIs that are not NWB",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--sex", "M", "-o", "t.csv"],
            "--sex does not apply to .csv output",
        ),
        (["project", "movie.tif", "--kind", "std", "--q", "90", "-o", "p.tif"], "--q does not"),
        # values that make no sense
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--frame-rate", "-30", "-o", "t.csv"],
            "--frame-rate must be > 0",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--frame-rate", "nan", "-o", "t.csv"],
            "--frame-rate must be > 0",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--frame-rate", "inf", "-o", "t.csv"],
            "--frame-rate must be > 0",
        ),
        (["rois", "movie.tif", "--threshold=-inf", "-o", "r.zip"], "--threshold must be finite"),
        (["rois", "movie.tif", "--k", "nan", "-o", "r.zip"], "--k must be finite"),
        (["rois", "movie.tif", "--min-size", "-5", "-o", "r.zip"], "--min-size must be >= 1"),
        (
            ["rois", "movie.tif", "--min-size", "10", "--max-size", "5", "-o", "r.zip"],
            "--min-size 10 is larger than --max-size 5",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--neuropil-gap",
                "1",
                "--neuropil-width",
                "2",
                "--neuropil-factor",
                "nan",
                "-o",
                "t.csv",
            ],
            "--neuropil-factor must be >= 0, got nan",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--rois",
                "labels.tif",
                "--neuropil-gap",
                "-1",
                "--neuropil-width",
                "2",
                "-o",
                "t.csv",
            ],
            "--neuropil-gap must be >= 0",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--sex", "male", "-o", "t.nwb"],
            "for male write M",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--age", "90days", "-o", "t.nwb"],
            "ISO 8601 duration, e.g. P90D",
        ),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "--species", "mouse", "-o", "t.nwb"],
            "for mouse write 'Mus musculus'",
        ),
        # outputs whose format is unknown
        (["project", "movie.tif", "-o", "std.png"], ".png is not a format for an image"),
        (["project", "movie.tif", "-o", "std.csv"], ".csv is not a format for an image"),
        (["project", "movie.tif", "-o", "std"], "-o std has no suffix"),
        (
            ["extract", "movie.tif", "--rois", "labels.tif", "-o", "out"],
            "or a folder ending in /",
        ),
        (["rois", "movie.tif", "-o", "rois.csv"], ".csv is not a format for ROIs"),
        (["project", "movie.tif", "--kind", "percentile", "-o", "p.tif"], "needs --q"),
        (
            ["extract", "movie.tif", "--auto", "--projection", "percentile", "-o", "t.csv"],
            "--projection percentile would need a percentile of its own",
        ),
        (
            ["project", "yxt.h5", "--keep-truncated", "-o", "p.npy"],
            "--keep-truncated is for TIFF files",
        ),
        # values are checked before the movie is read (a damaged movie would fail first)
        (["rois", "broken.tif", "--q", "150", "-o", "r.zip"], "--q must be >= 0 and <= 100"),
        (["rois", "broken.tif", "--block-size", "4", "-o", "r.zip"], "--block-size 4"),
        (["rois", "broken.tif", "--threshold", "nan", "-o", "r.zip"], "--threshold must be"),
        # the command line's words, not Python's
        (
            ["extract", "yxt.h5", "--rois", "labels.tif", "-o", "t.csv"],
            "pass --axes (e.g. --axes YXT)",
        ),
        (
            [
                "extract",
                "movie.tif",
                "--threshold",
                "100",
                "--how",
                "trimmed_mean",
                "--proportion",
                "0.7",
                "-o",
                "t.csv",
            ],
            "--proportion 0.7 is outside [0, 0.5)",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_2(folder, args, message):
    before = set(folder.iterdir())
    proc = roitrace(*args, cwd=folder)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("roitrace: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    said = errors[0].split("roitrace: error:")[1]
    assert not re.search(r"\b[a-z_]+=", said), said  # no Python keyword=value
    for python_word in ("np.newaxis", "neuropil_factor", "truncated=", "frame_rate"):
        assert python_word not in said, said
    assert set(folder.iterdir()) == before  # nothing written


def test_an_option_implies_its_method_and_the_values_used_are_recorded(folder):
    proc = roitrace("extract", "movie.tif", "--auto", "--q", "90", "-o", "q.csv", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    proc = roitrace("extract", "movie.tif", "--auto", "-o", "sigma.csv", cwd=folder)
    assert proc.returncode == 0, proc.stderr

    def threshold(name):
        head = [ln for ln in (folder / name).read_text().splitlines() if ln.startswith("#")]
        (line,) = [ln for ln in head if ln.startswith("# threshold: ")]
        return json.loads(line.removeprefix("# threshold: "))

    assert threshold("q.csv") == {"method": "percentile", "q": 90.0}
    assert threshold("sigma.csv") == {"method": "sigma", "k": 3.0}  # never k: null
    head = (folder / "sigma.csv").read_text()
    assert "# frame_rate: 30" in head


def test_no_frame_rate_is_left_out_not_written_as_zero(folder, tmp_path):
    sim = rt.simulate(shape=(20, 20), n_frames=30, n_cells=1, seed=1)
    tifffile.imwrite(tmp_path / "plain.tif", sim.movie)  # no frame rate recorded
    labels = np.zeros((20, 20), np.int32)
    labels[5:9, 5:9] = 1
    np.save(tmp_path / "labels.npy", labels)
    proc = roitrace("extract", "plain.tif", "--rois", "labels.npy", "-o", "t.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "frame_rate" not in (tmp_path / "t.csv").read_text()
    ds = rt.extract(sim.movie, labels)
    assert "frame_rate" not in ds.attrs and "time" not in ds.coords


def test_whole_frame_threshold_warns_and_wording_is_singular(folder):
    proc = roitrace("rois", "movie.tif", "--k", "-100", "-o", "all.tif", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "whole frame is selected" in proc.stderr
    assert "1 ROI (1200 pixels)" in proc.stdout
    proc = roitrace("project", "movie.tif", "--frames", "0:10", "-o", "p10.tif", cwd=folder)
    assert "of 10 frames" in proc.stdout, proc.stdout
    proc = roitrace(
        "extract", "movie.tif", "--rois", "labels.tif", "--frames", "3:4", "-o", "one.csv",
        cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 ROIs, 61 pixels; 1 frame ->" in proc.stdout
    assert "warning" not in proc.stderr  # no numpy "Degrees of freedom" leaking


def test_auto_leaves_out_specks_by_default_and_says_so(folder, tmp_path):
    from conftest import data_path

    mouse = data_path("thunder-mouse", "mouse.tif")
    proc = roitrace("rois", mouse, "--q", "90", "-o", "r.zip", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "components of under 10 pixels" in proc.stderr
    rois = rt.read_rois(tmp_path / "r.zip", shape=(64, 64))
    assert min(r.npix for r in rois) >= 10
    proc = roitrace("rois", mouse, "--q", "90", "--min-size", "1", "-o", "all.zip", cwd=tmp_path)
    assert len(rt.read_rois(tmp_path / "all.zip", shape=(64, 64))) > len(rois)


def test_plane_segmentation_option_picks_the_table(folder, tmp_path):
    proc = roitrace("rois", folder / "movie.tif", "--q", "90", "-o", "seg.nwb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (name,) = rt.read_rois(tmp_path / "seg.nwb").meta.get("plane_segmentation", "x").split()[-1:]
    ok = roitrace(
        "extract", folder / "movie.tif", "--rois", "seg.nwb", "--plane-segmentation", name,
        "-o", "t.csv", cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = roitrace(
        "extract", folder / "movie.tif", "--rois", "seg.nwb", "--plane-segmentation", "Nope",
        "-o", "t2.csv", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--plane-segmentation Nope" in bad.stderr and "plane_segmentation" not in bad.stderr


# -- the same rules in Python --------------------------------------------------------------
def test_python_options_that_do_not_apply_are_errors():
    movie = np.random.default_rng(0).poisson(100, (20, 12, 12)).astype(np.uint16)
    mask = np.zeros((12, 12), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(rt.ParameterError, match="proportion is used only with"):
        rt.extract(movie, mask, proportion=0.2)
    with pytest.raises(rt.ParameterError, match="neuropil_factor is used only with"):
        rt.extract(movie, mask, neuropil_factor=0.5)
    with pytest.raises(rt.ParameterError, match="neuropil_factor must be >= 0"):
        rt.extract(movie, mask, neuropil={"gap": 1, "width": 1}, neuropil_factor=float("nan"))
    image = rt.projection(movie, "std")
    with pytest.raises(rt.ParameterError, match="q= is for method='percentile'"):
        rt.threshold(image, method="sigma", q=5)
    with pytest.raises(rt.ParameterError, match="k= is for method='sigma'"):
        rt.threshold(image, method="otsu", k=2)
    with pytest.raises(rt.ParameterError, match="value must be finite"):
        rt.threshold(image, -np.inf)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "absolute", "value": 100.0},
        {"method": "percentile", "q": 80},
        {"method": "sigma"},
        {"method": "otsu"},
        {"method": "li"},
        {"method": "triangle"},
        {"method": "local", "block_size": 5},
    ],
)
def test_nan_pixels_are_left_out_of_every_method_alike(kwargs):
    rng = np.random.default_rng(1)
    image = rng.normal(100, 10, (24, 24))
    image[8:14, 8:14] += 60
    holes = image.copy()
    holes[0, :3] = np.nan
    holes[20, 20] = np.inf
    with pytest.warns(UserWarning, match="holds 4 NaN or infinite pixels"):
        mask = rt.threshold(holes, **kwargs)
    assert not mask[0, :3].any() and not mask[20, 20]
    finite = np.isfinite(holes)
    value = rt.masks.threshold_value(holes, kwargs.get("value"), **_rest(kwargs))
    if np.ndim(value) == 0:  # global methods: computed from the finite pixels alone
        ref = rt.masks.threshold_value(
            holes[finite].reshape(1, -1), kwargs.get("value"), **_rest(kwargs)
        )
        assert value == pytest.approx(ref)
        assert np.array_equal(mask, finite & (holes > value))
    with pytest.raises(rt.ParameterError, match=r"every pixel .* is NaN"):
        rt.threshold(np.full((4, 4), np.nan), **kwargs)


def _rest(kwargs):
    return {k: v for k, v in kwargs.items() if k != "value"}


def test_dff_warning_counts_and_speaks_of_what_was_used():
    movie = np.zeros((30, 10, 10))
    movie[:, 2:4, 2:4] = np.linspace(-5, 5, 30)[:, None, None]
    labels = np.zeros((10, 10), int)
    labels[2:4, 2:4] = 1
    with pytest.warns(UserWarning) as record:
        rt.extract(movie, labels)
    (w,) = [str(r.message) for r in record if "F0" in str(r.message)]
    assert w.startswith("1 of 1 ROIs (1)") and "neuropil_factor" not in w


def test_rois_outside_the_frame_suggest_axes_on_the_real_recording(tmp_path):
    from conftest import data_path

    h5 = data_path("sima", "example.h5")
    zip_ = data_path("sima", "imageJ_ROIs.zip")
    proc = roitrace(
        "extract", h5, "--dataset", "imaging", "--rois", zip_, "-o", "t.csv", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "pass --axes (e.g. --axes YXT)" in proc.stderr and "shape=" not in proc.stderr
    proc = roitrace(
        "extract", h5, "--dataset", "imaging", "--axes", "YXT", "--rois", zip_, "-o", "t.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_npy_output_with_an_upper_case_suffix_lands_under_its_name(folder, tmp_path):
    proc = roitrace("project", folder / "movie.tif", "-o", "std.NPY", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["std.NPY", "std.NPY.json"]
    assert np.load(tmp_path / "std.NPY").shape == (40, 30)


def test_python_save_without_a_suffix_is_a_suite2p_folder(tmp_path):
    # a pathlib.Path cannot end with "/": in Python no suffix means a folder, as documented
    ds = rt.extract(np.ones((3, 4, 4)), np.eye(4, dtype=bool))
    rt.save(ds, tmp_path / "out")
    assert (tmp_path / "out" / "F.npy").is_file()
    rt.save(ds, f"{tmp_path / 'out2'}/")
    assert (tmp_path / "out2" / "F.npy").is_file()


def test_label_images_record_the_version(folder, tmp_path):
    proc = roitrace("rois", folder / "movie.tif", "--q", "90", "-o", "labels.tif", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with tifffile.TiffFile(tmp_path / "labels.tif") as tif:
        assert tif.shaped_metadata[0]["roitrace_version"] == rt.__version__


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--how", "meen"], "Invalid value for '--how': 'meen' is not one of 'mean'"),
        (["--neuropil-gab", "2"], "No such option: --neuropil-gab (Possible options:"),
    ],
)
def test_command_line_syntax_mistakes_are_one_line(tmp_path, args, said):
    """Mistakes click finds (a bad choice, an unknown option): one line, exit 2,
    as every other mistake."""
    from conftest import run_roitrace

    movie = tmp_path / "m.npy"
    np.save(movie, np.ones((5, 8, 8), np.uint16))
    out = run_roitrace("extract", str(movie), "--k", "3", "-o", str(tmp_path / "t.csv"), *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and said in out.stderr, out.stderr
    assert "Value error" not in out.stderr and "Traceback" not in out.stderr


def test_rois_figure_without_a_projection_option(tmp_path):
    """rois --figure draws on the default std projection (it crashed without --projection)."""
    from conftest import run_roitrace

    sim = rt.simulate(shape=(40, 40), n_frames=60, n_cells=3, seed=3)
    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, sim.movie)
    out = run_roitrace(
        "rois", str(movie), "--method", "otsu", "-o", str(tmp_path / "r.zip"),
        "--figure", str(tmp_path / "r.png"), "--no-progress",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.png").is_file() and (tmp_path / "r.zip").is_file()


def test_figures_in_the_suite2p_output_folder_are_refused(tmp_path):
    from conftest import run_roitrace

    movie = tmp_path / "m.npy"
    np.save(movie, np.ones((5, 8, 8), np.uint16))
    out_dir = tmp_path / "out"
    out = run_roitrace(
        "extract", str(movie), "--k", "3", "-o", f"{out_dir}/", "--figures", str(out_dir)
    )
    assert out.returncode == 2 and "is the -o/--output folder" in out.stderr, out.stderr
    assert not out_dir.exists()
