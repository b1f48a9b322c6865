"""Masks: which pixels belong to the cell (thresholding a projection)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import choice, number
from ._warnings import warn_user
from .errors import EmptyMaskError, ParameterError, ShapeMismatchError
from .options import THRESHOLD_METHODS

__all__ = ["METHODS", "check_mask", "pixels", "threshold", "threshold_value"]

#: Deprecated name of :data:`roitrace.options.THRESHOLD_METHODS`.
METHODS = THRESHOLD_METHODS


#: The options each method uses; any other option given with it is an error.
_OPTIONS = {
    "absolute": ("value",),
    "percentile": ("q",),
    "sigma": ("k",),
    "local": ("block_size", "offset"),
    "otsu": (),
    "li": (),
    "triangle": (),
}


def threshold_value(
    image: np.ndarray,
    value: float | None = None,
    *,
    method: str = "absolute",
    q: float | None = None,
    k: float | None = None,
    block_size: int | None = None,
    offset: float | None = None,
) -> float | np.ndarray:
    """The threshold :func:`threshold` compares the image with.

    A number for global methods; an image of local thresholds for ``"local"``.
    Parameters are those of :func:`threshold`. Pixels that are NaN or infinite
    are left out of the computation (see :func:`threshold`).

    Examples
    --------
    >>> import numpy as np
    >>> float(threshold_value(np.arange(12.0).reshape(3, 4), method="percentile", q=50))
    5.5
    """
    image = _check_image(image)
    _check_options(method, value=value, q=q, k=k, block_size=block_size, offset=offset)
    finite = np.isfinite(image)
    if not finite.any():
        raise ParameterError(
            f"every pixel of the {image.shape[0]} x {image.shape[1]} image is NaN or infinite: "
            "there is nothing to threshold; check the movie: one NaN frame makes every pixel's "
            "projection NaN (leave such frames out with frames=)"
        )
    values = image if finite.all() else image[finite]
    if method == "absolute":
        return number("value", value)
    if method == "percentile":
        return float(
            np.percentile(
                values, number("q", q, low=0, high=100, hint=" (a percentile between 0 and 100)")
            )
        )
    if method == "sigma":
        k = 3.0 if k is None else number("k", k)
        return float(np.mean(values) + k * np.std(values))
    if method == "local":
        from skimage.filters import threshold_local

        if block_size is None or block_size < 3 or block_size % 2 == 0:
            raise ParameterError(
                f"method='local' needs an odd block_size of 3 or more pixels (got {block_size}); "
                "about the diameter of a cell, e.g. 15"
            )
        offset = 0.0 if offset is None else number("offset", offset)
        # NaN would spread to every neighbourhood it touches: stand in the darkest value
        filled = image if values is image else np.where(finite, image, values.min())
        return threshold_local(filled, block_size, offset=offset)
    from skimage import filters

    fn = {
        "otsu": filters.threshold_otsu,
        "li": filters.threshold_li,
        "triangle": filters.threshold_triangle,
    }[method]
    return float(fn(values))


def _check_options(method: str, **given: Any) -> None:
    choice("method", method, THRESHOLD_METHODS)
    if method == "absolute" and given["value"] is None:
        raise ParameterError(
            "method='absolute' needs a value: threshold(image, 1000) keeps pixels > 1000"
        )
    if method == "percentile" and given["q"] is None:
        raise ParameterError("method='percentile' needs q, a percentile between 0 and 100")
    stray = [name for name, v in given.items() if v is not None and name not in _OPTIONS[method]]
    if stray:
        users = {name: m for m, names in _OPTIONS.items() for name in names}
        said = ", ".join(
            f"{name}= is for method={users[name]!r}"
            if name != "value"
            else "value= is for method='absolute'"
            for name in stray
        )
        raise ParameterError(
            f"{said}, not for method={method!r}, which does not use it: leave it out"
        )


def threshold(
    image: Any,
    value: float | None = None,
    *,
    method: str = "absolute",
    q: float | None = None,
    k: float | None = None,
    block_size: int | None = None,
    offset: float | None = None,
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
    offset : float, optional
        Subtracted from the local threshold (``method="local"``; default 0).
    allow_empty : bool
        Return an empty mask instead of raising when no pixel passes.

    An option that the method does not use (``q`` with ``method="sigma"``...) is
    an error. Pixels that are NaN or infinite (a movie with NaN frames) are left
    out: they take no part in computing the threshold and are never in the mask;
    a warning says how many there are. A threshold that every pixel passes is
    warned about too (the whole frame would be one cell).

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
    finite = np.isfinite(image)
    n_bad = int(finite.size - np.count_nonzero(finite))
    if n_bad:
        warn_user(
            f"the image holds {n_bad} NaN or infinite pixel{'s' if n_bad > 1 else ''} "
            f"(of {image.size}); they are left out of the threshold and of the mask",
        )
    with np.errstate(invalid="ignore"):
        mask = (image > t) & finite
    where = "the local thresholds" if method == "local" else f"the threshold {float(t):.6g}"
    if not allow_empty and not mask.any():
        raise EmptyMaskError(
            f"no pixel is above {where} (method={method!r}); the image ranges from "
            f"{np.min(image[finite]):.6g} to {np.max(image[finite]):.6g}: choose a lower "
            "threshold"
        )
    if mask.all() and mask.size > 1:
        warn_user(
            f"every pixel is above {where} (method={method!r}): the whole frame is selected; "
            "choose a higher threshold",
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
