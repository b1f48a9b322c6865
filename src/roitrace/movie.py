"""Lazy movies: a (time, y, x) view of a TIFF, NumPy, HDF5 file, Zarr store or array.

:func:`open_movie` is the single entry point for files: a lookup in the io registry
of movie formats (:mod:`roitrace.io`: TIFF, HDF5, NumPy, Zarr). It returns a
:class:`Movie` that knows its shape, dtype, frame rate and path but reads pixels only
when asked: ``movie[a:b]`` reads frames ``a`` to ``b - 1``; ``np.asarray(movie)``
reads all. Uncompressed TIFF and ``.npy`` files are memory-mapped; compressed TIFF is
read page by page; HDF5 and Zarr are read through their own chunking. :func:`as_movie` takes
a Movie, a path or an array.

:class:`Movie` and :class:`ArrayMovie` are defined in :mod:`roitrace.io._movie`,
below the formats that subclass them (so that this module may look the formats up
without an import cycle); this module is their public home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._paths import split_dataset_path
from ._validate import frame_rate as check_frame_rate
from .errors import MovieFormatError, MovieNotFoundError, ParameterError
from .io import formats, movie_format
from .io._base import _join, check_read_option
from .io._movie import ArrayMovie, Movie, wrap_array
from .io.hdf5 import H5_SUFFIXES, H5Movie  # noqa: F401 - H5_SUFFIXES, as before
from .io.tiff import TIFF_SUFFIXES, TiffMovie  # noqa: F401 - the command line uses it

__all__ = [
    "ArrayMovie",
    "H5Movie",
    "Movie",
    "MovieSource",
    "TiffMovie",
    "as_movie",
    "open_movie",
]


@dataclass(frozen=True)
class MovieSource:
    """How to open a movie file again: its absolute path and the reader options it
    was opened with. A cluster task receives this, never an open file, and opens the
    movie on its worker (:meth:`open`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npy")
    >>> np.save(path, np.zeros((3, 4, 5), np.uint16))
    >>> src = open_movie(path, frame_rate=30).source
    >>> src.open().shape, src.open().frame_rate
    ((3, 4, 5), 30.0)
    """

    path: str
    options: tuple[tuple[str, Any], ...] = ()

    def open(self) -> Movie:
        """The movie, opened again with the same options."""
        return open_movie(self.path, **dict(self.options))


# -- opening ----------------------------------------------------------------------
def open_movie(
    path: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = None,
    dataset: str | None = None,
    frame_rate: float | None = None,
    truncated: str = "error",
) -> Movie:
    """Open a movie file lazily as (time, y, x).

    Parameters
    ----------
    path : str or path-like
        A TIFF (``.tif``, ``.tiff``, ``.btf``; plain, BigTIFF, ImageJ, OME, several
        pages or series), a NumPy ``.npy`` file, an HDF5 file, or a Zarr store (a
        folder: a Zarr array, a group holding one, or an OME-Zarr image, see
        :mod:`roitrace.io.zarr`). For HDF5 and Zarr the array may be named in the
        path: ``"file.h5:/imaging"``, ``"store.zarr:/group/imaging"``.
    axes : str, optional
        The order of the stored axes for ``.npy``, HDF5 and Zarr, as letters ``T``,
        ``Y``, ``X`` (and ``C`` for a channel axis; for Zarr ``Z`` for planes), e.g.
        ``"YXT"``. Default: the file's dimension names when it has them (HDF5
        labels, Zarr dimension names, OME-Zarr axes), else ``"TYX"``.
    channel : int, optional
        Which channel to keep when the file has a channel axis (ImageJ ``C``,
        TIFF samples ``S``, or ``C`` in ``axes``).
    dataset : str, optional
        The HDF5 dataset or Zarr array holding the movie, e.g. ``"imaging"``. Needed
        when the file holds more than one of 3 or more dimensions.
    frame_rate : float, optional
        Frames per second; overrides what the file records.
    truncated : {"error", "keep"}
        What to do when a TIFF file ends in the middle of a frame: raise (default),
        or keep the complete frames with a warning.

    Returns
    -------
    movie : Movie
        A lazy movie: ``movie.shape`` is (T, Y, X); ``movie[a:b]`` reads frames a
        to b-1; ``np.asarray(movie)`` reads all of it.

    Notes
    -----
    Leading dimensions beyond time (Z planes, several series, an ImageJ channel
    axis that is really time) are flattened into time in C order, with a warning.

    Examples
    --------
    >>> import numpy as np, tempfile, os, tifffile
    >>> path = os.path.join(tempfile.mkdtemp(), "movie.tif")
    >>> tifffile.imwrite(path, np.zeros((10, 4, 5), np.uint16))
    >>> movie = open_movie(path)
    >>> movie.shape, movie.dtype.name
    ((10, 4, 5), 'uint16')
    >>> movie[2:4].shape
    (2, 4, 5)
    """
    raw = os.fspath(path)
    if dataset is None:
        raw, dataset = split_dataset_path(raw)
    p = Path(raw)
    if not p.exists():
        raise MovieNotFoundError(f"{p}: no such file; check the path")
    if p.is_dir() and not any(f.folder and f.can_open(p) for f in formats("movie")):
        # a Zarr store is a folder, which its format claims; any other is not a movie
        raise MovieFormatError(
            f"{p} is a folder; give the movie file inside it (a Zarr store is a folder "
            "named *.zarr or holding zarr.json)"
        )
    if truncated not in ("error", "keep"):
        raise ParameterError(f"truncated={truncated!r}: use 'error' or 'keep'")
    frame_rate = check_frame_rate(frame_rate)
    check_read_option("movie", "dataset", dataset, p)
    fmt = movie_format(p)
    if axes is not None and "axes" not in fmt.read_options:
        takers = [f.title for f in formats("movie") if "axes" in f.read_options]
        raise ParameterError(
            f"{p}: axes= is for {_join(takers)} files; {fmt.title} files carry their own axes"
        )
    given = {
        "axes": axes,
        "channel": channel,
        "dataset": dataset,
        "frame_rate": frame_rate,
        "truncated": truncated,
    }
    options = {k: v for k, v in given.items() if k in fmt.read_options}
    movie = fmt.read(p, **options)
    kept = tuple((k, v) for k, v in options.items() if v is not None)
    movie.source = MovieSource(os.path.abspath(raw), kept)
    return movie


def as_movie(
    data: Any,
    *,
    axes: str | None = None,
    channel: int | None = None,
    frame_rate: float | None = None,
    path: str | os.PathLike | None = None,
) -> Movie:
    """Return ``data`` as a :class:`Movie`: a Movie stays as it is, a path is opened,
    an array is wrapped (after reordering ``axes`` to T, Y, X).

    Examples
    --------
    >>> import numpy as np
    >>> as_movie(np.zeros((5, 3, 4))).shape
    (5, 3, 4)
    """
    if isinstance(data, Movie):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_movie(data, axes=axes, channel=channel, frame_rate=frame_rate)
    return wrap_array(
        data, axes=axes, channel=channel, frame_rate=check_frame_rate(frame_rate), path=path
    )
