"""Option definitions and checks shared by the commands: the movie's options, the
threshold's, outputs, and options that do not apply."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ParameterError
from ..io import writable_suffixes
from ..options import (
    AGGREGATION_METHODS,
    BASELINE_METHODS,
    DECONVOLUTION_MODELS,
    DECONVOLUTION_PENALTIES,
    OVERLAP_MODES,
    PROJECTION_METHODS,
    THRESHOLD_METHODS,
)


def _choices(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """A command-line choice type from one of roitrace.options' tuples of choices."""
    return StrEnum(name, {v: v for v in values})  # type: ignore[return-value]


Kind = _choices("Kind", PROJECTION_METHODS)
Method = _choices("Method", THRESHOLD_METHODS)
How = _choices("How", AGGREGATION_METHODS)
Overlap = _choices("Overlap", OVERLAP_MODES)
BaselineMethod = _choices("BaselineMethod", BASELINE_METHODS)
Model = _choices("Model", DECONVOLUTION_MODELS)
Penalty = _choices("Penalty", DECONVOLUTION_PENALTIES)


# -- shared options ----------------------------------------------------------------------
MovieArg = Annotated[
    Path,
    typer.Argument(
        help="Movie: TIFF, .npy, HDF5 (file.h5:/dataset) or a Zarr/OME-Zarr store "
        "(store.zarr, store.zarr:/array)."
    ),
]
FramesOpt = Annotated[
    str | None,
    typer.Option("--frames", help="Only these frames, START:STOP (stop excluded), e.g. 300:750."),
]
DatasetOpt = Annotated[
    str | None, typer.Option(help="HDF5 dataset or Zarr array holding the movie.")
]
AxesOpt = Annotated[str | None, typer.Option(help="Axis order of .npy/HDF5/Zarr data, e.g. YXT.")]
ChannelOpt = Annotated[int | None, typer.Option(help="Channel to use when the file has several.")]
RateOpt = Annotated[
    float | None, typer.Option("--frame-rate", help="Frames per second (overrides the file's).")
]
#: The quality file of a report (roitrace report, extract --report).
QcOpt = Annotated[
    Path | None,
    typer.Option("--qc", help="Quality-control JSON; default quality_control.json beside it."),
]
ChunkOpt = Annotated[int | None, typer.Option("--chunk-frames", help="Frames read at once.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="Run on N local worker processes (a Dask LocalCluster)."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run on the Dask cluster at this address (tcp://host:8786)."),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="Threads of the compiled kernels; with --workers, per worker."),
]
KeepTruncatedOpt = Annotated[
    bool,
    typer.Option(
        "--keep-truncated", help="A TIFF cut off in the middle: use its complete frames."
    ),
]


def _frames(text: str | None) -> slice | None:
    if text is None:
        return None
    try:
        a, b = text.split(":")
        return slice(int(a) if a else None, int(b) if b else None)
    except ValueError:
        raise ParameterError(f"--frames {text!r}: write START:STOP, e.g. 300:750") from None


def _open(movie: Path, dataset, axes, channel, frame_rate, keep_truncated=False):
    from .._validate import frame_rate as check_rate
    from ..movie import TIFF_SUFFIXES, open_movie

    if dataset is not None and movie.suffix.lower() in TIFF_SUFFIXES:
        raise ParameterError(
            f"--dataset is for HDF5 and Zarr movies; {movie} is a TIFF file: leave --dataset out"
        )
    if keep_truncated and movie.suffix.lower() not in TIFF_SUFFIXES:
        raise ParameterError(
            f"--keep-truncated is for TIFF files; {movie} is not one: leave it out"
        )
    return open_movie(
        movie,
        dataset=dataset,
        axes=axes,
        channel=channel,
        frame_rate=check_rate(frame_rate),
        truncated="keep" if keep_truncated else "error",
    )


def _cluster(workers: int | None, scheduler: str | None, threads: int | None) -> Any:
    """The Dask client of --workers or --scheduler (None without either), closed with
    the command (a client of local workers stops them)."""
    if workers is not None and scheduler is not None:
        raise ParameterError(
            "give --workers or --scheduler, not both: --workers N starts N local worker "
            "processes, --scheduler ADDRESS uses a running cluster"
        )
    from .._validate import integer

    for name, value in (("--workers", workers), ("--threads", threads)):
        if value is not None:
            integer(name, value, low=1)
    if workers is None and scheduler is None:
        return None
    if scheduler is not None:
        _not_applicable({"threads": threads}, "with --scheduler (its workers have their own)")
    import contextlib
    import logging

    from ..cluster import connect
    from ._app import close_with_command

    with contextlib.suppress(ImportError):  # connect() says what to install
        import distributed  # noqa: F401 - it sets its loggers to INFO when imported
    # ... and would log every worker's start and stop (and, stopped, each one killed)
    quiet = logging.WARNING if logging.getLogger().isEnabledFor(logging.INFO) else logging.ERROR
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(quiet)
    return close_with_command(connect(scheduler=scheduler, workers=workers, threads=threads))


def _execution(
    frames: str | None,
    chunk_frames: int | None,
    no_progress: bool,
    client: Any,
    threads: int | None,
) -> Any:
    """The options of how the movie is read, from the command line's."""
    from ..options import Execution

    return Execution(
        frames=_frames(frames),
        chunk_frames=chunk_frames,
        progress=not no_progress,
        client=client,
        threads=threads if client is None else None,
    )


def _count(n: int, word: str) -> str:
    """``1 ROI``, ``2 ROIs``: a number with its noun."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _n_frames(m: Any, sel: slice | None) -> int:
    from ..engine import n_selected, resolve_frames

    return n_selected(resolve_frames(m.n_frames, sel))


def _not_applicable(options: dict[str, Any], why: str) -> None:
    """An option given where it has no effect is an error, never silently ignored."""
    given = [f"--{n.replace('_', '-')}" for n, v in options.items() if v not in (None, False)]
    if given:
        verb = "does" if len(given) == 1 else "do"
        raise ParameterError(f"{' and '.join(given)} {verb} not apply {why}: leave it out")


#: Output suffixes of each command (a trailing "/" asks for a suite2p folder).
_IMAGE_OUT = (".tif", ".tiff", ".npy")
_ROI_OUT = writable_suffixes("rois")  # ImageJ .zip/.roi, label images .tif/.npy, .nwb


def _output(
    text: str, allowed: tuple[str, ...], what: str, *, folder: bool = False, movie: Path
) -> Path:
    """The -o/--output path, its format known before any work is done."""
    from .._atomic import check_not_input

    path = Path(text)
    # "this is your movie" says more than "a movie's suffix is no format for traces"
    check_not_input(path, [("the input movie", movie)], name="-o/--output")
    if folder and (text.endswith(("/", os.sep)) or path.is_dir()):
        return path
    suffix = path.suffix.lower()
    if suffix in allowed:
        return path
    choices = ", ".join(allowed) + (", or a folder ending in / (suite2p style)" if folder else "")
    if not suffix:
        raise ParameterError(
            f"-o {text} has no suffix, so its format is unknown; write {what} as {choices}"
        )
    raise ParameterError(f"-o {text}: {suffix} is not a format for {what}; use {choices}")


def _check_outputs(movie: Path, outputs: list[tuple[str, Path | None, str]], rois=None) -> None:
    """Refuse now, before the movie is read, an output that is one of the inputs or
    that cannot be written: a long run must neither replace its own input nor end in
    an error it could have given at once.

    ``outputs``: ``(option, path, kind)``, kind ``"file"``, ``"folder"``, ``"image"``
    (``project -o``: a ``.npy`` image has a ``.json`` sidecar) or ``"traces"``
    (``extract -o``: a file or a suite2p folder, as :func:`roitrace.save` decides).
    """
    from .._atomic import check_not_input, check_writable
    from ..save import check_output

    inputs = [("the input movie", movie), ("the ROI source --rois", rois)]
    for option, path, kind in outputs:
        if path is None:
            continue
        if kind == "traces":
            check_output(path, inputs=inputs, name=option, writable=True)
            continue
        folder = kind == "folder"
        # PNG figures in an input folder (a suite2p plane) replace none of its files
        kept = [(w, p) for w, p in inputs if p is None or not (folder and Path(p).is_dir())]
        check_not_input(path, kept, name=option, folder=folder)
        if kind == "image" and path.suffix.lower() == ".npy":
            sidecar = path.with_name(path.name + ".json")
            check_not_input(sidecar, inputs, label=f"the sidecar {sidecar} of {option} {path}")
        check_writable(path, name=option, folder=folder)


ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", help="Keep pixels whose projection is above this value."),
]
MethodOpt = Annotated[
    Method | None,
    typer.Option(
        help="Threshold method; --threshold implies absolute, --q percentile, --k sigma, "
        "--block-size local."
    ),
]
QOpt = Annotated[float | None, typer.Option(help="Percentile for --method percentile.")]
KOpt = Annotated[float | None, typer.Option(help="Sigmas for --method sigma (default 3).")]
BlockOpt = Annotated[int | None, typer.Option(help="Odd block size, --method local.")]
OffsetOpt = Annotated[float | None, typer.Option(help="Offset for --method local (default 0).")]
ProjOpt = Annotated[
    Kind | None,
    typer.Option("--projection", help="Projection the threshold is applied to (default std)."),
]
#: Components smaller than this are noise, not cells (--auto and rois, unless --min-size).
DEFAULT_MIN_SIZE = 10  # = roitrace.segment.DEFAULT_MIN_SIZE, without importing it at start
MinSizeOpt = Annotated[
    int | None,
    typer.Option(help=f"Smallest cell kept, in pixels (default {DEFAULT_MIN_SIZE})."),
]
MaxSizeOpt = Annotated[int | None, typer.Option(help="Largest cell kept, in pixels.")]

#: The threshold method each threshold option belongs to.
_METHOD_OF = {
    "threshold": "absolute",
    "q": "percentile",
    "k": "sigma",
    "block_size": "local",
    "offset": "local",
}


def _threshold_options(
    threshold, method, q, k, block_size, offset, *, auto: bool
) -> dict[str, Any]:
    """The threshold method and its options; an option implies its method.

    ``--q 90`` alone means ``--method percentile --q 90`` (likewise --threshold,
    --k, --block-size); an option of another method than the one chosen is an
    error. Without any, --auto and the rois command use the 3-sigma rule.
    """
    given = {
        n: v
        for n, v in dict(
            threshold=threshold, q=q, k=k, block_size=block_size, offset=offset
        ).items()
        if v is not None
    }
    flags = {n: f"--{n.replace('_', '-')}" for n in given}
    if method is None:
        implied = sorted({_METHOD_OF[n] for n in given})
        if len(implied) > 1:
            raise ParameterError(
                f"{' and '.join(flags.values())} belong to different threshold methods "
                f"({', '.join(implied)}): give the options of one method"
            )
        if not implied and not auto:
            raise ParameterError(
                "say how to find the cell: --threshold VALUE or --method percentile --q 80 "
                "(or sigma, otsu, li, triangle, local), or give --rois FILE"
            )
        chosen = implied[0] if implied else "sigma"
    else:
        chosen = method.value
    for n in given:
        if _METHOD_OF[n] != chosen:
            raise ParameterError(
                f"{flags[n]} is for --method {_METHOD_OF[n]}, not --method {chosen}: leave it out"
            )
    if chosen == "absolute" and threshold is None:
        raise ParameterError("--method absolute needs --threshold VALUE")
    if chosen == "percentile" and q is None:
        raise ParameterError("--method percentile needs --q, a percentile between 0 and 100")
    if chosen == "local" and block_size is None:
        raise ParameterError("--method local needs --block-size, an odd number of pixels")
    # values checked now, not after a pass over the movie for the projection
    from .._validate import number

    for n, v in given.items():
        if n == "q":
            number("q", v, low=0, high=100, hint=" (a percentile between 0 and 100)")
        elif n == "block_size" and (v < 3 or v % 2 == 0):
            raise ParameterError(f"--block-size {v}: use an odd number of pixels, 3 or more")
        else:
            number("value" if n == "threshold" else n, v)
    options: dict[str, Any] = {"method": chosen, **given}
    if chosen == "sigma":
        options.setdefault("k", 3.0)  # the value used is recorded, never null
    return options


def _threshold_mask(proj, options: dict[str, Any]):
    from ..threshold import threshold as make_mask

    kw = {n: v for n, v in options.items() if n != "threshold"}
    return make_mask(proj, options.get("threshold"), **kw)


def _projection_kind(kind: Kind | None) -> Kind:
    """The projection cells are thresholded on (std unless told)."""
    if kind is Kind.percentile:
        raise ParameterError(
            "--projection percentile would need a percentile of its own besides the "
            "threshold's --q: use mean, max, min, std, median or correlation, or make the "
            "image with roitrace project --kind percentile"
        )
    return kind or Kind.std


def _find_rois(proj, options: dict[str, Any], min_size, max_size):
    """Threshold, then one ROI per connected component (roitrace.find_rois)."""
    from ..segment import find_rois

    kw = {n: v for n, v in options.items() if n != "threshold"}
    rois = find_rois(
        proj, value=options.get("threshold"), min_size=min_size, max_size=max_size, **kw
    )
    return rois, rois.meta["min_size"]
