"""Do the traces tell the truth? Neuropil factors, baselines and deconvolution against
the simulator's ground truth, and what each step costs for 2000 ROIs x 50,000 frames.

Run from the repository root with the ``[dev]`` extra installed (oasis-deconv is the
deconvolution reference)::

    python benchmarks/science.py            # the README's table (about 10 minutes)
    python benchmarks/science.py --quick    # smaller fields and traces (a minute)

Accuracy: simulated fields (256 x 256 pixels, 80 cells, 6000 frames at 30 Hz, each
cell's contamination drawn from 0.3-1.0, 30 % bleaching) at three noise levels; the
cells' own labels as ROIs, a ring 2 px away and 3 px wide. Truth: ``Simulation.
contamination`` (r), ``traces`` (the true dF/F) and ``spikes`` (event counts per
frame). Spike correlation is computed on counts summed over 3 frames (100 ms), as
inferred activity may land a frame early or late.

Speed: synthetic (2000, 50,000) F and Fneu (AR(1) calcium, neuropil, noise), every
method warmed up once, then the best of ``--repeat`` runs; one-off costs (compiling or
loading kernels) in their own column. The plain grid search (``solve_banded`` for each
of AllenSDK's candidates) and oasis-deconv (trace by trace) are timed on a subset and
scaled linearly, as said in the table. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

import roitrace as rt
from roitrace.contamination import neuropil_coefficient

RING = {"gap": 2, "width": 3}
BASELINES = {
    "percentile (whole trace, q 8)": {"method": "percentile"},
    "rolling_percentile (60 s, q 8)": {"method": "rolling_percentile", "window": "60s"},
    "maximin (suite2p, 60 s)": {"method": "maximin", "window": "60s"},
    "inactive_median (Allen, 600 s; 180 s on simulations)": {"method": "inactive_median"},
}
NOISE = {"noisy (10 photons/unit)": 10.0, "default (40)": 40.0, "clean (160)": 160.0}


def corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def slope_rows(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x, per row."""
    x = x - x.mean(axis=1, keepdims=True)
    return (x * (y - y.mean(axis=1, keepdims=True))).sum(1) / (x * x).sum(1)


def binned(x: np.ndarray, width: int = 3) -> np.ndarray:
    n = x.shape[1] // width * width
    return x[:, :n].reshape(x.shape[0], -1, width).sum(axis=2)


def med(x: np.ndarray, fmt: str = "{:.3f}") -> str:
    x = np.asarray(x, np.float64)
    lo, mid, hi = (fmt.format(np.nanpercentile(x, p)) for p in (10, 50, 90))
    return f"{mid} ({lo}..{hi})"


def accuracy(args: argparse.Namespace) -> list[str]:
    rows = [
        "## Against the simulator's truth",
        "",
        f"{args.cells} cells, {args.frames} frames at 30 Hz, contamination 0.3-1.0, "
        "bleaching 30 %; median over cells (10th..90th percentile).",
        "",
        "| noise | step | method | error of r | corr. with true dF/F | slope on true dF/F |"
        " spike corr. (100 ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for noise_name, photons in NOISE.items():
        sim = rt.simulate(
            shape=(args.size, args.size),
            n_frames=args.frames,
            n_cells=args.cells,
            seed=11,
            bleach_fraction=0.3,
            contamination=(0.3, 1.0),
            photons_per_unit=photons,
        )
        movie = rt.as_movie(sim.movie, frame_rate=sim.frame_rate)
        base = rt.extract(movie, sim.labels, neuropil=RING)
        F, Fneu = base["F"].values, base["Fneu"].values
        truth_r, truth_dff = sim.contamination, sim.traces.astype(np.float64)
        factors = {"fixed 0.7": np.full(len(truth_r), 0.7), "truth": truth_r}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unconverged ROIs are filled: counted below
            for method in ("smoothness", "regression"):
                fit = neuropil_coefficient(F, Fneu, method=method, full_output=True)
                factors[f"{method}{' (= estimate)' if method == 'regression' else ''}"] = fit.r
        for name, r in factors.items():
            corrected = F - r[:, None] * Fneu
            d = rt.dff(corrected, method="maximin", window=1800, nonpositive="nan")
            rows.append(
                f"| {noise_name} | neuropil factor | {name} | {med(r - truth_r, '{:+.3f}')} | "
                f"{med(corr_rows(d, truth_dff))} | {med(slope_rows(d, truth_dff))} | |"
            )
        corrected = F - factors["regression (= estimate)"][:, None] * Fneu
        for name, options in BASELINES.items():
            if options["method"] == "inactive_median":  # 600 s is longer than the movie
                options = {**options, "window": f"{min(600, args.frames // 30 - 20)}s"}
            d = rt.dff(corrected, **options, frame_rate=sim.frame_rate, nonpositive="nan")
            rows.append(
                f"| {noise_name} | dF/F (r estimated) | {name} | | "
                f"{med(corr_rows(d, truth_dff))} | {med(slope_rows(d, truth_dff))} | |"
            )
        d = rt.dff(corrected, method="maximin", window=1800)
        true_spikes = binned(sim.spikes.astype(np.float64))
        for model in ("ar1", "ar2"):
            for penalty in ("l1", "l0"):
                dec = rt.deconvolve(d, model=model, penalty=penalty)
                rows.append(
                    f"| {noise_name} | deconvolution (of maximin dF/F) | roitrace {model} "
                    f"{penalty} | | {med(corr_rows(dec.calcium, truth_dff))} | "
                    f"{med(slope_rows(dec.calcium, truth_dff))} | "
                    f"{med(corr_rows(binned(dec.spikes), true_spikes))} |"
                )
        rows.extend(_oasis_rows(noise_name, d, truth_dff, true_spikes))
    return rows


def _oasis_rows(noise_name, d, truth_dff, true_spikes) -> list[str]:
    try:
        from oasis.functions import deconvolve as oasis_deconvolve
    except ImportError:
        return [f"| {noise_name} | deconvolution | oasis-deconv | not installed | | | |"]
    rows = []
    for p, name in ((1, "ar1"), (2, "ar2")):
        c = np.empty_like(d)
        s = np.empty_like(d)
        for k in range(d.shape[0]):
            c[k], s[k], *_ = oasis_deconvolve(d[k], g=(None,) * p, penalty=1)
        rows.append(
            f"| {noise_name} | deconvolution (of maximin dF/F) | oasis-deconv {name} l1 | | "
            f"{med(corr_rows(c, truth_dff))} | {med(slope_rows(c, truth_dff))} | "
            f"{med(corr_rows(binned(s), true_spikes))} |"
        )
    return rows


def synthetic(n_rois: int, n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """F and Fneu like a recording's: AR(1) calcium with sparse events, a shared slow
    neuropil, per-ROI contamination, bleaching and noise."""
    rng = np.random.default_rng(seed)
    from scipy.signal import lfilter

    events = (rng.random((n_rois, n_frames)) < 0.01) * rng.uniform(0.5, 2, (n_rois, n_frames))
    calcium = lfilter([1.0], [1.0, -0.95], events, axis=1)
    neuropil = lfilter([1.0], [1.0, -0.99], rng.normal(0, 1, (n_rois, n_frames)), axis=1)
    neuropil = 300 + 5 * neuropil
    bleach = np.exp(-np.linspace(0, 0.35, n_frames))
    r = rng.uniform(0.3, 1.0, (n_rois, 1))
    f = (500 * (1 + calcium) + r * neuropil) * bleach + rng.normal(0, 10, (n_rois, n_frames))
    fneu = neuropil * bleach + rng.normal(0, 5, (n_rois, n_frames))
    return f, fneu


def best_of(fn, repeat: int) -> tuple[float, float]:
    """(one-off cost: first call minus the best, best of ``repeat`` after it)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return max(first - min(times), 0.0), min(times)


def plain_grid(f: np.ndarray, n: np.ndarray) -> float:
    """AllenSDK's search with one solve_banded per candidate r and fold (one trace)."""
    from scipy.linalg import solve_banded

    t = f.size // 4
    ab = np.zeros((3, t))
    ab[0, 1:] = ab[2, :-1] = -0.05
    ab[1] = 1 + 0.1
    ab[1, 0] = ab[1, -1] = 1 + 0.05

    def error(r):
        total = 0.0
        for k in range(4):
            y = f[k * t : (k + 1) * t] - r * n[k * t : (k + 1) * t]
            fc = solve_banded((1, 1), ab, y)
            total += abs(np.sqrt(np.mean((fc - y) ** 2)) / np.mean(f[k * t : (k + 1) * t]))
        return total / 4

    lo, hi, step = 0.0, 2.0, 0.1
    for _ in range(3):
        grid = np.arange(lo, hi, step)
        errors = [error(r) for r in grid]
        i = int(np.argmin(errors))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        step /= 10
    return float(grid[i])


def speed(args: argparse.Namespace) -> list[str]:
    n, t, rep = args.speed_rois, args.speed_frames, args.repeat
    f, fneu = synthetic(n, t)
    rows = [
        "## Speed",
        "",
        f"(ROIs x frames) = ({n} x {t}), float64; one-off = first call minus the best; "
        f"best of {rep}.",
        "",
        "| step | method | one-off s | best s | per 2000 x 50,000 (s) | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    scale = (2000 / n) * (50_000 / t)

    def add(step: str, method: str, fn, note: str = "", factor: float = 1.0) -> float:
        one, best = best_of(fn, rep)
        rows.append(
            f"| {step} | {method} | {one:.2f} | {best:.2f} | {best * scale * factor:.1f} | "
            f"{note} |"
        )
        return best * factor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = add("neuropil factor", "smoothness (closed form)", lambda: neuropil_coefficient(
            f, fneu, method="smoothness"))  # fmt: skip
        k = max(2, n // 500)
        grid = add(
            "neuropil factor",
            "smoothness, plain grid (solve_banded per candidate)",
            lambda: [plain_grid(f[i], fneu[i]) for i in range(k)],
            note=f"timed on {k} ROIs, scaled",
            factor=n / k,
        )
        add("neuropil factor", "regression (= estimate)", lambda: neuropil_coefficient(
            f, fneu, method="regression"))  # fmt: skip
    rows.append(f"| neuropil factor | speed-up of the closed form | | | {grid / fast:.0f}x | |")
    corrected = f - 0.7 * fneu
    for name, options in BASELINES.items():
        add("baseline + dF/F", name, lambda o=options: rt.dff(corrected, **o, frame_rate=30.0))
    d = rt.dff(corrected, method="maximin", window=1800)
    ours = add("deconvolution", "roitrace AR(1) l1, all ROIs at once", lambda: rt.deconvolve(d))
    try:
        from oasis.functions import deconvolve as oasis_deconvolve
    except ImportError:
        rows.append("| deconvolution | oasis-deconv | | | | not installed |")
        return rows
    k = max(2, n // 10)
    theirs = add(
        "deconvolution",
        "oasis-deconv AR(1) l1, trace by trace",
        lambda: [oasis_deconvolve(d[i], g=(None,), penalty=1) for i in range(k)],
        note=f"timed on {k} traces, scaled",
        factor=n / k,
    )
    rows.append(f"| deconvolution | speed-up over oasis-deconv | | | {theirs / ours:.1f}x | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small fields and traces")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    args.size, args.cells, args.frames = (128, 30, 3000) if args.quick else (256, 80, 6000)
    args.speed_rois, args.speed_frames = (200, 10_000) if args.quick else (500, 50_000)
    print(f"# Science benchmark: roitrace {rt.__version__}, {time.strftime('%Y-%m-%d')}")
    print(
        f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, load {os.getloadavg()[0]:.1f}\n"
    )
    for line in accuracy(args):
        print(line, flush=True)
    print()
    for line in speed(args):
        print(line, flush=True)


if __name__ == "__main__":
    main()
