"""Many recordings, one task each: a manifest of movies and outputs, run as an unattended
job that goes on past a broken recording, skips what is up to date, and ends with a
summary table.

A manifest is a CSV file (a header row, one row per recording; an empty cell gives
nothing), a TOML file (a ``[defaults]`` table and one ``[[recording]]`` table per
recording) or a glob of movie files (``sessions/*/movie.tif``, with ``rois_pattern`` and
``output_pattern`` such as ``{dir}/RoiSet.zip``). Its columns are ``movie``, ``output``
and the options of ``roitrace extract`` by their command-line names (``rois``,
``neuropil_gap`` or ``neuropil-gap``, ``how``, ``frame_rate``...).

Each recording is one task: run whole, here one after another or one per task on a Dask
client. A task that fails (a missing or damaged file, ROIs that do not fit) becomes a
``failed`` record with its one-line reason, and the others go on.

Rerunning: each output records ``batch_key`` in its provenance (its attributes): a
SHA-256 of the movie's and ROI file's paths, sizes and modification times (not their
contents: movies are tens of GB), the options, and roitrace's major.minor version (a new
minor version may change numbers). An output whose key is the new key is ``skipped``
("up to date"); one with another key was made by a batch from other inputs or options
and is made again (replaced atomically); an existing output without a key was not made
by roitrace batch and is never replaced unless ``overwrite=True``. A suite2p folder
output keeps its key in ``roitrace-batch.json`` inside it (its ``ops.npy`` is a pickle).
"""

from __future__ import annotations

import csv
import difflib
import glob
import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._atomic import check_not_input, input_file, write_bytes
from ._version import __version__
from .errors import OutputError, ParameterError, RoitraceError

log = logging.getLogger(__name__)

__all__ = [
    "KEY_ATTR",
    "BatchRecord",
    "Recording",
    "batch",
    "batch_key",
    "read_manifest",
    "run_recordings",
    "write_summary",
]

#: The provenance attribute holding a recording's key (see :func:`batch_key`).
KEY_ATTR = "batch_key"
#: A suite2p folder output's key file (its ops.npy is a pickle, not read back).
FOLDER_KEY_FILE = "roitrace-batch.json"
#: The summary table's columns, in order.
SUMMARY_COLUMNS = ("movie", "status", "reason", "ROIs", "frames", "seconds", "output")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Recording:
    """One recording of a batch, checked and ready to run.

    ``options`` are what the task needs (Python keywords for :func:`batch`, the
    command's arguments for ``roitrace batch``); ``key`` is :func:`batch_key`'s.
    """

    movie: str
    output: str
    options: Any
    key: str
    where: str = ""


@dataclass
class BatchRecord:
    """What became of one recording: ``status`` is ``ok``, ``failed`` or ``skipped``,
    ``reason`` says why (one line; empty for a plain ``ok``)."""

    movie: str
    status: str
    reason: str = ""
    ROIs: int | None = None
    frames: int | None = None
    seconds: float = 0.0
    output: str = ""

    def row(self) -> dict[str, Any]:
        """The record as a summary row (``seconds`` rounded to 0.01 s)."""
        d = asdict(self)
        d["seconds"] = f"{self.seconds:.2f}"
        return {k: "" if v is None else v for k, v in d.items()}


# -- manifests ---------------------------------------------------------------------------
@dataclass
class ManifestRow:
    """One manifest row: where it is (for messages) and its values by column name
    (``-`` written ``_``); CSV values are text, TOML values text, numbers or booleans."""

    where: str
    values: dict[str, Any] = field(default_factory=dict)


def column_name(name: str) -> str:
    """A column's name as the options' Python name: ``--neuropil-gap`` -> ``neuropil_gap``."""
    return name.strip().lstrip("-").replace("-", "_").lower()


def is_glob(manifest: str | os.PathLike) -> bool:
    """Whether ``manifest`` is a glob of movies rather than a CSV or TOML file."""
    text = os.fspath(manifest)
    return bool(_GLOB_CHARS & set(text)) or Path(text).suffix.lower() not in (".csv", ".toml")


def read_manifest(
    manifest: str | os.PathLike,
    *,
    rois_pattern: str | None = None,
    output_pattern: str | None = None,
) -> list[ManifestRow]:
    """The rows of a manifest: a ``.csv`` or ``.toml`` file, or a glob of movies.

    A glob's rows are the matching files, sorted; ``output_pattern`` (needed) and
    ``rois_pattern`` make each row's ``output`` and ``rois`` from ``{dir}`` (the
    movie's folder), ``{stem}`` (its name without suffix) and ``{name}``. A TOML
    file's ``[defaults]`` apply to each ``[[recording]]`` (the recording's own
    values win).

    Raises
    ------
    ParameterError
        A manifest that cannot be read, an empty one, a glob that matches nothing.
    """
    text = os.fspath(manifest)
    if is_glob(text):
        return _glob_rows(text, rois_pattern, output_pattern)
    for option, value in (("rois_pattern", rois_pattern), ("output_pattern", output_pattern)):
        if value is not None:
            raise ParameterError(
                f"{option}= is for a glob of movies; {text} is a manifest file, whose "
                "rows name their own files: leave it out"
            )
    path = Path(text)
    if not path.is_file():
        raise ParameterError(f"manifest {path}: no such file")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"manifest {path} could not be read as UTF-8 text: {exc}") from exc
    rows = _toml_rows(path, raw) if path.suffix.lower() == ".toml" else _csv_rows(path, raw)
    if not rows:
        raise ParameterError(f"manifest {path} has no recordings: add one row per movie")
    for row in rows:  # a manifest's paths are relative to its own folder
        row.values = absolute_paths(row.values, path.parent)
    return rows


#: The columns that hold paths.
PATH_COLUMNS = ("movie", "output", "rois", "figures", "report", "qc")


def absolute_paths(values: Mapping[str, Any], folder: str | os.PathLike = ".") -> dict[str, Any]:
    """``values`` with every path column made absolute, from ``folder``: a task opens
    its files on a cluster's worker, whose current folder is not this one. A
    trailing ``/`` (a folder output) is kept.

    Examples
    --------
    >>> absolute_paths({"movie": "m1/movie.tif", "how": "mean"}, "/data")
    {'movie': '/data/m1/movie.tif', 'how': 'mean'}
    """
    out = dict(values)
    for name in PATH_COLUMNS:
        value = out.get(name)
        if isinstance(value, str) and value.strip():
            slash = "/" if value.endswith(("/", os.sep)) else ""
            out[name] = os.path.abspath(os.path.join(os.fspath(folder), value)) + slash
    return out


def _csv_rows(path: Path, text: str) -> list[ManifestRow]:
    reader = csv.reader(io.StringIO(text))
    lines = [(reader.line_num, r) for r in reader]
    lines = [(n, r) for n, r in lines if any(c.strip() for c in r) and not r[0].startswith("#")]
    if not lines:
        return []
    _, header = lines[0]
    names = [column_name(h) for h in header]
    seen = set()
    for n in names:
        if not n:
            raise ParameterError(f"{path}: the header row has an empty column name")
        if n in seen:
            raise ParameterError(f"{path}: column {n!r} appears twice in the header row")
        seen.add(n)
    rows = []
    for line, cells in lines[1:]:
        if len(cells) > len(names):
            raise ParameterError(
                f"{path} line {line}: {len(cells)} cells but the header has {len(names)} "
                "columns; quote values that hold a comma"
            )
        values = {n: c.strip() for n, c in zip(names, cells, strict=False) if c.strip()}
        rows.append(ManifestRow(f"{path.name} line {line}", values))
    return rows


def _toml_rows(path: Path, text: str) -> list[ManifestRow]:
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"manifest {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"defaults", "recording"})
    if unknown:
        raise ParameterError(
            f"{path}: unknown table {unknown[0]!r}; a manifest holds [defaults] and one "
            "[[recording]] table per movie"
        )
    defaults = doc.get("defaults", {})
    recordings = doc.get("recording", [])
    if not isinstance(defaults, dict) or not isinstance(recordings, list):
        raise ParameterError(f"{path}: write [defaults] as a table and [[recording]] tables")
    base = {column_name(k): v for k, v in defaults.items()}
    rows = []
    for i, rec in enumerate(recordings, 1):
        own = {column_name(k): v for k, v in rec.items()}
        values = {k: v for k, v in {**base, **own}.items() if v != ""}
        rows.append(ManifestRow(f"{path.name} [[recording]] {i}", values))
    return rows


def _glob_rows(pattern: str, rois_pattern: str | None, output_pattern: str | None):
    if output_pattern is None:
        raise ParameterError(
            f"{pattern} is a glob of movies: give output_pattern= (command line: "
            "--output-pattern), e.g. '{dir}/traces.nc', to name each one's output"
        )
    found = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    movies = [p for p in found if not os.path.isdir(p) or Path(p).suffix]
    if not movies:
        raise ParameterError(
            f"{pattern} matches no file; check the pattern (quote it, so that the shell "
            "leaves it to roitrace), or give a .csv or .toml manifest"
        )
    rows = []
    for movie in movies:
        p = Path(movie)
        names = {"dir": str(p.parent), "stem": p.stem, "name": p.name}
        values: dict[str, Any] = {"movie": movie, "output": _fill(output_pattern, names)}
        if rois_pattern is not None:
            values["rois"] = _fill(rois_pattern, names)
        rows.append(ManifestRow(movie, absolute_paths(values)))
    return rows


def _fill(pattern: str, names: Mapping[str, str]) -> str:
    try:
        return pattern.format_map(names)
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError(
            f"pattern {pattern!r}: use {{dir}}, {{stem}} and {{name}} only ({exc})"
        ) from None


def unknown_column(name: str, known: Iterable[str], where: str, what: str) -> ParameterError:
    """The error for a column no option has, with the closest known name."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ParameterError(f"{where}: unknown column {name!r}; {hint}{what}")


# -- keys --------------------------------------------------------------------------------
def _stat(path: str | os.PathLike | None) -> Any:
    """A file's identity without reading it: path, size, mtime (a folder: its files')."""
    if path is None:
        return None
    p = input_file(path)
    try:
        if p.is_dir():
            return [
                [str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns]
                for f in sorted(p.rglob("*"))
                if f.is_file() and f.name != FOLDER_KEY_FILE
            ]
        st = p.stat()
    except OSError:
        return None  # the task will say what is wrong with it
    return [os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns]


def batch_key(
    movie: str | os.PathLike, options: Mapping[str, Any], inputs: Iterable[Any] = ()
) -> str:
    """The SHA-256 (hex) that says whether an output is up to date.

    It covers the movie's and the other ``inputs``' absolute paths, sizes and
    modification times (never their contents: a movie of 100 GB is not read to
    check that it did not change), the ``options`` (JSON, sorted) and roitrace's
    major.minor version.

    Examples
    --------
    >>> batch_key("no/such.tif", {"how": "mean"}) == batch_key("no/such.tif", {"how": "mean"})
    True
    >>> batch_key("no/such.tif", {"how": "mean"}) == batch_key("no/such.tif", {"how": "median"})
    False
    """
    version = ".".join(__version__.split(".")[:2])
    doc = {
        "movie": [os.path.abspath(os.fspath(movie)), _stat(movie)],
        "inputs": [_stat(p) for p in inputs],
        "options": {str(k): options[k] for k in sorted(options)},
        "roitrace": version,
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _folder(output: str) -> bool:
    from .save import is_folder_output

    return is_folder_output(output)


def recorded_key(output: str) -> str | None:
    """The key an existing output records: ``""`` when it records none (or cannot be
    read: roitrace batch did not write it), None when there is no output."""
    return _recorded(output)[0]


def _recorded(output: str) -> tuple[str | None, int | None, int | None]:
    """An existing output's key (as :func:`recorded_key`) and its ROI and frame
    counts when it is a file that says them (for the summary of a skipped row)."""
    path = Path(output)
    if _folder(output):
        if not path.is_dir() or not any(path.iterdir()):
            return None, None, None
        try:
            key = json.loads((path / FOLDER_KEY_FILE).read_text())[KEY_ATTR]
        except (OSError, ValueError, KeyError, TypeError):
            return "", None, None
        return str(key), None, None
    if not path.exists():
        return None, None, None
    from .save import load

    try:
        ds = load(path)
    except Exception:  # damaged, or not a result: not roitrace batch's file
        return "", None, None
    try:
        value = ds.attrs.get(KEY_ATTR, "")
        sizes = ds.sizes
        return (
            value if isinstance(value, str) else "",
            int(sizes["roi"]) if "roi" in sizes else None,
            int(sizes["time"]) if "time" in sizes else None,
        )
    finally:
        ds.close()


def write_folder_key(output: str, key: str) -> None:
    """Record ``key`` in a suite2p folder output (after its files were written)."""
    write_bytes(Path(output) / FOLDER_KEY_FILE, json.dumps({KEY_ATTR: key}).encode())


# -- running -----------------------------------------------------------------------------
#: A task: runs one recording, writes its output with the key in its provenance,
#: returns (ROIs, frames); raises with a one-line message when it fails.
Task = Callable[[Recording], tuple[int, int]]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, RoitraceError):
        return text
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{' '.join(exc.strerror.split())}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _local_dask() -> Any:
    """Inside a task, dask-using libraries (xarray writing netCDF) work locally, not
    on the cluster the task runs on (a distributed lock for an in-memory file fails)."""
    try:
        import dask
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return dask.config.set(scheduler="synchronous")


def run_one(task: Task, rec: Recording, overwrite: bool = False) -> BatchRecord:
    """Run one recording: skip it when up to date, else run ``task``; never raises
    (a failure is a ``failed`` record with its one-line reason)."""
    t0 = time.perf_counter()
    record = BatchRecord(movie=rec.movie, status="ok", output=rec.output)
    try:
        found, rois, frames = _recorded(rec.output)
        if found == rec.key:
            record.status, record.ROIs, record.frames = "skipped", rois, frames
            record.reason = "up to date: made from the same inputs and options"
            return record
        if found == "" and not overwrite:
            record.status = "failed"
            record.reason = (
                f"{rec.output} exists and was not written by roitrace batch; move it away, "
                "choose another output, or pass --overwrite (overwrite=True) to replace it"
            )
            return record
        if found:
            record.reason = "made again: its inputs or options changed since the last run"
        elif found == "":
            record.reason = "replaced an output not written by roitrace batch (overwrite)"
        with _local_dask():
            record.ROIs, record.frames = task(rec)
    except Exception as exc:  # a long unattended job goes on: this recording failed
        if not isinstance(exc, (RoitraceError, OSError)):
            log.exception("%s: unexpected error", rec.movie)
        record.status, record.reason = "failed", _one_line(exc)
    finally:
        record.seconds = time.perf_counter() - t0
    return record


def run_recordings(
    recordings: Sequence[Recording],
    task: Task,
    *,
    client: Any = None,
    summary: str | os.PathLike | None = None,
    overwrite: bool = False,
    on_done: Callable[[BatchRecord], None] | None = None,
) -> list[BatchRecord]:
    """Run each recording as one task, here in turn or on ``client`` (a
    ``distributed.Client``); the records come back in the recordings' order.

    ``summary`` is rewritten (atomically) as each recording finishes, so that a
    job killed midway leaves the table of those done. ``on_done`` is called with
    each record as it comes (a progress bar).
    """
    done: dict[int, BatchRecord] = {}

    def write() -> None:
        # every recording, those not finished yet too: a job killed midway (or still
        # running) leaves a table that says which are left to do
        if summary is not None:
            write_summary([done.get(j) or _not_run(r) for j, r in enumerate(recordings)], summary)

    def finish(i: int, record: BatchRecord) -> None:
        done[i] = record
        log.info("%s: %s %s", record.movie, record.status, record.reason)
        write()
        if on_done is not None:
            on_done(record)

    write()

    if client is None:
        for i, rec in enumerate(recordings):
            finish(i, run_one(task, rec, overwrite))
    else:
        from distributed import as_completed

        futures = {
            client.submit(run_one, task, rec, overwrite, pure=False, key=f"roitrace-batch-{i}-"
                          f"{rec.key[:12]}"): i
            for i, rec in enumerate(recordings)
        }  # fmt: skip
        for future in as_completed(futures, loop=client.loop):
            i = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker died (KilledWorker), or was lost
                rec = recordings[i]
                record = BatchRecord(
                    rec.movie, "failed", f"its task failed on the cluster: {_one_line(exc)}",
                    output=rec.output,
                )  # fmt: skip
            finish(i, record)
            future.release()
    return [done[i] for i in range(len(recordings))]


def _not_run(rec: Recording) -> BatchRecord:
    return BatchRecord(
        rec.movie,
        "not run",
        "not finished when the table was written: the batch was stopped (run it again) "
        "or is still running",
        output=rec.output,
    )


def write_summary(records: Iterable[BatchRecord], path: str | os.PathLike) -> Path:
    """Write the summary table (CSV: movie, status, reason, ROIs, frames, seconds,
    output), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(r.row())
    return write_bytes(path, buf.getvalue().encode())


def check_outputs(recordings: Sequence[Recording], inputs: Sequence[Sequence[Any]]) -> None:
    """Refuse, before any work, two recordings with the same output and an output that
    is any recording's input (``inputs[i]``: the files recording i reads)."""
    seen: dict[str, str] = {}
    every_input = [
        (f"the input of {rec.where}", p) for rec, ins in zip(recordings, inputs, strict=True)
        for p in ins if p is not None
    ]  # fmt: skip
    for rec in recordings:
        where = os.path.abspath(os.fspath(rec.output).rstrip("/" + os.sep))
        if where in seen:
            raise OutputError(
                f"{rec.where}: output {rec.output} is also the output of {seen[where]}; "
                "give each recording an output of its own"
            )
        seen[where] = rec.where
        check_not_input(rec.output, every_input, label=f"{rec.where}: output {rec.output}",
                        folder=_folder(rec.output))  # fmt: skip


# -- the Python interface ----------------------------------------------------------------
def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    t = str(v).strip().lower()
    if t in ("true", "1", "yes", "y", "on"):
        return True
    if t in ("false", "0", "no", "n", "off", ""):
        return False
    raise ValueError(f"{v!r} is not true/false, yes/no or 1/0")


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a whole number")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return int(str(v).strip()) if not isinstance(v, int) else v


def _as_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    x = float(v)
    if math.isnan(x):
        raise ValueError("nan is not a number here")
    return x


def _as_factor(v: Any) -> float | str:
    """A number, or the name of a method that estimates the factor per ROI."""
    try:
        return _as_float(v)
    except (TypeError, ValueError):
        return str(v).strip().lower()


def _as_window(v: Any) -> int | str:
    """Frames (``900``) or seconds (``"60s"``)."""
    text = str(v).strip()
    return int(text) if text.isdigit() else text


def _as_taus(v: Any) -> float | tuple[float, ...]:
    """One time constant in seconds, or ``RISE,DECAY``."""
    if isinstance(v, list | tuple):
        return tuple(_as_float(x) for x in v)
    values = tuple(_as_float(x) for x in str(v).split(","))
    return values[0] if len(values) == 1 else values


def _row_baseline(o: dict[str, Any]) -> Any:
    """The row's baseline options as a Baseline (None: the default); pops them."""
    from .options import Baseline

    names = ("q", "window", "sigma", "noise_window")
    given = {k: o.pop(f"baseline_{k}") for k in names if f"baseline_{k}" in o}
    if "baseline" in o:
        given["method"] = o.pop("baseline")
    return Baseline(**given) if given else None


def _row_deconvolve(o: dict[str, Any]) -> Any:
    """The row's deconvolution options as a Deconvolve (None: none); pops them."""
    from .options import Deconvolve

    given = {
        k: o.pop(f"deconvolve_{k}") for k in ("model", "penalty", "tau") if f"deconvolve_{k}" in o
    }
    on = o.pop("deconvolve", False)
    if given and not on:
        raise ParameterError(
            f"{', '.join('deconvolve_' + k for k in given)} given without deconvolve=true"
        )
    return Deconvolve(**given) if on else None


def _as_frames(v: Any) -> slice:
    a, b = str(v).split(":")
    return slice(int(a) if a.strip() else None, int(b) if b.strip() else None)


#: The columns :func:`batch` takes besides movie and output, and how each is read.
COLUMNS: dict[str, Callable[[Any], Any]] = {
    "rois": str,
    "how": str,
    "proportion": _as_float,
    "neuropil_gap": _as_int,
    "neuropil_width": _as_int,
    "neuropil_exclude_gap": _as_int,
    "neuropil_min_pixels": _as_int,
    "neuropil_factor": _as_factor,
    "overlap": str,
    "trust_pickle": _as_bool,
    "all_rois": _as_bool,
    "plane_segmentation": str,
    "frames": _as_frames,
    "dataset": str,
    "axes": str,
    "channel": _as_int,
    "keep_truncated": _as_bool,
    "frame_rate": _as_float,
    "chunk_frames": _as_int,
    "baseline": str,
    "baseline_q": _as_float,
    "baseline_window": _as_window,
    "baseline_sigma": _as_float,
    "baseline_noise_window": _as_window,
    "deconvolve": _as_bool,
    "deconvolve_model": str,
    "deconvolve_penalty": str,
    "deconvolve_tau": _as_taus,
    # the threshold route (instead of rois): roitrace.find_rois's options
    "auto": _as_bool,
    "projection": str,
    "method": str,
    "threshold": _as_float,
    "q": _as_float,
    "k": _as_float,
    "block_size": _as_int,
    "offset": _as_float,
    "min_size": _as_int,
    "max_size": _as_int,
}
#: The columns of the threshold route, by find_rois's keyword (``threshold`` is ``value``).
_FIND_ROIS = {"projection": "projection", "method": "method", "threshold": "value", "q": "q",
              "k": "k", "block_size": "block_size", "offset": "offset", "min_size": "min_size",
              "max_size": "max_size"}  # fmt: skip


def _python_options(where: str, values: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in values.items():
        if name not in COLUMNS:
            raise unknown_column(
                name, [*COLUMNS, "movie", "output"], where,
                "the columns are movie, output and " + ", ".join(COLUMNS),
            )  # fmt: skip
        try:
            options[name] = COLUMNS[name](value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{where}: {name} {_text(value)!r}: {exc}") from None
    auto = options.get("auto", False)
    found = [n for n in _FIND_ROIS if n in options]
    if "rois" in options and (auto or found):
        given = ", ".join(["auto"] * bool(auto) + found)
        raise ParameterError(
            f"{where}: rois and {given} both given: the cells come from the ROI file, or "
            "from a threshold with auto=true, not both"
        )
    if "rois" not in options and not auto:
        raise ParameterError(
            f"{where}: no rois; give each recording its ROI file (a rois column, rois= "
            "for every row, or rois_pattern= with a glob), or auto=true to find the cells "
            "by a threshold"
        )
    try:
        _check_values(options)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None
    return options


def _check_values(o: Mapping[str, Any]) -> None:
    """The values a row gives, checked before any recording runs (as the command line
    checks its rows): a mistake in row 90 stops the batch at once, not after 89."""
    from ._validate import choice, integer, number, size_range
    from ._validate import frame_rate as check_rate
    from .aggregate import check_proportion
    from .options import (
        AGGREGATION_METHODS,
        OVERLAP_MODES,
        PROJECTION_METHODS,
        THRESHOLD_METHODS,
    )

    for name, choices in (
        ("how", AGGREGATION_METHODS),
        ("overlap", OVERLAP_MODES),
        ("method", THRESHOLD_METHODS),
        ("projection", PROJECTION_METHODS),
    ):
        if name in o:
            choice(name, o[name], choices)
    if ("neuropil_gap" in o) != ("neuropil_width" in o):
        raise ParameterError("give both neuropil_gap and neuropil_width, or neither")
    for name, low in (
        ("neuropil_gap", 0),
        ("neuropil_width", 1),
        ("neuropil_exclude_gap", 0),
        ("neuropil_min_pixels", 1),
        ("chunk_frames", 1),
        ("channel", 0),
    ):
        if name in o:
            integer(name, o[name], low=low)
    if isinstance(o.get("neuropil_factor"), str):
        from .contamination import NEUROPIL_FACTOR_METHODS

        choice("neuropil_factor", o["neuropil_factor"], NEUROPIL_FACTOR_METHODS)
    elif "neuropil_factor" in o:
        number("neuropil_factor", o["neuropil_factor"], low=0.0)
    if "proportion" in o:
        check_proportion(o["proportion"])
    if "frame_rate" in o:
        check_rate(o["frame_rate"])
    size_range(o.get("min_size"), o.get("max_size"))  # fmt: skip
    rest = dict(o)
    _row_baseline(rest)
    _row_deconvolve(rest)


def _extract_task(rec: Recording) -> tuple[int, int]:
    """:func:`batch`'s task: open, read the ROIs, extract, save with the key."""
    from .extract import extract
    from .io import formats, read_rois
    from .movie import open_movie
    from .save import save
    from .segment import find_rois

    o = dict(rec.options)
    truncated = "keep" if o.pop("keep_truncated", False) else "error"
    m = open_movie(
        rec.movie,
        dataset=o.pop("dataset", None),
        axes=o.pop("axes", None),
        channel=o.pop("channel", None),
        frame_rate=o.pop("frame_rate", None),
        truncated=truncated,
    )
    rois = o.pop("rois", None)
    if rois is None:  # auto: one ROI per component of a thresholded projection
        o.pop("auto")
        found = {_FIND_ROIS[n]: o.pop(n) for n in list(o) if n in _FIND_ROIS}
        cells = find_rois(m, **found, frames=o.get("frames"), chunk_frames=o.get("chunk_frames"))
    else:
        read: dict[str, Any] = {
            "shape": m.frame_shape,
            "allow_pickle": o.pop("trust_pickle", False),
        }
        kind = next((f.name for f in formats("rois") if f.can_open(rois)), None)
        all_rois = o.pop("all_rois", False)
        if kind == "suite2p":
            read["cells_only"] = not all_rois
        if "plane_segmentation" in o:
            read["plane_segmentation"] = o.pop("plane_segmentation")
        cells = read_rois(rois, **read)
    ring = {
        k: o.pop(f"neuropil_{k}")
        for k in ("gap", "width", "exclude_gap", "min_pixels")
        if f"neuropil_{k}" in o
    }
    ds = extract(
        m,
        cells,
        method=o.pop("how", None),
        neuropil=ring or None,
        neuropil_factor=o.pop("neuropil_factor", None),
        proportion=o.pop("proportion", None),
        overlap=o.pop("overlap", None),
        baseline=_row_baseline(o),
        deconvolve=_row_deconvolve(o),
        frames=o.pop("frames", None),
        chunk_frames=o.pop("chunk_frames", None),
    )
    if rois is not None:
        ds.attrs["rois"] = str(rois)
    ds.attrs[KEY_ATTR] = rec.key
    save(ds, rec.output)
    if _folder(rec.output):
        write_folder_key(rec.output, rec.key)
    return int(ds.sizes["roi"]), int(ds.sizes["time"])


def batch(
    manifest: str | os.PathLike | Sequence[Mapping[str, Any]],
    *,
    client: Any = None,
    summary: str | os.PathLike | None = None,
    overwrite: bool = False,
    rois_pattern: str | None = None,
    output_pattern: str | None = None,
    **defaults: Any,
) -> list[BatchRecord]:
    """Extract many recordings, one task each; a broken one does not stop the others.

    Parameters
    ----------
    manifest : path, glob or list of dicts
        A ``.csv`` file (header row: ``movie``, ``output``, ``rois`` and options;
        an empty cell gives nothing), a ``.toml`` file (``[defaults]`` and one
        ``[[recording]]`` table per movie), a glob of movies (with
        ``output_pattern`` and ``rois_pattern``), or the rows themselves as dicts.
        Option columns, by their command-line names (``-`` or ``_``): ``rois``,
        ``how``, ``proportion``, ``neuropil_gap``, ``neuropil_width``,
        ``neuropil_exclude_gap``, ``neuropil_min_pixels``, ``neuropil_factor``,
        ``overlap``, ``trust_pickle``, ``all_rois``, ``plane_segmentation``,
        ``frames`` (``START:STOP``), ``dataset``, ``axes``, ``channel``,
        ``keep_truncated``, ``frame_rate``, ``chunk_frames``, ``baseline``,
        ``baseline_q``, ``baseline_window``, ``baseline_sigma``,
        ``baseline_noise_window``, ``deconvolve``,
        ``deconvolve_model``, ``deconvolve_penalty``, ``deconvolve_tau``; instead of ``rois``,
        ``auto=true`` finds the cells by a threshold (:func:`roitrace.find_rois`),
        with ``projection``, ``method``, ``threshold``, ``q``, ``k``,
        ``block_size``, ``offset``, ``min_size``, ``max_size``. (The command
        line's ``roitrace batch`` takes every option of ``roitrace extract``:
        figures, reports and NWB subject fields too.)
    client : distributed.Client, optional
        Run each recording as one task on this client (each extraction runs
        whole on its worker); default: one after another here.
    summary : path, optional
        A CSV table (movie, status, reason, ROIs, frames, seconds, output),
        written at the start and rewritten as each recording finishes (those not
        finished yet: status ``not run``).
    overwrite : bool
        Replace existing outputs that roitrace batch did not write (that record no
        ``batch_key``); by default they are left alone and their recording fails.
    rois_pattern, output_pattern : str, optional
        For a glob: each movie's ROI file and output, from ``{dir}``, ``{stem}``,
        ``{name}``.
    **defaults
        Options for every row (a row's own value wins), e.g. ``neuropil_gap=2``.

    Returns
    -------
    list of BatchRecord
        One per recording, in the manifest's order: ``status`` ``ok``, ``failed``
        or ``skipped`` (up to date), with the reason, ROI and frame counts, seconds.

    Raises
    ------
    ParameterError, OutputError
        A mistake in the manifest (an unknown column, a bad value, two recordings
        with one output, an output that is an input), before any work.

    Examples
    --------
    >>> import os, tempfile, roitrace as rt
    >>> d = tempfile.mkdtemp()
    >>> sim = rt.simulate(shape=(24, 24), n_frames=20, n_cells=2, seed=0)
    >>> movie = str(sim.to_tiff(os.path.join(d, "a.tif")))
    >>> _ = rt.write_rois(rt.RoiSet.from_labels(sim.labels), os.path.join(d, "labels.tif"))
    >>> rows = [{"movie": movie, "output": os.path.join(d, "a.nc")},
    ...         {"movie": os.path.join(d, "gone.tif"), "output": os.path.join(d, "b.nc")}]
    >>> done = batch(rows, rois=os.path.join(d, "labels.tif"), neuropil_gap=1, neuropil_width=2)
    >>> [(r.status, r.ROIs, r.frames) for r in done]
    [('ok', 2, 20), ('failed', None, None)]
    >>> [r.status for r in batch(rows[:1], rois=os.path.join(d, "labels.tif"),
    ...                          neuropil_gap=1, neuropil_width=2)]
    ['skipped']
    """
    from .save import check_output

    if isinstance(manifest, (str, os.PathLike)):
        rows = read_manifest(manifest, rois_pattern=rois_pattern, output_pattern=output_pattern)
    else:
        rows = [ManifestRow(f"row {i}", absolute_paths({column_name(k): v for k, v in r.items()}))
                for i, r in enumerate(manifest, 1)]  # fmt: skip
    base = absolute_paths({column_name(k): v for k, v in defaults.items() if v is not None})
    for name in ("movie", "output"):
        if name in base:
            raise ParameterError(f"{name} comes from the manifest, one per row: leave {name}= out")
    recordings, inputs = [], []
    for row in rows:
        values = {**base, **row.values}
        movie, output = values.pop("movie", None), values.pop("output", None)
        if not movie or not output:
            missing = "movie" if not movie else "output"
            raise ParameterError(f"{row.where}: no {missing}; every row needs movie and output")
        options = _python_options(row.where, values)
        rois = [options["rois"]] if "rois" in options else []
        check_output(str(output), inputs=[("the input movie", str(movie)),
                                          *[("the ROI source", r) for r in rois]],
                     name=f"{row.where}: output")  # fmt: skip
        key_options = {k: (str(v) if isinstance(v, slice) else v) for k, v in options.items()}
        key = batch_key(str(movie), key_options, rois)
        recordings.append(Recording(str(movie), str(output), options, key, row.where))
        inputs.append([str(movie), *rois])
    check_outputs(recordings, inputs)
    return run_recordings(
        recordings, _extract_task, client=client, summary=summary, overwrite=overwrite
    )
