"""Neuropil rings: the background around a cell, whose signal leaks into it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _kernels as kernels
from ._validate import pixels
from ._warnings import warn_user
from .errors import EmptyMaskError
from .threshold import check_mask

if TYPE_CHECKING:
    from .rois import RoiSet

__all__ = ["dilate", "neuropil_ring", "neuropil_rings"]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``skimage.morphology.dilation(mask, disk(radius))``, computed on the mask's
    bounding box only (the same pixels, much faster for small cells in big frames).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(dilate(m, 1).sum())
    5
    """
    from skimage.morphology import dilation, disk

    out = np.zeros(mask.shape, bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    pad = radius + 1
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
    out[y0:y1, x0:x1] = dilation(mask[y0:y1, x0:x1], disk(radius))
    return out


def neuropil_ring(
    mask: Any,
    *,
    gap: int,
    width: int,
    exclude: Any = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """A ring of neuropil pixels ``width`` pixels wide, starting ``gap`` pixels away.

    The notebook's convention exactly::

        dilation(mask, disk(gap + width)) & ~dilation(mask, disk(gap))

    so "1 pixel wide, 2 pixels away" is ``disk(3)`` minus ``disk(2)``.

    Parameters
    ----------
    mask : (M, N) array_like of bool
        The cell's pixels.
    gap : int
        Radius of the inner dilation: pixels within it are left out (0 makes the
        ring touch the cell).
    width : int
        How many pixels wide the ring is (1 or more).
    exclude : (M, N) array_like of bool, optional
        Pixels to remove from the ring, e.g. every cell's pixels.
    allow_empty : bool
        Return an empty ring instead of raising.

    Returns
    -------
    ring : (M, N) ndarray of bool

    Raises
    ------
    EmptyMaskError
        When the ring holds no pixel (clipped away at the image border or fully
        excluded), unless ``allow_empty``.

    Examples
    --------
    >>> import numpy as np
    >>> cell = np.zeros((11, 11), bool); cell[5, 5] = True
    >>> ring = neuropil_ring(cell, gap=2, width=1)
    >>> int(ring.sum()), bool(ring[5, 5]), bool(ring[5, 8])
    (16, False, True)
    """
    mask = check_mask(mask, allow_empty=False)
    gap, width = pixels("gap", gap), pixels("width", width, low=1)
    ring = dilate(mask, gap + width) & ~dilate(mask, gap)
    if exclude is not None:
        ring &= ~check_mask(exclude, mask.shape, name="exclude")
    if not allow_empty and not ring.any():
        raise EmptyMaskError(
            f"the neuropil ring (gap={gap}, width={width}) holds no pixel: it is clipped away "
            "at the image border or covered by excluded pixels; use a wider ring"
        )
    return ring


def neuropil_rings(
    rois: RoiSet,
    *,
    gap: int,
    width: int,
    exclude_gap: int = 0,
    min_pixels: int | None = None,
) -> list[np.ndarray]:
    """Neuropil rings of many cells at once, each avoiding every cell.

    Each ring is :func:`neuropil_ring` of its cell (``gap``, ``width``) minus the
    pixels of all cells dilated by ``exclude_gap``. With ``min_pixels`` a ring too
    small grows outward one pixel of width at a time until it holds that many
    pixels (suite2p uses 350), or fills the frame (warned).

    Computed per cell in a window around it from the exact Euclidean distance to
    the cell (``dilation(mask, disk(r))`` is the set of pixels at distance
    ``<= r``), compiled: a few milliseconds per hundred cells.

    Parameters
    ----------
    rois : RoiSet
    gap, width : int
        As in :func:`neuropil_ring`.
    exclude_gap : int
        Dilation (pixels) of every cell before it is removed from the rings.
    min_pixels : int, optional
        The fewest pixels a ring may have.

    Returns
    -------
    rings : list of ndarray of int
        Each ring's flat pixel indices (``y * X + x``), ascending, one per ROI.

    Raises
    ------
    EmptyMaskError
        A ring holds no pixel (clipped at the border or covered by other cells).

    Examples
    --------
    >>> import numpy as np
    >>> from roitrace import RoiSet
    >>> cell = np.zeros((11, 11), bool); cell[5, 5] = True
    >>> ring = neuropil_rings(RoiSet.from_masks([cell]), gap=2, width=1)[0]
    >>> bool(np.array_equal(ring, np.flatnonzero(neuropil_ring(cell, gap=2, width=1))))
    True
    """
    gap, width = pixels("gap", gap), pixels("width", width, low=1)
    exclude_gap = pixels("exclude_gap", exclude_gap)
    every_cell = rois.coverage() > 0
    exclude = dilate(every_cell, exclude_gap) if exclude_gap else every_cell
    need = int(min_pixels or 0)
    # a window big enough for the ring, and for min_pixels if the cells allow (room
    # for twice the pixels asked for: neighbouring cells take their share)
    margin = gap + width + int(np.sqrt(2 * need / np.pi)) + 2 if need else gap + width + 1
    rings = []
    short: list[tuple[Any, int]] = []
    compiled = kernels.rings_compiled(len(rois))
    for r in rois:
        flat = kernels.cell_ring(r.y, r.x, exclude, gap, width, need, margin, compiled=compiled)
        if flat.size == 0:
            raise EmptyMaskError(
                f"ROI {r.id} ({r.name}): its neuropil ring (gap={gap}, width={width}) holds no "
                "pixel: it is clipped away at the image border or covered by other cells; "
                "use a wider ring"
            )
        if need and flat.size < need:
            short.append((r, flat.size))
        rings.append(flat.astype(np.intp))
    if short:
        _warn_short_rings(short, need, len(rois))
    return rings


def _warn_short_rings(short: list[tuple[Any, int]], need: int, n_rois: int) -> None:
    """One warning for every ring that stayed under ``min_pixels`` (not one per ROI:
    thousands of lines would bury everything else)."""
    if len(short) == 1:
        ((r, size),) = short
        warn_user(
            f"ROI {r.id} ({r.name}): its neuropil ring has only {size} pixels, "
            f"fewer than min_pixels={need}, even at full width",
        )
        return
    listed = ", ".join(f"ROI {r.id} ({size})" for r, size in short[:10])
    more = ", ..." if len(short) > 10 else ""
    warn_user(
        f"{len(short)} of {n_rois} ROIs have neuropil rings with fewer than "
        f"min_pixels={need} pixels, even at full width: {listed}{more}",
    )
