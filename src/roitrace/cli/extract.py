"""``roitrace extract``: one trace per cell, from ROI files or a threshold."""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ParameterError
from ..io import writable_suffixes
from ._app import app, handle_errors, out
from ._options import (
    AxesOpt,
    BaselineMethod,
    BlockOpt,
    ChannelOpt,
    ChunkOpt,
    DatasetOpt,
    FramesOpt,
    How,
    KeepTruncatedOpt,
    KOpt,
    MaxSizeOpt,
    MethodOpt,
    MinSizeOpt,
    Model,
    MovieArg,
    NoProgress,
    OffsetOpt,
    Overlap,
    Penalty,
    ProjOpt,
    QcOpt,
    QOpt,
    RateOpt,
    SchedulerOpt,
    ThreadsOpt,
    ThresholdOpt,
    WorkersOpt,
    _check_outputs,
    _cluster,
    _count,
    _execution,
    _find_rois,
    _not_applicable,
    _open,
    _output,
    _projection_kind,
    _threshold_mask,
    _threshold_options,
)
from ._words import _speaking

#: Set by ``roitrace batch`` around each row: ``check_only`` stops after the checks made
#: before the movie is read; ``provenance`` is added to the output's attributes; the
#: counts (``rois``, ``frames``) are put back in it, and nothing is printed.
batch_row: ContextVar[dict[str, Any] | None] = ContextVar("batch_row", default=None)


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
        str | None,
        typer.Option(
            help="r in F_corrected = F - r * Fneu: a number (0.7), or estimate, smoothness, "
            "regression to estimate r per ROI."
        ),
    ] = None,
    overlap: Annotated[
        Overlap, typer.Option(help="Pixels shared by ROIs: keep in each, or drop.")
    ] = Overlap.keep,
    baseline: Annotated[
        BaselineMethod | None,
        typer.Option(
            help="F0 of dF/F: a percentile of the whole trace (default), or a running "
            "baseline (suite2p's maximin, the Allen Institute's inactive_median)."
        ),
    ] = None,
    baseline_q: Annotated[
        float | None, typer.Option(help="Percentile for --baseline (8; inactive_median: 10).")
    ] = None,
    baseline_window: Annotated[
        str | None,
        typer.Option(
            help="Running window: frames, or seconds such as 60s (maximin and "
            "rolling_percentile: 60s; inactive_median: 600s)."
        ),
    ] = None,
    baseline_sigma: Annotated[
        float | None, typer.Option(help="--baseline maximin: Gaussian sigma in frames (10).")
    ] = None,
    baseline_noise_window: Annotated[
        str | None,
        typer.Option(
            help="--baseline inactive_median: the noise's median filter, frames or s (3.333s)."
        ),
    ] = None,
    deconvolve: Annotated[
        bool, typer.Option("--deconvolve", help="Infer spikes from dF/F (OASIS).")
    ] = False,
    deconvolve_model: Annotated[
        Model | None, typer.Option(help="--deconvolve: AR model of the decay (ar1).")
    ] = None,
    deconvolve_penalty: Annotated[
        Penalty | None, typer.Option(help="--deconvolve: l1 (default) or l0 (sparser).")
    ] = None,
    deconvolve_tau: Annotated[
        str | None,
        typer.Option(help="--deconvolve: decay time in s (ar2: RISE,DECAY); default estimated."),
    ] = None,
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
    report: Annotated[
        Path | None,
        typer.Option(help="HTML quality report (quality_control.json beside it)."),
    ] = None,
    qc: QcOpt = None,
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
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    threads: ThreadsOpt = None,
    no_progress: NoProgress = False,
) -> None:
    """Extract one trace per cell: from ROI files, or by thresholding a projection."""
    from ..extract import extract as run_extract
    from ..save import save

    output = _output(output_text, _TRACE_OUT, "traces", folder=True, movie=movie)
    # a suite2p folder keeps its trailing slash: that is how save() knows it is one
    target = output if output.suffix.lower() in _TRACE_OUT else f"{output}{os.sep}"
    if figures is not None and Path(os.path.abspath(figures)) == Path(os.path.abspath(output)):
        raise ParameterError(
            f"--figures {figures} is the -o/--output folder: the figures would mix with the "
            "traces' files; give the figures a folder of their own"
        )
    if report is None:
        _not_applicable({"qc": qc}, "without --report")
    nwb = _nwb_options(output, subject_id, species, sex, age, indicator, location)
    rings = _neuropil_options(
        neuropil_gap, neuropil_width, neuropil_exclude_gap, neuropil_min_pixels, neuropil_factor
    )
    _check_aggregation(how, proportion)
    f0 = _baseline_options(
        baseline, baseline_q, baseline_window, baseline_sigma, baseline_noise_window
    )
    spikes = _deconvolve_options(deconvolve, deconvolve_model, deconvolve_penalty, deconvolve_tau)
    source = _CellSource(
        rois, auto, projection_kind, min_size, max_size, figures is not None,
        suite2p=(trust_pickle, all_rois), plane_segmentation=plane_segmentation,
        threshold=dict(value=threshold, method=method, q=q, k=k, block_size=block_size,
                       offset=offset),
    )  # fmt: skip
    _check_outputs(
        movie, [("-o/--output", target, "traces"), ("--figures", figures, "folder")], rois
    )
    report_paths = _check_report(report, qc, movie, rois, output)
    row = batch_row.get()
    if row is not None and row.get("check_only"):
        return
    m = _open(movie, dataset, axes, channel, frame_rate, keep_truncated)
    if output.suffix.lower() == ".nwb" and not m.frame_rate:
        raise ParameterError(
            f"{output}: NWB needs the time of every frame, and {movie} records no frame "
            "rate; pass --frame-rate (frames per second)"
        )
    client = _cluster(workers, scheduler, threads)
    run = _execution(frames, chunk_frames, no_progress, client, threads)
    _check_windows(f0, spikes, m, run, movie)
    cells = source.cells(m, axes, run)
    with _speaking(method="--how"):
        ds = run_extract(
            m,
            cells,
            method=how.value,
            neuropil=rings["neuropil"],
            neuropil_factor=rings["factor"],
            proportion=proportion,
            overlap=overlap.value,
            baseline=f0,
            deconvolve=spikes,
            execution=run,
        )
    ds.attrs.update(source.provenance)
    if row is not None:
        ds.attrs.update(row.get("provenance", {}))
    save(ds, target, **nwb)
    if row is not None:  # a row of roitrace batch: its summary says what was done
        row.update(rois=int(ds.sizes["roi"]), frames=int(ds.sizes["time"]))
    else:
        out.print(
            f"{_count(ds.sizes['roi'], 'ROI')}, {_count(int(ds['npix'].sum()), 'pixel')}; "
            f"{_count(ds.sizes['time'], 'frame')} -> {output}"
        )
    if figures is not None:
        for f in _extract_figures(
            ds, source.projection(m, run), rings["neuropil"], figures, projection_name=source.kind
        ):
            if row is None:
                out.print(f"  figure: {f}")
    if report_paths is not None:
        _write_report(ds, report_paths, m, movie, output, run)
        if row is None:
            out.print(f"  report: {report_paths[0]} (quality: {report_paths[1]})")


def _check_report(report, qc, movie: Path, rois, output: Path):
    """The report's and quality file's paths, checked before the movie is read."""
    if report is None:
        return None
    from ..report import check_report_paths

    if os.path.abspath(report) == os.path.abspath(output):
        raise ParameterError(f"--report {report} is the -o/--output file; give it its own name")
    inputs = [("the input movie", movie), ("the ROI source --rois", rois),
              ("the -o/--output traces", output)]  # fmt: skip
    return check_report_paths(report, qc, inputs=inputs, name="--report", quality_name="--qc")


def _write_report(ds, paths, m, movie: Path, output: Path, run) -> None:
    from ..report import write_report

    write_report(
        ds, paths[0], paths[1], movie=m, progress=run.progress,
        inputs={"result": str(output), "movie": str(movie)},
    )  # fmt: skip


def _check_aggregation(how: Any, proportion: float | None) -> None:
    if how is not How.trimmed_mean:
        _not_applicable({"proportion": proportion}, f"to --how {how.value}")
    elif proportion is not None:
        from ..aggregate import check_proportion

        check_proportion(proportion)


class _CellSource:
    """Where extract's cells come from: a ROI file (--rois), or a threshold of a
    projection (one cell, or one per component with --auto). Options that do not
    apply to the source given are refused here, before any work."""

    def __init__(
        self,
        rois: Path | None,
        auto: bool,
        projection_kind: Any,
        min_size: int | None,
        max_size: int | None,
        figures: bool,
        *,
        suite2p: tuple[bool, bool],
        plane_segmentation: str | None,
        threshold: dict[str, Any],
    ) -> None:
        from .._validate import size_range

        self.rois, self.auto, self.min_size, self.max_size = rois, auto, min_size, max_size
        self.suite2p, self.plane_segmentation = suite2p, plane_segmentation
        self.kind = _projection_kind(projection_kind).value
        self._projection: Any = None
        self.provenance: dict[str, Any] = {"command": "extract"}
        sizes = {"min_size": min_size, "max_size": max_size}
        if rois is not None:
            given = {"auto": auto, **{k: v for k, v in threshold.items()}, **sizes}
            _not_applicable(
                {("threshold" if k == "value" else k): v for k, v in given.items()},
                "with --rois, which gives the cells",
            )
            if not figures:
                _not_applicable(
                    {"projection": projection_kind},
                    "with --rois (only to the --figures background)",
                )
            self.tparams = None
            return
        trust_pickle, all_rois = suite2p
        _not_applicable(
            {
                "trust_pickle": trust_pickle,
                "all_rois": all_rois,
                "plane_segmentation": plane_segmentation,
            },
            "without --rois",
        )
        if not auto:
            _not_applicable(sizes, "without --auto (the thresholded pixels are one cell)")
        self.tparams = _threshold_options(
            threshold["value"], threshold["method"], threshold["q"], threshold["k"],
            threshold["block_size"], threshold["offset"], auto=auto,
        )  # fmt: skip
        size_range(min_size, max_size)

    def projection(self, m: Any, run: Any) -> Any:
        if self._projection is None:
            from ..projection import projection

            with _speaking(method="--projection"):
                self._projection = projection(m, self.kind, execution=run)
        return self._projection

    def cells(self, m: Any, axes: str | None, run: Any) -> Any:
        """The ROI set, or the one cell's mask; what was done goes to provenance."""
        if self.rois is not None:
            self.provenance["rois"] = str(self.rois)
            return _read_rois_for(m, self.rois, axes, *self.suite2p, self.plane_segmentation)
        proj = self.projection(m, run)
        self.provenance.update(
            projection=self.kind, auto=self.auto, threshold=json.dumps(self.tparams)
        )
        if not self.auto:
            return _threshold_mask(proj, self.tparams)
        cells, chosen = _find_rois(proj, self.tparams, self.min_size, self.max_size)
        self.provenance["min_size"] = chosen
        if self.max_size is not None:
            self.provenance["max_size"] = self.max_size
        return cells


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
    from .._validate import check_subject
    from ..options import NWBImagingPlane, NWBSession

    subject = {n: fields[n] for n in ("subject_id", "species", "sex", "age") if fields[n]}
    check_subject(subject or None)
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
    from .._validate import integer

    integer("--neuropil-gap", gap, low=0)
    integer("--neuropil-width", width, low=1)
    if exclude_gap is not None:
        integer("--neuropil-exclude-gap", exclude_gap, low=0)
    if min_pixels is not None:
        integer("--neuropil-min-pixels", min_pixels, low=1)
    if factor is not None:
        factor = _factor(factor)
    ring = {"gap": gap, "width": width, "exclude_gap": exclude_gap or 0, "min_pixels": min_pixels}
    return {"neuropil": ring, "factor": factor}


def _baseline_options(method, q, window, sigma, noise_window) -> Any:
    """--baseline and its options as a Baseline, checked before the movie is read."""
    from ..options import Baseline

    if method is None:
        _not_applicable(
            {
                "baseline_window": window,
                "baseline_sigma": sigma,
                "baseline_noise_window": noise_window,
            },
            "without --baseline (the default F0 is a percentile of the whole trace)",
        )
    with _speaking(q="--baseline-q", method="--baseline"):
        f0 = Baseline(
            method=method.value if method is not None else "percentile",
            q=q,
            window=_frames_or_text(window),
            sigma=sigma,
            noise_window=_frames_or_text(noise_window),
        )
    return None if f0 == Baseline() else f0


def _check_windows(f0: Any, spikes: Any, m: Any, run: Any, movie: Path) -> None:
    """The baseline's windows and the deconvolution's time constant against the movie's
    frame rate and frames, before the pass (in this command's words: extract's own
    ``method`` is --how)."""
    from ..engine import n_selected, resolve_frames
    from ..options import Baseline

    n = n_selected(resolve_frames(m.n_frames, run.frames))
    with _speaking(method="--baseline", q="--baseline-q"):
        (f0 or Baseline()).in_frames(m.frame_rate, n)
    if spikes is not None and spikes.tau is not None and not m.frame_rate:
        raise ParameterError(
            f"--deconvolve-tau is in seconds and {movie} records no frame rate: pass "
            "--frame-rate (frames per second), or leave --deconvolve-tau out to estimate it"
        )


def _frames_or_text(text: str | None) -> int | str | None:
    """A window given as frames (``900``) or seconds (``60s``)."""
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


def _deconvolve_options(on: bool, model, penalty, tau: str | None) -> Any:
    """--deconvolve and its options, checked before the movie is read."""
    if not on:
        _not_applicable(
            {"deconvolve_model": model, "deconvolve_penalty": penalty, "deconvolve_tau": tau},
            "without --deconvolve",
        )
        return None
    from ..options import Deconvolve

    taus: Any = None
    if tau is not None:
        try:
            values = [float(v) for v in tau.split(",")]
        except ValueError:
            raise ParameterError(
                f"--deconvolve-tau {tau}: give the decay time in seconds, e.g. 0.6 (with "
                "--deconvolve-model ar2: RISE,DECAY, e.g. 0.05,0.6)"
            ) from None
        taus = values[0] if len(values) == 1 else tuple(values)
    with _speaking():
        return Deconvolve(
            model=(model.value if model is not None else "ar1"),
            penalty=(penalty.value if penalty is not None else "l1"),
            tau=taus,
        )


def _factor(text: str) -> float | str:
    """--neuropil-factor: a number, or the name of a method that estimates r per ROI."""
    from .._validate import number
    from ..contamination import NEUROPIL_FACTOR_METHODS

    if text.strip().lower() in NEUROPIL_FACTOR_METHODS:
        return text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(
            f"--neuropil-factor {text}: give a number such as 0.7, or one of "
            f"{', '.join(NEUROPIL_FACTOR_METHODS)} to estimate it per ROI"
        ) from None
    return number("neuropil_factor", value, low=0.0)


def _read_rois_for(m, rois: Path, axes, trust_pickle, all_rois, plane_segmentation):
    """The ROI file's cells, checked against the movie's frames."""
    from ..errors import EmptyMaskError, ShapeMismatchError
    from ..io import formats, read_rois

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
        from ..movie import TIFF_SUFFIXES

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
    from ..plot import extraction_figures

    return extraction_figures(ds, proj, folder, neuropil=npil, **options)
