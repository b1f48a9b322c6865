"""Cluster benchmark: the local engine against roitrace on a Dask cluster, on one machine.

Run from the repository root (``pip install -e '.[cluster]'`` or a venv with dask,
distributed and zarr)::

    python benchmarks/cluster.py                      # full run: 12 GiB TIFF + Zarr copy
    python benchmarks/cluster.py --quick              # smoke run: 0.25 GiB, about 2 minutes
    python benchmarks/cluster.py --gib 4 --tmpdir /big/scratch --out cluster.json
    python benchmarks/cluster.py --fs-gbps 20 --nodes 1,8,32,128

It prints a Markdown report to stdout (progress goes to stderr): a header (date,
machine, load average, versions), one table per file format, the small-movie
overhead table with the break-even length, and an estimate "on paper" of what N
nodes reach on a 1 TB session set.

What it measures
----------------
Files: one uncompressed TIFF of at least ``--gib`` GiB (512 x 512 int16 frames: the
2000-frame movie of ``extraction.py`` repeated, +1 per repetition), and a Zarr v3 copy
of the same frames written with zarr-python's default codecs (bytes + zstd, i.e. what a
user of ``zarr.create_array`` gets) in chunks of 64 x 512 x 512, filled one chunk at a
time. The Zarr rows are skipped, with a note, while ``roitrace.open_movie`` cannot open
a Zarr array. ROIs: 500 disks of radius 6 with neuropil rings, as in ``extraction.py``'s
case C (its ``make_labels`` and ``NEUROPIL``).

Configurations, each in a fresh subprocess (so that the client's peak RSS is its own):

* ``local``: ``roitrace.extract(path, rois, neuropil=...)``, no client: the numba
  kernels on every core of the process;
* ``--workers 1`` / ``--workers 2``: ``roitrace.cluster.connect(workers=N, threads=1)``,
  what the command line's ``--workers N`` does (a LocalCluster of N worker processes of
  one thread each; the scheduler runs in the client process);
* ``LocalCluster 2x1 threads``: ``distributed.LocalCluster(n_workers=2,
  threads_per_worker=1, processes=False)``: two workers as threads of the client
  process;
* ``plain read``: a floor, the file's bytes read sequentially (``readinto`` of 64 MiB
  blocks; a Zarr folder: its chunk files, not decompressed).

Each subprocess imports (timed: "import s"), starts its cluster (timed), warms up
(timed: with the benchmark's ROIs, one local extraction of a 16-frame movie of the
same frame size, format and dtype on every worker via ``client.run``, so that every
worker has loaded the kernels, then one extraction of it through the client), then
times ``--repeat`` full extractions with :func:`time.perf_counter`; the fastest
counts (the machine is shared). Peak RSS is ``VmHWM`` of ``/proc/<pid>/status``, reset
(``/proc/self/clear_refs``) right before the first timed call: for the client process,
and for every worker process through ``client.run`` (with ``processes=False`` the
workers are the client process). The traces (``F``, ``Fneu``) of every row are compared
with those of ``local`` on the TIFF: max |difference|, which should be 0.

The page cache: the share of the file resident in the page cache right before the timed
calls (``mincore``) is reported per row. A file just written is mostly cached when RAM
allows; a second call reads it from the cache. ``--drop-caches`` (root only) writes 1 to
``/proc/sys/vm/drop_caches`` before every timed call of every configuration, so that
every call reads from the disk (this slows down everything else on the machine).

Small-movie overhead: uncompressed TIFFs of T = 200, 1000, 4000, 16000 frames
(``--quick``: up to 2000), all written first (so in the page cache when RAM allows);
one subprocess times ``local`` on each (best of ``--overhead-repeat``), another starts
``--workers 2`` once and times it on each (the per-call overhead: the cluster is
running). One-time costs (import, cluster start, warm-up) are reported apart. A line
``seconds = a + b * T`` is fitted per method; the break-even length is where the lines
cross, excluding and including the one-time costs' difference.

Never a pass/fail test: timings are only as good as the machine is quiet (the header
shows the load average at the start).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extraction
from extraction import (
    FRAME_SHAPE,
    NEUROPIL,
    log,
    make_labels,
    make_movie,
    proc_status,
    repeated_frames,
    reset_peak_rss,
    write_tiff,
)

FRAME_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2
N_ROIS = 500
PATTERN = 2000  # a file repeats this many generated frames
ZARR_CHUNK = 64  # frames per Zarr chunk
READ_BLOCK = 64 * 2**20
TINY_FRAMES = 16  # warm-up movie: 16 x 512 x 512, the same ROIs (the same kernels run)
WARM_TASK_FRAMES = 4  # the warm-up extraction through the client: 4 tasks
RESULT_MARK = "CLUSTER-BENCH-RESULT "
MIB = 2**20

CONFIGS = {
    "local": "local engine (numba, all cores)",
    "workers1": "`--workers 1` (1 process x 1 thread)",
    "workers2": "`--workers 2` (2 processes x 1 thread)",
    "threads2": "LocalCluster 2 x 1 threads (processes=False)",
    "read": "plain sequential read (floor)",
}
FORMATS = {"tiff": "uncompressed TIFF", "zarr": "Zarr v3 (zarr-python default codecs: zstd)"}


# -- files --------------------------------------------------------------------------------
def write_zarr(path: Path, n_frames: int, pattern: int, seed: int) -> None:
    """A Zarr v3 array of ``n_frames`` frames (the same as the TIFF's), zarr-python's
    default codecs, chunks of ``ZARR_CHUNK`` frames, written one chunk at a time."""
    import zarr

    arr = zarr.create_array(
        store=str(path),
        shape=(n_frames, *FRAME_SHAPE),
        chunks=(ZARR_CHUNK, *FRAME_SHAPE),
        dtype=np.int16,
        dimension_names=("t", "y", "x"),
    )
    buf = np.empty((ZARR_CHUNK, *FRAME_SHAPE), np.int16)
    frames = repeated_frames(n_frames, pattern, seed)
    for t0 in range(0, n_frames, ZARR_CHUNK):
        n = min(ZARR_CHUNK, n_frames - t0)
        for i in range(n):
            buf[i] = next(frames)
        arr[t0 : t0 + n] = buf[:n]


def zarr_codecs(path: Path) -> str:
    import zarr

    arr = zarr.open_array(str(path), mode="r")
    return f"serializer {arr.serializer}, compressors {arr.compressors}"


def write_tiny(workdir: Path, seed: int) -> dict[str, str]:
    """The warm-up movies: 16 x 512 x 512 int16, as a TIFF and as a Zarr array."""
    import tifffile
    import zarr

    tiny = make_movie(TINY_FRAMES, seed)
    tif = workdir / "tiny.tif"
    tifffile.imwrite(tif, tiny, photometric="minisblack", metadata={"axes": "TYX"})
    zpath = workdir / "tiny.zarr"
    z = zarr.create_array(
        store=str(zpath),
        shape=tiny.shape,
        chunks=(WARM_TASK_FRAMES, *FRAME_SHAPE),
        dtype=np.int16,
        dimension_names=("t", "y", "x"),
    )
    z[:] = tiny
    return {"tiff": str(tif), "zarr": str(zpath)}


def files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in files_of(path))


def cached_fraction(path: Path) -> float | None:
    """The share of the file's (or folder's files') bytes in the page cache (mincore)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        page = os.sysconf("SC_PAGE_SIZE")
        resident = total = 0
        window = 2**30
        for f in files_of(path):
            size = f.stat().st_size
            total += size
            fd = os.open(f, os.O_RDONLY)
            try:
                for off in range(0, size, window):
                    length = min(window, size - off)
                    addr = libc.mmap(None, length, 1, 1, fd, off)  # PROT_READ, MAP_SHARED
                    if addr in (None, ctypes.c_void_p(-1).value):
                        return None
                    try:
                        vec = np.zeros(-(-length // page), np.uint8)
                        if libc.mincore(addr, length, vec.ctypes.data) != 0:
                            return None
                        resident += int(np.count_nonzero(vec & 1)) * page
                    finally:
                        libc.munmap(addr, length)
            finally:
                os.close(fd)
        return min(1.0, resident / total) if total else None
    except (OSError, AttributeError):
        return None


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1")


# -- worker side ----------------------------------------------------------------------------
def _worker_status() -> dict[str, Any]:
    """Run on a Dask worker: its pid and memory (MiB)."""
    return {"pid": os.getpid(), **proc_status()}


def _worker_reset() -> bool:
    return reset_peak_rss()


def _worker_warm(path: str, labels: np.ndarray) -> float:
    """Run on a Dask worker: one local extraction of the tiny movie (loads the kernels
    into this worker process, on its own threads)."""
    import roitrace

    t0 = time.perf_counter()
    roitrace.extract(path, roitrace.RoiSet.from_labels(labels), neuropil=NEUROPIL)
    return time.perf_counter() - t0


def start_client(config: str) -> tuple[Any, Any]:
    """``(client, cluster)`` of a configuration (``(None, None)`` for local)."""
    if config == "local":
        return None, None
    from roitrace.cluster import connect

    if config == "workers1":
        return connect(workers=1, threads=1), None
    if config == "workers2":
        return connect(workers=2, threads=1), None
    if config == "threads2":
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,  # in-process transport: no host= (it fails with one)
            dashboard_address="127.0.0.1:0",
        )
        return distributed.Client(cluster, set_as_default=False), cluster
    raise ValueError(config)


def stop_client(client: Any, cluster: Any) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def warm_up(client: Any, tiny: str, labels: np.ndarray) -> dict[str, Any]:
    """One local extraction of the tiny movie on every worker, and one through the client
    (or locally when there is none), with the benchmark's ROIs; their seconds."""
    import roitrace

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if client is not None:
        out["workers"] = client.run(_worker_warm, tiny, labels)
    execution = roitrace.Execution(client=client, task_frames=WARM_TASK_FRAMES if client else None)
    roitrace.extract(
        tiny, roitrace.RoiSet.from_labels(labels), neuropil=NEUROPIL, execution=execution
    )
    out["seconds"] = time.perf_counter() - t0
    return out


def extractor(client: Any, path: str, roiset: Any) -> Callable[[], Any]:
    import roitrace

    def run() -> Any:
        return roitrace.extract(path, roiset, neuropil=NEUROPIL, client=client)

    return run


def plain_read(path: str) -> Callable[[], int]:
    def run() -> int:
        buf = bytearray(READ_BLOCK)
        view = memoryview(buf)
        total = 0
        for f in files_of(Path(path)):
            with open(f, "rb", buffering=0) as fh:
                while n := fh.readinto(view):
                    total += n
        return total

    return run


def time_calls(run: Callable[[], Any], repeat: int, drop: bool) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        if drop:
            drop_caches()
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    return times, out


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: one configuration on one file."""
    config, path = spec["config"], spec["path"]
    res: dict[str, Any] = {"config": config, "format": spec["format"], "frames": spec["frames"]}
    if config == "read":
        if spec["drop_caches"]:
            drop_caches()
        res["cached_at_start"] = cached_fraction(Path(path))
        reset_peak_rss()
        times, nbytes = time_calls(plain_read(path), spec["repeat"], spec["drop_caches"])
        return {
            **res,
            **timing(times, spec["frames"]),
            "bytes": nbytes,
            "client_peak_rss_mb": proc_status()["VmHWM"],
        }
    t0 = time.perf_counter()
    import roitrace

    if config != "local":
        import distributed  # noqa: F401
    res["import_s"] = time.perf_counter() - t0
    try:
        with roitrace.open_movie(path) as movie:
            frame_chunk = int(getattr(movie, "frame_chunk", 1))
    except Exception as exc:  # a format roitrace cannot open (yet)
        return {**res, "skipped": f"roitrace.open_movie: {type(exc).__name__}: {exc}"[:300]}
    labels = make_labels(N_ROIS, spec["seed"])
    roiset = roitrace.RoiSet.from_labels(labels)
    t0 = time.perf_counter()
    client, cluster = start_client(config)
    try:
        res["start_s"] = time.perf_counter() - t0
        warm = warm_up(client, spec["tiny"], labels)
        res["warm_up_s"] = warm["seconds"]
        res["worker_warm_up_s"] = list((warm.get("workers") or {}).values())
        run = extractor(client, path, roiset)
        if spec["drop_caches"]:
            drop_caches()
        res["cached_at_start"] = cached_fraction(Path(path))
        res["client_hwm_reset"] = reset_peak_rss()
        if client is not None:
            res["worker_hwm_reset"] = all(client.run(_worker_reset).values())
        times, ds = time_calls(run, spec["repeat"], spec["drop_caches"])
        res["client_peak_rss_mb"] = proc_status()["VmHWM"]
        res["client_pid"] = os.getpid()
        if client is not None:
            res["workers"] = sorted(client.run(_worker_status).values(), key=lambda w: w["pid"])
            res["task_frames_default"] = roitrace.cluster.default_task_frames(
                client, spec["frames"], frame_chunk
            )
    finally:
        stop_client(client, cluster)
    fneu = ds["Fneu"].values
    np.savez(spec["traces_npz"], F=ds["F"].values, Fneu=fneu)
    return {**res, **timing(times, spec["frames"]), "n_rois": int(ds.sizes["roi"])}


def timing(times: list[float], frames: int) -> dict[str, Any]:
    best = min(times)
    return {"seconds_calls": times, "seconds": best, "fps": frames / best}


def overhead(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task: ``local`` or ``workers2`` on each small movie, the cluster started once."""
    config = spec["config"]
    t0 = time.perf_counter()
    import roitrace

    if config != "local":
        import distributed  # noqa: F401
    res: dict[str, Any] = {"config": config, "import_s": time.perf_counter() - t0}
    labels = make_labels(N_ROIS, spec["seed"])
    roiset = roitrace.RoiSet.from_labels(labels)
    t0 = time.perf_counter()
    client, cluster = start_client(config)
    try:
        res["start_s"] = time.perf_counter() - t0
        res["warm_up_s"] = warm_up(client, spec["tiny"], labels)["seconds"]
        res["movies"] = []
        for frames, path in spec["movies"]:
            cached = cached_fraction(Path(path))
            times, _ = time_calls(extractor(client, path, roiset), spec["repeat"], False)
            res["movies"].append({"cached_at_start": cached, **timing(times, frames)})
    finally:
        stop_client(client, cluster)
    return res


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    result = {"measure": measure, "overhead": overhead}[spec["task"]](spec)
    print(RESULT_MARK + json.dumps(result, default=float), flush=True)


# -- parent: running workers ------------------------------------------------------------
def run_worker(spec: dict[str, Any], timeout: float, verbose: bool) -> dict[str, Any]:
    """One worker subprocess (its own session, so that it and the cluster processes it
    started are ended together on a timeout or Ctrl-C); its result or ``{"error": ...}``."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return {"error": f"timed out after {timeout:.0f} s"}
    except BaseException:
        kill_group(proc)
        raise
    if verbose and stderr.strip():
        log(stderr.rstrip())
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return {**json.loads(line[len(RESULT_MARK) :]), "worker_s": time.perf_counter() - t0}
    lines = stderr.strip().splitlines() or ["no output"]
    if not verbose:
        log("\n".join(lines[-15:]))
    return {"error": f"worker exited {proc.returncode}: {lines[-1][:200]}"}


def kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main_part(args: argparse.Namespace, workdir: Path, tiny: dict[str, str]) -> dict[str, Any]:
    """The big file in each format, every configuration on it."""
    frames = math.ceil(args.gib * 2**30 / FRAME_BYTES)
    pattern = min(PATTERN, frames)
    out: dict[str, Any] = {"frames": frames, "formats": {}}
    need = frames * FRAME_BYTES * 1.1  # one file at a time: written, measured, removed
    free = shutil.disk_usage(workdir).free
    if free < need:
        out["skipped"] = f"only {free / 2**30:.1f} GiB free in {workdir}, need {need / 2**30:.1f}"
        return out
    ref = workdir / "traces-tiff-local.npz"
    for fmt in args.formats:
        res: dict[str, Any] = {"rows": {}}
        out["formats"][fmt] = res
        path = workdir / f"movie.{'tif' if fmt == 'tiff' else 'zarr'}"
        if fmt == "zarr" and not zarr_supported(tiny["zarr"]):
            res["skipped"] = "roitrace.open_movie cannot open a Zarr array yet"
            log("[zarr] skipped: roitrace.open_movie cannot open a Zarr array yet")
            continue
        log(
            f"[{fmt}] writing {path.name}: {frames} frames, {frames * FRAME_BYTES / 2**30:.2f} GiB"
        )
        t0 = time.perf_counter()
        (write_tiff if fmt == "tiff" else write_zarr_args)(path, frames, pattern, args.seed, None)
        res["write_s"] = time.perf_counter() - t0
        res["bytes"] = size_of(path)
        if fmt == "zarr":
            res["codecs"] = zarr_codecs(path)
        log(f"[{fmt}]   {res['bytes'] / 2**30:.2f} GiB on disk in {res['write_s']:.1f} s")
        try:
            for config in [*args.configs, "read"]:
                log(f"[{fmt}] {CONFIGS[config]} ...")
                traces = workdir / f"traces-{fmt}-{config}.npz"
                spec = {
                    "task": "measure",
                    "config": config,
                    "format": fmt,
                    "path": str(path),
                    "frames": frames,
                    "seed": args.seed,
                    "repeat": args.repeat,
                    "drop_caches": args.drop_caches,
                    "tiny": tiny[fmt],
                    "traces_npz": str(traces),
                }
                row = run_worker(spec, args.timeout, args.verbose)
                if traces.exists() and ref.exists():
                    row["max_diff"] = max_diff(ref, traces)
                if traces.exists() and traces != ref:
                    traces.unlink()
                res["rows"][config] = row
                log(f"[{fmt}]   {progress_line(row)}")
        finally:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    ref.unlink(missing_ok=True)
    return out


def write_zarr_args(path: Path, frames: int, pattern: int, seed: int, _: Any) -> None:
    write_zarr(path, frames, pattern, seed)


def zarr_supported(tiny_zarr: str) -> bool:
    """Whether this roitrace opens a Zarr array (checked in a subprocess: the parent
    stays free of roitrace's imports)."""
    code = "import sys, roitrace; roitrace.open_movie(sys.argv[1]).close()"
    proc = subprocess.run([sys.executable, "-c", code, tiny_zarr], capture_output=True)
    return proc.returncode == 0


def max_diff(ref: Path, own: Path) -> float | None:
    with np.load(ref) as a, np.load(own) as b:
        if a["F"].shape != b["F"].shape:
            return None
        return float(max(np.max(np.abs(a[k] - b[k])) for k in ("F", "Fneu")))


def progress_line(row: dict[str, Any]) -> str:
    if "fps" not in row:
        return str(row.get("skipped") or row.get("error"))
    line = f"{row['fps']:,.0f} frames/s (best {row['seconds']:.2f} s)"
    if "start_s" in row:
        line += f", start {row['start_s']:.1f} s, warm-up {row['warm_up_s']:.1f} s"
    return line + f", client peak RSS {row['client_peak_rss_mb']:,.0f} MB"


def overhead_part(args: argparse.Namespace, workdir: Path, tiny: dict[str, str]) -> dict[str, Any]:
    lengths = args.overhead_frames
    out: dict[str, Any] = {"lengths": lengths}
    if not lengths:
        return out
    need = sum(lengths) * FRAME_BYTES * 1.1
    free = shutil.disk_usage(workdir).free
    if free < need:
        out["skipped"] = f"only {free / 2**30:.1f} GiB free in {workdir}, need {need / 2**30:.1f}"
        return out
    movies = []
    try:
        for frames in lengths:
            path = workdir / f"small-{frames}.tif"
            log(f"[overhead] writing {path.name}")
            write_tiff(path, frames, min(PATTERN, frames), args.seed, None)
            movies.append((frames, str(path)))
        for config in ("local", "workers2"):
            log(f"[overhead] {CONFIGS[config]} on {', '.join(map(str, lengths))} frames ...")
            spec = {
                "task": "overhead",
                "config": config,
                "movies": movies,
                "seed": args.seed,
                "repeat": args.overhead_repeat,
                "tiny": tiny["tiff"],
            }
            out[config] = run_worker(spec, args.timeout, args.verbose)
            if "movies" in out[config]:
                secs = ", ".join(f"{m['seconds']:.2f}" for m in out[config]["movies"])
                log(f"[overhead]   seconds {secs}")
            else:
                log(f"[overhead]   {out[config].get('error')}")
    finally:
        for _, path in movies:
            Path(path).unlink(missing_ok=True)
    return out


# -- report ---------------------------------------------------------------------------
def header() -> str:
    versions = []
    for name in ("dask", "distributed", "zarr"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    head = extraction.header()
    before, sep, load = head.rpartition("; load average")
    return f"{before}, {', '.join(versions)}{sep}{load}"


def mb(v: float) -> str:
    return f"{v:,.0f}"


def fmt_cached(v: float | None) -> str:
    return "?" if v is None else f"{100 * v:.0f}%"


def main_tables(main: dict[str, Any], args: argparse.Namespace) -> list[str]:
    frames = main["frames"]
    gib = frames * FRAME_BYTES / 2**30
    lines = [
        f"## Extraction of {frames} frames of 512 x 512 int16 ({gib:.2f} GiB), {N_ROIS} disk "
        f"ROIs{n_rois_note(main)}, neuropil rings {NEUROPIL}",
        "",
    ]
    if "skipped" in main:
        return [*lines, f"Skipped: {main['skipped']}", ""]
    for fmt, res in main["formats"].items():
        lines += [f"### {FORMATS[fmt]}", ""]
        if "skipped" in res:
            lines += [f"Skipped: {res['skipped']}.", ""]
            continue
        rows = res["rows"]
        local = rows.get("local", {}).get("fps")
        lines += [
            "| configuration | frames/s | x local | best s | import s | cluster start s "
            "| warm-up s | peak RSS client (MB) | peak RSS per worker (MB) "
            "| max \\|diff\\| vs local TIFF | in page cache |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
        ]
        for config, row in rows.items():
            name = CONFIGS[config]
            if "fps" not in row:
                why = row.get("skipped") or row.get("error", "")
                lines.append(f"| {name} | skipped | | | | | | | | {why} | |")
                continue
            ratio = f"{row['fps'] / local:.2f}" if local else ""
            diff = row.get("max_diff")
            lines.append(
                f"| {name} | {row['fps']:,.0f} | {ratio} | {row['seconds']:.2f} "
                f"| {row.get('import_s', 0):.2f} | {row.get('start_s', 0):.2f} "
                f"| {row.get('warm_up_s', 0):.2f} | {mb(row['client_peak_rss_mb'])} "
                f"| {worker_rss(row)} | {'' if diff is None else f'{diff:.1e}'} "
                f"| {fmt_cached(row.get('cached_at_start'))} |"
            )
        lines += ["", *format_notes(res, rows, args), ""]
    return lines


def n_rois_note(main: dict[str, Any]) -> str:
    for res in main.get("formats", {}).values():
        for row in res.get("rows", {}).values():
            if "n_rois" in row and row["n_rois"] != N_ROIS:
                return f" ({row['n_rois']} after overlaps: a later disk wins)"
    return ""


def worker_rss(row: dict[str, Any]) -> str:
    workers = row.get("workers")
    if not workers:
        return "n/a (no workers)" if row["config"] in ("local", "read") else "?"
    if all(w["pid"] == row["client_pid"] for w in workers):
        return "= client (threads of the client process)"
    return ", ".join(mb(w["VmHWM"]) for w in workers)


def format_notes(res: dict[str, Any], rows: dict[str, Any], args: argparse.Namespace) -> list[str]:
    notes = [
        f"- File: {res['bytes'] / 2**30:.2f} GiB on disk, written in {res['write_s']:.0f} s "
        "just before the runs."
    ]
    if "codecs" in res:
        ratio = rows.get("read", {}).get("frames", 0) * FRAME_BYTES / max(res["bytes"], 1)
        notes.append(f"- Zarr codecs: {res['codecs']}; compression ratio {ratio:.2f}.")
    read = rows.get("read", {})
    if "fps" in read:
        gbps = read["bytes"] / read["seconds"] / 1e9
        notes.append(f"- Plain sequential read: {gbps:.2f} GB/s of file bytes.")
    tasks = {r.get("task_frames_default") for r in rows.values()} - {None}
    if tasks:
        notes.append(
            f"- Cluster runs used roitrace's default task size: {sorted(tasks)} frames "
            "per task (about 4 tasks per worker thread)."
        )
    notes.append(
        f"- Best of {args.repeat} calls per configuration, each configuration in a fresh "
        "process. Peak RSS: VmHWM reset right before the first timed call. With "
        "`--workers N` the scheduler runs in the client process (part of its RSS); the "
        "workers' nanny processes are not counted."
    )
    cache = [fmt_cached(r.get("cached_at_start")) for r in rows.values() if "fps" in r]
    if args.drop_caches:
        notes.append(
            "- Page cache dropped (echo 1 > /proc/sys/vm/drop_caches) before every "
            "timed call of every configuration: each call read from the disk."
        )
    else:
        notes.append(
            f"- Page cache not dropped: share of the file in the page cache right before "
            f"the timed calls, per row: {', '.join(cache)}; with --repeat > 1 the later "
            "calls read more of it from the cache."
        )
    return notes


def fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares ``seconds = a + b * frames``; ``(a, b)``."""
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def break_even(local: tuple[float, float], cluster: tuple[float, float], extra: float) -> str:
    """Frames from which the cluster's line is at or below local's, ``extra`` seconds
    added to the cluster's fixed cost."""
    (a_l, b_l), (a_c, b_c) = local, cluster
    a_c += extra
    if a_c <= a_l and b_c <= b_l:
        return "always (no length at which local is faster)"
    if b_c >= b_l:
        if a_c < a_l:  # faster on short movies only (not expected)
            return f"only below {(a_l - a_c) / (b_c - b_l):,.0f} frames"
        return "never: `--workers 2` is not faster per frame than local on this machine"
    return f"{(a_c - a_l) / (b_l - b_c):,.0f} frames"


def overhead_table(ov: dict[str, Any]) -> list[str]:
    lines = ["## Small movies: the cluster's overhead", ""]
    lengths = ov["lengths"]
    if not lengths:
        return [*lines, "Not run (--overhead-frames empty).", ""]
    if "skipped" in ov:
        return [*lines, f"Skipped: {ov['skipped']}", ""]
    loc, clu = ov.get("local", {}), ov.get("workers2", {})
    if "movies" not in loc or "movies" not in clu:
        why = loc.get("error") or clu.get("error") or "a worker failed"
        return [*lines, f"Failed: {why}", ""]
    lines += [
        "| frames | local s | `--workers 2` s (cluster running) | workers 2 / local "
        "| local frames/s | workers 2 frames/s | in page cache |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, a, b in zip(lengths, loc["movies"], clu["movies"], strict=True):
        lines.append(
            f"| {t:,} | {a['seconds']:.3f} | {b['seconds']:.3f} "
            f"| {b['seconds'] / a['seconds']:.2f} "
            f"| {a['fps']:,.0f} | {b['fps']:,.0f} | {fmt_cached(a['cached_at_start'])} |"
        )
    once_l = loc["import_s"] + loc["start_s"] + loc["warm_up_s"]
    once_c = clu["import_s"] + clu["start_s"] + clu["warm_up_s"]
    f_l = fit([(t, m["seconds"]) for t, m in zip(lengths, loc["movies"], strict=True)])
    f_c = fit([(t, m["seconds"]) for t, m in zip(lengths, clu["movies"], strict=True)])
    lines += [
        "",
        f"- One-time costs: local import {loc['import_s']:.2f} s + warm-up (kernels) "
        f"{loc['warm_up_s']:.2f} s = {once_l:.2f} s; `--workers 2` import {clu['import_s']:.2f} "
        f"s + cluster start {clu['start_s']:.2f} s + warm-up (kernels on every worker) "
        f"{clu['warm_up_s']:.2f} s = {once_c:.2f} s.",
    ]
    if f_l and f_c:
        lines += [
            f"- Fitted seconds = a + b x frames: local a = {f_l[0]:.3f} s, "
            f"{1 / f_l[1]:,.0f} frames/s; `--workers 2` a = {f_c[0]:.3f} s (per-call "
            f"overhead {f_c[0] - f_l[0]:+.3f} s vs local), {1 / f_c[1]:,.0f} frames/s.",
            f"- Break-even, cluster already running (per call): {break_even(f_l, f_c, 0.0)}.",
            f"- Break-even, counting the one-time costs' difference ({once_c - once_l:+.2f} s): "
            f"{break_even(f_l, f_c, once_c - once_l)}.",
        ]
    faster = [
        t
        for t, a, b in zip(lengths, loc["movies"], clu["movies"], strict=True)
        if b["seconds"] <= a["seconds"]
    ]
    lines.append(
        "- Measured: `--workers 2` at least as fast as local at "
        + (", ".join(f"{t:,}" for t in faster) + " frames." if faster else "no measured length.")
    )
    lines.append(
        f"- Best of {ov.get('repeat', '?')} calls per length; both methods in one process each "
        "(cluster started once), the same files, written just before (in the page cache)."
    )
    return [*lines, ""]


def paper(main: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = ["## On paper: N nodes on a 1 TB session set", ""]
    row = main.get("formats", {}).get("tiff", {}).get("rows", {}).get("workers2", {})
    if "fps" not in row:
        return [*lines, "Not estimated: `--workers 2` on the TIFF was not measured.", ""]
    node = row["fps"] * FRAME_BYTES / 1e9  # GB/s of uncompressed frames
    fs = args.fs_gbps
    total = 1000.0  # GB
    lines += [
        f"Per-node rate: `--workers 2` on the uncompressed TIFF, {row['fps']:,.0f} frames/s "
        f"x {FRAME_BYTES / 1e6:.3f} MB = {node:.2f} GB/s (this {os.cpu_count()}-core "
        f"machine; {fmt_cached(row.get('cached_at_start'))} of the file in the page cache "
        "at the start, so mostly a compute rate). Shared file system: "
        f"{fs:g} GB/s aggregate (`--fs-gbps`). 1 TB = 1000 GB of uncompressed int16 frames; "
        "rate = min(N x node rate, file system).",
        "",
        "| nodes | N x node rate (GB/s) | achieved (GB/s) | 1 TB takes | bound that binds |",
        "|---:|---:|---:|---:|---|",
    ]
    for n in args.nodes:
        compute = n * node
        rate = min(compute, fs)
        binds = "nodes (compute)" if compute < fs else "shared file system"
        lines.append(f"| {n} | {compute:.1f} | {rate:.1f} | {duration(total / rate)} | {binds} |")
    lines += [
        "",
        f"- The file system binds from N = {math.ceil(fs / node)} nodes of this kind "
        f"({fs:g} / {node:.2f}); below that, adding nodes adds throughput linearly "
        "(the tasks are independent frame ranges; the client only gathers the traces, "
        f"{N_ROIS} ROIs x 2 x float64 per frame).",
        "- A node with C cores instead of 2 should reach about C/2 times this rate where "
        "extraction is compute-bound (each worker thread runs its own tasks), so the file "
        "system binds at fewer nodes; a node's own network link (10-25 Gb/s = 1.2-3 GB/s) "
        "is a third bound, per node.",
        "- Compressed data (Zarr with zstd) moves fewer bytes over the file system per frame "
        "(its bound rises by the compression ratio) but costs decompression on the nodes.",
    ]
    lrow = main.get("formats", {}).get("tiff", {}).get("rows", {}).get("local", {})
    if "fps" in lrow:
        lnode = lrow["fps"] * FRAME_BYTES / 1e9
        lines.append(
            f"- The local engine on the same machine: {lnode:.2f} GB/s "
            f"({lrow['fps'] / row['fps']:.2f} x `--workers 2`): what a node's workers would "
            "reach if the cluster path cost nothing."
        )
    zrow = main.get("formats", {}).get("zarr", {}).get("rows", {}).get("workers2", {})
    if "fps" in zrow:
        zres = main["formats"]["zarr"]
        ratio = main["frames"] * FRAME_BYTES / zres["bytes"]
        znode = zrow["fps"] * FRAME_BYTES / 1e9
        lines.append(
            f"- Measured here for the Zarr copy: {znode:.2f} GB/s of frames per node, "
            f"compression ratio {ratio:.2f}: the file system binds from "
            f"N = {math.ceil(fs * ratio / znode)} nodes."
        )
    return [*lines, ""]


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


# -- main ----------------------------------------------------------------------------------
def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark roitrace's local engine against a Dask cluster on one machine "
        "(frames/s, peak RSS of client and workers, small-movie overhead)."
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 0.25 GiB, overhead up to 2000 frames, repeat 1",
    )
    p.add_argument("--gib", type=float, default=None, help="size of the big file (default 12)")
    p.add_argument("--tmpdir", default=None, help="where to write the files (default: system)")
    p.add_argument("--out", default=None, help="also write the raw numbers as JSON here")
    p.add_argument("--seed", type=int, default=0, help="seed of the movie and ROIs")
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed calls per configuration, the fastest counts (default 2)",
    )
    p.add_argument(
        "--configs",
        default="local,workers1,workers2,threads2",
        help=f"configurations, from {','.join(c for c in CONFIGS if c != 'read')} "
        "(the plain read always runs)",
    )
    p.add_argument("--formats", default="tiff,zarr", help="file formats: tiff,zarr")
    p.add_argument(
        "--overhead-frames",
        default=None,
        help="small-movie lengths (default 200,1000,4000,16000; --quick "
        "200,500,1000,2000; empty: skip)",
    )
    p.add_argument(
        "--overhead-repeat", type=int, default=3, help="timed calls per small movie (default 3)"
    )
    p.add_argument(
        "--drop-caches",
        action="store_true",
        help="root only: drop the page cache before every timed call",
    )
    p.add_argument(
        "--fs-gbps",
        type=float,
        default=5.0,
        help="shared file system's aggregate bandwidth in GB/s, for the estimate",
    )
    p.add_argument("--nodes", default="1,4,16,64", help="node counts for the estimate")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        return args
    args.gib = args.gib if args.gib is not None else (0.25 if args.quick else 12.0)
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    default_ov = "200,500,1000,2000" if args.quick else "200,1000,4000,16000"
    args.overhead_frames = int_list(
        args.overhead_frames if args.overhead_frames is not None else default_ov
    )
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    args.nodes = int_list(args.nodes)
    bad = [c for c in args.configs if c not in CONFIGS or c == "read"]
    bad += [f for f in args.formats if f not in FORMATS]
    if bad:
        p.error(f"unknown configuration(s) or format(s): {bad}")
    if "local" not in args.configs:
        args.configs.insert(0, "local")  # the reference for the traces and the ratios
    if "tiff" not in args.formats:
        args.formats.insert(0, "tiff")
    if args.drop_caches and os.geteuid() != 0:
        p.error("--drop-caches needs root")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    # a SIGTERM cleans up like Ctrl-C: the running worker's process group is ended and
    # the files are removed
    signal.signal(signal.SIGTERM, _terminate)
    head = header()
    log(head)
    if os.getloadavg()[0] > 0.5:
        log("warning: the machine is busy (load average above 0.5): timings will be noisy")
    workdir = Path(tempfile.mkdtemp(prefix="roitrace-cluster-bench-", dir=args.tmpdir))
    try:
        tiny = write_tiny(workdir, args.seed)
        main_res = main_part(args, workdir, tiny)
        ov = overhead_part(args, workdir, tiny)
        ov["repeat"] = args.overhead_repeat
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = [f"# roitrace cluster benchmark{' (--quick)' if args.quick else ''}", "", head, ""]
    report += main_tables(main_res, args)
    report += overhead_table(ov)
    report += paper(main_res, args)
    report.append(
        "frames/s: frames / seconds of the fastest timed call, in a fresh process per "
        "configuration; MB = 2^20 bytes, GB = 10^9 bytes; one-time costs (import, cluster "
        "start, warm-up) are not in the timed calls."
    )
    print("\n".join(report))
    if args.out:
        payload = {"header": head, "args": vars(args), "main": main_res, "overhead": ov}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
