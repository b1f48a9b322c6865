"""ROI sets: the cells of one field of view, each a list of pixels with optional weights.

A :class:`RoiSet` is what every ROI source becomes (a label image, a thresholded
mask split into cells, ImageJ ROIs, suite2p's ``stat.npy``, an NWB
PlaneSegmentation) and what :func:`roitrace.extract` consumes.

No file format lives here: :func:`roitrace.read_rois` and :func:`roitrace.write_rois`
(:mod:`roitrace.io`) read and write ROI files.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._warnings import warn_user
from .errors import EmptyMaskError, ParameterError, ShapeMismatchError

__all__ = ["Roi", "RoiSet", "label"]


@dataclass(frozen=True)
class Roi:
    """One cell: its pixels ``(y, x)``, optional per-pixel ``weights``, ``id`` and ``name``."""

    id: int
    y: np.ndarray
    x: np.ndarray
    weights: np.ndarray | None = None
    name: str = ""

    @property
    def npix(self) -> int:
        return int(self.y.size)

    @property
    def centroid(self) -> tuple[float, float]:
        return float(self.y.mean()), float(self.x.mean())

    def mask(self, frame_shape: tuple[int, int]) -> np.ndarray:
        m = np.zeros(frame_shape, bool)
        m[self.y, self.x] = True
        return m


@dataclass
class RoiSet:
    """The ROIs of one field of view, for frames of shape ``frame_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[0, 1, 1], [2, 0, 0]])
    >>> rois = RoiSet.from_labels(labels)
    >>> len(rois), rois.ids, [r.npix for r in rois]
    (2, [1, 2], [2, 1])
    """

    rois: list[Roi]
    frame_shape: tuple[int, int]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame_shape = (int(self.frame_shape[0]), int(self.frame_shape[1]))
        # Every check is vectorised over all ROIs at once: ImageJ sets and suite2p
        # results hold 10^4-10^5 ROIs, and per-ROI work (list.count was quadratic)
        # took minutes there.
        ids = np.fromiter((r.id for r in self.rois), np.int64, len(self.rois))
        if np.unique(ids).size != ids.size:
            uniq, counts = np.unique(ids, return_counts=True)
            dup = uniq[counts > 1].tolist()
            raise ParameterError(
                f"duplicate ROI ids {dup[:10]}{self._where()}: ids must be unique"
            )
        if not self.rois:
            return
        ny, nx = self.frame_shape
        ys, xs, sizes = self._pixels()
        bad = (ys < 0) | (xs < 0) | (ys >= ny) | (xs >= nx)
        if bad.any():
            # only now find which ROI the first stray pixel belongs to
            k = int(np.searchsorted(np.cumsum(sizes), int(np.argmax(bad)), side="right"))
            r = self.rois[k]
            raise ShapeMismatchError(
                f"ROI {r.id} {r.name!r} has pixels outside the {ny} x {nx} frame"
                f"{self._where()}; were the ROIs made for another frame size?"
            )

    def _pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every ROI's rows and columns concatenated (int64), and each ROI's pixel count."""
        sizes = np.fromiter((r.y.size for r in self.rois), np.int64, len(self.rois))
        if not self.rois:
            empty = np.zeros(0, np.int64)
            return empty, empty, sizes
        ys = np.concatenate([np.asarray(r.y).reshape(-1) for r in self.rois]).astype(
            np.int64, copy=False
        )
        xs = np.concatenate([np.asarray(r.x).reshape(-1) for r in self.rois]).astype(
            np.int64, copy=False
        )
        return ys, xs, sizes

    def _where(self) -> str:
        return f" in {self.source}" if self.source else ""

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_labels(
        cls, labels: Any, *, names: Sequence[str] | None = None, source: str = ""
    ) -> RoiSet:
        """One ROI per positive label of an integer label image (0 = background)."""
        arr = np.asarray(labels)
        if arr.ndim != 2:
            raise ShapeMismatchError(f"a label image must be 2-D, got shape {arr.shape}")
        if arr.dtype == bool:
            arr = arr.astype(np.int32)
        if not np.issubdtype(arr.dtype, np.integer):
            if np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise ParameterError(f"labels must be integers, got {arr.dtype} values")
        if arr.size and arr.min() < 0:
            raise ParameterError("label images use 0 for background and positive ids for cells")
        flat = arr.reshape(-1)
        order = np.argsort(flat, kind="stable")  # stable keeps np.where order per label
        sorted_labels = flat[order]
        ids = np.unique(flat)
        ids = ids[ids > 0]
        starts = np.searchsorted(sorted_labels, ids, side="left")
        stops = np.searchsorted(sorted_labels, ids, side="right")
        nx = arr.shape[1]
        rois = []
        for k, (i, a, b) in enumerate(zip(ids, starts, stops, strict=True)):
            idx = order[a:b]
            name = names[k] if names is not None else f"roi {int(i)}"
            rois.append(Roi(int(i), idx // nx, idx % nx, None, name))
        return cls(rois, arr.shape, source=source)

    @classmethod
    def from_masks(
        cls,
        masks: Any,
        *,
        ids: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        source: str = "",
    ) -> RoiSet:
        """One ROI per boolean mask of a (n, Y, X) stack (masks may overlap)."""
        stack = np.asarray(masks, dtype=bool)
        if stack.ndim == 2:
            stack = stack[np.newaxis]
        if stack.ndim != 3:
            raise ShapeMismatchError(f"masks must be (n, Y, X), got shape {stack.shape}")
        rois = []
        for k, m in enumerate(stack):
            y, x = np.nonzero(m)
            i = int(ids[k]) if ids is not None else k + 1
            rois.append(Roi(i, y, x, None, names[k] if names is not None else f"roi {i}"))
        return cls(rois, stack.shape[1:], source=source)

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rois)

    def __iter__(self) -> Iterator[Roi]:
        return iter(self.rois)

    def __getitem__(self, i: int) -> Roi:
        return self.rois[i]

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rois]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rois]

    def to_labels(self) -> np.ndarray:
        """A label image; where ROIs overlap the later ROI wins (warned).

        Examples
        --------
        >>> import numpy as np
        >>> a = Roi(1, np.array([0, 0]), np.array([0, 1]))
        >>> b = Roi(7, np.array([1]), np.array([2]))
        >>> RoiSet([a, b], (2, 3)).to_labels()
        array([[1, 1, 0],
               [0, 0, 7]], dtype=int32)
        """
        nx = self.frame_shape[1]
        out = np.zeros(self.frame_shape, np.int32)
        if not self.rois:
            return out
        ys, xs, sizes = self._pixels()
        flat = ys * nx + xs
        owner = np.repeat(np.arange(len(self.rois)), sizes)
        # the last occurrence of each pixel is the later ROI's: unique() on the
        # reversed order finds it in one sort, whatever the number of ROIs
        pix, first_rev = np.unique(flat[::-1], return_index=True)
        last = flat.size - 1 - first_rev
        ids = np.fromiter((r.id for r in self.rois), np.int64, len(self.rois))
        out.reshape(-1)[pix] = ids[owner[last]]
        # a pixel listed twice by one ROI is no overlap: count distinct (pixel, ROI) pairs
        if pix.size < flat.size and np.unique(flat * len(self.rois) + owner).size > pix.size:
            warn_user(
                "ROIs overlap: in the label image the later ROI takes shared pixels",
            )
        return out

    def to_imagej(self, path: str | os.PathLike) -> Path:
        """Write the ROIs as an ImageJ/Fiji ``RoiSet.zip`` of outlines (see
        :func:`roitrace.imagej.write_imagej`)."""
        return _io().write_rois(self, path, format="imagej")

    def to_nwb(self, path: str | os.PathLike, **options: Any) -> Path:
        """Write the ROIs alone (no traces) as an NWB PlaneSegmentation; ``options``
        are those of :func:`roitrace.nwb.write_nwb_rois` (subject, indicator...)."""
        return _io().write_rois(self, path, format="nwb", **options)

    def to_label_image(self, path: str | os.PathLike) -> Path:
        """Write the ROIs as a label image, TIFF or ``.npy`` (see
        :func:`roitrace.io.labels.write_labels`)."""
        return _io().write_rois(self, path, format="labels")

    def masks(self) -> np.ndarray:
        """A (n, Y, X) boolean stack, one mask per ROI.

        It takes ``n * Y * X`` bytes (5 GB for 20,000 ROIs of 512 x 512 frames):
        for many ROIs use :meth:`to_labels`, :meth:`coverage` or the ROIs' own
        pixels instead.

        Examples
        --------
        >>> import numpy as np
        >>> RoiSet.from_labels(np.array([[1, 0], [2, 2]])).masks().astype(int).tolist()
        [[[1, 0], [0, 0]], [[0, 0], [1, 1]]]
        """
        ny, nx = self.frame_shape
        out = np.zeros((len(self), ny * nx), bool)
        if self.rois:
            ys, xs, sizes = self._pixels()
            out[np.repeat(np.arange(len(self.rois)), sizes), ys * nx + xs] = True
        return out.reshape(len(self), ny, nx)

    def centroids(self) -> np.ndarray:
        """Every ROI's centroid ``(y, x)``, an (N, 2) float64 array (vectorised)."""
        if not self.rois:
            return np.zeros((0, 2))
        ys, xs, sizes = self._pixels()
        owner = np.repeat(np.arange(sizes.size), sizes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                np.stack(
                    [
                        np.bincount(owner, ys.astype(np.float64), sizes.size),
                        np.bincount(owner, xs.astype(np.float64), sizes.size),
                    ],
                    axis=1,
                )
                / sizes[:, None]
            )

    def coverage(self) -> np.ndarray:
        """How many ROIs cover each pixel, a (Y, X) integer image."""
        ny, nx = self.frame_shape
        if not self.rois:
            return np.zeros(self.frame_shape, np.int32)
        ys, xs, _ = self._pixels()
        return np.bincount(ys * nx + xs, minlength=ny * nx).astype(np.int32).reshape(ny, nx)

    def check_not_empty(self) -> None:
        if not self.rois:
            raise EmptyMaskError(f"the ROI set{self._where()} holds no ROI")
        empty = [r.id for r in self.rois if r.npix == 0]
        if empty:
            raise EmptyMaskError(f"ROIs {empty[:10]}{self._where()} hold no pixel")


def label(
    mask: Any, *, min_size: int | None = None, max_size: int | None = None, connectivity: int = 1
) -> RoiSet:
    """Split a boolean mask into cells: one ROI per connected component.

    Parameters
    ----------
    mask : (Y, X) array_like of bool
        E.g. ``threshold(projection(movie, "std"), method="sigma", k=3)``.
    min_size, max_size : int, optional
        Keep components with at least / at most this many pixels.
    connectivity : {1, 2}
        1: pixels touching by an edge are connected; 2: corners too.

    Returns
    -------
    rois : RoiSet
        Ids 1..n in scan order (top to bottom, left to right).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 1]], bool)
    >>> [r.npix for r in label(m)]
    [2, 2, 1]
    >>> len(label(m, min_size=2))
    2
    """
    from skimage.measure import label as sk_label

    from ._validate import size_range
    from .threshold import check_mask

    m = check_mask(mask)
    min_size, max_size = size_range(min_size, max_size)
    if connectivity not in (1, 2):
        raise ParameterError(f"connectivity={connectivity}: use 1 (edges) or 2 (corners too)")
    labels = sk_label(m, connectivity=connectivity)
    sizes = np.bincount(labels.reshape(-1))
    keep = np.ones(sizes.size, bool)
    keep[0] = False
    if min_size is not None:
        keep &= sizes >= min_size
    if max_size is not None:
        keep &= sizes <= max_size
    if not keep.any():
        raise EmptyMaskError(
            f"no connected component of the mask has {_size_range(min_size, max_size)} "
            "(component sizes: "
            f"{sorted(sizes[1:].tolist(), reverse=True)[:10]})"
        )
    remap = np.zeros(sizes.size, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    return RoiSet.from_labels(remap[labels])


def _size_range(min_size: int | None, max_size: int | None) -> str:
    """``10 pixels or more``, ``at most 50 pixels``, ``between 10 and 50 pixels``."""
    if max_size is None:
        return f"{min_size or 1} pixels or more"
    if not min_size or min_size <= 1:
        return f"at most {max_size} pixels"
    return f"between {min_size} and {max_size} pixels"


def _io() -> Any:
    """:mod:`roitrace.io`, looked up when a RoiSet is written to a file.

    This module holds no file format and must not import one: :mod:`roitrace.io`
    imports it (a RoiSet is what its ROI readers make). The ``to_*`` methods reach
    the writers through this lookup at call time, when :mod:`roitrace.io` is long
    imported (``import roitrace`` imports it).
    """
    return importlib.import_module("roitrace.io")
