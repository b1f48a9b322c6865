"""HTML report benchmark: how big the report of a large recording is, how long it takes
to write, and how long Chromium takes to open it.

Run from the repository root::

    python benchmarks/report_size.py                            # 2000 ROIs x 50,000 frames
    python benchmarks/report_size.py --rois 200 --frames 5000 --out /tmp/report.html

No movie is made (512 x 512 x 50,000 frames would be 26 GB): :func:`simulated_result`
places the ROIs on a frame, simulates each ROI's traces directly, and assembles them
with :func:`roitrace.result.build_result` as :func:`roitrace.extract` does, with the
options ``neuropil={"gap": 2, "width": 3}``, ``neuropil_factor=0.7``,
``baseline={"method": "maximin", "window": "60s"}`` and ``deconvolve=True``: the same
variables, coordinates and attributes (traces float32 by default, float64 in extract's).

Model (30 Hz): per ROI, Poisson spikes (0.05 to 1 Hz), each a jump of dF/F (0.1 to
0.4) that decays exponentially (tau 0.4 to 1.2 s); ``F = b (1 + dF/F) + 0.7 Fneu +
noise`` with ``b`` 200 to 1500 and Gaussian noise 2 to 8 % of ``b``; ``Fneu`` a slow
drift shared by all ROIs (scaled per ROI) plus noise of its own. Then as extract:
``F_corrected = F - 0.7 Fneu``, F0 and dF/F by :func:`roitrace.dff` (maximin, 60 s),
``snr`` and ``skewness`` of F_corrected, ``calcium`` and ``spikes`` by
:func:`roitrace.deconvolve` (about 15 s for 2000 x 50,000 on 2 cores; a minute more
the first time numba compiles it) or, with ``--no-deconvolve``, the true ones.

Then, when ``roitrace.report`` exists: the seconds to write the report, its size in
MB, and, when Chromium and chromedriver are installed (tests/browser.py), the seconds
Chromium takes to open it until the page sets ``data-ready``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FRAME_RATE = 30.0
NEUROPIL = {"gap": 2, "width": 3}
NEUROPIL_FACTOR = 0.7
BASELINE = {"method": "maximin", "window": "60s"}
#: ROIs simulated, filtered and deconvolved at once (memory: a few float64 copies).
BLOCK = 250


def disk_labels(n_rois: int, rng: np.random.Generator) -> np.ndarray:
    """A label image of ``n_rois`` disjoint disks (radius 4 to 7 pixels), one per cell
    of a 16-pixel grid chosen at random, jittered inside it; 512 x 512, or larger
    when that grid holds too few cells."""
    spacing = 16
    cells_per_side = max(512 // spacing, math.ceil(math.sqrt(n_rois)))
    side = cells_per_side * spacing
    chosen = rng.choice(cells_per_side**2, n_rois, replace=False)
    radius = rng.integers(4, 8, n_rois)
    labels = np.zeros((side, side), np.int32)
    for i, (cell, r) in enumerate(zip(chosen, radius, strict=True)):
        # inside its grid cell, a pixel or more from the next: rows r..14-r of the cell
        corner = np.array(divmod(int(cell), cells_per_side)) * spacing
        cy, cx = corner + r + rng.integers(0, spacing - 1 - 2 * r, 2)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        labels[cy - r : cy + r + 1, cx - r : cx + r + 1][yy**2 + xx**2 <= r**2] = i + 1
    return labels


def slow_drift(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """A slow, smooth fluctuation around 0 (sum of a few sines of periods 20 s to 10 min)."""
    t = np.arange(n_frames) / FRAME_RATE
    periods = rng.uniform(20, 600, 6)
    phases = rng.uniform(0, 2 * np.pi, 6)
    amps = rng.uniform(0.2, 1.0, 6)
    drift = (amps[:, None] * np.sin(2 * np.pi * t / periods[:, None] + phases[:, None])).sum(0)
    return drift / np.abs(drift).max()


def simulate_block(
    n: int, n_frames: int, drift: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """True spikes and calcium (dF/F), F and Fneu of ``n`` ROIs, float64."""
    from scipy.signal import lfilter

    rate = rng.uniform(0.05, 1.0, n) / FRAME_RATE
    amplitude = rng.uniform(0.1, 0.4, n)
    g = np.exp(-1.0 / (rng.uniform(0.4, 1.2, n) * FRAME_RATE))
    spikes = rng.poisson(rate[:, None], (n, n_frames)) * amplitude[:, None]
    calcium = np.empty_like(spikes)
    for i in range(n):
        calcium[i] = lfilter([1.0], [1.0, -g[i]], spikes[i])
    b = rng.uniform(200, 1500, n)[:, None]
    npil_level = rng.uniform(0.3, 0.8, n)[:, None] * b
    fneu = npil_level * (1 + 0.15 * drift) + rng.normal(0, 1, (n, n_frames)) * 0.02 * npil_level
    noise = rng.uniform(0.02, 0.08, n)[:, None] * b
    f = b * (1 + calcium) + NEUROPIL_FACTOR * fneu + rng.normal(0, 1, (n, n_frames)) * noise
    return {"spikes": spikes, "calcium": calcium, "F": f, "Fneu": fneu}


def simulated_result(
    n_rois: int = 2000,
    n_frames: int = 50_000,
    seed: int = 0,
    *,
    deconvolve: bool = True,
    dtype: Any = np.float32,
    progress: bool = False,
):
    """A result Dataset as :func:`roitrace.extract` returns for a movie of ``n_rois``
    cells and ``n_frames`` frames at 30 Hz, simulated without a movie (see the module).

    ``deconvolve=False``: the true spikes and calcium instead of OASIS's (faster).
    ``dtype``: of the traces; ``np.float64`` for extract's own (twice the memory).
    """
    from roitrace import Baseline, Deconvolve, dff, noise_level, plan_extraction
    from roitrace import deconvolve as oasis
    from roitrace.extract import _describe
    from roitrace.measure import trace_statistics
    from roitrace.result import build_result

    rng = np.random.default_rng(seed)
    labels = disk_labels(n_rois, rng)
    plan = plan_extraction(labels, labels.shape, neuropil=NEUROPIL)
    drift = slow_drift(n_frames, rng)
    f0_options = Baseline.coerce(BASELINE).in_frames(FRAME_RATE, n_frames)
    decon = Deconvolve()
    names = ["F", "Fneu", "F_corrected", "F0", "dff", "calcium", "spikes"]
    traces = {v: np.empty((n_rois, n_frames), dtype) for v in names}
    per_roi = {k: np.empty(n_rois) for k in ("snr", "skewness", "noise", "deconvolution_noise")}
    for start in range(0, n_rois, BLOCK):
        rows = slice(start, min(start + BLOCK, n_rois))
        if progress:
            print(f"  simulating ROIs {rows.start}..{rows.stop - 1}", file=sys.stderr)
        sim = simulate_block(rows.stop - rows.start, n_frames, drift, rng)
        corrected = sim["F"] - NEUROPIL_FACTOR * sim["Fneu"]
        got = dff(corrected, **f0_options.as_dict(), nonpositive="nan", full_output=True)
        for k, v in trace_statistics(corrected).items():
            per_roi[k][rows] = v
        per_roi["noise"][rows] = got.noise
        if deconvolve:
            d = oasis(got.dff, frame_rate=FRAME_RATE, model=decon.model, penalty=decon.penalty)
            calcium, spikes, per_roi["deconvolution_noise"][rows] = d.calcium, d.spikes, d.noise
        else:
            calcium, spikes = sim["calcium"], sim["spikes"]
            per_roi["deconvolution_noise"][rows] = noise_level(got.dff)
        block = {
            "F": sim["F"],
            "Fneu": sim["Fneu"],
            "F_corrected": corrected,
            "F0": got.f0,
            "dff": got.dff,
            "calcium": calcium,
            "spikes": spikes,
        }
        for v in names:
            traces[v][rows] = block[v]
    baseline = {"baseline": f0_options.describe()}
    attrs = {
        "F": {"aggregation": plan.method},
        "Fneu": {"aggregation": plan.neuropil_method},
        "F_corrected": {"formula": f"F - {NEUROPIL_FACTOR} * Fneu"},
        "dff": baseline,
        "F0": baseline,
        "calcium": {"deconvolution": _describe(decon)},
        "spikes": {"deconvolution": _describe(decon)},
    }
    params = {
        **plan.parameters(),
        "neuropil_factor": NEUROPIL_FACTOR,
        "baseline": f0_options.as_dict(),
        "deconvolve": decon.as_dict(),
        "frames": "all",
    }
    return build_result(
        traces,
        plan.rois(),
        frames=np.arange(n_frames),
        frame_rate=FRAME_RATE,
        centroids=plan.centroids,
        npix_neuropil=np.array([r.size for r in plan.rings]),
        snr=per_roi["snr"],
        skewness=per_roi["skewness"],
        neuropil_factor=np.full(n_rois, NEUROPIL_FACTOR),
        noise=per_roi["noise"],
        deconvolution_noise=per_roi["deconvolution_noise"],
        trace_attrs=attrs,
        source=f"simulated ({n_rois} ROIs x {n_frames} frames, benchmarks/report_size.py)",
        parameters=params,
    )


def browser_module() -> Any:
    """tests/browser.py, the tests' headless offline Chromium (imported by path)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "browser.py"
    spec = importlib.util.spec_from_file_location("roitrace_tests_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_in_browser(path: Path, timeout: float) -> tuple[float | None, str]:
    """Seconds Chromium takes to open ``path`` until data-ready (None when it cannot
    start), and a note: the browser's start-up time, or why it did not run."""
    try:
        browser = browser_module()
    except ImportError as e:  # pytest or selenium absent
        return None, f"no browser ({e})"
    reason = browser.skip_reason()
    if reason:
        return None, reason
    profile = tempfile.mkdtemp(prefix="roitrace-chromium-")
    try:
        t0 = time.perf_counter()
        driver = browser.new_driver(profile)
        started = time.perf_counter() - t0
        try:
            seconds = browser.open_page(driver, path, timeout=timeout)
            errors = browser.console_errors(driver)
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    note = f"Chromium started in {started:.1f} s"
    if errors:
        note += f"; {len(errors)} console errors, the first: {errors[0]['message']}"
    return seconds, note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rois", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=None, help="the report's path (default: a temporary folder)"
    )
    ap.add_argument(
        "--no-deconvolve", action="store_true", help="the true spikes, not OASIS's (faster)"
    )
    ap.add_argument("--timeout", type=float, default=600, help="seconds the browser may take")
    args = ap.parse_args()

    import roitrace

    rows: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a flat simulated trace is no news here
        result = simulated_result(
            args.rois, args.frames, args.seed, deconvolve=not args.no_deconvolve, progress=True
        )
    trace_mb = sum(v.nbytes for v in result.data_vars.values()) / 1e6
    what = "true spikes" if args.no_deconvolve else "deconvolve"
    rows.append((f"build (simulate, dF/F, {what})", f"{time.perf_counter() - t0:.1f} s"))
    rows.append(("result in memory", f"{trace_mb:.0f} MB"))
    notes = []
    report = getattr(roitrace, "report", None)
    if report is None:
        notes.append("roitrace.report does not exist (yet): only the build was timed")
    else:
        tmp = None
        if args.out is None:
            tmp = Path(tempfile.mkdtemp(prefix="roitrace-report-"))
            out = tmp / "report.html"
        else:
            out = args.out
            out.parent.mkdir(parents=True, exist_ok=True)
        try:
            t0 = time.perf_counter()
            report(result, out)
            rows.append(("report write", f"{time.perf_counter() - t0:.1f} s"))
            rows.append(("file size", f"{out.stat().st_size / 1e6:.1f} MB"))
            rows.append(("frames per stored point (min/max)", _steps(out)))
            qc = out.with_name("quality_control.json")
            if qc.exists():
                rows.append(("quality_control.json size", f"{qc.stat().st_size / 1e6:.2f} MB"))
            seconds, note = open_in_browser(out, args.timeout)
            rows.append(
                (
                    "open in Chromium (to data-ready)",
                    "-" if seconds is None else f"{seconds:.1f} s",
                )
            )
            notes.append(note)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.rois} ROIs x {args.frames} frames, roitrace {roitrace.__version__}\n")
    print("| step | value |")
    print("|---|---|")
    for step, value in rows:
        print(f"| {step} | {value} |")
    for note in notes:
        print(f"\n{note}")


def _steps(page: Path) -> str:
    """Each trace's step in the page: 1 is every frame."""
    import json
    import re

    text = page.read_text(encoding="utf-8")
    meta = json.loads(re.search(r'id="rt-meta">(.*?)</script>', text, re.S).group(1))
    t = meta["traces"]
    return ", ".join(f"{n} {v['step']}" for n, v in zip(t["names"], t["vars"], strict=True))


if __name__ == "__main__":
    main()
