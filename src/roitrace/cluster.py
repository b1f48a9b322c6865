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

import logging
import os
from typing import Any

from ._optional import require
from .errors import ClusterError, ParameterError

log = logging.getLogger(__name__)

__all__ = ["connect", "worker_threads"]

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
        try:
            return distributed.Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"no Dask scheduler answered at {scheduler} within {timeout:g} s "
                f"({' '.join(str(exc).split())[:200]}); check the address (e.g. "
                "tcp://host:8786) and that the scheduler is running"
            ) from exc
    from ._validate import integer

    workers = integer("workers", workers, low=1)
    cores = os.cpu_count() or 1
    threads = integer("threads", threads, low=1) if threads else max(1, cores // workers)
    # each worker's compiled kernels use that worker's threads, not every core
    env = {"NUMBA_NUM_THREADS": str(threads)}
    return distributed.Client(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
        env=env,
    )


def worker_threads(default: int | None = None) -> int | None:
    """The thread count of the Dask worker running this task (``default`` outside one)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return default
