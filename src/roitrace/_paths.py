"""Path syntax shared by the readers and the checks before a run.

An HDF5 movie's dataset may be named in its path: ``"run.h5:/imaging"`` is the
dataset ``/imaging`` of ``run.h5``; likewise a Zarr store's array,
``"run.zarr:/group/imaging"``. :func:`roitrace.open_movie` reads such paths, and
the output checks (:mod:`roitrace._atomic`) must know that the file read is
``run.h5`` (the store ``run.zarr``). It is defined once, here, below both.
"""

from __future__ import annotations

import os
import re

__all__ = ["H5_SUFFIXES", "ZARR_MARKERS", "is_zarr_store", "split_dataset_path"]

#: The suffixes of HDF5 movie files.
H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")

#: The files that make a folder a Zarr store (format 3; format 2 array, group).
ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")

#: The suffixes whose files (folders, for Zarr) hold named arrays: ``file:/name``.
_NAMED_SUFFIXES = (*H5_SUFFIXES, ".zarr")

_H5_PATH = re.compile(
    r"^(.*\.(?:" + "|".join(s[1:] for s in _NAMED_SUFFIXES) + r")):(/?.+)$", re.IGNORECASE
)


def split_dataset_path(path: str | os.PathLike) -> tuple[str, str | None]:
    """``(file, dataset)`` for ``"file.h5:/dataset"`` (and ``"store.zarr:/array"``);
    ``(path, None)`` otherwise, and also when a file of that whole name exists (a
    colon in a file's name).

    Examples
    --------
    >>> split_dataset_path("no/such/run.h5:/imaging")
    ('no/such/run.h5', '/imaging')
    >>> split_dataset_path("no/such/run.zarr:/group/imaging")
    ('no/such/run.zarr', '/group/imaging')
    >>> split_dataset_path("movie.tif")
    ('movie.tif', None)
    """
    raw = os.fspath(path)
    if not os.path.exists(raw):
        m = _H5_PATH.match(raw)
        if m:
            return m.group(1), m.group(2)
    return raw, None


def is_zarr_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder that is a Zarr store: named ``*.zarr`` or holding
    Zarr metadata (``zarr.json``, ``.zarray``, ``.zgroup``).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> is_zarr_store(folder)
    False
    >>> open(os.path.join(folder, "zarr.json"), "w").close()
    >>> is_zarr_store(folder)
    True
    """
    if not os.path.isdir(path):
        return False
    if os.fspath(path).rstrip("/" + os.sep).lower().endswith(".zarr"):
        return True
    return any(os.path.isfile(os.path.join(path, m)) for m in ZARR_MARKERS)
