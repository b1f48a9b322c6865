"""Masks: which pixels belong to the cell (thresholding a projection)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import EmptyMaskError, ParameterError, ShapeMismatchError

__all__ = ["METHODS", "check_mask", "pixels", "threshold", "threshold_value"]

METHODS = ("absolute", "percentile", "sigma", "otsu", "li", "triangle", "local")


def threshold_value(
    image: np.ndarray,
    value: float | None = None,
    *,
    method: str = "absolute",
    q: float | None = None,
    k: float | None = None,
    block_size: int | None = None,
    offset: float = 0.0,
) -> float | np.ndarray:
    """The threshold :func:`threshold` compares the image with.

    A number for global methods; an image of local thresholds for ``"local"``.
    Parameters are those of :func:`threshold`.

    Examples
    --------
    >>> import numpy as np
    >>> float(threshold_value(np.arange(12.0).reshape(3, 4), method="percentile", q=50))
    5.5
    """
    image = _check_image(image)
    if method not in METHODS:
        raise ParameterError(f"method={method!r} is unknown; use one of {', '.join(METHODS)}")
    if method == "absolute":
        if value is None:
            raise ParameterError(
                "method='absolute' needs a value: threshold(image, 1000) keeps pixels > 1000"
            )
        return float(value)
    if value is not None:
        raise ParameterError(
            f"value={value} is only for method='absolute'; method={method!r} computes its own"
        )
    if method == "percentile":
        if q is None or not 0 <= q <= 100:
            raise ParameterError(f"method='percentile' needs q between 0 and 100 (got q={q})")
        return float(np.percentile(image, q))
    if method == "sigma":
        k = 3.0 if k is None else float(k)
        return float(np.mean(image) + k * np.std(image))
    if method == "local":
        from skimage.filters import threshold_local

        if block_size is None or block_size < 3 or block_size % 2 == 0:
            raise ParameterError(
                f"method='local' needs an odd block_size of 3 or more pixels (got {block_size}); "
                "about the diameter of a cell, e.g. 15"
            )
        return threshold_local(image, block_size, offset=offset)
    from skimage import filters

    fn = {
        "otsu": filters.threshold_otsu,
        "li": filters.threshold_li,
        "triangle": filters.threshold_triangle,
    }[method]
    return float(fn(image))


def threshold(
    image: Any,
    value: float | None = None,
    *,
    method: str = "absolute",
    q: float | None = None,
    k: float | None = None,
    block_size: int | None = None,
    offset: float = 0.0,
    allow_empty: bool = False,
) -> np.ndarray:
    """Threshold an image (usually a projection) into a boolean mask of the cell.

    The comparison is strictly greater, as in ``projection > 1000``.

    Parameters
    ----------
    image : (M, N) array_like
        The image to threshold, e.g. ``projection(movie, "std")``.
    value : float, optional
        The threshold for ``method="absolute"``.
    method : {"absolute", "percentile", "sigma", "otsu", "li", "triangle", "local"}
        ``absolute``: ``image > value``. ``percentile``: ``image >
        np.percentile(image, q)``. ``sigma``: ``image > mean + k * std`` of the
        image (the 3-sigma rule when k=3). ``otsu``, ``li``, ``triangle``:
        scikit-image's automatic global thresholds. ``local``: adaptive,
        ``image > skimage.filters.threshold_local(image, block_size,
        offset=offset)``, for uneven illumination.
    q : float, optional
        Percentile, 0 to 100, for ``method="percentile"``.
    k : float, optional
        Number of standard deviations for ``method="sigma"`` (default 3).
    block_size : int, optional
        Odd neighbourhood size in pixels for ``method="local"``.
    offset : float
        Subtracted from the local threshold (``method="local"``).
    allow_empty : bool
        Return an empty mask instead of raising when no pixel passes.

    Returns
    -------
    mask : (M, N) ndarray of bool

    Raises
    ------
    EmptyMaskError
        When no pixel passes (the message gives the threshold and the image's
        range), unless ``allow_empty``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0, 500, 1500], [2000, 900, 1001]])
    >>> threshold(image, 1000)
    array([[False, False,  True],
           [ True, False,  True]])
    >>> int(threshold(image, method="percentile", q=50).sum())
    3
    """
    image = _check_image(image)
    t = threshold_value(
        image, value, method=method, q=q, k=k, block_size=block_size, offset=offset
    )
    mask = image > t
    if not allow_empty and not mask.any():
        where = "the local thresholds" if method == "local" else f"the threshold {float(t):.6g}"
        raise EmptyMaskError(
            f"no pixel is above {where} (method={method!r}); the image ranges from "
            f"{np.nanmin(image):.6g} to {np.nanmax(image):.6g}: choose a lower threshold"
        )
    return mask


def pixels(mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, columns) of a mask's pixels, exactly as ``np.where(mask)``.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = pixels(np.array([[0, 1], [1, 1]], bool))
    >>> y.tolist(), x.tolist()
    ([0, 1, 1], [1, 0, 1])
    """
    mask = check_mask(mask)
    return np.where(mask)


def check_mask(
    mask: Any,
    frame_shape: tuple[int, int] | None = None,
    *,
    name: str = "mask",
    allow_empty: bool = True,
) -> np.ndarray:
    """Return ``mask`` as a 2-D boolean array, checking its shape against the frames."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"{name} must be a 2-D image, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ParameterError(
                f"{name} must be boolean (True = cell pixel); got values other than 0 and 1. "
                "For a label image with one integer per cell use extract(movie, labels)"
            )
        arr = arr.astype(bool)
    if frame_shape is not None and arr.shape != tuple(frame_shape):
        raise ShapeMismatchError(
            f"{name} has shape {arr.shape} but the movie's frames are {tuple(frame_shape)}: "
            "make the mask from this movie's projection"
        )
    if not allow_empty and not arr.any():
        raise EmptyMaskError(f"{name} holds no pixel")
    return arr


def _check_image(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ShapeMismatchError(
            f"threshold needs a 2-D image such as a projection, got shape {arr.shape}; "
            "project the movie first: projection(movie, 'std')"
        )
    if arr.size == 0:
        raise ShapeMismatchError("the image is empty")
    return arr
