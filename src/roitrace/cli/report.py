"""``roitrace report``: a self-contained HTML quality report of a result, and its
``quality_control.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, handle_errors, out
from ._options import (
    AxesOpt,
    ChannelOpt,
    ChunkOpt,
    DatasetOpt,
    KeepTruncatedOpt,
    NoProgress,
    QcOpt,
    _count,
    _execution,
    _not_applicable,
    _open,
)
from ._words import _speaking

#: The quality rules' thresholds, shared with ``roitrace extract --report``.
MinSnrOpt = Annotated[
    float | None,
    typer.Option(help="Flag low_snr below this peak SNR (noise SDs; default 5)."),
]
MaxNegativeOpt = Annotated[
    float | None,
    typer.Option(help="Flag negative above this fraction of frames below 0 (default 0.5)."),
]
MinRingFractionOpt = Annotated[
    float | None,
    typer.Option(help="Flag neuropil_small below this fraction of the ring asked (default 0.5)."),
]
MinF0NoiseOpt = Annotated[
    float | None,
    typer.Option("--min-f0-noise", help="Flag f0_small below this many noise SDs (default 3)."),
]
MaxMbOpt = Annotated[
    float, typer.Option("--max-mb", help="Largest report size in MB; traces are binned to fit.")
]

#: Keywords of the library -> this command's options, for its messages.
FLAGS = {"quality": "--qc", "path": "-o/--output", "max_mb": "--max-mb", "min_snr": "--min-snr",
         "max_negative": "--max-negative", "min_ring_fraction": "--min-ring-fraction",
         "min_f0_noise": "--min-f0-noise"}  # fmt: skip


def thresholds(min_snr, max_negative, min_ring_fraction, min_f0_noise) -> dict[str, float]:
    """The thresholds given on the command line, by keyword."""
    given = dict(min_snr=min_snr, max_negative=max_negative,
                 min_ring_fraction=min_ring_fraction, min_f0_noise=min_f0_noise)  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


@app.command()
@handle_errors
def report(
    result: Annotated[
        Path,
        typer.Argument(
            help="A result roitrace reads: .nc/.h5, .nwb, a suite2p folder (or .csv: no image)."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The report, an .html file.")],
    movie: Annotated[
        Path | None,
        typer.Option(help="The movie: its projections under the ROIs, and saturation."),
    ] = None,
    qc: QcOpt = None,
    max_mb: MaxMbOpt = 20.0,
    title: Annotated[str | None, typer.Option(help="The page's title.")] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle", help="suite2p folder: read its pickles (ROI pixels, frame rate)."
        ),
    ] = False,
    min_snr: MinSnrOpt = None,
    max_negative: MaxNegativeOpt = None,
    min_ring_fraction: MinRingFractionOpt = None,
    min_f0_noise: MinF0NoiseOpt = None,
    dataset: DatasetOpt = None,
    axes: AxesOpt = None,
    channel: ChannelOpt = None,
    keep_truncated: KeepTruncatedOpt = False,
    chunk_frames: ChunkOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Write a self-contained HTML quality report of a result (any browser, offline),
    with quality_control.json beside it."""
    from ..quality import THRESHOLDS
    from ..report import check_report_paths, write_report
    from ..save import load

    if movie is None:
        _not_applicable(
            {"dataset": dataset, "axes": axes, "channel": channel,
             "keep_truncated": keep_truncated, "chunk_frames": chunk_frames},
            "without --movie",
        )  # fmt: skip
    limits = thresholds(min_snr, max_negative, min_ring_fraction, min_f0_noise)
    with _speaking(**FLAGS):
        from ..quality import check_thresholds
        from ..report import check_max_mb

        limits = {**THRESHOLDS, **check_thresholds(**limits)}
        max_bytes = check_max_mb(max_mb)
    # a missing or unreadable input is said first, before anything about the outputs
    ds = load(result, allow_pickle=trust_pickle)
    m = _open(movie, dataset, axes, channel, None, keep_truncated) if movie else None
    with _speaking(**FLAGS):
        path, quality = check_report_paths(
            output,
            qc,
            inputs=[("the result", result), ("the movie", movie)],
            name="-o/--output",
            quality_name="--qc",
        )
    run = _execution(None, chunk_frames, no_progress, None, None)
    with _speaking(**FLAGS):
        write_report(
            ds, path, quality, movie=m, limits=limits, max_bytes=max_bytes, title=title,
            inputs={"result": str(result), "movie": str(movie) if movie else None},
            progress=run.progress, source=result, allow_pickle=trust_pickle,
        )  # fmt: skip
    out.print(f"{_count(ds.sizes['roi'], 'ROI')} -> {path} (quality: {quality})")
