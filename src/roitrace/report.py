"""The quality report: one self-contained HTML page per recording, and the
``quality_control.json`` that scripts read beside it.

The page needs no server and no network: its script, style, images and data are all
inside the file, so it opens from ``file://`` on a laptop or a cluster's file share.
It is drawn by a small hand-written canvas renderer (``_report/report.js``) rather
than a plotting library: plotly.js alone is 3.5 MB and bokeh's scripts 1 MB, while
thousands of sparklines and one full-session panel need only lines on a canvas, and
every byte left over goes to the traces.

Traces are stored as 16-bit codes (each ROI and trace scaled to its own range), one
value per frame when the size budget allows it, else the minimum and maximum of each
run of ``k`` frames (so that no transient is lost when drawn), gzip-compressed; the
page inflates them with the browser's ``DecompressionStream``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import html
import io
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import OutputError, ParameterError, ResultNotFoundError
from .quality import FLAGS, THRESHOLDS, evaluate, result_rings, saturation_level, write_quality
from .result import (
    CENTROID_X,
    CENTROID_Y,
    NEUROPIL_CONVERGED,
    ROI,
    TRACE_VARS,
    result_frame_rate,
    result_frame_shape,
    result_parameters,
    result_rois,
)

__all__ = ["QUALITY_NAME", "report"]

#: The name of the quality-control file written beside a report.
QUALITY_NAME = "quality_control.json"
#: Projections shown when the movie is given, in this order.
PROJECTIONS = ("mean", "std", "max", "correlation")
_STEPS = sorted({max(1, round(1.2**i)) for i in range(80)})


def report(
    result: Any,
    path: str | os.PathLike,
    *,
    movie: Any = None,
    quality: str | os.PathLike | None = None,
    max_mb: float = 20.0,
    title: str | None = None,
    allow_pickle: bool = False,
    progress: bool = False,
    **thresholds: float,
) -> Path:
    """Write a self-contained HTML quality report of an extraction, and its
    ``quality_control.json``.

    Parameters
    ----------
    result : xarray.Dataset or path
        An :func:`roitrace.extract` result, or a file :func:`roitrace.load` reads
        (``.nc``, ``.nwb``, a suite2p folder).
    path : str or path-like
        The report, ending in ``.html``. It is written atomically (a temporary name,
        then a rename) and never over one of the inputs.
    movie : Movie, (T, Y, X) array_like or path, optional
        The movie: its mean, std, max and correlation images are shown under the
        ROIs (one pass over it), and saturated pixels are flagged. Without it the
        ROIs are drawn on their footprints.
    quality : path, optional
        Where the quality-control document goes; default ``quality_control.json``
        beside the report. One that an other report wrote is not replaced.
    max_mb : float
        The most megabytes the page may take; traces are shown as the minimum and
        maximum of runs of frames when every frame would not fit.
    title : str, optional
        The page's title; default the recording's source.
    allow_pickle : bool
        Let a suite2p folder's pickled ``ops.npy`` give the frame rate.
    progress : bool
        Show a progress bar while the movie is read.
    **thresholds : float
        The quality rules' thresholds (:func:`roitrace.quality.quality_control`):
        ``min_snr``, ``max_negative``, ``min_ring_fraction``, ``min_f0_noise``.

    Returns
    -------
    path : Path
        The report; the quality-control file's path is
        ``roitrace.report`` 's ``quality`` (default beside it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import roitrace as rt
    >>> movie = np.random.default_rng(0).poisson(100, (50, 20, 20)).astype(np.uint16)
    >>> mask = np.zeros((20, 20), bool); mask[8:12, 8:12] = True
    >>> ds = rt.extract(movie, mask, neuropil={"gap": 1, "width": 2})
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rt.report(ds, folder / "report.html", movie=movie).name
    'report.html'
    >>> sorted(p.name for p in folder.iterdir())
    ['quality_control.json', 'report.html']
    """
    from .quality import check_thresholds

    unknown = sorted(set(thresholds) - set(THRESHOLDS))
    if unknown:
        raise ParameterError(
            f"report() got unknown keyword(s) {', '.join(unknown)}; the thresholds are "
            f"{', '.join(THRESHOLDS)}"
        )
    limits = {**THRESHOLDS, **check_thresholds(**thresholds)}
    max_bytes = check_max_mb(max_mb)
    result_path = None
    if not _is_dataset(result):
        result_path = Path(result)
        if not result_path.exists():
            raise ResultNotFoundError(f"{result_path}: no such file or folder")
    m = None
    if movie is not None:  # a missing or unreadable movie is said before the outputs
        from .movie import as_movie

        m = as_movie(movie)
    path, quality = check_report_paths(
        path, quality, inputs=[("the result", result_path), ("the movie", movie)]
    )
    ds = _load(result_path, allow_pickle) if result_path is not None else result
    return write_report(
        ds, path, quality, movie=m, limits=limits, max_bytes=max_bytes, title=title,
        inputs={"result": str(result_path) if result_path else None,
                "movie": _movie_name(movie)},
        progress=progress, source=result_path, allow_pickle=allow_pickle,
    )  # fmt: skip


def check_report_paths(
    path: str | os.PathLike,
    quality: str | os.PathLike | None,
    *,
    inputs: list[tuple[str, Any]],
    name: str = "path",
    quality_name: str = "quality",
) -> tuple[Path, Path]:
    """Refuse, before any work, a report or quality file that is an input or cannot
    be written, a report not ending in ``.html``, and a ``quality_control.json`` that
    belongs to another report. Returns both paths."""
    from ._atomic import check_not_input, check_writable

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"{name} {path}: a report is an HTML file; end its name in .html")
    quality = Path(quality) if quality is not None else path.with_name(QUALITY_NAME)
    if quality.suffix.lower() != ".json":
        raise ParameterError(
            f"{quality_name} {quality}: the quality file is JSON; end its name in .json"
        )
    if os.path.abspath(quality) == os.path.abspath(path):
        raise ParameterError(f"{quality_name} {quality} is the report {path} itself")
    named = [(what, p) for what, p in inputs if isinstance(p, str | os.PathLike)]
    for out, label in ((path, name), (quality, quality_name)):
        check_not_input(out, named, name=label)
        check_writable(out, name=label)
    _check_quality_owner(quality, path, quality_name)
    return path, quality


def _check_quality_owner(quality: Path, report_path: Path, quality_name: str) -> None:
    if not quality.is_file():
        return
    try:
        owner = json.loads(quality.read_text(encoding="utf-8")).get("report")
    except (OSError, ValueError, AttributeError):
        owner = None
    if owner is None:
        raise OutputError(
            f"{quality} exists and was not written by a roitrace report; give the quality "
            f"file another path ({quality_name}) or move that file away"
        )
    if Path(owner).name != report_path.name and (quality.parent / Path(owner).name).exists():
        raise OutputError(
            f"{quality} belongs to the report {owner}, not to {report_path.name}; give "
            f"this report's quality file its own path ({quality_name}), e.g. "
            f"{report_path.stem}.{QUALITY_NAME}"
        )


def write_report(
    ds: Any,
    path: Path,
    quality: Path,
    *,
    movie: Any = None,
    limits: dict[str, float] | None = None,
    max_bytes: int = 20_000_000,
    title: str | None = None,
    inputs: dict[str, Any] | None = None,
    progress: bool = False,
    source: Path | None = None,
    allow_pickle: bool = False,
) -> Path:
    """Write the report and quality file (paths already checked by
    :func:`check_report_paths`); ``source`` is the result's file or folder."""
    from ._atomic import write_bytes

    rois = _rois_of(ds, source, allow_pickle)
    rings = result_rings(ds, rois) if rois is not None else None
    images: dict[str, np.ndarray] = {}
    saturation = None
    if movie is not None:
        from .projection import projections

        _check_movie(movie, ds)
        images = projections(movie, PROJECTIONS, progress=progress)
        saturation = saturation_level(movie.dtype)
    from ._progress import status

    with status("quality rules", show=progress):
        qc = evaluate(
            ds, limits, max_image=images.get("max"), saturation=saturation,
            movie_name=(inputs or {}).get("movie"), rois=rois,
        )  # fmt: skip
    qc["report"] = path.name
    with status("packing the traces into the page", show=progress):
        page = render(
            ds, rois, rings, images, qc, max_bytes=max_bytes, title=title, inputs=inputs,
            quality_name=quality.name,
        )  # fmt: skip
    write_quality(qc, quality)
    write_bytes(path, page.encode("utf-8"))
    return path


def _rois_of(ds: Any, source: Path | None, allow_pickle: bool) -> Any:
    """The result's ROIs: its pixel table, or a suite2p folder's ``stat.npy``; None
    (warned: the page then shows no image of them) when it holds neither."""
    from ._warnings import warn_user
    from .errors import ResultError

    try:
        return result_rois(ds)
    except ResultError:
        pass
    if source is not None and source.is_dir():
        if not allow_pickle:
            warn_user(
                f"{source}: a suite2p folder keeps its ROIs' pixels in stat.npy, a pickle; "
                "the report shows no ROI image; pass allow_pickle=True if you trust the folder"
            )
            return None
        from .io import read_rois

        rois = read_rois(source, allow_pickle=True)
        if rois.ids == ds[ROI].values.tolist():
            return rois
    warn_user(
        "this result holds no ROI pixels (a CSV table, or ROIs that do not match its "
        "traces): the report shows traces, metrics and flags, but no image of the ROIs"
    )
    return None


# -- the page -----------------------------------------------------------------------------
def render(
    ds: Any,
    rois: Any,
    rings: list[np.ndarray] | None,
    images: dict[str, np.ndarray],
    qc: dict[str, Any],
    *,
    max_bytes: int,
    title: str | None = None,
    inputs: dict[str, Any] | None = None,
    quality_name: str = QUALITY_NAME,
) -> str:
    """The report's HTML text."""
    shape = result_frame_shape(ds) or (
        rois.frame_shape if rois is not None
        else next(iter(images.values())).shape if images else None
    )  # fmt: skip
    pictures = {k: _png(v) for k, v in images.items()}
    if not pictures and rois is not None:
        pictures["footprints"] = _png(_footprints(rois, shape))
    geometry = base64.b64encode(_geometry(ds, rois, rings, shape)).decode("ascii")
    title = title or _default_title(_source_name(ds), (inputs or {}).get("result"))
    meta = _meta(ds, rois, qc, shape, title, inputs, rings is not None)
    meta["report"]["quality"] = quality_name
    names = [v for v in TRACE_VARS if v in ds.data_vars and ds[v].dims == (ROI, "time")]
    meta["traces"] = {"names": names, "scales": [_scale(ds[v]) for v in names]}
    page_title = title

    def page(traces: str) -> str:
        return _fill(
            _TEMPLATE(),
            TITLE=html.escape(f"{page_title} — roitrace report"),
            STYLE=_asset("report.css"),
            SCRIPT=_asset("report.js"),
            META=_script_json(meta),
            IMAGES=_script_json(pictures),
            TRACES=traces,
            GEOMETRY=geometry,
        )

    # everything but the traces' data, with room for their steps
    fixed = len(page(_trace_scripts(names, [""] * len(names))).encode("utf-8"))
    fixed += 64 * len(names)
    budget = (max_bytes - fixed) * 3 // 4  # base64 takes 4 characters per 3 bytes
    packed = _pack_traces(ds, names, meta["traces"]["scales"], budget)
    if packed is None:
        n, T = int(ds.sizes[ROI]), int(ds.sizes["time"])
        least = sum(_raw_size(n, T, max(_STEPS)) for _ in names) * 4 // 3 + fixed
        raise ParameterError(
            f"max_mb={max_bytes / 1e6:g} leaves no room for the traces of {n} ROIs beside "
            f"the rest of the page ({fixed / 1e6:.2f} MB); give max_mb={least / 1e6 + 0.05:.2f} "
            "or more"
        )
    meta["traces"]["vars"] = [info for info, _ in packed]
    data = [base64.b64encode(blob).decode("ascii") for _, blob in packed]
    return page(_trace_scripts(names, data))


def _trace_scripts(names: list[str], data: list[str]) -> str:
    # one element per trace: a JavaScript string holds at most 2**29 characters
    return "\n".join(
        f'<script type="application/octet-stream" id="rt-trace-{name}">{text}</script>'
        for name, text in zip(names, data, strict=True)
    )


def _default_title(source: str | None, result: str | None) -> str:
    """The result's file name (reports of one movie differ by it), then the movie's."""
    name = Path(result).name if result else None
    parts = [p for p in (name, source) if p]
    return " — ".join(parts) if parts else "roitrace report"


def _TEMPLATE() -> str:
    return _asset("report.html")


def _asset(name: str) -> str:
    return resources.files("roitrace").joinpath("_report", name).read_text(encoding="utf-8")


def _fill(template: str, **parts: str) -> str:
    # one pass, so that no inserted text is searched for a further placeholder
    pieces = template.split("@@")
    return "".join(parts[p] if i % 2 else p for i, p in enumerate(pieces))


def _script_json(obj: Any) -> str:
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    # inside <script>, "</" could end the element and "<!--" start a comment
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _meta(ds, rois, qc, shape, title, inputs, has_rings) -> dict[str, Any]:
    metrics = sorted({k for r in qc["rois"] for k in r["metrics"]}, key=_metric_order)
    columns = {k: [r["metrics"].get(k) for r in qc["rois"]] for k in metrics}
    flag_names = list(FLAGS)
    return {
        "recording": {**qc["recording"], "source": _source_name(ds)},
        "report": {
            "roitrace_version": __version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "inputs": inputs or {},
            "title": title,
        },
        "frame_shape": list(shape) if shape else None,
        "frame_rate": result_frame_rate(ds),
        "n_frames": int(ds.sizes["time"]),
        "ids": [r["id"] for r in qc["rois"]],
        "names": [r["name"] for r in qc["rois"]],
        "centroids": [
            [_round(v) for v in ds[CENTROID_Y].values] if CENTROID_Y in ds.coords else [],
            [_round(v) for v in ds[CENTROID_X].values] if CENTROID_X in ds.coords else [],
        ],
        "metrics": columns,
        "flag_names": flag_names,
        "flag_rules": {k: qc["flags"][k] for k in flag_names},
        "flags": [[flag_names.index(f) for f in r["flags"]] for r in qc["rois"]],
        "thresholds": qc["thresholds"],
        "rings": has_rings,
        "geometry": rois is not None,
        "estimated_r": NEUROPIL_CONVERGED in ds.coords,
    }


_METRIC_ORDER = ("peak_snr", "snr", "skewness", "dff_peak", "noise", "npix", "npix_neuropil",
                 "neuropil_factor", "f0_min", "negative_fraction")  # fmt: skip


def _metric_order(name: str) -> tuple[int, str]:
    return (_METRIC_ORDER.index(name) if name in _METRIC_ORDER else len(_METRIC_ORDER), name)


def _round(v: Any) -> float | None:
    v = float(v)
    return round(v, 2) if math.isfinite(v) else None


def _source_name(ds: Any) -> str | None:
    src = ds.attrs.get("source")
    return str(src) if src not in (None, "") else None


# -- images -------------------------------------------------------------------------------
def _png(image: np.ndarray) -> str:
    """An image as a grey 8-bit PNG data URL, contrast from its 0.5th to 99.5th
    percentile (a few hot pixels do not darken the rest)."""
    from PIL import Image

    x = np.asarray(image, np.float64)
    finite = np.isfinite(x)
    lo, hi = np.percentile(x[finite], [0.5, 99.5]) if finite.any() else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1.0
    grey = np.clip((np.where(finite, x, lo) - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _footprints(rois: Any, shape: tuple[int, int]) -> np.ndarray:
    """Each ROI's pixel weights, scaled to its own maximum, painted on a dark frame."""
    image = np.zeros(shape, np.float32)
    for r in rois:
        w = np.ones(r.y.size) if r.weights is None else np.abs(np.asarray(r.weights, float))
        top = w.max() if w.size else 1.0
        image[r.y, r.x] = np.maximum(image[r.y, r.x], 0.35 + 0.65 * w / (top or 1.0))
    return image


def _check_movie(movie: Any, ds: Any) -> None:
    """The movie must be the one the result was extracted from: the same frame size,
    and the frames the result's time points came from."""
    shape = result_frame_shape(ds)
    frame = tuple(movie.shape[1:])
    if shape is not None and tuple(shape) != frame:
        raise ParameterError(
            f"the movie's frames are {frame[0]} x {frame[1]} pixels, the result's "
            f"{shape[0]} x {shape[1]}; give the movie the result was extracted from"
        )
    n_movie, n_time = int(movie.shape[0]), int(ds.sizes["time"])
    frames = np.asarray(ds["frame"].values) if "frame" in ds.coords else np.arange(n_time)
    whole = result_parameters(ds).get("frames") in (None, "all")
    last = int(frames.max()) + 1 if frames.size else 0
    if last > n_movie or (whole and n_movie != n_time):
        raise ParameterError(
            f"the movie has {n_movie} frames, but the result was extracted from "
            f"{n_time if whole else f'frames up to {last}'} of its movie; give the movie the "
            "result was extracted from"
        )


# -- ROI geometry: runs of pixels along rows ----------------------------------------------
def _geometry(ds: Any, rois: Any, rings: list[np.ndarray] | None, shape: tuple[int, int]) -> bytes:
    """Cells then rings as runs ``(y, x0, length)`` of uint16, each group preceded by
    its run count (uint32 as two uint16), gzip-compressed."""
    X = shape[1] if shape else 1
    parts: list[np.ndarray] = []
    for r in rois if rois is not None else ():
        parts.append(_runs(np.asarray(r.y, np.int64) * X + np.asarray(r.x, np.int64), X))
    n = int(ds.sizes[ROI])
    parts += [np.zeros((0, 3), np.int64)] * (n - len(parts))
    for k in range(n):
        flat = rings[k] if rings is not None else np.zeros(0, np.int64)
        parts.append(_runs(np.asarray(flat, np.int64), X))
    out = []
    for runs in parts:
        n = runs.shape[0]
        out.append(np.array([n & 0xFFFF, n >> 16], np.uint16))
        out.append(runs.astype(np.uint16).ravel())
    data = np.concatenate(out) if out else np.zeros(0, np.uint16)
    return gzip.compress(data.astype("<u2").tobytes(), compresslevel=6, mtime=0)


def _runs(flat: np.ndarray, X: int) -> np.ndarray:
    if not flat.size:
        return np.zeros((0, 3), np.int64)
    flat = np.unique(flat)
    y, x = np.divmod(flat, X)
    start = np.ones(flat.size, bool)
    start[1:] = (y[1:] != y[:-1]) | (x[1:] != x[:-1] + 1)
    first = np.flatnonzero(start)
    length = np.diff(np.append(first, flat.size))
    return np.stack([y[first], x[first], length], axis=1)


# -- traces -------------------------------------------------------------------------------
#: How much of the traces' budget each trace may take, relative to the others: dF/F
#: (what cells are chosen by) most, then the corrected and raw traces.
_WEIGHTS = {"dff": 4.0, "F_corrected": 2.0, "F": 2.0}


def _pack_traces(
    ds: Any, names: list[str], scales: list[list[float]], budget: int
) -> list[tuple[dict[str, Any], bytes]] | None:
    """Each trace as gzip-compressed codes at the finest step its share of the budget
    (bytes) allows: ``[(info, data), ...]`` in the order of ``names``, or None.

    The traces that compress best (spikes, F0, calcium) go first and leave what they
    do not use to the others; each takes its weight's share of what is left."""
    order = sorted(names, key=lambda v: _WEIGHTS.get(v, 1.0))
    left, packed = budget, {}
    for k, name in enumerate(order):
        weights = [_WEIGHTS.get(v, 1.0) for v in order[k:]]
        share = int(left * weights[0] / sum(weights))
        fit = _fit(ds[name], scales[names.index(name)], share)
        if fit is None:
            return None
        packed[name] = fit
        left -= len(fit[1])
    return [packed[name] for name in names]


def _fit(var: Any, scale: list[float], share: int) -> tuple[dict[str, Any], bytes] | None:
    """One trace at the finest step that fits ``share`` bytes once compressed."""
    n, T = int(var.sizes[ROI]), int(var.sizes["time"])
    raw = {k: _raw_size(n, T, k) for k in _STEPS}
    fits = [k for k in _STEPS if raw[k] <= share]
    if not fits:
        return None
    # the finest step that fits uncompressed is sure to fit; compression may allow a
    # finer one: guess it from the ratio seen, then check
    step = fits[0]
    data = _encode(var, scale, step)
    ratio = len(data) / max(raw[step], 1)
    for k in reversed([k for k in _STEPS if k < step]):
        if raw[k] * ratio * 1.1 > share:
            continue
        finer = _encode(var, scale, k)
        if len(finer) <= share:
            data, step = finer, k
        break
    info = {"step": step, "points": math.ceil(T / step), "pairs": step > 1,
            "bits": 16 if step == 1 else 8}  # fmt: skip
    return info, data


def _raw_size(n: int, T: int, step: int) -> int:
    """Bytes of one trace's codes: 16 bits a frame, or an 8-bit (min, max) pair per step."""
    if step == 1:
        return 2 * n * T
    return 2 * n * math.ceil(T / step)


_BLOCK = 256  # ROIs converted at once: bounded memory for 50,000-frame traces


def _blocks(var: Any):
    for start in range(0, int(var.sizes[ROI]), _BLOCK):
        yield start, np.asarray(var[start : start + _BLOCK].values, np.float64)


def _scale(var: Any) -> list[float]:
    """``[lo0, hi0, lo1, hi1, ...]``: each ROI's finite range (0, 1 when it has none)."""
    out: list[float] = []
    for _, x in _blocks(var):
        finite = np.isfinite(x)
        lo = np.where(finite, x, np.inf).min(axis=1, initial=np.inf)
        hi = np.where(finite, x, -np.inf).max(axis=1, initial=-np.inf)
        ok = np.isfinite(lo)
        lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 1.0)
        out.extend(v for pair in zip(lo.tolist(), hi.tolist(), strict=True) for v in pair)
    return out


def _encode(var: Any, scale: list[float], step: int) -> bytes:
    """A trace's codes over each ROI's own [lo, hi], gzip-compressed: uint16 per frame
    (0..65534, 65535 for NaN), or with ``step > 1`` the uint8 (min, max) of each run of
    ``step`` frames (0..254, 255 for NaN): a display envelope, its precision 1/254 of the
    ROI's range."""
    pairs = np.asarray(scale, np.float64).reshape(-1, 2)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as out:
        for start, block in _blocks(var):
            lo, hi = pairs[start : start + len(block)].T
            out.write(_codes(block, step, lo, hi))
    return buf.getvalue()


def _codes(x: np.ndarray, step: int, lo: np.ndarray, hi: np.ndarray) -> bytes:
    top, dtype = (65534, "<u2") if step == 1 else (254, "u1")
    finite = np.isfinite(x)
    span = np.where(hi > lo, hi - lo, 1.0)
    if step > 1:
        n, T = x.shape
        xp = np.pad(np.where(finite, x, np.nan), ((0, 0), (0, (-T) % step)),
                    constant_values=np.nan).reshape(n, -1, step)  # fmt: skip
        ok = np.isfinite(xp)
        mins = np.where(ok, xp, np.inf).min(axis=2)
        maxs = np.where(ok, xp, -np.inf).max(axis=2)
        none = ~ok.any(axis=2)
        mins[none] = np.nan
        maxs[none] = np.nan
        x = np.stack([mins, maxs], axis=2).reshape(n, -1)
    with np.errstate(invalid="ignore"):
        codes = np.rint((x - lo[:, None]) / span[:, None] * top)
    codes = np.where(np.isfinite(codes), np.clip(codes, 0, top), top + 1)
    return codes.astype(dtype).tobytes()


# -- inputs -------------------------------------------------------------------------------
def _is_dataset(obj: Any) -> bool:
    return hasattr(obj, "data_vars") and hasattr(obj, "sizes")


def _load(path: Path, allow_pickle: bool) -> Any:
    from .save import load

    return load(path, allow_pickle=allow_pickle)


def _movie_name(movie: Any) -> str | None:
    if isinstance(movie, str | os.PathLike):
        return str(movie)
    path = getattr(movie, "path", None)
    return str(path) if path else None


def check_max_mb(max_mb: Any) -> int:
    """The page's size budget in bytes, from megabytes; ParameterError unless positive."""
    try:
        value = float(max_mb)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"max_mb must be a positive number of megabytes, got {max_mb!r}")
    return int(value * 1e6)
