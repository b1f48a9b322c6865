"""NumPy movies: a ``.npy`` file holding a (time, y, x) array (or another axis order,
given with ``axes=``), memory-mapped: frames are read with ``pread`` when asked for.
Pickled (object) arrays are refused: they can run code when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MovieFormatError
from ._base import MovieFormat
from ._movie import Movie, check_frame_fits, wrap_array

__all__ = ["NumpyMovieFormat", "read_npy_movie"]


class NumpyMovieFormat(MovieFormat):
    """Movies as NumPy ``.npy`` files (see :mod:`roitrace.io.numpy`)."""

    name = "numpy"
    title = "NumPy"
    suffixes = (".npy",)
    read_options = ("axes", "channel", "frame_rate")

    def _read(
        self,
        path: str | os.PathLike,
        *,
        axes: str | None = None,
        channel: int | None = None,
        frame_rate: float | None = None,
    ) -> Movie:
        return read_npy_movie(path, axes=axes, channel=channel, frame_rate=frame_rate)


def read_npy_movie(
    path: str | os.PathLike,
    *,
    axes: str | None = None,
    channel: int | None = None,
    frame_rate: float | None = None,
) -> Movie:
    """A ``.npy`` file as a lazy (memory-mapped) movie, its ``axes`` reordered to T, Y, X.

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "yxt.npy")
    >>> np.save(path, np.zeros((4, 5, 30), np.uint16))
    >>> read_npy_movie(path, axes="YXT").shape
    (30, 4, 5)
    """
    p = Path(path)
    try:
        data = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MovieFormatError(f"{p}: not a readable .npy array ({exc})") from exc
    movie = wrap_array(data, axes=axes, channel=channel, frame_rate=frame_rate, path=p)
    y, x = movie.frame_shape
    check_frame_fits(f"{p}: the array", f"frames of {y} x {x} {movie.dtype}", movie.frame_nbytes)
    return movie
