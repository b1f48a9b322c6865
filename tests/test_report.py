"""The HTML report: self-contained, its data faithful to the result, within its size
budget, and its inputs and outputs checked before any work."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest

import roitrace as rt
from roitrace.errors import OutputError, ParameterError
from roitrace.report import QUALITY_NAME


@pytest.fixture(scope="module")
def session():
    sim = rt.simulate(n_cells=12, n_frames=900, shape=(64, 64), seed=4)
    ds = rt.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 3}, deconvolve=True)
    return sim, ds


def _benchmark(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page_data(path):
    """The report's inlined metadata and traces' codes, decoded as the page's script does."""
    text = path.read_text(encoding="utf-8")

    def script(name):
        m = re.search(rf'<script type="[^"]+" id="rt-{name}">(.*?)</script>', text, re.S)
        return m.group(1)

    meta = json.loads(script("meta").replace("<\\/", "</"))
    codes = {}
    for name, info in zip(meta["traces"]["names"], meta["traces"]["vars"], strict=True):
        raw = gzip.decompress(base64.b64decode(script(f"trace-{name}")))
        codes[name] = np.frombuffer(raw, "<u2" if info["bits"] == 16 else "u1")
    return text, meta, codes


def _decoded(meta, codes, var):
    """Values of one trace (NaN where the code says so) and each ROI's quantum."""
    t = meta["traces"]
    v = t["names"].index(var)
    info = t["vars"][v]
    top = 65534 if info["bits"] == 16 else 254
    n = len(meta["ids"])
    block = codes[var].reshape(n, -1).astype(float)
    assert block.shape[1] == info["points"] * (2 if info["pairs"] else 1)
    lo, hi = np.asarray(t["scales"][v]).reshape(-1, 2).T
    values = lo[:, None] + block / top * (hi - lo)[:, None]
    values[block == top + 1] = np.nan
    return values, (hi - lo) / top


def test_report_is_self_contained_and_holds_every_trace(session, tmp_path):
    sim, ds = session
    out = rt.report(ds, tmp_path / "report.html", movie=sim.movie)
    text, meta, codes = _page_data(out)
    assert not re.search(r"https?://", text, re.I), "the page must load nothing from the web"
    assert not re.search(r"<(link|iframe|object|embed)\b", text, re.I)
    assert re.findall(r'\bsrc="([^"]*)"', text) == []  # images are data: URLs in JSON
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert meta["ids"] == ds["roi"].values.tolist()
    assert all(v["step"] == 1 and v["bits"] == 16 for v in meta["traces"]["vars"])
    assert set(meta["traces"]["names"]) == {
        "F", "Fneu", "F_corrected", "F0", "dff", "calcium", "spikes"
    }  # fmt: skip
    for var in meta["traces"]["names"]:
        got, quantum = _decoded(meta, codes, var)
        want = ds[var].values
        assert np.all(np.abs(got - want) <= quantum[:, None] * 0.51 + 1e-12), var
    # the projections of the movie, as PNG data URLs
    images = json.loads(re.search(r'id="rt-images">(.*?)</script>', text, re.S).group(1))
    assert set(images) == {"mean", "std", "max", "correlation"}
    assert all(v.startswith("data:image/png;base64,") for v in images.values())
    qc = json.loads((tmp_path / QUALITY_NAME).read_text())
    assert qc["report"] == "report.html"
    assert [r["flags"] for r in qc["rois"]] == [
        [meta["flag_names"][k] for k in f] for f in meta["flags"]
    ]


def test_long_traces_are_binned_to_min_and_max_within_the_budget(session, tmp_path):
    _, ds = session
    out = rt.report(ds, tmp_path / "small.html", max_mb=0.1)
    assert out.stat().st_size <= 100_000
    _, meta, codes = _page_data(out)
    info = dict(zip(meta["traces"]["names"], meta["traces"]["vars"], strict=True))
    step = info["dff"]["step"]
    assert step > 1 and info["dff"]["pairs"] and info["dff"]["bits"] == 8
    # dF/F, what cells are chosen by, gets the finest step
    assert step == min(v["step"] for v in info.values() if v["step"] > 1) or step <= min(
        info[v]["step"] for v in ("F", "Fneu", "F_corrected")
    )
    got, quantum = _decoded(meta, codes, "dff")
    x = ds["dff"].values
    T = x.shape[1]
    pad = np.pad(x, ((0, 0), (0, (-T) % step)), constant_values=np.nan).reshape(len(x), -1, step)
    want = np.stack([np.nanmin(pad, axis=2), np.nanmax(pad, axis=2)], axis=2).reshape(len(x), -1)
    assert np.all(np.abs(got - want) <= quantum[:, None] * 0.51 + 1e-12)
    # every transient survives: the largest value of each trace is in the envelope
    assert np.allclose(np.nanmax(got, axis=1), x.max(axis=1), atol=float(quantum.max()))


def test_size_of_a_2000_roi_session_is_within_the_target(tmp_path):
    simulated_result = _benchmark("report_size").simulated_result
    ds = simulated_result(2000, 6000, seed=0, deconvolve=False)
    out = rt.report(ds, tmp_path / "big.html")
    assert out.stat().st_size <= 20_000_000
    _, meta, _ = _page_data(out)
    assert len(meta["ids"]) == 2000


def test_report_from_files_and_without_pixels(session, tmp_path):
    _sim, ds = session
    rt.save(ds, tmp_path / "r.nc")
    out = rt.report(tmp_path / "r.nc", tmp_path / "from-file.html", quality=tmp_path / "a.json")
    _, meta, _ = _page_data(out)
    assert meta["geometry"] and meta["report"]["inputs"]["result"].endswith("r.nc")
    rt.save(ds, tmp_path / "r.csv")
    with pytest.warns(UserWarning, match="no ROI pixels"):
        out = rt.report(tmp_path / "r.csv", tmp_path / "csv.html", quality=tmp_path / "c.json")
    _, meta, _ = _page_data(out)
    assert not meta["geometry"] and len(meta["ids"]) == 12


def test_refused_before_any_work(session, tmp_path):
    sim, ds = session
    nc = tmp_path / "r.nc"
    rt.save(ds, nc)
    with pytest.raises(ParameterError, match=r"end its name in \.html"):
        rt.report(ds, tmp_path / "report.png")
    with pytest.raises(ParameterError, match=r"end its name in \.json"):
        rt.report(nc, tmp_path / "r.html", quality=nc)
    with pytest.raises(ParameterError, match="max_mb"):
        rt.report(ds, tmp_path / "r.html", max_mb=0)
    with pytest.raises(ParameterError, match="thresholds"):
        rt.report(ds, tmp_path / "r.html", min_snrr=3)
    with pytest.raises(ParameterError, match="frames are 32 x 32"):
        rt.report(ds, tmp_path / "r.html", movie=sim.movie[:, :32, :32])
    assert not (tmp_path / "r.html").exists() and not (tmp_path / QUALITY_NAME).exists()


def test_quality_file_of_another_report_is_not_replaced(session, tmp_path):
    _, ds = session
    rt.report(ds, tmp_path / "one.html")
    before = (tmp_path / QUALITY_NAME).read_bytes()
    with pytest.raises(OutputError, match=r"belongs to the report one\.html"):
        rt.report(ds, tmp_path / "two.html")
    assert (tmp_path / QUALITY_NAME).read_bytes() == before
    assert not (tmp_path / "two.html").exists()
    rt.report(ds, tmp_path / "one.html")  # its own report may replace it
    rt.report(ds, tmp_path / "two.html", quality=tmp_path / "two.quality_control.json")
    (tmp_path / "foreign.json").write_text('{"mine": true}')
    with pytest.raises(OutputError, match="not written by a roitrace report"):
        rt.report(ds, tmp_path / "three.html", quality=tmp_path / "foreign.json")


def test_movie_must_be_the_results_own(session, tmp_path):
    sim, ds = session
    with pytest.raises(ParameterError, match="the movie has 600 frames"):
        rt.report(ds, tmp_path / "r.html", movie=sim.movie[:600])
    longer = np.concatenate([sim.movie, sim.movie[:10]])
    with pytest.raises(ParameterError, match="the movie has 910 frames"):
        rt.report(ds, tmp_path / "r.html", movie=longer)
    part = rt.extract(sim.movie, sim.labels, frames=(100, 400))
    rt.report(part, tmp_path / "part.html", movie=sim.movie)  # frames of a longer movie
    assert not (tmp_path / "r.html").exists()


def test_quality_file_of_a_deleted_report_may_be_replaced(session, tmp_path):
    _, ds = session
    rt.report(ds, tmp_path / "old.html")
    (tmp_path / "old.html").unlink()
    rt.report(ds, tmp_path / "new.html")
    assert json.loads((tmp_path / QUALITY_NAME).read_text())["report"] == "new.html"


def test_missing_input_is_said_before_the_quality_file(session, tmp_path):
    from roitrace.errors import ResultNotFoundError

    _, ds = session
    rt.report(ds, tmp_path / "one.html")
    with pytest.raises(ResultNotFoundError, match="no such file"):
        rt.report(tmp_path / "missing.nc", tmp_path / "two.html")


def test_result_without_pixels_shows_the_movies_image(session, tmp_path):
    sim, ds = session
    rt.save(ds, tmp_path / "r.csv")
    with pytest.warns(UserWarning, match="no ROI pixels"):
        out = rt.report(tmp_path / "r.csv", tmp_path / "csv.html", movie=sim.movie)
    text, meta, _ = _page_data(out)
    assert not meta["geometry"] and meta["frame_shape"] == [64, 64]
    assert '"mean":"data:image/png;base64,' in text
    assert meta["report"]["title"].startswith("r.csv")


def test_title_and_footer_name_the_files(session, tmp_path):
    _, ds = session
    rt.save(ds, tmp_path / "cells.nc")
    out = rt.report(tmp_path / "cells.nc", tmp_path / "a.html", quality=tmp_path / "a.qc.json")
    text, meta, _ = _page_data(out)
    assert meta["report"]["title"] == "cells.nc — array"
    assert meta["report"]["quality"] == "a.qc.json"
    assert "<title>cells.nc — array — roitrace report</title>" in text
