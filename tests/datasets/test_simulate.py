"""The simulator: shapes and ground truth, determinism, the physics it claims, and
that its movies tell good trace-extraction methods from bad ones."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose, assert_array_equal
from skimage.morphology import dilation, disk

from roitrace.datasets.simulate import LABEL_THRESHOLD, Simulation, simulate
from roitrace.errors import ParameterError, RoitraceError

# roitrace/__init__ binds the name `simulate` to the function; this is the module.
sim_module = importlib.import_module("roitrace.datasets.simulate")

SEED = 0


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(seed=SEED)


@pytest.fixture(scope="module")
def movie(sim: Simulation) -> np.ndarray:
    return sim.movie.astype(np.float64)


# -- shapes, dtypes, labels --------------------------------------------------------------
def test_shapes_and_dtypes(sim):
    t, (y, x), n = 1000, (64, 64), 5
    assert isinstance(sim, Simulation)
    assert sim.movie.shape == sim.shape == (t, y, x)
    assert sim.movie.dtype == np.uint16
    assert sim.labels.shape == (y, x) and sim.labels.dtype == np.int32
    assert sim.footprints.shape == (n, y, x) and sim.footprints.dtype == np.float32
    assert sim.traces.shape == sim.spikes.shape == sim.neuropil.shape == (n, t)
    assert sim.resting.shape == (n,)
    assert sim.centers.shape == sim.radii.shape == (n, 2)
    assert sim.bleaching.shape == (t,)
    assert sim.n_cells == n and sim.n_frames == t
    assert sim.frame_rate == 30.0 and sim.seed == SEED
    assert_allclose(sim.time, np.arange(t) / 30.0)
    assert sim.time[-1] == pytest.approx((t - 1) / 30.0)
    assert "n_cells=5" in repr(sim) and "seed=0" in repr(sim)


def test_default_values_are_realistic_counts(sim):
    # Two-photon-like counts: hundreds to a few thousands, far from the uint16 limits
    # (so nothing was clipped).
    lo, median, hi = np.percentile(sim.movie, [0.1, 50, 99.9])
    assert 50 < lo < median < hi < 6000
    assert 200 < median < 1500
    assert sim.movie.min() > 0 and sim.movie.max() < 65535


def test_params_record_every_argument(sim):
    import inspect

    names = set(inspect.signature(simulate).parameters)
    assert set(sim.params) == names
    assert sim.params["seed"] == SEED and sim.params["dtype"] == "uint16"
    assert sim.params["cell_radius"] == (4.0, 7.0)


def test_arrays_are_read_only(sim):
    with pytest.raises(ValueError, match="read-only"):
        sim.movie[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        sim.traces[0, 0] = 1.0


def test_labels_are_the_cells(sim):
    assert np.unique(sim.labels).tolist() == list(range(sim.n_cells + 1))
    assert (sim.labels == 0).mean() > 0.5  # most of the frame is background


def test_labels_match_the_footprints(sim):
    fp = sim.footprints
    qualifies = fp >= LABEL_THRESHOLD
    brightness = np.where(qualifies, fp * sim.resting[:, None, None], 0.0)
    expected = np.where(qualifies.any(axis=0), brightness.argmax(axis=0) + 1, 0)
    assert_array_equal(sim.labels, expected)
    # Every cell keeps most of its own soma: neighbours touch, none hides another.
    for k in range(sim.n_cells):
        assert (sim.labels == k + 1).sum() >= 0.6 * qualifies[k].sum()


def test_footprints_are_soft_donuts_inside_the_frame(sim):
    fp = sim.footprints
    assert_allclose(fp.max(axis=(1, 2)), 1.0)
    assert fp.min() >= 0.0
    for k, ((cy, cx), (major, minor)) in enumerate(zip(sim.centers, sim.radii, strict=True)):
        assert minor <= major and 4.0 <= major <= 7.0
        assert major <= cy <= 63 - major and major <= cx <= 63 - major
        # GCaMP stays out of the nucleus: the centre is dimmer than the cytoplasm.
        # (Less so for small cells, whose nucleus is blurred by the soft edges.)
        assert fp[k, round(cy), round(cx)] < 0.75
        # Soft edge: a rim of values below the nucleus' level, not a step to 0.
        rim = (fp[k] > 0.02) & (fp[k] < 0.3)
        assert rim.sum() > 10


def test_resting_brightness_varies_between_cells(sim):
    assert sim.resting.std() / sim.resting.mean() > 0.05


def test_layout_does_not_depend_on_the_number_of_frames(sim):
    short = simulate(seed=SEED, n_frames=20)
    assert_array_equal(short.labels, sim.labels)
    assert_array_equal(short.footprints, sim.footprints)


def test_no_cells():
    sim = simulate(shape=(16, 24), n_frames=10, n_cells=0, seed=1)
    assert sim.movie.shape == (10, 16, 24)
    assert sim.footprints.shape == (0, 16, 24) and sim.traces.shape == (0, 10)
    assert not sim.labels.any()


def test_scalar_ranges_and_float_dtype():
    sim = simulate(
        shape=(32, 40),
        n_frames=30,
        n_cells=3,
        cell_radius=5.0,
        event_amplitude=1.0,
        dtype="float32",
        seed=2,
    )
    assert sim.movie.dtype == np.float32
    assert_array_equal(sim.radii[:, 0], 5.0)
    # Float movies keep the read noise unrounded.
    assert not np.all(sim.movie == np.round(sim.movie))


# -- determinism ----------------------------------------------------------------------------
def test_same_seed_same_simulation(sim):
    again = simulate(seed=SEED)
    for name in ("movie", "labels", "footprints", "traces", "spikes", "neuropil", "resting"):
        assert_array_equal(getattr(again, name), getattr(sim, name), err_msg=name)


def test_different_seeds_differ(sim):
    other = simulate(seed=SEED + 1)
    assert not np.array_equal(other.labels, sim.labels)
    assert not np.array_equal(other.traces, sim.traces)
    assert not np.array_equal(other.movie, sim.movie)


def test_no_seed_records_the_one_drawn():
    sim = simulate(shape=(24, 24), n_frames=20, n_cells=1, seed=None)
    assert isinstance(sim.seed, int) and sim.params["seed"] == sim.seed
    assert_array_equal(simulate(**sim.params).movie, sim.movie)


def test_result_does_not_depend_on_threads(monkeypatch):
    kw = dict(shape=(64, 64), n_frames=1200, n_cells=3, seed=4)  # several chunks
    threaded = simulate(**kw).movie
    monkeypatch.setattr(sim_module, "_MAX_WORKERS", 1)
    assert_array_equal(simulate(**kw).movie, threaded)


# -- activity ---------------------------------------------------------------------------------
def test_events_occur_at_the_event_rate():
    rate, n_cells, n_frames, fps = 0.5, 6, 6000, 30.0
    sim = simulate(
        shape=(48, 48), n_frames=n_frames, n_cells=n_cells, event_rate=rate, frame_rate=fps, seed=5
    )
    expected = rate * n_cells * n_frames / fps  # 600 events
    assert abs(sim.spikes.sum() - expected) < 4 * math.sqrt(expected)
    # The traces really hold those transients: a Poisson train of double exponentials
    # has mean rate * E[amplitude] * area of one (peak-1) transient.
    tr, td = 0.05, 0.6
    s = td * tr / (td - tr) * math.log(td / tr)
    area = (td - tr) / (math.exp(-s / td) - math.exp(-s / tr))
    assert sim.traces.mean() == pytest.approx(rate * 1.25 * area, rel=0.15)


def test_traces_are_zero_at_rest_and_follow_events():
    sim = simulate(shape=(32, 32), n_frames=3000, n_cells=3, seed=6)
    assert sim.traces.min() >= 0.0
    for k in range(sim.n_cells):
        first = np.flatnonzero(sim.spikes[k])[0]
        assert not sim.traces[k, : first + 1].any()  # nothing before the first event
        assert sim.traces[k, first + 1] > 0  # the transient starts at the next frame
    silent = simulate(shape=(32, 32), n_frames=300, n_cells=2, event_rate=1e-9, seed=6)
    assert not silent.spikes.any() and not silent.traces.any()


def test_transients_decay_with_tau_decay():
    fps, tau = 30.0, 0.6
    sim = simulate(
        shape=(32, 32),
        n_frames=6000,
        n_cells=2,
        event_rate=0.1,
        tau_decay=tau,
        frame_rate=fps,
        seed=7,
    )
    checked = 0
    for k in range(sim.n_cells):
        events = np.flatnonzero(sim.spikes[k])
        for t0, following in zip(events, [*events[1:], sim.n_frames], strict=True):
            if following - t0 > 61:
                # No new event for 2 s: one second apart, the trace falls by
                # exp(-1 s / tau) (earlier transients decay the same way; the rise term
                # is gone after 1 s).
                a, b = sim.traces[k, t0 + 31], sim.traces[k, t0 + 61]
                assert a / b == pytest.approx(math.exp(30 / (fps * tau)), rel=1e-4)
                checked += 1
    assert checked >= 10


# -- physics of the movie ------------------------------------------------------------------
def test_bleaching_lowers_fluorescence_by_the_fraction():
    sim = simulate(
        n_frames=600, event_rate=1e-9, neuropil_strength=0.0, bleach_fraction=0.2, seed=8
    )
    assert sim.bleaching[0] == 1.0 and sim.bleaching[-1] == pytest.approx(0.8)
    f = sim.movie.reshape(sim.n_frames, -1).mean(axis=1) - sim.params["baseline"]
    n = sim.n_frames // 10
    # First and last tenths are 0.9 of the recording apart: 0.8 ** 0.9 = 0.818.
    assert f[-n:].mean() / f[:n].mean() == pytest.approx(0.8**0.9, abs=0.01)
    steady = simulate(
        n_frames=600, event_rate=1e-9, neuropil_strength=0.0, bleach_fraction=0.0, seed=8
    )
    f0 = steady.movie.reshape(steady.n_frames, -1).mean(axis=1)
    assert f0[-n:].mean() / f0[:n].mean() == pytest.approx(1.0, abs=0.002)


def test_noise_is_shot_noise_plus_read_noise():
    gain, read, base = 15.0, 10.0, 100.0
    # A static scene: cells at rest, no neuropil, no bleaching.
    sim = simulate(
        n_frames=400,
        n_cells=4,
        event_rate=1e-9,
        neuropil_strength=0.0,
        bleach_fraction=0.0,
        gain=gain,
        read_noise=read,
        baseline=base,
        seed=9,
    )
    data = sim.movie.astype(np.float64)
    mean, var = data.mean(axis=0).ravel(), data.var(axis=0, ddof=1).ravel()
    slope, intercept = np.polyfit(mean - base, var, 1)
    assert slope == pytest.approx(gain, rel=0.05)  # Poisson: variance grows with the mean
    assert intercept == pytest.approx(read**2 + 1 / 12, rel=0.15)
    dark = sim.labels == 0
    dark &= sim.footprints.max(axis=0) == 0
    assert mean[dark.ravel()].mean() == pytest.approx(base, abs=0.5)
    bright = sim.footprints.max(axis=0) > 0.9
    assert var[bright.ravel()].mean() > 10 * var[dark.ravel()].mean()


def test_neuropil_lies_under_the_cells_and_changes_over_time(sim, movie):
    assert (sim.neuropil > 0).all()
    cells = sim.labels > 0
    for k in range(sim.n_cells):
        own = sim.labels == k + 1
        ring = dilation(own, disk(3)) & ~dilation(own, disk(1)) & ~cells
        ring_trace = movie[:, ring].mean(axis=1) - sim.params["baseline"]
        # The true neuropil at the cell is what a nearby ring sees, up to the local level.
        assert corr(sim.neuropil[k], ring_trace) > 0.9
        # It fluctuates a lot, and is not just a copy of this cell's activity.
        cv = sim.neuropil[k].std() / sim.neuropil[k].mean()
        assert cv > 0.1
        assert corr(sim.neuropil[k], sim.traces[k]) < 0.8


# -- good methods beat bad ones -----------------------------------------------------------
def _cell_correlations(sim: Simulation, movie: np.ndarray) -> np.ndarray:
    """Per cell: r(mask mean), r(mask dilated 4 px into background), r(mask - 0.7 ring)."""
    cells = sim.labels > 0
    out = []
    for k in range(sim.n_cells):
        own = sim.labels == k + 1
        big = dilation(own, disk(4)) & (own | ~cells)
        ring = dilation(own, disk(3)) & ~dilation(own, disk(1)) & ~cells
        f = movie[:, own].mean(axis=1)
        truth = sim.traces[k]
        out.append(
            (
                corr(f, truth),
                corr(movie[:, big].mean(axis=1), truth),
                corr(f - 0.7 * movie[:, ring].mean(axis=1), truth),
            )
        )
    return np.array(out)


def test_true_mask_beats_a_mask_dilated_into_the_background(sim, movie):
    r = _cell_correlations(sim, movie)
    assert np.all(r[:, 0] > r[:, 1] + 0.02)
    assert r[:, 0].mean() > r[:, 1].mean() + 0.08


def test_ring_neuropil_subtraction_helps(sim, movie):
    r = _cell_correlations(sim, movie)
    assert np.all(r[:, 2] > r[:, 0])
    assert r[:, 2].mean() > r[:, 0].mean() + 0.03
    assert r[:, 2].mean() > 0.93


def test_without_neuropil_the_mask_mean_is_near_perfect():
    kw = dict(n_frames=1000, bleach_fraction=0.0, seed=SEED)
    clean = simulate(neuropil_strength=0.0, **kw)
    dirty = simulate(**kw)
    r_clean = _cell_correlations(clean, clean.movie.astype(np.float64))[:, 0]
    r_dirty = _cell_correlations(dirty, dirty.movie.astype(np.float64))[:, 0]
    assert np.all(r_clean > 0.98)
    assert np.all(r_clean > r_dirty)  # neuropil is what spoils the plain mean
    assert not clean.neuropil.any()


# -- TIFF ------------------------------------------------------------------------------------
def test_to_tiff_round_trip(tmp_path):
    sim = simulate(shape=(24, 20), n_frames=40, n_cells=2, frame_rate=15.0, seed=10)
    path = sim.to_tiff(tmp_path / "sub" / "movie.tif")
    assert path == tmp_path / "sub" / "movie.tif"
    assert_array_equal(tifffile.imread(path), sim.movie)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.imagej_metadata["finterval"] == pytest.approx(1 / 15.0)
        assert tif.series[0].axes == "TYX"
    assert [p.name for p in path.parent.iterdir()] == ["movie.tif"]  # no temporary left


def test_to_tiff_refuses_what_imagej_cannot_hold(tmp_path):
    sim = simulate(shape=(16, 16), n_frames=5, n_cells=0, dtype="float64", seed=1)
    with pytest.raises(ParameterError, match="ImageJ"):
        sim.to_tiff(tmp_path / "movie.tif")
    assert not list(tmp_path.iterdir())


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": -1}, "n_cells must be >= 0"),
        ({"n_cells": 2.5}, "n_cells must be an integer"),
        ({"n_frames": 0}, "n_frames"),
        ({"shape": (64,)}, "shape"),
        ({"shape": (0, 64)}, r"shape\[0\]"),
        ({"cell_radius": (4.0, 40.0)}, "does not fit"),
        ({"cell_radius": (7.0, 4.0)}, "min <= max"),
        ({"cell_radius": 0.0}, "cell_radius must be > 0"),
        ({"event_rate": 0.0}, "event_rate must be > 0"),
        ({"event_rate": -1.0}, "event_rate"),
        ({"frame_rate": 0.0}, "frame_rate must be > 0"),
        ({"frame_rate": float("nan")}, "frame_rate"),
        ({"neuropil_event_rate": -0.1}, "neuropil_event_rate"),
        ({"tau_decay": 0.0}, "tau_decay"),
        ({"tau_rise": 0.7}, "shorter than tau_decay"),
        ({"bleach_fraction": 1.0}, "bleach_fraction"),
        ({"photons_per_unit": 0.0}, "photons_per_unit"),
        ({"read_noise": -1.0}, "read_noise"),
        ({"neuropil_scale": 0.0}, "neuropil_scale"),
        ({"dtype": "int4x"}, "dtype"),
        ({"dtype": "complex64"}, "dtype"),
        ({"dtype": bool}, "dtype"),
        ({"seed": -3}, "seed"),
        ({"cell_brightness": "bright"}, "cell_brightness must be a number"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        simulate(**{"shape": (64, 64), "n_frames": 10, "seed": 0, **kwargs})
    assert isinstance(info.value, RoitraceError) and isinstance(info.value, ValueError)


def test_overflow_is_refused_not_clipped():
    with pytest.raises(ParameterError, match="uint8 holds") as info:
        simulate(n_frames=10, dtype="uint8", seed=0)
    assert "photons_per_unit" in str(info.value)
    with pytest.raises(ParameterError, match="uint16 holds"):
        simulate(n_frames=10, photons_per_unit=4000.0, seed=0)
    # The same scene fits a wider type.
    assert (
        simulate(n_frames=10, photons_per_unit=4000.0, dtype="uint32", seed=0).movie.max() > 65535
    )


def test_negative_values_are_refused_for_unsigned_types():
    with pytest.raises(ParameterError, match="baseline"):
        simulate(n_frames=10, baseline=0.0, read_noise=10.0, seed=0)
    dark = dict(n_frames=10, n_cells=0, neuropil_strength=0.0, baseline=0.0, read_noise=10.0)
    assert simulate(dtype="int16", seed=0, **dark).movie.min() < 0


def test_too_many_cells_to_place():
    with pytest.raises(ParameterError, match="could not place 100 cells"):
        simulate(shape=(32, 32), n_frames=10, n_cells=100, seed=0)


# -- contamination: the true neuropil coefficient ------------------------------------------
def test_contamination_default_changes_nothing(sim):
    again = simulate(seed=SEED, contamination=1.0)
    assert_array_equal(again.movie, sim.movie)
    assert_array_equal(sim.contamination, np.ones(sim.n_cells))
    assert sim.contamination.dtype == np.float64 and not sim.contamination.flags.writeable


def test_contamination_range_draws_per_cell_from_its_own_stream(sim):
    drawn = simulate(seed=SEED, contamination=(0.3, 1.0))
    c = drawn.contamination
    assert c.shape == (sim.n_cells,) and np.all((c >= 0.3) & (c <= 1.0)) and np.ptp(c) > 0
    # the other streams are untouched: same cells, activity and neuropil outside the cells
    for name in ("labels", "footprints", "traces", "spikes", "resting", "bleaching"):
        assert_array_equal(getattr(drawn, name), getattr(sim, name))
    assert_allclose(drawn.neuropil, sim.neuropil * c[:, None].astype(np.float32), rtol=1e-5)
    assert drawn.params["contamination"] == (0.3, 1.0)
    assert_array_equal(simulate(**drawn.params).contamination, c)


def test_contamination_zero_takes_the_neuropil_out_of_the_cells():
    kw = dict(seed=3, n_frames=400, read_noise=0.0, photons_per_unit=400.0, dtype="float32")
    full, none = simulate(**kw), simulate(**kw, contamination=0.0)
    assert_array_equal(none.neuropil, 0.0)
    diff = full.movie.astype(np.float64) - none.movie
    gain = full.params["gain"]
    for k in range(full.n_cells):
        inside = full.labels == k + 1
        # what left the label is its neuropil (shot noise of 400 photons/unit aside)
        lost = diff[:, inside].mean(axis=1)
        assert corr(lost, full.neuropil[k]) > 0.9
        assert abs(lost.mean() / full.neuropil[k].mean() - 1) < 0.02
        assert np.abs(diff[:, inside].mean()) > 10 * gain
    outside = full.labels == 0
    assert abs(diff[:, outside].mean()) < 0.01 * np.abs(full.movie[:, outside]).mean()


def test_contamination_checked():
    with pytest.raises(ParameterError, match="contamination"):
        simulate(contamination=-0.1)
    with pytest.raises(ParameterError, match="contamination"):
        simulate(contamination=(1.0, 0.5))
