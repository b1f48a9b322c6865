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
    correlation = "correlation"


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
    """Turn expected failures into a one-line message and exit code 2, no traceback.

    Expected failures: a RoitraceError (among them OutputError and DiskFullError, for
    an output that could not be written) and any other OSError (a file that cannot be
    read). Ctrl-C prints one line and exits with code 130. The message is printed
    while the exception is still being handled: an HDF5 library left broken by a full
    disk may crash when the exception is freed, and the message must be out by then.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RoitraceError as exc:
            _fail(" ".join(str(exc).split()))  # one line, even if a message has several
        except OSError as exc:  # a file roitrace could not read, or an unforeseen write
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            why = " ".join(str(exc.strerror or exc).split())
            _fail(f"could not read or write{where}: {why}")
        except KeyboardInterrupt:
            err.print("roitrace: interrupted; no output was left half-written", markup=False)
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
    subtract_global: Annotated[
        bool,
        typer.Option(
            help="--kind correlation: subtract each frame's mean first, for movies whose "
            "raw correlation image is high everywhere."
        ),
    ] = False,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Project a movie over time (mean, max, min, std, median, percentile, or the local
    correlation image) into one image."""
    from .projection import projection
    from .save import write_image

    m = _open(movie, dataset, axes, channel, None)
    image = projection(
        m,
        kind.value,
        q=q,
        frames=_frames(frames),
        chunk_frames=chunk_frames,
        subtract_global=subtract_global,
        progress=not no_progress,
    )
    params = {
        "command": "project",
        "movie": str(movie),
        "kind": kind.value,
        "q": q,
        "subtract_global": subtract_global,
        "frames": frames,
    }
    if output.suffix.lower() == ".npy":
        import numpy as np

        from ._atomic import atomic_path, write_bytes

        with atomic_path(output) as tmp:
            np.save(tmp, image)
        sidecar = json.dumps({"roitrace_version": __version__, **params}, indent=1)
        write_bytes(output.with_name(output.name + ".json"), sidecar.encode())
    else:
        write_image(image, output, metadata=params)
    out.print(f"{kind.value} projection of {m.shape[0]} frames -> {output}")


class Overlap(StrEnum):
    keep = "keep"
    drop = "drop"


ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", help="Keep pixels whose projection is above this value."),
]
MethodOpt = Annotated[Method | None, typer.Option(help="Threshold method.")]
QOpt = Annotated[float | None, typer.Option(help="Percentile for --method percentile.")]
KOpt = Annotated[float | None, typer.Option(help="Sigmas for --method sigma (default 3).")]
BlockOpt = Annotated[int | None, typer.Option(help="Odd block size, --method local.")]
OffsetOpt = Annotated[float, typer.Option(help="Offset for --method local.")]
ProjOpt = Annotated[
    Kind, typer.Option("--projection", help="Projection the threshold is applied to.")
]
MinSizeOpt = Annotated[int | None, typer.Option(help="Smallest cell kept, in pixels.")]
MaxSizeOpt = Annotated[int | None, typer.Option(help="Largest cell kept, in pixels.")]


def _threshold_mask(proj, threshold, method, q, k, block_size, offset, *, auto=False):
    from .masks import threshold as make_mask

    if threshold is not None and method not in (None, Method.absolute):
        raise ParameterError("give either --threshold or --method, not both")
    if threshold is None and method in (None, Method.absolute):
        if not auto:
            raise ParameterError(
                "say how to find the cell: --threshold VALUE or --method percentile --q 80 "
                "(or sigma, otsu, li, triangle, local), or give --rois FILE"
            )
        method = Method.sigma
    chosen = (method or Method.absolute).value
    mask = make_mask(
        proj, threshold, method=chosen, q=q, k=k, block_size=block_size, offset=offset
    )
    params = {
        "method": chosen,
        "value": threshold,
        "q": q,
        "k": k,
        "block_size": block_size,
        "offset": offset,
    }
    return mask, params


@app.command()
@handle_errors
def extract(
    movie: MovieArg,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Traces: .csv, .nc, .nwb, or a folder (suite2p)."),
    ],
    rois: Annotated[
        Path | None,
        typer.Option(help="ROIs: RoiSet.zip/.roi, labels .tif/.npy, suite2p plane0, .nwb."),
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Threshold, then one ROI per connected component.")
    ] = False,
    threshold: ThresholdOpt = None,
    method: MethodOpt = None,
    q: QOpt = None,
    k: KOpt = None,
    block_size: BlockOpt = None,
    offset: OffsetOpt = 0.0,
    projection_kind: ProjOpt = Kind.std,
    min_size: MinSizeOpt = None,
    max_size: MaxSizeOpt = None,
    how: Annotated[How, typer.Option(help="How a cell's pixels are combined.")] = How.mean,
    proportion: Annotated[float, typer.Option(help="Cut from each end, trimmed_mean.")] = 0.1,
    neuropil_gap: Annotated[
        int | None, typer.Option(help="Ring starts this many px away.")
    ] = None,
    neuropil_width: Annotated[int | None, typer.Option(help="Ring width in pixels.")] = None,
    neuropil_exclude_gap: Annotated[
        int, typer.Option(help="Rings avoid every cell dilated by this many pixels.")
    ] = 0,
    neuropil_min_pixels: Annotated[
        int | None, typer.Option(help="Grow each ring to at least this many pixels (350).")
    ] = None,
    neuropil_factor: Annotated[float, typer.Option(help="F - factor * Fneu.")] = 0.7,
    overlap: Annotated[
        Overlap, typer.Option(help="Pixels shared by ROIs: keep in each, or drop.")
    ] = Overlap.keep,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Allow reading suite2p's pickled stat.npy.")
    ] = False,
    all_rois: Annotated[
        bool, typer.Option("--all-rois", help="suite2p: keep ROIs iscell.npy rejects too.")
    ] = False,
    figures: Annotated[Path | None, typer.Option(help="Folder for PNG figures.")] = None,
    subject_id: Annotated[str | None, typer.Option(help="NWB: subject id.")] = None,
    species: Annotated[str | None, typer.Option(help="NWB: e.g. 'Mus musculus'.")] = None,
    sex: Annotated[str | None, typer.Option(help="NWB: M, F, U or O.")] = None,
    age: Annotated[str | None, typer.Option(help="NWB: ISO 8601 duration, e.g. P90D.")] = None,
    indicator: Annotated[str | None, typer.Option(help="NWB: e.g. GCaMP6f.")] = None,
    location: Annotated[str | None, typer.Option(help="NWB: imaged brain area.")] = None,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    frame_rate: RateOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Extract one trace per cell: from ROI files, or by thresholding a projection."""
    from .extract import extract as run_extract
    from .projection import projection
    from .rois import label, read_rois
    from .save import check_output, save

    if (neuropil_gap is None) != (neuropil_width is None):
        raise ParameterError("give both --neuropil-gap and --neuropil-width, or neither")
    progress = not no_progress
    check_output(output)  # before the work: a missing writer package fails in a second
    m = _open(movie, dataset, axes, channel, frame_rate)
    if output.suffix.lower() == ".nwb" and not m.frame_rate:
        raise ParameterError(
            f"{output}: NWB needs the time of every frame, and {movie} records no frame "
            "rate; pass --frame-rate (frames per second)"
        )
    sel = _frames(frames)
    proj = None
    extra: dict[str, Any] = {"command": "extract"}
    if rois is not None:
        if auto or threshold is not None or method is not None:
            raise ParameterError("--rois gives the cells: leave out --auto/--threshold/--method")
        roi_input: Any = read_rois(
            rois, shape=m.frame_shape, allow_pickle=trust_pickle, cells_only=not all_rois
        )
        extra["rois"] = str(rois)
    else:
        proj = projection(
            m, projection_kind.value, frames=sel, chunk_frames=chunk_frames, progress=progress
        )
        mask, tparams = _threshold_mask(
            proj, threshold, method, q, k, block_size, offset, auto=auto
        )
        roi_input = label(mask, min_size=min_size, max_size=max_size) if auto else mask
        extra.update(
            projection=projection_kind.value,
            auto=auto,
            threshold=json.dumps(tparams),
            min_size=str(min_size),
            max_size=str(max_size),
        )
    npil = None
    if neuropil_gap is not None:
        npil = {
            "gap": neuropil_gap,
            "width": neuropil_width,
            "exclude_gap": neuropil_exclude_gap,
            "min_pixels": neuropil_min_pixels,
        }
    ds = run_extract(
        m,
        roi_input,
        how=how.value,
        neuropil=npil,
        neuropil_factor=neuropil_factor,
        proportion=proportion,
        overlap=overlap.value,
        frames=sel,
        chunk_frames=chunk_frames,
        progress=progress,
    )
    ds.attrs.update(extra)
    nwb = {}
    if output.suffix.lower() == ".nwb":
        subject = {
            k2: v
            for k2, v in (
                ("subject_id", subject_id),
                ("species", species),
                ("sex", sex),
                ("age", age),
            )
            if v is not None
        }
        nwb = {"subject": subject or None, "indicator": indicator, "location": location}
    save(ds, output, **nwb)
    out.print(
        f"{ds.sizes['roi']} ROI(s), {int(ds['npix'].sum())} pixels; "
        f"{ds.sizes['time']} frames -> {output}"
    )
    if figures is not None:
        if proj is None:
            proj = projection(m, "mean", frames=sel, chunk_frames=chunk_frames, progress=progress)
        for f in _extract_figures(ds, proj, npil, figures):
            out.print(f"  figure: {f}")


def _extract_figures(ds, proj, npil, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot
    from .extract import rois_from_result
    from .neuropil import neuropil_ring

    meta = {"Software": f"roitrace {__version__}", "Description": json.dumps(dict(ds.attrs))}
    rate = ds.attrs.get("frame_rate") or None
    rois = rois_from_result(ds)
    written = []

    def save(ax_or_fig, name):
        fig = getattr(ax_or_fig, "figure", ax_or_fig)
        written.append(plot.save(fig, folder / name, metadata=meta))
        plt.close(fig)

    if len(rois) == 1:
        mask = rois[0].mask(rois.frame_shape)
        save(plot.projection_contour(proj, mask, title="projection and cell mask"), "mask.png")
        ring = None
        if npil is not None:
            ring = neuropil_ring(mask, gap=npil["gap"], width=npil["width"], allow_empty=True)
        save(plot.pixels_scatter(proj, mask, ring), "pixels.png")
        names = [v for v in ("F", "Fneu", "F_corrected") if v in ds]
        save(plot.traces({v: ds[v].values[0] for v in names}, frame_rate=rate), "traces.png")
        return written
    save(plot.roi_contours(proj, rois), "rois.png")
    signal = ds["F_corrected"] if "F_corrected" in ds else ds["F"]
    from .normalize import zscore

    save(
        plot.traces(
            zscore(signal),
            offset=4.0,
            ylabel="z-score",
            frame_rate=rate,
            title=f"{len(rois)} cells",
        ),
        "traces.png",
    )
    save(plot.heatmap(ds["dff"], frame_rate=rate), "dff_heatmap.png")
    return written


@app.command("rois")
@handle_errors
def rois_command(
    movie: MovieArg,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="RoiSet.zip (ImageJ/Fiji), labels .tif/.npy or .nwb."),
    ],
    threshold: ThresholdOpt = None,
    method: MethodOpt = None,
    q: QOpt = None,
    k: KOpt = None,
    block_size: BlockOpt = None,
    offset: OffsetOpt = 0.0,
    projection_kind: ProjOpt = Kind.std,
    min_size: MinSizeOpt = None,
    max_size: MaxSizeOpt = None,
    figure: Annotated[Path | None, typer.Option(help="PNG of the ROIs on the projection.")] = None,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Find cells by thresholding a projection; write them as ROIs to edit in ImageJ/Fiji."""
    from .projection import projection
    from .rois import label, write_labels

    m = _open(movie, dataset, axes, channel, None)
    proj = projection(
        m,
        projection_kind.value,
        frames=_frames(frames),
        chunk_frames=chunk_frames,
        progress=not no_progress,
    )
    mask, _ = _threshold_mask(proj, threshold, method, q, k, block_size, offset, auto=True)
    roiset = label(mask, min_size=min_size, max_size=max_size)
    suffix = output.suffix.lower()
    if suffix in (".zip", ".roi"):
        from .imagej import write_imagej

        write_imagej(roiset, output)
    elif suffix in (".tif", ".tiff", ".npy"):
        write_labels(roiset, output)
    elif suffix == ".nwb":
        roiset.to_nwb(output, frame_rate=m.frame_rate or None)
    else:
        raise ParameterError(
            f"{output}: write ROIs as .zip (ImageJ RoiSet), .tif/.npy (labels) or .nwb"
        )
    out.print(
        f"{len(roiset)} ROIs ({', '.join(str(r.npix) for r in roiset[:10])}"
        f"{'...' if len(roiset) > 10 else ''} pixels) -> {output}"
    )
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        from . import plot

        ax = plot.roi_contours(proj, roiset)
        out.print(f"  figure: {plot.save(ax.figure, figure)}")


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
