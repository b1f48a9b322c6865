"""Extraction benchmark: frames/s and peak memory of roitrace against the usual routes.

Run from the repository root::

    python benchmarks/extraction.py                  # full run: cases A-D (needs ~14 GB disk)
    python benchmarks/extraction.py --quick          # smoke test of A, C, D: about a minute
    python benchmarks/extraction.py --cases A,B --out results.json
    python benchmarks/extraction.py --tiff-gb 12 --tmpdir /big/scratch

It prints one Markdown table per case to stdout (progress goes to stderr), then a
"Targets" section. Run it with a Python where suite2p 1.1.0 and torch are importable
to get the suite2p rows (they are skipped otherwise), e.g. a separate venv::

    python3 -m venv bench-venv
    bench-venv/bin/pip install torch==2.13.0 suite2p==1.1.0 && bench-venv/bin/pip install -e .

What it measures
----------------
Every (case, method) pair runs in a fresh subprocess (``--worker SPEC``), so that
its peak RSS is its own. The worker builds the movie and the ROIs from a seed (the
same in every worker; the ROI and neuropil-ring pixels are computed once by roitrace
and cached in an ``.npz`` so every method uses exactly the same pixels), warms up,
then times calls with :func:`time.perf_counter`: for the in-memory cases up to
``--repeat`` (3) calls, until they took 30 s, the fastest one counting (the machines
are shared: a call can lose half its speed to a neighbour); a file is read once. It
reports

* frames/s: frames in the movie / seconds of the fastest call (a route timed on the
  first ``--subset`` ROIs only has its per-ROI seconds scaled to all ROIs);
* peak RSS: ``VmHWM`` of ``/proc/self/status`` at the end, the high-water mark having
  been reset (``/proc/self/clear_refs``) right before the first timed call;
* RSS above movie: peak RSS minus the RSS right before the timed call (which holds the
  in-memory movie, or nothing but the interpreter for the file cases);
* the first 50 ROIs' traces, so the table can show each method's max |difference|
  from the notebook route (fancy indexing, then ``np.mean``/``np.median``).

Methods: roitrace (``roitrace.extract``, whole call including its ROI/ring setup,
which is also reported apart; mean, weighted with proximity weights, median; one
warm-up call on a tiny movie of the same kind first, so numba compile time is left
out and reported apart), the notebook route, scipy.sparse (suite2p's algorithm
written plainly: CSR weight matrices times float32 batches of 500 frames), suite2p
itself (``suite2p.extraction.extraction_wrapper`` on the CPU, making its own cell
and neuropil masks from ``stat``), and a floor: one streaming ``np.sum`` over the
movie. Timings are only as good as the machine is quiet: the header shows the load
average at the start.

Cases: A and B, an in-memory 2000 x 512 x 512 int16 movie with 500 and 2000 disk ROIs
(radius 6) and neuropil rings of at least 350 pixels; C, an uncompressed TIFF of at
least ``--tiff-gb`` GiB (the 2000-frame movie repeated, +1 per repetition) with 500
ROIs, whose key number is roitrace's peak RSS; D, a deflate-compressed (zlib level 6)
2000-frame TIFF with 500 ROIs. ``--quick`` shrinks them to 200 frames, 100 ROIs (B:
200), a 0.2 GiB TIFF and zlib level 1. The TIFFs are written to a temporary folder
under ``--tmpdir`` and removed at the end, also on error or Ctrl-C.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAME_SHAPE = (512, 512)
RADIUS = 6
MOVIE_CELLS = 2000  # cells drawn into the movie; a case's ROIs are the first n of them
NEUROPIL = {"gap": 2, "width": 3, "exclude_gap": 1, "min_pixels": 350}
REPEAT_BUDGET_S = 30.0  # no further call once the calls so far took this long
TRACE_ROIS = 50  # ROIs whose traces are compared between methods
BATCH = 500  # suite2p's batch_size
FLOOR_CHUNK = 128  # frames per np.sum chunk (64 MiB)
RESULT_MARK = "BENCH-RESULT "
MIB = 2**20

METHOD_NAMES = {
    "roitrace-mean": "roitrace mean",
    "roitrace-weighted": "roitrace weighted (proximity)",
    "roitrace-median": "roitrace median",
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
    "scipy-sparse": ("notebook-mean", True, True),
    "suite2p": ("notebook-mean", True, False),
}
IN_MEMORY_METHODS = tuple(METHOD_NAMES)
FILE_METHODS = ("roitrace-mean", "notebook-mean", "floor")


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
    pattern_frames: int = 2000  # a TIFF repeats this many generated frames
    deflate_level: int = 6  # zlib level of case D's TIFF (tifffile's default)


def make_cases(quick: bool, tiff_gb: float, subset: int) -> dict[str, Case]:
    """The four cases, full size or ``--quick`` size."""
    frames = 200 if quick else 2000
    small, big = (100, 200) if quick else (500, 2000)
    gib = 0.2 if quick else tiff_gb
    frame_bytes = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
    tiff_frames = math.ceil(gib * 2**30 / frame_bytes)
    sub = max(subset, TRACE_ROIS)
    level = 1 if quick else 6  # level 6 writes at ~13 frames/s here: too slow for --quick
    return {
        "A": Case("A", f"in memory, {small} ROIs", "memory", frames, small, IN_MEMORY_METHODS),
        "B": Case("B", f"in memory, {big} ROIs", "memory", frames, big, IN_MEMORY_METHODS, sub),
        "C": Case(
            "C",
            f"uncompressed TIFF of {tiff_frames * frame_bytes / 2**30:.1f} GiB, {small} ROIs",
            "tiff",
            tiff_frames,
            small,
            FILE_METHODS,
            sub,
            frames,
        ),
        "D": Case(
            "D",
            f"deflate-compressed TIFF (zlib level {level}), {small} ROIs",
            "tiff-deflate",
            frames,
            small,
            FILE_METHODS,
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


def make_labels(n: int, seed: int) -> np.ndarray:
    """A label image of the first ``n`` of the movie's disks; a later disk wins overlaps."""
    rng = np.random.default_rng(seed)
    ny, nx = FRAME_SHAPE
    centers = rng.integers([RADIUS, RADIUS], [ny - RADIUS, nx - RADIUS], size=(MOVIE_CELLS, 2))
    dy, dx = disk_offsets()
    labels = np.zeros(FRAME_SHAPE, np.int32)
    for k, (cy, cx) in enumerate(centers[:n], start=1):
        labels[cy + dy, cx + dx] = k
    return labels


def tiny_labels() -> np.ndarray:
    """Three disks in a 96 x 96 frame, for warm-up calls."""
    dy, dx = disk_offsets()
    labels = np.zeros((96, 96), np.int32)
    for k, (cy, cx) in enumerate(((24, 24), (24, 70), (70, 48)), start=1):
        labels[cy + dy, cx + dx] = k
    return labels


def make_movie(n_frames: int, seed: int) -> np.ndarray:
    """A (T, 512, 512) int16 movie: noise (sd 20) around 200, a slow global drift,
    brighter disks (the cells) and sparse decaying transients."""
    rng = np.random.default_rng(seed + 1)
    labels = make_labels(MOVIE_CELLS, seed).reshape(-1)
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


def repeated_frames(n_frames: int, pattern: int, seed: int) -> Iterator[np.ndarray]:
    """``n_frames`` frames: the ``pattern``-frame movie repeated, +1 per repetition."""
    movie = make_movie(min(pattern, n_frames), seed)
    for t in range(n_frames):
        rep, i = divmod(t, movie.shape[0])
        yield movie[i] + np.int16(rep) if rep else movie[i]


def write_tiff(path: Path, n_frames: int, pattern: int, seed: int, level: int | None) -> None:
    """Write one series of ``n_frames`` pages from a frame iterator (pages contiguous,
    so an uncompressed file is memory-mappable; axes TYX); deflate at ``level``."""
    import tifffile

    compression = {"compression": "zlib", "compressionargs": {"level": level}} if level else {}
    tifffile.imwrite(
        path,
        repeated_frames(n_frames, pattern, seed),
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

    labels = make_labels(spec["n_rois"], spec["seed"])
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
    the roitrace workers check that extract() used rings of the same sizes."""
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
    timed_rois: int  # ROIs the timed call extracted (fewer: seconds are scaled up)
    fixed_s: float = 0.0  # part of the timed call that does not grow with ROIs (load)


@dataclass
class Context:
    spec: dict[str, Any]
    rois: RoiPixels
    movie: np.ndarray | None  # in-memory cases
    path: str | None  # file cases
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rois(self) -> int:
        return len(self.rois.cells)


Runner = Callable[[], Traces]


def roitrace_runner(how: str, weights: str | None = None) -> Callable[[Context], Runner]:
    def setup(ctx: Context) -> Runner:
        import roitrace

        kw: dict[str, Any] = {"method": how, "neuropil": NEUROPIL, "progress": False}
        if weights is not None:
            kw["weights"] = weights
        ctx.info["roitrace_first_call_s"] = _roitrace_warm_up(ctx, kw)
        roiset = roitrace.RoiSet.from_labels(ctx.rois.labels)
        source: Any = ctx.movie if ctx.movie is not None else ctx.path
        if ctx.path is not None:
            t0 = time.perf_counter()
            roitrace.open_movie(ctx.path).close()
            ctx.info["open_s"] = time.perf_counter() - t0

        def run() -> Traces:
            setup_s: dict[str, float] = {}
            with ExitStack() as stack:
                for module, steps in SETUP_STEPS.items():
                    stack.enter_context(timing(importlib.import_module(module), steps, setup_s))
                ds = roitrace.extract(source, roiset, **kw)
            ctx.info["setup_s"] = setup_s
            sizes = np.array([r.size for r in ctx.rois.rings])
            ctx.info["ring_mismatch"] = int(np.sum(ds["npix_neuropil"].values != sizes))
            return Traces(ds["F"].values, ds["Fneu"].values, ctx.n_rois)

        return run

    return setup


# roitrace's setup steps (planning, brightness weights), timed inside the timed call
# when they exist: module -> {function: label}
SETUP_STEPS = {
    "roitrace.plan": {"_cells": "cells", "_rings": "rings", "_with_weights": "weights"},
    "roitrace.extract": {"weigh_by_brightness": "brightness"},
}


@contextmanager
def timing(
    module: Any,
    steps: dict[str, str],
    totals: dict[str, float],
    results: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Wrap ``module``'s functions named in ``steps`` so their seconds add up in
    ``totals`` (and their last return values land in ``results``), under the names
    ``steps`` gives; functions the module lacks are left out."""
    originals = {name: getattr(module, name) for name in steps if hasattr(module, name)}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            key = steps[name]
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0
            if results is not None:
                results[key] = out
            return out

        return call

    for name, fn in originals.items():
        setattr(module, name, timed(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def _roitrace_warm_up(ctx: Context, kw: dict[str, Any]) -> float:
    """One call on a tiny movie of the same kind (array or TIFF, same dtype), so
    numba's compilation (or its cache load) is not timed. Returns its seconds."""
    import roitrace

    tiny = np.ascontiguousarray(make_movie(30, ctx.spec["seed"])[:, :96, :96])
    source: Any = tiny
    if ctx.path is not None:
        import tifffile

        source = Path(ctx.spec["tmpdir"]) / f"warm-up-{os.getpid()}.tif"
        compression = "zlib" if ctx.spec["source"] == "tiff-deflate" else None
        tifffile.imwrite(source, tiny, photometric="minisblack", compression=compression)
        ctx.info["warm_up_source"] = f"{compression or 'uncompressed'} TIFF"
    try:
        t0 = time.perf_counter()
        roitrace.extract(source, roitrace.RoiSet.from_labels(tiny_labels()), **kw)
        return time.perf_counter() - t0
    finally:
        if isinstance(source, Path):
            source.unlink(missing_ok=True)


def notebook_runner(reduce: Callable[..., np.ndarray]) -> Callable[[Context], Runner]:
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

    return setup


def _notebook_movie(ctx: Context) -> np.ndarray:
    if ctx.movie is not None:
        return ctx.movie
    import tifffile

    if ctx.spec["source"] == "tiff":
        return tifffile.memmap(ctx.path, mode="r")
    return tifffile.imread(ctx.path)


def _weights_csr(pixels: list[np.ndarray], n_pixels: int) -> Any:
    import scipy.sparse as sp

    rows = np.repeat(np.arange(len(pixels)), [p.size for p in pixels])
    vals = np.concatenate([np.full(p.size, 1.0 / p.size, np.float32) for p in pixels])
    shape = (len(pixels), n_pixels)
    return sp.csr_matrix((vals, (rows, np.concatenate(pixels))), shape=shape)


def scipy_runner(ctx: Context) -> Runner:
    """suite2p's algorithm in scipy: (n_rois x n_pixels) CSR weights (1/npix) times
    float32 batches of 500 frames (suite2p's batch_size).

    ``W @ batch.T`` makes scipy copy the transposed batch for every product (and
    suite2p's ``batch @ masks`` does the same inside scipy), so the batch is
    transposed and converted once, in one pass: the fastest batch form measured here.
    """
    movie = ctx.movie
    assert movie is not None
    n_t = movie.shape[0]
    n_px = FRAME_SHAPE[0] * FRAME_SHAPE[1]

    def run() -> Traces:
        w_cell = _weights_csr(ctx.rois.cells, n_px)
        w_ring = _weights_csr(ctx.rois.rings, n_px)
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


def load_suite2p() -> tuple[Callable[..., Any], Callable[..., Any], str]:
    """suite2p's ``extraction_wrapper`` and ``default_settings``, and how they loaded.

    ``import suite2p`` imports its whole pipeline, and with it cellpose and
    torchvision; where torchvision cannot load (a CUDA build of torchvision next to
    a CPU build of torch: "operator torchvision::nms does not exist"), the extraction
    modules are loaded on their own, without the package's ``__init__``: the same
    extraction code runs, only the unrelated pipeline imports are skipped.
    """
    try:
        from suite2p import default_settings
        from suite2p.extraction import extraction_wrapper

        return extraction_wrapper, default_settings, "import suite2p"
    except Exception as exc:  # any import failure: try the direct route
        reason = f"{type(exc).__name__}: {exc}"
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
    return extract.extraction_wrapper, params.default_settings, how


def suite2p_stat(rois: RoiPixels) -> list[dict[str, Any]]:
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
                "radius": float(RADIUS),
                "overlap": np.zeros(flat.size, bool),
            }
        )
    return stat


def suite2p_runner(ctx: Context) -> Runner:
    """``extraction_wrapper(stat, movie, settings=default_settings()["extraction"],
    device=torch.device("cpu"))``: it builds its own cell and neuropil masks
    (timed, and reported apart), then multiplies float32 batches of 500 frames by
    sparse masks."""
    import torch

    wrapper, default_settings, how = load_suite2p()
    settings = default_settings()["extraction"]
    stat = suite2p_stat(ctx.rois)
    movie = ctx.movie
    assert movie is not None
    cpu = torch.device("cpu")
    # warm-up (torch's first sparse products) on masks of our own: no create_masks
    cells = [(c, np.full(c.size, 1.0 / c.size)) for c in ctx.rois.cells[:3]]
    wrapper(stat[:3], movie[:20], None, cells, ctx.rois.rings[:3], settings, cpu)
    ctx.info.update(
        suite2p_import=how, torch_threads=torch.get_num_threads(), suite2p_settings=settings
    )

    def run() -> Traces:
        seconds: dict[str, float] = {}
        made: dict[str, Any] = {}
        with timing(sys.modules[wrapper.__module__], {"create_masks": "masks"}, seconds, made):
            F, Fneu, _, _ = wrapper(stat, movie, settings=settings, device=cpu)
        ctx.info["suite2p_masks_s"] = seconds.get("masks")
        if "masks" in made:
            rings = made["masks"][1]
            ctx.info["suite2p_ring_npix_median"] = float(np.median([r.size for r in rings]))
        return Traces(F, Fneu, ctx.n_rois)

    return run


def floor_runner(ctx: Context) -> Runner:
    """One streaming pass of np.sum over the movie, FLOOR_CHUNK frames at a time
    (for files, the frames read through roitrace.open_movie)."""

    def run() -> Traces:
        if ctx.movie is not None:
            movie: Any = ctx.movie
        else:
            import roitrace

            movie = roitrace.open_movie(ctx.path)
        total = 0
        for t0 in range(0, movie.shape[0], FLOOR_CHUNK):
            total += int(movie[t0 : t0 + FLOOR_CHUNK].sum(dtype=np.int64))
        ctx.info["sum"] = total
        return Traces(np.zeros((0, 0)), None, ctx.n_rois)

    return run


RUNNERS: dict[str, Callable[[Context], Runner]] = {
    "roitrace-mean": roitrace_runner("mean"),
    "roitrace-weighted": roitrace_runner("weighted", "proximity"),
    "roitrace-median": roitrace_runner("median"),
    "notebook-mean": notebook_runner(np.mean),
    "notebook-median": notebook_runner(np.median),
    "scipy-sparse": scipy_runner,
    "suite2p": suite2p_runner,
    "floor": floor_runner,
}


# -- worker ---------------------------------------------------------------------------
def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: build the data, set the method up, time one call."""
    if spec["method"] == "suite2p" and importlib.util.find_spec("suite2p") is None:
        return {"skipped": "suite2p is not installed in this Python"}
    rois = RoiPixels.load(spec["rois_npz"])
    t0 = time.perf_counter()
    movie = make_movie(spec["n_frames"], spec["seed"]) if spec["source"] == "memory" else None
    ctx = Context(spec, rois, movie, spec.get("path"), {"movie_s": time.perf_counter() - t0})
    try:
        run = RUNNERS[spec["method"]](ctx)
    except (ImportError, RuntimeError) as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    gc.collect()
    before = proc_status()
    hwm_reset = reset_peak_rss()
    times: list[float] = []
    with AnonSampler() as anon:
        # best of a few calls: the machines are shared, and a call can lose half its
        # speed to a neighbour; the fastest call is the one least disturbed
        while True:
            t0 = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - t0)
            if len(times) >= spec.get("repeat", 1) or sum(times) > REPEAT_BUDGET_S:
                break
    seconds = min(times)
    after = proc_status()
    scaled = out.fixed_s + (seconds - out.fixed_s) * ctx.n_rois / max(out.timed_rois, 1)
    save_traces(spec["traces_npz"], out)
    return {
        **ctx.info,
        "frames": spec["n_frames"],
        "n_rois": ctx.n_rois,
        "timed_rois": out.timed_rois,
        "seconds_timed": seconds,
        "calls": len(times),
        "seconds_calls": times,
        "seconds": scaled,
        "fixed_s": out.fixed_s,
        "fps": spec["n_frames"] / scaled,
        "baseline_rss_mb": before["VmRSS"],
        "peak_rss_mb": after["VmHWM"] if hwm_reset else max(after["VmHWM"], before["VmRSS"]),
        "peak_rss_whole_process": not hwm_reset,
        "peak_anon_mb": anon.peak,
        "end_rss_file_mb": after["RssFile"],
        "checksum": checksum(out),
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
    t0 = time.perf_counter()
    path = Path(spec["path"])
    write_tiff(path, spec["n_frames"], spec["pattern_frames"], spec["seed"], spec["level"])
    return {"seconds": time.perf_counter() - t0, "bytes": path.stat().st_size}


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    tasks = {"rois": prepare_rois, "write": write_task, "measure": measure}
    result = tasks[spec["task"]](spec)
    print(RESULT_MARK + json.dumps(result, default=float), flush=True)


# -- parent: running workers --------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_worker(spec: dict[str, Any], timeout: float, verbose: bool) -> dict[str, Any]:
    """Run one worker subprocess; its result, or ``{"error": ...}``."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
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
    rois: dict[int, dict[str, Any]] = field(default_factory=dict)

    def spec(self, case: Case, **extra: Any) -> dict[str, Any]:
        return {
            "seed": self.args.seed,
            "n_rois": case.n_rois,
            "n_frames": case.n_frames,
            "source": case.source,
            "subset": case.subset,
            "pattern_frames": case.pattern_frames,
            "tmpdir": str(self.workdir),
            "rois_npz": str(self.workdir / f"rois-{case.n_rois}.npz"),
            # in-memory cases: best of --repeat calls; a file is read once (a second
            # call would read it from the page cache)
            "repeat": self.args.repeat if case.source == "memory" else 1,
            **extra,
        }

    def worker(self, spec: dict[str, Any]) -> dict[str, Any]:
        return run_worker(spec, self.args.timeout, self.args.verbose)

    def roi_info(self, case: Case) -> dict[str, Any]:
        if case.n_rois not in self.rois:
            log(f"[{case.key}] ROIs and neuropil rings for {case.n_rois} disks ...")
            self.rois[case.n_rois] = self.worker(self.spec(case, task="rois"))
        return self.rois[case.n_rois]

    def run_case(self, case: Case) -> dict[str, Any]:
        result: dict[str, Any] = {"case": case.__dict__, "rows": {}}
        info = self.roi_info(case)
        result["rois"] = info
        if "error" in info:
            result["skipped"] = f"ROI setup failed: {info['error']}"
            return result
        path = None
        if case.source != "memory":
            path = self.workdir / f"case-{case.key}.tif"
            skip = self.write_movie(case, path, result)
            if skip:
                result["skipped"] = skip
                return result
        try:
            for method in case.methods:
                result["rows"][method] = self.run_method(case, method, path)
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
        return result

    def write_movie(self, case: Case, path: Path, result: dict[str, Any]) -> str | None:
        need = case.n_frames * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
        free = shutil.disk_usage(self.workdir).free
        if free < 1.3 * need:
            have, want = free / 2**30, 1.3 * need / 2**30
            return f"only {have:.1f} GiB free in {self.workdir}, need {want:.1f} GiB"
        log(f"[{case.key}] writing {path.name}: {case.n_frames} frames, {need / 2**30:.2f} GiB")
        spec = self.spec(case, task="write", path=str(path))
        spec["level"] = case.deflate_level if case.source == "tiff-deflate" else None
        out = self.worker(spec)
        result["file"] = out
        if "error" in out:
            return f"writing the TIFF failed: {out['error']}"
        log(f"[{case.key}]   {out['bytes'] / 2**30:.2f} GiB in {out['seconds']:.1f} s")
        return None

    def run_method(self, case: Case, method: str, path: Path | None) -> dict[str, Any]:
        log(f"[{case.key}] {METHOD_NAMES[method]} ...")
        spec = self.spec(
            case,
            task="measure",
            method=method,
            path=str(path) if path else None,
            traces_npz=str(self.workdir / f"traces-{case.key}-{method}.npz"),
        )
        out = self.worker(spec)
        if "fps" in out:
            log(
                f"[{case.key}]   {out['fps']:,.1f} frames/s, peak RSS {out['peak_rss_mb']:,.0f} MB"
                f" ({out['seconds_timed']:.2f} s timed, worker {out['worker_s']:.1f} s)"
            )
        else:
            log(f"[{case.key}]   {out.get('skipped') or out.get('error')}")
        return out


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
def header() -> str:
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
    versions = ", ".join(f"{name} {v}" for name, v in package_versions().items())
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = (
        f"Machine: {cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM; {now}; "
        f"Python {platform.python_version()}; {versions}"
    )
    if "ROITRACE_NUMBA" in os.environ:
        line += f"; ROITRACE_NUMBA={os.environ['ROITRACE_NUMBA']}"
    return line + f"; load average at start {os.getloadavg()[0]:.2f}"


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("roitrace", "numpy", "scipy", "numba", "tifffile", "suite2p", "torch"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if name in ("roitrace", "numpy"):
                out[name] = "missing"
    return out


def fmt_fps(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}" if v < 10 else f"{v:.1f}"


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
    if row.get("calls", 1) > 1:
        notes.append(f"best of {row['calls']} calls")
    if row.get("timed_rois", 0) < row.get("n_rois", 0):
        note = f"timed on first {row['timed_rois']} of {row['n_rois']} ROIs, scaled linearly"
        if row.get("fixed_s", 0) > 0.05:
            note += f" (reading the file, {row['fixed_s']:.2f} s, not scaled)"
        notes.append(note)
    if method.startswith("roitrace"):
        notes.append(roitrace_note(row))
    if method == "suite2p":
        notes.append(suite2p_note(row))
        if not row["suite2p_import"].startswith("import suite2p"):
            notes.append("suite2p loaded without its package __init__ (torchvision broken)")
    if method == "scipy-sparse":
        notes.append("CSR (1/npix) @ float32 batches of 500; building the CSR included")
    if method == "floor":
        notes.append("via roitrace.open_movie" if case.source != "memory" else "in memory")
    if case.source != "memory":
        notes.append(
            f"anonymous memory peak {row['peak_anon_mb']:,.0f} MB (peak RSS also counts "
            f"mapped file pages); file-backed RSS at end {row['end_rss_file_mb']:,.0f} MB"
        )
    if row.get("peak_rss_whole_process"):
        notes.append("peak RSS of the whole worker (HWM reset failed)")
    return "; ".join(notes)


def suite2p_note(row: dict[str, Any]) -> str:
    note = f"float32; torch CPU, {row['torch_threads']} threads"
    masks = row.get("suite2p_masks_s")
    if masks is not None:
        note += f"; incl. create_masks {masks:.2f} s"
        if masks < row["seconds"]:
            note += f" (excl. it {fmt_fps(row['frames'] / (row['seconds'] - masks))} frames/s)"
    if "suite2p_ring_npix_median" in row:
        note += f"; own neuropil masks, median {row['suite2p_ring_npix_median']:.0f} px"
    return note


def roitrace_note(row: dict[str, Any]) -> str:
    setup = row.get("setup_s") or {}
    if not setup:
        return "extract() call total (its setup steps could not be timed)"
    total = sum(setup.values())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in setup.items())
    note = f"extract() call total, incl. setup {total:.2f} s ({parts})"
    rest = row["seconds"] - total
    if rest > 0:
        note += f"; excl. setup {fmt_fps(row['frames'] / rest)} frames/s"
    if "open_s" in row:
        note += f"; open_movie alone {row['open_s']:.2f} s"
    if row.get("ring_mismatch"):
        note += (
            f"; WARNING: {row['ring_mismatch']} of its rings differ in size from the shared "
            "ones the other methods use (roitrace changed during the run?)"
        )
    return note


def case_table(result: dict[str, Any], case: Case) -> list[str]:
    lines = [f"### Case {case.key}: {case.title}, {case.n_frames} frames of 512 x 512 int16", ""]
    if "skipped" in result:
        return [*lines, f"Skipped: {result['skipped']}", ""]
    rows = result["rows"]
    s2p = rows.get("suite2p", {}).get("fps")
    floor = rows.get("floor", {}).get("fps")
    lines += [
        "| method | frames/s | x suite2p | x floor | peak RSS (MB) | RSS above movie (MB) "
        "| max \\|diff\\| vs notebook | note |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for method, row in rows.items():
        name = METHOD_NAMES[method]
        if "fps" not in row:
            status, why = ("skipped", row["skipped"]) if "skipped" in row else ("failed", "")
            why = why or row.get("error", "")
            lines.append(f"| {name} | {status} | | | | | | {why} |")
            continue
        fps = row["fps"]
        lines.append(
            f"| {name} | {fmt_fps(fps)} | {fmt_ratio(fps / s2p if s2p else None)} "
            f"| {fmt_ratio(fps / floor if floor else None)} | {row['peak_rss_mb']:,.0f} "
            f"| {row['peak_rss_mb'] - row['baseline_rss_mb']:,.0f} | {fmt_diff(row, method)} "
            f"| {row_note(method, row, case)} |"
        )
    return [*lines, "", *case_notes(result, case), ""]


def case_notes(result: dict[str, Any], case: Case) -> list[str]:
    info = result["rois"]
    movie_mb = case.n_frames * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2 / MIB
    notes = [
        f"- {info['n_rois']} ROIs (disks of radius {RADIUS}, a later disk wins overlaps; "
        f"median {info['cell_npix_median']:.0f} px, min {info['cell_npix_min']}); rings "
        f"{NEUROPIL}: median {info['ring_npix_median']:.0f} px, min {info['ring_npix_min']}, "
        f"computed in {info['ring_setup_s']:.2f} s ({info['rings_from']}).",
        f"- Movie {movie_mb:,.0f} MB"
        + (" in memory (part of the baseline RSS)." if case.source == "memory" else " on disk."),
    ]
    first = {
        METHOD_NAMES[m]: r["roitrace_first_call_s"]
        for m, r in result["rows"].items()
        if "roitrace_first_call_s" in r
    }
    if first:
        calls = ", ".join(f"{k} {v:.2f} s" for k, v in first.items())
        notes.append(
            "- roitrace: one warm-up extract() on a tiny movie of the same kind ran first in "
            f"each worker (numba compile or cache load), not timed: {calls}."
        )
    if "file" in result:
        f = result["file"]
        notes.append(
            f"- File written in {f['seconds']:.1f} s ({f['bytes'] / 2**30:.2f} GiB), just "
            "before the runs: it is likely in the page cache."
        )
    return notes


# -- targets ---------------------------------------------------------------------------
def targets(results: dict[str, dict[str, Any]], quick: bool) -> list[str]:
    def fps(case: str, method: str) -> float | None:
        return results.get(case, {}).get("rows", {}).get(method, {}).get("fps")

    lines = ["## Targets", ""]
    for case in ("A", "B"):
        for method in ("roitrace-mean", "roitrace-weighted"):
            lines.append(
                ratio_line(
                    f"{METHOD_NAMES[method]} >= 10x suite2p, case {case}",
                    fps(case, method),
                    fps(case, "suite2p"),
                    10,
                )
            )
    mean_a, floor_a = fps("A", "roitrace-mean"), fps("A", "floor")
    lines.append(ratio_line("roitrace mean >= 50% of floor, case A", mean_a, floor_a, 0.5))
    for case in ("A", "B"):
        lines.append(
            ratio_line(
                f"roitrace median >= 3x notebook median, case {case}",
                fps(case, "roitrace-median"),
                fps(case, "notebook-median"),
                3,
            )
        )
    lines.append(rss_target(results, quick))
    return lines


def ratio_line(what: str, a: float | None, b: float | None, goal: float) -> str:
    if a is None or b is None:
        return f"- {what}: not measured (case not run, or a method skipped or failed)"
    r = a / b
    return f"- {what}: {r:.2f}x -> {'met' if r >= goal else 'missed'}"


def rss_target(results: dict[str, dict[str, Any]], quick: bool) -> str:
    what = "12 GB file: roitrace mean peak RSS < 1 GiB (1024 MB), case C"
    row = results.get("C", {}).get("rows", {}).get("roitrace-mean", {})
    if "peak_rss_mb" not in row:
        return f"- {what}: not measured (case not run, or the method skipped or failed)"
    peak = row["peak_rss_mb"]
    verdict = "met" if peak < 1024 else "missed"
    size = results["C"]["case"]["n_frames"] * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2 / 2**30
    small = f" (file only {size:.1f} GiB in this run)" if quick or size < 12 else ""
    return f"- {what}: {peak:,.0f} MB ({peak / 1024:.2f} of 1 GiB) -> {verdict}{small}"


# -- main ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark roitrace extraction (frames/s, peak RSS) against the "
        "notebook route, scipy.sparse, suite2p and a streaming np.sum floor."
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (< 1 min)")
    p.add_argument(
        "--cases",
        default=None,
        help="which cases, e.g. A,B (default A,B,C,D; with --quick A,C,D: B is A's code "
        "path with more ROIs)",
    )
    p.add_argument("--tiff-gb", type=float, default=12.0, help="size of case C's TIFF in GiB")
    p.add_argument("--tmpdir", default=None, help="where to write the TIFFs (default: system)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument("--seed", type=int, default=0, help="seed of the movie and ROIs")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="in-memory cases: time up to this many calls, report the fastest",
    )
    p.add_argument(
        "--subset", type=int, default=100, help="ROIs the notebook route is timed on in B-D"
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    cases = make_cases(args.quick, args.tiff_gb, args.subset)
    chosen = args.cases or ("A,C,D" if args.quick else "A,B,C,D")
    keys = [k.strip().upper() for k in chosen.split(",") if k.strip()]
    unknown = [k for k in keys if k not in cases]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}: choose from {list(cases)}")
    head = header()
    log(head)
    if os.getloadavg()[0] > 0.5:
        log("warning: the machine is busy (load average above 0.5): timings will be noisy")
    workdir = Path(tempfile.mkdtemp(prefix="roitrace-bench-", dir=args.tmpdir))
    results: dict[str, dict[str, Any]] = {}
    try:
        bench = Bench(args, workdir)
        for key in keys:
            results[key] = bench.run_case(cases[key])
            add_differences(workdir, key, results[key]["rows"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = [f"# roitrace extraction benchmark{' (--quick)' if args.quick else ''}", "", head, ""]
    for key in keys:
        report += case_table(results[key], cases[key])
    report += [
        *targets(results, args.quick),
        "",
        "frames/s: frames / seconds of the fastest timed call (in-memory cases: best of "
        f"up to {args.repeat}) in a fresh process; MB = 2^20 bytes; peak RSS: VmHWM reset "
        "right before the first timed call; RSS above movie: peak minus the RSS right "
        "before it.",
    ]
    print("\n".join(report))
    if args.out:
        payload = {"header": head, "quick": args.quick, "results": results}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
