"""Scaling benchmark: how the time of roitrace's mean traces grows with the number of
frames, the number of ROIs and the ROIs' size.

Run from the repository root::

    python benchmarks/scaling.py                 # full: 13 points, a few minutes, ~2 GB RAM
    python benchmarks/scaling.py --quick         # smoke test: well under a minute
    python benchmarks/scaling.py --out scaling.json

It prints one Markdown table (progress goes to stderr). The points:

* frames: 2,000, 5,000, 10,000, 20,000 and 50,000 frames of 512 x 512 int16, 500 ROIs;
* ROIs: 100, 500, 1000, 2000 and 5000 ROIs, 2,000 frames;
* ROI size: disks of radius 3, 5, 8 and 12, 500 ROIs, 2,000 frames;

ROIs are disks of radius 6 unless said, made by ``benchmarks/extraction.py``'s
``make_labels`` (a later disk wins overlaps, so a crowded field has fewer ROIs than
drawn: the table gives the real count), with its neuropil rings (``NEUROPIL``). A
point that is on two axes runs once.

What one point measures: in a fresh worker subprocess, ``plan_extraction(roiset,
frame_shape, method="mean", neuropil=NEUROPIL)`` once (not timed), one untimed call
on the first 50 frames (numba's compile or cache load), then ``--repeat`` (3) timed
calls of ``run_plan(movie, plan)`` (F and Fneu), the fastest counting. Reported:
frames/s, seconds, ns per pixel-read (the sum over the plan's groups, cells and
rings, of pixels x frames, divided into the seconds), the peak RSS (``VmHWM`` reset
through ``/proc/self/clear_refs`` right before the timed calls) and the RSS above
the movie (peak minus the RSS right before the timed calls, which holds the
movie's pattern and the plan).

The movie. 50,000 frames of 512 x 512 int16 are 26 GB, more than many machines'
memory, so every point reads its frames from :class:`RepeatingMovie`, a roitrace
``Movie`` that serves the 2,000-frame movie of ``extraction.make_movie`` (held in
memory) repeated, +1 per repetition (as ``extraction.repeated_frames``): memory
stays at the pattern's 1 GB and the disk is not what is measured. Each read makes a
new array (a copy and an add per pixel, at every point alike), which counts in the
time much as reading a page-cached file would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from roitrace.movie import Movie


def _load_extraction() -> ModuleType:
    """``benchmarks/extraction.py`` (its movie and ROI generators), loaded by path."""
    name = "roitrace_bench_extraction"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("extraction.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


E = _load_extraction()

WARM_UP_FRAMES = 50
READ_CHUNK = 128  # frames: roitrace's default chunk of 64 MiB, for 512 x 512 int16
LINEAR_WITHIN = 1.25  # "linear": per-unit time at the largest point within 25% of the smallest
RESULT_MARK = "SCALING-RESULT "
MIB = 2**20


class RepeatingMovie(Movie):
    """A (n_frames, Y, X) movie served from ``pattern`` (an array in memory), repeated
    without end, +1 per repetition: the frames of ``extraction.repeated_frames``.
    A read returns a new array; the engine's reads (:meth:`stream_range`) reuse two
    buffers. Memory stays at the pattern's size."""

    def __init__(self, pattern: np.ndarray, n_frames: int, frame_rate: float | None = None):
        if pattern.ndim != 3 or pattern.shape[0] == 0:
            raise ValueError(f"the pattern must be a non-empty (T, Y, X) array: {pattern.shape}")
        self._pattern = pattern
        self.shape = (int(n_frames), int(pattern.shape[1]), int(pattern.shape[2]))
        self.dtype = pattern.dtype
        self.frame_rate = frame_rate
        self.path = None
        self._buffers: list[np.ndarray] | None = None
        self._turn = 0

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        return E.repeated_range(self._pattern, start, stop)

    def stream_range(self, start: int, stop: int) -> np.ndarray:
        # what the engine reads: the frames written into one of two buffers in turn
        # (the engine holds one chunk while the next is read), as a file reader
        # reuses its buffers; a new array per chunk would cost page faults that no
        # real reader pays, and the reading would hide the extraction
        n = stop - start
        if self._buffers is None or self._buffers[0].shape[0] < n:
            self._buffers = [np.empty((n, *self.shape[1:]), self.dtype) for _ in range(2)]
        self._turn ^= 1
        return E.repeated_range(self._pattern, start, stop, out=self._buffers[self._turn][:n])

    def _take(self, idx: np.ndarray) -> np.ndarray:
        rep, i = np.divmod(idx, self._pattern.shape[0])
        return self._pattern[i] + rep.astype(self.dtype)[:, None, None]


# -- points ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    n_frames: int
    n_rois: int
    radius: int


@dataclass
class Plan:
    """The three axes and the pattern's length, full, ``--quick`` or (tests) tiny."""

    frames: tuple[int, ...]
    rois: tuple[int, ...]
    radii: tuple[int, ...]
    base_frames: int
    base_rois: int
    pattern: int

    def axes(self) -> dict[str, list[Point]]:
        r = E.RADIUS
        return {
            "frames": [Point(n, self.base_rois, r) for n in self.frames],
            "ROIs": [Point(self.base_frames, n, r) for n in self.rois],
            "ROI radius": [Point(self.base_frames, self.base_rois, k) for k in self.radii],
        }


def make_plan(quick: bool, tiny: bool = False) -> Plan:
    if tiny:
        return Plan((40, 100), (10, 20), (3, 5), 40, 10, 40)
    if quick:
        return Plan((200, 500, 1000, 2000), (50, 100, 200, 500), (3, 6, 12), 200, 100, 200)
    return Plan(
        (2000, 5000, 10_000, 20_000, 50_000),
        (100, 500, 1000, 2000, 5000),
        (3, 5, 8, 12),
        2000,
        500,
        2000,
    )


# -- worker ---------------------------------------------------------------------------
def measure_point(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: plan once, one untimed short call, then the timed calls."""
    import roitrace
    from roitrace.extract import run_plan

    pattern = np.load(spec["pattern_npy"])  # in memory, not mapped
    labels = E.make_labels(spec["n_rois"], spec["seed"], spec["radius"])
    roiset = roitrace.RoiSet.from_labels(labels)
    t0 = time.perf_counter()
    plan = roitrace.plan_extraction(roiset, E.FRAME_SHAPE, method="mean", neuropil=E.NEUROPIL)
    plan_s = time.perf_counter() - t0
    flats = plan.groups()[0]
    pixels = int(sum(len(f) for f in flats))
    n_frames = spec["n_frames"]
    t0 = time.perf_counter()
    run_plan(RepeatingMovie(pattern, min(WARM_UP_FRAMES, n_frames)), plan)
    first_s = time.perf_counter() - t0
    movie = RepeatingMovie(pattern, n_frames)
    gc.collect()
    before = E.proc_status()
    hwm_reset = E.reset_peak_rss()
    times = []
    for _ in range(spec["repeat"]):
        t0 = time.perf_counter()
        cells, rings = run_plan(movie, plan)
        times.append(time.perf_counter() - t0)
        del cells, rings
    after = E.proc_status()
    reads = []  # the frames alone, as the timed calls read them: the movie's own cost
    for _ in range(spec["repeat"]):
        t0 = time.perf_counter()
        for start in range(0, n_frames, READ_CHUNK):
            movie.stream_range(start, min(start + READ_CHUNK, n_frames))
        reads.append(time.perf_counter() - t0)
    seconds = min(times)
    peak = after["VmHWM"] if hwm_reset else max(after["VmHWM"], before["VmRSS"])
    return {
        "n_frames": n_frames,
        "n_rois_drawn": spec["n_rois"],
        "n_rois": plan.n_rois,
        "radius": spec["radius"],
        "groups": len(flats),
        "pixels_per_frame": pixels,
        "plan_s": plan_s,
        "first_s": first_s,
        "seconds": seconds,
        "seconds_calls": times,
        "fps": n_frames / seconds,
        "read_s": min(reads),
        "ns_per_read": seconds / (pixels * n_frames) * 1e9,
        "pattern_mb": pattern.nbytes / MIB,
        "baseline_rss_mb": before["VmRSS"],
        "peak_rss_mb": peak,
        "above_movie_mb": peak - before["VmRSS"],
        "peak_rss_whole_process": not hwm_reset,
    }


def run_worker(spec: dict[str, Any], timeout: float, verbose: bool) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if verbose and proc.stderr.strip():
        E.log(proc.stderr.rstrip())
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return {**json.loads(line[len(RESULT_MARK) :]), "worker_s": time.perf_counter() - t0}
    lines = proc.stderr.strip().splitlines() or ["no output"]
    if not verbose:
        E.log("\n".join(lines[-15:]))
    return {"error": f"worker exited {proc.returncode}: {lines[-1][:160]}"}


# -- report ---------------------------------------------------------------------------
def linearity(axis: str, rows: list[dict[str, Any]]) -> str:
    """Whether time grows linearly along an axis: the time per unit of work (per frame
    on the frames axis, per pixel-read on the others) at the largest point against
    the smallest."""
    done = [r for r in rows if "seconds" in r]
    if len(done) < 2:
        return f"- {axis}: not enough points measured to tell"
    small, large = done[0], done[-1]
    if axis == "frames":
        a, b = small["seconds"] / small["n_frames"], large["seconds"] / large["n_frames"]
        unit = (
            f"seconds per frame at {large['n_frames']:,} frames "
            f"({b * 1e3:.3f} ms) vs at {small['n_frames']:,} ({a * 1e3:.3f} ms)"
        )
    else:
        a, b = small["ns_per_read"], large["ns_per_read"]
        what = f"{large['n_rois']} ROIs" if axis == "ROIs" else f"radius {large['radius']}"
        was = f"{small['n_rois']} ROIs" if axis == "ROIs" else f"radius {small['radius']}"
        unit = f"ns per pixel-read at {what} ({b:.2f}) vs at {was} ({a:.2f})"
    ratio = b / a
    if 1 / LINEAR_WITHIN <= ratio <= LINEAR_WITHIN:
        verdict = f"linear (within {LINEAR_WITHIN - 1:.0%})"
    elif ratio > LINEAR_WITHIN:
        verdict = "faster than linear (each unit costs more at the large end)"
    else:
        verdict = "slower than linear (fixed costs amortise, or the large end is cheaper per unit)"
    return f"- {axis}: {unit}: {ratio:.2f}x -> time grows {verdict}"


def table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        "| axis | frames | ROIs (drawn) | radius | pixel reads per frame | frames/s | seconds "
        "| ns per pixel-read | of which reading the frames (s) | peak RSS (MB) "
        "| RSS above movie (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for axis, rows in results.items():
        for row in rows:
            if "seconds" not in row:
                lines.append(f"| {axis} | | | | | {row.get('error', 'failed')} | | | | | |")
                continue
            lines.append(
                f"| {axis} | {row['n_frames']:,} | {row['n_rois']:,} ({row['n_rois_drawn']:,}) "
                f"| {row['radius']} | {row['pixels_per_frame']:,} | {E.fmt_fps(row['fps'])} "
                f"| {row['seconds']:.3f} | {row['ns_per_read']:.2f} | {row['read_s']:.3f} "
                f"| {row['peak_rss_mb']:,.0f} "
                f"| {row['above_movie_mb']:,.0f} |"
            )
    return lines


def header(load_start: float, load_end: float) -> str:
    versions = ", ".join(f"{n} {v}" for n, v in E.package_versions().items())
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = f"Machine: {E.machine()}; {now}; Python {platform.python_version()}; {versions}"
    for var in ("ROITRACE_NUMBA", "NUMBA_CACHE_DIR", "NUMBA_NUM_THREADS"):
        if var in os.environ:
            line += f"; {var}={os.environ[var]}"
    return line + f"; load average at start {load_start:.2f}, at end {load_end:.2f}"


def notes(plan: Plan, repeat: int, pattern_mb: float) -> list[str]:
    return [
        f'- Each point: a fresh process; `plan_extraction(..., method="mean", '
        f"neuropil={E.NEUROPIL})` once, one untimed call on {WARM_UP_FRAMES} frames "
        f"(compile or cache load), then the fastest of {repeat} timed `run_plan` calls "
        "(F and Fneu).",
        f"- Frames come from `RepeatingMovie`: the {plan.pattern:,}-frame movie of "
        f"`extraction.make_movie` ({pattern_mb:,.0f} MB, in memory) repeated, +1 per "
        "repetition, so memory stays bounded and the disk is not what is measured; each "
        "chunk is copied (and added to) into one of two reused buffers, at every point "
        "alike, in the engine's reader thread; 'of which reading the frames' is that cost "
        f"alone (the frames read in {READ_CHUNK}-frame chunks, nothing done with them): "
        "the reader overlaps it with the extraction, on the same 2 cores.",
        "- ROIs: disks of `extraction.make_labels` (a later disk wins overlaps: the ROIs "
        f"left of those drawn are shown); radius {E.RADIUS} except on the radius axis; the "
        f"movie's cells are radius-{E.RADIUS} disks whatever the ROIs' radius. Pixel reads "
        "per frame: the cells' and rings' pixels summed over the plan's groups.",
        "- ns per pixel-read: seconds / (pixel reads per frame x frames). Peak RSS: VmHWM "
        "reset right before the timed calls; RSS above movie: peak minus the RSS right "
        "before them (which holds the pattern and the plan). MB = 2^20 bytes.",
    ]


# -- main ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="How roitrace's mean traces' time grows with frames, ROIs and ROI size."
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (< 1 min)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per point; the fastest")
    p.add_argument("--seed", type=int, default=0, help="seed of the movie and ROIs")
    p.add_argument("--tmpdir", default=None, help="where to write the pattern (default: system)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    return E.parse_common(p, argv, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        result = measure_point(json.loads(args.worker))
        print(RESULT_MARK + json.dumps(result, default=float), flush=True)
        return 0
    plan = make_plan(args.quick, args.tiny)
    load_start = os.getloadavg()[0]
    E.log(f"Machine: {E.machine()}")
    results: dict[str, list[dict[str, Any]]] = {}
    done: dict[Point, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="roitrace-scaling-", dir=args.tmpdir) as tmp:
        pattern_npy = Path(tmp) / "pattern.npy"
        E.log(f"writing the {plan.pattern}-frame pattern ...")
        E.write_npy(pattern_npy, plan.pattern, plan.pattern, args.seed)
        for axis, points in plan.axes().items():
            results[axis] = []
            for pt in points:
                if pt not in done:
                    E.log(f"[{axis}] {pt.n_frames} frames, {pt.n_rois} ROIs, radius {pt.radius}")
                    spec = {
                        **pt.__dict__,
                        "seed": args.seed,
                        "repeat": args.repeat,
                        "pattern_npy": str(pattern_npy),
                    }
                    done[pt] = run_worker(spec, args.timeout, args.verbose)
                    row = done[pt]
                    if "fps" in row:
                        E.log(
                            f"  {row['fps']:,.0f} frames/s, {row['ns_per_read']:.2f} ns per "
                            f"pixel-read, peak RSS {row['peak_rss_mb']:,.0f} MB"
                        )
                results[axis].append(done[pt])
    pattern_mb = plan.pattern * E.FRAME_SHAPE[0] * E.FRAME_SHAPE[1] * 2 / MIB
    title = "# roitrace scaling benchmark" + (" (--quick)" if args.quick else "")
    report = [title, "", header(load_start, os.getloadavg()[0]), ""]
    report += [*table(results), "", "Does time grow linearly?", ""]
    report += [linearity(axis, rows) for axis, rows in results.items()]
    report += ["", *notes(plan, args.repeat, pattern_mb)]
    print("\n".join(report))
    if args.out:
        payload = {"quick": args.quick, "results": results}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
