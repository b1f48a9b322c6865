"""The teaching notebook's figures as functions (matplotlib only).

Every function takes plain arrays (and, where it says so, xarray DataArrays),
draws into ``ax=`` when one is given or else into a new figure, and returns the
Axes (or the Figure for multi-panel plots). Nothing here calls ``plt.show()``,
prints, or chooses a matplotlib backend: that is left to the caller.

==========================  =====================================================
:func:`projection_contour`  projection image with the outline of one or more masks
:func:`pixels_scatter`      projection image with every cell (and ring) pixel marked
:func:`weights`             the per-pixel weights image with a labelled colorbar
:func:`traces`              one or many fluorescence traces, optionally stacked
:func:`weighted_vs_mean`    the notebook's bonus: mean vs weighted-mean trace
:func:`dff`                 dF/F0 traces with a dashed zero line
:func:`roi_contours`        many ROIs' outlines (and neuropil rings) on a projection
:func:`heatmap`             a (roi x time) heatmap, e.g. of dF/F0
:func:`trace_stages`        one ROI from F to spikes: F and Fneu, F_corrected and F0,
                            dF/F0, inferred spikes (against the truth when known)
:func:`save`                write a figure atomically, with metadata in the file
==========================  =====================================================
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from ._atomic import atomic_path
from ._version import __version__
from .errors import ParameterError, ShapeMismatchError
from .result import FRAME, ROI, TIME, result_frame_rate

if TYPE_CHECKING:
    import xarray as xr
    from numpy.typing import ArrayLike

__all__ = [
    "dff",
    "extraction_figures",
    "heatmap",
    "pixels_scatter",
    "projection_contour",
    "roi_contours",
    "save",
    "trace_stages",
    "traces",
    "weighted_vs_mean",
    "weights",
]

#: Above this many traces :func:`traces` draws no legend (it would hide the plot).
MAX_LEGEND_ENTRIES = 20

# Keywords of the PNG text chunks matplotlib and most viewers know about.
_PNG_KEYS = frozenset(
    {
        "Title",
        "Author",
        "Description",
        "Copyright",
        "Creation Time",
        "Software",
        "Disclaimer",
        "Warning",
        "Source",
        "Comment",
    }
)
# How the PNG keywords roitrace fills map onto the PDF and SVG metadata keys.
_OTHER_FORMAT_KEYS = {
    "pdf": {"Title": "Title", "Author": "Author", "Description": "Subject", "Software": "Creator"},
    "svg": {
        "Title": "Title",
        "Author": "Creator",
        "Description": "Description",
        "Software": "Publisher",
    },
}


# --------------------------------------------------------------------------- helpers


def _new_axes(ax: Axes | None) -> Axes:
    """Return ``ax``, or the Axes of a new figure with a constrained layout."""
    if ax is not None:
        return ax
    _fig, new_ax = plt.subplots(layout="constrained")
    return new_ax


def _image(arr: ArrayLike, name: str) -> np.ndarray:
    """``arr`` as a 2-D array, or a ShapeMismatchError explaining what is expected."""
    image = np.asarray(arr)
    if image.ndim != 2:
        hint = (
            " (this looks like a movie: reduce it over time first, e.g. np.std(movie, axis=0))"
            if image.ndim == 3
            else ""
        )
        raise ShapeMismatchError(
            f"{name} must be a 2-D image (rows, columns); got shape {image.shape}{hint}"
        )
    return image


def _mask_for(mask: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``mask`` as a boolean array (non-zero = inside) of the projection's ``shape``."""
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise ShapeMismatchError(
            f"{name} has shape {arr.shape} but the projection has shape {shape}; "
            "a mask must have one value per projection pixel"
        )
    return arr.astype(bool, copy=False)


def _single(color: Sequence[str], name: str) -> str:
    colors = list(color)
    if len(colors) != 1:
        raise ParameterError(f"got {len(colors)} colours for 1 mask; give one {name}")
    return colors[0]


def _check_frame_rate(frame_rate: float | None) -> float | None:
    if frame_rate is None:
        return None
    if (
        isinstance(frame_rate, bool)
        or not isinstance(frame_rate, numbers.Real)
        or not math.isfinite(frame_rate)
        or frame_rate <= 0
    ):
        raise ParameterError(
            f"frame_rate must be a positive number of frames per second; got {frame_rate!r}"
        )
    return float(frame_rate)


def _time_axis(n: int, frame_rate: float | None) -> tuple[np.ndarray, str]:
    """x values and x label for ``n`` frames: frame numbers, or seconds at ``frame_rate``."""
    if frame_rate is None:
        return np.arange(n), "frame"
    return np.arange(n) / frame_rate, "time (s)"


def _label_image_axes(ax: Axes) -> None:
    ax.set_xlabel("x (pixel column)")
    ax.set_ylabel("y (pixel row)")


def _legend_outside(ax: Axes, handles: Sequence[Any] | None = None, **kwargs: Any) -> None:
    """A legend to the right of the axes, where it never hides data.

    ``loc="best"`` is avoided on purpose: with long traces it is slow and makes
    matplotlib warn about it.
    """
    extra = {} if handles is None else {"handles": list(handles)}
    ax.legend(
        **extra,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        **kwargs,
    )


def _is_dataarray(obj: object) -> bool:
    # Duck-typed so that importing roitrace.plot does not import xarray.
    return all(hasattr(obj, attr) for attr in ("dims", "coords", "values", "transpose"))


def _coord_label(dim: str, value: Any) -> str:
    if isinstance(value, str | bytes):
        return value.decode() if isinstance(value, bytes) else value
    return f"{dim} {value}"


# What _collect_traces returns: the traces, their labels (None: use defaults), the
# frame numbers (None: 0, 1, 2...), and x values in time units with their x label.
_Collected = tuple[list[np.ndarray], list[str] | None, np.ndarray | None, np.ndarray | None, str]


def _from_dataarray(da: xr.DataArray) -> _Collected:
    """Traces, labels, frame numbers and time axis from a 1-D or 2-D DataArray."""
    if da.ndim not in (1, 2):
        raise ParameterError(
            f"a DataArray of traces must have dims ('roi', 'time') or ('time',); got {da.dims}"
        )
    time_dim = TIME if TIME in da.dims else da.dims[-1]
    if da.ndim == 2:
        (roi_dim,) = (d for d in da.dims if d != time_dim)
        da = da.transpose(roi_dim, time_dim)
        rows = [np.asarray(row, dtype=float) for row in np.asarray(da.values)]
        labels = (
            [_coord_label(str(roi_dim), v) for v in np.asarray(da.coords[roi_dim].values)]
            if roi_dim in da.coords
            else None
        )
    else:
        rows = [np.asarray(da.values, dtype=float)]
        labels = None
    frames = None
    if FRAME in da.coords and da.coords[FRAME].dims == (time_dim,):
        f = np.asarray(da.coords[FRAME].values)
        if np.issubdtype(f.dtype, np.number):
            frames = f  # e.g. 300..749 for a slice of the movie, as extract() records
    x, xlabel = None, "time"
    if time_dim == TIME and TIME in da.coords:
        t = np.asarray(da.coords[TIME].values)
        if np.issubdtype(t.dtype, np.timedelta64):
            x, xlabel = t / np.timedelta64(1, "s"), "time (s)"
        elif np.issubdtype(t.dtype, np.datetime64):
            x, xlabel = t, "time"
        else:
            units = da.coords[TIME].attrs.get("units", "s")
            x, xlabel = t, f"time ({units})"
    return rows, labels, frames, x, xlabel


def _collect_traces(data: Any) -> _Collected:
    """Normalise every accepted input of :func:`traces` to a list of 1-D float arrays."""
    if _is_dataarray(data):
        return _from_dataarray(data)
    if isinstance(data, Mapping):
        rows = [np.asarray(v, dtype=float) for v in data.values()]
        labels: list[str] | None = [str(k) for k in data.keys()]
    elif isinstance(data, list | tuple) and data and all(np.ndim(v) == 1 for v in data):
        rows = [np.asarray(v, dtype=float) for v in data]  # lengths may differ
        labels = None
    else:
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 1:
            rows = [arr]
        elif arr.ndim == 2:
            rows = list(arr)
        else:
            raise ParameterError(
                "traces must be one trace (1-D) or several shaped (n_traces, n_frames); "
                f"got shape {arr.shape}"
            )
        labels = None
    for name, row in zip(labels or [f"trace {i}" for i in range(len(rows))], rows, strict=True):
        if row.ndim != 1:
            raise ParameterError(f"{name} must be 1-D (one value per frame); got {row.shape}")
    if not rows:
        raise ParameterError("there is no trace to plot (got an empty collection)")
    return rows, labels, None, None, "time"


def _trace_1d(trace: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(trace, dtype=float)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be 1-D (one value per frame); got shape {arr.shape}")
    return arr


def _pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over frames where both are finite; NaN if undefined.

    Computed by hand so that a constant trace gives NaN instead of a
    RuntimeWarning from ``np.corrcoef``.
    """
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return math.nan
    da = a[ok] - a[ok].mean()
    db = b[ok] - b[ok].mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denom == 0.0:
        return math.nan
    return float(np.clip(np.dot(da, db) / denom, -1.0, 1.0))


def _format_r(r: float) -> str:
    """``r`` with 4 decimals, or up to 6 when 4 would round 0.99996 up to 1.0000."""
    for digits in (4, 5, 6):
        text = f"{r:.{digits}f}"
        if abs(float(text)) < 1.0:
            return text
    return f"{r:.4f}"  # equal to +-1 within 5e-7


# --------------------------------------------------------------------------- figures


def projection_contour(
    projection: ArrayLike,
    mask: ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike],
    *,
    ax: Axes | None = None,
    cmap: str = "gray",
    color: str | Sequence[str] = "red",
    title: str | None = None,
) -> Axes:
    """Show a projection image with the outline of one or several masks.

    The notebook's first figure: ``plt.imshow(projection, cmap='gray')`` followed
    by ``plt.contour(mask, colors='red')``. The outline runs half-way between
    pixels inside and outside the mask, and is closed along the image border too.

    Parameters
    ----------
    projection : array_like, shape (Y, X)
        A 2-D image, e.g. ``np.std(movie, axis=0)``.
    mask : array_like or sequence of array_like or dict
        One mask of shape (Y, X) (non-zero = inside), a list of such masks (or a
        3-D array of shape (n, Y, X)), or a dict ``{name: mask}``. Several masks
        get one colour each from the default colour cycle and a legend. A mask
        with no pixel draws nothing.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.
    cmap : str, default "gray"
        Colormap of the projection.
    color : str or sequence of str, default "red"
        Outline colour of a single mask. For several masks pass one colour per
        mask; a single string is then ignored in favour of the colour cycle so
        that the masks can be told apart.
    title : str, optional
        Axes title; None gives a descriptive default, "" gives none.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ParameterError
        If ``color`` has the wrong length.
    ShapeMismatchError
        If the projection is not 2-D or a mask's shape differs from it.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> yy, xx = np.mgrid[:32, :32]
    >>> projection = np.exp(-((yy - 16) ** 2 + (xx - 14) ** 2) / 30.0)
    >>> ax = plot.projection_contour(projection, projection > 0.5)
    >>> len(ax.collections)  # one contour set
    1
    >>> masks = {"50%": projection > 0.5, "20%": projection > 0.2}
    >>> ax = plot.projection_contour(projection, masks)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['50%', '20%']
    >>> plt.close("all")
    """
    image = _image(projection, "projection")
    if isinstance(mask, Mapping):
        names = [str(k) for k in mask.keys()]
        masks = list(mask.values())
        several = True
    elif isinstance(mask, list | tuple) or np.ndim(mask) == 3:
        masks = list(mask)
        names = [f"mask {i + 1}" for i in range(len(masks))]
        several = True
    else:
        masks, names, several = [mask], ["mask"], False
    bool_masks = [
        _mask_for(m, image.shape, name if several else "mask")
        for m, name in zip(masks, names, strict=True)
    ]

    if not several:
        colors = [color if isinstance(color, str) else _single(color, "color")]
    elif isinstance(color, str):
        cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        colors = [cycle[i % len(cycle)] for i in range(len(bool_masks))]
    else:
        colors = list(color)
        if len(colors) != len(bool_masks):
            raise ParameterError(
                f"got {len(colors)} colours for {len(bool_masks)} masks; give one per mask"
            )

    ax = _new_axes(ax)
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    ny, nx = image.shape
    handles = []
    for m, c, name in zip(bool_masks, colors, names, strict=True):
        n = int(m.sum())
        if n:
            # Pad with a ring of False so that the 0.5 level exists even for a
            # mask filling the image, and outlines touching the border close.
            padded = np.pad(m.astype(float), 1)
            ax.contour(
                np.arange(-1, nx + 1), np.arange(-1, ny + 1), padded, levels=[0.5], colors=[c]
            )
        handles.append(Line2D([], [], color=c, label=name if n else f"{name} (empty)"))
    ax.set_xlim(xlim)  # the padding must not widen the view beyond the image
    ax.set_ylim(ylim)
    _label_image_axes(ax)
    if several:
        _legend_outside(ax, handles)
    if title is None:
        title = "projection with mask outlines" if several else "projection with mask outline"
    if title:
        ax.set_title(title)
    return ax


def pixels_scatter(
    projection: ArrayLike,
    mask: ArrayLike,
    ring: ArrayLike | None = None,
    *,
    ax: Axes | None = None,
    cmap: str = "gray",
    s: float = 8,
) -> Axes:
    """Show a projection with a dot on every pixel of a mask (and neuropil ring).

    The notebook's ``y, x = np.where(mask); plt.scatter(x, y)``: the dots sit
    on the pixel centres (x = column, y = row), so one can check that the mask
    holds every pixel of the cell and that the ring keeps clear of it.

    Parameters
    ----------
    projection : array_like, shape (Y, X)
        A 2-D image, e.g. ``np.std(movie, axis=0)``.
    mask : array_like, shape (Y, X)
        The cell's mask (non-zero = inside).
    ring : array_like, shape (Y, X), optional
        A neuropil ring, drawn in a second colour.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.
    cmap : str, default "gray"
        Colormap of the projection.
    s : float, default 8
        Marker size in points squared (as in ``plt.scatter``).

    Returns
    -------
    matplotlib.axes.Axes
        With a legend "cell pixels (n)" and, with a ring, "neuropil ring (n)".

    Raises
    ------
    ShapeMismatchError
        If the projection is not 2-D or the mask or ring shape differs from it.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> projection = np.zeros((20, 20))
    >>> mask = np.zeros((20, 20), dtype=bool)
    >>> mask[8:12, 8:12] = True
    >>> ring = np.zeros_like(mask)
    >>> ring[5:15, 5:15] = True
    >>> ring[6:14, 6:14] = False
    >>> ax = plot.pixels_scatter(projection, mask, ring)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['cell pixels (16)', 'neuropil ring (36)']
    >>> plt.close("all")
    """
    image = _image(projection, "projection")
    cell = _mask_for(mask, image.shape, "mask")
    npil = None if ring is None else _mask_for(ring, image.shape, "ring")

    ax = _new_axes(ax)
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    y, x = np.where(cell)
    ax.scatter(x, y, s=s, color="C0", linewidths=0, label=f"cell pixels ({y.size})")
    if npil is not None:
        ny_, nx_ = np.where(npil)
        ax.scatter(nx_, ny_, s=s, color="C1", linewidths=0, label=f"neuropil ring ({ny_.size})")
    _label_image_axes(ax)
    _legend_outside(ax, markerscale=max(1.0, 3.0 / math.sqrt(max(s, 1e-3))))
    ax.set_title("cell pixels and neuropil ring" if npil is not None else "cell pixels")
    return ax


def weights(
    weights_image: ArrayLike,
    *,
    ax: Axes | None = None,
    cmap: str = "gray",
    title: str | None = None,
) -> Axes:
    """Show a per-pixel weights image with a colorbar labelled "weight".

    In the notebook the image is zero outside the mask and, inside, each pixel's
    mean brightness divided by the sum over the mask.

    Parameters
    ----------
    weights_image : array_like, shape (Y, X)
        The weights laid out as an image.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.
    cmap : str, default "gray"
        Colormap.
    title : str, optional
        Axes title; None gives "pixel weights", "" gives none.

    Returns
    -------
    matplotlib.axes.Axes
        The image is ``ax.images[0]``; its colorbar is ``ax.images[0].colorbar``.

    Raises
    ------
    ShapeMismatchError
        If the image is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> image = np.zeros((10, 10))
    >>> image[3:7, 3:7] = 1 / 16
    >>> ax = plot.weights(image)
    >>> ax.images[0].colorbar.ax.get_ylabel()
    'weight'
    >>> plt.close("all")
    """
    image = _image(weights_image, "weights_image")
    ax = _new_axes(ax)
    im = ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="weight")
    _label_image_axes(ax)
    title = "pixel weights" if title is None else title
    if title:
        ax.set_title(title)
    return ax


def traces(
    traces: ArrayLike | Mapping[str, ArrayLike] | Sequence[ArrayLike] | xr.DataArray,
    *,
    labels: Sequence[str] | None = None,
    frame_rate: float | None = None,
    ax: Axes | None = None,
    offset: float | None = None,
    title: str | None = None,
    ylabel: str = "fluorescence (a.u.)",
) -> Axes:
    """Plot one or several fluorescence traces against frames or seconds.

    Parameters
    ----------
    traces : array_like, dict, list of 1-D arrays or xarray.DataArray
        One trace (1-D, one value per frame); several as a 2-D array shaped
        ``(n_traces, n_frames)`` (one row per trace: transpose the notebook's
        ``(frames, pixels)`` array with ``.T``); a dict ``{name: trace}``; a list
        of 1-D traces (lengths may differ); or a DataArray with dims
        ``("roi", "time")`` or ``("time",)``, whose ``roi`` coordinate gives the
        labels and whose ``time`` coordinate, when present, gives the x values
        (its ``units`` attribute, default seconds, the x label); without one, a
        ``frame`` coordinate (as :func:`roitrace.extract` records) gives the
        frame numbers.
    labels : sequence of str, optional
        One label per trace; default: the dict keys, the DataArray's roi
        coordinate, or "trace 0", "trace 1", ...
    frame_rate : float, optional
        Frames per second: the x axis is then time in seconds, frame number /
        frame_rate (this overrides a DataArray's time coordinate). Without it
        the x axis is the frame number.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.
    offset : float, optional
        Shift trace ``i`` up by ``i * offset`` so that many cells can be told
        apart; the legend then lists the traces top to bottom.
    title : str, optional
        Axes title (none by default).
    ylabel : str, default "fluorescence (a.u.)"
        y-axis label.

    Returns
    -------
    matplotlib.axes.Axes
        One line per trace, in order, in ``ax.lines``. There is a legend (to the
        right of the axes) when there is more than one trace or ``labels`` was
        given, and at most :data:`MAX_LEGEND_ENTRIES` traces.

    Raises
    ------
    ParameterError
        If the input has the wrong number of dimensions, is empty, or the
        labels, frame rate or offset do not fit.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> rng = np.random.default_rng(0)
    >>> ax = plot.traces(rng.normal(size=(3, 100)), frame_rate=10.0, offset=5.0)
    >>> ax.get_xlabel(), float(ax.lines[0].get_xdata()[-1])
    ('time (s)', 9.9)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['trace 2', 'trace 1', 'trace 0']
    >>> plt.close("all")
    """
    frame_rate = _check_frame_rate(frame_rate)
    rows, default_labels, frames, time_x, time_label = _collect_traces(traces)
    if labels is not None:
        if isinstance(labels, str):
            labels = [labels]
        labels = [str(lab) for lab in labels]
        if len(labels) != len(rows):
            raise ParameterError(
                f"got {len(labels)} labels for {len(rows)} traces; give one label per trace"
            )
        names = labels
    else:
        names = default_labels or [f"trace {i}" for i in range(len(rows))]
    if offset is not None:
        if (
            isinstance(offset, bool)
            or not isinstance(offset, numbers.Real)
            or not math.isfinite(offset)
        ):
            raise ParameterError(f"offset must be a finite number; got {offset!r}")
        offset = float(offset)

    ax = _new_axes(ax)
    xlabel = "frame"
    handles = []
    for i, (row, name) in enumerate(zip(rows, names, strict=True)):
        if frame_rate is None and time_x is not None:
            x, xlabel = time_x, time_label
        elif frames is not None:
            x, xlabel = (
                (frames, "frame") if frame_rate is None else (frames / frame_rate, "time (s)")
            )
        else:
            x, xlabel = _time_axis(row.size, frame_rate)
        y = row if not offset else row + i * offset
        (line,) = ax.plot(x, y, lw=1.0, label=name)
        handles.append(line)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel}, stacked {offset:g} apart" if offset else ylabel)
    ax.margins(x=0)
    if (len(rows) > 1 or labels is not None) and len(rows) <= MAX_LEGEND_ENTRIES:
        _legend_outside(ax, handles[::-1] if offset and offset > 0 else handles)
    if title:
        ax.set_title(title)
    return ax


def weighted_vs_mean(
    mean_trace: ArrayLike,
    weighted_trace: ArrayLike,
    *,
    frame_rate: float | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Compare a plain mean trace with a weighted-mean trace (the notebook's bonus).

    Top panel: both traces overlaid. Bottom panel: their difference
    (weighted - mean) over time around a dashed zero line. The figure's title
    gives Pearson's correlation coefficient *r* between the two traces.

    Parameters
    ----------
    mean_trace, weighted_trace : array_like, shape (T,)
        E.g. ``np.mean(traces1, axis=1)`` and
        ``np.average(traces1, axis=1, weights=weights1)``.
    frame_rate : float, optional
        Frames per second: the x axis is then time in seconds, else frames.
    fig : matplotlib.figure.Figure, optional
        An empty figure (or subfigure) to draw into; a new one is made when None.

    Returns
    -------
    matplotlib.figure.Figure
        With two Axes sharing the x axis: ``fig.axes[0]`` (overlay) and
        ``fig.axes[1]`` (difference).

    Raises
    ------
    ShapeMismatchError
        If the traces have different lengths.
    ParameterError
        If a trace is not 1-D, the frame rate is not positive, or ``fig``
        already holds axes.

    Notes
    -----
    *r* uses only frames where both traces are finite; it is reported as
    undefined when a trace is constant.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> t = np.arange(200)
    >>> mean = 100 + 20 * np.exp(-((t - 80) ** 2) / 50.0)
    >>> fig = plot.weighted_vs_mean(mean, 1.1 * mean - 10, frame_rate=20.0)
    >>> fig.get_suptitle()
    'mean vs weighted mean (r = 1.0000)'
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['mean', 'weighted mean']
    >>> plt.close(fig)
    """
    frame_rate = _check_frame_rate(frame_rate)
    mean = _trace_1d(mean_trace, "mean_trace")
    weighted = _trace_1d(weighted_trace, "weighted_trace")
    if mean.shape != weighted.shape:
        raise ShapeMismatchError(
            f"mean_trace has {mean.size} frames but weighted_trace has {weighted.size}; "
            "compare traces of the same movie and frames"
        )
    if fig is None:
        fig = plt.figure(figsize=(8.0, 5.5), layout="constrained")
    elif fig.axes:
        raise ParameterError(
            "fig already holds axes; pass an empty figure (plt.figure()) or call fig.clear()"
        )
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    x, xlabel = _time_axis(mean.size, frame_rate)
    top.plot(x, mean, lw=1.2, color="C0", label="mean")
    top.plot(x, weighted, lw=1.0, color="C1", ls="--", label="weighted mean")
    top.set_ylabel("fluorescence (a.u.)")
    top.legend(loc="upper right", fontsize="small")
    top.margins(x=0)
    bottom.axhline(0.0, color="0.5", ls="--", lw=0.8)
    bottom.plot(x, weighted - mean, lw=1.0, color="C2")
    bottom.set_ylabel("weighted - mean\n(a.u.)")
    bottom.set_xlabel(xlabel)
    r = _pearson_r(mean, weighted)
    r_text = f"r = {_format_r(r)}" if math.isfinite(r) else "r undefined: a trace is constant"
    fig.suptitle(f"mean vs weighted mean ({r_text})")
    return fig


def dff(
    dff_trace: ArrayLike | Mapping[str, ArrayLike] | Sequence[ArrayLike] | xr.DataArray,
    *,
    frame_rate: float | None = None,
    ax: Axes | None = None,
    labels: Sequence[str] | None = None,
) -> Axes:
    """Plot dF/F0 traces with a dashed line at zero (no change from baseline).

    Takes everything :func:`traces` takes; the y axis is labelled "dF/F0".

    Parameters
    ----------
    dff_trace : array_like, dict, list of 1-D arrays or xarray.DataArray
        One dF/F0 trace or several (see :func:`traces`).
    frame_rate : float, optional
        Frames per second: the x axis is then time in seconds, else frames.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when None.
    labels : sequence of str, optional
        One label per trace.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> ax = plot.dff(np.array([0.0, 0.1, 0.8, 0.4, 0.1]))
    >>> ax.get_ylabel()
    'dF/F0'
    >>> plt.close("all")
    """
    ax = traces(dff_trace, labels=labels, frame_rate=frame_rate, ax=ax, ylabel="dF/F0")
    ax.axhline(0.0, color="0.4", ls="--", lw=0.8, zorder=1.5)
    return ax


# --------------------------------------------------------------------------- saving


#: :func:`roi_contours` writes names (not just ids) for at most this many ROIs ...
MAX_NAMED_ROIS = 20
#: ... and no label at all above this many, where they would cover the image.
MAX_ROI_LABELS = 1000


def _outline_segments(
    ys: np.ndarray, xs: np.ndarray, owner: np.ndarray, frame_shape: tuple[int, int]
) -> np.ndarray:
    """The outline of every group of pixels, as line segments along pixel edges.

    ``owner[i]`` says which group (ROI) pixel ``(ys[i], xs[i])`` belongs to; groups
    may share pixels. A pixel side is on a group's outline when the pixel across it
    is not in the same group (or off the frame). Collinear neighbouring sides are
    merged, so a 3 x 3 square gives 4 segments. Returns an (S, 2, 2) array of
    ``((x0, y0), (x1, y1))`` in imshow's data coordinates (pixel centres at
    integers). Memory and time grow with the number of pixels only, never with
    ROIs x frame size: no mask of the whole frame is made per ROI.
    """
    ny, nx = frame_shape
    npx = ny * nx
    key = np.unique(owner.astype(np.int64) * npx + ys.astype(np.int64) * nx + xs)
    owner, flat = np.divmod(key, npx)
    ys, xs = np.divmod(flat, nx)
    pieces = []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yn, xn = ys + dy, xs + dx
        on_frame = (yn >= 0) & (yn < ny) & (xn >= 0) & (xn < nx)
        neighbour = owner * npx + yn * nx + xn
        pos = np.minimum(np.searchsorted(key, neighbour), key.size - 1)
        edge = ~(on_frame & (key[pos] == neighbour))
        o, y, x = owner[edge], ys[edge], xs[edge]
        if dy:  # a horizontal side: runs go along x, in key order already
            line, along = y + 0.5 * dy, x
        else:  # a vertical side: runs go along y
            order = np.lexsort((y, x, o))
            o, y, x = o[order], y[order], x[order]
            line, along = x + 0.5 * dx, y
        if not o.size:
            continue
        start = np.ones(o.size, bool)
        start[1:] = (o[1:] != o[:-1]) | (line[1:] != line[:-1]) | (along[1:] != along[:-1] + 1)
        first = np.flatnonzero(start)
        last = np.append(first[1:], o.size) - 1
        a0, a1, c = along[first] - 0.5, along[last] + 0.5, line[first].astype(np.float64)
        seg = np.empty((first.size, 2, 2))
        if dy:
            seg[:, 0, 0], seg[:, 1, 0], seg[:, :, 1] = a0, a1, c[:, None]
        else:
            seg[:, 0, 1], seg[:, 1, 1], seg[:, :, 0] = a0, a1, c[:, None]
        pieces.append(seg)
    return np.concatenate(pieces) if pieces else np.zeros((0, 2, 2))


def _ring_pixels(rings: Any, frame_shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Rows, columns and owner index of neuropil rings given as a RoiSet, a list of
    flat pixel indices (as :func:`roitrace.neuropil_rings` returns) or of masks."""
    from .rois import RoiSet

    ny, nx = frame_shape
    if isinstance(rings, RoiSet):
        flats = [np.asarray(r.y, np.int64) * nx + np.asarray(r.x, np.int64) for r in rings]
    else:
        flats = []
        for k, ring in enumerate(rings):
            arr = np.asarray(ring)
            if arr.ndim == 2:
                arr = np.flatnonzero(_mask_for(arr, frame_shape, f"ring {k}"))
            elif arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
                raise ParameterError(
                    f"ring {k}: give flat pixel indices (y * X + x, as neuropil_rings "
                    f"returns) or a (Y, X) mask; got an array of shape {arr.shape}"
                )
            if arr.size and (arr.min() < 0 or arr.max() >= ny * nx):
                raise ShapeMismatchError(
                    f"ring {k} has pixel indices outside the {ny} x {nx} frame"
                )
            flats.append(arr.astype(np.int64))
    sizes = [f.size for f in flats]
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int64)
    return flat // nx, flat % nx, np.repeat(np.arange(len(flats)), sizes)


def _roi_labels(roiset: Any, labels: bool | str) -> list[str] | None:
    """The text at each ROI, or None for none (see :func:`roi_contours`)."""
    if labels not in (True, False, "id", "name"):
        raise ParameterError(f"labels={labels!r}: use True, False, 'id' or 'name'")
    n = len(roiset)
    if labels is False or (labels is True and n > MAX_ROI_LABELS):
        return None
    ids = [str(r.id) for r in roiset]
    names = [r.name if r.name and r.name != f"roi {r.id}" else str(r.id) for r in roiset]
    if labels == "name" or (labels is True and n <= MAX_NAMED_ROIS):
        return names
    return ids


def roi_contours(
    projection: ArrayLike,
    rois: Any,
    *,
    ax: Axes | None = None,
    cmap: str = "gray",
    color: str = "yellow",
    labels: bool | str = True,
    rings: Any = None,
    ring_color: str = "deepskyblue",
    projection_name: str | None = None,
    title: str | None = None,
) -> Axes:
    """Every ROI's outline on a projection, each marked with its number or name.

    Outlines run along the pixel edges of each ROI (so overlapping ROIs keep
    their own outlines) and are drawn as one line collection: memory grows with
    the ROIs' pixels, not with ROIs x frame size, so thousands of ROIs on
    large frames take megabytes.

    Parameters
    ----------
    projection : (M, N) array_like
        The background image, e.g. the std projection of the movie.
    rois : RoiSet or (M, N) integer label image
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure (larger for many ROIs) is made when None.
    cmap : str, default "gray"
        Colormap of the projection.
    color : str, default "yellow"
        Colour of the ROI outlines.
    labels : {True, False, "id", "name"}
        The text at each ROI's centroid (white with a dark outline, readable on
        any background and on the outlines). True: with at most
        :data:`MAX_NAMED_ROIS` ROIs, each ROI's name when it has one of its own
        (an ImageJ ROI's name, not the default ``"roi <id>"``), else its id;
        with more ROIs only ids, since long names would cover each other; with
        more than :data:`MAX_ROI_LABELS`, no labels (the title says so).
        ``"id"`` or ``"name"``: always that. False: none.
    rings : RoiSet or sequence, optional
        Neuropil rings, one per ROI: a RoiSet, flat pixel indices ``y * N + x``
        (what :func:`roitrace.neuropil_rings` returns) or (M, N) masks. Their
        outlines are drawn thinner, in ``ring_color``.
    ring_color : str, default "deepskyblue"
        Colour of the ring outlines.
    projection_name : str, optional
        What the projection is (``"std"``, ``"mean"``...), named in the title.
    title : str, optional
        Axes title; None gives "<n> ROIs on the <name> projection".

    Returns
    -------
    matplotlib.axes.Axes
        The outlines are ``ax.collections[0]`` (and the rings'
        ``ax.collections[1]``); the labels are ``ax.texts``.

    Raises
    ------
    ShapeMismatchError
        The ROIs are for another frame size than the projection's.
    ParameterError
        ``labels`` is not one of the values above; a ring is not indices or a mask.

    Examples
    --------
    >>> import numpy as np
    >>> from roitrace import RoiSet
    >>> lab = np.zeros((20, 20), int); lab[2:6, 2:6] = 1; lab[10:15, 9:14] = 2
    >>> rois = RoiSet.from_labels(lab, names=["roi 1", "soma A"])
    >>> ax = roi_contours(np.random.default_rng(0).random((20, 20)), rois,
    ...                   projection_name="std")
    >>> [t.get_text() for t in ax.texts], ax.get_title()
    (['1', 'soma A'], '2 ROIs on the std projection')
    >>> len(ax.collections[0].get_segments())  # two squares, four sides each
    8
    >>> plt.close("all")
    """
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    from .rois import RoiSet

    image = _image(projection, "projection")
    roiset = rois if isinstance(rois, RoiSet) else RoiSet.from_labels(rois)
    if roiset.frame_shape != image.shape:
        raise ShapeMismatchError(
            f"the ROIs are for {roiset.frame_shape} frames but the projection is {image.shape}"
        )
    texts = _roi_labels(roiset, labels)
    ring_pixels = None if rings is None else _ring_pixels(rings, image.shape)
    n = len(roiset)
    if ax is None:
        # room for the labels of many ROIs: the side grows with sqrt(n), up to 14 in
        side = float(np.clip(6.4 * math.sqrt(n / 50), 6.4, 14.0))
        _fig, ax = plt.subplots(figsize=(side, side * 0.8), layout="constrained")
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    ys, xs, sizes = roiset._pixels()
    owner = np.repeat(np.arange(n), sizes)
    thin = 0.8 if n <= 200 else 0.5
    ax.add_collection(
        LineCollection(
            _outline_segments(ys, xs, owner, image.shape), colors=color, linewidths=thin
        ),
        autolim=False,
    )
    if ring_pixels is not None:
        ax.add_collection(
            LineCollection(
                _outline_segments(*ring_pixels, image.shape),
                colors=ring_color,
                linewidths=thin * 0.6,
                alpha=0.8,
            ),
            autolim=False,
        )
    if texts is not None:
        size = 7 if n <= 100 else 5 if n <= 400 else 4
        outline = [patheffects.withStroke(linewidth=1.5 if size < 7 else 2, foreground="black")]
        for (cy, cx), text in zip(roiset.centroids(), texts, strict=True):
            if np.isfinite(cy):  # an empty ROI has no centroid
                ax.text(
                    cx,
                    cy,
                    text,
                    color="white",
                    fontsize=size,
                    ha="center",
                    va="center",
                    path_effects=outline,
                )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    _label_image_axes(ax)
    if title is None:
        title = f"{n} ROIs" + (f" on the {projection_name} projection" if projection_name else "")
        if ring_pixels is not None:
            title += ", with neuropil rings (thin)"
        if texts is None and labels is True:
            title += f"; too many to number (> {MAX_ROI_LABELS})"
    ax.set_title(title)
    return ax


def heatmap(
    data: Any,
    *,
    frame_rate: float | None = None,
    ax: Axes | None = None,
    cmap: str = "magma",
    label: str = "dF/F0",
    title: str | None = None,
    robust: bool = True,
) -> Axes:
    """A (roi x time) heatmap, e.g. of ``extract(...)["dff"]``.

    Parameters
    ----------
    data : (n_rois, T) array_like or DataArray with dims (roi, time)
    robust : bool
        Scale colours between the 1st and 99th percentiles so a few large
        transients do not wash out the rest.

    Examples
    --------
    >>> import numpy as np
    >>> ax = heatmap(np.random.default_rng(0).random((5, 100)), frame_rate=10)
    >>> ax.get_xlabel()
    'time (s)'
    >>> plt.close("all")
    """
    roi_ids = None
    if _is_dataarray(data):
        if ROI in data.coords:
            roi_ids = data[ROI].values
        if frame_rate is None:
            frame_rate = result_frame_rate(data)
        data = data.transpose(ROI, TIME).values
    arr = np.asarray(data, dtype=float)
    if arr.ndim == 1:
        arr = arr[np.newaxis]
    if arr.ndim != 2:
        raise ParameterError(f"heatmap needs (roi, time) data, got shape {arr.shape}")
    frame_rate = _check_frame_rate(frame_rate)
    n = arr.shape[1]
    extent_end = n / frame_rate if frame_rate else n
    finite = arr[np.isfinite(arr)]
    vmin, vmax = np.percentile(finite, [1, 99]) if robust and finite.size else (None, None)
    ax = _new_axes(ax)
    im = ax.imshow(
        arr,
        aspect="auto",
        cmap=cmap,
        # "nearest" drops whole rows (cells) or frames when there are more of them
        # than screen pixels; anti-aliasing ("auto") keeps them, but would blur a
        # few cells' rows into each other, so it is used only for many
        interpolation="auto" if arr.shape[0] > 300 or arr.shape[1] > 3000 else "nearest",
        vmin=vmin,
        vmax=vmax,
        extent=(0, extent_end, arr.shape[0] - 0.5, -0.5),
    )
    ax.figure.colorbar(im, ax=ax, label=label)
    ax.set_xlabel("time (s)" if frame_rate else "frame")
    ax.set_ylabel("ROI")
    if roi_ids is not None and len(roi_ids) <= 40:
        ax.set_yticks(range(len(roi_ids)), [str(i) for i in roi_ids])
    ax.set_title(title if title is not None else f"{label} of {arr.shape[0]} ROIs")
    return ax


def _root_figure(fig: Any) -> Figure:
    obj = fig
    for _ in range(8):  # Axes -> (SubFigure ->)* Figure
        if isinstance(obj, Figure):
            return obj
        obj = getattr(obj, "figure", None)
    raise ParameterError(f"save() needs a matplotlib Figure or Axes; got {type(fig).__name__}")


def _file_metadata(fmt: str, metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The ``metadata=`` for ``savefig``: PNG keywords, with other entries as JSON."""
    info: dict[str, str] = {"Software": f"roitrace {__version__}"}
    params: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str):
            raise ParameterError(f"metadata keys must be strings; got {key!r}")
        if key in _PNG_KEYS:
            if not isinstance(value, str):
                raise ParameterError(f"metadata[{key!r}] must be a string; got {value!r}")
            info[key] = value
        else:
            params[key] = value
    if params:
        if "Description" in info:
            raise ParameterError(
                "metadata has both 'Description' and other entries, which would be stored "
                "as JSON under 'Description'; put the text among the other entries instead"
            )
        try:
            info["Description"] = json.dumps(params, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"metadata values must be JSON serialisable (str, numbers, lists...): {exc}"
            ) from exc
    if fmt == "png":
        return info
    if fmt in _OTHER_FORMAT_KEYS:
        mapping = _OTHER_FORMAT_KEYS[fmt]
        unknown = sorted(set(info) - set(mapping))
        if unknown:
            raise ParameterError(
                f"metadata keys {unknown} can only be stored in PNG files, not .{fmt}"
            )
        return {mapping[k]: v for k, v in info.items()}
    if metadata:
        raise ParameterError(
            f"metadata can be stored in .png, .pdf and .svg files, not .{fmt}; "
            "save as PNG or leave metadata out"
        )
    return None


def trace_stages(
    result: Any,
    roi: int | None = None,
    *,
    truth: ArrayLike | None = None,
    true_spikes: ArrayLike | None = None,
    figsize: tuple[float, float] = (10, 7.5),
) -> Figure:
    """One ROI of an :func:`roitrace.extract` result, stage by stage, in stacked panels.

    1. ``F`` and ``Fneu``;
    2. ``F_corrected`` (its neuropil factor r in the legend) and the baseline ``F0``;
    3. ``dff`` (and ``calcium``, the deconvolved trace, and ``truth`` when given);
    4. ``spikes`` (when the result was deconvolved), against ``true_spikes`` when
       given (e.g. a :func:`roitrace.simulate` cell's ``spikes``, drawn as ticks).

    Panels whose variables the result lacks are left out.

    Parameters
    ----------
    result : xarray.Dataset
        What :func:`roitrace.extract` returns.
    roi : int, optional
        The ROI's id (a value of ``result["roi"]``); default the first ROI.
    truth, true_spikes : (T,) array_like, optional
        The true dF/F and spike counts per frame (simulations know them).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import roitrace as rt
    >>> sim = rt.simulate(shape=(48, 48), n_cells=3, n_frames=300, seed=0)
    >>> ds = rt.extract(sim.movie, sim.labels, neuropil={"gap": 2, "width": 3},
    ...                 neuropil_factor="estimate", deconvolve=True)
    >>> fig = trace_stages(ds, roi=1, truth=sim.traces[0], true_spikes=sim.spikes[0])
    >>> len(fig.axes)
    4
    >>> plt.close("all")
    """
    ids = [int(v) for v in np.asarray(result[ROI].values)]
    if roi is None:
        roi = ids[0]
    if roi not in ids:
        raise ParameterError(
            f"roi={roi!r} is not in this result; its ROI ids are "
            f"{', '.join(map(str, ids[:10]))}{', ...' if len(ids) > 10 else ''}"
        )
    one = result.sel({ROI: roi})
    rate = result_frame_rate(result)
    n = one.sizes[TIME]
    for name, given in (("truth", truth), ("true_spikes", true_spikes)):
        if given is not None and np.shape(given) != (n,):
            raise ShapeMismatchError(
                f"{name} has shape {np.shape(given)}; it needs one value per time point "
                f"of the result ({n},), e.g. the simulated cell's row"
            )
    x, xlabel = _time_axis(n, rate)
    if TIME in one.coords and rate:
        x = np.asarray(one[TIME].values, np.float64)

    def has(*names: str) -> bool:
        return all(v in one.data_vars for v in names)

    panels = ["F"]
    if has("F_corrected") or has("F0"):
        panels.append("corrected")
    if has("dff"):
        panels.append("dff")
    if has("spikes") or true_spikes is not None:
        panels.append("spikes")
    fig, axes = plt.subplots(
        len(panels), 1, figsize=figsize, sharex=True, layout="constrained", squeeze=False
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        if panel == "F":
            ax.plot(x, one["F"].values, lw=0.8, label="F")
            if has("Fneu"):
                ax.plot(x, one["Fneu"].values, lw=0.8, label="Fneu")
            ax.set_ylabel("fluorescence")
        elif panel == "corrected":
            if has("F_corrected"):
                r = one["neuropil_factor"].values if "neuropil_factor" in one.coords else None
                label = "F_corrected" if r is None else f"F - {float(r):.2f} Fneu"
                ax.plot(x, one["F_corrected"].values, lw=0.8, label=label)
            if has("F0"):
                ax.plot(x, one["F0"].values, lw=1.5, color="k", label="F0 (baseline)")
            ax.set_ylabel("fluorescence")
        elif panel == "dff":
            if truth is not None:  # underneath: the estimates are drawn over it
                ax.plot(x, _trace_1d(truth, "truth"), lw=2.0, color="C3", alpha=0.5, label="truth")
            ax.plot(x, one["dff"].values, lw=0.7, color="0.3", label="dF/F0")
            if has("calcium"):
                ax.plot(x, one["calcium"].values, lw=0.9, color="C2", label="deconvolved")
            ax.axhline(0.0, color="0.6", lw=0.6, ls="--")
            ax.set_ylabel("dF/F0")
        else:
            if has("spikes"):
                ax.plot(x, one["spikes"].values, lw=0.8, color="C2", label="inferred spikes")
            if true_spikes is not None:
                counts = _trace_1d(true_spikes, "true_spikes")
                at = np.flatnonzero(counts > 0)
                top = float(np.nanmax(one["spikes"].values)) if has("spikes") else 1.0
                ax.plot(
                    x[at],
                    np.full(at.size, -0.1 * (top or 1.0)),
                    "|",
                    color="C3",
                    ms=8,
                    label="true spikes",
                )
            ax.set_ylabel("spikes (dF/F0)")
        _legend_outside(ax)
    axes[-1, 0].set_xlabel(xlabel)
    name = str(one["name"].values) if "name" in one.coords else f"roi {roi}"
    fig.suptitle(name)
    return fig


def save(
    fig: Figure | SubFigure | Axes,
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    dpi: float = 120,
) -> Path:
    """Save a figure atomically, with provenance metadata inside the file.

    The figure is written under a temporary name in the target folder and then
    renamed, so an error or interruption never leaves a half-written file under
    ``path`` (an existing file there stays untouched).

    Parameters
    ----------
    fig : matplotlib.figure.Figure or matplotlib.axes.Axes
        The figure (an Axes or subfigure stands for the whole figure).
    path : str or os.PathLike
        Target file; its suffix picks the format (.png, .pdf, .svg, ...).
        Missing folders are created.
    metadata : dict, optional
        Stored in the PNG text chunks. Entries under the standard PNG keywords
        ("Title", "Author", "Description", "Software", "Comment", ...) are stored
        as given (strings); all other entries, e.g. the roitrace version and the
        extraction parameters, are stored together as one JSON object under
        "Description". "Software" defaults to "roitrace <version>". PDF and SVG
        files keep Title, Author, Description and Software; other formats
        cannot hold metadata.
    dpi : float, default 120
        Resolution of raster formats.

    Returns
    -------
    pathlib.Path
        The final path.

    Raises
    ------
    ParameterError
        If the suffix is missing or not a format matplotlib writes, or the
        metadata cannot be stored.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import matplotlib.pyplot as plt
    >>> from roitrace import plot
    >>> ax = plot.traces(np.sin(np.linspace(0, 6, 50)))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = plot.save(ax.figure, Path(folder) / "trace.png", metadata={"threshold": "1000"})
    ...     print(out.name, out.stat().st_size > 0)
    trace.png True
    >>> plt.close("all")
    """
    figure = _root_figure(fig)
    final = Path(path)
    fmt = final.suffix.lower().lstrip(".")
    supported = figure.canvas.get_supported_filetypes()
    if not fmt:
        raise ParameterError(f"{final} has no suffix; name the file e.g. {final.name}.png")
    if fmt not in supported:
        raise ParameterError(
            f"matplotlib cannot write .{fmt} files; use one of "
            + ", ".join(f".{k}" for k in sorted(supported))
        )
    file_metadata = _file_metadata(fmt, metadata)
    kwargs: dict[str, Any] = {"format": fmt, "dpi": dpi, "bbox_inches": "tight"}
    if file_metadata is not None:
        kwargs["metadata"] = file_metadata
    with atomic_path(final) as tmp:
        figure.savefig(tmp, **kwargs)
    return final


def extraction_figures(
    ds: Any,
    projection: Any,
    folder: str | os.PathLike,
    *,
    neuropil: Mapping[str, Any] | None = None,
    projection_name: str | None = None,
    max_traces: int = 30,
) -> list[Path]:
    """The figures of an extraction, as PNG files in ``folder`` (what
    ``roitrace extract --figures`` writes).

    One cell: ``mask.png`` (the mask's outline on the projection), ``pixels.png``
    and ``traces.png`` (F, Fneu, F_corrected). Several cells: ``rois.png`` (ROIs
    and neuropil rings on the projection), ``traces.png`` (stacked z-scored
    traces) and ``dff_heatmap.png`` (dF/F0 of every cell).

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`roitrace.extract` (or :func:`roitrace.load`).
    projection : (Y, X) array_like
        The background image.
    folder : path
        Where the PNGs go (created if needed; each written atomically).
    neuropil : Neuropil or dict, optional
        The rings to draw; by default those recorded in the result's parameters.
    projection_name : str, optional
        Names the background in the titles ("std"...); by default the projection
        the cells were thresholded on (``ds.attrs["projection"]``).
    max_traces : int
        With more cells, the stacked traces are the most active ones (by
        skewness, else SNR), as the title says: a thousand stacked traces are a
        solid block. The heatmap shows every cell.

    Returns
    -------
    paths : list of pathlib.Path
        The files written.
    """
    import warnings

    from .neuropil import neuropil_rings
    from .options import Neuropil
    from .result import (
        FLUORESCENCE_VARS,
        SKEWNESS,
        SNR,
        VAR_DFF,
        VAR_F,
        VAR_F_CORRECTED,
        result_frame_rate,
        result_parameters,
        result_rois,
    )

    folder = Path(folder)
    proj = projection
    meta = {"Software": f"roitrace {__version__}", "Description": json.dumps(dict(ds.attrs))}
    rate = result_frame_rate(ds)
    rois = result_rois(ds)
    kind = projection_name or ds.attrs.get("projection")
    background = f"{kind} projection" if kind else "projection"
    # a result made elsewhere: its parameters say which rings it used
    npil = Neuropil.coerce(neuropil or result_parameters(ds).get("neuropil"))
    rings = None
    if npil is not None:
        # the result keeps no ring pixels: recompute them exactly as extract() made
        # them (same parameters, every ROI excluded); it already warned about them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rings = neuropil_rings(rois, **npil.as_dict())
    written = []

    def write(ax_or_fig, name):
        fig = getattr(ax_or_fig, "figure", ax_or_fig)
        written.append(save(fig, folder / name, metadata=meta))
        plt.close(fig)

    if len(rois) == 1:
        mask = rois[0].mask(rois.frame_shape)
        write(
            projection_contour(proj, mask, title=f"{background} and cell mask"),
            "mask.png",
        )
        ring = None
        if rings is not None:
            ring = np.zeros(mask.size, bool)
            ring[rings[0]] = True
            ring = ring.reshape(mask.shape)
        ax = pixels_scatter(proj, mask, ring)
        ax.set_title(f"{ax.get_title()} on the {background}")
        write(ax, "pixels.png")
        names = [v for v in FLUORESCENCE_VARS if v in ds]
        write(traces({v: ds[v].values[0] for v in names}, frame_rate=rate), "traces.png")
        return written
    write(roi_contours(proj, rois, rings=rings, projection_name=kind), "rois.png")

    signal = ds[VAR_F_CORRECTED] if VAR_F_CORRECTED in ds else ds[VAR_F]
    n = signal.sizes["roi"]
    chosen = np.arange(n)
    title = f"{n} cells"
    if n > max_traces:
        by = next((v for v in (SKEWNESS, SNR) if v in ds.coords or v in ds), None)
        if by is None:
            chosen, title = chosen[:max_traces], f"the first {max_traces} of {n} cells"
        else:
            score = np.asarray(ds[by].values, np.float64)
            score = np.where(np.isfinite(score), score, -np.inf)
            # ascending, so that the most active cell is stacked on top
            chosen = np.argsort(-score, kind="stable")[:max_traces][::-1]
            title = f"{max_traces} most active of {n} cells (by {by})"
    picked = signal.isel(roi=chosen)
    x = np.asarray(picked.values, np.float64)
    sd = x.std(axis=1, keepdims=True)
    # a constant trace has no z-score: draw it flat rather than fail the command
    z = picked.copy(data=(x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0))
    step = 4.0
    _fig, ax = plt.subplots(figsize=(10, max(4.8, 0.22 * len(chosen) + 1.5)), layout="constrained")
    traces(z, offset=step, frame_rate=rate, title=title, ax=ax)
    if ax.get_legend() is not None:
        ax.get_legend().remove()  # the y ticks name the cells
    rows = [rois[int(k)] for k in chosen]
    ax.set_yticks(
        np.arange(len(chosen)) * step,
        [r.name if r.name and r.name != f"roi {r.id}" else str(r.id) for r in rows],
        fontsize="small" if len(chosen) <= 20 else "x-small",
    )
    ax.set_ylabel(f"ROI (each trace z-scored, stacked {step:g} apart)")
    write(ax, "traces.png")
    write(
        heatmap(ds[VAR_DFF], frame_rate=rate, title=f"dF/F0 of all {n} cells"),
        "dff_heatmap.png",
    )
    return written
