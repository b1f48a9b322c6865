"""Results as netCDF4 (HDF5) files: the result Dataset itself, through h5netcdf.

``.nc``, ``.h5`` and ``.hdf5`` hold the same: every variable and coordinate of the
result, its attributes as text and numbers (netCDF holds no bool, None, dict or
list: those become JSON text).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._atomic import atomic_path, write_bytes
from .._optional import require
from ..errors import ResultFormatError, RoitraceError
from ..result import ROI, TRACE_VARS, check_result
from ._attrs import file_attrs, netcdf_attr
from ._base import Format

__all__ = ["NetCDFFormat", "read_netcdf", "write_netcdf"]


class NetCDFFormat(Format):
    """Results as netCDF4 / HDF5 files (see :mod:`roitrace.io.netcdf`)."""

    name = "netcdf"
    title = "netCDF"
    kind = "result"
    suffixes = (".nc", ".h5", ".hdf5")
    requires = ("h5netcdf", "h5netcdf", None)

    def _read(self, path: str | os.PathLike) -> Any:
        return read_netcdf(path)

    def _write(self, result: Any, path: str | os.PathLike) -> Path:
        return write_netcdf(result, path)


def write_netcdf(ds: Any, path: str | os.PathLike) -> Path:
    """Write a result as a netCDF4 file (h5netcdf), atomically.

    The file is made in memory first and then written as bytes: HDF5 crashes the
    process when a write to disk fails.
    """
    path = Path(path)
    check_result(ds, needs=(), writer="a netCDF file")
    require("h5netcdf", f"writing {path} ({path.suffix})")
    out = ds.copy()
    out.attrs = {k: netcdf_attr(v) for k, v in file_attrs(ds).items()}
    try:
        # in memory first: HDF5 crashes the process when a write to disk fails
        with _local_locks():
            data = out.to_netcdf(engine="h5netcdf", invalid_netcdf=False)
    except ValueError:  # xarray before 2025 writes netCDF4 bytes with netCDF4-python only
        with atomic_path(path) as tmp:
            out.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        return path
    return write_bytes(path, data)


@contextlib.contextmanager
def _local_locks() -> Iterator[None]:
    """xarray locks its writes with a Dask cluster's lock when a ``distributed``
    client is the default one, which fails for a file in memory; the data are in
    memory here, so a local lock is right."""
    if "dask" not in sys.modules:
        yield
        return
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


def read_netcdf(path: str | os.PathLike) -> Any:
    """Read a netCDF4 file written by :func:`write_netcdf` back into a result Dataset
    (loaded into memory: the file is closed when this returns)."""
    import xarray as xr

    path = Path(path)
    require("h5netcdf", f"reading {path} ({path.suffix})")
    try:
        with warnings.catch_warnings():
            # an HDF5 file that is not netCDF (a movie): h5netcdf warns, then names its
            # dimensions phony_dim_*; the check below says what is wrong instead
            warnings.simplefilter("ignore", UserWarning)
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                ds = ds.load()
    except (RoitraceError, MemoryError):
        raise
    except Exception as exc:  # h5py, h5netcdf, xarray: OSError, ValueError, KeyError...
        raise ResultFormatError(
            f"{path}: not a readable netCDF (HDF5) file ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); is it a complete file written by "
            "roitrace.save?"
        ) from exc
    if not any(v in ds for v in TRACE_VARS) or ROI not in ds.dims:
        found = ", ".join(list(ds.data_vars)[:5]) or "no variables"
        raise ResultFormatError(
            f"{path}: not a roitrace result (it holds {found}, and no F, Fneu, F_corrected "
            "or dff by roi); a movie is read with roitrace.open_movie"
        )
    return ds
