"""The ``roitrace`` command line: demo, project, extract, fetch.

Errors the user can fix (a roitrace.RoitraceError, a file that cannot be written)
become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._version import __version__
from .errors import ParameterError, RoitraceError
from .io import writable_suffixes
from .options import AGGREGATION_METHODS, OVERLAP_MODES, PROJECTION_METHODS, THRESHOLD_METHODS

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


def _choices(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """A command-line choice type from one of roitrace.options' tuples of choices."""
    return StrEnum(name, {v: v for v in values})  # type: ignore[return-value]


Kind = _choices("Kind", PROJECTION_METHODS)
Method = _choices("Method", THRESHOLD_METHODS)
How = _choices("How", AGGREGATION_METHODS)
Overlap = _choices("Overlap", OVERLAP_MODES)


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
            _fail(cli_words(" ".join(str(exc).split())))  # one line, in the options' words
        except OSError as exc:  # a file roitrace could not read, or an unforeseen write
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            why = " ".join(str(exc.strerror or exc).split())
            _fail(f"could not read or write{where}: {why}")
        except KeyboardInterrupt:
            err.print("roitrace: interrupted; no output was left half-written", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = cli_words(" ".join(str(message).split()), _stage_flags)
    err.print(f"roitrace: warning: {text}", markup=False)


class _CliFormatter(logging.Formatter):
    """Log lines in the command line's words (its options, not Python keywords)."""

    def format(self, record: logging.LogRecord) -> str:
        return cli_words(super().format(record))


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
    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter("roitrace: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


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
    from ._validate import frame_rate as check_rate
    from .movie import TIFF_SUFFIXES, open_movie

    if dataset is not None and movie.suffix.lower() in TIFF_SUFFIXES:
        raise ParameterError(
            f"--dataset is for HDF5 movies; {movie} is a TIFF file: leave --dataset out"
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


def _count(n: int, word: str) -> str:
    """``1 ROI``, ``2 ROIs``: a number with its noun."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _n_frames(m: Any, sel: slice | None) -> int:
    from .engine import n_selected, resolve_frames

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
    from ._atomic import check_not_input

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


# -- the command line speaks in its own options ---------------------------------------------
#: Python keywords that library messages name, and the option a command-line user types.
_OPTION_OF = {
    "value": "--threshold",
    "q": "--q",
    "k": "--k",
    "method": "--method",
    "block_size": "--block-size",
    "offset": "--offset",
    "kind": "--kind",
    "how": "--how",
    "proportion": "--proportion",
    "overlap": "--overlap",
    "min_size": "--min-size",
    "max_size": "--max-size",
    "neuropil_factor": "--neuropil-factor",
    "frame_rate": "--frame-rate",
    "dataset": "--dataset",
    "axes": "--axes",
    "channel": "--channel",
    "chunk_frames": "--chunk-frames",
    "plane_segmentation": "--plane-segmentation",
    "subtract_global": "--subtract-global",
    "sex": "--sex",
    "age": "--age",
    "species": "--species",
}
_PHRASES = (
    (re.compile(r"truncated='keep'"), "--keep-truncated"),
    (re.compile(r"allow_pickle=True"), "--trust-pickle"),
    (re.compile(r"neuropil=\{[^}]*\}"), "--neuropil-gap and --neuropil-width"),
    (re.compile(r"without neuropil="), "without --neuropil-gap and --neuropil-width"),
    (re.compile(r"frames=\((\d+), (\d+)\)"), r"--frames \1:\2"),
    (re.compile(r"; for a single frame use image\[np\.newaxis\]"), ""),
    (re.compile(r"roitrace\.zscore"), "z-scores (roitrace.zscore in Python)"),
    # ROI files are always read for the movie's frames: say so instead of shape=
    (
        re.compile(
            r"check that shape= is (?:the frame shape of the movie (?:they were|it was) drawn "
            r"on|the movie's frame shape)"
        ),
        "check that they were drawn on this movie",
    ),
    (
        re.compile(
            r"shape=(\(\d+, \d+\)) was given; leave shape out or pass the ROIs' own frame size"
        ),
        r"the movie's frames are \1: use the ROIs made for this movie",
    ),
    (re.compile(r"shape=(\(\d+, \d+\)) but"), r"the movie's frames are \1 but"),
    (re.compile(r"Leave shape= out to use suite2p's size"), "Use the movie they were made for"),
    # thresholds are applied to the projection the command made
    (re.compile(r"\bthe image holds"), "the projection holds"),
    (re.compile(r"(\d+ x \d+) image is NaN"), r"\1 projection is NaN"),
    (
        re.compile(r"pass the right shape=\(Y, X\), or the file's masks belong to another movie"),
        "the file's masks belong to another movie: use the movie they were made for",
    ),
)
_KEYWORD = re.compile(
    r"(?<![\w.\-'\"])(" + "|".join(sorted(_OPTION_OF, key=len, reverse=True)) + r")"
    r"(=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)?)?(?![\w])"
)


def cli_words(message: str, flags: dict[str, str] | None = None) -> str:
    """Rewrite a library message's Python keywords into command-line options.

    ``name=value`` becomes ``--name value``; a bare keyword is rewritten when it
    cannot be an ordinary word (it has an underscore, or starts "... must be").
    ``flags`` overrides the options of some keywords: ``method`` is ``--method``
    for a threshold, but ``--how`` for the extraction and ``--kind`` for a projection.

    Examples
    --------
    >>> cli_words("q=120 is outside; use method='percentile'")
    '--q 120 is outside; use --method percentile'
    >>> cli_words("neuropil_factor must be >= 0, got nan")
    '--neuropil-factor must be >= 0, got nan'
    >>> cli_words("proportion=0.2 is only for method='trimmed_mean'", {"method": "--how"})
    '--proportion 0.2 is only for --how trimmed_mean'
    """
    for pattern, text in _PHRASES:
        message = pattern.sub(text, message)
    names = {**_OPTION_OF, **(flags or {})}

    def option(m: re.Match) -> str:
        name, eq, value = m.group(1), m.group(2), m.group(3)
        flag = names[name]
        if eq:
            return f"{flag} {value.strip(chr(39) + chr(34))}" if value else flag
        if "_" in name or m.string.startswith(" must be", m.end()):
            return flag
        return m.group(0)

    return _KEYWORD.sub(option, message)


#: Keyword -> option overrides of the stage running now (see _speaking).
_stage_flags: dict[str, str] = {}


@contextmanager
def _speaking(**flags: str) -> Iterator[None]:
    """Inside the block, errors and warnings name these options for some keywords
    (``_speaking(method="--how")`` around the extraction)."""
    global _stage_flags
    before, _stage_flags = _stage_flags, flags
    try:
        yield
    except RoitraceError as exc:
        exc.args = (cli_words(str(exc), flags), *exc.args[1:])
        raise
    finally:
        _stage_flags = before


def _check_outputs(movie: Path, outputs: list[tuple[str, Path | None, str]], rois=None) -> None:
    """Refuse now, before the movie is read, an output that is one of the inputs or
    that cannot be written: a long run must neither replace its own input nor end in
    an error it could have given at once.

    ``outputs``: ``(option, path, kind)``, kind ``"file"``, ``"folder"``, ``"image"``
    (``project -o``: a ``.npy`` image has a ``.json`` sidecar) or ``"traces"``
    (``extract -o``: a file or a suite2p folder, as :func:`roitrace.save` decides).
    """
    from ._atomic import check_not_input, check_writable
    from .save import check_output

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
    out.print(
        "Movies to try the other commands on: "
        + ", ".join(str(p) for p in [s["movie"], *s["cells"]])
        + " (the last two: 12 cells, the .h5 stored as --dataset imaging --axes YXT)"
    )
    out.print("Figures:")
    for f in s["figures"]:
        out.print(f"  {f}")


@app.command()
@handle_errors
def project(
    movie: MovieArg,
    output_text: Annotated[
        str, typer.Option("-o", "--output", help="Output image (.tif or .npy).")
    ],
    kind: Annotated[
        Kind | None, typer.Option(help="Statistic over time (default std; percentile with --q).")
    ] = None,
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
    keep_truncated: KeepTruncatedOpt = False,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Project a movie over time (mean, max, min, std, median, percentile, or the local
    correlation image) into one image."""
    from .projection import projection
    from .save import write_image

    output = _output(output_text, _IMAGE_OUT, "an image", movie=movie)
    if kind is None:
        kind = Kind.percentile if q is not None else Kind.std
    if kind is not Kind.percentile:
        _not_applicable({"q": q}, f"to --kind {kind.value} (only to --kind percentile)")
    elif q is None:
        raise ParameterError("--kind percentile needs --q, a percentile between 0 and 100")
    if kind is not Kind.correlation:
        _not_applicable(
            {"subtract_global": subtract_global}, f"to --kind {kind.value} (only to correlation)"
        )
    _check_outputs(movie, [("-o/--output", output, "image")])
    m = _open(movie, dataset, axes, channel, None, keep_truncated)
    sel = _frames(frames)
    with _speaking(method="--kind"):
        image = projection(
            m,
            kind.value,
            q=q,
            frames=sel,
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

        # through a file handle: np.save adds ".npy" to a name that lacks that exact
        # suffix (std.NPY), and the data would land beside the temporary file
        with atomic_path(output) as tmp, open(tmp, "wb") as f:
            np.save(f, image)
        sidecar = json.dumps({"roitrace_version": __version__, **params}, indent=1)
        write_bytes(output.with_name(output.name + ".json"), sidecar.encode())
    else:
        write_image(image, output, metadata=params)
    out.print(f"{kind.value} projection of {_count(_n_frames(m, sel), 'frame')} -> {output}")


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
    from ._validate import number

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
    from .threshold import threshold as make_mask

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
    from .segment import find_rois

    kw = {n: v for n, v in options.items() if n != "threshold"}
    rois = find_rois(
        proj, value=options.get("threshold"), min_size=min_size, max_size=max_size, **kw
    )
    return rois, rois.meta["min_size"]


@app.command()
@handle_errors
def extract(
    movie: MovieArg,
    output_text: Annotated[
        str,
        typer.Option(
            "-o", "--output", help="Traces: .csv, .nc, .h5, .nwb, or a folder/ (suite2p)."
        ),
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
    offset: OffsetOpt = None,
    projection_kind: ProjOpt = None,
    min_size: MinSizeOpt = None,
    max_size: MaxSizeOpt = None,
    how: Annotated[How, typer.Option(help="How a cell's pixels are combined.")] = How.mean,
    proportion: Annotated[
        float | None, typer.Option(help="Cut from each end, --how trimmed_mean (0.1).")
    ] = None,
    neuropil_gap: Annotated[
        int | None, typer.Option(help="Ring starts this many px away.")
    ] = None,
    neuropil_width: Annotated[int | None, typer.Option(help="Ring width in pixels.")] = None,
    neuropil_exclude_gap: Annotated[
        int | None, typer.Option(help="Rings avoid every cell dilated by this many px (0).")
    ] = None,
    neuropil_min_pixels: Annotated[
        int | None,
        typer.Option(help="Grow each ring to at least this many pixels (suite2p: 350)."),
    ] = None,
    neuropil_factor: Annotated[
        float | None, typer.Option(help="F_corrected = F - factor * Fneu (0.7).")
    ] = None,
    overlap: Annotated[
        Overlap, typer.Option(help="Pixels shared by ROIs: keep in each, or drop.")
    ] = Overlap.keep,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Allow reading suite2p's pickled stat.npy.")
    ] = False,
    all_rois: Annotated[
        bool, typer.Option("--all-rois", help="suite2p: keep ROIs iscell.npy rejects too.")
    ] = False,
    plane_segmentation: Annotated[
        str | None,
        typer.Option(help="NWB --rois: the PlaneSegmentation to read, when there are several."),
    ] = None,
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
    keep_truncated: KeepTruncatedOpt = False,
    frame_rate: RateOpt = None,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Extract one trace per cell: from ROI files, or by thresholding a projection."""
    from ._validate import check_subject, size_range
    from .extract import extract as run_extract
    from .projection import projection
    from .save import save

    output = _output(output_text, _TRACE_OUT, "traces", folder=True, movie=movie)
    # a suite2p folder keeps its trailing slash: that is how save() knows it is one
    target = output if output.suffix.lower() in _TRACE_OUT else f"{output}{os.sep}"
    nwb = _nwb_options(output, subject_id, species, sex, age, indicator, location)
    check_subject(nwb["session"].subject if nwb else None)
    rings = _neuropil_options(
        neuropil_gap, neuropil_width, neuropil_exclude_gap, neuropil_min_pixels, neuropil_factor
    )
    if how is not How.trimmed_mean:
        _not_applicable({"proportion": proportion}, f"to --how {how.value}")
    elif proportion is not None:
        from .aggregate import check_proportion

        check_proportion(proportion)
    if rois is not None:
        _not_applicable(
            dict(
                auto=auto, threshold=threshold, method=method, q=q, k=k, block_size=block_size,
                offset=offset, min_size=min_size, max_size=max_size,
            ),
            "with --rois, which gives the cells",
        )  # fmt: skip
        if figures is None:
            _not_applicable(
                {"projection": projection_kind}, "with --rois (only to the --figures background)"
            )
    else:
        _not_applicable(
            {
                "trust_pickle": trust_pickle,
                "all_rois": all_rois,
                "plane_segmentation": plane_segmentation,
            },
            "without --rois",
        )
        if not auto:
            _not_applicable(
                {"min_size": min_size, "max_size": max_size},
                "without --auto (the thresholded pixels are one cell)",
            )
    tparams = None
    if rois is None:
        tparams = _threshold_options(threshold, method, q, k, block_size, offset, auto=auto)
        size_range(min_size, max_size)
    progress = not no_progress
    _check_outputs(
        movie, [("-o/--output", target, "traces"), ("--figures", figures, "folder")], rois
    )
    m = _open(movie, dataset, axes, channel, frame_rate, keep_truncated)
    if output.suffix.lower() == ".nwb" and not m.frame_rate:
        raise ParameterError(
            f"{output}: NWB needs the time of every frame, and {movie} records no frame "
            "rate; pass --frame-rate (frames per second)"
        )
    sel = _frames(frames)
    proj = None
    kind = _projection_kind(projection_kind)
    extra: dict[str, Any] = {"command": "extract"}
    if rois is not None:
        roi_input: Any = _read_rois_for(m, rois, axes, trust_pickle, all_rois, plane_segmentation)
        extra["rois"] = str(rois)
    else:
        with _speaking(method="--projection"):
            proj = projection(
                m, kind.value, frames=sel, chunk_frames=chunk_frames, progress=progress
            )
        extra.update(projection=kind.value, auto=auto)
        if auto:
            roi_input, chosen = _find_rois(proj, tparams, min_size, max_size)
            extra["min_size"] = chosen
            if max_size is not None:
                extra["max_size"] = max_size
        else:
            roi_input = _threshold_mask(proj, tparams)
        extra["threshold"] = json.dumps(tparams)
    with _speaking(method="--how"):
        ds = run_extract(
            m,
            roi_input,
            method=how.value,
            neuropil=rings["neuropil"],
            neuropil_factor=rings["factor"],
            proportion=proportion,
            overlap=overlap.value,
            frames=sel,
            chunk_frames=chunk_frames,
            progress=progress,
        )
    ds.attrs.update(extra)
    save(ds, target, **nwb)
    out.print(
        f"{_count(ds.sizes['roi'], 'ROI')}, {_count(int(ds['npix'].sum()), 'pixel')}; "
        f"{_count(ds.sizes['time'], 'frame')} -> {output}"
    )
    if figures is not None:
        if proj is None:
            proj = projection(
                m, kind.value, frames=sel, chunk_frames=chunk_frames, progress=progress
            )
        for f in _extract_figures(
            ds, proj, rings["neuropil"], figures, projection_name=kind.value
        ):
            out.print(f"  figure: {f}")


#: What extract writes: a file of these suffixes, or a folder (suite2p style).
_TRACE_OUT = writable_suffixes("result")  # .csv, .nc, .h5, .hdf5, .nwb


def _nwb_options(output: Path, subject_id, species, sex, age, indicator, location) -> dict:
    fields = dict(
        subject_id=subject_id, species=species, sex=sex, age=age, indicator=indicator,
        location=location,
    )  # fmt: skip
    if output.suffix.lower() != ".nwb":
        _not_applicable(fields, f"to {output.suffix or 'a folder'} output (only to .nwb)")
        return {}
    from .io.nwb import NWBImagingPlane, NWBSession

    subject = {n: fields[n] for n in ("subject_id", "species", "sex", "age") if fields[n]}
    return {
        "session": NWBSession(subject=subject or None),
        "plane": NWBImagingPlane(indicator=indicator, location=location),
    }


def _neuropil_options(gap, width, exclude_gap, min_pixels, factor) -> dict[str, Any]:
    """The neuropil ring's options; ring options without a ring are an error."""
    if (gap is None) != (width is None):
        raise ParameterError("give both --neuropil-gap and --neuropil-width, or neither")
    if gap is None:
        _not_applicable(
            dict(
                neuropil_exclude_gap=exclude_gap,
                neuropil_min_pixels=min_pixels,
                neuropil_factor=factor,
            ),
            "without a neuropil ring (--neuropil-gap and --neuropil-width)",
        )
        return {"neuropil": None, "factor": None}
    from ._validate import integer, number

    integer("--neuropil-gap", gap, low=0)
    integer("--neuropil-width", width, low=1)
    if exclude_gap is not None:
        integer("--neuropil-exclude-gap", exclude_gap, low=0)
    if min_pixels is not None:
        integer("--neuropil-min-pixels", min_pixels, low=1)
    if factor is not None:
        number("neuropil_factor", factor, low=0.0)
    ring = {"gap": gap, "width": width, "exclude_gap": exclude_gap or 0, "min_pixels": min_pixels}
    return {"neuropil": ring, "factor": factor}


def _read_rois_for(m, rois: Path, axes, trust_pickle, all_rois, plane_segmentation):
    """The ROI file's cells, checked against the movie's frames."""
    from .errors import EmptyMaskError, ShapeMismatchError
    from .io import formats, read_rois

    # the format that reads it, as read_rois finds it (None: read_rois says why none does)
    kind = next((f.name for f in formats("rois") if f.can_open(rois)), None)
    if kind != "suite2p":
        _not_applicable(
            {"trust_pickle": trust_pickle, "all_rois": all_rois},
            "to ROIs that are not a suite2p folder",
        )
    if kind != "nwb":
        _not_applicable({"plane_segmentation": plane_segmentation}, "to ROIs that are not NWB")
    options: dict[str, Any] = {"shape": m.frame_shape, "allow_pickle": trust_pickle}
    if kind == "suite2p":
        options["cells_only"] = not all_rois
    if kind == "nwb":
        options["plane_segmentation"] = plane_segmentation
    try:
        return read_rois(rois, **options)
    except (ShapeMismatchError, EmptyMaskError) as exc:
        if "frame" not in str(exc):
            raise
        from .movie import TIFF_SUFFIXES

        if axes is None and m.path is not None and m.path.suffix.lower() not in TIFF_SUFFIXES:
            t, y, x = m.shape
            raise type(exc)(
                f"{exc}. The movie was read as {t} frames of {y} x {x}: if its axes are "
                "stored in another order than T, Y, X, pass --axes (e.g. --axes YXT)"
            ) from exc
        raise


def _extract_figures(ds, proj, npil, folder: Path, **options: Any) -> list[Path]:
    """The PNGs of ``extract --figures`` (:func:`roitrace.plot.extraction_figures`)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, whatever the user's backend
    from .plot import extraction_figures

    return extraction_figures(ds, proj, folder, neuropil=npil, **options)


@app.command("rois")
@handle_errors
def rois_command(
    movie: MovieArg,
    output_text: Annotated[
        str,
        typer.Option("-o", "--output", help="RoiSet.zip (ImageJ/Fiji), labels .tif/.npy or .nwb."),
    ],
    threshold: ThresholdOpt = None,
    method: MethodOpt = None,
    q: QOpt = None,
    k: KOpt = None,
    block_size: BlockOpt = None,
    offset: OffsetOpt = None,
    projection_kind: ProjOpt = None,
    min_size: MinSizeOpt = None,
    max_size: MaxSizeOpt = None,
    figure: Annotated[Path | None, typer.Option(help="PNG of the ROIs on the projection.")] = None,
    frames: FramesOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    keep_truncated: KeepTruncatedOpt = False,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Find cells by thresholding a projection; write them as ROIs to edit in ImageJ/Fiji."""
    from ._validate import size_range
    from .io import roi_format, write_rois
    from .projection import projection

    output = _output(output_text, _ROI_OUT, "ROIs", movie=movie)
    fmt = roi_format(output, for_writing=True)
    fmt.require(f"writing {output} ({output.suffix.lower()})")  # before the work, not after it
    if figure is not None and figure.suffix.lower() != ".png":
        raise ParameterError(f"--figure {figure}: the figure is a PNG image; name it .png")
    options = _threshold_options(threshold, method, q, k, block_size, offset, auto=True)
    size_range(min_size, max_size)
    _check_outputs(movie, [("-o/--output", output, "file"), ("--figure", figure, "file")])
    m = _open(movie, dataset, axes, channel, None, keep_truncated)
    kind = _projection_kind(projection_kind)
    proj = projection(
        m,
        kind.value,
        frames=_frames(frames),
        chunk_frames=chunk_frames,
        progress=not no_progress,
    )
    roiset, _ = _find_rois(proj, options, min_size, max_size)
    # NWB records the imaging rate beside the ROIs
    rate = {"frame_rate": m.frame_rate or None} if "frame_rate" in fmt.write_options else {}
    write_rois(roiset, output, **rate)
    sizes = ", ".join(str(r.npix) for r in roiset[:10])
    unit = "pixel" if len(roiset) == 1 and roiset[0].npix == 1 else "pixels"
    out.print(
        f"{_count(len(roiset), 'ROI')} ({sizes}{'...' if len(roiset) > 10 else ''} {unit}) "
        f"-> {output}"
    )
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        from . import plot

        ax = plot.roi_contours(proj, roiset, projection_name=projection_kind.value)
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
    from .datasets.fetch import fetch as do_fetch

    path = do_fetch(name, cache_dir=cache_dir, url=url, known_hash=sha256, progress=True)
    out.print(str(path))


def main() -> None:
    """Entry point of the ``roitrace`` script."""
    app(prog_name="roitrace")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
