"""Path syntax shared by the readers and the checks before a run.

An HDF5 movie's dataset may be named in its path: ``"run.h5:/imaging"`` is the
dataset ``/imaging`` of ``run.h5``. :func:`roitrace.open_movie` reads such paths,
and the output checks (:mod:`roitrace._atomic`) must know that the file read is
``run.h5``. It is defined once, here, below both.
"""

from __future__ import annotations

import os
import re

__all__ = ["H5_SUFFIXES", "split_dataset_path"]

#: The suffixes of HDF5 movie files.
H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")

_H5_PATH = re.compile(
    r"^(.*\.(?:" + "|".join(s[1:] for s in H5_SUFFIXES) + r")):(/?.+)$", re.IGNORECASE
)


def split_dataset_path(path: str | os.PathLike) -> tuple[str, str | None]:
    """``(file, dataset)`` for ``"file.h5:/dataset"``; ``(path, None)`` otherwise, and
    also when a file of that whole name exists (a colon in a file's name).

    Examples
    --------
    >>> split_dataset_path("no/such/run.h5:/imaging")
    ('no/such/run.h5', '/imaging')
    >>> split_dataset_path("movie.tif")
    ('movie.tif', None)
    """
    raw = os.fspath(path)
    if not os.path.exists(raw):
        m = _H5_PATH.match(raw)
        if m:
            return m.group(1), m.group(2)
    return raw, None
