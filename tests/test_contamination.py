"""neuropil_coefficient: each method against a plain reference of its published
definition, against the simulator's truth, its properties, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import solve_banded

from roitrace.contamination import (
    ESTIMATE_METHOD,
    NEUROPIL_FACTOR_METHODS,
    NeuropilCoefficient,
    fill_value,
    neuropil_coefficient,
    running_baseline,
)
from roitrace.datasets.simulate import simulate
from roitrace.errors import NonFiniteError, ParameterError, ShapeMismatchError


# -- the published smoothness method, written plainly ----------------------------------------
def allen_r(f_m: np.ndarray, f_n: np.ndarray, *, normalize: bool = False) -> float:
    """AllenSDK's r_neuropil.estimate_contamination_ratios, step by step and slow:
    a sparse M = I + 0.05 L'L, 4 folds of int(T / 4) frames (each rescaled so that
    F_N spans [0, 1] when ``normalize``, as an earlier version's normalize_F did),
    and for each candidate r one solve_banded per fold."""
    lam, folds = 0.05, 4
    t_f = int(len(f_m) / folds)
    ls = -sparse.eye(t_f - 1, t_f, format="csr") + sparse.eye(t_f - 1, t_f, 1, format="csr")
    m = (sparse.eye(t_f) + lam * ls.T.dot(ls)).todia()
    u = int(np.max(m.offsets))
    ab = np.zeros((2 * u + 1, t_f))
    for o, diag in zip(m.offsets, m.data, strict=True):
        ab[u - o] = diag
    fm, fn = [], []
    for i in range(folds):
        a, b = f_m[i * t_f : (i + 1) * t_f], f_n[i * t_f : (i + 1) * t_f]
        if normalize:
            lo, hi = float(np.amin(b)), float(np.amax(b))
            a, b = (a - lo) / (hi - lo), (b - lo) / (hi - lo)
        fm.append(a)
        fn.append(b)

    def error(r: float) -> float:
        errors = np.zeros(folds)
        for i, (a, b) in enumerate(zip(fm, fn, strict=True)):
            f_c = solve_banded((1, 1), ab, a - r * b)
            errors[i] = abs(np.sqrt(np.mean(np.square(f_c - (a - r * b)))) / np.mean(a))
        return float(np.mean(errors))

    best_err, best_r = None, None
    it_range, it, dr = [0.0, 2.0], 0, 0.1
    while it < 3:
        rs = np.arange(it_range[0], it_range[1], dr)
        errs = [error(r) for r in rs]
        i = int(np.argmin(errs))
        if best_err is None or errs[i] < best_err:
            best_err, best_r = errs[i], rs[i]
        if i == len(errs) - 1:
            it_range = [rs[-1], rs[-1] + (rs[-1] - rs[0])]
        else:
            it_range = [rs[max(i - 1, 0)], rs[min(i + 1, len(rs) - 1)]]
            dr *= 0.1
            it += 1
    return max(float(best_r), 0.0)


def synthetic(rng: np.random.Generator, t: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    """A cell with sparse transients plus r times a wandering neuropil, both noisy."""
    neuropil = 200 + np.cumsum(rng.normal(0, 2, t)) + rng.normal(0, 3, t)
    kernel = np.exp(-np.arange(60) / 15.0)
    cell = np.convolve(rng.random(t) < 0.02, kernel)[:t] * 80
    return 300 + cell + r * neuropil + rng.normal(0, 4, t), neuropil + rng.normal(0, 2, t)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("t", [203, 480])
def test_smoothness_matches_the_published_method(t, normalize):
    rng = np.random.default_rng(t)
    pairs = [synthetic(rng, t, r) for r in (0.0, 0.3, 0.7, 0.95, 1.4, 4.0)]
    f = np.stack([p[0] for p in pairs])
    n = np.stack([p[1] for p in pairs])
    fast = neuropil_coefficient(
        f, n, method="smoothness", fill=False, fold_normalization=normalize
    )
    slow = np.array([allen_r(a, b, normalize=normalize) for a, b in zip(f, n, strict=True)])
    assert_allclose(fast, slow, atol=1e-3 + 1e-9)
    assert slow.max() > 1.9  # past the first range: found by the same moves up


def test_smoothness_is_at_least_20_times_faster_than_the_plain_search():
    import time

    rng = np.random.default_rng(1)
    pairs = [synthetic(rng, 4000, 0.6) for _ in range(40)]
    f, n = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    t0 = time.perf_counter()
    neuropil_coefficient(f, n, method="smoothness", fill=False)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a, b in zip(f[:4], n[:4], strict=True):
        allen_r(a, b)
    slow = (time.perf_counter() - t0) * 10
    assert slow > 20 * fast


# -- the simulator's truth -------------------------------------------------------------------
@pytest.fixture(scope="module")
def field():
    import roitrace

    sim = simulate(
        shape=(128, 128),
        n_cells=24,
        n_frames=3000,
        contamination=(0.3, 1.0),
        bleach_fraction=0.5,
        seed=11,
        dtype="float32",
    )
    ds = roitrace.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 3})
    return sim, ds["F"].values, ds["Fneu"].values


def test_regression_recovers_the_simulated_contamination(field):
    sim, f, n = field
    r = neuropil_coefficient(f, n, method="regression", fill=False)
    err = r - sim.contamination
    assert np.median(np.abs(err)) < 0.07
    assert abs(np.median(err)) < 0.05
    est = neuropil_coefficient(f, n, method="estimate", full_output=True, fill=False)
    assert est.method == ESTIMATE_METHOD == "regression"
    assert_array_equal(est.raw, r)


def test_regression_needs_a_running_baseline_under_bleaching(field):
    # half the fluorescence bleaches away: a global baseline leaves the trend in
    # both traces, and the cell's own bleaching passes for neuropil
    sim, f, n = field
    running = neuropil_coefficient(f, n, method="regression", fill=False)
    whole = neuropil_coefficient(f, n, method="regression", fill=False, window=f.shape[1])
    assert np.median(np.abs(whole - sim.contamination)) > 2 * np.median(
        np.abs(running - sim.contamination)
    )


def test_smoothness_is_biased_low_on_the_simulator(field):
    # documented: the ring's shot noise dominates its frame-to-frame changes
    sim, f, n = field
    r = neuropil_coefficient(f, n, method="smoothness", fill=False)
    assert np.median(r - sim.contamination) < -0.2


# -- properties ------------------------------------------------------------------------------
def stationary_neuropil(rng: np.random.Generator, t: int) -> np.ndarray:
    """A neuropil that wanders over ~20 frames and comes back (no random walk:
    two independent walks correlate by chance over any finite time)."""
    from scipy.ndimage import gaussian_filter1d

    return 200 + 250 * gaussian_filter1d(rng.normal(0, 1, t), 20) + rng.normal(0, 2, t)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["smoothness", "regression"]))
def test_no_neuropil_in_f_gives_r_near_zero(seed, method):
    rng = np.random.default_rng(seed)
    # the smoothness method's chance spread is wider: at 4000 frames |r| reached
    # 0.27 (regression: 0.1); at 16000, 0.12 on 60 seeds
    t = 16000 if method == "smoothness" else 4000
    f, _ = synthetic(rng, t, 0.0)
    n = stationary_neuropil(rng, t)
    r = neuropil_coefficient(f, n, method=method, fill=False)
    assert abs(float(r)) < (0.2 if method == "smoothness" else 0.1)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    method=st.sampled_from(["smoothness", "regression"]),
)
def test_scaling_f_and_fneu_together_leaves_r(seed, scale, method):
    rng = np.random.default_rng(seed)
    f, n = synthetic(rng, 1200, rng.uniform(0, 1.2))
    r = neuropil_coefficient(f, n, method=method, fill=False)
    scaled = neuropil_coefficient(f * scale, n * scale, method=method, fill=False)
    assert abs(float(scaled) - float(r)) <= (1e-3 + 1e-9 if method == "smoothness" else 1e-6)


# -- filling ---------------------------------------------------------------------------------
def test_fill_rule():
    assert fill_value([0.2, 0.4, 1.5, 0.0, np.nan]) == 0.7  # 2 in (0, 1]: too few
    assert fill_value([0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 0.0]) == pytest.approx(0.6)


@pytest.mark.parametrize("n_good", [3, 6])
def test_unconverged_rois_are_filled_and_named(n_good):
    rng = np.random.default_rng(5)
    goods = np.linspace(0.3, 0.8, n_good)
    pairs = [synthetic(rng, 1000, r) for r in [*goods, 1.6]]
    f, n = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    with pytest.warns(UserWarning, match=rf"1 of {n_good + 1} ROIs .*ROI index {n_good}\)"):
        out = neuropil_coefficient(f, n, method="smoothness", full_output=True)
    assert isinstance(out, NeuropilCoefficient) and out.method == "smoothness"
    assert_array_equal(out.filled, [False] * n_good + [True])
    assert_array_equal(out.converged, ~out.filled)
    assert out.raw[-1] > 1
    expect = out.raw[:-1].mean() if n_good >= 5 else 0.7
    assert out.r[-1] == pytest.approx(expect)
    assert_array_equal(out.r[:-1], out.raw[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(neuropil_coefficient(f, n, method="smoothness", fill=False), out.raw)


# -- shapes and bad input --------------------------------------------------------------------
def test_one_trace_gives_a_0d_array_and_xarray_is_read_along_time():
    import xarray as xr

    rng = np.random.default_rng(2)
    f, n = synthetic(rng, 600, 0.5)
    r = neuropil_coefficient(f, n)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float64
    fs = xr.DataArray(np.stack([f, f]).T, dims=("time", "roi"))
    ns = xr.DataArray(np.stack([n, n]).T, dims=("time", "roi"))
    assert_array_equal(neuropil_coefficient(fs, ns), [r, r])


def test_methods_listed():
    assert NEUROPIL_FACTOR_METHODS == ("estimate", "smoothness", "regression")
    with pytest.raises(ParameterError, match="method"):
        neuropil_coefficient(np.ones(100), np.ones(100), method="fissa")


def test_bad_input():
    rng = np.random.default_rng(3)
    f, n = synthetic(rng, 400, 0.5)
    bad = f.copy()
    bad[10] = np.nan
    with pytest.raises(NonFiniteError, match="F holds NaN"):
        neuropil_coefficient(bad, n)
    with pytest.raises(NonFiniteError, match="Fneu holds NaN"):
        neuropil_coefficient(f, np.where(np.arange(400) == 3, np.inf, n))
    with pytest.raises(ShapeMismatchError, match="same shape"):
        neuropil_coefficient(f, n[:-1])
    with pytest.raises(ShapeMismatchError, match="at least 8"):
        neuropil_coefficient(f[:7], n[:7])
    with pytest.raises(ShapeMismatchError, match="roi, time"):
        neuropil_coefficient(f.reshape(1, 1, -1), n.reshape(1, 1, -1))
    with pytest.raises(ParameterError, match="window=500 frames is longer"):
        neuropil_coefficient(f, n, method="regression", window=500)
    with pytest.raises(ParameterError, match="lam"):
        neuropil_coefficient(f, n, lam=0)


@pytest.mark.parametrize("method", ["smoothness", "regression"])
def test_constant_traces(method):
    rng = np.random.default_rng(4)
    f, n = synthetic(rng, 400, 0.5)
    # a constant Fneu cannot tell any r from another: undefined, filled, warned
    with pytest.warns(UserWarning, match="did not converge"):
        out = neuropil_coefficient(f, np.full(400, 7.0), method=method, full_output=True)
    assert np.isnan(out.raw) and out.filled and out.r == 0.7
    # a constant F holds no neuropil: r = 0
    assert float(neuropil_coefficient(np.full(400, 50.0), n, method=method)) == 0.0


def test_running_baseline_follows_a_trend():
    t = np.arange(5000.0)
    x = 100 * np.exp(-t / 3000) + np.random.default_rng(0).normal(0, 1, 5000)
    base = running_baseline(x[None], 500, 50)[0]
    assert np.abs(base - 100 * np.exp(-t / 3000))[300:-300].max() < 1.5


def test_compiled_pass_matches_numpy():
    from roitrace import _kernels
    from roitrace.contamination import _weighted_sums_numpy

    if not _kernels.available():
        pytest.skip("numba is not in use")
    from roitrace._kernels.neuropil_fit import weighted_sums

    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 300)), rng.normal(size=(5, 300))
    rows = np.array([4, 0, 2])
    args = (x, y, rows, rng.uniform(0, 1, 3), rng.normal(0, 0.1, 3), rng.uniform(0, 1, 3))
    args += (rng.uniform(0.2, 1, 3),)
    assert_allclose(weighted_sums(*args), _weighted_sums_numpy(*args), rtol=1e-12)
