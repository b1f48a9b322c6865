"""Saving results (the last stage): traces as CSV or netCDF, images as TIFF.

Every file records the roitrace version and the parameters that made it, and is
written under a temporary name then renamed, so an error or Ctrl-C never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path, write_bytes
from ._version import __version__
from .errors import MovieFormatError, MovieNotFoundError, ParameterError

__all__ = ["load", "save", "write_image"]

TRACE_VARS = ("F", "Fneu", "F_corrected", "dff")


def save(result: Any, path: str | os.PathLike, *, rois: Any = None, **nwb_options: Any) -> Path:
    """Save an :func:`roitrace.extract` result; the format follows the suffix.

    Parameters
    ----------
    result : xarray.Dataset
        Dims ``(roi, time)``, as returned by :func:`roitrace.extract`.
    path : str or path-like
        ``.csv``: tidy table, one row per (roi, frame) with columns ``roi, frame,
        time, F, Fneu, F_corrected, dff`` (those present), preceded by ``#``
        comment lines holding the parameters (read it with
        ``pandas.read_csv(path, comment="#")``). ``.nc`` / ``.h5``: the Dataset
        itself as netCDF4 (needs h5netcdf). ``.nwb``: an NWB file (pynwb) with
        the ROIs' image masks, ``F``/``Fneu``/``F_corrected`` as RoiResponseSeries
        and ``dff`` as DfOverF. A folder (no suffix, or an existing folder): a
        suite2p-style ``plane0`` folder (``F.npy``, ``Fneu.npy``, ``stat.npy``,
        ``iscell.npy``, ``ops.npy``, plus ``F_corrected.npy`` and ``dff.npy``).
    rois : RoiSet, optional
        The ROIs, for NWB and suite2p outputs; default: the pixel table that
        :func:`roitrace.extract` stores in the result.
    **nwb_options
        For ``.nwb``: ``subject`` (dict), ``indicator``, ``location``,
        ``session_description``, ``frame_rate``... (see
        :func:`roitrace.nwb.write_nwb`).

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from roitrace import extract
    >>> ds = extract(np.ones((3, 4, 4)), np.eye(4, dtype=bool))
    >>> p = save(ds, os.path.join(tempfile.mkdtemp(), "traces.csv"))
    >>> load(p)["F"].shape
    (1, 3)
    """
    path = Path(path)
    check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _save_csv(result, path)
    if suffix in (".nc", ".h5", ".hdf5"):
        return _save_netcdf(result, path)
    if suffix == ".nwb":
        from .extract import rois_from_result
        from .nwb import write_nwb

        return write_nwb(result, rois or rois_from_result(result), path, **nwb_options)
    return _save_suite2p(result, rois, path)


#: The package each result format needs beyond roitrace's own, with its extra.
_NEEDS = {".nc": ("h5netcdf", "netcdf"), ".h5": ("h5netcdf", "netcdf"), ".nwb": ("pynwb", "nwb")}
_NEEDS[".hdf5"] = _NEEDS[".h5"]


def check_output(path: str | os.PathLike) -> None:
    """Raise :class:`~roitrace.errors.ParameterError` now if :func:`save` could not
    write ``path`` (an unknown suffix, or the format's package missing), so that a
    long extraction does not run first.

    Examples
    --------
    >>> check_output("traces.csv")
    >>> check_output("traces.xlsx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: traces.xlsx: unknown output format '.xlsx'; use ...
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix in _NEEDS or suffix == "" or path.is_dir():
        package, extra = _NEEDS.get(suffix, (None, None))
        if package is not None and importlib.util.find_spec(package) is None:
            raise ParameterError(
                f"{path}: writing {suffix} needs {package}: pip install 'roitrace[{extra}]'"
            )
        return
    raise ParameterError(
        f"{path}: unknown output format {suffix!r}; use .csv, .nc, .h5, .nwb or a folder "
        "(suite2p style)"
    )


def load(path: str | os.PathLike, *, allow_pickle: bool = False):
    """Read a file written by :func:`save` back into an xarray Dataset.

    ``allow_pickle`` lets a suite2p folder's ``ops.npy`` (a pickle) give the frame
    rate; without it the folder's traces are read and ``time`` is left out.
    """
    path = Path(path)
    if not path.exists():
        raise MovieNotFoundError(f"{path}: no such file or folder")
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
    names = [v for v in TRACE_VARS if v in ds]
    if not names:
        raise ParameterError("the result has no trace variable (F, Fneu, F_corrected, dff)")
    n_roi, n_t = ds.sizes["roi"], ds.sizes["time"]
    cols = {
        "roi": np.repeat(ds["roi"].values, n_t),
        "frame": np.tile(ds["frame"].values, n_roi),
    }
    if "time" in ds.coords:
        cols["time"] = np.tile(ds["time"].values, n_roi)
    for v in names:
        cols[v] = ds[v].transpose("roi", "time").values.reshape(-1)
    fmt = ["%d" if k in ("roi", "frame") else "%.17g" for k in cols]
    header = "".join(f"# {k}: {_attr_text(v)}\n" for k, v in _file_attrs(ds).items())
    table = np.column_stack([c.astype(np.float64) for c in cols.values()])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(header)
        f.write(",".join(cols) + "\n")
        np.savetxt(f, table, fmt=fmt, delimiter=",")
    return path


def _load_csv(path: Path):
    import xarray as xr

    attrs: dict[str, Any] = {}
    lines = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                key, _, value = line[1:].strip().partition(": ")
                attrs[key] = value
            else:
                lines.append(line)
    if not lines:
        raise MovieFormatError(f"{path}: no table in this CSV file")
    header = lines[0].strip().split(",")
    if not {"roi", "frame"} <= set(header):
        raise MovieFormatError(f"{path}: not a roitrace CSV (no roi and frame columns)")
    table = np.loadtxt(io.StringIO("".join(lines[1:])), delimiter=",", ndmin=2)
    col = {h: table[:, i] for i, h in enumerate(header)}
    rois, roi_idx = np.unique(col["roi"].astype(np.int64), return_inverse=True)
    frames, t_idx = np.unique(col["frame"].astype(np.int64), return_inverse=True)
    data_vars = {}
    for v in TRACE_VARS:
        if v in col:
            arr = np.full((rois.size, frames.size), np.nan)
            arr[roi_idx, t_idx] = col[v]
            data_vars[v] = (("roi", "time"), arr)
    coords: dict[str, Any] = {"roi": rois, "frame": ("time", frames)}
    if "time" in col:
        t = np.full(frames.size, np.nan)
        t[t_idx] = col["time"]
        coords["time"] = ("time", t, {"units": "s"})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# -- suite2p folder ----------------------------------------------------------------------
def _save_suite2p(ds: Any, rois: Any, path: Path) -> Path:
    from .extract import rois_from_result
    from .suite2p import write_suite2p

    return write_suite2p(ds, rois or rois_from_result(ds), path, extra=("F_corrected", "dff"))


def _load_suite2p(folder: Path, allow_pickle: bool):
    import xarray as xr

    if not (folder / "F.npy").exists() and (folder / "plane0" / "F.npy").exists():
        folder = folder / "plane0"
    if not (folder / "F.npy").exists():
        raise MovieFormatError(f"{folder}: no F.npy here; is this a suite2p plane0 folder?")
    data_vars = {}
    for v in ("F", "Fneu", "F_corrected", "dff"):
        if (folder / f"{v}.npy").exists():
            data_vars[v] = (("roi", "time"), np.load(folder / f"{v}.npy", allow_pickle=False))
    n_roi, n_t = data_vars["F"][1].shape
    coords: dict[str, Any] = {"roi": np.arange(1, n_roi + 1), "frame": ("time", np.arange(n_t))}
    attrs: dict[str, Any] = {"source": str(folder)}
    if allow_pickle and (folder / "ops.npy").exists():
        ops = np.load(folder / "ops.npy", allow_pickle=True).item()
        if ops.get("fs"):
            coords["time"] = ("time", np.arange(n_t) / float(ops["fs"]), {"units": "s"})
        for k in ("roitrace_version", "parameters"):
            if k in ops:
                attrs[k] = ops[k]
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# -- netCDF ---------------------------------------------------------------------------
def _save_netcdf(ds: Any, path: Path) -> Path:
    try:
        import h5netcdf  # noqa: F401
    except ImportError as exc:
        raise ParameterError(
            "writing .nc/.h5 needs h5netcdf: pip install 'roitrace[netcdf]'"
        ) from exc
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
    attrs.setdefault("roitrace_version", __version__)
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
