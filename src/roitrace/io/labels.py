"""ROI sets as label images: one integer per pixel, 0 for background and the ROI's
id for its pixels, as TIFF (``.tif``, ``.tiff``) or NumPy ``.npy``.

A label image holds no weights and no overlap: where ROIs overlap, the later ROI
takes the shared pixels (warned). A TIFF written here records the ROIs' names, the
roitrace version and the source in its metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ..errors import RoiFormatError, ShapeMismatchError
from ..rois import RoiSet
from ._base import RoiFormat

__all__ = ["LabelImageFormat", "read_labels", "write_labels"]


class LabelImageFormat(RoiFormat):
    """ROI sets as label images, TIFF or ``.npy`` (see :mod:`roitrace.io.labels`)."""

    name = "labels"
    title = "label image"
    suffixes = (".tif", ".tiff", ".npy")

    def _read(self, path: str | os.PathLike, *, shape: Any = None) -> RoiSet:
        return read_labels(path)  # the shape is checked by RoiFormat.read

    def _write(self, rois: RoiSet, path: str | os.PathLike) -> Path:
        return write_labels(rois, path)


def read_labels(path: str | os.PathLike) -> RoiSet:
    """One ROI per positive label of a label image file (TIFF or ``.npy``).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.npy")
    >>> np.save(path, np.array([[0, 1], [2, 2]]))
    >>> read_labels(path).ids
    [1, 2]
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            import tifffile

            arr = tifffile.imread(p)
    except Exception as exc:
        raise RoiFormatError(f"{p}: not a readable label image ({exc})") from exc
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ShapeMismatchError(
            f"{p}: a label image must be 2-D (one integer per cell), got shape {arr.shape}"
        )
    return RoiSet.from_labels(arr, source=str(p))


def write_labels(rois: RoiSet, path: str | os.PathLike) -> Path:
    """Write a RoiSet as a label image (TIFF, or ``.npy`` for that suffix), atomically."""
    p = Path(path)
    labels = rois.to_labels()
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, labels)
        else:
            import tifffile

            meta = {"names": rois.names, "roitrace_version": __version__, "source": rois.source}
            tifffile.imwrite(tmp, labels, metadata=meta)
    return p
