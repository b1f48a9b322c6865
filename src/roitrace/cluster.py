"""The same extraction on a Dask cluster: frame ranges as tasks, merged exactly.

roitrace never builds a cluster itself: the caller gives a ``distributed.Client``
(``Execution(client=...)``, ``extract(..., client=...)``), or :func:`connect` makes one
from a scheduler's address or a few local worker processes (the command line's
``--scheduler`` and ``--workers``). A client of any cluster works the same::

    from dask_jobqueue import SLURMCluster        # or LSFCluster, PBSCluster
    from distributed import Client
    cluster = SLURMCluster(cores=8, processes=1, memory="32GB", walltime="02:00:00")
    cluster.scale(jobs=10)
    client = Client(cluster)
    ds = roitrace.extract("movie.tif", "RoiSet.zip", client=client)

How a run is cut up: the selected frames are cut into ranges (multiples of the file's
chunk length in time); each task receives the movie's :class:`~roitrace.movie.MovieSource`
(its path and reader options, never an open file) and the work (the extraction plan,
scattered once), opens the file on its worker, runs the same engine and kernels on
its range with the worker's own thread count, and returns its block. The client puts
the blocks in place as they arrive (it holds only the traces); sums are merged in
the ranges' order, exact for integer movies, so that the numbers are the same as
without a cluster. A worker that dies mid-task has its tasks run again elsewhere
(Dask's own retry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._optional import require
from .errors import ClusterError, ParameterError

log = logging.getLogger(__name__)

__all__ = ["connect", "default_task_frames", "frame_ranges", "run_tasks", "worker_threads"]

#: How long :func:`connect` waits for a scheduler before it gives up.
CONNECT_TIMEOUT = 10


def _distributed() -> Any:
    return require("distributed", "running on a Dask cluster", pip="'dask[distributed]'",
                   extra="cluster")  # fmt: skip


def connect(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> Any:
    """A Dask client: of the scheduler at ``scheduler``, or of ``workers`` new local
    worker processes (``threads`` each; default: the machine's cores shared out).

    Close it when done (``with connect(workers=2) as client: ...``): a client of
    local workers then stops them.

    Raises
    ------
    ClusterError
        The scheduler did not answer within ``timeout`` seconds.

    Examples
    --------
    >>> connect(workers=1, scheduler="tcp://host:8786")
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: give scheduler= or workers=, not both: ...
    """
    if (scheduler is None) == (workers is None):
        raise ParameterError(
            "give scheduler= or workers=, not both: a scheduler's address "
            "(tcp://host:8786) to use a running cluster, or a number of local workers"
        )
    distributed = _distributed()
    if scheduler is not None:
        if threads is not None:
            raise ParameterError(
                "threads= applies to local workers (workers=); a running cluster's workers "
                "have their thread counts already"
            )
        return _remote_client(distributed, scheduler, timeout)
    from ._validate import integer

    workers = integer("workers", workers, low=1)
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers) if threads is None else integer("threads", threads, low=1)
    # each worker's compiled kernels use that worker's threads, not every core
    env = {"NUMBA_NUM_THREADS": str(threads)}
    with _sigint_ignored():  # Ctrl-C stops the client, which stops its workers in order
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",  # this machine's own: no port open to the network
            dashboard_address="127.0.0.1:0",  # any free port: 8787 may be taken
            env=env,
            # the workers' own log lines (a task cancelled, a connection closed while
            # the run is stopped) are not the user's; the client reports what fails
            silence_logs=logging.CRITICAL,
        )
    # not the default client: other Dask work in this process (xarray's file locks)
    # stays local
    return _local_client_class()(cluster, set_as_default=False)


def _remote_client(distributed: Any, address: str, timeout: float) -> Any:
    """The client of the scheduler at ``address``, or one clear error within about
    ``timeout`` seconds: Dask's own timeout does not cover a port that answers but
    is not a scheduler's (the dashboard's 8787), where it would wait for ever."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:  # before a Client exists: a half-made one complains when it is collected
        protocol, where = parse_address(address)
        if protocol in ("tcp", "tls"):
            parse_host_port(where)
    except ValueError as exc:
        raise ParameterError(
            f"{address!r} is not a Dask scheduler's address ({exc}); write "
            "tcp://host:port, e.g. tcp://10.0.0.5:8786"
        ) from None
    box: dict[str, Any] = {}

    def start() -> None:
        try:
            box["client"] = distributed.Client(
                address, timeout=f"{timeout}s", set_as_default=False
            )
        except BaseException as exc:  # handed over to the caller's thread
            box["error"] = exc

    # a daemon thread: one still waiting on a port that never answers is abandoned
    thread = threading.Thread(target=start, daemon=True, name="roitrace-connect")
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive() or isinstance(box.get("error"), (OSError, TimeoutError)):
        why = f" ({' '.join(str(box['error']).split())[:200]})" if "error" in box else ""
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s{why}; check the "
            "address (e.g. tcp://host:8786: the scheduler's port, not its dashboard's, "
            "usually 8787) and that the scheduler is running"
        )
    if "error" in box:
        raise box["error"]
    return box["client"]


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while local worker processes start: they inherit it, so Ctrl-C
    reaches only this process, which then closes them (without it every worker
    prints its own KeyboardInterrupt traceback)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@functools.cache
def _local_client_class() -> type:
    """A Client that stops its local workers when it is closed (a plain Client
    leaves a cluster it did not start running)."""
    distributed = _distributed()

    class LocalClient(distributed.Client):
        def close(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().close(*args, **kwargs)
            finally:
                self.cluster.close()

    return LocalClient


def worker_threads(default: int | None = None) -> int | None:
    """The thread count of the Dask worker running this task (``default`` outside one)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return default


# -- frame ranges -------------------------------------------------------------------
#: Tasks per worker thread, by default: enough to balance uneven workers and to
#: lose little when one dies, few enough that each task's start-up stays small.
TASKS_PER_THREAD = 4
#: Largest array in memory (not a file) that a cluster run sends to its workers.
MAX_SENT_BYTES = 2 * 1024**3
#: Fewest frames a task gets by default (each task opens the movie and starts a reader).
MIN_TASK_FRAMES = 64


def frame_ranges(
    sel: slice | np.ndarray, *, task_frames: int, frame_chunk: int = 1
) -> list[tuple[int, slice | np.ndarray]]:
    """Cut a frame selection into tasks: ``(offset, frames)`` pairs, ``offset`` in the
    selection, ``frames`` in the movie. Cuts of a step-1 range fall on multiples of
    ``task_frames`` rounded up to the file's chunk length (so no two tasks read the
    same chunk), counted from the movie's first frame.

    Examples
    --------
    >>> [(off, f.start, f.stop) for off, f in frame_ranges(slice(5, 25), task_frames=8)]
    [(0, 5, 8), (3, 8, 16), (11, 16, 24), (19, 24, 25)]
    >>> [off for off, _ in frame_ranges(np.arange(0, 10, 3), task_frames=2)]
    [0, 2]
    """
    if isinstance(sel, slice):
        step = -(-task_frames // frame_chunk) * frame_chunk
        first = (sel.start // step + 1) * step
        cuts = [sel.start, *range(first, sel.stop, step), sel.stop]
        return [(a - sel.start, slice(a, b)) for a, b in itertools.pairwise(cuts)]
    return [(k, sel[k : k + task_frames]) for k in range(0, sel.size, task_frames)]


def default_task_frames(client: Any, n_frames: int, frame_chunk: int) -> int:
    """About :data:`TASKS_PER_THREAD` tasks per worker thread of the cluster, each at
    least :data:`MIN_TASK_FRAMES` frames (or one chunk of the file)."""
    threads = sum(client.nthreads().values()) or 1
    per = -(-n_frames // (TASKS_PER_THREAD * threads))
    return max(per, MIN_TASK_FRAMES, frame_chunk)


# -- running tasks ------------------------------------------------------------------
def run_tasks(
    execution: Any,
    movie: Any,
    jobs: Sequence[tuple[Any, Any]],
    fn: Callable[..., Any],
    *shared: Any,
    progress_total: int | None = None,
    desc: str = "on the cluster",
) -> Iterator[tuple[Any, Any]]:
    """Run ``fn(movie, execution, job, *shared)`` on the cluster once per job; yield
    ``(key, value)`` as the tasks finish.

    ``jobs`` are ``(key, job)`` pairs; each ``job`` is sent to its task, ``shared``
    (the plan, the consumers) is scattered once for all tasks. The worker opens the
    movie from its :class:`~roitrace.movie.MovieSource` (an array in memory is
    scattered once instead) and runs ``fn`` with the execution's chunking and the
    worker's own thread count. ``progress_total``: show a progress bar that advances
    by each key's count of frames (keys are then ``(offset, frames)``).
    """
    distributed = _distributed()
    client = execution.client
    local = dataclasses.replace(execution, client=None, task_frames=None, progress=False)
    _say_if_no_workers(client)
    try:
        ref = _movie_reference(client, movie)
        scattered = [_share(client, item) for item in shared]
        futures = {
            client.submit(
                _task, ref, local, job, fn, *scattered, pure=False, key=_task_key(fn, k)
            ): key
            for k, (key, job) in enumerate(jobs)
        }
    except (OSError, TimeoutError) as exc:
        raise _lost(client, exc) from exc
    bar = None
    if progress_total is not None and execution.progress:
        from ._progress import progress_bar

        bar = progress_bar(progress_total, desc)
    try:
        for future in distributed.as_completed(futures, loop=client.loop):
            key = futures.pop(future)
            yield key, _result(future, key)
            future.release()
            if bar is not None:
                bar.advance(_count(key[1]))
    finally:
        if futures:  # an error, or the caller stopped early: free the cluster
            client.cancel(list(futures))
        if bar is not None:
            bar.close()


def _say_if_no_workers(client: Any) -> None:
    """A scheduler whose workers have not come yet (a batch system's queue): the run
    waits for them, and says so instead of seeming to hang."""
    try:
        none = not client.nthreads()
    except (OSError, TimeoutError):
        return  # the run itself says that the cluster went away
    if none:
        from ._warnings import warn_user

        warn_user(
            f"the Dask scheduler at {_address(client)} has no workers yet: the run waits "
            "for them (interrupt it to stop)"
        )


def _task_key(fn: Callable[..., Any], k: int) -> str:
    import uuid

    return f"roitrace-{fn.__name__.strip('_')}-{k}-{uuid.uuid4().hex[:8]}"


def _count(frames: Any) -> int:
    return frames.stop - frames.start if isinstance(frames, slice) else len(frames)


def _movie_reference(client: Any, movie: Any) -> Any:
    """What a task opens: the file's source, or an array in memory, sent once."""
    if movie.source is not None:
        return movie.source
    if movie.nbytes > MAX_SENT_BYTES:
        from ._memory import human_bytes

        raise ParameterError(
            f"the movie is an array of {human_bytes(movie.nbytes)} in this process, not a "
            "file: on a cluster it would be sent to every worker that needs it; give its "
            "path instead (or roitrace.open_movie(path)), so that each task reads its own "
            "frames"
        )
    return _share(client, np.asarray(movie.read()))


def _share(client: Any, item: Any) -> Any:
    """``item`` sent to the cluster once, for every task that needs it. As a task
    that returns it rather than scattered data: the scheduler keeps the task, so a
    worker that dies holding ``item`` is not the end of it (Dask computes it again;
    scattered data would be lost with the worker, and every task with it)."""
    with warnings.catch_warnings():  # "large graph": sent once, on purpose
        warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
        return client.submit(_itself, item, pure=False, key=_task_key(_itself, 0))


def _itself(item: Any) -> Any:
    return item


def _task(ref: Any, execution: Any, job: Any, fn: Callable[..., Any], *shared: Any) -> Any:
    """One task, on a worker: open the movie, run ``fn`` on the worker's threads."""
    movie = _open_on_worker(ref)
    threads = execution.threads or worker_threads()
    from . import _kernels

    if threads is not None and _kernels.available():
        import numba

        threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    return fn(movie, dataclasses.replace(execution, threads=threads), job, *shared)


def _open_on_worker(ref: Any) -> Any:
    from .errors import InputNotFoundError
    from .io._movie import ArrayMovie

    if isinstance(ref, np.ndarray):
        return ArrayMovie(ref)
    try:
        return _opened(ref, threading.get_ident(), _stamp(ref.path))
    except InputNotFoundError as exc:
        raise ClusterError(
            f"{ref.path}: the cluster's workers cannot see this file ({_where()}): put the "
            "movie on a file system that every worker mounts, at the same path"
        ) from exc


@functools.lru_cache(maxsize=8)
def _opened(source: Any, thread: int, stamp: tuple[int, int] | None) -> Any:
    """The movie, opened once per worker thread and kept for the next tasks (opening
    a TIFF of many pages reads every page's offset); one per thread, because a
    file handle is not shared between threads; opened again when the file changed
    (``stamp``: its size and modification time)."""
    return source.open()


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # open() says what is wrong
    return st.st_size, st.st_mtime_ns


def _where() -> str:
    try:
        from distributed import get_worker

        return f"worker {get_worker().address}"
    except (ImportError, ValueError):
        return "on a worker"


def _result(future: Any, key: Any) -> Any:
    """A task's value; a worker's failure as one clear error."""
    from .errors import RoitraceError

    try:
        return future.result()
    except RoitraceError:
        raise
    except Exception as exc:
        name = type(exc).__name__
        what = _describe(key)
        if name == "KilledWorker":
            raise ClusterError(
                f"the task of {what} killed every worker that ran it: it may need more "
                "memory than a worker has; give the workers more memory or use smaller "
                "task_frames"
            ) from exc
        if name in ("CancelledError", "CommClosedError", "FutureCancelledError") or isinstance(
            exc, (OSError, TimeoutError)
        ):
            raise ClusterError(
                f"the Dask cluster went away while running {what} ({name}): check that "
                "the scheduler and its workers are still running"
            ) from exc
        raise


def _describe(key: Any) -> str:
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], slice):
        return f"frames {key[1].start}:{key[1].stop}"
    return f"part {key}"


def _lost(client: Any, exc: BaseException) -> ClusterError:
    return ClusterError(
        f"the Dask scheduler ({_address(client)}) did not answer ({type(exc).__name__}): "
        "check that it is still running"
    )


def _address(client: Any) -> str:
    try:
        return str(client.scheduler.address)
    except AttributeError:
        return "unknown address"
