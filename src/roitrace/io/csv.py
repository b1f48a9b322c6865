"""Results as CSV: a tidy table, one row per (ROI, frame).

Columns ``roi, name, frame, time, F, Fneu, F_corrected, F0, dff, calcium, spikes``
(those the result holds; a name with a comma, quote or line break is quoted), then
the per-ROI values ``neuropil_factor``, ``neuropil_converged`` (1 or 0), ``noise``
and ``deconvolution_noise`` repeated on each of the ROI's rows, preceded by ``#``
comment lines holding the result's attributes (the parameters, the roitrace
version). Read it with ``pandas.read_csv(path, comment="#")``, or back into a result
with :func:`roitrace.load`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from ..errors import ResultError, ResultFormatError
from ..result import (
    DECONVOLUTION_NOISE,
    FRAME,
    NAME,
    NEUROPIL_CONVERGED,
    NEUROPIL_FACTOR,
    NOISE,
    ROI,
    TIME,
    TRACE_VARS,
    check_result,
)
from ._attrs import attr_text, file_attrs
from ._base import Format

__all__ = ["CSVFormat", "read_csv", "write_csv"]

#: Per-ROI values written as columns (one value repeated on the ROI's rows).
_ROI_COLUMNS = (NEUROPIL_FACTOR, NEUROPIL_CONVERGED, NOISE, DECONVOLUTION_NOISE)


class CSVFormat(Format):
    """Results as a CSV table (see :mod:`roitrace.io.csv`)."""

    name = "csv"
    title = "CSV"
    kind = "result"
    suffixes = (".csv",)

    def _read(self, path: str | os.PathLike) -> Any:
        return read_csv(path)

    def _write(self, result: Any, path: str | os.PathLike) -> Path:
        return write_csv(result, path)


def write_csv(ds: Any, path: str | os.PathLike) -> Path:
    """Write a result as a CSV table, atomically (see :mod:`roitrace.io.csv`)."""
    path = Path(path)
    check_result(ds, needs=(FRAME,), writer="a CSV file")
    names = [v for v in TRACE_VARS if v in ds]
    if not names:
        raise ResultError("the result has no trace variable (F, Fneu, F_corrected, dff)")
    n_t = ds.sizes[TIME]
    numeric = {FRAME: ds[FRAME].values}
    if TIME in ds.coords:
        numeric[TIME] = ds[TIME].values
    header = "".join(f"# {k}: {attr_text(v)}\n" for k, v in file_attrs(ds).items())
    per_roi = [c for c in _ROI_COLUMNS if c in ds.coords or c in ds.data_vars]
    columns = [ROI, *([NAME] if NAME in ds.coords else []), *numeric, *names, *per_roi]
    traces = [ds[v].transpose(ROI, TIME).values for v in names]
    values = [np.asarray(ds[c].values, np.float64) for c in per_roi]
    fmt = ["%d"] + ["%.17g"] * (len(numeric) - 1 + len(names) + len(per_roi))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(header)
        f.write(",".join(columns) + "\n")
        for k, roi in enumerate(ds[ROI].values):
            lead = f"{int(roi)},"
            if NAME in ds.coords:
                lead += _csv_field(str(ds[NAME].values[k])) + ","
            table = np.column_stack(
                [*(np.asarray(c, np.float64) for c in numeric.values())]
                + [t[k] for t in traces]
                + [np.full(n_t, v[k]) for v in values]
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


def read_csv(path: str | os.PathLike) -> Any:
    """Read a CSV table written by :func:`write_csv` back into a result Dataset."""
    import pandas as pd
    import xarray as xr

    path = Path(path)
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
    try:
        rois, roi_idx = np.unique(table[ROI].to_numpy(np.int64), return_inverse=True)
        frames, t_idx = np.unique(table[FRAME].to_numpy(np.int64), return_inverse=True)
        columns = {v: table[v].to_numpy(np.float64) for v in TRACE_VARS if v in table}
        per_roi = {c: table[c].to_numpy(np.float64) for c in _ROI_COLUMNS if c in table}
        times = table[TIME].to_numpy(np.float64) if TIME in table else None
    except (ValueError, TypeError) as exc:  # an empty or text cell: a cut or edited file
        raise ResultFormatError(
            f"{path}: a cell of the table is not a number ({exc}); the file is cut short "
            "or was edited: write it again with roitrace.save"
        ) from exc
    # every ROI has a row for every frame, once: anything else is a damaged table
    cells = roi_idx * frames.size + t_idx
    if len(table) != rois.size * frames.size or np.unique(cells).size != len(table):
        counts = np.bincount(roi_idx, minlength=rois.size)
        raise ResultFormatError(
            f"{path}: the ROIs have {counts.min()} to {counts.max()} rows for "
            f"{frames.size} frames; every ROI has one row per frame in a complete file "
            "(is it cut short?)"
        )
    data_vars = {}
    for v, values in columns.items():
        arr = np.empty((rois.size, frames.size))
        arr[roi_idx, t_idx] = values
        data_vars[v] = ((ROI, TIME), arr)
    coords: dict[str, Any] = {ROI: rois, FRAME: (TIME, frames)}
    if NAME in table:
        names = np.empty(rois.size, object)
        names[roi_idx] = table[NAME].to_numpy()
        coords[NAME] = (ROI, names.astype(str))
    for c, values in per_roi.items():
        col = np.empty(rois.size)
        col[roi_idx] = values
        coords[c] = (ROI, col.astype(bool) if c == NEUROPIL_CONVERGED else col)
    if times is not None:
        t = np.full(frames.size, np.nan)
        t[t_idx] = times
        coords[TIME] = (TIME, t, {"units": "s"})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
