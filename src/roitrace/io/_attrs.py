"""Attributes as files hold them: text and numbers (CSV comment lines, netCDF
attributes, TIFF metadata), every file recording the roitrace version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..result import ROITRACE_VERSION

__all__ = ["attr_text", "file_attrs", "jsonable", "netcdf_attr"]


def file_attrs(ds: Any) -> dict[str, Any]:
    """The Dataset's attributes, with the roitrace version when it records none."""
    attrs = dict(ds.attrs)
    attrs.setdefault(ROITRACE_VERSION, __version__)
    return attrs


def attr_text(v: Any) -> str:
    """An attribute as text: strings as they are, anything else as JSON."""
    return v if isinstance(v, str) else json.dumps(jsonable(v))


def netcdf_attr(v: Any) -> Any:
    """netCDF attributes hold strings and numbers only: no bool, None, dict or list."""
    if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, (dict, list, tuple)):
        return attr_text(v)
    return v


def jsonable(v: Any) -> Any:
    """``v`` with numpy scalars and arrays, tuples and paths made JSON's types."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return v
