"""Saving results (the last stage): traces as CSV or netCDF, images as TIFF.

Every file records the roitrace version and the parameters that made it, and is
written under a temporary name then renamed, so an error or Ctrl-C never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path, check_not_input, check_writable, write_bytes
from ._optional import available, require
from ._version import __version__
from .errors import ParameterError, ResultError, ResultFormatError, ResultNotFoundError
from .result import (
    FRAME,
    NAME,
    PARAMETERS,
    ROI,
    ROITRACE_VERSION,
    SOURCE,
    TIME,
    TRACE_VARS,
    VAR_DFF,
    VAR_F,
    VAR_F_CORRECTED,
    check_result,
    result_rois,
)

__all__ = ["load", "save", "write_image"]


def save(
    result: Any,
    path: str | os.PathLike,
    *,
    rois: Any = None,
    inputs: Iterable[str | os.PathLike] = (),
    **nwb_options: Any,
) -> Path:
    """Save an :func:`roitrace.extract` result; the format follows the suffix.

    Parameters
    ----------
    result : xarray.Dataset
        Dims ``(roi, time)``, as returned by :func:`roitrace.extract`.
    path : str or path-like
        ``.csv``: tidy table, one row per (roi, frame) with columns ``roi, name,
        frame, time, F, Fneu, F_corrected, dff`` (those present; a name with a
        comma or quote is quoted), preceded by ``#`` comment lines holding the
        parameters (read it with ``pandas.read_csv(path, comment="#")``).
        ``.nc`` / ``.h5``: the Dataset itself as netCDF4 (h5netcdf). ``.nwb``: an
        NWB file (pynwb) with the ROIs' pixel masks, ``F``/``Fneu``/
        ``F_corrected`` as RoiResponseSeries and ``dff`` as DfOverF. A folder
        (a path ending in ``/``, without a suffix, or an existing folder): a
        suite2p-style ``plane0`` folder (``F.npy``, ``Fneu.npy``, ``stat.npy``,
        ``iscell.npy``, ``ops.npy``, plus ``F_corrected.npy`` and ``dff.npy``).
    rois : RoiSet, optional
        The ROIs, for NWB and suite2p outputs; default: the pixel table that
        :func:`roitrace.extract` stores in the result.
    inputs : iterable of paths, optional
        Further files the result was made from. ``path`` may be none of them, nor
        the movie (``result.attrs["source"]``) or ROI file (``result.attrs["rois"]``)
        the result records: :class:`~roitrace.errors.OutputError` before anything is
        written, rather than an input replaced by its own result.
    **nwb_options
        For ``.nwb``: ``subject`` (dict), ``indicator``, ``location``,
        ``session_description``, ``frame_rate``... (see
        :func:`roitrace.nwb.write_nwb`).

    Returns
    -------
    path : pathlib.Path

    Notes
    -----
    A suite2p folder written again holds only the new run's files: those of
    roitrace's set that the new result lacks (``F_corrected.npy`` after a run
    without neuropil...) are removed, in the same step as the new ones move in.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from roitrace import extract
    >>> ds = extract(np.ones((3, 4, 4)), np.eye(4, dtype=bool))
    >>> p = save(ds, os.path.join(tempfile.mkdtemp(), "traces.csv"))
    >>> load(p)["F"].shape
    (1, 3)
    """
    check_output(path, inputs=result_inputs(result, inputs), name="path")
    if is_folder_output(path):
        return _save_suite2p(result, rois, Path(path))
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _save_csv(result, path)
    if suffix in (".nc", ".h5", ".hdf5"):
        return _save_netcdf(result, path)
    if suffix == ".nwb":
        from .nwb import write_nwb

        return write_nwb(result, rois or result_rois(result), path, **nwb_options)
    return _save_suite2p(result, rois, path)


#: The package each result format needs beyond numpy and xarray (all dependencies, but
#: a broken environment may lack one: it is said before any work, with how to install it).
_NEEDS = {".nc": "h5netcdf", ".h5": "h5netcdf", ".hdf5": "h5netcdf", ".nwb": "pynwb"}


def result_inputs(
    result: Any, inputs: Iterable[str | os.PathLike] = ()
) -> list[tuple[str, str | os.PathLike, str]]:
    """The files a result was made from: the movie and ROI file its attrs record
    (:func:`roitrace.extract` and the command line record them), and ``inputs``."""
    attrs = getattr(result, "attrs", {}) or {}
    found: list[tuple[str, str | os.PathLike, str]] = []
    source = attrs.get(SOURCE)
    if isinstance(source, str) and source and source != "array":
        found.append(("the file this result was read from", source, "result.attrs['source']"))
    if isinstance(attrs.get("rois"), str) and attrs["rois"]:
        found.append(("the ROI source of this result", attrs["rois"], "result.attrs['rois']"))
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found += [("an input", p, "inputs=") for p in inputs]
    return found


def is_folder_output(path: str | os.PathLike) -> bool:
    """Whether :func:`save` writes ``path`` as a suite2p folder: it ends with a
    slash (``"run.v2/"``), is an existing folder, or has no suffix at all (a
    ``pathlib.Path`` cannot end with a slash). The command line is stricter: there
    ``-o`` without a suffix is an error unless it ends with ``/``."""
    if os.fspath(path).endswith(("/", os.sep)):
        return True
    path = Path(path)
    return path.suffix.lower() not in (".csv", *_NEEDS) and (path.suffix == "" or path.is_dir())


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[tuple[str, Any] | tuple[str, Any, str]] = (),
    name: str = "path",
    writable: bool = False,
) -> None:
    """Raise now if :func:`save` could not write ``path``, so that a long extraction
    does not run first: :class:`~roitrace.errors.ParameterError` for an unknown
    suffix or a missing writer package; :class:`~roitrace.errors.OutputError` when
    ``path`` (or, for a suite2p folder, a file it would replace) is one of
    ``inputs`` (``(description, path)`` pairs), or, with ``writable``, when it
    cannot be written there. ``name`` is how the interface calls the output
    (``"-o/--output"`` on the command line).

    Examples
    --------
    >>> check_output("traces.csv")
    >>> check_output("traces.xlsx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: traces.xlsx is of an unknown output format '.xlsx'; use ...
    """
    from .suite2p import OWNED

    folder = is_folder_output(path)
    path = Path(path)
    # First: "this is your movie" says more than "a movie's suffix is no output format".
    # A folder write replaces (or removes) roitrace's set of files in it.
    check_not_input(path, inputs, name=name, folder=folder, replaces=OWNED if folder else ())
    suffix = "" if folder else path.suffix.lower()
    if suffix == ".csv" or suffix in _NEEDS or folder:
        if suffix in _NEEDS and not available(_NEEDS[suffix]):
            require(_NEEDS[suffix], f"writing {path} ({suffix})")
        if writable:
            check_writable(path, name=name, folder=folder)
        return
    what = "has no suffix" if not suffix else f"is of an unknown output format {suffix!r}"
    raise ParameterError(
        f"{path} {what}; use .csv, .nc, .h5, .nwb, or a folder ending in / (suite2p style)"
    )


def load(path: str | os.PathLike, *, allow_pickle: bool = False):
    """Read a file written by :func:`save` back into an xarray Dataset.

    ``allow_pickle`` lets a suite2p folder's ``ops.npy`` (a pickle) give the frame
    rate; without it the folder's traces are read and ``time`` is left out.
    """
    path = Path(path)
    if not path.exists():
        raise ResultNotFoundError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if path.is_dir():
        return _load_suite2p(path, allow_pickle)
    if suffix == ".nwb":
        from .nwb import read_nwb_result

        return read_nwb_result(path)
    if suffix == ".csv":
        return _load_csv(path)
    if suffix in (".nc", ".h5", ".hdf5"):
        import xarray as xr

        require("h5netcdf", f"reading {path} ({suffix})")
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    raise ParameterError(
        f"{path}: unknown format {suffix!r}; roitrace reads .csv, .nc, .h5, .nwb and "
        "suite2p folders"
    )


def write_image(
    image: np.ndarray, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a 2-D image (a projection, a mask) as TIFF, with its metadata as JSON.

    The metadata (plus the roitrace version) is stored in the TIFF's
    ImageDescription by tifffile and read back by ``tifffile.TiffFile(path).
    shaped_metadata``.
    """
    import tifffile

    path = Path(path)
    meta = {"roitrace_version": __version__, **(metadata or {})}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(image), metadata=_jsonable(meta))
    return path


# -- CSV ------------------------------------------------------------------------------
def _save_csv(ds: Any, path: Path) -> Path:
    check_result(ds, needs=(FRAME,), writer="a CSV file")
    names = [v for v in TRACE_VARS if v in ds]
    if not names:
        raise ResultError("the result has no trace variable (F, Fneu, F_corrected, dff)")
    n_t = ds.sizes[TIME]
    numeric = {FRAME: ds[FRAME].values}
    if TIME in ds.coords:
        numeric[TIME] = ds[TIME].values
    header = "".join(f"# {k}: {_attr_text(v)}\n" for k, v in _file_attrs(ds).items())
    columns = [ROI, *([NAME] if NAME in ds.coords else []), *numeric, *names]
    traces = [ds[v].transpose(ROI, TIME).values for v in names]
    fmt = ["%d"] + ["%.17g"] * (len(numeric) - 1 + len(names))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(header)
        f.write(",".join(columns) + "\n")
        for k, roi in enumerate(ds[ROI].values):
            lead = f"{int(roi)},"
            if NAME in ds.coords:
                lead += _csv_field(str(ds[NAME].values[k])) + ","
            table = np.column_stack(
                [*(np.asarray(c, np.float64) for c in numeric.values())] + [t[k] for t in traces]
            )
            buf = io.StringIO()
            np.savetxt(buf, table.reshape(n_t, -1), fmt=fmt, delimiter=",")
            rows = buf.getvalue()
            # the ROI's id and name begin each of its rows
            f.write(lead + rows[:-1].replace("\n", "\n" + lead) + "\n")
    return path


def _csv_field(text: str) -> str:
    """A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _load_csv(path: Path):
    import pandas as pd
    import xarray as xr

    attrs: dict[str, Any] = {}
    n_comments = 0
    with open(path) as f:
        for line in f:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].strip().partition(": ")
            attrs[key] = value
            n_comments += 1
    try:
        table = pd.read_csv(path, skiprows=n_comments, dtype={NAME: str}, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ResultFormatError(f"{path}: not a readable CSV table ({exc})") from exc
    if table.empty and not len(table.columns):
        raise ResultFormatError(f"{path}: no table in this CSV file")
    if not {ROI, FRAME} <= set(table.columns):
        raise ResultFormatError(f"{path}: not a roitrace CSV (no roi and frame columns)")
    rois, roi_idx = np.unique(table[ROI].to_numpy(np.int64), return_inverse=True)
    frames, t_idx = np.unique(table[FRAME].to_numpy(np.int64), return_inverse=True)
    data_vars = {}
    for v in TRACE_VARS:
        if v in table:
            arr = np.full((rois.size, frames.size), np.nan)
            arr[roi_idx, t_idx] = table[v].to_numpy(np.float64)
            data_vars[v] = ((ROI, TIME), arr)
    coords: dict[str, Any] = {ROI: rois, FRAME: (TIME, frames)}
    if NAME in table:
        names = np.empty(rois.size, object)
        names[roi_idx] = table[NAME].to_numpy()
        coords[NAME] = (ROI, names.astype(str))
    if TIME in table:
        t = np.full(frames.size, np.nan)
        t[t_idx] = table[TIME].to_numpy(np.float64)
        coords[TIME] = (TIME, t, {"units": "s"})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# -- suite2p folder ----------------------------------------------------------------------
def _save_suite2p(ds: Any, rois: Any, path: Path) -> Path:
    from .suite2p import write_suite2p

    extra = (VAR_F_CORRECTED, VAR_DFF)
    return write_suite2p(ds, rois or result_rois(ds), path, extra=extra)


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated, not a .npy file, a pickle
        raise ResultFormatError(
            f"{path} could not be read as a NumPy .npy file ({type(exc).__name__}: {exc}); "
            "is it a complete suite2p output?"
        ) from exc
    if arr.ndim != 2:
        raise ResultFormatError(
            f"{path} holds an array of shape {arr.shape}, not (ROIs, frames) traces"
        )
    return arr


def _load_suite2p(folder: Path, allow_pickle: bool):
    import xarray as xr

    if not (folder / "F.npy").exists() and (folder / "plane0" / "F.npy").exists():
        folder = folder / "plane0"
    from .suite2p import read_consistently

    def read() -> tuple[tuple[dict[str, Any], dict[str, Any]], dict[str, tuple[int, ...]]]:
        # Inside the consistent read: a folder being created has no F.npy for a moment.
        data = {}
        for v in TRACE_VARS:
            try:
                data[v] = ((ROI, TIME), _load_npy(folder / f"{v}.npy"))
            except FileNotFoundError:  # absent, or removed now by a writer (then read again)
                pass
        ops: dict[str, Any] = {}
        if allow_pickle and (folder / "ops.npy").exists():
            ops = np.load(folder / "ops.npy", allow_pickle=True).item()
        shapes = {f"{v}.npy": a.shape for v, (_, a) in data.items()}
        if "F.npy" in shapes and "nframes" in ops:
            if shapes["F.npy"][1:] != (int(ops["nframes"]),):
                # the frame count ops.npy records, seen as an (roi, frame) shape to compare
                shapes["ops.npy"] = (shapes["F.npy"][0], int(ops["nframes"]))
        return (data, ops), shapes

    data_vars, ops = read_consistently(folder, read, error=ResultFormatError)
    if VAR_F not in data_vars:
        raise ResultFormatError(f"{folder}: no F.npy here; is this a suite2p plane0 folder?")
    n_roi, n_t = data_vars[VAR_F][1].shape
    coords: dict[str, Any] = {ROI: np.arange(1, n_roi + 1), FRAME: (TIME, np.arange(n_t))}
    attrs: dict[str, Any] = {SOURCE: str(folder)}
    if ops:
        if ops.get("fs"):
            coords[TIME] = (TIME, np.arange(n_t) / float(ops["fs"]), {"units": "s"})
        for k in (ROITRACE_VERSION, PARAMETERS):
            if k in ops:
                attrs[k] = ops[k]
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# -- netCDF ---------------------------------------------------------------------------
def _save_netcdf(ds: Any, path: Path) -> Path:
    check_result(ds, needs=(), writer="a netCDF file")
    require("h5netcdf", f"writing {path} ({path.suffix})")
    out = ds.copy()
    out.attrs = {k: _netcdf_attr(v) for k, v in _file_attrs(ds).items()}
    try:
        # in memory first: HDF5 crashes the process when a write to disk fails
        data = out.to_netcdf(engine="h5netcdf", invalid_netcdf=False)
    except ValueError:  # xarray before 2025 writes netCDF4 bytes with netCDF4-python only
        with atomic_path(path) as tmp:
            out.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        return path
    return write_bytes(path, data)


def _netcdf_attr(v: Any) -> Any:
    # netCDF attributes hold strings and numbers only: no bool, None, dict or list.
    if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, (dict, list, tuple)):
        return _attr_text(v)
    return v


def _file_attrs(ds: Any) -> dict[str, Any]:
    attrs = dict(ds.attrs)
    attrs.setdefault(ROITRACE_VERSION, __version__)
    return attrs


def _attr_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(_jsonable(v))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return v
