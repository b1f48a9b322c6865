"""ImageJ / Fiji ROIs in and out: single ``.roi`` files and ROI Manager ``RoiSet.zip``.

:func:`read_imagej` turns the area ROIs of a file into a :class:`~roitrace.rois.RoiSet`
and :func:`write_imagej` writes a :class:`~roitrace.rois.RoiSet` that ImageJ's ROI
Manager opens. The binary format is parsed and written by the ``roifile`` package.

Rasterisation follows ImageJ: a pixel (row ``r``, column ``c``) belongs to a shape
when its centre ``(c + 0.5, r + 0.5)``, in ImageJ's coordinates (x to the right, y
down, pixel corners at integers), is inside the shape. Polygon-like shapes are
filled with the even-odd rule and the tie-breaking of ImageJ's ``PolygonFiller``
(a centre exactly on a left edge is outside, on a right edge inside; an edge
spans the rows whose centres satisfy ``min(y) <= y < max(y)``); ovals use the
analytic ellipse, as ImageJ's ``OvalRoi.contains``.

Kinds read
    polygon, freehand, traced (wand), brush (saved as freehand or composite),
    rectangle (also rounded, and rotated: a freehand ROI of subtype
    ``ROTATED_RECT``), oval, ellipse (freehand of subtype ``ELLIPSE``), composite
    (``ShapeRoi``: several outlines, holes, Bezier segments; even-odd fill) and
    spline-fitted polygons.
Deliberate differences from ImageJ
    - spline-fitted polygons are filled on their stored control points, not on
      the smooth spline ImageJ draws through them (the file does not hold the
      spline; pixels near strongly curved stretches can differ);
    - rounded rectangles use exact elliptical corner arcs where Java uses Bezier
      approximations of them (the outlines differ by < 0.03 % of the arc radius);
    - ovals use the analytic pixel-centre test of ImageJ's ``OvalRoi.contains``
      (``<= 1``; also the FISSA peer's rule: identical on all its test ovals).
      Recent ImageJ versions build oval masks from an integer "traced" polygon,
      which can differ from it by single boundary pixels for some sizes.
Refused
    line kinds (straight line, polyline, freehand line, angle), point and
    multipoint selections, text and image overlays: they enclose no area.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ._atomic import atomic_path
from .errors import EmptyMaskError, MovieFormatError, MovieNotFoundError, ParameterError
from .rois import Roi, RoiSet

__all__ = ["read_imagej", "write_imagej"]

#: Rasterise the whole bounding box of an ROI (to count the pixels the frame
#: clips away) when it holds at most this many pixels; larger ones are filled only
#: inside the frame.
_FULL_BOX_LIMIT = 1 << 22

#: Rows of a scanline fill handled at once (bounds memory to ~rows x edges floats).
_FILL_CHUNK = 1 << 21


def _roifile() -> Any:
    try:
        import roifile
    except ImportError as exc:  # pragma: no cover - roifile is a dependency
        raise ImportError(
            "reading or writing ImageJ ROIs needs the roifile package: pip install roifile"
        ) from exc
    return roifile


# -- reading ---------------------------------------------------------------------------
def read_imagej(path: str | os.PathLike, *, shape: tuple[int, int] | None = None) -> RoiSet:
    """Read the area ROIs of an ImageJ ``.roi`` file or ROI Manager ``RoiSet.zip``.

    Parameters
    ----------
    path : str or path-like
        A single ``.roi`` file, or a ``.zip`` of them as ImageJ's ROI Manager saves.
    shape : (int, int)
        The frame shape ``(Y, X)`` of the movie the ROIs were drawn on (ImageJ ROI
        files do not record it). Required.

    Returns
    -------
    rois : RoiSet
        One :class:`~roitrace.rois.Roi` per ROI, ids ``1..n`` in file order, named
        by the name stored in the ROI, else the zip entry (or file) name without
        ``.roi``. ``meta["imagej"]`` holds one dict per ROI: ``entry`` (zip entry
        or file name), ``kind`` ("polygon", "oval", "ellipse", "composite"...),
        ``outline`` (the closed outlines roitrace filled, a list of ``(N, 2)``
        float arrays of ImageJ ``x, y`` coordinates; empty for ovals, which are
        filled analytically), ``bounds`` ``(left, top, right, bottom)``,
        ``spline_fit`` and, when set in the file, ``position``, ``c``, ``z``,
        ``t`` (1-based stack positions; kept, not used).

    Raises
    ------
    ParameterError
        ``shape`` is missing or not ``(Y, X)``; an ROI is a line or point
        selection (or a text/image overlay), which encloses no area.
    EmptyMaskError
        An ROI holds no pixel: it lies wholly outside the frame, or is thinner
        than a pixel.
    MovieFormatError
        The file (or a zip entry) is not an ImageJ ROI, or is truncated or corrupt.
    MovieNotFoundError
        ``path`` does not exist.

    Warns
    -----
    UserWarning
        ROIs that extend beyond the frame are clipped to it; the warning names them.

    Examples
    --------
    >>> import os, tempfile, roifile
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.roi")
    >>> square = roifile.ImagejRoi.frompoints([[1, 1], [4, 1], [4, 3], [1, 3]], name="cell")
    >>> square.tofile(path)
    >>> rois = read_imagej(path, shape=(5, 6))
    >>> rois.names, rois.ids, rois[0].npix
    (['cell'], [1], 6)
    >>> rois.masks()[0].astype(int)
    array([[0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]])
    """
    p = Path(path)
    frame = _check_shape(shape, p)
    if not p.exists():
        raise MovieNotFoundError(f"{p}: no such ImageJ ROI file; check the path")
    if p.is_dir():
        raise MovieFormatError(
            f"{p} is a folder, not an ImageJ ROI file: pass a .roi file or a RoiSet.zip"
        )
    roifile = _roifile()
    entries = _read_entries(p)
    decoded = []
    for entry, data in entries:
        try:
            roi = roifile.ImagejRoi.frombytes(data)
        except Exception as exc:
            raise MovieFormatError(
                f"{_where(p, entry)} is not a readable ImageJ ROI ({_one_line(exc)}); "
                "save it again from ImageJ's ROI Manager (More > Save...)"
            ) from exc
        decoded.append((entry, roi))

    ny, nx = frame
    rois: list[Roi] = []
    infos: list[dict[str, Any]] = []
    clipped: list[str] = []
    outside: list[str] = []
    for index, (entry, roi) in enumerate(decoded, start=1):
        stem = PurePosixPath(entry).name
        stem = stem[:-4] if stem.lower().endswith(".roi") else stem
        name = roi.name or stem or f"roi {index}"
        kind = _kind(roi)
        try:
            shape_ = _shape_of(roi, kind)
        except _Refused as exc:
            raise ParameterError(
                f"{_where(p, entry)}: ImageJ ROI {name!r} is {_article(kind)} {kind}: "
                f"{_ONLY_AREAS}; {exc.why}"
            ) from None
        except (ValueError, IndexError, TypeError, struct.error) as exc:
            raise MovieFormatError(
                f"{_where(p, entry)}: ImageJ ROI {name!r} ({kind}) is corrupt "
                f"({_one_line(exc)}); save it again from ImageJ"
            ) from exc
        y, x, n_total, n_outside = _rasterise(shape_, frame)
        left, top, right, bottom = shape_.bounds()
        if n_total == 0 and (right <= 0 or bottom <= 0 or left >= nx or top >= ny):
            n_total = 1  # a degenerate outline off the frame: report it as outside
        if n_total == 0:
            raise EmptyMaskError(
                f"{_where(p, entry)}: ImageJ ROI {name!r} ({kind}) encloses no pixel centre "
                "(it is thinner than a pixel); redraw it larger in ImageJ or remove it"
            )
        if y.size == 0:
            outside.append(name)
        elif n_outside:
            clipped.append(
                f"{name!r} ({n_outside} of {n_total} pixels outside)"
                if n_outside > 0
                else f"{name!r} (partly)"
            )
        rois.append(Roi(index, y, x, None, name))
        infos.append(_info(roi, entry, kind, shape_))

    if outside:
        many = len(outside) > 1
        raise EmptyMaskError(
            f"{p}: ImageJ ROI{'s' if many else ''} "
            f"{', '.join(repr(n) for n in outside[:10])}{' ...' if len(outside) > 10 else ''} "
            f"lie{'' if many else 's'} entirely outside the {ny} x {nx} frame; check that "
            f"shape= is the frame shape of the movie {'they were' if many else 'it was'} "
            f"drawn on, or remove {'them' if many else 'it'} in ImageJ"
        )
    if clipped:
        warnings.warn(
            f"{p}: ImageJ ROI{'s' if len(clipped) > 1 else ''} "
            f"{', '.join(clipped[:10])}{' ...' if len(clipped) > 10 else ''} "
            f"extend{'' if len(clipped) > 1 else 's'} beyond the {ny} x {nx} frame: the "
            "pixels outside were dropped; check that shape= is the movie's frame shape",
            UserWarning,
            stacklevel=2,
        )
    return RoiSet(rois, frame, source=str(p), meta={"imagej": infos})


def _check_shape(shape: Any, p: Path) -> tuple[int, int]:
    if shape is None:
        raise ParameterError(
            f"{p}: ImageJ ROI files do not record the image size; pass the movie's frame "
            "shape, e.g. read_imagej(path, shape=movie.shape[-2:])"
        )
    try:
        dims = tuple(int(s) for s in shape)
        exact = all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        dims, exact = (), False
    if len(dims) != 2 or not exact or min(dims) < 1:
        raise ParameterError(
            f"shape={shape!r}: pass the frame shape (Y, X) as two positive integers, "
            "e.g. movie.shape[-2:]"
        )
    return dims[0], dims[1]


def _where(p: Path, entry: str) -> str:
    return f"{p} (entry {entry!r})" if entry != p.name else str(p)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _read_entries(p: Path) -> list[tuple[str, bytes]]:
    """(entry name, bytes) of each ROI in a .roi file or a zip of them."""
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                names = [
                    info.filename
                    for info in zf.infolist()
                    if not info.is_dir() and info.filename.lower().endswith(".roi")
                ]
                entries = [(name, zf.read(name)) for name in names]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise MovieFormatError(
                f"{p} is not a readable zip of ImageJ ROIs ({_one_line(exc)}); save the "
                "ROIs again from ImageJ's ROI Manager (More > Save...)"
            ) from exc
        if not entries:
            raise MovieFormatError(
                f"{p} holds no .roi entry; is it a RoiSet.zip saved by ImageJ's ROI Manager?"
            )
        return entries
    try:
        return [(p.name, p.read_bytes())]
    except OSError as exc:
        raise MovieFormatError(f"{p}: cannot be read ({_one_line(exc)})") from exc


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _article(kind: str) -> str:
    return "an" if kind[:1] in "aeiou" else "a"


def _kind(roi: Any) -> str:
    """The ImageJ name of an ROI's kind."""
    from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE

    t, sub = roi.roitype, roi.subtype
    if roi.shape_roi_size > 0:
        return "composite"
    if sub == ROI_SUBTYPE.TEXT:
        return "text overlay"
    if sub == ROI_SUBTYPE.IMAGE:
        return "image overlay"
    if sub == ROI_SUBTYPE.ARROW:
        return "arrow"
    spline = bool(roi.options & ROI_OPTIONS.SPLINE_FIT)
    names = {
        ROI_TYPE.POLYGON: "spline-fitted polygon" if spline else "polygon",
        ROI_TYPE.RECT: "rounded rectangle" if roi.rounded_rect_arc_size > 0 else "rectangle",
        ROI_TYPE.OVAL: "oval",
        ROI_TYPE.LINE: "straight line",
        ROI_TYPE.FREELINE: "freehand line",
        ROI_TYPE.POLYLINE: "polyline",
        ROI_TYPE.NOROI: "empty selection",
        ROI_TYPE.FREEHAND: "spline-fitted freehand" if spline else "freehand",
        ROI_TYPE.TRACED: "traced",
        ROI_TYPE.ANGLE: "angle",
        ROI_TYPE.POINT: "multipoint" if roi.n_coordinates > 1 else "point",
    }
    if t == ROI_TYPE.FREEHAND and sub == ROI_SUBTYPE.ELLIPSE:
        return "ellipse"
    if t == ROI_TYPE.FREEHAND and sub == ROI_SUBTYPE.ROTATED_RECT:
        return "rotated rectangle"
    return names.get(t, f"ROI of unknown type {t.value}")


_DRAW = "draw an area in ImageJ"
_TO_AREA = f"{_DRAW} (or convert the line with Edit > Selection > Line to Area)"
#: Kinds that enclose no area, and what to do instead.
_REFUSED = {
    "straight line": _TO_AREA,
    "freehand line": _TO_AREA,
    "polyline": _TO_AREA,
    "arrow": _TO_AREA,
    "angle": _DRAW,
    "point": _DRAW,
    "multipoint": _DRAW,
    "empty selection": _DRAW,
    "text overlay": _DRAW,
    "image overlay": _DRAW,
}
_ONLY_AREAS = "only area ROIs (polygon, freehand, rectangle, oval, ...) can be extracted"


class _Shape:
    """What to fill: closed outlines (even-odd) or an axis-aligned ellipse."""

    def __init__(
        self, loops: list[np.ndarray], oval: tuple[float, float, float, float] | None = None
    ) -> None:
        self.loops = loops
        self.oval = oval  # left, top, right, bottom (floats) for analytic ovals

    def bounds(self) -> tuple[float, float, float, float]:
        if self.oval is not None:
            return self.oval
        pts = np.concatenate(self.loops) if self.loops else np.zeros((0, 2))
        if pts.size == 0:
            return (0.0, 0.0, 0.0, 0.0)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _shape_of(roi: Any, kind: str) -> _Shape:
    """The outline(s) of an area ROI in ImageJ coordinates; refuses line/point kinds."""
    from roifile import ROI_TYPE

    if kind.startswith("ROI of unknown"):
        raise ValueError(kind.removeprefix("ROI of "))
    if kind in _REFUSED:
        raise _Refused(_REFUSED[kind])
    if kind == "composite":
        if roi.multi_coordinates is None:
            raise ValueError("a composite ROI must have the rectangle type")
        return _Shape(_path_loops(np.asarray(roi.multi_coordinates, np.float64)))
    t = roi.roitype
    if t == ROI_TYPE.RECT:
        left, top, right, bottom = _rect_bounds(roi)
        if kind == "rounded rectangle":
            return _Shape([_round_rect(left, top, right, bottom, roi.rounded_rect_arc_size)])
        return _Shape([np.array([[left, top], [right, top], [right, bottom], [left, bottom]])])
    if t == ROI_TYPE.OVAL:
        return _Shape([], oval=_rect_bounds(roi))
    # polygon, freehand, traced (and ellipse, rotated rectangle: freehand subtypes)
    pts = _vertices(roi)
    if pts is None or len(pts) == 0:
        if kind == "ellipse":
            pts = _ellipse_polygon(roi)
        elif kind == "rotated rectangle":
            pts = _rotated_rect_polygon(roi)
        else:
            pts = np.zeros((0, 2))
    return _Shape([pts])


def _vertices(roi: Any) -> np.ndarray | None:
    """Stored vertices: sub-pixel ones when present (ImageJ uses them), else integers."""
    if roi.subpixel_coordinates is not None and len(roi.subpixel_coordinates):
        return np.asarray(roi.subpixel_coordinates, np.float64).reshape(-1, 2)
    if roi.integer_coordinates is not None:
        ints = np.asarray(roi.integer_coordinates, np.float64).reshape(-1, 2)
        return ints + np.array([roi.left, roi.top], np.float64)
    return None


def _rect_bounds(roi: Any) -> tuple[float, float, float, float]:
    if roi.subpixelrect:
        return (
            float(roi.xd),
            float(roi.yd),
            float(roi.xd + roi.widthd),
            float(roi.yd + roi.heightd),
        )
    return float(roi.left), float(roi.top), float(roi.right), float(roi.bottom)


def _float_param(roi: Any) -> float:
    """The float ImageJ stores at header bytes 52-55 (ellipse aspect ratio, rotated
    rectangle width), which roifile splits into three integer fields."""
    raw = struct.pack(
        ">BBh",
        roi.arrow_style_or_aspect_ratio & 0xFF,
        roi.arrow_head_size & 0xFF,
        roi.rounded_rect_arc_size,
    )
    return float(struct.unpack(">f", raw)[0])


def _ellipse_polygon(roi: Any, n: int = 72) -> np.ndarray:
    x1, y1, x2, y2 = roi.x1, roi.y1, roi.x2, roi.y2
    major = math.hypot(x2 - x1, y2 - y1) / 2
    minor = major * _float_param(roi)
    theta = math.atan2(y2 - y1, x2 - x1)
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u, v = major * np.cos(a), minor * np.sin(a)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.column_stack(
        [
            cx + u * math.cos(theta) - v * math.sin(theta),
            cy + u * math.sin(theta) + v * math.cos(theta),
        ]
    )


def _rotated_rect_polygon(roi: Any) -> np.ndarray:
    p1 = np.array([roi.x1, roi.y1], np.float64)
    p2 = np.array([roi.x2, roi.y2], np.float64)
    d = p2 - p1
    length = float(np.hypot(*d))
    if length == 0:
        return np.zeros((0, 2))
    normal = np.array([-d[1], d[0]]) / length * _float_param(roi) / 2
    return np.array([p1 + normal, p2 + normal, p2 - normal, p1 - normal])


def _round_rect(left: float, top: float, right: float, bottom: float, arc: int) -> np.ndarray:
    """A rounded rectangle as Java's RoundRectangle2D: corner arcs of diameter ``arc``
    clipped to the width and height, here with exact elliptical arcs."""
    w, h = right - left, bottom - top
    rx, ry = min(abs(arc), w) / 2, min(abs(arc), h) / 2
    n = max(8, math.ceil(math.pi / 2 * math.sqrt(max(rx, ry) / 0.08)))
    a = np.linspace(0, np.pi / 2, n + 1)
    corners = [  # (centre x, centre y, start angle) clockwise from the top-right corner
        (right - rx, top + ry, -np.pi / 2),
        (right - rx, bottom - ry, 0.0),
        (left + rx, bottom - ry, np.pi / 2),
        (left + rx, top + ry, np.pi),
    ]
    pts = [
        np.column_stack([cx + rx * np.cos(s + a), cy + ry * np.sin(s + a)])
        for cx, cy, s in corners
    ]
    return np.concatenate(pts)


def _path_loops(path: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a composite ROI's path (java.awt.geom PathIterator segments:
    0 moveto x y, 1 lineto x y, 2 quadto 4 floats, 3 cubicto 6 floats, 4 close);
    Bezier segments are flattened to 16 chords each."""
    loops: list[np.ndarray] = []
    current: list[np.ndarray] = []
    t = np.linspace(0, 1, 17)[1:, None]
    i, n = 0, len(path)
    sizes = {0: 2, 1: 2, 2: 4, 3: 6, 4: 0}

    def flush() -> None:
        if current:
            loops.append(np.concatenate(current))
            current.clear()

    while i < n:
        op = int(path[i])
        if op != path[i] or op not in sizes:
            raise ValueError(f"invalid path segment type {path[i]!r} at float {i}")
        k = sizes[op]
        if i + 1 + k > n:
            raise ValueError("the composite path is truncated")
        args = path[i + 1 : i + 1 + k].reshape(-1, 2)
        if op == 0:
            flush()
            current.append(args)
        elif op == 4:
            flush()
        elif not current:
            raise ValueError("a composite path segment has no start point")
        elif op == 1:
            current.append(args)
        else:
            p0 = current[-1][-1]
            if op == 2:
                c, e = args
                curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * e
            else:
                c1, c2, e = args
                curve = (
                    (1 - t) ** 3 * p0
                    + 3 * (1 - t) ** 2 * t * c1
                    + 3 * (1 - t) * t**2 * c2
                    + t**3 * e
                )
            current.append(curve)
        i += 1 + k
    flush()
    return [loop for loop in loops if len(loop) >= 3]


def _rasterise(shape: _Shape, frame: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Pixels ``(y, x)`` of ``shape`` inside ``frame``, the shape's pixel count and how
    many of them lie outside the frame (-1: some, not counted for huge shapes)."""
    ny, nx = frame
    left, top, right, bottom = shape.bounds()
    # pixel c is a candidate when left <= c + 0.5 <= right
    c0, c1 = math.ceil(left - 0.5), math.floor(right - 0.5) + 1
    r0, r1 = math.ceil(top - 0.5), math.floor(bottom - 0.5) + 1
    empty = np.zeros(0, np.intp)
    if c1 <= c0 or r1 <= r0:
        return empty, empty, 0, 0
    full = (r1 - r0) * (c1 - c0) <= _FULL_BOX_LIMIT
    if full:
        box = (r0, r1, c0, c1)
    else:
        box = (max(r0, 0), min(r1, ny), max(c0, 0), min(c1, nx))
        if box[1] <= box[0] or box[3] <= box[2]:
            return empty, empty, 1, 1  # no pixel inside; unknown whether any outside
    mask = _fill(shape, *box)
    rows, cols = np.nonzero(mask)
    rows = rows + box[0]
    cols = cols + box[2]
    inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    y, x = rows[inside].astype(np.intp), cols[inside].astype(np.intp)
    if full:
        total = int(rows.size)
        return y, x, total, total - int(y.size)
    beyond = r0 < 0 or c0 < 0 or r1 > ny or c1 > nx
    return y, x, max(int(y.size), 1), -1 if beyond else 0


def _fill(shape: _Shape, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Boolean mask of the pixels of rows r0..r1-1, columns c0..c1-1 whose centres are
    inside ``shape`` (vectorised; no loop over pixels)."""
    rows = np.arange(r0, r1) + 0.5
    cols = np.arange(c0, c1) + 0.5
    if shape.oval is not None:
        left, top, right, bottom = shape.oval
        rx, ry = (right - left) / 2, (bottom - top) / 2
        if rx <= 0 or ry <= 0:
            return np.zeros((rows.size, cols.size), bool)
        dy = ((rows - (top + ry)) / ry) ** 2
        dx = ((cols - (left + rx)) / rx) ** 2
        return dy[:, None] + dx[None, :] <= 1.0
    return _scanline_fill(shape.loops, rows, c0, c1)


def _scanline_fill(loops: list[np.ndarray], rows: np.ndarray, c0: int, c1: int) -> np.ndarray:
    """Even-odd scanline fill of closed polygons at pixel centres.

    An edge from (xa, ya) to (xb, yb) crosses the scanline y when
    min(ya, yb) <= y < max(ya, yb); a pixel is inside when an odd number of
    crossings lie strictly left of its centre. As in ImageJ's PolygonFiller, the
    crossings are nudged 1e-8 to the right, so that a centre on a left edge is
    outside and one on a right edge inside despite rounding.
    """
    ncols = c1 - c0
    out = np.zeros((rows.size, ncols), bool)
    loops = [np.asarray(lp, np.float64) for lp in loops if len(lp) >= 3]
    if not loops or ncols <= 0 or rows.size == 0:
        return out
    a = np.concatenate(loops)
    b = np.concatenate([np.roll(lp, -1, axis=0) for lp in loops])
    keep = a[:, 1] != b[:, 1]  # horizontal edges never cross a scanline
    xa, ya, xb, yb = a[keep, 0], a[keep, 1], b[keep, 0], b[keep, 1]
    if xa.size == 0:
        return out
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    slope = (xb - xa) / (yb - ya)
    step = max(1, _FILL_CHUNK // xa.size)
    for s in range(0, rows.size, step):  # chunks of rows bound the memory used
        y = rows[s : s + step, None]
        active = (y >= lo) & (y < hi)
        r_idx, e_idx = np.nonzero(active)
        xc = xa[e_idx] + (y[r_idx, 0] - ya[e_idx]) * slope[e_idx]
        # first column whose centre is right of the crossing: ImageJ's (int)(x + 0.5)
        k = np.clip(np.floor(xc + (0.5 + 1e-8)) - c0, 0, ncols).astype(np.intp)
        counts = np.bincount(r_idx * (ncols + 1) + k, minlength=y.shape[0] * (ncols + 1)).reshape(
            y.shape[0], ncols + 1
        )
        out[s : s + step] = (np.cumsum(counts[:, :ncols], axis=1) % 2).astype(bool)
    return out


def _info(roi: Any, entry: str, kind: str, shape: _Shape) -> dict[str, Any]:
    from roifile import ROI_OPTIONS

    info: dict[str, Any] = {
        "entry": entry,
        "kind": kind,
        "outline": [np.asarray(lp, np.float64) for lp in shape.loops],
        "bounds": shape.bounds(),
        "spline_fit": bool(roi.options & ROI_OPTIONS.SPLINE_FIT),
    }
    for key, value in (
        ("position", roi.position),
        ("c", roi.c_position),
        ("z", roi.z_position),
        ("t", roi.t_position),
    ):
        if value:
            info[key] = int(value)
    return info


# -- writing ---------------------------------------------------------------------------
def write_imagej(rois: RoiSet, path: str | os.PathLike) -> Path:
    """Write ROIs as an ImageJ ``RoiSet.zip`` (or one ``.roi``) that ImageJ/Fiji opens.

    Each ROI becomes one ImageJ ROI whose outline runs along the edges of its
    pixels, so that ImageJ (and :func:`read_imagej`) fill exactly those pixels:

    - one 4-connected piece without holes: a *traced* polygon, as ImageJ's wand
      tool makes;
    - several pieces (pixels touching only at corners count as separate) or
      holes: a *composite* ROI (ImageJ's ``ShapeRoi``) holding one outline per
      piece and per hole, filled with the even-odd rule.

    The ROI's name is stored (``"roi {id}"`` when it has none); zip entries are
    the names, made unique. Pixel weights cannot be stored (warned). The file is
    written under a temporary name and renamed into place.

    Parameters
    ----------
    rois : RoiSet
        The ROIs; each must hold at least one pixel.
    path : str or path-like
        A ``.zip`` path (any number of ROIs) or a ``.roi`` path (exactly one ROI).

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        The suffix is neither ``.zip`` nor ``.roi``; a ``.roi`` path for several ROIs.
    EmptyMaskError
        The set holds no ROI, or an ROI holds no pixel.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> labels = np.zeros((6, 8), int)
    >>> labels[1:4, 2:6] = 1
    >>> labels[4, 0] = 2
    >>> rois = RoiSet.from_labels(labels)
    >>> path = write_imagej(rois, os.path.join(tempfile.mkdtemp(), "RoiSet.zip"))
    >>> back = read_imagej(path, shape=(6, 8))
    >>> back.names, [r.npix for r in back]
    (['roi 1', 'roi 2'], [12, 1])
    >>> bool((back.to_labels() == labels).all())
    True
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".zip", ".roi"):
        raise ParameterError(
            f"{p}: ImageJ ROIs are written to a .zip (ROI Manager set) or a .roi file "
            f"(one ROI), not {suffix or 'a path without suffix'!r}; use e.g. RoiSet.zip"
        )
    rois.check_not_empty()
    if suffix == ".roi" and len(rois) != 1:
        raise ParameterError(
            f"{p}: a .roi file holds one ROI but the set holds {len(rois)}; write a .zip "
            "(e.g. RoiSet.zip), which ImageJ's ROI Manager opens"
        )
    weighted = [
        r.id
        for r in rois
        if r.weights is not None and np.ptp(np.asarray(r.weights, np.float64)) > 0
    ]
    if weighted:
        warnings.warn(
            f"ImageJ ROIs hold no pixel weights: the weights of ROIs {weighted[:10]}"
            f"{' ...' if len(weighted) > 10 else ''} are not written (only their pixels)",
            UserWarning,
            stacklevel=2,
        )
    roifile = _roifile()
    names = [r.name or f"roi {r.id}" for r in rois]
    ij_rois = [_to_imagej(r, name, roifile) for r, name in zip(rois, names, strict=True)]
    with atomic_path(p) as tmp:
        if suffix == ".zip":
            roifile.roiwrite(tmp, ij_rois, name=_entry_names(names), mode="w")
        else:
            roifile.roiwrite(tmp, ij_rois[0], mode="w")
    return p


def _entry_names(names: list[str]) -> list[str]:
    """Unique zip entry names (ImageJ's ROI Manager needs unique labels)."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = name.replace("/", "_").replace("\\", "_").strip() or "roi"
        candidate, k = base, 2
        while candidate.lower() in seen:
            candidate, k = f"{base}-{k}", k + 1
        seen.add(candidate.lower())
        out.append(candidate + ".roi")
    return out


def _to_imagej(r: Roi, name: str, roifile: Any) -> Any:
    loops = _pixel_loops(np.asarray(r.y), np.asarray(r.x))
    if len(loops) == 1:
        pts = loops[0].astype(np.int32)
        roi = roifile.ImagejRoi.frompoints(pts, name=name)
        roi.roitype = roifile.ROI_TYPE.TRACED
        roi.options = roifile.ROI_OPTIONS.NONE
        # ImageJ's bounds of a polygon are (min, max) of its vertices.
        roi.right = int(pts[:, 0].max())
        roi.bottom = int(pts[:, 1].max())
        return roi
    parts = []
    for loop in loops:
        seg = np.ones((len(loop), 3), np.float32)  # LINETO x y
        seg[0, 0] = 0  # MOVETO
        seg[:, 1:] = loop
        parts.append(seg.ravel())
        parts.append(np.array([4], np.float32))  # CLOSE
    allpts = np.concatenate(loops)
    roi = roifile.ImagejRoi()
    roi.roitype = roifile.ROI_TYPE.RECT
    roi.multi_coordinates = np.concatenate(parts)
    roi.shape_roi_size = int(roi.multi_coordinates.size)
    roi.left, roi.top = (int(v) for v in allpts.min(axis=0))
    roi.right, roi.bottom = (int(v) for v in allpts.max(axis=0))
    roi.name = name
    return roi


def _pixel_loops(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """Closed outlines along the pixel edges of a set of pixels, in ImageJ coordinates
    (integer (x, y) corners, without repeated first vertex or collinear vertices).

    Every pixel side between an ROI pixel and a non-ROI pixel is a directed edge,
    clockwise around the pixels on screen; edges are chained into loops, turning
    right where two loops meet at a corner, so each loop is simple. Outer outlines
    run clockwise and holes anticlockwise; even-odd filling gives back the pixels.
    """
    y0, x0 = int(y.min()), int(x.min())
    h, w = int(y.max()) - y0 + 1, int(x.max()) - x0 + 1
    m = np.zeros((h + 2, w + 2), bool)
    m[y - y0 + 1, x - x0 + 1] = True
    inner = m[1:-1, 1:-1]
    rr, cc = np.nonzero(inner)
    r, c = rr + 1, cc + 1  # padded indices; pixel corner (X, Y) = (c, r) for its top-left
    starts, ends = [], []
    for sel, (sx, sy), (ex, ey) in (
        (~m[r - 1, c], (0, 0), (1, 0)),  # top side, going +x
        (~m[r, c + 1], (1, 0), (1, 1)),  # right side, going +y
        (~m[r + 1, c], (1, 1), (0, 1)),  # bottom side, going -x
        (~m[r, c - 1], (0, 1), (0, 0)),  # left side, going -y
    ):
        starts.append(np.column_stack([c[sel] + sx, r[sel] + sy]))
        ends.append(np.column_stack([c[sel] + ex, r[sel] + ey]))
    a = np.concatenate(starts)
    b = np.concatenate(ends)
    direction = b - a
    width = w + 3
    key_a = a[:, 1] * width + a[:, 0]
    key_b = b[:, 1] * width + b[:, 0]
    order = np.argsort(key_a, kind="stable")
    sorted_keys = key_a[order]
    lo = np.searchsorted(sorted_keys, key_b, side="left")
    hi = np.searchsorted(sorted_keys, key_b, side="right")
    # the edge that follows each edge; where two loops meet at a corner (two edges
    # leave it), take the one turning right, so that each loop is simple
    nxt = order[lo]
    pinch = np.nonzero(hi - lo > 1)[0]
    if pinch.size:
        right_turn = np.column_stack([-direction[pinch, 1], direction[pinch, 0]])
        second = order[lo[pinch] + 1]
        use_second = np.all(direction[second] == right_turn, axis=1)
        nxt[pinch[use_second]] = second[use_second]
    nxt = nxt.tolist()
    used = bytearray(len(a))
    loops: list[np.ndarray] = []
    for first in range(len(a)):
        if used[first]:
            continue
        verts = []
        e = first
        while not used[e]:
            used[e] = True
            verts.append(e)
            e = nxt[e]
        loop = a[verts]
        # drop vertices where the outline goes straight on
        d_in = loop - np.roll(loop, 1, axis=0)
        d_out = np.roll(loop, -1, axis=0) - loop
        corner = np.any(d_in != d_out, axis=1)
        loops.append(loop[corner] + [x0 - 1, y0 - 1])
    return loops
