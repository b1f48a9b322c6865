"""``roitrace demo``: simulate a movie, run the notebook's workflow, say how well it did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, handle_errors, out
from ._options import NoProgress


# -- commands ------------------------------------------------------------------------------
@app.command()
@handle_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the CSV and figures.")] = Path(
        "roitrace-demo"
    ),
    seed: Annotated[int, typer.Option(help="Random seed of the simulated movie.")] = 0,
    no_progress: NoProgress = False,
) -> None:
    """Simulate a movie, run the notebook's workflow on it, write traces and figures."""
    from ..datasets.demo import run_demo

    summary = run_demo(out_dir, seed=seed, progress=not no_progress)
    _print_demo(summary)


def _print_demo(s: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(
        f"Simulated movie: {s['movie']}  ({s['shape'][0]} frames x {s['shape'][1]} x "
        f"{s['shape'][2]}, {s['frame_rate']:g} Hz)"
    )
    out.print(
        f"Mask: std projection > {s['threshold']:.1f} (3-sigma rule): {s['npix']} pixels; "
        f"neuropil ring gap {s['gap']}, width {s['width']}: {s['npix_neuropil']} pixels"
    )
    table = Table(title="Correlation of each extracted trace with the true calcium trace")
    table.add_column("aggregation")
    table.add_column("F (raw)", justify="right")
    table.add_column("F - 0.7 Fneu", justify="right")
    for how, (r_raw, r_corr) in s["correlations"].items():
        table.add_row(how, f"{r_raw:.3f}", "" if r_corr != r_corr else f"{r_corr:.3f}")
    out.print(table)
    out.print(f"Traces: {s['csv']}")
    out.print(
        "Movies to try the other commands on: "
        + ", ".join(str(p) for p in [s["movie"], *s["cells"]])
        + " (the last two: 12 cells, the .h5 stored as --dataset imaging --axes YXT)"
    )
    out.print("Figures:")
    for f in s["figures"]:
        out.print(f"  {f}")
