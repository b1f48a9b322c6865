"""The extraction plan: small, frozen, picklable, and the same numbers as extract()."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace.extract import run_plan, weigh_by_brightness

NPIL = {"gap": 1, "width": 2, "exclude_gap": 1, "min_pixels": 30}


@pytest.fixture(scope="module")
def sim():
    return rt.simulate(shape=(48, 48), n_frames=150, n_cells=5, seed=4)


@pytest.mark.parametrize("method", ["mean", "median", "weighted", "trimmed_mean"])
def test_extract_from_a_plan_equals_extract_from_rois(sim, method):
    plan = rt.plan_extraction(sim.labels, sim.movie.shape[1:], method=method, neuropil=NPIL)
    again = pickle.loads(pickle.dumps(plan))  # what a cluster worker receives
    a = rt.extract(sim.movie, sim.labels, method=method, neuropil=NPIL)
    b = rt.extract(sim.movie, again)
    for var in ("F", "Fneu", "F_corrected", "dff", "snr", "pixel_y"):
        assert_array_equal(a[var].values, b[var].values)
    assert a.attrs["parameters"] == b.attrs["parameters"]


def test_plan_holds_index_arrays_not_masks(sim):
    plan = rt.plan_extraction(sim.labels, sim.movie.shape[1:], neuropil=NPIL)
    assert plan.n_rois == 5 and len(plan.rings) == 5
    for k, cell in enumerate(plan.cells, start=1):
        assert_array_equal(cell, np.flatnonzero(sim.labels == k))
    pixels = sum(c.size for c in plan.cells) + sum(r.size for r in plan.rings)
    # a few bytes per pixel index, nowhere near 5 frame-sized masks (5 * 48 * 48)
    assert len(pickle.dumps(plan)) < 8 * pixels + 4000
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.method = "median"  # type: ignore[misc]
    for p in (plan, pickle.loads(pickle.dumps(plan))):  # arrays too, also once unpickled
        with pytest.raises(ValueError, match="read-only"):
            p.cells[0][0] = 0
    assert repr(plan).startswith("ExtractionPlan(5 ROIs, ") and len(repr(plan)) < 300


def test_overlap_drop_and_roi_pixels(sim):
    labels = np.zeros((20, 20), int)
    a = np.zeros((20, 20), bool)
    a[2:8, 2:8] = True
    b = np.zeros((20, 20), bool)
    b[5:11, 5:11] = True
    rois = rt.RoiSet.from_masks([a, b])
    plan = rt.plan_extraction(rois, (20, 20), overlap="drop")
    assert [c.size for c in plan.cells] == [36 - 9, 36 - 9]
    assert plan.rois().frame_shape == (20, 20)
    assert int(plan.rois()[0].mask((20, 20)).sum()) == 27
    assert labels.sum() == 0


def test_brightness_weights_are_measured_when_the_plan_runs(sim):
    plan = rt.plan_extraction(sim.labels, sim.movie.shape[1:], method="weighted")
    assert plan.weights == "brightness" and plan.needs_brightness()
    with pytest.raises(rt.ParameterError, match="brightness weights are not measured yet"):
        run_plan(sim.movie, plan)
    weighed = weigh_by_brightness(sim.movie, plan)
    mask = sim.labels == 1
    assert_array_equal(weighed.cell_weights[0], rt.pixel_weights(sim.movie, mask))
    cells, rings = run_plan(sim.movie, weighed)
    assert rings is None
    assert_array_equal(cells, rt.extract(sim.movie, plan)["F"].values)


def test_run_plan_over_some_frames(sim):
    plan = rt.plan_extraction(sim.labels, sim.movie.shape[1:], method="median", neuropil=NPIL)
    cells, rings = run_plan(sim.movie, plan, execution=rt.Execution(frames=(20, 61)))
    ds = rt.extract(sim.movie, plan)
    assert_array_equal(cells, ds["F"].values[:, 20:61])
    assert_array_equal(rings, ds["Fneu"].values[:, 20:61])


def test_plan_mistakes(sim):
    plan = rt.plan_extraction(sim.labels, sim.movie.shape[1:])
    with pytest.raises(rt.ParameterError, match="method given with a plan: the plan holds it"):
        rt.extract(sim.movie, plan, method="mean")  # the default, but said: not ignored
    with pytest.raises(rt.ParameterError, match="frame_shape=\\(48,\\): give the movie's"):
        rt.plan_extraction(sim.labels, (48,))
    with pytest.raises(rt.ShapeMismatchError, match="plan was made for 48 x 48 frames"):
        rt.extract(sim.movie[:, :40], plan)
    with pytest.raises(rt.ParameterError, match="neuropil_method is used only with a neuropil"):
        rt.plan_extraction(sim.labels, (48, 48), neuropil_method="median")
    with pytest.raises(rt.ParameterError, match="overlap='some' is unknown"):
        rt.plan_extraction(sim.labels, (48, 48), overlap="some")
