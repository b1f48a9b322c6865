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

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from ._memory import available_memory
from ._progress import progress_bar as _progress
from .cluster import frame_ranges
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
    """What :func:`stream` feeds: ``update`` per chunk, ``result`` at the end.

    A consumer whose updates run compiled kernels names them in ``kernels(dtype)``
    (so that the progress bar can say when they compile). A consumer that can run
    on a cluster also has ``part(n_frames)`` (a new, empty
    consumer for a part of the frames, made on a worker), ``merge(offset, part)``
    (that part's sums added in) and, when its sums depend on the first frame (a
    shift), ``prepare(first_frame)``.
    """

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
    kernels: Sequence[str] = (),
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
    if not given and movie.frame_chunk > 1:
        # whole chunks of the file (HDF5, Zarr): a chunk cut in two is decoded twice
        chunk_frames = max(
            movie.frame_chunk, chunk_frames // movie.frame_chunk * movie.frame_chunk
        )
    _check_chunk_memory(movie, min(chunk_frames, total), given)
    progress = ex.progress
    if movie.frame_chunk > 1:  # cut where the file's chunks are cut
        blocks = frame_ranges(sel, task_frames=chunk_frames, frame_chunk=movie.frame_chunk)
    else:
        blocks = [(off, _part(sel, off, chunk_frames)) for off in range(0, total, chunk_frames)]

    def read(frames: slice | np.ndarray) -> np.ndarray:
        if isinstance(frames, slice):
            return movie.stream_range(frames.start, frames.stop)
        return movie.take(frames)

    bar = None
    if progress:
        from ._kernels import first_compile

        # the kernels the consumers will run (their ``kernels`` attribute): the bar
        # says when they compile, which takes seconds, once per machine
        compiling = bool(kernels) and first_compile(kernels)
        first = f"{desc} (compiling kernels, once per machine)" if compiling else desc
        bar = _progress(total, first)
    # one reader thread fetches (reads, decodes) the next chunk while the consumers
    # work on this one; file reading and decompression release the GIL
    with ThreadPoolExecutor(1, thread_name_prefix="roitrace-read") as reader:
        try:
            pending = reader.submit(read, blocks[0][1])
            for k, (off, _) in enumerate(blocks):
                block = pending.result()
                if k + 1 < len(blocks):
                    pending = reader.submit(read, blocks[k + 1][1])
                yield off, block
                movie.release(block)  # the consumers are done with it
                if bar is not None:
                    bar.advance(block.shape[0], desc)
        finally:
            pending.cancel()
            if bar is not None:
                bar.close()


def _part(sel: slice | np.ndarray, off: int, n: int) -> slice | np.ndarray:
    """``n`` frames of a selection from its ``off``-th (fewer at its end)."""
    if isinstance(sel, slice):
        return slice(sel.start + off, min(sel.start + off + n, sel.stop))
    return sel[off : off + n]


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
    if ex.client is not None:
        _stream_on_cluster(as_movie(movie), consumers, ex, desc)
    else:
        _feed(movie, consumers, ex, desc)
    return [c.result() for c in consumers]


def _feed(movie: Any, consumers: Sequence[Consumer], ex: Execution, desc: str) -> None:
    with kernel_threads(ex.threads):
        movie = as_movie(movie)
        names = sorted(
            {k for c in consumers if hasattr(c, "kernels") for k in c.kernels(movie.dtype)}
        )
        for off, block in iter_chunks(movie, execution=ex, desc=desc, kernels=names):
            for c in consumers:
                c.update(off, block)


def task_jobs(movie: Movie, ex: Execution) -> tuple[list[tuple[Any, Any]], int]:
    """The frame ranges of a cluster run, as ``run_tasks`` jobs, and the frame count."""
    from .cluster import default_task_frames, frame_ranges

    sel = resolve_frames(movie.n_frames, ex.frames)
    total = n_selected(sel)
    size = ex.task_frames or default_task_frames(ex.client, total, movie.frame_chunk)
    ranges = frame_ranges(sel, task_frames=size, frame_chunk=movie.frame_chunk)
    return [((off, frames), frames) for off, frames in ranges], total


def _stream_on_cluster(
    movie: Movie, consumers: Sequence[Consumer], ex: Execution, desc: str
) -> None:
    """:func:`stream` on a Dask cluster: each task streams a frame range into new
    parts of the consumers; the parts are merged here in the ranges' order (the
    same order whatever the order they finish in)."""
    from .cluster import run_tasks

    local = [type(c).__name__ for c in consumers if not hasattr(c, "part")]
    if local:
        raise ParameterError(
            f"{', '.join(local)} cannot run on a cluster: leave out client= for this step"
        )
    jobs, total = task_jobs(movie, ex)
    first = movie.take([_first_frame(jobs)])[0]
    for c in consumers:
        if hasattr(c, "prepare"):
            c.prepare(first)
    waiting: dict[int, list[Any]] = {}
    offsets = iter(sorted(off for (off, _), _ in jobs))
    nxt = next(offsets)
    for (off, _), parts in run_tasks(
        ex, movie, jobs, _stream_part, list(consumers), progress_total=total, desc=desc
    ):
        waiting[off] = parts
        while nxt in waiting:  # merge in order; hold only parts that came early
            for c, p in zip(consumers, waiting.pop(nxt), strict=True):
                c.merge(nxt, p)
            nxt = next(offsets, None)


def _first_frame(jobs: list[tuple[Any, Any]]) -> int:
    frames = jobs[0][1]
    return int(frames.start if isinstance(frames, slice) else frames[0])


def _stream_part(
    movie: Movie, ex: Execution, frames: Any, consumers: Sequence[Consumer]
) -> list[Any]:
    """On a worker: one frame range streamed into new parts of the consumers."""
    n = n_selected(resolve_frames(movie.n_frames, frames))
    parts = [c.part(n) for c in consumers]
    _feed(movie, parts, dataclasses.replace(ex, frames=frames), "")
    return parts


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


def _available_memory() -> int | None:
    return available_memory()
