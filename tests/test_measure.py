"""Per-ROI statistics of traces (roitrace.measure)."""

from __future__ import annotations

import numpy as np
import scipy.stats
from numpy.testing import assert_allclose

from roitrace.measure import skewness, snr, trace_statistics


def test_statistics_of_many_traces_equal_one_at_a_time():
    x = np.random.default_rng(1).gamma(2.0, size=(300, 400))  # > 2 row blocks
    assert_allclose(skewness(x), scipy.stats.skew(x, axis=1), rtol=1e-10)
    one = np.array([snr(row) for row in x])
    assert_allclose(snr(x), one, rtol=0, atol=0)
    expect = 1 - 0.5 * np.var(np.diff(x, axis=1), axis=1) / np.var(x, axis=1)
    assert_allclose(snr(x), expect, rtol=1e-12)
    table = trace_statistics(x)
    assert set(table) == {"snr", "skewness"} and table["snr"].shape == (300,)


def test_degenerate_traces_give_zero():
    assert snr(np.ones((2, 10))).tolist() == [0.0, 0.0]
    assert skewness(np.ones((2, 10))).tolist() == [0.0, 0.0]
    assert snr(np.ones((3, 1))).tolist() == [0.0] * 3
    assert skewness(np.ones((3, 2))).tolist() == [0.0] * 3
