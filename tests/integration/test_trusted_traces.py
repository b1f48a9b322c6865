"""extract() with an estimated neuropil factor, a running baseline and deconvolution:
what it stores, that every format keeps it, and the command line's options for it."""

from __future__ import annotations

import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal

import roitrace as rt
from conftest import run_roitrace
from roitrace.normalize import noise_level

RING = {"gap": 2, "width": 3}


@pytest.fixture(scope="module")
def sim():
    """12 cells whose contamination is drawn from 0.3-1.0, with 30 % bleaching."""
    return rt.simulate(
        shape=(96, 96),
        n_frames=3000,
        n_cells=12,
        seed=5,
        bleach_fraction=0.3,
        contamination=(0.3, 1.0),
    )


@pytest.fixture(scope="module")
def movie(sim):
    return rt.as_movie(sim.movie, frame_rate=sim.frame_rate)


@pytest.fixture(scope="module")
def trusted(movie, sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one ROI may not converge: its own test below
        return rt.extract(
            movie,
            sim.labels,
            neuropil=RING,
            neuropil_factor="estimate",
            baseline={"method": "maximin", "window": "30s"},
            deconvolve=True,
        )


# -- what extract stores -------------------------------------------------------------------
def test_estimated_factor_is_per_roi_near_the_truth_and_used(trusted, sim):
    r = trusted["neuropil_factor"].values
    assert r.shape == (12,) and trusted["neuropil_converged"].dtype == bool
    assert np.median(np.abs(r - sim.contamination)) < 0.1
    expected = trusted["F"].values - r[:, None] * trusted["Fneu"].values
    assert_allclose(trusted["F_corrected"].values, expected, rtol=0, atol=1e-9)
    assert "estimate" in trusted["F_corrected"].attrs["formula"]
    assert rt.result.result_parameters(trusted)["neuropil_factor"] == "estimate"


def test_an_unconverged_factor_is_filled_and_named_by_roi_id():
    rng = np.random.default_rng(0)
    n = 400 + np.cumsum(rng.normal(0, 5, 600))  # neuropil, the same in cell and ring
    data = np.empty((600, 21, 21))
    data[:] = n[:, None, None] + rng.normal(0, 1, (600, 21, 21))
    data[:, 8:13, 8:13] += n[:, None, None]  # the cell holds twice the neuropil: r = 2
    labels = np.zeros((21, 21), int)
    labels[8:13, 8:13] = 7
    with pytest.warns(UserWarning, match=r"did not converge for 1 of 1 ROIs \(7\).*0\.7"):
        ds = rt.extract(data, labels, neuropil=RING, neuropil_factor="smoothness")
    assert not ds["neuropil_converged"].values[0] and ds["neuropil_factor"].values[0] == 0.7


def test_estimate_beats_a_fixed_factor_on_the_truth(movie, sim, trusted):
    fixed = rt.extract(movie, sim.labels, neuropil=RING)
    assert_array_equal(fixed["neuropil_factor"].values, np.full(12, 0.7))
    assert "neuropil_converged" not in fixed.coords

    # F_corrected's shape changes little with r (correlations with the truth are all
    # ~0.95): the amount of neuropil left in it does
    truth = sim.contamination
    err = np.abs(trusted["neuropil_factor"].values - truth)
    assert np.median(err) < 0.5 * np.median(np.abs(0.7 - truth))


def test_running_baseline_noise_and_dff_stored_together(trusted):
    f0 = trusted["F0"].values
    signal = trusted["F_corrected"].values
    assert f0.shape == signal.shape and np.ptp(f0[0]) > 0  # it follows the bleaching
    assert_allclose(trusted["dff"].values, (signal - f0) / f0, rtol=1e-12)
    assert_allclose(trusted["noise"].values, noise_level(signal))
    assert "maximin" in trusted["dff"].attrs["baseline"]
    assert "900 frames" in trusted["F0"].attrs["baseline"]  # 30 s at 30 Hz


def test_deconvolution_adds_calcium_and_spikes(trusted, sim):
    spikes, calcium = trusted["spikes"].values, trusted["calcium"].values
    assert spikes.shape == calcium.shape == trusted["dff"].shape
    assert np.all(spikes >= 0)
    r = [np.corrcoef(calcium[k], sim.traces[k])[0, 1] for k in range(12)]
    assert np.median(r) > 0.95
    assert "OASIS AR1" in trusted["spikes"].attrs["deconvolution"]
    params = rt.result.result_parameters(trusted)
    assert params["deconvolve"] == {"model": "ar1", "penalty": "l1", "tau": None}


def test_percentile_default_keeps_a_flat_f0_and_no_spikes(movie, sim):
    ds = rt.extract(movie, sim.labels)
    assert np.all(np.ptp(ds["F0"].values, axis=1) == 0)
    assert "spikes" not in ds and "neuropil_factor" not in ds.coords
    assert rt.result.result_parameters(ds)["deconvolve"] is None


def test_a_constant_dff_is_named_by_roi_id():
    data = np.full((200, 10, 10), 100.0)
    data[:, 1:4, 1:4] += np.random.default_rng(0).normal(0, 1, (200, 3, 3))
    labels = np.zeros((10, 10), int)
    labels[1:4, 1:4], labels[6:9, 6:9] = 4, 9
    with pytest.warns(UserWarning, match="the dff of ROIs 9 is constant") as rec:
        ds = rt.extract(data, labels, deconvolve=True)
    assert not any("traces of ROIs" in str(w.message) for w in rec)  # said once, by id
    assert np.all(ds["spikes"].values[1] == 0)


def test_rois_whose_f0_is_not_positive_get_nan_spikes_not_an_error():
    data = np.full((200, 10, 10), 100.0)
    data[:, 1:4, 1:4] += np.random.default_rng(0).normal(0, 1, (200, 3, 3))
    data[:, 6:9, 6:9] = np.random.default_rng(1).normal(0, 1, (200, 3, 3))  # F0 < 0
    labels = np.zeros((10, 10), int)
    labels[1:4, 1:4], labels[6:9, 6:9] = 1, 2
    with pytest.warns(UserWarning, match="ROIs \\(2\\)"):
        ds = rt.extract(data, labels, deconvolve=True)
    assert np.isnan(ds["spikes"].values[1]).all() and np.isfinite(ds["spikes"].values[0]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"neuropil": RING, "neuropil_factor": "allen"}, "use one of estimate"),
        ({"neuropil_factor": "estimate"}, "only with a neuropil ring"),
        ({"deconvolve": {"tau": 0.5}}, "records no frame rate"),
        ({"deconvolve": {"model": "ar3"}}, "ar1, ar2"),
        ({"baseline": {"method": "maximin"}}, "needs a window"),
        ({"baseline": {"method": "maximin", "q": 5}}, "q=5 does not apply"),
    ],
)
def test_mistakes_are_refused_before_reading(sim, kwargs, message):
    with pytest.raises(rt.ParameterError, match=message):
        rt.extract(sim.movie, sim.labels, **kwargs)


# -- every format keeps it -----------------------------------------------------------------
def test_netcdf_keeps_everything(trusted, tmp_path):
    back = rt.load(rt.save(trusted, tmp_path / "t.nc"))
    for v in ("F0", "dff", "calcium", "spikes"):
        assert_array_equal(back[v].values, trusted[v].values)
    for c in ("neuropil_factor", "neuropil_converged", "noise"):
        assert_array_equal(back[c].values, trusted[c].values)


def test_csv_has_per_roi_columns(trusted, tmp_path):
    path = rt.save(trusted, tmp_path / "t.csv")
    header = next(ln for ln in path.read_text().splitlines() if not ln.startswith("#"))
    assert header.endswith(
        "F0,dff,calcium,spikes,neuropil_factor,neuropil_converged,noise,deconvolution_noise"
    )
    back = rt.load(path)
    assert_array_equal(back["neuropil_factor"].values, trusted["neuropil_factor"].values)
    assert_array_equal(back["neuropil_converged"].values, trusted["neuropil_converged"].values)
    assert_array_equal(back["spikes"].values, trusted["spikes"].values)


def test_nwb_keeps_series_and_columns(trusted, tmp_path):
    pytest.importorskip("pynwb")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left out
        path = rt.save(trusted, tmp_path / "t.nwb")
    back = rt.load(path)
    for v in ("F0", "calcium", "spikes"):
        assert_allclose(back[v].values, trusted[v].values)
    assert_allclose(back["neuropil_factor"].values, trusted["neuropil_factor"].values)
    assert_array_equal(
        back["neuropil_converged"].values.astype(bool), trusted["neuropil_converged"]
    )
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        ophys = io.read().processing["ophys"]
        assert set(ophys["Deconvolved"].roi_response_series) == {"calcium", "spikes"}
        assert "F0" in ophys["Fluorescence"].roi_response_series


def test_suite2p_spks_are_the_spikes(trusted, tmp_path):
    folder = rt.save(trusted, str(tmp_path / "plane0") + "/")
    assert_allclose(np.load(folder / "spks.npy"), trusted["spikes"].values.astype(np.float32))
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    assert_allclose(ops["neuropil_factor"], trusted["neuropil_factor"].values)
    assert "neucoeff" not in ops  # one per ROI, not one for all
    back = rt.load(folder, allow_pickle=True)
    for v in ("F0", "calcium", "spikes"):
        assert_allclose(back[v].values, trusted[v].values.astype(np.float32))
    for c in ("neuropil_factor", "neuropil_converged", "noise", "deconvolution_noise"):
        assert_array_equal(back[c].values, trusted[c].values)
    assert "spikes" not in rt.load(folder)  # without ops.npy, spks.npy may be zeros


def test_suite2p_zeros_are_not_read_as_spikes(movie, sim, tmp_path):
    ds = rt.extract(movie, sim.labels, neuropil=RING)
    folder = rt.save(ds, str(tmp_path / "plane0") + "/")
    back = rt.load(folder, allow_pickle=True)
    assert "spikes" not in back and back["neuropil_factor"].values.tolist() == [0.7] * 12
    assert np.load(folder / "ops.npy", allow_pickle=True).item()["neucoeff"] == 0.7


def test_events_from_a_result_use_its_roi_ids_and_noise(trusted):
    events = rt.detect_events(trusted["spikes"])
    assert set(events["roi"]) <= set(trusted["roi"].values.tolist()) and len(events) > 50
    assert np.isfinite(events["time"]).all()  # from the result's time coordinate
    with pytest.raises(rt.ParameterError, match="whole Dataset"):
        rt.detect_events(trusted)
    with pytest.raises(rt.ParameterError, match="whole Dataset"):
        rt.deconvolve(trusted)
    one = rt.deconvolve(trusted["dff"].T)  # (time, roi): time found by its name
    assert one.spikes.shape == trusted["dff"].shape


def test_inactive_median_warns_where_f0_is_not_positive(movie, sim):
    with pytest.warns(UserWarning, match="divides by the noise there"):
        ds = rt.extract(
            movie,
            sim.labels,
            neuropil=RING,
            neuropil_factor=3.0,
            baseline={"method": "inactive_median", "window": 301},
        )
    assert np.isfinite(ds["dff"].values).all()


def test_trace_stages_refuses_a_truth_of_another_length(trusted):
    from roitrace.plot import trace_stages

    with pytest.raises(rt.ShapeMismatchError, match="one value per time point"):
        trace_stages(trusted, truth=[1.0, 2.0, 3.0])


def test_neuropil_coefficient_refuses_the_other_methods_options(trusted):
    F, Fneu = trusted["F"].values, trusted["Fneu"].values
    with pytest.raises(rt.ParameterError, match="lam= is for another method"):
        rt.neuropil_coefficient(F, Fneu, method="regression", lam=0.1)
    with pytest.raises(rt.ParameterError, match="q=, smooth= are for another method"):
        rt.neuropil_coefficient(F, Fneu, method="smoothness", q=5, smooth=3)


# -- the command line -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory, sim) -> Path:
    d = tmp_path_factory.mktemp("trusted")
    small = rt.simulate(shape=(48, 48), n_frames=900, n_cells=4, seed=2, contamination=(0.4, 0.9))
    small.to_tiff(d / "movie.tif")
    import tifffile

    tifffile.imwrite(d / "labels.tif", small.labels.astype(np.int32))
    return d


def test_cli_estimate_running_baseline_and_deconvolve(folder):
    proc = run_roitrace(
        "extract", "movie.tif", "--rois", "labels.tif", "--neuropil-gap", "2",
        "--neuropil-width", "3", "--neuropil-factor", "estimate", "--baseline", "maximin",
        "--baseline-window", "10s", "--deconvolve", "-o", "t.nc", cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ds = xr.load_dataset(folder / "t.nc")
    assert "spikes" in ds and ds["neuropil_converged"].size == 4
    assert "300 frames" in ds["F0"].attrs["baseline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline-sigma", "3"], "--baseline-sigma does not apply without --baseline"),
        (["--deconvolve-tau", "0.5"], "--deconvolve-tau does not apply without --deconvolve"),
        (
            ["--neuropil-gap", "2", "--neuropil-width", "3", "--neuropil-factor", "allen"],
            "--neuropil-factor allen: give a number",
        ),
        (["--baseline", "maximin", "--baseline-q", "5"], "--baseline-q 5.0 does not apply"),
        (["--baseline", "maximin", "--baseline-window", "ten"], "--baseline-window"),
        (["--deconvolve", "--deconvolve-tau", "0.1,x"], "--deconvolve-tau 0.1,x"),
        (
            ["--baseline", "maximin"],
            "--baseline maximin: the default window (1800 frames) is not shorter",
        ),
        (
            ["--baseline", "inactive_median", "--baseline-window", "300"],
            "--baseline inactive_median needs an odd window",
        ),
        (
            ["--baseline", "percentile", "--baseline-sigma", "2"],
            "which takes --baseline-window, --baseline-q; leave --baseline-sigma out",
        ),
        (
            ["--deconvolve", "--deconvolve-model", "ar2", "--deconvolve-tau", "0.5"],
            "--deconvolve-model ar2 takes (rise, decay)",
        ),
    ],
)
def test_cli_mistakes_are_one_line(folder, args, message):
    before = set(folder.iterdir())
    proc: subprocess.CompletedProcess = run_roitrace(
        "extract", "movie.tif", "--rois", "labels.tif", *args, "-o", "bad.csv", cwd=folder
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("roitrace: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    said = errors[0].split("roitrace: error:")[1]
    assert not re.search(r"\b[a-z_]+=", said), said
    assert set(folder.iterdir()) == before


def test_python_batch_takes_the_new_columns(folder, tmp_path):
    rows = [
        {
            "movie": str(folder / "movie.tif"),
            "output": str(tmp_path / "b.nc"),
            "rois": str(folder / "labels.tif"),
            "neuropil_gap": 2,
            "neuropil_width": 3,
            "neuropil_factor": "regression",
            "baseline": "rolling_percentile",
            "baseline_window": "10s",
            "deconvolve": "true",
            "deconvolve_penalty": "l0",
        }
    ]
    (record,) = rt.batch(rows)
    assert record.status == "ok", record
    ds = xr.load_dataset(tmp_path / "b.nc")
    assert "spikes" in ds and "rolling" in ds["dff"].attrs["baseline"]
    bad = [{**rows[0], "deconvolve": "false", "output": str(tmp_path / "c.nc")}]
    with pytest.raises(rt.ParameterError, match="without deconvolve=true"):
        rt.batch(bad)
