"""``roitrace rois``: find cells and write them as ROIs (ImageJ, labels, NWB)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ParameterError
from ._app import app, handle_errors, out
from ._options import (
    _ROI_OUT,
    AxesOpt,
    BlockOpt,
    ChannelOpt,
    ChunkOpt,
    DatasetOpt,
    FramesOpt,
    KeepTruncatedOpt,
    KOpt,
    MaxSizeOpt,
    MethodOpt,
    MinSizeOpt,
    MovieArg,
    NoProgress,
    OffsetOpt,
    ProjOpt,
    QOpt,
    SchedulerOpt,
    ThreadsOpt,
    ThresholdOpt,
    WorkersOpt,
    _check_outputs,
    _cluster,
    _count,
    _execution,
    _find_rois,
    _open,
    _output,
    _projection_kind,
    _threshold_options,
)


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
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    threads: ThreadsOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Find cells by thresholding a projection; write them as ROIs to edit in ImageJ/Fiji."""
    from .._validate import size_range
    from ..io import roi_format, write_rois
    from ..projection import projection

    output = _output(output_text, _ROI_OUT, "ROIs", movie=movie)
    fmt = roi_format(output, for_writing=True)
    fmt.require(f"writing {output} ({output.suffix.lower()})")  # before the work, not after it
    if figure is not None and figure.suffix.lower() != ".png":
        raise ParameterError(f"--figure {figure}: the figure is a PNG image; name it .png")
    options = _threshold_options(threshold, method, q, k, block_size, offset, auto=True)
    size_range(min_size, max_size)
    _check_outputs(movie, [("-o/--output", output, "file"), ("--figure", figure, "file")])
    client = _cluster(workers, scheduler, threads)
    m = _open(movie, dataset, axes, channel, None, keep_truncated)
    kind = _projection_kind(projection_kind)
    run = _execution(frames, chunk_frames, no_progress, client, threads)
    proj = projection(m, kind.value, execution=run)
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
        from .. import plot

        ax = plot.roi_contours(proj, roiset, projection_name=kind.value)
        out.print(f"  figure: {plot.save(ax.figure, figure)}")
