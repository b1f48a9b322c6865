"""The lazy movie every movie format returns: :class:`Movie`, and :class:`ArrayMovie`
for arrays in memory and memory-mapped ``.npy`` files.

A :class:`Movie` knows its shape, dtype, frame rate and path but reads pixels only
when asked: ``movie[a:b]`` reads frames ``a`` to ``b - 1``; ``np.asarray(movie)``
reads all. The formats (:mod:`roitrace.io.tiff`, :mod:`roitrace.io.hdf5`,
:mod:`roitrace.io.numpy`) subclass it; :mod:`roitrace.movie` is its public home
(``roitrace.movie.Movie`` is this class).
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _memory
from .._memory import human_bytes as _human
from ..errors import FrameRangeError, MovieFormatError, NotAMovieError, ParameterError

__all__ = ["ArrayMovie", "Movie", "check_frame_fits", "wrap_array"]


class Movie:
    """A lazy (time, y, x) movie. Subclasses implement :meth:`_take`.

    Attributes
    ----------
    shape : tuple of int
        ``(T, Y, X)``: frames, rows, columns.
    dtype : numpy.dtype
        The pixels' type as stored (never converted).
    frame_rate : float or None
        Frames per second when the file records it (or it was given), else None.
    path : pathlib.Path or None
        The file the movie comes from; None for an in-memory array.
    source : roitrace.movie.MovieSource or None
        How to open the same movie again (its path and the reader options it was
        opened with), for a cluster worker; None for an array in memory.
    frame_chunk : int
        Frames the file stores together (an HDF5 or Zarr chunk's length in time;
        1 for TIFF pages and ``.npy``): a cluster's frame ranges are multiples of it.
    """

    shape: tuple[int, int, int]
    dtype: np.dtype
    frame_rate: float | None
    path: Path | None
    #: set by :func:`roitrace.open_movie` (a ``roitrace.movie.MovieSource``)
    source: Any = None

    ndim = 3

    @property
    def frame_chunk(self) -> int:
        return 1

    @property
    def n_frames(self) -> int:
        return self.shape[0]

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.shape[1], self.shape[2]

    @property
    def frame_nbytes(self) -> int:
        return self.shape[1] * self.shape[2] * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.n_frames * self.frame_nbytes

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        src = str(self.path) if self.path is not None else "in memory"
        rate = f", {self.frame_rate:g} Hz" if self.frame_rate else ""
        t, y, x = self.shape
        return f"<{type(self).__name__} {t} frames x {y} x {x} {self.dtype}{rate}, {src}>"

    # -- reading -----------------------------------------------------------------
    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Read frames ``start`` to ``stop - 1`` as a (n, Y, X) array."""
        stop = self.n_frames if stop is None else stop
        if not 0 <= start <= stop <= self.n_frames:
            raise FrameRangeError(
                f"frames {start}:{stop} are outside the movie's {self.n_frames} frames "
                f"(valid: 0 to {self.n_frames}); ask for a range inside it"
            )
        return self._read_range(start, stop)

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Read the frames at ``indices`` (any order, repeats allowed)."""
        idx = np.asarray(indices, dtype=np.intp).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_frames):
            bad = idx[(idx < 0) | (idx >= self.n_frames)][0]
            raise FrameRangeError(
                f"frame {bad} is outside the movie's {self.n_frames} frames "
                f"(valid: 0 to {self.n_frames - 1})"
            )
        if idx.size == 0:
            return np.empty((0, *self.frame_shape), self.dtype)
        return self._take(idx)

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        return self._take(np.arange(start, stop, dtype=np.intp))

    def _take(self, idx: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- streaming (the engine) ---------------------------------------------------
    def stream_range(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` for the engine, which only reads them and
        calls :meth:`release` when done: possibly a read-only view of a memory map
        (no copy), its pages already faulted in. Others use :meth:`read`."""
        return self.read(start, stop)

    def release(self, block: np.ndarray) -> None:
        """The engine is done with a block from :meth:`stream_range`: a view of a
        memory map gives its pages back, so that streaming a movie larger than
        memory does not fill the process's resident memory."""
        release_mapped(block)

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.n_frames if key < 0 else 0)
            out = self.take([i])[0]
            return out[rest] if rest else out
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n_frames)
            out = self.read(start, stop) if step == 1 else self.take(range(start, stop, step))
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.where(idx < 0, idx + self.n_frames, idx)
            out = self.take(idx)
        return out[(slice(None), *rest)] if rest else out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = self.read()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    # -- resources ----------------------------------------------------------------
    def close(self) -> None:
        """Release the file handle (the movie can no longer be read)."""

    def __del__(self) -> None:
        # A lazy movie owns an open file; release it when the movie is dropped.
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> Movie:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArrayMovie(Movie):
    """A movie backed by an array in memory or a memory-mapped ``.npy`` file."""

    def __init__(
        self,
        data: np.ndarray,
        *,
        frame_rate: float | None = None,
        path: str | os.PathLike | None = None,
    ) -> None:
        if data.ndim != 3:
            raise NotAMovieError(_not_a_movie_message(data.shape))
        self._data = data
        self.shape = tuple(int(n) for n in data.shape)  # type: ignore[assignment]
        self.dtype = data.dtype
        self.frame_rate = frame_rate
        self.path = Path(path) if path is not None else None

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        if isinstance(self._data, np.memmap) and self._data.flags.c_contiguous:
            return _read_raw(self._data, np.arange(start, stop))
        return np.asarray(self._data[start:stop])

    def _take(self, idx: np.ndarray) -> np.ndarray:
        if isinstance(self._data, np.memmap) and self._data.flags.c_contiguous:
            return _read_raw(self._data, idx)
        return np.asarray(self._data[idx])

    def stream_range(self, start: int, stop: int) -> np.ndarray:
        if isinstance(self._data, np.memmap):
            view = map_rows(self._data, start, stop)
            if view is not None:
                return view
        return self.read(start, stop)


def wrap_array(
    data: Any,
    *,
    axes: str | None = None,
    channel: int | None = None,
    frame_rate: float | None = None,
    path: str | os.PathLike | None = None,
) -> ArrayMovie:
    """An array (or array-like) as an :class:`ArrayMovie`, its ``axes`` reordered to
    T, Y, X and the ``channel`` kept when there is a C axis; ``frame_rate`` is taken
    as checked.

    Examples
    --------
    >>> wrap_array(np.zeros((4, 5, 3)), axes="YXT").shape
    (3, 4, 5)
    """
    arr = data if isinstance(data, np.ndarray) else np.asarray(data)
    if arr.ndim == 2 and axes is None:
        raise NotAMovieError(_not_a_movie_message(arr.shape))
    axes = _check_axes(axes or _default_axes(arr.ndim), arr.shape, channel)
    if "C" in axes:
        arr = np.take(arr, channel, axis=axes.index("C"))
        axes = axes.replace("C", "")
    arr = np.transpose(arr, [axes.index(a) for a in "TYX"])
    return ArrayMovie(arr, frame_rate=frame_rate, path=path)


#: madvise(2) options that Python's mmap module may not name: fault pages in now
#: (Linux 5.14+), give them back (pages of a file mapping stay in the page cache).
_MADV_POPULATE_READ = 22
_PAGE = mmap.PAGESIZE
# blocks handed out by map_rows: id -> (weak reference, memory map, first byte, bytes)
_MAPPED: dict[int, tuple[Any, mmap.mmap, int, int]] = {}


def map_rows(mm: np.memmap, start: int, stop: int) -> np.ndarray | None:
    """Rows ``start:stop`` of a read-only memory map as a view (no copy), its pages
    faulted in here (the engine's reader thread) rather than by the kernels; None
    where a view cannot be given back safely (a writable or copy-on-write map,
    another byte order, a map not made by numpy) and the rows must be read."""
    base = mm.base
    while isinstance(base, np.ndarray):  # a view of the map (reordered axes, a slice)
        base = base.base
    if (
        getattr(mm, "mode", None) != "r"
        or not isinstance(base, mmap.mmap)
        or not mm.flags.c_contiguous
        or not mm.dtype.isnative
        or not hasattr(base, "madvise")
        or stop <= start
    ):
        return None
    view = np.asarray(mm[start:stop])
    first = view.__array_interface__["data"][0] - _address(base)
    lo, hi = first // _PAGE * _PAGE, first + view.nbytes
    try:
        base.madvise(_MADV_POPULATE_READ, lo, hi - lo)
    except (OSError, ValueError):  # an older kernel: touch one value per page
        flat = view.reshape(-1)
        int(flat[:: max(1, _PAGE // flat.itemsize)].sum(dtype=np.int64))
    key = id(view)
    _MAPPED[key] = (
        weakref.ref(view, lambda _, k=key: _MAPPED.pop(k, None)),
        base,
        first,
        view.nbytes,
    )
    return view


def release_mapped(block: np.ndarray) -> None:
    """Give back the pages of a block :func:`map_rows` handed out (those wholly
    inside it: a page shared with the next block stays), so that they leave the
    process's resident memory; its values stay readable (from the page cache)."""
    entry = _MAPPED.pop(id(block), None)
    if entry is None or entry[0]() is not block:
        return
    _, base, first, nbytes = entry
    lo = -(-first // _PAGE) * _PAGE
    hi = (first + nbytes) // _PAGE * _PAGE
    if hi > lo:
        try:
            base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):  # closed, or not allowed: the kernel evicts them later
            pass


def _address(m: mmap.mmap) -> int:
    """The address of a memory map's first byte."""
    return np.frombuffer(m, np.uint8, count=1).__array_interface__["data"][0]


def _read_raw(mm: np.memmap, rows: np.ndarray) -> np.ndarray:
    """Rows (frames or pages) of a memory-mapped file, read with ``pread`` into a new
    array instead of through the mapping: pages touched through a mapping count
    in the process's resident memory until the kernel evicts them, so streaming a
    movie larger than memory through one would look (and act) like loading it."""
    out = np.empty((rows.size, *mm.shape[1:]), mm.dtype)
    if rows.size == 0:
        return out
    if (
        not hasattr(os, "preadv")
        or mm.filename is None
        or not isinstance(mm.base, mmap.mmap)
        or getattr(mm, "mode", None) == "c"  # copy-on-write: memory may differ from the file
    ):
        out[...] = mm[rows]  # a view into a mapping: its offset is not the file's
        return out
    row_bytes = out[0].nbytes if out.ndim > 1 else out.itemsize
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    fd = os.open(mm.filename, os.O_RDONLY)
    try:
        for k0, k1 in zip(
            np.r_[0, breaks], np.r_[breaks, rows.size], strict=True
        ):  # one read per run of consecutive rows
            view = memoryview(out[k0:k1].reshape(-1)).cast("B")
            pos = mm.offset + int(rows[k0]) * row_bytes
            done = 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], pos + done)
                if n == 0:
                    raise MovieFormatError(
                        f"{mm.filename}: the file ended while reading frames "
                        f"{rows[k0]}-{rows[k1 - 1]}; it was truncated while open"
                    )
                done += n
    finally:
        os.close(fd)
    return out


def check_frame_fits(where: str, frames: str, nbytes: int) -> None:
    """Refuse frames (as the file claims them) that cannot fit in memory before
    anything is allocated: roitrace reads whole frames, so one must fit, and the
    claim may be a lie (a damaged or hostile header)."""
    avail = _memory.available_memory()
    if avail is not None and nbytes > avail:
        raise MovieFormatError(
            f"{where} claims {frames} ({_human(nbytes)} each), more than the "
            f"{_human(avail)} of memory available: roitrace reads whole frames, so a frame "
            "must fit in memory; check that the file is what it claims, or use a machine "
            "with more memory"
        )


def _not_a_movie_message(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return (
            f"got a 2-D image of shape {shape}, not a movie: roitrace needs a (time, y, x) "
            "stack; for a single frame use image[np.newaxis]"
        )
    return f"got an array of shape {shape}; a movie must have 3 dimensions (time, y, x)"


def _default_axes(ndim: int) -> str:
    if ndim != 3:
        raise NotAMovieError(
            f"the data has {ndim} dimensions; give axes= (letters T, Y, X and C) to say "
            "which is which"
        )
    return "TYX"


def _check_axes(axes: str, shape: tuple[int, ...], channel: int | None) -> str:
    axes = axes.upper()
    if len(axes) != len(shape) or sorted(axes) not in (sorted("TYX"), sorted("CTYX")):
        raise ParameterError(
            f"axes={axes!r} does not describe data of shape {shape}: use one letter per "
            "dimension, each of T, Y, X once (and C for a channel axis), e.g. 'YXT'"
        )
    if "C" in axes:
        if channel is None:
            raise ParameterError(
                f"the data has a channel axis C of size {shape[axes.index('C')]}: pass "
                "channel= to choose one"
            )
        _check_channel(channel, shape[axes.index("C")], "the data")
    elif channel is not None:
        raise ParameterError(f"channel={channel} was given but axes={axes!r} has no C")
    return axes


def _check_channel(channel: int, n: int, where: object) -> None:
    if not 0 <= channel < n:
        raise ParameterError(f"{where}: channel={channel} but there are {n} channels (0..{n - 1})")
