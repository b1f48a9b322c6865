"""Normalisation, saving, and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from scipy.ndimage import percentile_filter

import roitrace as rt
from roitrace._atomic import atomic_path


def test_dff_whole_trace_and_window():
    rng = np.random.default_rng(0)
    f = 100 + rng.normal(0, 1, 500) + np.linspace(0, 20, 500)
    f0 = np.percentile(f, 8)
    assert_allclose(rt.dff(f), (f - f0) / f0)
    run = percentile_filter(f, 8, size=101, mode="nearest")
    assert_allclose(rt.dff(f, window=101), (f - run) / run)
    # a running baseline removes the drift that a single F0 leaves in
    assert (
        abs(np.polyfit(np.arange(500), rt.dff(f, window=101), 1)[0])
        < abs(np.polyfit(np.arange(500), rt.dff(f), 1)[0]) / 5
    )


def test_normalisations_on_roi_by_time_arrays_and_dataarrays():
    rng = np.random.default_rng(1)
    x = 50 + rng.random((3, 40))
    for fn in (rt.dff, rt.zscore, rt.minmax):
        two_d = fn(x)
        assert two_d.shape == (3, 40)
        assert_allclose(two_d[1], fn(x[1]))
        da = xr.DataArray(x, dims=("roi", "time"), coords={"roi": [4, 5, 6]})
        out = fn(da)
        assert isinstance(out, xr.DataArray) and out.dims == ("roi", "time")
        assert_allclose(out.values, two_d)
    assert_allclose(rt.zscore(x).std(axis=1), 1)
    assert_allclose(rt.minmax(x).max(axis=1), 1)


def test_normalisation_errors():
    with pytest.raises(rt.BaselineError, match="dF/F0 is undefined"):
        rt.dff(np.array([-5.0, -3.0, 1.0]))
    with pytest.raises(rt.BaselineError, match="constant"):
        rt.zscore(np.ones(5))
    with pytest.raises(rt.BaselineError, match="constant"):
        rt.minmax(np.ones(5))
    with pytest.raises(rt.ParameterError, match="window"):
        rt.dff(np.ones(5) + 1, window=50)


def _result():
    data = np.random.default_rng(2).poisson(300, (30, 16, 16)).astype(np.uint16)
    labels = np.zeros((16, 16), int)
    labels[3:6, 3:6] = 1
    labels[9:12, 9:12] = 2
    return rt.extract(rt.as_movie(data, frame_rate=10.0), labels, neuropil={"gap": 1, "width": 2})


@pytest.mark.parametrize("suffix", [".csv", ".nc", ".h5"])
def test_save_load_round_trip(tmp_path, suffix):
    ds = _result()
    path = rt.save(ds, tmp_path / f"out{suffix}")
    back = rt.load(path)
    for v in ("F", "Fneu", "F_corrected"):
        assert_array_equal(back[v].values, ds[v].values)
    assert_array_equal(back["roi"], ds["roi"])
    assert_allclose(back["time"], ds["time"])
    assert back.attrs["roitrace_version"] == rt.__version__
    assert "neuropil" in back.attrs["parameters"]


def test_csv_is_tidy(tmp_path):
    path = rt.save(_result(), tmp_path / "t.csv")
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert lines[0] == "roi,name,frame,time,F,Fneu,F_corrected,F0,dff,neuropil_factor,noise"
    assert len(lines) == 1 + 2 * 30


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new, partial")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_save_unknown_suffix(tmp_path):
    with pytest.raises(rt.ParameterError, match="unknown output format"):
        rt.save(_result(), tmp_path / "x.xlsx")


def test_csv_keeps_roi_names_even_with_commas_quotes_and_percent(tmp_path):
    ds = _result()
    names = np.array(['cell, "A"', "50% bright"])[: ds.sizes["roi"]]
    ds = ds.assign_coords(name=("roi", names))
    path = rt.save(ds, tmp_path / "named.csv")
    back = rt.load(path)
    assert_array_equal(back["name"].values, names)
    assert_array_equal(back["F"].values, ds["F"].values)
    import pandas as pd

    table = pd.read_csv(
        path,
        comment=None,
        skiprows=sum(ln.startswith("#") for ln in path.read_text().splitlines()),
    )
    assert list(table["name"].unique()) == list(names)
