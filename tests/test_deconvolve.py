"""roitrace.deconvolution: OASIS against its published definition, oasis-deconv and the
simulator's truth; detect_events."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize, nnls
from scipy.signal import lfilter

import roitrace
from roitrace import _kernels
from roitrace.deconvolution import (
    Deconvolution,
    ShortTraceError,
    deconvolve,
    detect_events,
    estimate_ar,
    estimate_noise,
)
from roitrace.errors import NonFiniteError, ParameterError


def _kernel_matrix(g: np.ndarray, total: int) -> np.ndarray:
    """c = K s for the AR model started from rest."""
    return np.stack([lfilter([1.0], np.r_[1.0, -g], np.eye(total)[i]) for i in range(total)], 1)


def _full_l1(d: Deconvolution) -> float:
    """|s|_1 with s_0 = c_0 (the returned spikes leave the first frame at 0)."""
    return float(d.calcium[0] + d.spikes[1:].sum())


# -- the published problem, solved slowly ------------------------------------------------------
@pytest.mark.parametrize("free_b", [False, True])
def test_l1_matches_the_noise_constrained_problem(free_b):
    # min |s|_1  s.t.  |y - b - K s|^2 <= sigma^2 T,  s >= 0: convex, so SLSQP from a
    # feasible start finds the optimum, which OASIS must reach (and not beat)
    rng = np.random.default_rng(5)
    total, g, sigma = 40, np.array([0.85]), 0.3
    k = _kernel_matrix(g, total)
    s_true = (rng.random(total) < 0.1) * 2.0
    y = k @ s_true + rng.normal(0, sigma, total) + (0.5 if free_b else 0.0)
    thresh = sigma**2 * total
    if free_b:
        a = np.c_[k, np.ones(total)]
        start = nnls(a, y)[0]
    else:
        start = np.r_[nnls(k, y)[0], 0.0]

    def rss(z):
        return np.sum((y - z[-1] - k @ z[:-1]) ** 2)

    cons = [{"type": "ineq", "fun": lambda z: thresh - rss(z)}]
    bounds = [(0, None)] * total + [(None, None) if free_b else (0, 0)]
    ref = minimize(
        lambda z: z[:-1].sum(),
        start,
        jac=lambda z: np.r_[np.ones(total), 0.0],
        bounds=bounds,
        constraints=cons,
        method="SLSQP",
        options={"maxiter": 1000, "ftol": 1e-12},
    )
    assert ref.success
    d = deconvolve(
        y, tau=-1 / np.log(g[0]), frame_rate=1.0, noise=sigma, baseline=None if free_b else 0.0
    )
    np.testing.assert_allclose(d.g, g)
    assert np.sum((y - d.baseline - d.calcium) ** 2) == pytest.approx(thresh, rel=1e-3)
    assert _full_l1(d) == pytest.approx(ref.fun, rel=2e-3)
    np.testing.assert_allclose(d.calcium, k @ ref.x[:-1], atol=0.02)


def test_l1_solves_the_lambda_problem_for_its_lambda():
    # For its lambda, OASIS' calcium minimises 1/2 |y - c|^2 + lam |s|_1 (KKT checked
    # by comparing with a bound-constrained solver's objective)
    rng = np.random.default_rng(2)
    total, g = 30, np.array([0.9])
    k = _kernel_matrix(g, total)
    y = k @ ((rng.random(total) < 0.15) * 1.5) + rng.normal(0, 0.25, total)
    d = deconvolve(y, tau=-1 / np.log(0.9), frame_rate=1.0, noise=0.25, baseline=0.0)

    def obj(s):
        return 0.5 * np.sum((y - k @ s) ** 2) + d.lam * s.sum()

    ref = minimize(
        obj,
        np.zeros(total),
        bounds=[(0, None)] * total,
        method="L-BFGS-B",
        jac=lambda s: -k.T @ (y - k @ s) + d.lam,
        options={"ftol": 1e-14},
    )
    mine = np.r_[d.calcium[0], d.spikes[1:]]
    assert obj(mine) <= ref.fun + 1e-6
    assert obj(mine) == pytest.approx(ref.fun, rel=1e-4)


def test_ar2_matches_the_noise_constrained_problem():
    # AR(2) pool merging is greedy (the paper's), then refined to the exact optimum
    rng = np.random.default_rng(7)
    total, g = 50, np.array([1.5, -0.56])
    k = _kernel_matrix(g, total)
    y = k @ ((rng.random(total) < 0.1) * 1.0) + rng.normal(0, 0.2, total)
    thresh = 0.2**2 * total
    ref = minimize(
        lambda s: s.sum(),
        nnls(k, y)[0],
        jac=lambda s: np.ones(total),
        bounds=[(0, None)] * total,
        constraints=[{"type": "ineq", "fun": lambda s: thresh - np.sum((y - k @ s) ** 2)}],
        method="SLSQP",
        options={"maxiter": 1000, "ftol": 1e-12},
    )
    d = deconvolve(
        y,
        model="ar2",
        tau=(-1 / np.log(0.7), -1 / np.log(0.8)),
        frame_rate=1.0,
        noise=0.2,
        baseline=0.0,
    )
    np.testing.assert_allclose(d.g, g)
    c = d.calcium
    s_full = c - np.r_[0, g[0] * c[:-1]] - np.r_[0, 0, g[1] * c[:-2]]
    assert np.sum((y - c) ** 2) == pytest.approx(thresh, rel=1e-3)
    assert s_full.sum() == pytest.approx(ref.fun, rel=2e-3)


# -- oasis-deconv, the reference implementation ------------------------------------------------
def _corr(a, b):
    return float(np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)]))


@pytest.mark.parametrize(
    ("g", "penalty", "slack"),
    [
        ((0.95,), "l1", 0.002),
        ((0.95,), "l0", 0.01),
        ((1.7, -0.712), "l1", 0.001),
        ((1.7, -0.712), "l0", 0.02),
    ],
)
def test_as_good_as_oasis_on_its_simulations(g, penalty, slack):
    oasis = pytest.importorskip("oasis.functions")
    y, _c, truth = oasis.gen_data(g=g, sn=0.3, T=3000, N=20, seed=1)
    model = "ar1" if len(g) == 1 else "ar2"
    d = deconvolve(y, model=model, penalty=penalty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own deprecation of g=
        ref = [oasis.deconvolve(r, g=(None,) * len(g), penalty=int(penalty[1])) for r in y]
    ours, theirs = _corr(d.spikes, truth), _corr([r[1] for r in ref], truth)
    assert ours >= theirs - slack, (ours, theirs)
    # same estimates of g and the noise, and nearly the same calcium
    np.testing.assert_allclose(d.g, [np.atleast_1d(r[3]) for r in ref], rtol=1e-6)
    assert _corr(d.calcium, [r[0] for r in ref]) > (
        0.999 if penalty == "l1" and model == "ar1" else 0.99
    )
    if penalty == "l1" and model == "ar1":
        np.testing.assert_allclose(d.baseline, [r[2] for r in ref], atol=0.01)


def test_ar2_at_least_as_good_as_oasis_pools_for_its_lambda():
    # oasis-deconv's oasisAR2 is the paper's greedy AR(2) pool merging; roitrace
    # refines the same start to the exact optimum: never a worse objective
    oasis = pytest.importorskip("oasis.oasis_methods")
    functions = pytest.importorskip("oasis.functions")
    y, _c, _s = functions.gen_data(g=(1.7, -0.712), sn=0.3, T=2000, N=3, seed=4)
    d = deconvolve(y, model="ar2")
    for i in range(3):
        g1, g2 = d.g[i]
        z = y[i] - d.baseline[i]

        def obj(c, g1=g1, g2=g2, z=z, lam=d.lam[i]):
            s = c - np.r_[0, g1 * c[:-1]] - np.r_[0, 0, g2 * c[:-2]]
            return 0.5 * np.sum((z - c) ** 2) + lam * s.sum()

        c, _s = oasis.oasisAR2(z, g1, g2, lam=d.lam[i])
        assert obj(d.calcium[i]) <= obj(c) + 1e-9
        assert np.corrcoef(d.calcium[i], c)[0, 1] > 0.99


def test_ar2_is_the_exact_optimum_for_its_lambda():
    # the active set once stopped early when frames added together were all dropped
    # again, leaving the objective above the optimum (and spikes less like the truth
    # than oasis-deconv's); onnls over one window of the whole trace is exact NNLS
    functions = pytest.importorskip("oasis.functions")
    y, _c, _s = functions.gen_data(g=(1.7, -0.712), sn=0.3, T=1000, N=2, seed=1)
    d = deconvolve(y, model="ar2")
    for i in range(2):
        g1, g2 = d.g[i]
        z = y[i] - d.baseline[i]

        def obj(c, g1=g1, g2=g2, z=z, lam=d.lam[i]):
            s = c - np.r_[0, g1 * c[:-1]] - np.r_[0, 0, g2 * c[:-2]]
            return 0.5 * np.sum((z - c) ** 2) + lam * s.sum()

        c, _s = functions.onnls(z, (g1, g2), lam=d.lam[i], window=z.size, shift=z.size)
        assert obj(d.calcium[i]) <= obj(c) + 1e-6 * abs(obj(c))


# -- the simulator's truth ---------------------------------------------------------------------
@pytest.mark.parametrize(("model", "low"), [("ar1", 0.6), ("ar2", 0.75)])
def test_simulated_spikes_are_found(model, low):
    sim = roitrace.simulate(n_frames=3000, n_cells=4, seed=3)
    rng = np.random.default_rng(0)
    y = sim.traces + rng.normal(0, 0.1, sim.traces.shape)
    # an event's transient first shows in the frame after it
    truth = np.zeros(sim.spikes.shape)
    truth[:, 1:] = sim.spikes[:, :-1]
    d = deconvolve(y, model=model)

    def smooth(a):  # events fall between frames: compare at 3-frame resolution
        return np.stack([np.convolve(r, np.ones(3), "same") for r in a])

    assert _corr(smooth(d.spikes), smooth(truth)) > low
    assert _corr(d.calcium, sim.traces) > 0.99
    np.testing.assert_allclose(d.baseline, 0.0, atol=0.05)


@pytest.mark.parametrize("model", ["ar1", "ar2"])
@pytest.mark.parametrize("penalty", ["l1", "l0"])
def test_noise_above_the_signal_gives_no_calcium(model, penalty):
    y = np.random.default_rng(0).normal(size=500) + 3.0
    d = deconvolve(y, noise=10.0, model=model, penalty=penalty)
    assert (d.calcium == 0).all() and (d.spikes == 0).all()
    assert d.baseline == pytest.approx(y.mean(), abs=0.05)


def test_tau_gives_g():
    d = deconvolve(np.random.default_rng(0).normal(size=100), tau=1.0, frame_rate=30.0, noise=1.0)
    np.testing.assert_allclose(d.g, [np.exp(-1 / 30)])
    d = deconvolve(
        np.random.default_rng(0).normal(size=100),
        model="ar2",
        tau=(0.1, 1.0),
        frame_rate=30.0,
        noise=1.0,
    )
    dd, r = np.exp(-1 / 30), np.exp(-1 / 3)
    np.testing.assert_allclose(d.g, [dd + r, -dd * r])


def test_estimates():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.5, (3, 4000))
    np.testing.assert_allclose(estimate_noise(x), 0.5, rtol=0.05)
    assert estimate_ar(x[0]).shape == (1,)
    assert estimate_ar(x, model="ar2").shape == (3, 2)


# -- shapes, properties ------------------------------------------------------------------------
def test_shapes():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 200)).cumsum(axis=1) * 0.1 + rng.normal(size=(3, 200))
    d = deconvolve(y)
    assert d.calcium.shape == d.spikes.shape == (3, 200)
    assert d.g.shape == (3, 1) and d.baseline.shape == d.noise.shape == d.lam.shape == (3,)
    one = deconvolve(y[1])
    assert one.spikes.shape == (200,) and one.g.shape == (1,)
    assert isinstance(one.baseline, float) and isinstance(one.noise, float)
    np.testing.assert_allclose(one.spikes, d.spikes[1])
    empty = deconvolve(np.zeros((0, 50)))
    assert empty.spikes.shape == (0, 50) and empty.g.shape == (0, 1)


@pytest.mark.parametrize("model", ["ar1", "ar2"])
@pytest.mark.parametrize("penalty", ["l1", "l0"])
def test_without_numba_same_numbers(monkeypatch, model, penalty):
    y = roitrace.simulate(n_frames=300, n_cells=2, seed=1).traces
    y = y + np.random.default_rng(1).normal(0, 0.1, y.shape)
    fast = deconvolve(y, model=model, penalty=penalty)
    monkeypatch.setattr(_kernels, "_nb", None)
    slow = deconvolve(y, model=model, penalty=penalty)
    np.testing.assert_allclose(slow.calcium, fast.calcium, atol=1e-9)
    np.testing.assert_allclose(slow.spikes, fast.spikes, atol=1e-9)
    np.testing.assert_allclose(slow.baseline, fast.baseline, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    y=arrays(np.float64, st.integers(20, 120), elements=st.floats(-1e3, 1e3, width=32)),
    model=st.sampled_from(["ar1", "ar2"]),
    penalty=st.sampled_from(["l1", "l0"]),
)
def test_spikes_never_negative(y, model, penalty):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant traces say so
        d = deconvolve(y, model=model, penalty=penalty)
    assert (d.spikes >= 0).all()
    assert np.isfinite(d.calcium).all() and np.isfinite(d.spikes).all()
    assert (d.calcium >= -1e-9 * (1 + np.abs(y).max())).all()


# -- bad input ---------------------------------------------------------------------------------
def test_nan_is_an_error():
    y = np.random.default_rng(0).normal(size=(3, 100))
    y[1, 5] = np.nan
    with pytest.raises(NonFiniteError, match="ROIs 1 "):
        deconvolve(y)


def test_nan_traces_can_give_nan():
    y = np.random.default_rng(0).normal(size=(3, 100))
    y[1, 5] = np.inf
    with pytest.warns(UserWarning, match="ROIs 1 hold NaN"):
        d = deconvolve(y, nonfinite="nan")
    assert y[1, 5] == np.inf  # the input is left alone
    assert np.isnan(d.spikes[1]).all() and np.isnan(d.baseline[1]) and np.isnan(d.noise[1])
    np.testing.assert_allclose(d.spikes[[0, 2]], deconvolve(y[[0, 2]]).spikes)


def test_constant_trace_warns_and_gives_zeros():
    y = np.random.default_rng(0).normal(size=(3, 100))
    y[2] = 4.0
    with pytest.warns(UserWarning, match="ROIs 2 are constant"):
        d = deconvolve(y)
    assert (d.spikes[2] == 0).all() and (d.calcium[2] == 0).all()
    assert d.baseline[2] == 4.0 and np.isnan(d.g[2]).all()
    assert (d.spikes[:2] >= 0).all()


def test_short_traces():
    with pytest.raises(ShortTraceError, match="at least 20"):
        deconvolve(np.arange(10.0))
    d = deconvolve(np.r_[0, 1.0, 0.5, 0.25, 0.2], tau=1.0, frame_rate=1.0, noise=0.01)
    assert d.spikes.shape == (5,)
    with pytest.raises(ShortTraceError):
        deconvolve(np.ones(2), tau=1.0, frame_rate=1.0, noise=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "ar3"}, "model='ar3' is unknown"),
        ({"penalty": "l2"}, "penalty='l2' is unknown"),
        ({"tau": 1.0}, "give frame_rate"),
        ({"tau": (0.1, 1.0), "frame_rate": 30.0}, "one decay time"),
        ({"tau": 1.0, "frame_rate": 30.0, "model": "ar2"}, r"tau=\(rise, decay\)"),
        ({"tau": (1.0, 0.1), "frame_rate": 30.0, "model": "ar2"}, "rise < decay"),
        ({"noise": -1.0}, "noise must be >= 0"),
        ({"noise": [1.0, 2.0]}, "one per ROI"),
        ({"noise": 0.0}, "noise of ROIs 0, 1, 2 is 0"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        deconvolve(np.random.default_rng(0).normal(size=(3, 100)), **kwargs)


def test_bad_shapes():
    with pytest.raises(ParameterError, match="1-D"):
        deconvolve(np.zeros((2, 2, 30)))
    with pytest.raises(ParameterError, match="numeric"):
        deconvolve(np.array(["a"] * 30))


# -- events ------------------------------------------------------------------------------------
def test_events_from_a_deconvolution():
    sim = roitrace.simulate(n_frames=2000, n_cells=3, seed=2, event_amplitude=1.5)
    y = sim.traces + np.random.default_rng(0).normal(0, 0.05, sim.traces.shape)
    d = deconvolve(y)
    ev = detect_events(d, threshold=3, refractory=2, frame_rate=sim.frame_rate)
    assert list(ev.columns) == ["roi", "frame", "time", "amplitude"]
    assert set(ev.roi) <= {0, 1, 2}
    np.testing.assert_allclose(ev.time, ev.frame / sim.frame_rate)
    # most true events are found within two frames
    for r in range(3):
        true = np.flatnonzero(sim.spikes[r]) + 1
        found = ev.frame[ev.roi == r].to_numpy()
        hits = np.mean([np.abs(found - t).min() <= 2 for t in true])
        assert hits > 0.8


def test_events_refractory_and_dff():
    x = np.zeros(100)
    x[[10, 12, 40]] = [5.0, 6.0, 4.0]
    ev = detect_events(x, noise=1.0, threshold=3, refractory=0, signal="dff")
    assert ev.frame.tolist() == [10, 12, 40] and np.isnan(ev.time).all()
    ev = detect_events(x, noise=1.0, threshold=3, refractory=2, signal="dff")
    assert ev.frame.tolist() == [12, 40] and ev.amplitude.tolist() == [6.0, 4.0]
    ev = detect_events(np.stack([x, x * 0]), noise=1.0, refractory=2)
    assert ev.roi.tolist() == [0, 0] and ev.amplitude.tolist() == [11.0, 4.0]
    assert len(detect_events(np.zeros(30), noise=1.0)) == 0


def test_events_bad_input():
    with pytest.raises(ParameterError, match="spikes need noise"):
        detect_events(np.zeros(30))
    with pytest.raises(ParameterError, match="refractory"):
        detect_events(np.zeros(30), noise=1.0, refractory=-1)
    with pytest.raises(NonFiniteError):
        detect_events(np.full(30, np.nan), noise=1.0)
