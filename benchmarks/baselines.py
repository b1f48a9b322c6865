"""Seconds per baseline method on a (roi, time) float64 array.

    python benchmarks/baselines.py                  # (200, 50000), scaled to 2000 ROIs
    python benchmarks/baselines.py --rois 2000      # the full size (minutes, ~800 MB)
    ROITRACE_NUMBA=0 python benchmarks/baselines.py # without the compiled kernel

Each row is one ``roitrace.dff(..., full_output=True)`` call (baseline, dF/F and
the noise level). "compile" is the first use of the compiled kernels, on a tiny array
(numba caches them on disk, so only a new machine compiles; later processes load);
"first call" is each method's first call after that; "best" is the best
of ``--repeat`` calls after it; "x2000 ROIs" scales "best" linearly to 2000 ROIs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import roitrace as rt
from roitrace.normalize import noise_level

FRAME_RATE = 30.0


def traces(n_rois: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """Bleaching baselines, sparse calcium transients and shot-like noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    out = 100 * np.exp(-t / (3 * n_frames))[None, :] * rng.uniform(0.5, 2, (n_rois, 1))
    for r in range(n_rois):  # transients: a sparse spike train through an exponential decay
        spikes = (rng.random(n_frames) < 0.01) * rng.uniform(20, 80, n_frames)
        out[r] += np.convolve(spikes, np.exp(-np.arange(60) / 15.0))[:n_frames]
    out += rng.normal(0, 3, out.shape)
    return out


CASES = [
    ("percentile (whole trace)", {"method": "percentile"}),
    ("percentile window=1800", {"method": "percentile", "window": 1800}),
    ("rolling_percentile window=18000", {"method": "rolling_percentile", "window": 18000}),
    ("maximin 60 s (1800), sigma 10", {"method": "maximin", "frame_rate": FRAME_RATE}),
    (
        "inactive_median 600 s (18001), 3.333 s",
        {"method": "inactive_median", "frame_rate": FRAME_RATE},
    ),
    (
        "inactive_median 60 s (1801), 3.333 s",
        {"method": "inactive_median", "window": "60s", "frame_rate": FRAME_RATE},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x = traces(args.rois, args.frames)
    numba = os.environ.get("ROITRACE_NUMBA", "1")
    print(
        f"({args.rois}, {args.frames}) float64, best of {args.repeat}, "
        f"{os.cpu_count()} CPUs, ROITRACE_NUMBA={numba}\n"
    )
    t0 = time.perf_counter()
    rt.dff(x[:1, :100], method="inactive_median", window=11, noise_window=3)
    from roitrace._kernels.running import percentile_filter

    percentile_filter(x[:1, :100], 8.0, 11, "nearest", compiled=True)
    print(
        f"compiled kernels ready (compiled now, or loaded from numba's cache) in "
        f"{time.perf_counter() - t0:.2f} s\n"
    )
    rows = [("noise_level", lambda: noise_level(x))]
    rows += [(name, lambda kw=kw: rt.dff(x, full_output=True, **kw)) for name, kw in CASES]
    print(f"| {'method':<40} | first call (s) | best (s) | x2000 ROIs (s) |")
    print(f"|{'-' * 42}|---------------:|---------:|---------------:|")
    for name, call in rows:
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - t0)
        scaled = best * 2000 / args.rois
        print(f"| {name:<40} | {first:14.2f} | {best:8.2f} | {scaled:14.1f} |", flush=True)


if __name__ == "__main__":
    main()
