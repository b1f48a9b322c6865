"""The extraction plan: which pixels make each trace, and how they are combined.

:func:`plan_extraction` turns ROIs into an :class:`ExtractionPlan`: every cell's
and every neuropil ring's flat pixel indices (``y * X + x``), the cells' pixel
weights and the aggregation methods. The plan is small (index arrays, never
full-frame masks), frozen and picklable: the same object is run by
:func:`roitrace.extract` here, by a test or a benchmark, or by a worker of a
cluster on its range of frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._kernels import Groups
from ._validate import choice
from .aggregate import check_proportion, check_weights
from .errors import EmptyMaskError, ParameterError, ShapeMismatchError
from .io import read_rois
from .neuropil import neuropil_rings
from .options import AGGREGATION_METHODS, OVERLAP_MODES, WEIGHT_METHODS, Neuropil
from .rois import Roi, RoiSet
from .traces import brightness_weights, proximity_weights_groups

__all__ = ["ExtractionPlan", "as_roiset", "plan_extraction", "to_labels"]

Flats = tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class ExtractionPlan:
    """What an extraction computes, without the movie: see :func:`plan_extraction`.

    Attributes
    ----------
    frame_shape : (int, int)
        The frames the pixel indices refer to.
    ids, names : (roi,) int64 array, tuple of str
        The ROIs, in the order of the traces.
    cells : tuple of (P_k,) intp arrays
        Flat pixel indices of each cell's trace (without the shared pixels when
        ``overlap="drop"``).
    roi_weights : tuple of arrays or None
        The ROI set's own per-pixel weights of each cell (suite2p's ``lam``), for
        the result's pixel table; None where a ROI has none.
    centroids : (roi, 2) float64 array
        (y, x) centroid of each ROI as given.
    method : str
        How a cell's pixels are combined (:data:`~roitrace.options.AGGREGATION_METHODS`).
    weights : str or None
        Where the weights of ``method="weighted"`` come from: "brightness",
        "proximity", "roi" or "array".
    cell_weights : tuple of arrays or None
        Each cell's aggregation weights (``method="weighted"``); None until the
        movie has been read for brightness weights (see :meth:`needs_brightness`).
    proportion : float or None
        Cut from each end, for ``method="trimmed_mean"``.
    neuropil : Neuropil or None
    neuropil_method : str or None
        How ring pixels are combined.
    rings : tuple of (Q_k,) intp arrays
        Flat pixel indices of each cell's neuropil ring (empty without neuropil).
    overlap : {"keep", "drop"}
    source : str or None
        The ROI file the plan was made from.
    """

    frame_shape: tuple[int, int]
    ids: np.ndarray
    names: tuple[str, ...]
    cells: Flats
    roi_weights: tuple[np.ndarray | None, ...]
    centroids: np.ndarray
    method: str = "mean"
    weights: str | None = None
    cell_weights: Flats | None = None
    proportion: float | None = None
    neuropil: Neuropil | None = None
    neuropil_method: str | None = None
    rings: Flats = ()
    overlap: str = "keep"
    source: str | None = None

    def __post_init__(self) -> None:
        # frozen all the way down: a worker cannot change what another one runs
        for group in (self.cells, self.rings, self.cell_weights or (), self.roi_weights):
            for a in group:
                if a is not None:
                    a.flags.writeable = False

    def __getstate__(self) -> dict[str, Any]:
        # the kernels' tables are rebuilt where they are used, not shipped
        return {k: v for k, v in self.__dict__.items() if k != "_groups"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled (on a worker): read-only again
        self.__dict__.update(state)
        self.__post_init__()

    def __repr__(self) -> str:
        npix = sum(c.size for c in self.cells)
        ring = (
            f", neuropil={self.neuropil!r} ({sum(r.size for r in self.rings)} ring pixels), "
            f"neuropil_method={self.neuropil_method!r}"
            if self.neuropil is not None
            else ""
        )
        weights = f", weights={self.weights!r}" if self.weights else ""
        return (
            f"ExtractionPlan({self.n_rois} ROIs, {npix} cell pixels, frames "
            f"{self.frame_shape[0]} x {self.frame_shape[1]}, method={self.method!r}{weights}"
            f"{ring}, overlap={self.overlap!r})"
        )

    @property
    def n_rois(self) -> int:
        return len(self.cells)

    def needs_brightness(self) -> bool:
        """Whether the cells' weights still need the movie's pixel means."""
        return self.method == "weighted" and self.cell_weights is None

    def with_brightness(self, means: np.ndarray) -> ExtractionPlan:
        """The plan with brightness weights from each cell pixel's mean over time
        (``means``: every cell's pixels one after the other, as :attr:`cells`)."""
        bounds = np.cumsum([0] + [c.size for c in self.cells])
        w = tuple(brightness_weights(means[a:b]) for a, b in itertools.pairwise(bounds))
        return dataclasses.replace(self, cell_weights=w)

    def groups(self) -> tuple[list[np.ndarray], list[str], list[np.ndarray | None]]:
        """Pixel groups for the engine: cells then rings, their methods and weights."""
        if self.needs_brightness():
            raise ParameterError(
                "the plan's brightness weights are not measured yet; run it with "
                "roitrace.extract, which reads the movie's pixel means first"
            )
        n = self.n_rois
        weights = list(self.cell_weights) if self.cell_weights is not None else [None] * n
        return (
            [*self.cells, *self.rings],
            [self.method] * n + [self.neuropil_method] * len(self.rings),  # type: ignore[list-item]
            weights + [None] * len(self.rings),
        )

    def kernel_groups(self) -> Groups:
        """:meth:`groups` as the compiled kernels' tables, built once per plan: a
        plan run again (another recording, another frame range of a cluster run)
        does not build them again."""
        cached = self.__dict__.get("_groups")
        if cached is None:
            flats, methods, weights = self.groups()
            cached = Groups(flats, methods, weights, self.proportion or 0.1)
            object.__setattr__(self, "_groups", cached)  # a cache, not the plan's state
        return cached

    def rois(self) -> RoiSet:
        """The pixels the traces are computed from, as a RoiSet (the result's pixel
        table): the ROIs as given, or, with ``overlap="drop"``, without shared pixels."""
        nx = self.frame_shape[1]
        return RoiSet(
            [
                Roi(int(i), c // nx, c % nx, w, name)
                for i, c, w, name in zip(
                    self.ids, self.cells, self.roi_weights, self.names, strict=True
                )
            ],
            self.frame_shape,
            source=self.source,
        )

    def parameters(self) -> dict[str, Any]:
        """The plan's options, for the result's provenance."""
        return {
            "method": self.method,
            "weights": self.weights,
            "proportion": self.proportion,
            "neuropil": None if self.neuropil is None else self.neuropil.as_dict(),
            "neuropil_method": self.neuropil_method,
            "overlap": self.overlap,
        }


def plan_extraction(
    rois: Any,
    frame_shape: tuple[int, int],
    *,
    method: str = "mean",
    weights: Any = None,
    neuropil: Neuropil | dict[str, Any] | None = None,
    neuropil_method: str | None = None,
    proportion: float | None = None,
    overlap: str = "keep",
) -> ExtractionPlan:
    """Plan an extraction: every cell's and ring's pixels, weights and methods.

    Parameters
    ----------
    rois : (Y, X) array_like, RoiSet or path
        One boolean mask (one cell), an integer label image, a
        :class:`roitrace.RoiSet`, or a file :func:`roitrace.read_rois` reads.
    frame_shape : (int, int)
        The movie's frame shape (``movie.frame_shape``).
    method : {"mean", "median", "weighted", "trimmed_mean"}
        How each cell's pixels are combined (see :func:`roitrace.aggregate`).
    weights : {"brightness", "proximity", "roi"} or (P,) array_like, optional
        Pixel weights for ``method="weighted"``: ``"brightness"`` (the notebook's
        ``means / means.sum()``, measured from the movie when the plan is run),
        ``"proximity"``, or ``"roi"`` (the RoiSet's own weights, e.g. suite2p's
        ``lam``; a ROI without weights weighs its pixels equally). Default:
        ``"roi"`` when every ROI carries weights, else ``"brightness"``. An array
        is allowed for one cell.
    neuropil : Neuropil or dict, optional
        A ring around each cell (see :class:`roitrace.Neuropil`).
    neuropil_method : str, optional
        How ring pixels are combined; default the same as ``method``, but
        ``"mean"`` when ``method="weighted"``.
    proportion : float, optional
        For ``method="trimmed_mean"`` only: the fraction cut from each end
        (default 0.1).
    overlap : {"keep", "drop"}
        Pixels shared by several ROIs: keep them in each, or drop them from all
        (suite2p's ``allow_overlap=False``). A ROI left with no pixel is an error.

    Returns
    -------
    plan : ExtractionPlan

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((20, 20), int); labels[2:5, 2:5] = 1; labels[10:14, 8:12] = 2
    >>> plan = plan_extraction(labels, (20, 20), neuropil={"gap": 1, "width": 2})
    >>> plan.n_rois, [c.size for c in plan.cells]
    (2, [9, 16])
    >>> import pickle; pickle.loads(pickle.dumps(plan)).rings[0].size == plan.rings[0].size
    True
    """
    choice("method", method, AGGREGATION_METHODS)
    choice("overlap", overlap, OVERLAP_MODES)
    if proportion is not None and method != "trimmed_mean":
        raise ParameterError(
            f"proportion is used only with method='trimmed_mean' (method={method!r}): leave it out"
        )
    if method == "trimmed_mean":
        proportion = 0.1 if proportion is None else proportion
        check_proportion(proportion)
    if weights is not None and method != "weighted":
        raise ParameterError(f"weights= is only used with method='weighted' (method={method!r})")
    npil = Neuropil.coerce(neuropil)
    if npil is None and neuropil_method is not None:
        raise ParameterError("neuropil_method is used only with a neuropil ring: leave it out")
    if npil is not None:
        neuropil_method = neuropil_method or ("mean" if method == "weighted" else method)
        choice("neuropil_method", neuropil_method, AGGREGATION_METHODS)
        if neuropil_method == "weighted":
            raise ParameterError("neuropil_method='weighted' is not supported; use mean or median")
    frame_shape = _frame_shape(frame_shape)
    roiset = as_roiset(rois, frame_shape)
    roiset.check_not_empty()
    cells, roi_weights = _cells(roiset, overlap)
    plan = ExtractionPlan(
        frame_shape=frame_shape,
        ids=np.array(roiset.ids, np.int64),
        names=tuple(r.name for r in roiset),
        cells=cells,
        roi_weights=roi_weights,
        centroids=np.asarray(roiset.centroids(), np.float64),
        method=method,
        proportion=proportion,
        neuropil=npil,
        neuropil_method=neuropil_method,
        rings=_rings(roiset, npil),
        overlap=overlap,
        source=roiset.source or None,
    )
    if method == "weighted":
        plan = _with_weights(plan, weights)
    return plan


def _frame_shape(value: Any) -> tuple[int, int]:
    try:
        y, x = (int(v) for v in value)
        ok = y > 0 and x > 0 and (y, x) == tuple(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(
            f"frame_shape={value!r}: give the movie's frame shape (Y, X), e.g. movie.frame_shape"
        )
    return y, x


def to_labels(rois: Any, frame_shape: tuple[int, int]) -> np.ndarray:
    """A label image (0 = background) from one boolean mask or an integer label image."""
    arr = np.asarray(rois)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"rois must be a 2-D mask or label image, got shape {arr.shape}")
    if arr.shape != tuple(frame_shape):
        raise ShapeMismatchError(
            f"rois have shape {arr.shape} but the movie's frames are {tuple(frame_shape)}: "
            "make the mask from this movie's projection"
        )
    return RoiSet.from_labels(arr).to_labels()


def as_roiset(rois: Any, frame_shape: tuple[int, int]) -> RoiSet:
    """A RoiSet from a RoiSet, a path, one boolean mask or a label image."""
    if isinstance(rois, RoiSet):
        roiset = rois
    elif isinstance(rois, (str, os.PathLike)):
        roiset = read_rois(rois, shape=frame_shape)
    else:
        to_labels(rois, frame_shape)  # checks the shape against the movie's frames
        roiset = RoiSet.from_labels(rois)
    if roiset.frame_shape != tuple(frame_shape):
        raise ShapeMismatchError(
            f"the ROIs were made for {roiset.frame_shape[0]} x {roiset.frame_shape[1]} frames "
            f"but the movie's frames are {frame_shape[0]} x {frame_shape[1]}"
            f"{' (' + roiset.source + ')' if roiset.source else ''}"
        )
    return roiset


def _cells(roiset: RoiSet, overlap: str) -> tuple[Flats, tuple[np.ndarray | None, ...]]:
    nx = roiset.frame_shape[1]
    shared = roiset.coverage() > 1 if overlap == "drop" else None
    cells, weights = [], []
    for r in roiset:
        flat = r.y.astype(np.intp) * nx + r.x
        w = None if r.weights is None else np.array(r.weights)  # the plan's own, read-only copy
        if shared is not None:
            keep = ~shared[r.y, r.x]
            if not keep.any():
                raise EmptyMaskError(
                    f"ROI {r.id} ({r.name}) has no pixel left once the pixels it shares with "
                    "other ROIs are dropped; use overlap='keep' or remove it"
                )
            flat = flat[keep]
            w = None if w is None else w[keep]
        cells.append(flat)
        weights.append(w)
    return tuple(cells), tuple(weights)


def _rings(roiset: RoiSet, npil: Neuropil | None) -> Flats:
    if npil is None:
        return ()
    return tuple(neuropil_rings(roiset, **npil.as_dict()))


def _with_weights(plan: ExtractionPlan, weights: Any) -> ExtractionPlan:
    """The aggregation weights that need no movie; brightness is left for the run."""
    if weights is None:
        weights = "roi" if all(w is not None for w in plan.roi_weights) else "brightness"
    if isinstance(weights, str):
        choice("weights", weights, WEIGHT_METHODS)
        if weights == "brightness":
            return dataclasses.replace(plan, weights="brightness")
        if weights == "roi":
            if all(w is None for w in plan.roi_weights):
                raise ParameterError(
                    "weights='roi' but the ROIs carry no weights; use 'brightness' or 'proximity'"
                )
            # a ROI stored without weights (NWB, ImageJ) has equal weights
            w = tuple(
                check_weights(np.ones(c.size) if rw is None else rw, c.size)
                for c, rw in zip(plan.cells, plan.roi_weights, strict=True)
            )
        else:  # proximity: one weight per pixel of each cell, in its order
            w = tuple(proximity_weights_groups(list(plan.cells), plan.frame_shape[1]))
        return dataclasses.replace(plan, weights=weights, cell_weights=w)
    if plan.n_rois != 1:
        raise ParameterError(
            "an array of weights= fits one cell only; for several cells use "
            "weights='brightness', 'proximity' or 'roi'"
        )
    w = (check_weights(weights, plan.cells[0].size),)
    return dataclasses.replace(plan, weights="array", cell_weights=w)
