"""Deconvolution benchmark: roitrace.deconvolve against oasis-deconv, trace by trace.

Run from the repository root with the ``[dev]`` extra installed (oasis-deconv is the
reference, a test dependency)::

    python benchmarks/deconvolve.py                 # scaled down: 200 x 50,000 frames
    python benchmarks/deconvolve.py --traces 2000   # the issue's full size
    python benchmarks/deconvolve.py --model ar2 --traces 50 --frames 20000

Data: ``oasis.functions.gen_data`` (AR(1) g = 0.95 or AR(2) g = (1.7, -0.712), noise
0.3, 0.5 Hz at 30 Hz). Both sides estimate g and the noise from each trace and solve
the noise-constrained l1 problem with a free baseline (oasis: ``deconvolve(y,
g=(None,) * p, penalty=1)``; roitrace: ``deconvolve(Y, model=...)``).

Timings are the best of ``--repeat`` runs for everyone. The one-off costs are in their
own column: for roitrace the first call in this process (numba loading its on-disk
cache, or compiling on a fresh machine) minus the best run; for oasis its import. A
scaled-down run also shows the time scaled linearly to ``--full-traces`` traces (both
sides are linear in the number of traces). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=200)
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--model", choices=("ar1", "ar2"), default="ar1")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--full-traces", type=int, default=2000)
    args = ap.parse_args()

    t0 = time.perf_counter()
    import oasis.functions as of

    oasis_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    from roitrace.deconvolution import deconvolve

    rt_import = time.perf_counter() - t0

    g = (0.95,) if args.model == "ar1" else (1.7, -0.712)
    y, _c, truth = of.gen_data(g=g, sn=0.3, T=args.frames, N=args.traces, seed=13)

    t0 = time.perf_counter()
    first = deconvolve(y[:2], model=args.model)  # compile or load the kernels
    rt_first = time.perf_counter() - t0
    rt = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        d = deconvolve(y, model=args.model)
        rt.append(time.perf_counter() - t0)
    del first

    ot = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oasis' deprecation of g=
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ref = [of.deconvolve(r, g=(None,) * len(g), penalty=1) for r in y]
            ot.append(time.perf_counter() - t0)

    def corr(a):
        return float(np.mean([np.corrcoef(x, t)[0, 1] for x, t in zip(a, truth, strict=True)]))

    scale = args.full_traces / args.traces
    best_rt, best_ot = min(rt), min(ot)
    import numba

    print(f"# deconvolve benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}; model {args.model}, "
        f"{args.traces} traces x {args.frames} frames, best of {args.repeat}"
    )
    print()
    head = "| | one-off s | best s | runs s | scaled to "
    print(head + f"{args.full_traces} traces s | spike corr. with truth |")
    print("|---|---|---|---|---|---|")
    runs = ", ".join(f"{t:.2f}" for t in rt)
    once = rt_import + rt_first - best_rt * 2 / args.traces
    print(
        f"| roitrace.deconvolve (all traces) | {once:.2f}"
        f" | {best_rt:.2f} | {runs} | {best_rt * scale:.1f} | {corr(d.spikes):.4f} |"
    )
    runs = ", ".join(f"{t:.2f}" for t in ot)
    print(
        f"| oasis-deconv, trace by trace | {oasis_import:.2f} | {best_ot:.2f} | {runs}"
        f" | {best_ot * scale:.1f} | {corr([r[1] for r in ref]):.4f} |"
    )
    print()
    print(f"speed-up (best / best): {best_ot / best_rt:.1f}x")


if __name__ == "__main__":
    main()
