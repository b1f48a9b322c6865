"""ImageJ / Fiji ROIs in and out: single ``.roi`` files and ROI Manager ``RoiSet.zip``.

:func:`read_imagej` turns the area ROIs of a file into a :class:`~roitrace.rois.RoiSet`
and :func:`write_imagej` writes a :class:`~roitrace.rois.RoiSet` that ImageJ's ROI
Manager opens. Zips are read and written by ``zipfile``, ROIs decoded and encoded
by the ``roifile`` package.

Sets of 10^4 - 10^5 ROIs are read and written in seconds: the ROIs are filled, or
outlined, many at a time, one numpy pass over all their edges (the same float
operations as one at a time, so the same pixels).

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

import contextlib
import functools
import gc
import io
import itertools
import logging
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._memory import human_bytes as _human
from .._warnings import warn_user
from ..errors import EmptyMaskError, ParameterError, RoiFormatError, RoiNotFoundError
from ..rois import Roi, RoiSet
from ._base import RoiFormat

__all__ = ["ImageJFormat", "read_imagej", "write_imagej"]

log = logging.getLogger(__name__)

#: The largest ImageJ ROI read (a .roi file or one zip entry). ImageJ stores 4 bytes
#: per vertex (12 with subpixel coordinates) and a composite path 4 per float: 16 MiB
#: holds over a million vertices, more than any drawn or traced outline. A larger
#: entry is junk (or a zip bomb), refused before it is unpacked.
_MAX_ROI_BYTES = 16 * 1024**2
#: The most .roi entries a RoiSet.zip may have.
_MAX_ENTRIES = 500_000
#: The largest zip central directory read: zipfile parses it whole into a record of
#: about 600 bytes per entry before any entry can be checked (64 MiB: a million
#: entries with short names), so its size is checked first.
_MAX_DIRECTORY_BYTES = 64 * 1024**2
#: The most bytes of ROIs unpacked from one zip in all (each ROI is parsed and kept).
_MAX_TOTAL_BYTES = 1024**3

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


class ImageJFormat(RoiFormat):
    """ImageJ / Fiji ROIs: a ``.roi`` file or a ROI Manager ``RoiSet.zip``
    (:func:`read_imagej`, :func:`write_imagej`). Reading needs ``shape``."""

    name = "imagej"
    title = "ImageJ ROI"
    suffixes = (".zip", ".roi")
    requires = ("roifile", "roifile", None)

    def _read(self, path: str | os.PathLike, *, shape: tuple[int, int] | None = None) -> RoiSet:
        return read_imagej(path, shape=shape)

    def _write(self, rois: RoiSet, path: str | os.PathLike) -> Path:
        return write_imagej(rois, path)


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
    RoiFormatError
        The file (or a zip entry) is not an ImageJ ROI, or is truncated or corrupt.
    RoiNotFoundError
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
        raise RoiNotFoundError(f"{p}: no such ImageJ ROI file; check the path")
    if p.is_dir():
        raise RoiFormatError(
            f"{p} is a folder, not an ImageJ ROI file: pass a .roi file or a RoiSet.zip"
        )
    with _collector_paused():
        rois, infos, clipped = _read_rois(p, frame)
    if clipped:
        ny, nx = frame
        warn_user(
            f"{p}: ImageJ ROI{'s' if len(clipped) > 1 else ''} "
            f"{', '.join(clipped[:10])}{' ...' if len(clipped) > 10 else ''} "
            f"extend{'' if len(clipped) > 1 else 's'} beyond the {ny} x {nx} frame: the "
            "pixels outside were dropped; check that shape= is the movie's frame shape",
        )
    return RoiSet(rois, frame, source=str(p), meta={"imagej": infos})


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many ROIs are made: each of its
    full passes walks every object alive, and the objects of 100,000 ROIs (made
    here, none of them in cycles) set off ten such passes, a quarter of the
    reading time. The collector's state is restored afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_rois(
    p: Path, frame: tuple[int, int]
) -> tuple[list[Roi], list[dict[str, Any]], list[str]]:
    """The ROIs of a file, their ``meta["imagej"]`` records and the names of those
    the frame clips (see :func:`read_imagej`)."""
    # 1. the outlines, in file order, up to the first ROI that cannot be filled; each
    # entry is decoded by roifile all the same (a file that is no ROI is refused first)
    roifile = _roifile()
    entries: list[str] = []
    names: list[str] = []
    kinds: list[str] = []
    shapes: list[_Shape] = []
    extras: list[tuple[bool, tuple[int, int, int, int]]] = []
    failure: tuple[Exception, BaseException | None] | None = None
    with _RoifileLog() as said:
        for index, (entry, data) in enumerate(_read_entries(p), start=1):
            try:
                roi = roifile.ImagejRoi.frombytes(data)
            except Exception as exc:
                raise RoiFormatError(
                    f"{_where(p, entry)} is not a readable ImageJ ROI ({_one_line(exc)}); "
                    "save it again from ImageJ's ROI Manager (More > Save...)"
                ) from exc
            if said.messages:
                _report_roifile_log(said.messages, p, entry)
                said.messages.clear()
            if failure is not None:
                continue
            stem = entry.rpartition("/")[2]  # the zip entry's file name
            stem = stem[:-4] if stem.lower().endswith(".roi") else stem
            name = roi.name or stem or f"roi {index}"
            kind = _kind(roi)
            try:
                shapes.append(_shape_of(roi, kind))
            except _Refused as exc:
                failure = (
                    ParameterError(
                        f"{_where(p, entry)}: ImageJ ROI {name!r} is {_article(kind)} {kind}: "
                        f"{_ONLY_AREAS}; {exc.why}"
                    ),
                    None,
                )
                continue
            except (ValueError, IndexError, TypeError, struct.error) as exc:
                failure = (_corrupt(p, entry, name, kind, exc), exc)
                continue
            entries.append(entry)
            names.append(name)
            kinds.append(kind)
            extras.append(
                (
                    bool(int(roi.options) & _SPLINE_FIT),
                    (roi.position, roi.c_position, roi.z_position, roi.t_position),
                )
            )
    bounds = _bounds_many(shapes)
    finite = np.isfinite(np.asarray(bounds, np.float64).reshape(-1, 4)).all(axis=1)
    if not finite.all():  # NaN or infinite vertices: refused at the first such ROI
        k = int(np.argmin(finite))
        bad = ValueError("its coordinates are not finite numbers")
        failure = (_corrupt(p, entries[k], names[k], kinds[k], bad), bad)
        del entries[k:], names[k:], kinds[k:], shapes[k:], extras[k:], bounds[k:]

    # 2. fill them all (small ones together), then check them in file order
    filled = _rasterise_many(shapes, bounds, frame)
    ny, nx = frame
    rois: list[Roi] = []
    infos: list[dict[str, Any]] = []
    clipped: list[str] = []
    outside: list[str] = []
    rows = zip(filled, entries, names, kinds, shapes, bounds, extras, strict=True)
    for index, ((y, x, n_total, n_outside), entry, name, kind, shape_, box, extra) in enumerate(
        rows, start=1
    ):
        if n_total == 0:
            left, top, right, bottom = box
            if right <= 0 or bottom <= 0 or left >= nx or top >= ny:
                n_total = 1  # a degenerate outline off the frame: report it as outside
            else:
                raise EmptyMaskError(
                    f"{_where(p, entry)}: ImageJ ROI {name!r} ({kind}) encloses no pixel "
                    "centre (it is thinner than a pixel); redraw it larger in ImageJ or "
                    "remove it"
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
        infos.append(_info(entry, kind, shape_, box, *extra))
    if failure is not None:
        raise failure[0] from failure[1]

    if outside:
        many = len(outside) > 1
        raise EmptyMaskError(
            f"{p}: ImageJ ROI{'s' if many else ''} "
            f"{', '.join(repr(n) for n in outside[:10])}{' ...' if len(outside) > 10 else ''} "
            f"lie{'' if many else 's'} entirely outside the {ny} x {nx} frame; check that "
            f"shape= is the frame shape of the movie {'they were' if many else 'it was'} "
            f"drawn on, or remove {'them' if many else 'it'} in ImageJ"
        )
    return rois, infos, clipped


def _corrupt(p: Path, entry: str, name: str, kind: str, exc: BaseException) -> RoiFormatError:
    return RoiFormatError(
        f"{_where(p, entry)}: ImageJ ROI {name!r} ({kind}) is corrupt "
        f"({_one_line(exc)}); save it again from ImageJ"
    )


def _check_shape(shape: Any, p: Path) -> tuple[int, int]:
    if shape is None:
        raise ParameterError(
            f"{p}: ImageJ ROI files do not record the image size; pass the movie's frame "
            "shape=, e.g. shape=movie.frame_shape"
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


def _read_entries(p: Path) -> Iterator[tuple[str, bytes]]:
    """(entry name, bytes) of each ROI in a .roi file or a zip of them, one at a time.

    Sizes are checked before anything is unpacked (an entry's declared size, the
    number of entries, the zip's directory) and while it is (at most the limit and
    one byte are read), so a zip bomb or junk costs at most ``_MAX_ROI_BYTES``.
    """
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        yield from _zip_entries(p)
        return
    try:
        size = p.stat().st_size
        if size > _MAX_ROI_BYTES:
            raise RoiFormatError(_too_big(p, p.name, size))
        with open(p, "rb") as fh:
            data = fh.read(_MAX_ROI_BYTES + 1)  # it may have grown since, or be a pipe
    except OSError as exc:
        raise RoiFormatError(f"{p}: cannot be read ({_one_line(exc)})") from exc
    if len(data) > _MAX_ROI_BYTES:
        raise RoiFormatError(_too_big(p, p.name, len(data)))
    yield p.name, data


def _too_big(p: Path, entry: str, size: int) -> str:
    return (
        f"{_where(p, entry)} holds {_human(size)}, more than any ImageJ ROI takes (at most "
        f"{_human(_MAX_ROI_BYTES)} here): it is not an ROI saved by ImageJ (junk after "
        "one, or a zip bomb); save the ROIs again from ImageJ's ROI Manager (More > Save...)"
    )


def _not_a_roi_zip(p: Path, why: str) -> str:
    return (
        f"{p} is not a readable zip of ImageJ ROIs ({why}); save the ROIs again from "
        "ImageJ's ROI Manager (More > Save...)"
    )


#: What zipfile raises for a damaged, encrypted or oddly compressed zip or entry.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


def _zip_entries(p: Path) -> Iterator[tuple[str, bytes]]:
    _check_zip_directory(p)
    try:
        zf = zipfile.ZipFile(p)
    except _ZIP_ERRORS as exc:
        raise RoiFormatError(_not_a_roi_zip(p, _one_line(exc))) from exc
    with zf:
        infos = [
            info
            for info in zf.infolist()
            if not info.is_dir() and info.filename.lower().endswith(".roi")
        ]
        if not infos:
            raise RoiFormatError(
                f"{p} holds no .roi entry; is it a RoiSet.zip saved by ImageJ's ROI Manager?"
            )
        if len(infos) > _MAX_ENTRIES:
            raise RoiFormatError(
                _not_a_roi_zip(p, f"{len(infos)} .roi entries, more than {_MAX_ENTRIES}")
            )
        for info in infos:  # every declared size, before anything is unpacked
            if info.file_size > _MAX_ROI_BYTES:
                raise RoiFormatError(_too_big(p, info.filename, info.file_size))
        declared = sum(info.file_size for info in infos)
        if declared > _MAX_TOTAL_BYTES:
            raise RoiFormatError(
                _not_a_roi_zip(
                    p,
                    f"its entries unpack to {_human(declared)}, more than the "
                    f"{_human(_MAX_TOTAL_BYTES)} roitrace reads from one ROI set",
                )
            )
        total = 0
        for info in infos:
            data = _read_member(zf, info, p)
            # the declared sizes are checked above, but they may lie: count what came
            total += len(data)
            if total > _MAX_TOTAL_BYTES:
                raise RoiFormatError(
                    _not_a_roi_zip(
                        p, f"its entries unpack to more than {_human(_MAX_TOTAL_BYTES)}"
                    )
                )
            yield info.filename, data


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> bytes:
    """An entry's bytes, streamed: at most the limit and one byte are unpacked (zipfile
    stops at the declared size and then checks the CRC, but a header may lie)."""
    pieces: list[bytes] = []
    n = 0
    try:
        with zf.open(info) as fh:
            # in pieces: one read of the whole limit would unpack all of it at once; a
            # short piece ends the entry (zipfile then has checked its CRC)
            while n <= _MAX_ROI_BYTES:
                want = min(1 << 20, _MAX_ROI_BYTES + 1 - n)
                piece = fh.read(want)
                pieces.append(piece)
                n += len(piece)
                if len(piece) < want:
                    break
    except _ZIP_ERRORS as exc:
        raise RoiFormatError(
            f"{_where(p, info.filename)} cannot be unpacked ({_one_line(exc)}); the zip is "
            "damaged: save the ROIs again from ImageJ's ROI Manager (More > Save...)"
        ) from exc
    if n > _MAX_ROI_BYTES:
        raise RoiFormatError(_too_big(p, info.filename, n))
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _check_zip_directory(p: Path) -> None:
    """Refuse a zip whose central directory is too large before zipfile parses it
    (it keeps ~600 bytes per entry in memory: a zip of millions of empty entries
    would take gigabytes before any entry could be checked)."""
    end_record = getattr(zipfile, "_EndRecData", None)  # private, stable since Python 2
    if end_record is None:
        return
    try:
        with open(p, "rb") as fh:
            rec = end_record(fh)
    except OSError as exc:
        raise RoiFormatError(f"{p}: cannot be read ({_one_line(exc)})") from exc
    if not rec:
        return  # not a zip: zipfile.ZipFile says so
    entries = rec[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)]
    size = rec[getattr(zipfile, "_ECD_SIZE", 5)]
    if entries > _MAX_ENTRIES or size > _MAX_DIRECTORY_BYTES:
        raise RoiFormatError(
            _not_a_roi_zip(
                p,
                f"its directory lists {entries} entries in {_human(size)}; roitrace reads "
                f"at most {_MAX_ENTRIES} ROIs and {_human(_MAX_DIRECTORY_BYTES)} of directory",
            )
        )


class _RoifileLog(logging.Filter):
    """Keep roifile's logged complaints (in its words, e.g. "cannot handle ImagejRoi
    type <ROI_TYPE.NOROI: 6>") from the user while an ROI is parsed; roitrace says
    what they mean in its own words (the kinds it cannot use are refused by name)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False

    def __enter__(self) -> _RoifileLog:
        self._logger = logging.getLogger("roifile")
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)


def _report_roifile_log(messages: list[str], p: Path, entry: str) -> None:
    for msg in messages:
        if msg.startswith("cannot handle ImagejRoi type"):
            continue  # an unknown or empty kind: refused by name when it is filled
        if msg.startswith(("ImagejRoi name exceeds", "ImagejRoi props exceeds")):
            if "name" in msg:
                what = "name lies beyond the end of its data (a truncated file?) and was not "
                what += "read; it is named after the entry"
            else:
                what = "properties lie beyond the end of its data (a truncated file?) and "
                what += "were not read"
            warn_user(f"{_where(p, entry)}: the ROI's {what}")
            continue
        log.info("%s: roifile: %s", _where(p, entry), msg)


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _article(kind: str) -> str:
    return "an" if kind[:1] in "aeiou" else "a"


#: roifile's ROI_OPTIONS.SPLINE_FIT, as an int (the enum's "&" costs microseconds).
_SPLINE_FIT = 1


@functools.cache
def _kinds() -> dict[tuple[int, int], str]:
    """The ImageJ name of each kind, by (type, subtype) code: subtype 0 for any other
    subtype, type -1 for any type."""
    from roifile import ROI_SUBTYPE as SUB
    from roifile import ROI_TYPE as T

    names = {
        T.POLYGON: "polygon",
        T.RECT: "rectangle",
        T.OVAL: "oval",
        T.LINE: "straight line",
        T.FREELINE: "freehand line",
        T.POLYLINE: "polyline",
        T.NOROI: "empty selection",
        T.FREEHAND: "freehand",
        T.TRACED: "traced",
        T.ANGLE: "angle",
        T.POINT: "point",
    }
    kinds = {(int(t), 0): name for t, name in names.items()}
    kinds[int(T.FREEHAND), int(SUB.ELLIPSE)] = "ellipse"
    kinds[int(T.FREEHAND), int(SUB.ROTATED_RECT)] = "rotated rectangle"
    kinds[-1, int(SUB.TEXT)] = "text overlay"
    kinds[-1, int(SUB.IMAGE)] = "image overlay"
    kinds[-1, int(SUB.ARROW)] = "arrow"
    return kinds


def _kind(roi: Any) -> str:
    """The ImageJ name of an ROI's kind."""
    if roi.shape_roi_size > 0:
        return "composite"
    t, sub, kinds = roi.roitype.value, roi.subtype.value, _kinds()
    kind = kinds.get((-1, sub)) or kinds.get((t, sub)) or kinds.get((t, 0))
    kind = kind or f"ROI of unknown type {t}"
    if kind in ("polygon", "freehand") and int(roi.options) & _SPLINE_FIT:
        return f"spline-fitted {kind}"
    if kind == "rectangle" and roi.rounded_rect_arc_size > 0:
        return "rounded rectangle"
    if kind == "point" and roi.n_coordinates > 1:
        return "multipoint"
    return kind


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
    if kind.startswith("ROI of unknown"):
        raise ValueError(f"type {roi.roitype.value} is none of the kinds ImageJ writes")
    if kind in _REFUSED:
        raise _Refused(_REFUSED[kind])
    if kind == "composite":
        if roi.multi_coordinates is None:
            raise ValueError("a composite ROI must have the rectangle type")
        return _Shape(_path_loops(np.asarray(roi.multi_coordinates, np.float64)))
    if kind == "rounded rectangle":
        return _Shape([_round_rect(*_rect_bounds(roi), roi.rounded_rect_arc_size)])
    if kind == "rectangle":
        left, top, right, bottom = _rect_bounds(roi)
        return _Shape([np.array([[left, top], [right, top], [right, bottom], [left, bottom]])])
    if kind == "oval":
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


def _bounds_many(shapes: list[_Shape]) -> list[tuple[float, float, float, float]]:
    """``shape.bounds()`` of each shape, the outlines' in one pass."""
    out: list[Any] = [None] * len(shapes)
    loops: list[np.ndarray] = []
    owners: list[int] = []
    sizes: list[int] = []
    for i, s in enumerate(shapes):
        if s.oval is not None:
            out[i] = s.oval
            continue
        n = sum(len(lp) for lp in s.loops)
        if n == 0:
            out[i] = (0.0, 0.0, 0.0, 0.0)
            continue
        loops.extend(s.loops)
        owners.append(i)
        sizes.append(n)
    if owners:
        pts = np.concatenate(loops).astype(np.float64, copy=False)
        at = np.cumsum([0, *sizes[:-1]])
        lo = np.minimum.reduceat(pts, at, axis=0).tolist()
        hi = np.maximum.reduceat(pts, at, axis=0).tolist()
        for i, (left, top), (right, bottom) in zip(owners, lo, hi, strict=True):
            out[i] = (left, top, right, bottom)
    return out


#: ROIs are filled together in batches of about this many cells (box pixels, and
#: rows x vertices for polygons); an ROI larger than that is filled on its own.
_BATCH_CELLS = 1 << 21


def _rasterise_many(
    shapes: list[_Shape], bounds: list[tuple[float, float, float, float]], frame: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """:func:`_rasterise` of each shape (its ``bounds`` given).

    The small ones (all of a RoiSet's cells) are filled together, in batches of
    ``_BATCH_CELLS``: one numpy pass for all their polygon edges (the same
    scanline rule as :func:`_scanline_fill`, the same float operations, so the
    same pixels), one for all their ovals; the others one by one.
    """
    n = len(shapes)
    out: list[Any] = [None] * n
    if n == 0:
        return out
    b = np.asarray(bounds, np.float64).reshape(n, 4)
    # the candidate pixel box of each, as _rasterise
    c0, c1 = np.ceil(b[:, 0] - 0.5), np.floor(b[:, 2] - 0.5) + 1
    r0, r1 = np.ceil(b[:, 1] - 0.5), np.floor(b[:, 3] - 0.5) + 1
    rows, cols = r1 - r0, c1 - c0
    oval = np.fromiter((s.oval is not None for s in shapes), bool, n)
    verts = np.fromiter(
        (sum(len(lp) for lp in s.loops if len(lp) >= 3) for s in shapes), np.float64, n
    )
    half_w, half_h = (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2
    cost = np.where(oval, rows * cols, rows * (cols + 1) + verts * (rows + 2))
    together = (
        (rows > 0)
        & (cols > 0)
        & (rows * cols <= _FULL_BOX_LIMIT)
        & (cost <= _BATCH_CELLS)
        & np.where(oval, (half_w > 0) & (half_h > 0), verts >= 3)
    )
    for i in np.flatnonzero(~together).tolist():
        out[i] = _rasterise(shapes[i], frame, bounds[i])
    idx = np.flatnonzero(together)
    if idx.size == 0:
        return out
    box = np.column_stack([r0[idx], r1[idx], c0[idx], c1[idx]]).astype(np.int64)
    batch = np.cumsum(cost[idx]) // _BATCH_CELLS
    cuts = np.flatnonzero(np.diff(batch)) + 1
    for sel in np.split(np.arange(idx.size), cuts):
        chosen = idx[sel]
        is_oval = oval[chosen]
        for group in (chosen[~is_oval], chosen[is_oval]):
            if group.size == 0:
                continue
            gbox = box[np.searchsorted(idx, group)]
            if oval[group[0]]:
                owner, y, x = _fill_ovals([shapes[i].oval for i in group.tolist()], gbox)
            else:
                owner, y, x = _fill_polygons([shapes[i].loops for i in group.tolist()], gbox)
            _split_pixels(out, group, owner, y, x, frame)
    return out


def _split_pixels(
    out: list[Any],
    group: np.ndarray,
    owner: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    frame: tuple[int, int],
) -> None:
    """Store each ROI's pixels inside the frame, its pixel count and how many lie
    outside, as :func:`_rasterise` returns them (pixels sorted by ROI, then row-major)."""
    ny, nx = frame
    m = group.size
    counts = np.bincount(owner, minlength=m)
    totals = counts.tolist()
    if y.size and (y.min() < 0 or x.min() < 0 or y.max() >= ny or x.max() >= nx):
        inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
        counts = np.bincount(owner[inside], minlength=m)
        y, x = y[inside], x[inside]
    stops = np.cumsum(counts).tolist()
    ys, xs = y.astype(np.intp, copy=False), x.astype(np.intp, copy=False)
    start = 0
    for i, total, stop in zip(group.tolist(), totals, stops, strict=True):
        out[i] = (ys[start:stop], xs[start:stop], total, total - (stop - start))
        start = stop


def _fill_polygons(
    loops_of: list[list[np.ndarray]], box: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of many polygon shapes at once: (shape index, row, column) of each,
    sorted by shape then row-major.

    The rule and the float operations are those of :func:`_scanline_fill`, over
    every (edge, row) pair of every shape at once. The crossings of each row of a
    shape's box are counted into one flat array (one row of ``columns + 1`` slots
    per box row, the last slot for crossings right of the box). The even-odd
    parity flips at each slot holding an odd count, and a closed outline crosses
    each row an even number of times, so the flips, in order, alternate between
    the first pixel of a run inside and the first one after it: the runs of every
    row of every shape, without a loop over rows or shapes.
    """
    r0, r1, c0, c1 = box.T
    loops: list[np.ndarray] = []
    owners: list[int] = []
    for j, shape_loops in enumerate(loops_of):
        for lp in shape_loops:
            if len(lp) >= 3:
                loops.append(lp)
                owners.append(j)
    sizes = np.fromiter(map(len, loops), np.int64, len(loops))
    a = np.concatenate(loops).astype(np.float64, copy=False)
    stops = np.cumsum(sizes)
    following = np.arange(1, a.shape[0] + 1)
    following[stops - 1] = stops - sizes  # each loop closes on its first vertex
    xa, ya = a[:, 0], a[:, 1]
    xb, yb = xa[following], ya[following]
    keep = ya != yb  # horizontal edges never cross a scanline
    xa, ya, xb, yb = xa[keep], ya[keep], xb[keep], yb[keep]
    edge_owner = np.repeat(np.asarray(owners, np.int64), sizes)[keep]
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    slope = (xb - xa) / (yb - ya)
    # rows each edge may cross (a little wide: the exact test is below), in its box
    first = np.maximum(np.floor(lo - 0.5).astype(np.int64), r0[edge_owner])
    last = np.minimum(np.ceil(hi - 0.5).astype(np.int64), r1[edge_owner] - 1)
    count = np.maximum(last - first + 1, 0)
    e = np.repeat(np.arange(count.size), count)
    row = first[e] + (np.arange(e.size) - np.repeat(np.cumsum(count) - count, count))
    y = row + 0.5
    crosses = (y >= lo[e]) & (y < hi[e])
    e, row, y = e[crosses], row[crosses], y[crosses]
    xc = xa[e] + (y - ya[e]) * slope[e]
    owner = edge_owner[e]
    ncols = c1 - c0
    # first column whose centre is right of the crossing: ImageJ's (int)(x + 0.5)
    k = np.clip(np.floor(xc + (0.5 + 1e-8)) - c0[owner], 0, ncols[owner]).astype(np.int64)
    width = ncols + 1
    area = (r1 - r0) * width
    base = np.cumsum(area) - area
    slot = base[owner] + (row - r0[owner]) * width[owner] + k
    counts = np.bincount(slot, minlength=int(base[-1] + area[-1]))
    # the parity flips at each slot holding an odd number of crossings: the flips
    # alternate between the start of a run of inside pixels and the slot after it
    flips = np.flatnonzero(counts & 1)
    starts, stops = flips[0::2], flips[1::2]
    owner = np.searchsorted(base, starts, side="right") - 1
    rr, cc = np.divmod(starts - base[owner], width[owner])
    return _runs(owner, r0[owner] + rr, c0[owner] + cc, stops - starts)


def _runs(
    owner: np.ndarray, row: np.ndarray, col: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, row, column) of each pixel of runs of ``length`` pixels starting at
    (``row``, ``col``)."""
    first = np.cumsum(length) - length
    return (
        np.repeat(owner, length),
        np.repeat(row, length),
        np.repeat(col - first, length)
        + np.arange(int(first[-1] + length[-1]) if length.size else 0),
    )


def _fill_ovals(
    ovals: list[tuple[float, float, float, float]], box: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of many ovals at once, as :func:`_fill_polygons` (the float
    operations of :func:`_fill`)."""
    r0, r1, c0, c1 = box.T
    left, top, right, bottom = np.asarray(ovals, np.float64).T
    rx, ry = (right - left) / 2, (bottom - top) / 2
    nrows, ncols = r1 - r0, c1 - c0
    m = len(ovals)

    def along(start: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        owner = np.repeat(np.arange(m), n)
        return owner, start[owner] + (np.arange(owner.size) - np.repeat(np.cumsum(n) - n, n))

    row_owner, rows = along(r0, nrows)
    col_owner, cols = along(c0, ncols)
    dy = ((rows + 0.5 - (top + ry)[row_owner]) / ry[row_owner]) ** 2
    dx = ((cols + 0.5 - (left + rx)[col_owner]) / rx[col_owner]) ** 2
    area = nrows * ncols
    base = np.cumsum(area) - area
    owner = np.repeat(np.arange(m), area)
    rr, cc = np.divmod(np.arange(owner.size) - base[owner], ncols[owner])
    inside = (
        dy[(np.cumsum(nrows) - nrows)[owner] + rr] + dx[(np.cumsum(ncols) - ncols)[owner] + cc]
    )
    pixels = np.flatnonzero(inside <= 1.0)
    owner = owner[pixels]
    return owner, r0[owner] + rr[pixels], c0[owner] + cc[pixels]


def _rasterise(
    shape: _Shape, frame: tuple[int, int], bounds: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Pixels ``(y, x)`` of ``shape`` inside ``frame``, the shape's pixel count and how
    many of them lie outside the frame (-1: some, not counted for huge shapes)."""
    ny, nx = frame
    left, top, right, bottom = shape.bounds() if bounds is None else bounds
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


def _info(
    entry: str,
    kind: str,
    shape: _Shape,
    bounds: tuple[float, float, float, float],
    spline: bool,
    positions: tuple[int, int, int, int],
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "entry": entry,
        "kind": kind,
        "outline": [np.asarray(lp, np.float64) for lp in shape.loops],
        "bounds": bounds,
        "spline_fit": spline,
    }
    for key, value in zip(("position", "c", "z", "t"), positions, strict=True):
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
        warn_user(
            f"ImageJ ROIs hold no pixel weights: the weights of ROIs {weighted[:10]}"
            f"{' ...' if len(weighted) > 10 else ''} are not written (only their pixels)",
        )
    names = [r.name or f"roi {r.id}" for r in rois]
    entries = _entry_names(names)
    with _collector_paused(), atomic_path(p) as tmp:
        if suffix == ".roi":
            (data,) = _encode_rois(rois.rois, names)
            tmp.write_bytes(data)
        else:
            # gathered in memory (smaller than the ROIs' pixels): zipfile seeks back
            # to each entry's header, which would flush a file's buffer every entry
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:  # stored, as ImageJ writes them
                for entry, data in zip(entries, _encode_rois(rois.rois, names), strict=True):
                    zf.writestr(entry, data)
            tmp.write_bytes(buf.getbuffer())
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


def _encode_rois(rois: list[Roi], names: list[str]) -> Iterator[bytes]:
    """Each ROI as the bytes of an ImageJ ROI (roifile's) whose outline runs along its
    pixels' edges (see :func:`write_imagej`): a traced polygon, or a composite of
    several outlines."""
    roifile = _roifile()
    traced, rect = roifile.ROI_TYPE.TRACED, roifile.ROI_TYPE.RECT
    at = 0
    for pts, loop_roi, loop_len, bounds in _outline_batches(rois):
        n_loops = np.bincount(loop_roi, minlength=len(bounds)).tolist()
        # traced ROIs store their vertices relative to their left, top
        origin = np.asarray(bounds, np.int64)[np.repeat(loop_roi, loop_len), :2]
        rel = (pts - origin).astype(np.int32)
        stops = np.cumsum(loop_len).tolist()
        k = 0
        for j, (left, top, right, bottom) in enumerate(bounds):
            box = {"left": left, "top": top, "right": right, "bottom": bottom}
            name = names[at + j]
            start = stops[k - 1] if k else 0
            if n_loops[j] == 1:
                roi = roifile.ImagejRoi(
                    roitype=traced,
                    n_coordinates=stops[k] - start,
                    integer_coordinates=rel[start : stops[k]],
                    name=name,
                    **box,
                )
            else:
                parts = []
                for a, b in itertools.pairwise([start, *stops[k : k + n_loops[j]]]):
                    seg = np.ones((b - a, 3), np.float32)  # MOVETO x y, LINETO x y ...
                    seg[0, 0] = 0
                    seg[:, 1:] = pts[a:b]
                    parts += [seg.ravel(), np.array([4], np.float32)]  # CLOSE
                path = np.concatenate(parts)
                roi = roifile.ImagejRoi(
                    roitype=rect,
                    shape_roi_size=path.size,
                    multi_coordinates=path,
                    name=name,
                    **box,
                )
            k += n_loops[j]
            yield _name_in_units(roi.tobytes(), name)
        at += len(bounds)


def _name_in_units(data: bytes, name: str) -> bytes:
    """roifile's bytes of an ROI named ``name`` (stored last), with the name's length
    in UTF-16 units, as ImageJ counts it: roifile counts characters, one short for
    each beyond the BMP (an emoji), and such files cut the name in two."""
    units = len(name.encode("utf-16-be")) // 2
    if units == len(name):
        return data
    at = struct.unpack_from(">i", data, 60)[0] + 20  # in the second header
    return data[:at] + struct.pack(">i", units) + data[at + 4 :]


def _pixel_loops(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """The outlines of one set of pixels (see :func:`_outline_batches`)."""
    ((pts, _, loop_len, _),) = _outline_batches([Roi(1, np.asarray(y), np.asarray(x))])
    return np.split(pts, np.cumsum(loop_len)[:-1])


def _outline_batches(
    rois: list[Roi],
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]]:
    """Closed outlines along the pixel edges of each ROI's pixels, in ImageJ coordinates
    (integer (x, y) corners, without repeated first vertex or collinear vertices), in
    batches of ROIs of about ``_BATCH_CELLS`` box cells, every step one numpy pass
    over a batch. Each batch: the vertices of all its loops, each loop's ROI (in the
    batch) and vertex count, and the bounds (left, top, right, bottom) of each ROI's
    pixels.

    Every pixel side between an ROI pixel and a non-ROI pixel is a directed edge,
    clockwise around the pixels on screen; edges are chained into loops, turning
    right where two loops meet at a corner, so each loop is simple. Outer outlines
    run clockwise and holes anticlockwise; even-odd filling gives back the pixels.
    The edges of an ROI are numbered side by side (all top sides in row-major pixel
    order, then right, bottom, left sides) and each loop starts at its lowest
    numbered edge, loops in the order of those.
    """
    n = len(rois)
    sizes = np.fromiter((r.y.size for r in rois), np.int64, n)
    y = np.concatenate([r.y for r in rois], axis=None).astype(np.int64, copy=False)
    x = np.concatenate([r.x for r in rois], axis=None).astype(np.int64, copy=False)
    at = np.cumsum(sizes) - sizes
    y0, y1 = np.minimum.reduceat(y, at), np.maximum.reduceat(y, at)
    x0, x1 = np.minimum.reduceat(x, at), np.maximum.reduceat(x, at)
    cells = (y1 - y0 + 3) * (x1 - x0 + 3)
    batch = np.cumsum(cells) // _BATCH_CELLS
    cuts = [0, *(np.flatnonzero(np.diff(batch)) + 1).tolist(), n]
    bounds = np.column_stack([x0, y0, x1 + 1, y1 + 1]).tolist()
    for a, b in itertools.pairwise(cuts):
        lo, hi = int(at[a]), int(at[b - 1] + sizes[b - 1])
        pts, loop_roi, loop_len = _batch_loops(
            y[lo:hi], x[lo:hi], sizes[a:b], y0[a:b], x0[a:b], y1[a:b], x1[a:b]
        )
        yield pts, loop_roi, loop_len, bounds[a:b]


def _batch_loops(
    y: np.ndarray,
    x: np.ndarray,
    sizes: np.ndarray,
    y0: np.ndarray,
    x0: np.ndarray,
    y1: np.ndarray,
    x1: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The outlines of a batch of ROIs (see :func:`_outline_batches`)."""
    m = sizes.size
    width = x1 - x0 + 3  # a padded box: one empty pixel around
    area = (y1 - y0 + 3) * width
    base = np.cumsum(area) - area
    owner = np.repeat(np.arange(m), sizes)
    grid = np.zeros(int(base[-1] + area[-1]), bool)
    grid[base[owner] + (y - y0[owner] + 1) * width[owner] + (x - x0[owner] + 1)] = True
    cell = np.flatnonzero(grid)  # each pixel once, by ROI then row-major
    owner = np.repeat(np.arange(m), np.add.reduceat(grid.view(np.uint8), base, dtype=np.int64))
    w = width[owner]
    r, c = np.divmod(cell - base[owner], w)  # padded: corner (c, r) is its top-left
    # the sides facing no pixel, each an edge from corner (c + sx, r + sy) to
    # (c + ex, r + ey): top going +x, right +y, bottom -x, left -y
    sides = (~grid[cell - w], ~grid[cell + 1], ~grid[cell + w], ~grid[cell - 1])
    sx, sy = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
    ex, ey = np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])
    which = [np.flatnonzero(s) for s in sides]
    pixel = np.concatenate(which)
    side = np.repeat(np.arange(4), [i.size for i in which])
    order = np.argsort(owner[pixel], kind="stable")  # by ROI, then side, then pixel
    pixel, side = pixel[order], side[order]
    edge_owner = owner[pixel]
    c, r = c[pixel], r[pixel]
    ax, ay, bx, by = c + sx[side], r + sy[side], c + ex[side], r + ey[side]
    # each corner a key, unique over the batch
    corner_w = width + 1
    corner_area = (y1 - y0 + 4) * corner_w
    corner_base = np.cumsum(corner_area) - corner_area
    cw, cb = corner_w[edge_owner], corner_base[edge_owner]
    key_a = cb + ay * cw + ax
    key_b = cb + by * cw + bx
    dx, dy = bx - ax, by - ay
    # the edge that follows each edge: the one leaving its end corner; where two
    # loops meet at a corner (two edges leave it), the one turning right, so that
    # each loop is simple
    by_key = np.argsort(key_a, kind="stable")
    sorted_keys = key_a[by_key]
    new = np.ones(sorted_keys.size, bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    firsts = np.flatnonzero(new)  # where each corner's edges begin in by_key
    leaving = np.zeros(int(corner_base[-1] + corner_area[-1]), np.int64)
    leaving[sorted_keys[firsts]] = firsts
    lo = leaving[key_b]
    nxt = by_key[lo]
    leaving[sorted_keys[firsts]] = np.diff(firsts, append=sorted_keys.size)  # edges leaving
    pinch = np.flatnonzero(leaving[key_b] > 1)
    if pinch.size:
        second = by_key[lo[pinch] + 1]
        turns = (dx[second] == -dy[pinch]) & (dy[second] == dx[pinch])
        nxt[pinch[turns]] = second[turns]
    # the loops (cycles of nxt), each from its lowest edge, in the order of those
    start, pos, length = _cycles(nxt)
    heads = np.flatnonzero(start == np.arange(nxt.size))
    loop_len = length[heads]
    loop_at = np.zeros(nxt.size, np.int64)
    loop_at[heads] = np.cumsum(loop_len) - loop_len
    seq = np.empty(nxt.size, np.int64)
    seq[loop_at[start] + pos] = np.arange(nxt.size)
    vx, vy = ax[seq], ay[seq]
    # drop vertices where the outline goes straight on
    ends = loop_at[heads] + loop_len - 1
    prev, after = np.arange(-1, nxt.size - 1), np.arange(1, nxt.size + 1)
    prev[loop_at[heads]], after[ends] = ends, loop_at[heads]
    corner = (vx - vx[prev] != vx[after] - vx) | (vy - vy[prev] != vy[after] - vy)
    loop_id = np.repeat(np.arange(heads.size), loop_len)[corner]
    loop_roi = edge_owner[heads]
    vert_roi = loop_roi[loop_id]
    pts = np.column_stack([vx[corner] + (x0 - 1)[vert_roi], vy[corner] + (y0 - 1)[vert_roi]])
    return pts, loop_roi, np.bincount(loop_id, minlength=heads.size)


def _cycles(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a permutation ``nxt`` (i -> nxt[i]): each element's cycle as its lowest
    element, the element's position along the cycle from there and the cycle's
    length; by pointer jumping (log2 of the longest cycle numpy passes).

    After k passes, ``low`` is the lowest element of the 2**k elements from each
    one on, ``dist`` how many steps on it lies; once no element finds a lower one
    twice as far on, every stretch covers its whole cycle.
    """
    low, dist, jump = np.arange(nxt.size), np.zeros(nxt.size, np.int64), nxt
    span = 1
    while True:
        other = low[jump]
        lower = other < low
        if not lower.any():
            break
        low = np.where(lower, other, low)
        dist = np.where(lower, dist[jump] + span, dist)
        jump, span = jump[jump], span * 2
    length = np.bincount(low, minlength=nxt.size)[low]
    return low, (length - dist) % length, length
