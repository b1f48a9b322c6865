"""Row blocks in threads: per-trace statistics of many traces without big temporaries."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["by_rows"]


def by_rows(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rows: int = 128) -> np.ndarray:
    """``fn`` applied to blocks of rows of a 2-D array, in threads (numpy releases the
    GIL), results stacked: temporaries stay small for long recordings, and every
    core takes a share. ``fn`` must treat rows independently."""
    blocks = [x[i : i + rows] for i in range(0, x.shape[0], rows)]
    if len(blocks) < 2:
        return fn(x)
    with ThreadPoolExecutor(min(len(blocks), os.cpu_count() or 1)) as pool:
        return np.concatenate(list(pool.map(fn, blocks)))
