"""Baselines and dF/F: each method against a plain transcription of its published
definition, against the simulator's truth, as properties, and on bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.ndimage import (
    gaussian_filter,
    maximum_filter1d,
    median_filter,
    minimum_filter1d,
    percentile_filter,
)

import roitrace as rt
import roitrace._kernels as kernels
from roitrace.normalize import Dff, noise_level
from roitrace.options import Baseline


# -- plain references: loops over frames, as the definitions read ----------------------------
def ref_running_percentile(f, q, w):
    """The q-th order statistic (scipy's rank int(w * q / 100)) of the centred window,
    edges repeating the end frames."""
    h = w // 2
    rank = w - 1 if q == 100 else int(w * q / 100)
    out = np.empty_like(f)
    for i in range(f.size):
        idx = np.clip(np.arange(i - h, i - h + w), 0, f.size - 1)
        out[i] = np.sort(f[idx])[rank]
    return out


def _reflect(n, idx):
    # scipy's "reflect": d c b a | a b c d | d c b a
    idx = np.where(idx < 0, -idx - 1, idx)
    return np.where(idx >= n, 2 * n - idx - 1, idx)


def ref_maximin(f, sig, win):
    """suite2p's preprocess(baseline="maximin"): Gaussian, running min, running max."""
    flow = gaussian_filter(f[None, :], [0.0, sig])[0]
    h = win // 2
    lo = np.array(
        [flow[_reflect(f.size, np.arange(i - h, i - h + win))].min() for i in range(f.size)]
    )
    return np.array(
        [lo[_reflect(f.size, np.arange(i - h, i - h + win))].max() for i in range(f.size)]
    )


def allen_robust_std(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def allen_noise_std(x, filter_length):
    noise = x - median_filter(x, filter_length)
    filtered_noise_0 = noise[noise < (1.5 * np.abs(noise.min()))]
    rstd = allen_robust_std(filtered_noise_0)
    filtered_noise_1 = filtered_noise_0[abs(filtered_noise_0) < (2.5 * rstd)]
    return allen_robust_std(filtered_noise_1)


def allen_nanmedian_filter(x, filter_length):
    half_length = int(filter_length / 2)
    temp_trace = np.concatenate((np.flip(x[:half_length]), x, np.flip(x[-half_length:])))
    filtered = np.zeros_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        for i in range(len(x)):
            filtered[i] = np.nanmedian(temp_trace[i : i + filter_length])
    gap = np.isnan(filtered)
    if gap.any():
        filtered[gap] = np.interp(np.flatnonzero(gap), np.flatnonzero(~gap), filtered[~gap])
    return filtered


def allen_compute_dff_trace(f, long_filter_length, short_filter_length, inactive_percentile=10):
    """ophys_etl_pipelines' compute_dff_trace (modules/dff), detrending off."""
    sigma_f = allen_noise_std(f, short_filter_length)
    inactive_trace = f.copy()
    if 0 < inactive_percentile < 100:
        low = percentile_filter(f, size=long_filter_length, percentile=inactive_percentile)
        inactive_trace[f > low + 3 * sigma_f] = np.nan
        baseline = allen_nanmedian_filter(inactive_trace, long_filter_length)
    else:
        baseline = median_filter(f, long_filter_length)
    return (f - baseline) / np.maximum(baseline, sigma_f), baseline, sigma_f


def ref_noise_level(f):
    d = np.diff(f)
    return 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)


def _traces(n_rois, n_frames, seed):
    """Positive traces with drift, noise and sparse transients."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    drift = 100 * (1 - 0.3 * t / n_frames)
    events = (rng.random((n_rois, n_frames)) < 0.02) * rng.uniform(20, 80, (n_rois, n_frames))
    kernel = np.exp(-np.arange(40) / 8.0)
    transients = np.array([np.convolve(e, kernel)[:n_frames] for e in events])
    return drift + transients + rng.normal(0, 2, (n_rois, n_frames))


# -- against the references --------------------------------------------------------------
@pytest.mark.parametrize(("q", "w"), [(8, 31), (50, 10), (0, 5), (100, 7), (20, 300)])
def test_rolling_percentile_is_the_running_order_statistic(q, w):
    f = _traces(3, 300, 0)
    got = rt.baseline(f, method="rolling_percentile", q=q, window=w)
    want = np.array([ref_running_percentile(row, q, w) for row in f])
    assert_array_equal(got, want)
    # the same numbers as "percentile" with a window, i.e. as scipy's 2-D filter did
    assert_array_equal(rt.baseline(f, q=q, window=w), got)
    assert_array_equal(got, percentile_filter(f, q, size=(1, w), mode="nearest"))


@pytest.mark.parametrize(("sigma", "w"), [(10.0, 60), (2.5, 31), (0.0, 9)])
def test_maximin_is_suite2p(sigma, w):
    f = _traces(3, 400, 1)
    got = rt.baseline(f, method="maximin", sigma=sigma, window=w)
    want = np.array([ref_maximin(row, sigma, w) for row in f])
    assert_allclose(got, want, rtol=0, atol=1e-12)
    # and suite2p's own three calls on the (roi, time) array, to the bit
    flow = gaussian_filter(f, [0.0, sigma])
    flow = maximum_filter1d(minimum_filter1d(flow, w), w)
    assert_array_equal(got, flow)
    assert_allclose(rt.dff(f, method="maximin", sigma=sigma, window=w), (f - want) / want)


@pytest.mark.parametrize(("q", "long", "short"), [(10, 101, 31), (25, 61, 11), (0, 41, 9)])
def test_inactive_median_is_allens_compute_dff_trace(q, long, short):
    f = _traces(3, 600, 2)
    got = rt.dff(f, method="inactive_median", q=q, window=long, noise_window=short,
                 full_output=True)  # fmt: skip
    for i, row in enumerate(f):
        want_dff, want_f0, _ = allen_compute_dff_trace(row, long, short, q)
        assert_allclose(got.f0[i], want_f0, rtol=1e-14, atol=0)
        assert_allclose(got.dff[i], want_dff, rtol=1e-12, atol=1e-14)
        assert_allclose(got.noise[i], ref_noise_level(row))


def test_inactive_median_fills_windows_without_inactive_frames():
    f = _traces(1, 400, 3)[0]
    f[150:260] += 400  # a long plateau: every frame of some windows is active
    got = rt.baseline(f, method="inactive_median", window=41, noise_window=9)
    assert_allclose(got, allen_compute_dff_trace(f, 41, 9)[1], rtol=1e-14)
    assert np.all(np.isfinite(got))


def test_inactive_median_without_numba_is_the_same(monkeypatch):
    f = _traces(4, 500, 4)
    with_numba = rt.baseline(f, method="inactive_median", window=51, noise_window=11)
    monkeypatch.setattr(kernels, "_nb", None)
    assert_array_equal(
        rt.baseline(f, method="inactive_median", window=51, noise_window=11), with_numba
    )


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("mode", ["nearest", "reflect"])
@pytest.mark.parametrize(("q", "size"), [(8, 31), (50, 10), (0, 4), (100, 7), (37.5, 200)])
def test_the_running_percentile_kernel_is_scipys(monkeypatch, numba, mode, q, size):
    from roitrace._kernels.running import percentile_filter as running_percentile

    if not numba:
        monkeypatch.setattr(kernels, "_nb", None)
    f = np.round(_traces(3, 200, 13))  # ties too
    want = np.array([percentile_filter(r, q, size=size, mode=mode) for r in f])
    for compiled in (None, True, False):
        assert_array_equal(running_percentile(f, q, size, mode, compiled=compiled), want)


def test_noise_level_is_the_mad_of_differences():
    f = _traces(5, 2000, 5)
    assert_allclose(noise_level(f), [ref_noise_level(r) for r in f])
    assert_allclose(noise_level(f.T, axis=0), noise_level(f))
    # white noise of SD 2 under a drift (bleaching) and a few spikes: about 2
    rng = np.random.default_rng(5)
    g = np.linspace(130, 80, 20000) + rng.normal(0, 2, (3, 20000))
    g[:, ::500] += 300
    assert_allclose(noise_level(g), 2.0, rtol=0.03)
    assert noise_level(np.full(10, 3.0)) == 0


# -- the simulator's truth ------------------------------------------------------------------
@pytest.fixture(scope="module")
def bleached():
    sim = rt.simulate(
        n_frames=3000, n_cells=4, bleach_fraction=0.3, neuropil_strength=0.0, seed=7,
        event_rate=0.2,
    )  # fmt: skip
    f = np.asarray(rt.extract(sim.movie, sim.labels)["F"]) - sim.params["baseline"]
    return sim, f


def _trend(dff, truth):
    """Slope per 1000 frames of what dF/F has that the truth has not."""
    t = np.arange(truth.shape[1])
    return np.array([np.polyfit(t, d - g, 1)[0] * 1000 for d, g in zip(dff, truth, strict=True)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "rolling_percentile", "window": 300, "q": 20},
        {"method": "maximin", "window": 300},
        {"method": "inactive_median", "window": 601, "noise_window": 101},
        {"method": "maximin", "frame_rate": 30.0, "window": "10s"},
    ],
)
def test_running_baselines_follow_bleaching_where_a_global_one_does_not(bleached, kwargs):
    sim, f = bleached
    truth = np.asarray(sim.traces, np.float64)
    whole = rt.dff(f)
    running = rt.dff(f, **kwargs)
    # bleaching by 30% leaves a global F0's dF/F sloping down by about 0.3 / 3 per 1000 frames
    assert np.all(_trend(whole, truth) < -0.05)
    assert np.all(np.abs(_trend(running, truth)) < 0.2 * np.abs(_trend(whole, truth)))
    # and the running dF/F is the truth: close at rest and in transients
    err = np.median(np.abs(running - truth), axis=1)
    assert np.all(err < 0.05), err
    assert np.all([np.corrcoef(r, g)[0, 1] > 0.9 for r, g in zip(running, truth, strict=True)])


# -- properties ------------------------------------------------------------------------------
METHODS = [
    {"method": "percentile"},
    {"method": "percentile", "window": 5},
    {"method": "rolling_percentile", "window": 7, "q": 30},
    {"method": "maximin", "window": 6, "sigma": 1.5},
    {"method": "inactive_median", "window": 9, "noise_window": 3},
]
finite = st.floats(1.0, 1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(level=finite, n=st.integers(12, 60))
@pytest.mark.parametrize("kwargs", METHODS)
def test_a_constant_trace_has_dff_zero(kwargs, level, n):
    out = rt.dff(np.full(n, level), full_output=True, **kwargs)
    assert_allclose(out.dff, 0, atol=1e-12)
    assert_allclose(out.f0, level, rtol=1e-12)
    assert out.noise == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    n=st.integers(12, 80),
)
@pytest.mark.parametrize("kwargs", METHODS)
def test_dff_ignores_scale_and_f0_stays_within_the_trace(kwargs, seed, scale, n):
    f = _traces(2, n, seed)
    a = rt.dff(f, full_output=True, **kwargs)
    b = rt.dff(f * scale, full_output=True, **kwargs)
    assert_allclose(b.dff, a.dff, rtol=1e-9, atol=1e-9)
    assert_allclose(b.noise, a.noise * scale, rtol=1e-9)
    f0 = np.broadcast_to(a.f0, f.shape)
    assert np.all(f0 <= f.max(axis=1, keepdims=True) + 1e-9)
    assert np.all(f0 >= f.min(axis=1, keepdims=True) - 1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), w=st.integers(1, 30))
def test_maximin_f0_is_below_the_running_max_of_the_smoothed_trace(seed, w):
    f = _traces(1, 60, seed)[0]
    f0 = rt.baseline(f, method="maximin", window=w, sigma=2.0)
    smooth = gaussian_filter(f, 2.0)
    assert np.all(f0 <= maximum_filter1d(smooth, 2 * w) + 1e-9)


# -- the API ---------------------------------------------------------------------------------
def test_full_output_shapes_and_dataarrays():
    f = _traces(3, 200, 8)
    whole = rt.dff(f, full_output=True)
    assert isinstance(whole, Dff) and whole.f0.shape == (3, 1) and whole.noise.shape == (3,)
    assert_array_equal(whole.dff, rt.dff(f))
    running = rt.dff(f, method="maximin", window=20, full_output=True)
    assert running.f0.shape == (3, 200)
    da = xr.DataArray(f.T, dims=("time", "roi"), coords={"roi": [7, 8, 9]})
    out = rt.dff(da, method="inactive_median", window=21, noise_window=5, full_output=True)
    assert out.dff.dims == ("time", "roi") and out.f0.dims == ("time", "roi")
    assert out.noise.dims == ("roi",) and list(out.noise.roi.values) == [7, 8, 9]
    ref = rt.dff(f, method="inactive_median", window=21, noise_window=5, full_output=True)
    assert_allclose(out.dff.values.T, ref.dff)
    assert_allclose(out.noise.values, ref.noise)
    assert noise_level(da).dims == ("roi",)


def test_windows_in_seconds_and_published_defaults():
    f = _traces(2, 5000, 9)
    # suite2p: int(60 s * fs) frames; the Allen Institute: round(s * fs), made odd
    assert_array_equal(
        rt.baseline(f, method="maximin", frame_rate=10.5),
        rt.baseline(f, method="maximin", window=int(60 * 10.5)),
    )
    assert_array_equal(
        rt.baseline(f, method="maximin", window="2s", frame_rate=10.5),
        rt.baseline(f, method="maximin", window=21),
    )
    assert Baseline(method="inactive_median").in_frames(7.0, 5000).window == 4201
    assert Baseline(method="inactive_median").in_frames(7.0, 5000).noise_window == 23
    assert Baseline(method="inactive_median", window=101).in_frames(None, 500).noise_window == 31
    assert Baseline(method="rolling_percentile").in_frames(10.0, 5000).window == 600
    assert Baseline(window="120").window == 120


def test_baseline_options_belong_to_their_method():
    assert Baseline().as_dict() == {
        "method": "percentile", "q": 8.0, "window": None, "sigma": None, "noise_window": None,
    }  # fmt: skip
    assert Baseline(method="maximin").sigma == 10.0
    assert Baseline(method="inactive_median").q == 10.0
    assert Baseline.coerce({"method": "maximin", "window": "60s"}).describe() == (
        "maximin (Gaussian sigma 10 frames, running min then max over 60 s)"
    )
    with pytest.raises(rt.ParameterError, match="q=8 does not apply to method='maximin'"):
        rt.dff(np.ones(20), method="maximin", q=8, window=5)
    with pytest.raises(rt.ParameterError, match=r"sigma=.* does not apply"):
        Baseline(method="rolling_percentile", sigma=2)
    with pytest.raises(rt.ParameterError, match=r"noise_window=.* does not apply"):
        Baseline(noise_window=31)
    with pytest.raises(rt.ParameterError, match="window='an hour'"):
        Baseline(window="an hour")
    with pytest.raises(rt.ParameterError, match="sigma must be >= 0"):
        Baseline(method="maximin", sigma=-1)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["rolling_percentile", "maximin", "inactive_median"])
def test_a_running_method_needs_a_window_or_a_frame_rate(method):
    with pytest.raises(rt.ParameterError, match=r"give window= in frames, or frame_rate="):
        rt.dff(np.ones(100), method=method)
    with pytest.raises(rt.ParameterError, match="is in seconds: give frame_rate="):
        rt.dff(np.ones(100), method=method, window="10s")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "percentile", "window": 50}, "longer than the trace"),
        ({"method": "rolling_percentile", "window": 50}, "longer than the trace"),
        ({"method": "maximin", "window": 50}, "longer than the trace"),
        ({"method": "inactive_median", "window": 41}, "not shorter than the trace"),
        ({"method": "inactive_median", "window": 21, "noise_window": 41}, "noise_window=41"),
        ({"method": "inactive_median", "window": 10}, r"odd window .* window=11"),
        ({"method": "maximin", "frame_rate": 10.0}, r"the default window \(600 frames\)"),
    ],
)
def test_a_window_longer_than_the_trace_is_an_error(kwargs, match):
    with pytest.raises(rt.ParameterError, match=match):
        rt.dff(np.ones(40), **kwargs)


@pytest.mark.parametrize("kwargs", METHODS)
def test_nan_in_a_trace_is_an_error(kwargs):
    f = _traces(2, 50, 10)
    f[1, 20] = np.nan
    with pytest.raises(rt.ParameterError, match="NaN or infinite"):
        rt.dff(f, **kwargs)
    with pytest.raises(rt.ParameterError, match="NaN or infinite"):
        noise_level(f)


@pytest.mark.parametrize("kwargs", METHODS[:4])
def test_a_nonpositive_baseline_names_the_traces_or_gives_nan(kwargs):
    f = _traces(5, 60, 11)
    f[[1, 3]] -= 500
    with pytest.raises(rt.BaselineError, match=r"2 of 5 traces \(index 1, 3\).*undefined"):
        rt.dff(f, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no inf, no RuntimeWarning: NaN where F0 <= 0
        out = rt.dff(f, nonpositive="nan", **kwargs)
    assert_array_equal(np.isnan(out).any(axis=1), [False, True, False, True, False])
    assert not np.isinf(out).any()


def test_inactive_median_divides_by_the_noise_where_f0_is_small():
    f = _traces(2, 300, 12) - 100  # F0 near 0, then below: max(F0, noise) stays > 0
    out = rt.dff(f, method="inactive_median", window=31, noise_window=9, full_output=True)
    for i, row in enumerate(f):
        assert_allclose(out.dff[i], allen_compute_dff_trace(row, 31, 9)[0], rtol=1e-12)
    assert np.all(np.isfinite(out.dff))
    with pytest.raises(rt.BaselineError, match=r"the trace .*undefined"):
        rt.dff(np.full(50, -3.0), method="inactive_median", window=11, noise_window=3)


def test_full_output_of_a_roi_by_time_dataarray():
    import xarray as xr

    x = np.random.default_rng(0).normal(100, 3, (5, 400))
    da = xr.DataArray(x, dims=("roi", "time"), coords={"roi": np.arange(1, 6)})
    got = rt.dff(da, method="maximin", window=50, full_output=True)
    assert got.dff.dims == got.f0.dims == ("roi", "time") and got.noise.dims == ("roi",)
    flipped = rt.dff(da.T, method="maximin", window=50, full_output=True)
    np.testing.assert_allclose(flipped.noise.values, got.noise.values)
    np.testing.assert_allclose(flipped.dff.T.values, got.dff.values)
