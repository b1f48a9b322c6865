"""Quality control: every flag's rule on crafted cases, the document's schema."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

import roitrace as rt
from roitrace.errors import ParameterError
from roitrace.quality import FLAGS, SCHEMA, THRESHOLDS, quality_control, write_quality


def _movie(T=400, shape=(40, 40), seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return rng.poisson(200, (T, *shape)).astype(dtype)


def _labels(shape, boxes):
    lab = np.zeros(shape, np.int32)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        lab[y0:y1, x0:x1] = k
    return lab


def _by_id(qc):
    return {r["id"]: r for r in qc["rois"]}


def _add_transients(movie, mask, every=40, height=400):
    """Calcium-like transients (a jump, then an exponential decay) in the mask's pixels."""
    T = movie.shape[0]
    trace = np.zeros(T)
    for t0 in range(10, T, every):
        trace[t0:] += height * np.exp(-np.arange(T - t0) / 8.0)
    out = movie.astype(np.float64)
    out[:, mask] += trace[:, None]
    return out.astype(movie.dtype)


def test_edge_flag_only_for_rois_on_the_border():
    movie = _movie()
    lab = _labels(movie.shape[1:], [(0, 4, 10, 14), (15, 19, 15, 19), (30, 34, 36, 40)])
    qc = _by_id(quality_control(rt.extract(movie, lab)))
    assert "edge" in qc[1]["flags"]
    assert "edge" not in qc[2]["flags"]
    assert "edge" in qc[3]["flags"]  # touches the last column


def test_saturated_needs_the_movie_and_flags_the_saturated_roi():
    movie = _movie()
    lab = _labels(movie.shape[1:], [(5, 9, 5, 9), (20, 24, 20, 24)])
    movie[100, 21, 22] = np.iinfo(np.uint16).max  # one pixel of ROI 2, one frame
    ds = rt.extract(movie, lab)
    without = quality_control(ds)
    assert without["flags"]["saturated"]["evaluated"] is False
    assert all("saturated" not in r["flags"] for r in without["rois"])
    qc = quality_control(ds, movie=movie)
    assert qc["flags"]["saturated"] == {
        "rule": FLAGS["saturated"],
        "evaluated": True,
        "count": 1,
    }
    rois = _by_id(qc)
    assert rois[2]["flags"] == ["saturated"] or "saturated" in rois[2]["flags"]
    assert rois[2]["metrics"]["saturated_pixels"] == 1
    assert "saturated" not in rois[1]["flags"]
    # a float movie cannot saturate at a dtype's maximum: not evaluated
    floaty = quality_control(ds, movie=movie.astype(np.float32))
    assert floaty["flags"]["saturated"]["evaluated"] is False


def test_empty_ring_and_small_ring():
    movie = _movie(shape=(40, 40))
    # ROI 1 in a corner: its ring is clipped by the frame to well under half its area;
    # ROI 2 in the open
    lab = _labels(movie.shape[1:], [(0, 3, 0, 3), (18, 22, 18, 22)])
    ds = rt.extract(movie, lab, neuropil={"gap": 2, "width": 3})
    rois = _by_id(quality_control(ds))
    assert "neuropil_small" in rois[1]["flags"]
    assert rois[1]["metrics"]["npix_neuropil"] < 0.5 * rois[1]["metrics"]["ring_area_asked"]
    assert "neuropil_small" not in rois[2]["flags"]
    assert "neuropil_empty" not in rois[2]["flags"]
    # a result whose ring holds no pixel (another tool's, or one made without rings)
    empty = ds.assign_coords(npix_neuropil=("roi", np.array([0, 60])))
    rois = _by_id(quality_control(empty))
    assert "neuropil_empty" in rois[1]["flags"]
    assert "neuropil_small" not in rois[1]["flags"]  # empty, said once
    assert "neuropil_empty" not in rois[2]["flags"]


def test_ring_grown_to_min_pixels_and_still_short():
    movie = _movie(shape=(40, 40))
    lab = _labels(movie.shape[1:], [(18, 22, 18, 22)])
    ds = rt.extract(movie, lab, neuropil={"gap": 1, "width": 1, "min_pixels": 100})
    (roi,) = quality_control(ds)["rois"]
    assert "neuropil_grown" in roi["flags"]
    assert "neuropil_small" not in roi["flags"]
    plain = quality_control(rt.extract(movie, lab, neuropil={"gap": 1, "width": 1}))
    assert plain["flags"]["neuropil_grown"]["evaluated"] is False
    # a ring that cannot reach min_pixels even at the frame's size
    with pytest.warns(UserWarning, match="min_pixels"):
        short = rt.extract(movie, lab, neuropil={"gap": 1, "width": 1, "min_pixels": 5000})
    (roi,) = quality_control(short)["rois"]
    assert {"neuropil_grown", "neuropil_small"} <= set(roi["flags"])


def test_nan_frames_negative_and_f0_flags():
    movie = _movie()
    lab = _labels(movie.shape[1:], [(5, 9, 5, 9), (20, 24, 20, 24), (28, 32, 8, 12)])
    ds = rt.extract(movie, lab, neuropil={"gap": 1, "width": 2})
    F = ds["F"].values.copy()
    F[0, [3, 7]] = np.nan
    Fc = ds["F_corrected"].values.copy()
    Fc[1] -= 1e4  # far below 0: over-subtracted
    F0 = ds["F0"].values.copy()
    F0[1] = -5.0
    F0[2] = 0.5 * float(ds["noise"][2])  # positive but under 3 noise SDs
    crafted = ds.assign(F=(ds["F"].dims, F), F_corrected=(ds["F"].dims, Fc), F0=(ds["F"].dims, F0))
    rois = _by_id(quality_control(crafted))
    assert "nan_frames" in rois[1]["flags"] and rois[1]["metrics"]["nan_frames"] == 2
    assert {"negative", "f0_nonpositive"} <= set(rois[2]["flags"])
    assert "f0_small" not in rois[2]["flags"]  # nonpositive says it
    assert "f0_small" in rois[3]["flags"]
    assert "f0_nonpositive" not in rois[3]["flags"]
    for r in rois.values():
        assert "negative" not in r["flags"] or r["id"] == 2
    assert "nan_frames" not in rois[2]["flags"]


def test_low_snr_flags_noise_not_cells():
    movie = _movie(T=600, shape=(40, 40), seed=3)
    lab = _labels(movie.shape[1:], [(5, 10, 5, 10), (25, 30, 25, 30)])
    movie = _add_transients(movie, lab == 1)
    rois = _by_id(quality_control(rt.extract(movie, lab)))
    assert "low_snr" not in rois[1]["flags"] and rois[1]["metrics"]["peak_snr"] > 20
    assert "low_snr" in rois[2]["flags"] and rois[2]["metrics"]["peak_snr"] < 5
    # the threshold decides
    lenient = _by_id(quality_control(rt.extract(movie, lab), min_snr=1.0))
    assert "low_snr" not in lenient[2]["flags"]


def test_not_converged_only_when_estimated():
    sim = rt.simulate(n_cells=6, n_frames=600, shape=(64, 64), seed=2)
    fixed = quality_control(rt.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 3}))
    assert fixed["flags"]["neuropil_not_converged"]["evaluated"] is False
    with pytest.warns(UserWarning, match="did not converge"):
        ds = rt.extract(
            sim.movie, sim.labels, neuropil={"gap": 2, "width": 3}, neuropil_factor="estimate"
        )
    converged = ds["neuropil_converged"].values
    ds = ds.assign_coords(neuropil_converged=("roi", np.r_[False, converged[1:]]))
    qc = quality_control(ds)
    assert "neuropil_not_converged" in qc["rois"][0]["flags"]
    assert qc["flags"]["neuropil_not_converged"]["count"] == int((~ds.neuropil_converged).sum())


def test_document_validates_against_schema_and_is_json(tmp_path):
    sim = rt.simulate(n_cells=5, n_frames=300, shape=(48, 48), seed=1)
    ds = rt.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 2}, deconvolve=True)
    ds["F"][0, 4] = np.nan  # null metrics must still validate
    qc = quality_control(ds, movie=sim.movie)
    jsonschema.validate(qc, SCHEMA)
    path = write_quality(qc, tmp_path / "qc.json")
    back = json.loads(path.read_text())
    jsonschema.validate(back, SCHEMA)
    assert back["recording"]["n_rois"] == 5 and len(back["rois"]) == 5
    assert back["thresholds"] == THRESHOLDS
    assert [r["id"] for r in back["rois"]] == ds["roi"].values.tolist()
    assert set(back["flags"]) == set(FLAGS)
    # the schema itself rejects a wrong document (it can fail)
    broken = dict(back, rois=[{"id": 1, "name": "x", "metrics": {}, "flags": ["bogus"]}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


@pytest.mark.parametrize(
    ("kw", "value"),
    [
        ("min_snr", -1),
        ("max_negative", 1.5),
        ("min_ring_fraction", 2),
        ("min_f0_noise", float("nan")),
    ],
)
def test_bad_thresholds_are_refused(kw, value):
    ds = rt.extract(_movie(T=50), _labels((40, 40), [(5, 9, 5, 9)]))
    with pytest.raises(ParameterError, match=kw):
        quality_control(ds, **{kw: value})


def test_documented_schema_and_rules_match_the_code():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    assert json.loads((docs / "quality_control.schema.json").read_text()) == SCHEMA
    text = (docs / "quality_control.md").read_text()
    for flag in FLAGS:
        assert f"| `{flag}` |" in text, flag
    for name in THRESHOLDS:
        assert f"`{name}`" in text, name


def test_a_path_and_metrics_that_cannot_be_computed(tmp_path):
    sim = rt.simulate(n_cells=4, n_frames=300, shape=(48, 48), seed=1)
    ds = rt.extract(sim.movie, sim.labels, deconvolve=True)
    spikes = ds["spikes"].values.copy()
    spikes[1] = np.nan  # as for a ROI whose F0 <= 0: not deconvolved
    ds = ds.assign(spikes=(ds["spikes"].dims, spikes))
    rt.save(ds, tmp_path / "r.nc")
    qc = quality_control(tmp_path / "r.nc")
    assert qc["rois"][1]["metrics"]["spike_sum"] is None
    assert qc["rois"][0]["metrics"]["spike_sum"] > 0
