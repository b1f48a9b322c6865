"""Neuropil coefficient benchmark: which estimator of r recovers the truth, and how fast.

Run from the repository root::

    python benchmarks/neuropil_coefficient.py            # all conditions, Thunder, timing
    python benchmarks/neuropil_coefficient.py --quick    # 2 conditions, no timing
    python benchmarks/neuropil_coefficient.py --no-timing

It prints Markdown tables to stdout (progress to stderr); nothing passes or fails.

What it measures
----------------
Accuracy. For each condition it simulates a 256 x 256 field (80 cells, 4000 frames
at 30 Hz, ``contamination`` drawn per cell from (0.3, 1.0), ``bleach_fraction``
0.3, float32 pixels), extracts each cell's F and its ring's Fneu with
``roitrace.extract(movie, labels, neuropil={"gap": 2, "width": 3})`` and runs every
method of :func:`roitrace.contamination.neuropil_coefficient` (``fill=False``: the
methods' own values). Per condition and method: the median and the 10-90 % range of
``r - contamination`` (bias), the median absolute error, the number of ROIs whose r is
outside [0, 1], and the median over cells of the correlation of ``F - r Fneu`` with
the true calcium ``sim.traces``. Rows "fixed 0.7" and "truth" (r = contamination)
put those numbers in context. Conditions vary the noise (``photons_per_unit``) and
the neuropil (``neuropil_strength``, ``neuropil_event_rate``).

Why "smoothness" is biased low. Three numbers per condition, the same for every
method:

* ``ring/in-cell slope``: least-squares slope of the true neuropil inside each cell
  (``sim.neuropil / contamination``) on the ring's Fneu, both detrended (running
  10th percentile, 900 frames): how well the ring tracks the neuropil over all
  frequencies (1 is perfect);
* ``HF corr. with farthest ring``: correlation of Fneu's frame-to-frame differences
  with those of the ring of the farthest ROI: fast fluctuations common to the whole
  field (laser, motion, a global rhythm) rather than local neuropil;
* ``corr(Fneu, frame mean)``: how much of Fneu is one field-wide fluctuation;
* ``HF shared``: the fraction of the variance of Fneu's frame-to-frame differences
  that is neuropil rather than the ring's own noise, from the correlation rho of the
  differences of the two halves of each ring (above and below the ROI's centroid):
  ``2 rho / (1 + rho)`` (Spearman-Brown). "smoothness" only sees these fastest
  fluctuations, so its r is about ``contamination x HF shared`` when the ring's
  neuropil is the cell's;
* "smoothness, noise-free Fneu": the smoothness method given the true in-cell
  neuropil (plus the dark offset) instead of the ring: if it recovers the
  contamination, the method is sound and the ring's noise is what biases it.

The same ``HF shared`` is measured on the real Thunder recording
(``../shared/data/thunder-mouse/mouse.tif``, ROIs from
``roitrace.find_rois(movie, method="otsu", min_size=5)``), where every method runs
too and their distributions are compared (no truth there).

Timing. 2000 ROIs x 50,000 frames of synthetic traces (float64): the fast smoothness
method and the regression, best of 2 calls after a warm-up, against a plain grid
search calling ``scipy.linalg.solve_banded`` per candidate r and fold (AllenSDK's
code, written plainly as in ``tests/test_contamination.py``) timed on 4 ROIs and
scaled to 2000. Extraction of 2000 ROIs from 50,000 frames of 512 x 512 takes about
25 s at the 2,043 frames/s of ``benchmarks/results-2026-11-21.md`` (case B).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import roitrace  # noqa: E402
from roitrace.contamination import neuropil_coefficient, running_baseline  # noqa: E402
from roitrace.datasets.simulate import simulate  # noqa: E402
from roitrace.neuropil import neuropil_rings  # noqa: E402
from roitrace.rois import RoiSet  # noqa: E402

BASE = dict(
    shape=(256, 256),
    n_cells=80,
    n_frames=4000,
    frame_rate=30.0,
    contamination=(0.3, 1.0),
    bleach_fraction=0.3,
    dtype="float32",
)
CONDITIONS = {
    "default (40 photons/unit, neuropil 0.5, 0.5 Hz)": {},
    "noisy (10 photons/unit)": {"photons_per_unit": 10.0},
    "clean (160 photons/unit)": {"photons_per_unit": 160.0},
    "strong neuropil (1.0)": {"neuropil_strength": 1.0},
    "weak neuropil (0.25)": {"neuropil_strength": 0.25},
    "slow neuropil (no transients)": {"neuropil_event_rate": 0.0},
    "busy neuropil (3 Hz transients)": {"neuropil_event_rate": 3.0},
}
QUICK = ["default (40 photons/unit, neuropil 0.5, 0.5 Hz)", "noisy (10 photons/unit)"]
METHODS = {
    "smoothness (published)": dict(method="smoothness"),
    "smoothness (early AllenSDK, folds rescaled)": dict(
        method="smoothness", fold_normalization=True
    ),
    "regression": dict(method="regression"),
}
GAP, WIDTH = 2, 3


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def detrend(x: np.ndarray, window: int = 900) -> np.ndarray:
    return x - running_baseline(x, min(window, x.shape[1] // 4), 10.0)


def slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    return (x * y).sum(axis=1) / (x * x).sum(axis=1)


def corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def hf_shared(movie: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per ROI, the share of Fneu's frame-to-frame variance that is common to the
    two halves of its ring (neuropil) rather than independent (noise). The halves
    are opposite (above and below the ROI's centroid), not interleaved pixels:
    a downsampled recording such as Thunder's shares noise between neighbouring
    pixels (its frame-to-frame differences correlate 0.40 one pixel apart, 0.05
    two apart), which interleaved halves would count as neuropil."""
    rings = neuropil_rings(RoiSet.from_labels(labels), gap=GAP, width=WIDTH)
    flat = movie.reshape(movie.shape[0], -1)
    out = []
    for k, ring in enumerate(rings):
        cy = np.argwhere(labels == k + 1)[:, 0].mean()
        upper = ring // labels.shape[1] < cy
        if upper.sum() < 2 or (~upper).sum() < 2:
            out.append(np.nan)
            continue
        a = np.diff(flat[:, ring[upper]].astype(np.float64).mean(axis=1))
        b = np.diff(flat[:, ring[~upper]].astype(np.float64).mean(axis=1))
        rho = np.corrcoef(a, b)[0, 1]
        out.append(2 * rho / (1 + rho))
    return np.array(out)


def hf_distant(fneu: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per ROI, the correlation of Fneu's frame-to-frame differences with those of
    the ROI farthest from it: fast fluctuations shared across the whole field
    (laser power, motion, a frame-wide rhythm) rather than local neuropil."""
    ids = np.arange(1, fneu.shape[0] + 1)
    yy, xx = np.indices(labels.shape)
    cy = np.array([yy[labels == i].mean() for i in ids])
    cx = np.array([xx[labels == i].mean() for i in ids])
    far = np.argmax(np.hypot(cy[:, None] - cy, cx[:, None] - cx), axis=1)
    d = np.diff(fneu, axis=1)
    return corr_rows(d, d[far])


def frame_corr(fneu: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """Per ROI, the correlation of Fneu with the mean of the whole frame: how much
    of the neuropil is one field-wide fluctuation."""
    g = movie.reshape(movie.shape[0], -1).mean(axis=1, dtype=np.float64)
    return corr_rows(fneu, np.broadcast_to(g, fneu.shape))


def q(x: np.ndarray, fmt: str = "{:+.3f}") -> str:
    lo, mid, hi = np.nanpercentile(x, [10, 50, 90])
    return f"{fmt.format(mid)} ({fmt.format(lo)}..{fmt.format(hi)})"


def run_condition(name: str, extra: dict, seed: int) -> list[str]:
    t0 = time.perf_counter()
    sim = simulate(**{**BASE, **extra}, seed=seed)
    ds = roitrace.extract(sim.movie, sim.labels, neuropil={"gap": GAP, "width": WIDTH})
    f, n = ds["F"].values.astype(np.float64), ds["Fneu"].values.astype(np.float64)
    truth = sim.contamination
    log(f"{name}: simulated and extracted in {time.perf_counter() - t0:.0f} s")
    in_cell = sim.neuropil / truth[:, None]
    track = slope(detrend(n), detrend(in_cell))
    shared = hf_shared(sim.movie, sim.labels)
    distant = hf_distant(n, sim.labels)
    frame = frame_corr(n, sim.movie)
    rows = []
    cands = {}
    for label, kw in METHODS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cands[label] = neuropil_coefficient(f, n, fill=False, **kw)
    cands["fixed 0.7"] = np.full(truth.size, 0.7)
    cands["truth"] = truth
    noise_free = in_cell + sim.params["baseline"]
    cands["smoothness, noise-free Fneu"] = neuropil_coefficient(
        f, noise_free, method="smoothness", fill=False
    )
    for label, r in cands.items():
        err = r - truth
        corrected = f - r[:, None] * (noise_free if "noise-free" in label else n)
        c = corr_rows(corrected, sim.traces)
        out = int(np.sum(~((r >= 0) & (r <= 1))))
        rows.append(
            f"| {name} | {label} | {q(err)} | {np.median(np.abs(err)):.3f} | {out} "
            f"| {np.median(c):.3f} |"
        )
    rows.append(
        f"| {name} | *diagnostics* | ring/in-cell slope {q(track, '{:.2f}')} | "
        f"HF shared {q(shared, '{:.2f}')} | HF corr. with farthest ring "
        f"{q(distant, '{:.2f}')} | corr(Fneu, frame mean) {q(frame, '{:.2f}')} |"
    )
    return rows


def thunder() -> list[str]:
    path = ROOT.parent / "shared" / "data" / "thunder-mouse" / "mouse.tif"
    if not path.exists():
        return [f"(Thunder recording absent: {path})"]
    import tifffile

    movie = tifffile.imread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rois = roitrace.find_rois(movie, method="otsu", min_size=5)
        ds = roitrace.extract(movie, rois, neuropil={"gap": GAP, "width": WIDTH})
    f, n = ds["F"].values.astype(np.float64), ds["Fneu"].values.astype(np.float64)
    shared = hf_shared(movie, rois.to_labels())
    distant = hf_distant(n, rois.to_labels())
    frame = frame_corr(n, movie)
    lines = [
        f"Thunder mouse cortex: {movie.shape[0]} frames of {movie.shape[1]}x{movie.shape[2]}, "
        f"{f.shape[0]} ROIs from find_rois; HF shared {q(shared, '{:.2f}')}; "
        f"HF corr. with farthest ring {q(distant, '{:.2f}')}; "
        f"corr(Fneu, frame mean) {q(frame, '{:.2f}')}; "
        f"ROI sizes {q(ds['npix'].values, '{:.0f}')} px",
        "",
        "| method | r median (10..90 %) | outside [0, 1] | r after filling, median |",
        "|---|---|---|---|",
    ]
    for label, kw in METHODS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = neuropil_coefficient(f, n, full_output=True, **kw)
        lines.append(
            f"| {label} | {q(out.raw, '{:.3f}')} | {int(out.filled.sum())} of {out.raw.size} "
            f"| {np.median(out.r):.3f} |"
        )
    sm = neuropil_coefficient(f, n, fill=False)
    rg = neuropil_coefficient(f, n, method="regression", fill=False)
    lines.append("")
    lines.append(
        f"Per ROI, regression - smoothness: {q(rg - sm)}; correlation of the two: "
        f"{np.corrcoef(rg, sm)[0, 1]:.2f}"
    )
    return lines


def timing() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_contamination import allen_r

    rng = np.random.default_rng(0)
    n_roi, t = 2000, 50000
    n = 200 + rng.normal(0, 0.3, (n_roi, t)).cumsum(axis=1) + rng.normal(0, 2, (n_roi, t))
    f = 300 + 0.6 * n + rng.normal(0, 4, (n_roi, t))
    lines = []
    best = {}
    for m in ("smoothness", "regression"):
        neuropil_coefficient(f[:4, :2000], n[:4, :2000], method=m, fill=False)  # warm-up
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            r = neuropil_coefficient(f, n, method=m, fill=False)
            times.append(time.perf_counter() - t0)
        best[m] = (min(times), r)
        lines.append(f"- {m}: {min(times):.1f} s for {n_roi} x {t} (best of 2)")
    k = 4
    t0 = time.perf_counter()
    slow_r = [allen_r(f[i], n[i]) for i in range(k)]
    slow = (time.perf_counter() - t0) / k * n_roi
    fast, r_fast = best["smoothness"]
    same = np.allclose(slow_r, r_fast[:k], atol=1e-3 + 1e-9)
    lines.append(
        f"- plain grid search, solve_banded per candidate and fold: {slow:.0f} s "
        f"(timed on {k} ROIs, scaled); fast smoothness is {slow / fast:.0f}x faster; "
        f"same r on those ROIs: {same}"
    )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    print(
        f"# Neuropil coefficient: roitrace {roitrace.__version__}, load {os.getloadavg()[0]:.1f}"
    )
    print()
    print("## Simulator: r - contamination (median, 10..90 %), accuracy of F - r Fneu")
    print()
    print(
        "| condition | method | r - truth | median abs error | outside [0, 1] "
        "| corr(F - r Fneu, calcium) |"
    )
    print("|---|---|---|---|---|---|")
    names = QUICK if args.quick else list(CONDITIONS)
    for i, name in enumerate(names):
        for row in run_condition(name, CONDITIONS[name], args.seed + i):
            print(row, flush=True)
    print()
    print("## Real data")
    print()
    for line in thunder():
        print(line)
    if not (args.quick or args.no_timing):
        print()
        print("## Timing")
        print()
        for line in timing():
            print(line, flush=True)


if __name__ == "__main__":
    main()
