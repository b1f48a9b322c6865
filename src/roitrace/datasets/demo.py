"""The demo: the notebook's single-cell workflow on a simulated movie with known truth.

``roitrace demo --out DIR`` calls :func:`run_demo`; it is also a worked example of
the API, read top to bottom.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ..errors import BaselineError
from ..extract import extract
from ..movie import open_movie
from ..neuropil import neuropil_ring
from ..normalize import dff, zscore
from ..options import AGGREGATION_METHODS as HOWS
from ..projection import projection
from ..threshold import threshold
from ..traces import pixel_weights, weights_image
from .simulate import simulate

__all__ = ["run_demo"]

GAP, WIDTH = 2, 3


def run_demo(
    out_dir: str | Path = "roitrace-demo", *, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """Simulate a single-cell movie, extract its trace every way, write CSV and figures.

    Returns a summary: paths written, mask sizes, and for each aggregation the
    correlation of the raw and neuropil-corrected trace with the true calcium trace.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate(
        shape=(48, 48),
        n_frames=1800,
        n_cells=1,
        frame_rate=30.0,
        cell_radius=(6.0, 7.0),
        seed=seed,
    )
    movie_path = sim.to_tiff(out / "movie.tif")
    cells = _write_cells(out, seed)

    movie = open_movie(movie_path)
    proj = projection(movie, "std", progress=progress)
    mask = threshold(proj, method="sigma", k=3)
    thr = float(np.mean(proj) + 3 * np.std(proj))
    ring = neuropil_ring(mask, gap=GAP, width=WIDTH)
    weights = pixel_weights(movie, mask)

    results = {
        how: extract(
            movie, mask, method=how, neuropil={"gap": GAP, "width": WIDTH}, progress=progress
        )
        for how in HOWS
    }
    truth = sim.traces[0]
    correlations = {
        how: (_r(ds["F"].values[0], truth), _r(ds["F_corrected"].values[0], truth))
        for how, ds in results.items()
    }
    # A bad choice for contrast: the notebook's loose "above the 10th percentile" mask
    # takes in background pixels and dilutes the cell's signal.
    loose = extract(movie, threshold(proj, method="percentile", q=10), method="mean")
    correlations["mean, loose mask (std > 10th pct)"] = (
        _r(loose["F"].values[0], truth),
        float("nan"),
    )
    best = results["mean"]
    corrected = best["F_corrected"].values[0]
    # A sliding 30 s baseline follows the slow bleaching that a single F0 would leave in.
    window = int(30 * sim.frame_rate)
    try:
        dff_trace = dff(corrected, window=window)
    except BaselineError:
        dff_trace = dff(best["F"].values[0], window=window)

    params = {
        "seed": seed,
        "threshold": "std > mean + 3 std",
        "neuropil_gap": GAP,
        "neuropil_width": WIDTH,
        "neuropil_factor": 0.7,
        "dff_baseline": "8th percentile, 30 s window",
    }
    csv = _write_csv(out / "traces.csv", sim, results, dff_trace, params)
    figures = _figures(
        out,
        proj,
        mask,
        ring,
        weights,
        results,
        dff_trace,
        truth,
        sim.frame_rate,
        params,
        correlations,
    )
    return {
        "movie": movie_path,
        "shape": movie.shape,
        "frame_rate": sim.frame_rate,
        "threshold": thr,
        "npix": int(mask.sum()),
        "npix_neuropil": int(ring.sum()),
        "gap": GAP,
        "width": WIDTH,
        "correlations": correlations,
        "csv": csv,
        "figures": figures,
        "cells": cells,
    }


def _write_cells(out: Path, seed: int) -> list[Path]:
    """A many-cell movie to try the other commands on: as TIFF, and as HDF5 stored
    (Y, X, T) like some acquisition systems do (dataset ``imaging``)."""
    import h5py

    # each cell takes in 40-90 % of the neuropil around it, as in real recordings, so
    # that --neuropil-factor estimate has something to find
    sim = simulate(
        shape=(96, 96),
        n_frames=900,
        n_cells=12,
        frame_rate=30.0,
        seed=seed + 1,
        contamination=(0.4, 0.9),
    )
    tif = sim.to_tiff(out / "cells.tif")
    h5 = out / "cells.h5"
    with atomic_path(h5) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("imaging", data=np.moveaxis(sim.movie, 0, -1), chunks=True)
        for dim, label in zip(ds.dims, ("y", "x", "t"), strict=True):
            dim.label = label  # so that readers know the order without being told
        ds.attrs["frame_rate"] = sim.frame_rate
    return [tif, h5]


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _write_csv(path: Path, sim, results, dff_trace, params) -> Path:
    cols = {
        "frame": np.arange(sim.movie.shape[0]),
        "time": sim.time,
        "true_calcium": sim.traces[0],
    }
    for how, ds in results.items():
        cols[f"F_{how}"] = ds["F"].values[0]
    cols["Fneu_mean"] = results["mean"]["Fneu"].values[0]
    cols["F_corrected_mean"] = results["mean"]["F_corrected"].values[0]
    cols["dff_mean"] = dff_trace
    header = f"# roitrace_version: {__version__}\n# parameters: {json.dumps(params)}\n"
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(header + ",".join(cols) + "\n")
        np.savetxt(
            f,
            np.column_stack(list(cols.values())),
            delimiter=",",
            fmt=["%d"] + ["%.10g"] * (len(cols) - 1),
        )
    return path


def _figures(
    out, proj, mask, ring, weights, results, dff_trace, truth, rate, params, correlations
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import plot

    meta = {"Software": f"roitrace {__version__}", "Description": json.dumps(params)}
    written = []

    def save(fig, name):
        written.append(plot.save(fig, out / name, metadata=meta))
        plt.close(fig)

    ax = plot.projection_contour(proj, mask, title="std projection, 3-sigma mask")
    save(ax.figure, "1_mask.png")
    ax = plot.pixels_scatter(proj, mask, ring)
    ax.set_title(f"cell pixels and neuropil ring (gap {GAP}, width {WIDTH})")
    save(ax.figure, "2_pixels_and_ring.png")
    # NaN outside the cell lets the colour scale span the weights themselves.
    ax = plot.weights(
        weights_image(weights, mask, fill=np.nan), cmap="viridis", title="brightness weights"
    )
    # zoom on the cell: in the whole frame it is a small patch among empty pixels
    ys, xs = np.nonzero(mask)
    margin = 3
    ax.set_xlim(xs.min() - 0.5 - margin, xs.max() + 0.5 + margin)
    ax.set_ylim(ys.max() + 0.5 + margin, ys.min() - 0.5 - margin)
    save(ax.figure, "3_weights.png")
    # The four aggregations agree to within a few a.u.: drawn over each other only
    # the last shows. The mean on top, and below it how much each other one differs.
    mean_f = results["mean"]["F"].values[0]
    others = [how for how in results if how != "mean"]
    fig = plt.figure(figsize=(8.0, 6.5), layout="constrained")
    axes = fig.subplots(1 + len(others), 1, sharex=True, height_ratios=[2] + [1] * len(others))
    plot.traces(mean_f, frame_rate=rate, ax=axes[0], ylabel="mean (a.u.)")
    for k, (ax, how) in enumerate(zip(axes[1:], others, strict=True), start=1):
        plot.traces(
            results[how]["F"].values[0] - mean_f, frame_rate=rate, ax=ax, ylabel=f"{how}\n- mean"
        )
        ax.lines[0].set_color(f"C{k}")
        ax.axhline(0.0, color="0.4", ls="--", lw=0.8)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.suptitle("the cell's trace by aggregation: the mean, and how far the others are from it")
    save(fig, "4_aggregations.png")
    fig = plot.weighted_vs_mean(
        results["mean"]["F"].values[0], results["weighted"]["F"].values[0], frame_rate=rate
    )
    save(fig, "5_weighted_vs_mean.png")
    m = results["mean"]
    ax = plot.traces(
        {
            "F (cell)": m["F"].values[0],
            "Fneu (ring)": m["Fneu"].values[0],
            "F - 0.7 Fneu": m["F_corrected"].values[0],
        },
        frame_rate=rate,
        title="neuropil correction",
    )
    save(ax.figure, "6_neuropil.png")
    r_raw, r_corrected = correlations["mean"]
    r_loose = next(v[0] for k, v in correlations.items() if k.startswith("mean, loose"))
    _fig, ax = plt.subplots(figsize=(9.0, 5.0), layout="constrained")
    plot.traces(
        {
            "truth": zscore(truth),
            f"F (r = {r_raw:.3f})": zscore(m["F"].values[0]),
            f"F - 0.7 Fneu (r = {r_corrected:.3f})": zscore(m["F_corrected"].values[0]),
        },
        frame_rate=rate,
        offset=6.0,
        ylabel="z-score",
        title="extracted traces against the true calcium signal\n"
        f"(r: correlation with the truth; a loose mask gives r = {r_loose:.3f})",
        ax=ax,
    )
    save(ax.figure, "7_truth.png")
    ax = plot.dff(dff_trace, frame_rate=rate)
    ax.set_title("dF/F0 of the neuropil-corrected mean trace (F0: 30 s running 8th pct)")
    save(ax.figure, "8_dff.png")
    return written
