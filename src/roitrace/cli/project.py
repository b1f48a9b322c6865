"""``roitrace project``: one image from a movie (a projection over time)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .._version import __version__
from ..errors import ParameterError
from ._app import app, handle_errors, out
from ._options import (
    _IMAGE_OUT,
    AxesOpt,
    ChannelOpt,
    ChunkOpt,
    DatasetOpt,
    FramesOpt,
    KeepTruncatedOpt,
    Kind,
    MovieArg,
    NoProgress,
    SchedulerOpt,
    ThreadsOpt,
    WorkersOpt,
    _check_outputs,
    _cluster,
    _count,
    _execution,
    _n_frames,
    _not_applicable,
    _open,
    _output,
)
from ._words import _speaking


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
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    threads: ThreadsOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Project a movie over time (mean, max, min, std, median, percentile, or the local
    correlation image) into one image."""
    from ..projection import projection
    from ..save import write_image

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
    client = _cluster(workers, scheduler, threads)
    m = _open(movie, dataset, axes, channel, None, keep_truncated)
    run = _execution(frames, chunk_frames, no_progress, client, threads)
    with _speaking(method="--kind"):
        image = projection(m, kind.value, q=q, subtract_global=subtract_global, execution=run)
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

        from .._atomic import atomic_path, write_bytes

        # through a file handle: np.save adds ".npy" to a name that lacks that exact
        # suffix (std.NPY), and the data would land beside the temporary file
        with atomic_path(output) as tmp, open(tmp, "wb") as f:
            np.save(f, image)
        sidecar = json.dumps({"roitrace_version": __version__, **params}, indent=1)
        write_bytes(output.with_name(output.name + ".json"), sidecar.encode())
    else:
        write_image(image, output, metadata=params)
    out.print(
        f"{kind.value} projection of {_count(_n_frames(m, run.frames), 'frame')} -> {output}"
    )
