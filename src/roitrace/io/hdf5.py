"""HDF5 movies: one dataset of an HDF5 file, in any axis order, read through h5py's
own chunking (only the frames asked for are read).

The dataset is named with ``dataset=`` or in the path, ``"file.h5:/imaging"``
(:func:`roitrace._paths.split_dataset_path`); a file holding a single dataset of 3
or more dimensions needs neither. The frame rate comes from a ``frame_rate``,
``fs``, ``fps``, ``frameRate`` or ``rate`` attribute of the dataset or the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import _memory
from .._memory import human_bytes as _human
from .._paths import H5_SUFFIXES
from ..errors import MovieFormatError
from ._base import MovieFormat
from ._movie import Movie, _check_axes, _default_axes, check_frame_fits

__all__ = ["H5_SUFFIXES", "H5Movie", "HDF5MovieFormat"]


class HDF5MovieFormat(MovieFormat):
    """Movies as an HDF5 dataset (see :mod:`roitrace.io.hdf5`)."""

    name = "hdf5"
    title = "HDF5"
    suffixes = H5_SUFFIXES
    requires = ("h5py", "h5py", None)
    read_options = ("dataset", "axes", "channel", "frame_rate")

    def _read(
        self,
        path: str | os.PathLike,
        *,
        dataset: str | None = None,
        axes: str | None = None,
        channel: int | None = None,
        frame_rate: float | None = None,
    ) -> Movie:
        return H5Movie(Path(path), dataset, axes, channel, frame_rate)


class H5Movie(Movie):
    """A movie stored as an HDF5 dataset, in any axis order."""

    def __init__(
        self,
        path: Path,
        dataset: str | None,
        axes: str | None,
        channel: int | None,
        frame_rate: float | None,
    ) -> None:
        import h5py

        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise MovieFormatError(f"{path}: not a readable HDF5 file ({exc})") from exc
        self.path = path
        ds = self._find_dataset(dataset)
        self._ds = ds
        axes = _check_axes(axes or _labelled_axes(ds) or _default_axes(ds.ndim), ds.shape, channel)
        self._axes = axes
        self._channel = channel
        t_ax = axes.index("T")
        self._t_axis = t_ax
        self.shape = (ds.shape[t_ax], ds.shape[axes.index("Y")], ds.shape[axes.index("X")])
        self.dtype = ds.dtype
        self.frame_rate = frame_rate if frame_rate is not None else _h5_frame_rate(ds)
        self._check_fits()

    @property
    def frame_chunk(self) -> int:
        chunks = self._ds.chunks
        return int(chunks[self._t_axis]) if chunks else 1

    def _check_fits(self) -> None:
        """A dataset's shape costs nothing to declare (an empty chunked dataset of
        10^7 frames of 10^4 x 10^4 is a file of a few kB): refuse frames, or
        compressed chunks (HDF5 decompresses a whole chunk to read part of it), that
        cannot fit in memory."""
        where = f"{self.path}: dataset {self._ds.name!r}"
        y, x = self.frame_shape
        check_frame_fits(where, f"frames of {y} x {x} {self.dtype}", self.frame_nbytes)
        chunks = self._ds.chunks
        if chunks is not None and self._ds.id.get_create_plist().get_nfilters() > 0:
            chunk_bytes = math.prod(chunks) * self.dtype.itemsize
            avail = _memory.available_memory()
            if avail is not None and chunk_bytes > avail:
                raise MovieFormatError(
                    f"{where} is stored in compressed chunks of {' x '.join(map(str, chunks))} "
                    f"({_human(chunk_bytes)} each), more than the {_human(avail)} of memory "
                    "available, and a chunk is decompressed whole to read any frame of it; "
                    "re-save the dataset with smaller chunks (e.g. one frame per chunk)"
                )

    def _find_dataset(self, name: str | None):
        import h5py

        f = self._file
        if name is not None:
            if name not in f:
                raise MovieFormatError(
                    f"{self.path}: no dataset {name!r}; it holds {_h5_datasets(f) or 'none'}"
                )
            obj = f[name]
            if not isinstance(obj, h5py.Dataset):
                raise MovieFormatError(f"{self.path}:{name} is a group, not a dataset")
            return obj
        found = [n for n in _h5_datasets(f) if f[n].ndim >= 3]
        if len(found) != 1:
            raise MovieFormatError(
                f"{self.path}: say which dataset holds the movie with dataset=... "
                f"(or FILE.h5:/path); candidates: {found or 'none with 3 or more dimensions'}"
            )
        return f[found[0]]

    def _take(self, idx: np.ndarray) -> np.ndarray:
        # h5py wants increasing, unique indices: read those, then reorder.
        uniq, inverse = np.unique(idx, return_inverse=True)
        if uniq.size == uniq[-1] - uniq[0] + 1:
            tsel: Any = slice(int(uniq[0]), int(uniq[-1]) + 1)
        else:
            tsel = uniq
        sel: list[Any] = [slice(None)] * self._ds.ndim
        sel[self._t_axis] = tsel
        if "C" in self._axes:
            sel[self._axes.index("C")] = self._channel
        block = self._ds[tuple(sel)]
        kept = [a for a in self._axes if a != "C"]
        block = np.transpose(block, [kept.index(a) for a in "TYX"])
        if uniq.size != idx.size or np.any(uniq != idx):
            block = block[inverse]  # repeats or another order: a copy
        # a copy only when the stored axes are not T, Y, X: the read block is new
        return np.ascontiguousarray(block)

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()


def _h5_datasets(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return names


def _h5_frame_rate(ds: Any) -> float | None:
    for obj in (ds, ds.file):
        for key in ("frame_rate", "fs", "fps", "frameRate", "rate"):
            if key in obj.attrs:
                try:
                    return float(np.asarray(obj.attrs[key]).reshape(-1)[0])
                except (TypeError, ValueError):
                    continue
    return None


#: HDF5 dimension labels (h5py's ``ds.dims[i].label``) that name an axis roitrace knows.
_AXIS_LABELS = {
    "t": "T", "time": "T", "frame": "T", "frames": "T",
    "y": "Y", "row": "Y", "rows": "Y", "height": "Y",
    "x": "X", "col": "X", "column": "X", "columns": "X", "width": "X",
    "c": "C", "channel": "C", "channels": "C",
}  # fmt: skip


def _labelled_axes(ds: Any) -> str | None:
    """The axis order the dataset's dimension labels say (``ds.dims[i].label``, as
    h5py, netCDF and MATLAB writers set them), when every dimension has a label
    roitrace knows and T, Y and X are all there; else None (the default order)."""
    try:
        labels = [str(d.label).strip().lower() for d in ds.dims]
    except Exception:  # no dimension scales API for this object: the default order
        return None
    axes = "".join(_AXIS_LABELS.get(label, "?") for label in labels)
    if "?" in axes or sorted(axes.replace("C", "")) != ["T", "X", "Y"] or axes.count("C") > 1:
        return None
    return axes
