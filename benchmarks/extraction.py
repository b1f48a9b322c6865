"""Extraction benchmark: steady-state frames/s, one-time costs and peak memory of
roitrace against the usual routes (suite2p, scipy.sparse, the notebook, a floor).

Run from the repository root::

    python benchmarks/extraction.py                  # full run: A, B, L, C, D, S (~25 GB disk)
    python benchmarks/extraction.py --quick          # smoke test of every case: ~3 minutes
    python benchmarks/extraction.py --cases A,B --out results.json
    python benchmarks/extraction.py --suite2p-python /path/to/bench-venv/bin/python
    python benchmarks/extraction.py --tiff-gb 12 --tmpdir /big/scratch

It prints one Markdown table per case to stdout (progress goes to stderr), a
start-up section (case ``S``), then a "Targets" section. The suite2p rows need a
Python where torch and suite2p 1.1 import: ``--suite2p-python`` names it (default:
the Python running this script), e.g. a separate venv made with
``python3 -m venv bench-venv && bench-venv/bin/pip install torch==2.13.0 suite2p==1.1.0``.
Only the suite2p workers run under it, and they never import roitrace (each row
reports whether it did); every other worker runs under the current Python.

What it measures, and why it is fair
------------------------------------
Users extract 50,000-frame sessions, many of them per process: the steady state
decides, and one-time costs are reported apart, never mixed into it. Every
(case, method) pair runs in its own fresh worker subprocess (``--worker SPEC``),
which does, timing each step with :func:`time.perf_counter`:

1. **import**: the method's own modules (``import roitrace`` and
   ``roitrace.extract``; ``import torch`` and suite2p's extraction modules;
   ``scipy.sparse``; nothing for the notebook and the floor: numpy is imported by
   every worker before the clock starts);
2. **setup**: what is built once per set of ROIs and reused for every recording:
   roitrace's ``plan_extraction`` (the first plans in a process make their rings
   with the scipy twin of the compiled ring kernel, until thousands of rings pay for
   loading it), suite2p's ``create_masks``, the scipy CSR weight
   matrices; nothing for the notebook, the floor and ``roitrace.extract`` (which
   plans inside the call). Turning the ROI label image into a ``RoiSet`` or into
   suite2p's ``stat`` list is input conversion, timed by nobody;
3. **first call** (cold): one call on the real movie; it pays numba's compile or
   cache load, torch's start-up, first sparse products, first-touch page faults;
4. ``--repeat`` (3) more calls (warm), the fastest counting: the machines are
   shared, and the fastest call is the one least disturbed. Every method gets the
   same number of calls: there is no time budget that stops a slow method early.

A "call" is what is repeated per recording once the masks exist: for roitrace
``run_plan(movie, plan)`` (F and Fneu), for suite2p ``extraction_wrapper(stat,
movie, cell_masks=..., neuropil_masks=..., settings=..., device=cpu)`` with the
masks given (suite2p still turns its mask lists into torch sparse tensors inside
every call: that is its own per-recording work), for scipy the CSR products over
float32 batches of 500 frames (suite2p's algorithm, written plainly), for the
notebook ``movie[:, ys, xs]`` then ``np.mean``/``np.median`` per ROI, for the
floor one streaming ``np.sum`` over the movie (single-threaded numpy, 128-frame
chunks). ``roitrace.extract`` (the whole call: planning, traces, F_corrected,
dF/F, per-ROI statistics) is a row of its own, so the full call's cost beyond the
traces is visible.

Data. The ROI label image and the cell and neuropil-ring pixels are computed once
(by roitrace, in a worker) and cached in an ``.npz`` that every method reads, so
every method reduces exactly the same pixels (suite2p builds its own neuropil
masks with ``create_masks``, as it does in use). The in-memory movies are written
once to an ``.npy`` in the work folder and every worker ``np.load``s it with
``mmap_mode="r"``: the same bytes for every method and no per-worker generation
cost. The file is in the page cache, so the first call pays page faults (part of
"cold") and the warm calls read memory. Every method gets the mapping as a plain
``ndarray``, as an array in memory (given the ``np.memmap`` itself, roitrace would
stream it as a file: views of the map whose pages it gives back after each chunk,
its route for movies larger than memory).

Threads: roitrace's kernels and torch use every core (numba's and torch's
defaults; the suite2p rows say torch's count); scipy.sparse, the notebook routes
and the floor run on one. Each row's note also says what its setup and first call
did for the first time: numba kernels compiled or loaded from the cache, packages
imported on first use (``import roitrace`` is lazy: numba and scipy arrive with the
first plan).

Reported per row: warm frames/s (frames / seconds of the fastest warm call; a
route timed on the first ``--subset`` ROIs only has its per-ROI seconds scaled to
all ROIs), the ratios to suite2p and the floor (warm, same run), cold frames/s
(first call), import, setup and first-call seconds, peak RSS (``VmHWM`` of
``/proc/self/status`` at the end, reset through ``/proc/self/clear_refs`` right
before the first call; it counts the movie's mapped pages, about the movie's size
for every method that reads all of it; the note gives the peak of anonymous memory
alone), and each method's max |difference| from the notebook route on the first
50 ROIs (the correctness check). Timings are only as good as the machine is quiet:
the header gives the load average at the start and the end.

Cases: A, in memory, 2000 x 512 x 512 int16, 500 disk ROIs of radius 6; B, the
same with 2000 ROIs of radius 4 (each movie has its own cells of that radius);
L, long: 20,000 frames (10.5 GB .npy, the 2000-frame movie repeated, +1 per
repetition) with 500 ROIs of radius 6, where fixed costs amortise; neuropil rings
of at least 350 pixels throughout. C, an uncompressed TIFF of at least
``--tiff-gb`` GiB (the 2000-frame movie repeated) with 500 ROIs, whose key number
is ``roitrace.extract``'s peak RSS; D, a deflate-compressed (zlib level 6)
2000-frame TIFF; C and D time roitrace mean, ``roitrace.extract``, the notebook
mean and the floor (through ``roitrace.open_movie``, whose reads are copies, where
roitrace's engine streams an uncompressed file as views of its memory map). A file
is read once (a
second read would come from the page cache), so C and D have one timed call
each, after a first call on a 30-frame file of the same kind (compile or cache
load, reported as the first call). S, start-up: the wall seconds
of ``python -m roitrace demo`` and of a first ``roitrace.extract`` in a fresh
process, with an empty ``NUMBA_CACHE_DIR`` (kernels compiled) and again with the
same folder (cache loaded). ``--quick`` shrinks A, B, L, C, D to 200, 200, 2000,
~400 and 200 frames, 100 ROIs (B: 200), zlib level 1; S is the same at every size.
The movies and TIFFs are written to a temporary folder under ``--tmpdir`` and
removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAME_SHAPE = (512, 512)
RADIUS = 6
MOVIE_CELLS = 2000  # cells drawn into the movie; a case's ROIs are the first n of them
NEUROPIL = {"gap": 2, "width": 3, "exclude_gap": 1, "min_pixels": 350}
TRACE_ROIS = 50  # ROIs whose traces are compared between methods
BATCH = 500  # suite2p's batch_size
FLOOR_CHUNK = 128  # frames per np.sum chunk (64 MiB)
WRITE_CHUNK = 256  # frames per write of a generated .npy
WARM_UP_FRAMES = 30  # frames of the file cases' first-call file
STARTUP_MOVIE = (100, 100)  # frames, ROIs of the start-up section's extract()
RESULT_MARK = "BENCH-RESULT "
MIB = 2**20

METHOD_NAMES = {
    "roitrace-mean": "roitrace mean",
    "roitrace-weighted": "roitrace weighted (proximity)",
    "roitrace-median": "roitrace median",
    "roitrace-extract": "roitrace.extract() whole call (mean)",
    "notebook-mean": "notebook mean",
    "notebook-median": "notebook median",
    "scipy-sparse": "scipy.sparse (suite2p algorithm)",
    "suite2p": "suite2p extraction_wrapper",
    "floor": "floor: streaming np.sum",
}
# method -> (the notebook route it is compared with, compare F, compare Fneu);
# methods not listed have nothing comparable
REFERENCE = {
    "roitrace-mean": ("notebook-mean", True, True),
    "roitrace-weighted": ("notebook-mean", False, True),
    "roitrace-median": ("notebook-median", True, True),
    "roitrace-extract": ("notebook-mean", True, True),
    "scipy-sparse": ("notebook-mean", True, True),
    "suite2p": ("notebook-mean", True, False),
}
IN_MEMORY_METHODS = tuple(METHOD_NAMES)
FILE_METHODS = ("roitrace-mean", "roitrace-extract", "notebook-mean", "floor")
STARTUP_KEY = "S"


# -- cases ----------------------------------------------------------------------------
@dataclass
class Case:
    key: str
    title: str
    source: str  # "memory", "tiff" or "tiff-deflate"
    n_frames: int
    n_rois: int
    methods: tuple[str, ...]
    subset: int | None = None  # notebook route timed on this many ROIs, scaled up
    pattern_frames: int = 2000  # a long movie or a TIFF repeats this many frames
    deflate_level: int = 6  # zlib level of case D's TIFF (tifffile's default)
    radius: int = RADIUS  # of the disk ROIs (and of the movie's cells)

    @property
    def in_memory(self) -> bool:
        return self.source == "memory"


def make_cases(quick: bool, tiff_gb: float, subset: int, tiny: bool = False) -> dict[str, Case]:
    """The five timed cases, full size, ``--quick`` size or (tests) tiny."""
    if tiny:  # a few seconds per worker, for the test suite
        frames, long_frames, (small, big), gib = 40, 120, (20, 40), 60 * 2**19 / 2**30
    elif quick:
        frames, long_frames, (small, big), gib = 200, 2000, (100, 200), 0.2
    else:
        frames, long_frames, (small, big), gib = 2000, 20_000, (500, 2000), tiff_gb
    frame_bytes = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
    tiff_frames = math.ceil(gib * 2**30 / frame_bytes)
    sub = max(subset, TRACE_ROIS)
    level = 6 if not (quick or tiny) else 1  # level 6 writes at ~13 frames/s here
    memory, files = IN_MEMORY_METHODS, FILE_METHODS
    return {
        "A": Case("A", f"in memory, {small} ROIs of radius 6", "memory", frames, small, memory),
        "B": Case(
            "B", f"in memory, {big} ROIs of radius 4", "memory", frames, big, memory, sub, radius=4
        ),
        "L": Case(
            "L",
            f"long, in memory, {small} ROIs of radius 6 ({frames}-frame movie repeated, "
            "+1 per repetition)",
            "memory",
            long_frames,
            small,
            memory,
            sub,
            frames,
        ),
        "C": Case(
            "C",
            f"uncompressed TIFF of {tiff_frames * frame_bytes / 2**30:.1f} GiB, {small} ROIs",
            "tiff",
            tiff_frames,
            small,
            files,
            sub,
            frames,
        ),
        "D": Case(
            "D",
            f"deflate-compressed TIFF (zlib level {level}), {small} ROIs",
            "tiff-deflate",
            frames,
            small,
            files,
            sub,
            frames,
            level,
        ),
    }


# -- data -----------------------------------------------------------------------------
def disk_offsets(radius: int = RADIUS) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    inside = yy**2 + xx**2 <= radius**2
    return yy[inside], xx[inside]


def make_labels(n: int, seed: int, radius: int = RADIUS) -> np.ndarray:
    """A label image of the first ``n`` of the movie's disks of ``radius``; a later
    disk wins overlaps (so a disk covered by later ones can vanish). Beyond the
    movie's ``MOVIE_CELLS`` cells, further disks are drawn from the same generator."""
    rng = np.random.default_rng(seed)
    ny, nx = FRAME_SHAPE
    low, high = [radius, radius], [ny - radius, nx - radius]
    centers = rng.integers(low, high, size=(MOVIE_CELLS, 2))
    if n > MOVIE_CELLS:
        centers = np.concatenate([centers, rng.integers(low, high, size=(n - MOVIE_CELLS, 2))])
    dy, dx = disk_offsets(radius)
    labels = np.zeros(FRAME_SHAPE, np.int32)
    for k, (cy, cx) in enumerate(centers[:n], start=1):
        labels[cy + dy, cx + dx] = k
    return labels


def make_movie(n_frames: int, seed: int, radius: int = RADIUS) -> np.ndarray:
    """A (T, 512, 512) int16 movie: noise (sd 20) around 200, a slow global drift,
    brighter disks of ``radius`` (the cells) and sparse decaying transients."""
    rng = np.random.default_rng(seed + 1)
    labels = make_labels(MOVIE_CELLS, seed, radius).reshape(-1)
    npx = labels.size
    bright = rng.uniform(40, 160, MOVIE_CELLS + 1)
    bright[0] = 0
    base = np.rint(200 + bright[labels]).astype(np.int16)
    pool = np.rint(rng.normal(0, 20, 4 * npx)).astype(np.int16)  # noise, shifted per frame
    starts = rng.integers(0, pool.size - npx, n_frames)
    drift = np.rint(15 * np.sin(np.arange(n_frames) / 150.0)).astype(np.int16)
    out = np.empty((n_frames, npx), np.int16)
    for t in range(n_frames):
        np.add(pool[starts[t] : starts[t] + npx], base, out=out[t])
        out[t] += drift[t]
    _add_transients(out, labels, bright, rng)
    return out.reshape(n_frames, *FRAME_SHAPE)


def _add_transients(
    out: np.ndarray, labels: np.ndarray, bright: np.ndarray, rng: np.random.Generator
) -> None:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(MOVIE_CELLS + 2))
    n_frames = out.shape[0]
    times, cells = np.nonzero(rng.random((n_frames, MOVIE_CELLS)) < 0.01)
    for t, c in zip(times, cells + 1, strict=True):
        pix = order[bounds[c] : bounds[c + 1]]
        for lag, factor in enumerate((1.0, 0.6, 0.36)):
            if t + lag < n_frames:
                out[t + lag, pix] += np.int16(factor * bright[c])


def repeated_frames(
    n_frames: int, pattern: int, seed: int, radius: int = RADIUS
) -> Iterator[np.ndarray]:
    """``n_frames`` frames: the ``pattern``-frame movie repeated, +1 per repetition."""
    movie = make_movie(min(pattern, n_frames), seed, radius)
    for t in range(n_frames):
        rep, i = divmod(t, movie.shape[0])
        yield movie[i] + np.int16(rep) if rep else movie[i]


def repeated_range(
    pattern: np.ndarray, start: int, stop: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Frames ``start`` to ``stop - 1`` of ``pattern`` repeated without end, +1 per
    repetition (what :func:`repeated_frames` yields), as a new array (or in ``out``)."""
    n = pattern.shape[0]
    if out is None:
        out = np.empty((stop - start, *pattern.shape[1:]), pattern.dtype)
    t = start
    while t < stop:
        rep, i = divmod(t, n)
        k = min(n - i, stop - t)
        np.add(pattern[i : i + k], pattern.dtype.type(rep), out=out[t - start : t - start + k])
        t += k
    return out


def write_npy(path: Path, n_frames: int, pattern: int, seed: int, radius: int = RADIUS) -> None:
    """Write the ``pattern``-frame movie repeated to ``n_frames`` (+1 per repetition)
    as an ``.npy``, ``WRITE_CHUNK`` frames at a time: memory stays at the pattern's."""
    movie = make_movie(min(pattern, n_frames), seed, radius)
    header = {
        "descr": np.lib.format.dtype_to_descr(movie.dtype),
        "fortran_order": False,
        "shape": (n_frames, *FRAME_SHAPE),
    }
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for t0 in range(0, n_frames, WRITE_CHUNK):
            f.write(repeated_range(movie, t0, min(t0 + WRITE_CHUNK, n_frames)).tobytes())


def write_tiff(
    path: Path, n_frames: int, pattern: int, seed: int, level: int | None, radius: int = RADIUS
) -> None:
    """Write one series of ``n_frames`` pages from a frame iterator (pages contiguous,
    so an uncompressed file is memory-mappable; axes TYX); deflate at ``level``."""
    import tifffile

    compression = {"compression": "zlib", "compressionargs": {"level": level}} if level else {}
    tifffile.imwrite(
        path,
        repeated_frames(n_frames, pattern, seed, radius),
        shape=(n_frames, *FRAME_SHAPE),
        dtype=np.int16,
        bigtiff=True,
        photometric="minisblack",
        metadata={"axes": "TYX"},
        **compression,
    )


# -- ROI pixels (computed by roitrace, shared by every method) ----------------------------
@dataclass
class RoiPixels:
    labels: np.ndarray
    cells: list[np.ndarray]  # flat pixel indices per ROI
    rings: list[np.ndarray]

    @classmethod
    def load(cls, path: str) -> RoiPixels:
        with np.load(path) as z:
            return cls(
                z["labels"],
                np.split(z["cell_flat"], z["cell_bounds"][1:-1]),
                np.split(z["ring_flat"], z["ring_bounds"][1:-1]),
            )


def prepare_rois(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: the ROIs' cell and ring pixels, from roitrace, saved to an .npz."""
    import roitrace

    labels = make_labels(spec["n_rois"], spec["seed"], spec["radius"])
    roiset = roitrace.RoiSet.from_labels(labels)
    t0 = time.perf_counter()
    cells, rings, how = roitrace_pixels(roiset)
    setup_s = time.perf_counter() - t0
    np.savez(
        spec["rois_npz"],
        labels=labels,
        cell_flat=np.concatenate(cells),
        cell_bounds=np.cumsum([0] + [c.size for c in cells]),
        ring_flat=np.concatenate(rings),
        ring_bounds=np.cumsum([0] + [r.size for r in rings]),
    )
    cell_n = np.array([c.size for c in cells])
    ring_n = np.array([r.size for r in rings])
    return {
        "n_rois": len(cells),
        "cell_npix_median": float(np.median(cell_n)),
        "cell_npix_min": int(cell_n.min()),
        "ring_npix_median": float(np.median(ring_n)),
        "ring_npix_min": int(ring_n.min()),
        "ring_setup_s": setup_s,
        "rings_from": how,
    }


def roitrace_pixels(roiset: Any) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Cell and ring flat pixel indices exactly as ``roitrace.extract`` uses them (its
    extraction plan), or by the documented rule for a roitrace without plans."""
    try:
        from roitrace import plan_extraction

        plan = plan_extraction(roiset, roiset.frame_shape, neuropil=NEUROPIL)
        return list(plan.cells), list(plan.rings), "roitrace.plan_extraction"
    except (ImportError, TypeError, AttributeError):
        return _public_pixels(roiset)


def _public_pixels(roiset: Any) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """The documented rule: ``neuropil_ring`` minus every cell dilated by
    ``exclude_gap``, grown one pixel of width at a time to ``min_pixels``. Slow;
    the roitrace workers check that their plans use rings of the same sizes."""
    from roitrace import neuropil_ring
    from roitrace.neuropil import dilate

    every_cell = roiset.coverage() > 0
    exclude = dilate(every_cell, NEUROPIL["exclude_gap"])
    nx = roiset.frame_shape[1]
    cells, rings = [], []
    for r in roiset:
        cells.append(r.y.astype(np.intp) * nx + r.x)
        mask, width = r.mask(roiset.frame_shape), NEUROPIL["width"]
        ring = neuropil_ring(mask, gap=NEUROPIL["gap"], width=width, exclude=exclude)
        while ring.sum() < NEUROPIL["min_pixels"] and width < max(roiset.frame_shape):
            width += 1
            ring = neuropil_ring(mask, gap=NEUROPIL["gap"], width=width, exclude=exclude)
        rings.append(np.flatnonzero(ring))
    return cells, rings, "public API (neuropil_ring) fallback"


# -- memory ---------------------------------------------------------------------------
def proc_status() -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile of this process, in MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class AnonSampler:
    """Samples RssAnon every 20 ms in a thread: the peak of anonymous memory alone
    (VmHWM also counts file pages that a memory map made resident)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status().get("RssAnon", 0.0))
            self._stop.wait(0.02)

    def __enter__(self) -> AnonSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status().get("RssAnon", 0.0))


# -- methods --------------------------------------------------------------------------
@dataclass
class Traces:
    F: np.ndarray
    Fneu: np.ndarray | None
    timed_rois: int  # ROIs the call extracted (fewer: seconds are scaled up)
    fixed_s: float = 0.0  # part of the call that does not grow with ROIs (loading a file)


@dataclass
class Context:
    spec: dict[str, Any]
    rois: RoiPixels
    movie: np.ndarray | None  # in-memory cases: the memory-mapped .npy as an ndarray
    path: str | None  # file cases: the file the next call reads
    info: dict[str, Any] = field(default_factory=dict)
    mods: dict[str, Any] = field(default_factory=dict)  # what load() imported
    inputs: dict[str, Any] = field(default_factory=dict)  # what inputs() converted

    @property
    def n_rois(self) -> int:
        return len(self.rois.cells)

    @property
    def radius(self) -> int:
        return int(self.spec.get("radius", RADIUS))


Runner = Callable[[], Traces]


def _nothing(ctx: Context) -> None:
    return None


@dataclass
class Method:
    """One route, in the worker's three phases: ``load`` (imports, timed as import),
    ``inputs`` (input conversion: not timed), ``setup`` (what is built once per set
    of ROIs, timed as setup; returns the call)."""

    setup: Callable[[Context], Runner]
    load: Callable[[Context], None] = _nothing
    inputs: Callable[[Context], None] = _nothing


def _load_roitrace(ctx: Context) -> None:
    import roitrace
    from roitrace.extract import run_plan  # the module: roitrace.extract is also a function

    ctx.mods.update(roitrace=roitrace, run_plan=run_plan)


def _roiset(ctx: Context) -> None:
    ctx.inputs["roiset"] = ctx.mods["roitrace"].RoiSet.from_labels(ctx.rois.labels)


def roitrace_plan_method(how: str, weights: str | None = None) -> Method:
    """``plan_extraction`` once (setup), then ``run_plan(movie, plan)`` per call."""

    def setup(ctx: Context) -> Runner:
        roitrace, run_plan = ctx.mods["roitrace"], ctx.mods["run_plan"]
        plan = roitrace.plan_extraction(
            ctx.inputs["roiset"], FRAME_SHAPE, method=how, weights=weights, neuropil=NEUROPIL
        )
        ctx.info["ring_mismatch"] = ring_mismatch([r.size for r in plan.rings], ctx.rois)

        def run() -> Traces:
            if ctx.movie is not None:
                cells, rings = run_plan(ctx.movie, plan)
            else:
                with roitrace.open_movie(ctx.path) as movie:
                    cells, rings = run_plan(movie, plan)
            return Traces(cells, rings, ctx.n_rois)

        return run

    return Method(setup, _load_roitrace, _roiset)


def roitrace_extract_method() -> Method:
    """The whole ``roitrace.extract(movie, roiset, method="mean", neuropil=...)``."""

    def setup(ctx: Context) -> Runner:
        roitrace = ctx.mods["roitrace"]

        def run() -> Traces:
            source: Any = ctx.movie if ctx.movie is not None else ctx.path
            ds = roitrace.extract(
                source, ctx.inputs["roiset"], method="mean", neuropil=NEUROPIL, progress=False
            )
            ctx.info["ring_mismatch"] = ring_mismatch(ds["npix_neuropil"].values, ctx.rois)
            return Traces(ds["F"].values, ds["Fneu"].values, ctx.n_rois)

        return run

    return Method(setup, _load_roitrace, _roiset)


def ring_mismatch(sizes: Any, rois: RoiPixels) -> int:
    """How many of roitrace's rings differ in size from the shared ones."""
    shared = np.array([r.size for r in rois.rings])
    return int(np.sum(np.asarray(sizes) != shared))


def notebook_method(reduce: Callable[..., np.ndarray]) -> Method:
    """The notebook: ``movie[:, ys, xs]`` per ROI, then mean/median over pixels."""

    def setup(ctx: Context) -> Runner:
        k = min(ctx.spec.get("subset") or ctx.n_rois, ctx.n_rois)
        nx = FRAME_SHAPE[1]
        cells = [divmod(c, nx) for c in ctx.rois.cells[:k]]
        rings = [divmod(r, nx) for r in ctx.rois.rings[:k]]

        def run() -> Traces:
            t0 = time.perf_counter()
            movie = _notebook_movie(ctx)
            fixed = time.perf_counter() - t0
            F = np.array([reduce(movie[:, ys, xs], axis=1) for ys, xs in cells])
            Fneu = np.array([reduce(movie[:, ys, xs], axis=1) for ys, xs in rings])
            return Traces(F, Fneu, k, fixed)

        return run

    return Method(setup)


def _notebook_movie(ctx: Context) -> np.ndarray:
    if ctx.movie is not None:
        return ctx.movie
    import tifffile

    if ctx.spec["source"] == "tiff":
        return tifffile.memmap(ctx.path, mode="r")
    return tifffile.imread(ctx.path)


def _load_scipy(ctx: Context) -> None:
    import scipy.sparse

    ctx.mods["sparse"] = scipy.sparse


def _weights_csr(sparse: Any, pixels: list[np.ndarray], n_pixels: int) -> Any:
    rows = np.repeat(np.arange(len(pixels)), [p.size for p in pixels])
    vals = np.concatenate([np.full(p.size, 1.0 / p.size, np.float32) for p in pixels])
    shape = (len(pixels), n_pixels)
    return sparse.csr_matrix((vals, (rows, np.concatenate(pixels))), shape=shape)


def scipy_setup(ctx: Context) -> Runner:
    """suite2p's algorithm in scipy: (n_rois x n_pixels) CSR weights (1/npix, built
    once: setup) times float32 batches of 500 frames (suite2p's batch_size).

    ``W @ batch.T`` makes scipy copy the transposed batch for every product (and
    suite2p's ``batch @ masks`` does the same inside scipy), so the batch is
    transposed and converted once, in one pass: the fastest batch form measured here.
    """
    movie = ctx.movie
    assert movie is not None
    n_t = movie.shape[0]
    n_px = FRAME_SHAPE[0] * FRAME_SHAPE[1]
    w_cell = _weights_csr(ctx.mods["sparse"], ctx.rois.cells, n_px)
    w_ring = _weights_csr(ctx.mods["sparse"], ctx.rois.rings, n_px)

    def run() -> Traces:
        F = np.empty((ctx.n_rois, n_t), np.float32)
        Fneu = np.empty((ctx.n_rois, n_t), np.float32)
        for t0 in range(0, n_t, BATCH):
            block = movie[t0 : t0 + BATCH]
            # (pixels, frames) float32 in C order, what csr @ dense reads row by row
            x = block.reshape(block.shape[0], -1).T.astype(np.float32, order="C")
            F[:, t0 : t0 + block.shape[0]] = w_cell @ x
            Fneu[:, t0 : t0 + block.shape[0]] = w_ring @ x
        return Traces(F, Fneu, ctx.n_rois)

    return run


@dataclass
class Suite2p:
    extraction_wrapper: Callable[..., Any]
    create_masks: Callable[..., Any]
    default_settings: Callable[..., Any]
    how: str  # how the modules were loaded
    failed_s: float = 0.0  # seconds of a failed ``import suite2p`` first (not counted)


def load_suite2p() -> Suite2p:
    """suite2p's ``extraction_wrapper``, ``create_masks`` and ``default_settings``.

    ``import suite2p`` imports its whole pipeline, and with it cellpose and
    torchvision; where torchvision cannot load (a CUDA build of torchvision next to
    a CPU build of torch: "operator torchvision::nms does not exist"), the extraction
    modules are loaded on their own, without the package's ``__init__``: the same
    extraction code runs, only the unrelated pipeline imports are skipped. The
    failed attempt's seconds are returned apart (a working install would not pay
    them; it would pay the whole pipeline's imports instead).
    """
    t0 = time.perf_counter()
    try:
        from suite2p import default_settings
        from suite2p.extraction import extraction_wrapper
        from suite2p.extraction.masks import create_masks

        return Suite2p(extraction_wrapper, create_masks, default_settings, "import suite2p")
    except Exception as exc:  # any import failure: try the direct route
        reason = f"{type(exc).__name__}: {exc}"
    failed_s = time.perf_counter() - t0
    for name in [m for m in sys.modules if m == "suite2p" or m.startswith("suite2p.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("suite2p")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("suite2p is not installed")
    root = list(spec.submodule_search_locations)
    for name, sub in (("suite2p", ""), ("suite2p.detection", "detection")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(p, sub) if sub else p for p in root]
        sys.modules[name] = pkg
    params = importlib.import_module("suite2p.parameters")
    sys.modules["suite2p"].default_settings = params.default_settings  # type: ignore[attr-defined]
    extract = importlib.import_module("suite2p.extraction.extract")
    how = f"extraction modules loaded directly (import suite2p failed: {reason[:80]})"
    return Suite2p(
        extract.extraction_wrapper, extract.create_masks, params.default_settings, how, failed_s
    )


def suite2p_stat(rois: RoiPixels, radius: int = RADIUS) -> list[dict[str, Any]]:
    """suite2p ``stat`` entries for our cells: equal weights (lam), no overlap."""
    nx = FRAME_SHAPE[1]
    stat = []
    for flat in rois.cells:
        ys, xs = divmod(flat, nx)
        stat.append(
            {
                "ypix": ys,
                "xpix": xs,
                "lam": np.ones(flat.size, np.float32),
                "npix": int(flat.size),
                "med": [float(np.median(ys)), float(np.median(xs))],
                "radius": float(radius),
                "overlap": np.zeros(flat.size, bool),
            }
        )
    return stat


def _load_suite2p(ctx: Context) -> None:
    import torch

    s2p = load_suite2p()
    ctx.mods.update(torch=torch, suite2p=s2p)
    ctx.info.update(
        suite2p_import=s2p.how,
        suite2p_failed_import_s=s2p.failed_s,
        torch_threads=torch.get_num_threads(),
        versions={"torch": torch.__version__, "suite2p": _version("suite2p")},
    )


def _suite2p_inputs(ctx: Context) -> None:
    ctx.inputs["stat"] = suite2p_stat(ctx.rois, ctx.radius)
    ctx.inputs["settings"] = ctx.mods["suite2p"].default_settings()["extraction"]


def suite2p_setup(ctx: Context) -> Runner:
    """``create_masks`` once (setup), with the settings ``extraction_wrapper`` would
    use; then per call ``extraction_wrapper(stat, movie, cell_masks=...,
    neuropil_masks=..., settings=..., device=cpu)``: float32 batches of 500 frames
    times torch sparse masks."""
    s2p: Suite2p = ctx.mods["suite2p"]
    stat, settings = ctx.inputs["stat"], ctx.inputs["settings"]
    cpu = ctx.mods["torch"].device("cpu")
    cell_masks, neuropil_masks = s2p.create_masks(
        stat,
        *FRAME_SHAPE,
        lam_percentile=settings["lam_percentile"],
        allow_overlap=settings["allow_overlap"],
        neuropil_extract=settings["neuropil_extract"],
        inner_neuropil_radius=settings["inner_neuropil_radius"],
        min_neuropil_pixels=settings["min_neuropil_pixels"],
        circular_neuropil=settings["circular_neuropil"],
    )
    ctx.info["suite2p_ring_npix_median"] = float(np.median([r.size for r in neuropil_masks]))
    ctx.info["suite2p_settings"] = settings
    movie = ctx.movie
    assert movie is not None

    def run() -> Traces:
        F, Fneu, _, _ = s2p.extraction_wrapper(
            stat,
            movie,
            cell_masks=cell_masks,
            neuropil_masks=neuropil_masks,
            settings=settings,
            device=cpu,
        )
        return Traces(F, Fneu, ctx.n_rois)

    return run


def _load_floor(ctx: Context) -> None:
    if ctx.movie is None:
        import roitrace

        ctx.mods["roitrace"] = roitrace


def floor_setup(ctx: Context) -> Runner:
    """One streaming pass of np.sum over the movie, FLOOR_CHUNK frames at a time
    (single-threaded numpy; for files, the frames read through roitrace.open_movie)."""

    def run() -> Traces:
        movie: Any = ctx.movie
        if movie is None:
            movie = ctx.mods["roitrace"].open_movie(ctx.path)
        total = 0
        for t0 in range(0, movie.shape[0], FLOOR_CHUNK):
            total += int(movie[t0 : t0 + FLOOR_CHUNK].sum(dtype=np.int64))
        ctx.info["sum"] = total
        return Traces(np.zeros((0, 0)), None, ctx.n_rois)

    return run


METHODS: dict[str, Method] = {
    "roitrace-mean": roitrace_plan_method("mean"),
    "roitrace-weighted": roitrace_plan_method("weighted", "proximity"),
    "roitrace-median": roitrace_plan_method("median"),
    "roitrace-extract": roitrace_extract_method(),
    "notebook-mean": notebook_method(np.mean),
    "notebook-median": notebook_method(np.median),
    "scipy-sparse": Method(scipy_setup, _load_scipy),
    "suite2p": Method(suite2p_setup, _load_suite2p, _suite2p_inputs),
    "floor": Method(floor_setup, _load_floor),
}


# -- worker ---------------------------------------------------------------------------
def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: load the data; time the imports, the setup, the first call and
    ``repeat`` more calls of one method."""
    if spec["method"] == "suite2p" and importlib.util.find_spec("suite2p") is None:
        return {"skipped": f"suite2p is not installed in {sys.executable}"}
    rois = RoiPixels.load(spec["rois_npz"])
    in_memory = spec["source"] == "memory"
    movie = None
    if in_memory:  # the page-cached .npy, as a plain array (see the module docstring)
        movie = np.load(spec["movie_npy"], mmap_mode="r").view(np.ndarray)
    # a file case's first call reads a small file of the same kind
    ctx = Context(spec, rois, movie, None if in_memory else spec["warm_up_path"])
    method = METHODS[spec["method"]]
    try:
        t0 = time.perf_counter()
        method.load(ctx)
        import_s = time.perf_counter() - t0 - ctx.info.get("suite2p_failed_import_s", 0.0)
        method.inputs(ctx)
        first_use = FirstUse()
        t0 = time.perf_counter()
        run = method.setup(ctx)
        setup_s = time.perf_counter() - t0
        ctx.info["setup_first_use"] = first_use.since()
    except (ImportError, RuntimeError) as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}

    calls: list[dict[str, Any]] = []

    def call() -> None:
        first_use = FirstUse() if not calls else None
        t0 = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - t0
        if first_use is not None:
            ctx.info["first_call_first_use"] = first_use.since()
        scaled = out.fixed_s + (seconds - out.fixed_s) * ctx.n_rois / max(out.timed_rois, 1)
        calls.append({"timed": seconds, "seconds": scaled, "checksum": checksum(out)})
        ctx.info["timed_rois"], ctx.info["fixed_s"] = out.timed_rois, out.fixed_s
        save_traces(spec["traces_npz"], out)

    gc.collect()
    if not in_memory:
        call()  # the small file: compile or cache load; the file itself is read once
        ctx.path = spec["path"]
        gc.collect()
    before = proc_status()
    hwm_reset = reset_peak_rss()
    with AnonSampler() as anon:
        if in_memory:
            call()
        for _ in range(spec["repeat"]):
            call()
    after = proc_status()
    first, warm = calls[0], calls[1:]
    best = min(warm, key=lambda c: c["seconds"])
    frames = spec["n_frames"]
    sums = {c["checksum"] for c in (calls if in_memory else warm)}
    return {
        **ctx.info,
        "frames": frames,
        "n_rois": ctx.n_rois,
        "import_s": import_s,
        "setup_s": setup_s,
        "first_s": first["seconds"],
        "first_timed_s": first["timed"],
        "first_frames": frames if in_memory else WARM_UP_FRAMES,
        "fps_cold": frames / first["seconds"] if in_memory else None,
        "calls": len(warm),
        "seconds_calls": [c["seconds"] for c in warm],
        "seconds": best["seconds"],
        "seconds_timed": best["timed"],
        "fps": frames / best["seconds"],
        "baseline_rss_mb": before["VmRSS"],
        "peak_rss_mb": after["VmHWM"] if hwm_reset else max(after["VmHWM"], before["VmRSS"]),
        "peak_rss_whole_process": not hwm_reset,
        "peak_anon_mb": anon.peak,
        "end_rss_file_mb": after["RssFile"],
        "checksum": best["checksum"],
        "calls_agree": len(sums) == 1,
        "python": sys.executable,
        "imported_roitrace": "roitrace" in sys.modules,
    }


def top_modules() -> set[str]:
    """The third-party packages imported so far (not the standard library's)."""
    names = {name.partition(".")[0] for name in list(sys.modules)}
    return {n for n in names if not n.startswith("_") and n not in sys.stdlib_module_names}


def numba_counts() -> tuple[int, int]:
    """(compiled, loaded from cache) so far, summed over the numba dispatchers at the
    top level of roitrace's modules: what a first call compiled or loaded."""
    if "numba" not in sys.modules or "roitrace" not in sys.modules:
        return 0, 0
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return 0, 0
    seen: set[int] = set()
    compiled = loaded = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("roitrace"):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                stats = obj.stats
                compiled += sum(stats.cache_misses.values())
                loaded += sum(stats.cache_hits.values())
    return compiled, loaded


class FirstUse:
    """What a step did for the first time: numba kernels compiled or loaded from
    the cache, and top-level packages imported (lazily, on first use)."""

    def __init__(self) -> None:
        self.numba, self.modules = numba_counts(), top_modules()

    def since(self) -> dict[str, Any]:
        (c1, l1), (c0, l0) = numba_counts(), self.numba
        return {
            "compiled": c1 - c0,
            "loaded": l1 - l0,
            "imported": sorted(top_modules() - self.modules),
        }


def save_traces(path: str, out: Traces) -> None:
    if out.F.size:
        fneu = out.Fneu[:TRACE_ROIS] if out.Fneu is not None else np.zeros((0, 0))
        np.savez(path, F=out.F[:TRACE_ROIS], Fneu=fneu)


def checksum(out: Traces) -> float | None:
    """Sum of the first 50 ROIs' F and Fneu (float64): equal across agreeing methods."""
    if not out.F.size:
        return None
    parts = [out.F[:TRACE_ROIS]] + ([out.Fneu[:TRACE_ROIS]] if out.Fneu is not None else [])
    return float(sum(np.sum(p, dtype=np.float64) for p in parts))


def write_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: write a movie (``.npy`` or TIFF) from the generator."""
    t0 = time.perf_counter()
    path = Path(spec["path"])
    n, pattern, seed, radius = (
        spec["n_frames"],
        spec["pattern_frames"],
        spec["seed"],
        spec["radius"],
    )
    if spec["format"] == "npy":
        write_npy(path, n, pattern, seed, radius)
    else:
        write_tiff(path, n, pattern, seed, spec["level"], radius)
    return {"seconds": time.perf_counter() - t0, "bytes": path.stat().st_size}


def startup_extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: a first ``roitrace.extract`` in a fresh process (the movie and
    labels are made with numpy before the clock starts)."""
    n_frames, n_rois = STARTUP_MOVIE
    movie = make_movie(n_frames, spec["seed"])
    labels = make_labels(n_rois, spec["seed"])
    t0 = time.perf_counter()
    import roitrace

    t1 = time.perf_counter()
    roitrace.extract(movie, labels, neuropil=NEUROPIL, progress=False)
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "extract_s": t2 - t1}


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    tasks = {
        "rois": prepare_rois,
        "write": write_task,
        "measure": measure,
        "startup-extract": startup_extract,
    }
    result = tasks[spec["task"]](spec)
    print(RESULT_MARK + json.dumps(result, default=float), flush=True)


# -- parent: running workers --------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_worker(
    spec: dict[str, Any],
    timeout: float,
    verbose: bool,
    python: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one worker subprocess; its result, or ``{"error": ...}``."""
    cmd = [python or sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"could not start {cmd[0]}: {exc}"}
    if verbose and proc.stderr.strip():
        log(proc.stderr.rstrip())
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return {**json.loads(line[len(RESULT_MARK) :]), "worker_s": time.perf_counter() - t0}
    lines = proc.stderr.strip().splitlines() or ["no output"]
    if not verbose:
        log("\n".join(lines[-15:]))
    return {"error": f"worker exited {proc.returncode}: {lines[-1][:160]}"}


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    rois: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    def spec(self, case: Case, **extra: Any) -> dict[str, Any]:
        return {
            "seed": self.args.seed,
            "n_rois": case.n_rois,
            "n_frames": case.n_frames,
            "radius": case.radius,
            "source": case.source,
            "subset": case.subset,
            "pattern_frames": case.pattern_frames,
            "tmpdir": str(self.workdir),
            "rois_npz": str(self.workdir / f"rois-{case.n_rois}-r{case.radius}.npz"),
            # a file is read once (a second read would come from the page cache)
            "repeat": self.args.repeat if case.in_memory else 1,
            **extra,
        }

    def worker(self, spec: dict[str, Any], python: str | None = None) -> dict[str, Any]:
        return run_worker(spec, self.args.timeout, self.args.verbose, python)

    def roi_info(self, case: Case) -> dict[str, Any]:
        key = (case.n_rois, case.radius)
        if key not in self.rois:
            log(f"[{case.key}] ROIs and neuropil rings for {case.n_rois} disks ...")
            self.rois[key] = self.worker(self.spec(case, task="rois"))
        return self.rois[key]

    def run_case(self, case: Case) -> dict[str, Any]:
        result: dict[str, Any] = {"case": case.__dict__, "rows": {}}
        info = self.roi_info(case)
        result["rois"] = info
        if "error" in info:
            result["skipped"] = f"ROI setup failed: {info['error']}"
            return result
        files: dict[str, Path] = {}
        try:
            skip = self.write_movies(case, files, result)
            if skip:
                result["skipped"] = skip
                return result
            for method in case.methods:
                if self.args.methods and method not in self.args.methods:
                    continue
                result["rows"][method] = self.run_method(case, method, files)
        finally:
            for path in files.values():
                path.unlink(missing_ok=True)
        return result

    def write_movies(
        self, case: Case, files: dict[str, Path], result: dict[str, Any]
    ) -> str | None:
        """Write the case's movie (an .npy, or a TIFF and its small first-call TIFF)."""
        frame_bytes = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
        need = case.n_frames * frame_bytes
        free = shutil.disk_usage(self.workdir).free
        if free < need + 2**30:  # and 1 GiB to spare
            have, want = free / 2**30, (need + 2**30) / 2**30
            return f"only {have:.1f} GiB free in {self.workdir}, need {want:.1f} GiB"
        if case.in_memory:
            todo = {"movie": (f"case-{case.key}.npy", case.n_frames, "npy")}
        else:
            todo = {
                "path": (f"case-{case.key}.tif", case.n_frames, "tiff"),
                "warm_up_path": (f"case-{case.key}-first-call.tif", WARM_UP_FRAMES, "tiff"),
            }
        for key, (name, n_frames, fmt) in todo.items():
            path = files[key] = self.workdir / name
            gib = n_frames * frame_bytes / 2**30
            log(f"[{case.key}] writing {name}: {n_frames} frames, {gib:.2f} GiB")
            spec = self.spec(case, task="write", path=str(path), format=fmt, n_frames=n_frames)
            spec["level"] = case.deflate_level if case.source == "tiff-deflate" else None
            out = self.worker(spec)
            if "error" in out:
                return f"writing {name} failed: {out['error']}"
            log(f"[{case.key}]   {out['bytes'] / 2**30:.2f} GiB in {out['seconds']:.1f} s")
            result.setdefault("file", out)
        return None

    def run_method(self, case: Case, method: str, files: dict[str, Path]) -> dict[str, Any]:
        log(f"[{case.key}] {METHOD_NAMES[method]} ...")
        spec = self.spec(
            case,
            task="measure",
            method=method,
            traces_npz=str(self.workdir / f"traces-{case.key}-{method}.npz"),
            **{("movie_npy" if k == "movie" else k): str(p) for k, p in files.items()},
        )
        python = self.args.suite2p_python if method == "suite2p" else None
        out = self.worker(spec, python)
        if "fps" in out:
            cold = f", cold {fmt_fps(out['fps_cold'])}" if out.get("fps_cold") else ""
            log(
                f"[{case.key}]   {out['fps']:,.1f} frames/s warm{cold}, peak RSS "
                f"{out['peak_rss_mb']:,.0f} MB (worker {out['worker_s']:.1f} s)"
            )
        else:
            log(f"[{case.key}]   {out.get('skipped') or out.get('error')}")
        return out


# -- start-up (case S) ----------------------------------------------------------------
def run_startup(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Wall seconds of fresh processes: ``roitrace demo`` and a first ``extract``,
    each with an empty ``NUMBA_CACHE_DIR`` (cold) and again with the same one (warm)."""
    out: dict[str, Any] = {}
    for what in ("demo", "extract"):
        cache = Path(tempfile.mkdtemp(prefix=f"numba-cache-{what}-", dir=workdir))
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
        for state in ("cold", "warm"):
            log(f"[S] {what}, {state} numba cache ...")
            if what == "demo":
                folder = workdir / f"demo-{state}"
                cmd = [sys.executable, "-m", "roitrace", "demo", "--out", str(folder)]
                t0 = time.perf_counter()
                try:
                    proc = subprocess.run(
                        [*cmd, "--no-progress"],
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                        env=env,
                    )
                    row: dict[str, Any] = {"wall_s": time.perf_counter() - t0}
                    if proc.returncode:
                        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                        row = {"error": f"exit {proc.returncode}: {tail[:160]}"}
                except subprocess.TimeoutExpired:
                    row = {"error": f"timed out after {args.timeout:.0f} s"}
                shutil.rmtree(folder, ignore_errors=True)
            else:
                t0 = time.perf_counter()
                spec = {"task": "startup-extract", "seed": args.seed}
                row = run_worker(spec, args.timeout, args.verbose, env=env)
                if "error" not in row:
                    row["wall_s"] = time.perf_counter() - t0
            files = [p for p in cache.rglob("*") if p.is_file()]
            row["cache_files"] = len(files)
            row["cache_mb"] = sum(p.stat().st_size for p in files) / MIB
            out[f"{what}-{state}"] = row
            if "wall_s" in row:
                log(f"[S]   {row['wall_s']:.1f} s")
        shutil.rmtree(cache, ignore_errors=True)
    return out


def startup_table(rows: dict[str, Any]) -> list[str]:
    n_frames, n_rois = STARTUP_MOVIE
    lines = [
        "### Case S: start-up, wall seconds of a fresh process",
        "",
        "| what | cold: empty NUMBA_CACHE_DIR (s) | warm: same folder again (s) "
        "| cold - warm (s) | note |",
        "|---|---:|---:|---:|---|",
    ]
    what = {
        "demo": "`python -m roitrace demo --out DIR --no-progress`",
        "extract": f"first `roitrace.extract` ({n_frames} frames of 512 x 512 int16, "
        f"{n_rois} ROIs, neuropil rings) in a fresh process",
    }
    for key, title in what.items():
        cold, warm = rows.get(f"{key}-cold", {}), rows.get(f"{key}-warm", {})
        cells = []
        for row in (cold, warm):
            cells.append(f"{row['wall_s']:.1f}" if "wall_s" in row else "failed")
        diff = (
            f"{cold['wall_s'] - warm['wall_s']:.1f}"
            if "wall_s" in cold and "wall_s" in warm
            else ""
        )
        notes = []
        for state, row in (("cold", cold), ("warm", warm)):
            if "error" in row:
                notes.append(f"{state}: {row['error']}")
            elif "import_s" in row:
                notes.append(
                    f"{state}: import roitrace {row['import_s']:.2f} s, "
                    f"extract() {row['extract_s']:.2f} s"
                )
        if "cache_files" in cold:
            notes.append(
                f"numba cache after the cold run: {cold['cache_files']} files, "
                f"{cold['cache_mb']:.1f} MB"
            )
        lines.append(f"| {title} | {cells[0]} | {cells[1]} | {diff} | {'; '.join(notes)} |")
    return [
        *lines,
        "",
        "- Wall seconds from starting the process to its exit (the demo also writes its "
        "movie, traces and figures). Only numba's cache is emptied for the cold run: "
        "Python's own bytecode caches are as they were.",
        "",
    ]


# -- differences between methods --------------------------------------------------------------
def add_differences(workdir: Path, key: str, rows: dict[str, dict[str, Any]]) -> None:
    """Each row's max |difference| from the notebook route, first 50 ROIs."""
    for method, row in rows.items():
        if method not in REFERENCE or "fps" not in row:
            continue
        ref_method, use_f, use_fneu = REFERENCE[method]
        ref_path = workdir / f"traces-{key}-{ref_method}.npz"
        own_path = workdir / f"traces-{key}-{method}.npz"
        if not (ref_path.exists() and own_path.exists()):
            continue
        with np.load(ref_path) as ref, np.load(own_path) as own:
            diffs = {}
            for name, use in (("F", use_f), ("Fneu", use_fneu)):
                n = min(len(ref[name]), len(own[name]))
                if use and n:
                    diffs[name] = float(np.max(np.abs(own[name][:n] - ref[name][:n])))
        row["max_diff"] = diffs


# -- report ---------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ram = 0.0
    try:
        with open("/proc/meminfo") as f:
            ram = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal")) / 2**20
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM"


def header(suite2p_python: str, s2p_versions: str, load_start: float, load_end: float) -> str:
    versions = ", ".join(f"{name} {v}" for name, v in package_versions().items())
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = (
        f"Machine: {machine()}; {now}; Python {platform.python_version()} "
        f"({sys.executable}); {versions}; suite2p workers: {suite2p_python} ({s2p_versions})"
    )
    for var in ("ROITRACE_NUMBA", "NUMBA_CACHE_DIR", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            line += f"; {var}={os.environ[var]}"
    return line + f"; load average at start {load_start:.2f}, at end {load_end:.2f}"


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("roitrace", "numpy", "scipy", "numba", "tifffile"):
        out[name] = _version(name)
    return out


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def suite2p_versions(python: str) -> str:
    """torch and suite2p versions as the suite2p workers' Python sees them."""
    code = (
        "import importlib.metadata as m\n"
        "for n in ('torch', 'suite2p'):\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: print(n, 'missing')\n"
    )
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not runnable: {exc}"
    return ", ".join(proc.stdout.split("\n")).strip(", ") or "unknown versions"


def fmt_fps(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_s(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def fmt_diff(row: dict[str, Any], method: str) -> str:
    if method.startswith("notebook"):
        return "reference"
    if "max_diff" not in row:
        return "n/a"
    d = row["max_diff"]
    parts = [f"{k} {v:.1e}" for k, v in d.items()]
    if method == "roitrace-weighted":
        parts.insert(0, "F n/a (weights)")
    if method == "suite2p":
        parts.append("Fneu n/a (own rings)")
    return "; ".join(parts)


def row_note(method: str, row: dict[str, Any], case: Case) -> str:
    notes = []
    if row.get("timed_rois", 0) < row.get("n_rois", 0):
        note = f"timed on first {row['timed_rois']} of {row['n_rois']} ROIs, scaled linearly"
        if row.get("fixed_s", 0) > 0.05:
            note += f" (reading the file, {row['fixed_s']:.2f} s, not scaled)"
        notes.append(note)
    if method in ("roitrace-mean", "roitrace-weighted", "roitrace-median"):
        notes.append("run_plan(movie, plan): F and Fneu; setup = plan_extraction")
    if method == "roitrace-extract":
        notes.append("planning, traces, F_corrected, dF/F, statistics: all in the call")
    if row.get("ring_mismatch"):
        notes.append(
            f"WARNING: {row['ring_mismatch']} of its rings differ in size from the shared "
            "ones the other methods use (roitrace changed during the run?)"
        )
    for step, key in (("setup", "setup_first_use"), ("first call", "first_call_first_use")):
        used = first_use_note(row.get(key))
        if used:
            notes.append(f"{step}: {used}")
    if method == "suite2p":
        notes.append(suite2p_note(row))
    if method == "scipy-sparse":
        notes.append("CSR (1/npix) @ float32 batches of 500; setup = building the CSR")
    if method == "floor":
        where = "in memory" if case.in_memory else "via roitrace.open_movie"
        notes.append(f"single-threaded numpy, {FLOOR_CHUNK}-frame chunks, {where}")
    notes.append(f"anonymous memory peak {row['peak_anon_mb']:,.0f} MB")
    if not case.in_memory:
        notes.append(f"file-backed RSS at end {row['end_rss_file_mb']:,.0f} MB")
    if row.get("peak_rss_whole_process"):
        notes.append("peak RSS of the whole worker (HWM reset failed)")
    if not row.get("calls_agree", True):
        notes.append("WARNING: the calls' traces differ from each other")
    return "; ".join(notes)


def first_use_note(used: dict[str, Any] | None) -> str:
    if not used:
        return ""
    parts = []
    if used["compiled"]:
        parts.append(f"numba compiled {used['compiled']} kernel(s)")
    if used["loaded"]:
        parts.append(f"loaded {used['loaded']} from numba's cache")
    if used["imported"]:
        names = used["imported"]
        more = f" and {len(names) - 6} more" if len(names) > 6 else ""
        parts.append(f"imported {', '.join(names[:6])}{more}")
    return ", ".join(parts)


def suite2p_note(row: dict[str, Any]) -> str:
    note = f"float32; torch CPU, {row['torch_threads']} threads"
    ring = row["suite2p_ring_npix_median"]
    note += f"; setup = create_masks; own neuropil masks, median {ring:.0f} px"
    note += (
        "; each call turns the mask lists into torch sparse tensors (suite2p's own per-call work)"
    )
    if not row["suite2p_import"].startswith("import suite2p"):
        note += (
            "; suite2p loaded without its package __init__ (torchvision broken): the failed "
            f"`import suite2p` took {row['suite2p_failed_import_s']:.2f} s, not counted"
        )
    if row.get("imported_roitrace"):
        note += "; WARNING: this worker imported roitrace"
    return note


def case_table(result: dict[str, Any], case: Case, repeat: int) -> list[str]:
    lines = [f"### Case {case.key}: {case.title}, {case.n_frames} frames of 512 x 512 int16", ""]
    if "skipped" in result:
        return [*lines, f"Skipped: {result['skipped']}", ""]
    rows = result["rows"]
    s2p = rows.get("suite2p", {}).get("fps")
    floor = rows.get("floor", {}).get("fps")
    n = repeat if case.in_memory else 1
    lines += [
        f"| method | warm frames/s (best of {n}) | x suite2p (warm) | x floor | cold frames/s "
        "(first call) | import s | setup s | first call s | peak RSS (MB) "
        "| max \\|diff\\| vs notebook | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for method, row in rows.items():
        name = METHOD_NAMES[method]
        if "fps" not in row:
            status, why = ("skipped", row["skipped"]) if "skipped" in row else ("failed", "")
            why = why or row.get("error", "")
            lines.append(f"| {name} | {status} | | | | | | | | | {why} |")
            continue
        fps = row["fps"]
        lines.append(
            f"| {name} | {fmt_fps(fps)} | {fmt_ratio(fps / s2p if s2p else None)} "
            f"| {fmt_ratio(fps / floor if floor else None)} | {fmt_fps(row['fps_cold'])} "
            f"| {fmt_s(row['import_s'])} | {fmt_s(row['setup_s'])} | {fmt_s(row['first_s'])} "
            f"| {row['peak_rss_mb']:,.0f} | {fmt_diff(row, method)} "
            f"| {row_note(method, row, case)} |"
        )
    return [*lines, "", *case_notes(result, case), ""]


def case_notes(result: dict[str, Any], case: Case) -> list[str]:
    info = result["rois"]
    movie_mb = case.n_frames * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2 / MIB
    notes = [
        f"- {info['n_rois']} ROIs (disks of radius {case.radius}, a later disk wins overlaps; "
        f"median {info['cell_npix_median']:.0f} px, min {info['cell_npix_min']}); rings "
        f"{NEUROPIL}: median {info['ring_npix_median']:.0f} px, min {info['ring_npix_min']}, "
        f"computed in {info['ring_setup_s']:.2f} s ({info['rings_from']})."
    ]
    f = result.get("file", {})
    written = f" (written in {f['seconds']:.1f} s)" if "seconds" in f else ""
    if case.in_memory:
        notes.append(
            f"- Movie {movie_mb:,.0f} MB: an .npy{written} that every worker memory-maps; "
            "it is in the page cache, so the first call pays the page faults and the warm "
            "calls read memory. Peak RSS counts the mapped pages a method touched (about "
            "the movie's size for a method that reads every frame)."
        )
    else:
        notes.append(
            f"- Movie {movie_mb:,.0f} MB on disk{written}, just before the runs: it is likely "
            "in the page cache. Read once: the first call s is a call on a "
            f"{WARM_UP_FRAMES}-frame file of the same kind (compile or cache load), so there "
            "is no cold frames/s; peak RSS counts mapped file pages too."
        )
    if case.subset is not None and case.subset < info["n_rois"]:
        notes.append(
            f"- The notebook routes are timed on the first {case.subset} ROIs (a whole run "
            "would take too long) and their per-ROI seconds scaled to all ROIs."
        )
    return notes


# -- targets ---------------------------------------------------------------------------
# (what, case, method, compared with, at least): the targets, on warm frames/s
TARGETS = [
    *[
        (f"roitrace mean >= 10x suite2p, case {c}", c, "roitrace-mean", "suite2p", 10.0)
        for c in "AB"
    ],
    ("roitrace mean >= 0.6 of the floor, case A", "A", "roitrace-mean", "floor", 0.6),
    ("roitrace mean >= 0.35 of the floor, case B", "B", "roitrace-mean", "floor", 0.35),
    *[
        (f"roitrace weighted >= 8x suite2p, case {c}", c, "roitrace-weighted", "suite2p", 8.0)
        for c in "AB"
    ],
    *[
        (
            f"roitrace median >= 5x notebook median, case {c}",
            c,
            "roitrace-median",
            "notebook-median",
            5.0,
        )
        for c in "AB"
    ],
]


def targets(results: dict[str, dict[str, Any]], quick: bool) -> list[str]:
    """The issue's targets, each met / not met, from the warm frames/s of one run."""

    def fps(case: str, method: str) -> float | None:
        return results.get(case, {}).get("rows", {}).get(method, {}).get("fps")

    lines = ["## Targets", ""]
    if quick:
        lines += ["(--quick sizes: a smoke test, not the measurement the targets are about)", ""]
    for what, case, method, other, goal in TARGETS:
        a, b = fps(case, method), fps(case, other)
        lines.append(ratio_line(what, a, b, goal, METHOD_NAMES[method], METHOD_NAMES[other]))
    lines.append(rss_target(results, quick))
    return lines


def ratio_line(what: str, a: float | None, b: float | None, goal: float, na: str, nb: str) -> str:
    if a is None or b is None:
        return f"- {what}: not measured (case not run, or a method skipped or failed)"
    r = a / b
    verdict = "met" if r >= goal else "not met"
    return f"- {what}: {r:.2f}x -> {verdict} ({na} {fmt_fps(a)} frames/s, {nb} {fmt_fps(b)})"


RSS_METHOD = "roitrace-extract"


def rss_target(results: dict[str, dict[str, Any]], quick: bool) -> str:
    what = "12 GB file, roitrace.extract() peak RSS < 1 GiB (1024 MB), case C"
    row = results.get("C", {}).get("rows", {}).get(RSS_METHOD, {})
    if "peak_rss_mb" not in row:
        return f"- {what}: not measured (case not run, or the method skipped or failed)"
    peak = row["peak_rss_mb"]
    verdict = "met" if peak < 1024 else "not met"
    size = results["C"]["case"]["n_frames"] * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2 / 2**30
    small = f" (file only {size:.1f} GiB in this run)" if quick or size < 12 else ""
    return f"- {what}: {peak:,.0f} MB ({peak / 1024:.2f} of 1 GiB) -> {verdict}{small}"


# -- main ------------------------------------------------------------------------------
def parse_common(
    p: argparse.ArgumentParser, argv: list[str] | None, *, timeout: float
) -> argparse.Namespace:
    """The options every benchmark script here shares, added to ``p``; the parsed
    arguments, ``--repeat`` checked."""
    p.add_argument("--timeout", type=float, default=timeout, help="seconds per worker")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the tests' size
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark roitrace extraction (warm and cold frames/s, one-time costs, "
        "peak RSS) against the notebook route, scipy.sparse, suite2p and a streaming "
        "np.sum floor; and roitrace's start-up."
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (~3 min)")
    p.add_argument(
        "--cases",
        default=None,
        help="which cases, e.g. A,B: A, B, L (long), C, D (files), S (start-up); default all",
    )
    p.add_argument(
        "--methods",
        default=None,
        help=f"only these methods, comma-separated (default all): {', '.join(METHOD_NAMES)}",
    )
    p.add_argument("--tiff-gb", type=float, default=12.0, help="size of case C's TIFF in GiB")
    p.add_argument("--tmpdir", default=None, help="where to write the movies (default: system)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument("--seed", type=int, default=0, help="seed of the movie and ROIs")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed warm calls after the first call, the same for every method (in-memory "
        "cases); the fastest counts",
    )
    p.add_argument(
        "--subset", type=int, default=100, help="ROIs the notebook route is timed on in B-D, L"
    )
    p.add_argument(
        "--suite2p-python",
        default=sys.executable,
        help="the Python the suite2p workers run under (default: this one)",
    )
    args = parse_common(p, argv, timeout=3600)
    if args.methods is not None:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in args.methods if m not in METHOD_NAMES]
        if unknown:
            p.error(f"unknown method(s) {unknown}: choose from {list(METHOD_NAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    cases = make_cases(args.quick, args.tiff_gb, args.subset, args.tiny)
    chosen = args.cases or ",".join([*cases, STARTUP_KEY])
    keys = [k.strip().upper() for k in chosen.split(",") if k.strip()]
    unknown = [k for k in keys if k not in cases and k != STARTUP_KEY]
    if unknown:  # as argparse does: the message, then exit status 2
        known = [*cases, STARTUP_KEY]
        log(f"extraction.py: error: unknown case(s) {unknown}: choose from {known}")
        return 2
    load_start = os.getloadavg()[0]
    s2p_versions = suite2p_versions(args.suite2p_python)
    log(f"Machine: {machine()}; suite2p workers: {args.suite2p_python} ({s2p_versions})")
    if load_start > 0.5:
        log("warning: the machine is busy (load average above 0.5): timings will be noisy")
    workdir = Path(tempfile.mkdtemp(prefix="roitrace-bench-", dir=args.tmpdir))
    results: dict[str, dict[str, Any]] = {}
    try:
        bench = Bench(args, workdir)
        for key in keys:
            if key == STARTUP_KEY:
                results[key] = run_startup(args, workdir)
                continue
            results[key] = bench.run_case(cases[key])
            add_differences(workdir, key, results[key]["rows"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    head = header(args.suite2p_python, s2p_versions, load_start, os.getloadavg()[0])
    title = "# roitrace extraction benchmark" + (" (--quick)" if args.quick else "")
    report = [title, "", head, ""]
    for key in keys:
        if key == STARTUP_KEY:
            report += startup_table(results[key])
        else:
            report += case_table(results[key], cases[key], args.repeat)
    report += [
        *targets(results, args.quick or args.tiny),
        "",
        f"warm frames/s: frames / seconds of the fastest of {args.repeat} calls after the "
        "first (every method the same number; a file: one call), each (case, method) in a "
        "fresh process; cold frames/s: the first call; import, setup and first call: "
        "one-time costs, apart; ratios are warm, from this run; MB = 2^20 bytes; peak "
        "RSS: VmHWM reset right before the first call.",
    ]
    print("\n".join(report))
    if args.out:
        payload = {"header": head, "quick": args.quick, "results": results}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
