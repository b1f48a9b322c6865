"""The one engine that streams a movie's frames, chunk by chunk.

Every stage that reads pixels (projections, pixel traces, weights, extraction)
goes through :func:`stream`: it reads the requested frames once, in chunks of
frames, and hands each chunk to every *consumer* in turn. A reader thread reads
(and decompresses) the next chunk while the consumers work on the current one;
the consumers' hot loops are compiled kernels (:mod:`roitrace._kernels`). A consumer is any
object with ``update(offset, block)`` (``offset`` is the chunk's position in the
output's time axis, ``block`` a (n, Y, X) array) and ``result()``. Memory stays at
one chunk plus what the consumers keep, whatever the movie's length.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from ._memory import available_memory
from .errors import FrameRangeError, MovieError, ParameterError
from .movie import Movie, as_movie
from .options import Execution

log = logging.getLogger(__name__)

__all__ = [
    "Consumer",
    "available_memory",
    "default_chunk_frames",
    "iter_chunks",
    "resolve_frames",
    "stream",
]

#: Default memory for one chunk of frames (the whole chunk is held at once).
DEFAULT_CHUNK_BYTES = 64 * 1024**2

FramesLike = None | slice | range | tuple[int, int] | Sequence[int] | np.ndarray


class Consumer(Protocol):
    """What :func:`stream` feeds: ``update`` per chunk, ``result`` at the end."""

    def update(self, offset: int, block: np.ndarray) -> None: ...

    def result(self) -> Any: ...


def resolve_frames(n_frames: int, frames: FramesLike = None) -> slice | np.ndarray:
    """Turn a ``frames=`` option into a step-1 slice or an index array, checked.

    ``frames`` may be None (all), a slice or range, a ``(start, stop)`` pair or a
    sequence of frame indices. Out-of-range frames raise :class:`FrameRangeError`.

    Examples
    --------
    >>> resolve_frames(10, (2, 5))
    slice(2, 5, None)
    >>> resolve_frames(10, [1, 3])
    array([1, 3])
    """
    if frames is None:
        return slice(0, n_frames)
    if (
        isinstance(frames, tuple)
        and len(frames) == 2
        and all(isinstance(v, (int, np.integer)) for v in frames)
    ):
        frames = slice(int(frames[0]), int(frames[1]))
    if isinstance(frames, range):
        frames = slice(frames.start, frames.stop, frames.step)
    if isinstance(frames, slice):
        start = 0 if frames.start is None else frames.start
        stop = n_frames if frames.stop is None else frames.stop
        step = 1 if frames.step is None else frames.step
        if start < 0 or stop > n_frames or start >= stop or step < 1:
            raise FrameRangeError(
                f"frames {start}:{stop} are outside the movie's {n_frames} frames or empty; "
                f"use a range within 0:{n_frames}"
            )
        return slice(start, stop) if step == 1 else np.arange(start, stop, step)
    idx = np.asarray(frames)
    if idx.dtype == bool:
        if idx.shape != (n_frames,):
            raise FrameRangeError(
                f"a boolean frames= needs one value per frame ({n_frames}), got {idx.shape}"
            )
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ParameterError("frames= must be a slice, a (start, stop) pair or frame indices")
    if idx.size == 0:
        raise FrameRangeError("frames= selects no frame")
    if idx.min() < 0 or idx.max() >= n_frames:
        raise FrameRangeError(
            f"frames {idx.min()}..{idx.max()} fall outside the movie's {n_frames} frames "
            f"(valid: 0 to {n_frames - 1})"
        )
    return idx.astype(np.intp)


def n_selected(sel: slice | np.ndarray) -> int:
    """How many frames a resolved selection holds."""
    return sel.stop - sel.start if isinstance(sel, slice) else int(sel.size)


def default_chunk_frames(movie: Movie, chunk_bytes: int | None = None) -> int:
    """Frames per chunk so that one chunk takes about ``chunk_bytes`` of memory.

    The default budget is 64 MiB, or ``ROITRACE_CHUNK_MB`` from the environment,
    but never more than 1/8 of the memory currently available.
    """
    if chunk_bytes is None:
        env = os.environ.get("ROITRACE_CHUNK_MB")
        chunk_bytes = int(float(env) * 1024**2) if env else DEFAULT_CHUNK_BYTES
        avail = _available_memory()
        if avail:
            chunk_bytes = min(chunk_bytes, avail // 8)
    return max(1, int(chunk_bytes // max(movie.frame_nbytes, 1)))


def _check_chunk_memory(movie: Movie, n: int, given: bool) -> None:
    """Refuse, before reading, chunks that cannot fit in memory: a chunk is held
    while the next one is read ahead. Only for movies read from a file; a chunk of
    an array in memory is a view of it."""
    if movie.path is None:
        return
    need = 2 * n * movie.frame_nbytes
    avail = _available_memory()
    if avail is None or need <= avail:
        return
    from ._memory import human_bytes as _human

    y, x = movie.frame_shape
    what = f"chunks of {n} frames of {y} x {x} {movie.dtype} take {_human(need / 2)} each"
    if given and n > 1:
        raise ParameterError(
            f"chunk_frames={n}: {what}, and one is read ahead while the other is used: "
            f"more than the {_human(avail)} of memory available; use fewer frames per chunk"
        )
    raise MovieError(
        f"{movie.path}: frames of {y} x {x} {movie.dtype} take {_human(movie.frame_nbytes)} "
        f"each, and reading holds two at once (one read ahead): more than the "
        f"{_human(avail)} of memory available; use a machine with more memory"
    )


def iter_chunks(
    movie: Any,
    *,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    desc: str = "reading",
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset, block)`` over the selected frames, ``block`` (n, Y, X).

    ``offset`` counts frames of the selection (0 for the first selected frame),
    not frames of the file. ``execution`` and the keywords: see
    :class:`roitrace.Execution`.
    """
    ex = Execution.of(execution, frames=frames, chunk_frames=chunk_frames, progress=progress)
    movie = as_movie(movie)
    sel = resolve_frames(movie.n_frames, ex.frames)
    total = n_selected(sel)
    given = ex.chunk_frames is not None
    chunk_frames = ex.chunk_frames or default_chunk_frames(movie, ex.chunk_memory)
    _check_chunk_memory(movie, min(chunk_frames, total), given)
    progress = ex.progress

    def read(off: int) -> np.ndarray:
        n = min(chunk_frames, total - off)
        if isinstance(sel, slice):
            return movie.read(sel.start + off, sel.start + off + n)
        return movie.take(sel[off : off + n])

    offsets = range(0, total, chunk_frames)
    bar = None
    if progress:
        from ._kernels import first_compile

        first = f"{desc} (compiling kernels, once per machine)" if first_compile() else desc
        bar = _progress(total, first)
    # one reader thread fetches (reads, decodes) the next chunk while the consumers
    # work on this one; file reading and decompression release the GIL
    with ThreadPoolExecutor(1, thread_name_prefix="roitrace-read") as reader:
        try:
            pending = reader.submit(read, offsets[0])
            for k, off in enumerate(offsets):
                block = pending.result()
                if k + 1 < len(offsets):
                    pending = reader.submit(read, offsets[k + 1])
                yield off, block
                if bar is not None:
                    bar.advance(block.shape[0], desc)
        finally:
            pending.cancel()
            if bar is not None:
                bar.close()


def stream(
    movie: Any,
    consumers: Sequence[Consumer],
    *,
    execution: Execution | None = None,
    frames: FramesLike = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    desc: str = "reading",
) -> list[Any]:
    """Read the movie once and feed every chunk to every consumer.

    Returns the consumers' results, in order. ``execution`` and the keywords: see
    :class:`roitrace.Execution` (its ``threads`` apply to the compiled kernels
    while the movie is streamed).
    """
    ex = Execution.of(execution, frames=frames, chunk_frames=chunk_frames, progress=progress)
    with kernel_threads(ex.threads):
        for off, block in iter_chunks(movie, execution=ex, desc=desc):
            for c in consumers:
                c.update(off, block)
    return [c.result() for c in consumers]


@contextmanager
def kernel_threads(n: int | None) -> Iterator[None]:
    """Run the compiled kernels on ``n`` threads inside the block (None: as they are)."""
    from . import _kernels as kernels

    if n is None or not kernels.available():
        yield
        return
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if n > most:
        raise ParameterError(
            f"threads={n}: the compiled kernels can use at most {most} threads here "
            "(NUMBA_NUM_THREADS); give a smaller number"
        )
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


# -- progress bar -------------------------------------------------------------------
class _Progress:
    """A rich progress bar that shows frames and frames/s."""

    def __init__(self, total: int, desc: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._p.start()
        self._task = self._p.add_task(desc, total=total, rate="")

    def advance(self, n: int, desc: str | None = None) -> None:
        self._p.advance(self._task, n)
        if desc is not None:
            self._p.update(self._task, description=desc)
        speed = self._p.tasks[0].speed
        if speed:
            self._p.update(self._task, rate=f"{speed:,.0f} frames/s")

    def close(self) -> None:
        self._p.stop()


def _progress(total: int, desc: str) -> _Progress:
    return _Progress(total, desc)


def _available_memory() -> int | None:
    return available_memory()
