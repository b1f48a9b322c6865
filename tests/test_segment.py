"""find_rois: projection -> threshold -> one ROI per connected component."""

from __future__ import annotations

import numpy as np
import pytest

import roitrace as rt
from roitrace import cli
from roitrace.segment import DEFAULT_MIN_SIZE


def test_find_rois_on_a_movie_equals_the_steps_by_hand():
    sim = rt.simulate(shape=(48, 48), n_frames=200, n_cells=4, seed=5)
    by_hand = rt.label(
        rt.threshold(rt.projection(sim.movie, "std"), method="otsu"), min_size=DEFAULT_MIN_SIZE
    )
    found = rt.find_rois(sim.movie, method="otsu", min_size=DEFAULT_MIN_SIZE)
    assert found.ids == by_hand.ids
    for a, b in zip(found, by_hand, strict=True):
        assert np.array_equal(a.y, b.y) and np.array_equal(a.x, b.x)
    assert found.meta["threshold"] == {"method": "otsu"} and found.meta["min_size"] == 10


def test_default_min_size_leaves_out_specks_and_says_so():
    image = np.zeros((20, 20))
    image[2:6, 2:6] = 5
    image[10, 10] = 5
    with pytest.warns(UserWarning, match="left out 1 component of under 10 pixels"):
        rois = rt.find_rois(image, method="absolute", value=1)
    assert [r.npix for r in rois] == [16]
    assert rois.meta["threshold"] == {"method": "absolute", "value": 1}
    with pytest.raises(rt.EmptyMaskError, match="smaller min_size"):
        rt.find_rois(image * (image.shape[0] > 0) * np.eye(20), method="absolute", value=1)
    assert len(rt.find_rois(image, method="absolute", value=1, min_size=1)) == 2


def test_sigma_records_the_k_it_used_and_the_cli_shares_the_default():
    image = np.random.default_rng(0).normal(0, 1, (30, 30))
    image[5:10, 5:10] = 20
    assert rt.find_rois(image).meta["threshold"] == {"method": "sigma", "k": 3.0}
    assert cli.DEFAULT_MIN_SIZE == DEFAULT_MIN_SIZE
