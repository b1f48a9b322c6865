"""The ``roitrace`` command line: demo, project, extract, fetch.

Errors the user can fix (a roitrace.RoitraceError, a file that cannot be written)
become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import warnings
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._version import __version__
from .errors import ParameterError, RoitraceError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    name="roitrace",
    help="Turn calcium-imaging movies into one fluorescence trace per cell.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


class Kind(StrEnum):
    mean = "mean"
    max = "max"
    min = "min"
    std = "std"
    median = "median"
    percentile = "percentile"


class Method(StrEnum):
    absolute = "absolute"
    percentile = "percentile"
    sigma = "sigma"
    otsu = "otsu"
    li = "li"
    triangle = "triangle"
    local = "local"


class How(StrEnum):
    mean = "mean"
    median = "median"
    weighted = "weighted"
    trimmed_mean = "trimmed_mean"


def _fail(message: str) -> None:
    err.print(f"roitrace: error: {message}", markup=False)
    raise typer.Exit(2)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RoitraceError as exc:
            _fail(str(exc))
        except OSError as exc:  # e.g. a full disk or a read-only folder while writing
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"could not read or write{where}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            err.print("roitrace: interrupted; no output was left half-written")
            raise typer.Exit(130) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"roitrace: warning: {message}", markup=False)


def _version(value: bool) -> None:
    if value:
        out.print(f"roitrace {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    warnings.showwarning = _show_warning
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="roitrace: %(message)s"
    )


# -- shared options ----------------------------------------------------------------------
MovieArg = Annotated[
    Path, typer.Argument(help="Movie file: TIFF, .npy or HDF5 (file.h5:/dataset).")
]
FramesOpt = Annotated[
    str | None,
    typer.Option("--frames", help="Only these frames, START:STOP (stop excluded), e.g. 300:750."),
]
DatasetOpt = Annotated[str | None, typer.Option(help="HDF5 dataset holding the movie.")]
AxesOpt = Annotated[str | None, typer.Option(help="Axis order of .npy/HDF5 data, e.g. YXT.")]
ChannelOpt = Annotated[int | None, typer.Option(help="Channel to use when the file has several.")]
RateOpt = Annotated[
    float | None, typer.Option("--frame-rate", help="Frames per second (overrides the file's).")
]
ChunkOpt = Annotated[int | None, typer.Option("--chunk-frames", help="Frames read at once.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]


def _frames(text: str | None) -> slice | None:
    if text is None:
        return None
    try:
        a, b = text.split(":")
        return slice(int(a) if a else None, int(b) if b else None)
    except ValueError:
        raise ParameterError(f"--frames {text!r}: write START:STOP, e.g. 300:750") from None


def _open(movie: Path, dataset, axes, channel, frame_rate):
    from .movie import open_movie

    return open_movie(movie, dataset=dataset, axes=axes, channel=channel, frame_rate=frame_rate)


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
    from .demo import run_demo

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
    out.print("Figures:")
    for f in s["figures"]:
        out.print(f"  {f}")


@app.command()
@handle_errors
def project(
    movie: MovieArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output image (.tif or .npy).")],
    kind: Annotated[Kind, typer.Option(help="Statistic over time.")] = Kind.std,
    q: Annotated[float | None, typer.Option(help="Percentile for --kind percentile.")] = None,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Project a movie over time (mean, max, min, std, median, percentile) into one image."""
    from .projection import projection
    from .save import write_image

    m = _open(movie, dataset, axes, channel, None)
    image = projection(
        m,
        kind.value,
        q=q,
        frames=_frames(frames),
        chunk_frames=chunk_frames,
        progress=not no_progress,
    )
    params = {
        "command": "project",
        "movie": str(movie),
        "kind": kind.value,
        "q": q,
        "frames": frames,
    }
    if output.suffix.lower() == ".npy":
        import numpy as np

        from ._atomic import atomic_path

        with atomic_path(output) as tmp:
            np.save(tmp, image)
        output.with_name(output.name + ".json").write_text(
            json.dumps({"roitrace_version": __version__, **params}, indent=1)
        )
    else:
        write_image(image, output, metadata=params)
    out.print(f"{kind.value} projection of {m.shape[0]} frames -> {output}")


@app.command()
@handle_errors
def extract(
    movie: MovieArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Traces file (.csv, .nc).")],
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Keep pixels whose projection is above this value."),
    ] = None,
    method: Annotated[Method | None, typer.Option(help="Threshold method.")] = None,
    q: Annotated[float | None, typer.Option(help="Percentile for --method percentile.")] = None,
    k: Annotated[float | None, typer.Option(help="Sigmas for --method sigma (default 3).")] = None,
    block_size: Annotated[int | None, typer.Option(help="Odd block size, --method local.")] = None,
    offset: Annotated[float, typer.Option(help="Offset for --method local.")] = 0.0,
    projection_kind: Annotated[
        Kind, typer.Option("--projection", help="Projection the threshold is applied to.")
    ] = Kind.std,
    how: Annotated[How, typer.Option(help="How a cell's pixels are combined.")] = How.mean,
    proportion: Annotated[float, typer.Option(help="Cut from each end, trimmed_mean.")] = 0.1,
    neuropil_gap: Annotated[
        int | None, typer.Option(help="Ring starts this many px away.")
    ] = None,
    neuropil_width: Annotated[int | None, typer.Option(help="Ring width in pixels.")] = None,
    neuropil_factor: Annotated[float, typer.Option(help="F - factor * Fneu.")] = 0.7,
    figures: Annotated[Path | None, typer.Option(help="Folder for PNG figures.")] = None,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    frame_rate: RateOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Threshold a projection into a cell mask and extract its trace (with neuropil)."""
    from .extract import extract as run_extract
    from .masks import threshold as make_mask
    from .neuropil import neuropil_ring
    from .projection import projection
    from .save import save

    if (threshold is None) == (method is None or method == Method.absolute):
        if threshold is None:
            raise ParameterError(
                "say how to find the cell: --threshold VALUE or --method "
                "percentile --q 80 (or sigma, otsu, li, triangle, local)"
            )
        if method is not None and method != Method.absolute:
            raise ParameterError("give either --threshold or --method, not both")
    if (neuropil_gap is None) != (neuropil_width is None):
        raise ParameterError("give both --neuropil-gap and --neuropil-width, or neither")
    progress = not no_progress
    m = _open(movie, dataset, axes, channel, frame_rate)
    sel = _frames(frames)
    proj = projection(
        m, projection_kind.value, frames=sel, chunk_frames=chunk_frames, progress=progress
    )
    mask = make_mask(
        proj,
        threshold,
        method=(method or Method.absolute).value,
        q=q,
        k=k,
        block_size=block_size,
        offset=offset,
    )
    npil = None if neuropil_gap is None else {"gap": neuropil_gap, "width": neuropil_width}
    ds = run_extract(
        m,
        mask,
        how=how.value,
        neuropil=npil,
        neuropil_factor=neuropil_factor,
        proportion=proportion,
        frames=sel,
        chunk_frames=chunk_frames,
        progress=progress,
    )
    ds.attrs.update(
        {
            "command": "extract",
            "projection": projection_kind.value,
            "threshold_method": (method or Method.absolute).value,
            "threshold": json.dumps(
                {"value": threshold, "q": q, "k": k, "block_size": block_size, "offset": offset}
            ),
        }
    )
    save(ds, output)
    out.print(f"mask: {int(mask.sum())} pixels; {ds.sizes['time']} frames -> {output}")
    if figures is not None:
        ring = None if npil is None else neuropil_ring(mask, **npil)
        for f in _extract_figures(ds, proj, mask, ring, figures):
            out.print(f"  figure: {f}")


def _extract_figures(ds, proj, mask, ring, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    meta = {"Software": f"roitrace {__version__}", "Description": json.dumps(dict(ds.attrs))}
    rate = ds.attrs.get("frame_rate") or None
    written = []
    ax = plot.projection_contour(proj, mask, title="projection and cell mask")
    written.append(plot.save(ax.figure, folder / "mask.png", metadata=meta))
    ax = plot.pixels_scatter(proj, mask, ring)
    written.append(plot.save(ax.figure, folder / "pixels.png", metadata=meta))
    names = [v for v in ("F", "Fneu", "F_corrected") if v in ds]
    ax = plot.traces({v: ds[v].values[0] for v in names}, frame_rate=rate)
    written.append(plot.save(ax.figure, folder / "traces.png", metadata=meta))
    plt.close("all")
    return written


@app.command()
@handle_errors
def fetch(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. single-cell.")] = "single-cell",
    cache_dir: Annotated[Path | None, typer.Option(help="Where to keep downloads.")] = None,
    url: Annotated[str | None, typer.Option(help="Download from this URL instead.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the file.")] = None,
) -> None:
    """Download a dataset (the notebook's single-cell movie) into the local cache."""
    from .fetch import fetch as do_fetch

    path = do_fetch(name, cache_dir=cache_dir, url=url, known_hash=sha256, progress=True)
    out.print(str(path))


def main() -> None:
    """Entry point of the ``roitrace`` script."""
    app(prog_name="roitrace")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
