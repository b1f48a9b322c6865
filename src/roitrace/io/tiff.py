"""TIFF movies, of any flavour tifffile reads: plain, BigTIFF, ImageJ hyperstacks,
OME-TIFF, ScanImage, several pages or series.

Uncompressed, contiguous series are memory-mapped (and read with ``pread``);
compressed ones are decoded page by page, in threads, so only the pages asked for
are decoded. Damaged files are one-line errors naming the file and what is wrong,
never a traceback of tifffile's: directories that loop, headers that claim more
than the file holds, pages cut off (``truncated="keep"`` uses the complete frames).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .. import _memory
from .._memory import human_bytes as _human
from .._warnings import warn_user
from ..errors import MovieFormatError, ParameterError, RoitraceError
from ._base import MovieFormat
from ._movie import Movie, _check_channel, _read_raw, check_frame_fits, map_rows

log = logging.getLogger(__name__)

__all__ = ["TIFF_SUFFIXES", "TiffFormat", "TiffMovie"]

TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8", ".ome.tif", ".ome.tiff"}
_MISSING = 2**62  # a frame whose page cannot be found ends "beyond any file"


class TiffFormat(MovieFormat):
    """Movies as TIFF files (see :mod:`roitrace.io.tiff`). TIFF files carry their own
    axes: no ``axes=`` here (``channel=`` picks a channel)."""

    name = "tiff"
    title = "TIFF"
    suffixes = (".tif", ".tiff", ".btf", ".tf8")
    requires = ("tifffile", "tifffile", None)
    read_options = ("channel", "frame_rate", "truncated")

    def _read(
        self,
        path: str | os.PathLike,
        *,
        channel: int | None = None,
        frame_rate: float | None = None,
        truncated: str = "error",
    ) -> Movie:
        if truncated not in ("error", "keep"):
            raise ParameterError(f"truncated={truncated!r}: use 'error' or 'keep'")
        return TiffMovie(Path(path), channel, frame_rate, truncated)


class TiffMovie(Movie):
    """A movie in a TIFF file of any flavour tifffile reads.

    Every series whose frames have the movie's shape and dtype is used, in file
    order. Leading dimensions (Z, several series, mislabelled channels...) become
    time. Uncompressed, contiguous series are memory-mapped; others are read page
    by page, so only the pages asked for are decoded.
    """

    def __init__(
        self,
        path: Path,
        channel: int | None,
        frame_rate: float | None,
        truncated: str = "error",
    ) -> None:
        self.path = path
        # tifffile logs what it finds odd (in its words) while it opens the file and
        # as it loads pages: collect it for -v and say what matters as one error.
        # A damaged header makes tifffile (and numpy under it) raise almost anything
        # (KeyError, TypeError, AssertionError, ZeroDivisionError...): whatever it
        # raises while the file is opened is said as a damaged file, in one line.
        with _TiffLog(path) as tiff_log:
            try:
                self._open(path, channel, frame_rate, truncated, tiff_log)
            except (RoitraceError, MemoryError):
                self.close()
                raise
            except Exception as exc:
                self.close()
                log.debug("%s: opening the TIFF failed", path, exc_info=True)
                raise MovieFormatError(_unreadable_tiff(path, exc)) from exc

    def _open(
        self,
        path: Path,
        channel: int | None,
        frame_rate: float | None,
        truncated: str,
        tiff_log: _TiffLog,
    ) -> None:
        import tifffile

        loop = _ifd_loop(path)
        if loop is not None:
            raise MovieFormatError(
                f"{path}: the TIFF file is damaged: {loop}, so its pages never end; "
                "re-copy it, or export it again from the software that made it"
            )
        self._tif = tifffile.TiffFile(path)
        try:
            series = list(self._tif.series)
        except MemoryError:
            raise
        except Exception as exc:
            # a damaged ImageJ (or tifffile) description breaks the series it describes,
            # not the pages: read those plainly, if they can be
            series = self._series_without_metadata(path, exc, tiff_log)
        if not series:
            raise MovieFormatError(f"{path}: the TIFF file holds no image")
        if tiff_log.damaged:
            # tifffile lost pages (their directories were cut off) and fell back to a
            # shorter series: rebuild the frames that are really there.
            series = [_recover_series(self._tif, path, truncated)]
        self._open_series(series, channel, truncated)
        self.frame_rate = frame_rate if frame_rate is not None else _tiff_frame_rate(self._tif)
        if getattr(self, "_ignored_description", None):
            warn_user(self._ignored_description)

    def _series_without_metadata(self, path: Path, exc: Exception, tiff_log: _TiffLog) -> list:
        """The pages as tifffile sees them without the file's ImageJ or shaped
        description, when reading the description failed (``exc``); else ``exc``."""
        import tifffile

        tif = self._tif
        kind = "ImageJ" if tif.is_imagej else "tifffile" if tif.is_shaped else None
        if kind is None:
            raise exc
        tif.close()
        tiff_log.damaged = False
        self._tif = tifffile.TiffFile(path, is_imagej=False, is_shaped=False)
        try:
            series = list(self._tif.series)
        except Exception:
            raise exc from None
        # said once the movie is open: not before an error that stops it
        self._ignored_description = (
            f"{path.name}: its {kind} description is damaged ({_exception_words(exc)}); "
            "it is ignored, and the pages are read in file order as frames"
        )
        return series

    def _open_series(self, series: list[Any], channel: int | None, truncated: str) -> None:
        path = self.path
        self._sources: list[_SeriesFrames] = []
        first = _SeriesFrames(series[0], channel, path)
        self._sources.append(first)
        for s in series[1:]:
            src = _SeriesFrames(s, channel, path)
            if src.frame_shape == first.frame_shape and src.dtype == first.dtype:
                self._sources.append(src)
            else:
                log.info(
                    "%s: series %d (shape %s) skipped: frames differ from series 0",
                    path,
                    s.index,
                    s.shape,
                )
        self.dtype = first.dtype
        counts = [len(s) for s in self._sources]
        n = int(sum(counts))
        self._offsets = np.cumsum([0, *counts])
        self.shape = (n, *first.frame_shape)  # type: ignore[assignment]
        flattened = sorted({a for s in self._sources for a in s.flattened})
        if len(self._sources) > 1 or flattened:
            what = []
            if flattened:
                what.append(f"axes {''.join(flattened)} of the TIFF were flattened into time")
            if len(self._sources) > 1:
                what.append(f"{len(self._sources)} series were joined in time")
            msg = f"{path.name}: " + " and ".join(what) + f" ({n} frames)"
            if any(a in flattened for a in "CS"):
                msg += "; if C/S holds colour channels, pass channel= to pick one"
            warn_user(msg)
        if n == 1:
            warn_user(
                f"{path.name} holds a single 2-D image, read as a movie of 1 frame; "
                "projections and traces need a (time, y, x) stack",
            )
        self._check_complete(truncated)

    def _check_complete(self, truncated: str) -> None:
        """Find the first frame the file cannot hold: cut off (truncated) or stored
        in fewer bytes or strips than a frame needs (a damaged page directory)."""
        size = self.path.stat().st_size
        last_good = -1
        problem = None
        for i in range(self.n_frames):
            s = int(np.searchsorted(self._offsets, i, side="right") - 1)
            src, j = self._sources[s], i - int(self._offsets[s])
            if src.frame_end(j) > size:
                break
            problem = src.frame_problem(j)
            if problem is not None:
                break
            last_good = i
        else:
            return
        n_good = last_good + 1
        what = "truncated" if problem is None else f"damaged at frame {n_good} ({problem})"
        if truncated == "keep" and n_good > 0:
            warn_user(
                f"{self.path.name}: file is {what}; using its {n_good} complete "
                f"frames of {self.n_frames}",
            )
            self._cut(n_good)
            return
        if n_good == 0:
            y, x = self.frame_shape
            claims = (
                f"its header claims frames of {y} x {x} {self.dtype} "
                f"({_human(self.frame_nbytes)} each) in a file of {_human(size)}"
            )
            if problem is None:
                what = "truncated, or its header is damaged"
            raise MovieFormatError(
                f"{self.path}: file is {what}: no frame of {self.n_frames} can be read "
                f"({claims}); re-copy the file or export it again"
            )
        raise MovieFormatError(
            f"{self.path}: file is {what}: only frames 0 to {last_good} of {self.n_frames} "
            "are complete (re-copy the file, or open it with truncated='keep' to use those)"
        )

    def _cut(self, n: int) -> None:
        new: list[_SeriesFrames] = []
        for s, src in enumerate(self._sources):
            lo = int(self._offsets[s])
            if lo >= n:
                break
            src.cut(n - lo)
            new.append(src)
        self._sources = new
        self._offsets = np.cumsum([0, *[len(s) for s in new]])
        self.shape = (n, *self.shape[1:])  # type: ignore[assignment]

    def _take(self, idx: np.ndarray) -> np.ndarray:
        try:
            block = self._take_sources(idx)
        except _Undecodable as exc:
            raise MovieFormatError(self._undecodable(exc)) from exc.error
        except (RoitraceError, MemoryError):
            raise
        except Exception as exc:  # tifffile or numpy on a damaged page: anything
            log.debug("%s: reading frames failed", self.path, exc_info=True)
            raise MovieFormatError(self._unreadable_frames(idx, exc)) from exc
        want = (idx.size, *self.frame_shape)
        if block.shape != want:
            raise MovieFormatError(
                f"{self._frames_words(idx)} of {self.path} could not be read: the pages "
                f"hold an array of shape {block.shape}, not {want}; the TIFF file is "
                "damaged: re-copy it, or export it again"
            )
        return block

    @staticmethod
    def _frames_words(idx: np.ndarray) -> str:
        if idx.size == 1:
            return f"frame {int(idx[0])}"
        return f"frames {int(idx.min())} to {int(idx.max())}"

    def _unreadable_frames(self, idx: np.ndarray, exc: BaseException) -> str:
        """Name the first frame of ``idx`` that cannot be read (reading them one by one:
        a failed read of several frames does not say which), for the message."""
        bad, error = idx, exc
        if idx.size > 1:
            for i in idx:
                try:
                    self._take_sources(np.array([i], dtype=np.intp))
                except MemoryError:
                    raise
                except _Undecodable as one:
                    return self._undecodable(one)
                except RoitraceError as one:
                    return str(one)
                except Exception as one:
                    bad, error = np.array([i]), one
                    break
        msg = (
            f"{self._frames_words(bad)} of {self.path} could not be read (the TIFF file "
            f"is damaged: {_exception_words(error)})"
        )
        if bad.size == 1 and int(bad[0]) > 0:
            i = int(bad[0])
            return f"{msg}; re-copy it, or use the {i} frames before it with frames=(0, {i})"
        return f"{msg}; re-copy it, or export it again"

    def stream_range(self, start: int, stop: int) -> np.ndarray:
        if len(self._sources) == 1:  # an uncompressed series: a view of its memory map
            view = self._sources[0].map_range(start, stop)
            if view is not None and view.shape == (stop - start, *self.frame_shape):
                return view
        return self.read(start, stop)

    def _take_sources(self, idx: np.ndarray) -> np.ndarray:
        if len(self._sources) == 1:
            return self._sources[0].take(idx)
        out = np.empty((idx.size, *self.frame_shape), self.dtype)
        which = np.searchsorted(self._offsets, idx, side="right") - 1
        for s in np.unique(which):
            sel = which == s
            try:
                out[sel] = self._sources[s].take(idx[sel] - self._offsets[s])
            except _Undecodable as exc:
                exc.frame += int(self._offsets[s])  # the movie's frame, not the series'
                raise
        return out

    def _undecodable(self, exc: _Undecodable) -> str:
        """A corrupt page is found only when it is decoded (checking every page when
        the file is opened would read the whole movie): name the frame and say how
        to use the frames before it."""
        i = exc.frame
        msg = (
            f"frame {i} of {self.path} could not be decoded ({exc.codec}: {_one_line(exc.error)})"
        )
        if i == 0:
            return msg + "; the file is damaged from its first frame: re-copy or re-export it"
        return (
            f"{msg}; the file is damaged there: re-copy it, or use the {i} frames before it "
            f"with frames=(0, {i})"
        )

    @property
    def memory_mapped(self) -> bool:
        return all(s.memmap is not None for s in self._sources)

    def close(self) -> None:
        if getattr(self, "_tif", None) is not None:
            self._tif.close()


#: Threads that decode compressed TIFF pages (zlib and friends release the GIL).
DECODE_THREADS = max(1, min(8, os.cpu_count() or 1))


class _TiffLog(logging.Filter):
    """Keep tifffile's logged complaints (in its words, about its objects) from the
    user while a file is opened or read, note whether they say the file is damaged,
    and pass the first few on to roitrace's log (shown with -v).

    A filter on tifffile's logger, not a handler: it drops the records before any
    handler sees them, and several readers (threads) can hold one at once.
    """

    SIGNS = ("invalid page offset", "failed to reshape", "corrupted", "truncated")
    SHOWN = 5

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.damaged = False
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(sign in msg for sign in self.SIGNS):
            self.damaged = True
        if len(self.messages) < self.SHOWN and msg not in self.messages:
            self.messages.append(msg)
        return False

    def __enter__(self) -> _TiffLog:
        self._logger = logging.getLogger("tifffile")
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)
        for msg in self.messages:
            log.info("%s: tifffile: %s", self.path, msg)


class _Undecodable(Exception):
    """A page failed to decode; ``frame`` is the frame it holds (as the reader that
    raised it counts frames), ``codec`` the page's compression."""

    def __init__(self, frame: int, error: BaseException, codec: str) -> None:
        super().__init__(frame, error)
        self.frame = frame
        self.error = error
        self.codec = codec


#: Deflate cannot expand data more than 1032-fold (a 258-byte match in 2 bits):
#: compressed strips that would have to expand more do not hold the frame claimed.
_DEFLATE_MAX_RATIO = 1032
_DEFLATE = {8, 32946}  # ADOBE_DEFLATE and DEFLATE


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _expected_frames(tif: Any) -> int | None:
    """The frames a tifffile-written ("shaped") file says it holds, when it says so in
    a form that can be believed (a list of positive whole numbers)."""
    try:
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else None
        shape = meta.get("shape") if isinstance(meta, dict) else None
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return None
    if not isinstance(shape, (list, tuple)) or len(shape) < 2:
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        return None
    return math.prod(shape[:-2])


def _recover_series(tif: Any, path: Path, truncated: str) -> Any:
    """The complete frames of a damaged TIFF as one series, or an error naming them."""
    import tifffile

    size = path.stat().st_size
    pages = []
    for page in tif.pages:
        if page is None:
            break
        offsets, counts = page.dataoffsets, page.databytecounts
        if not counts or len(offsets) != len(counts):
            break
        if max(int(o) + int(c) for o, c in zip(offsets, counts, strict=False)) > size:
            break
        if pages and (page.shape != pages[0].shape or page.dtype != pages[0].dtype):
            break
        pages.append(page)
    key = pages[0] if pages else None
    expected = _expected_frames(tif)
    n = len(pages)
    contiguous = key is not None and key.compression == 1 and key.is_contiguous
    if contiguous and expected and key.nbytes > 0:
        # tifffile writes contiguous data first and the later directories after it:
        # the frames' data can still be found from the first page's offset.
        n = max(0, min(expected, (size - int(key.dataoffsets[0])) // key.nbytes))
    if n == 0:
        raise MovieFormatError(f"{path}: the TIFF file is damaged and holds no complete frame")
    total = f" of {expected}" if expected else ""
    if truncated != "keep":
        raise MovieFormatError(
            f"{path}: file is truncated: only frames 0 to {n - 1}{total} are complete "
            "(re-copy the file, or open it with truncated='keep' to use those)"
        )
    warn_user(
        f"{path.name}: file is truncated; using its {n} complete frames{total}",
    )
    if contiguous and expected:
        return tifffile.TiffPageSeries(
            [key], (n, *key.shape), key.dtype, "I" + key.axes, parent=tif, kind="recovered"
        )
    return tifffile.TiffPageSeries(
        pages, (n, *key.shape), key.dtype, "I" + key.axes, parent=tif, kind="recovered"
    )


def _series_dtype(series: Any, path: Path) -> np.dtype:
    """The pixels' type of a series: numbers numpy can sum (a damaged SampleFormat or
    BitsPerSample makes tifffile report none, or complex, or raw bytes)."""
    dtype = series.dtype
    if dtype is None:
        raise MovieFormatError(
            f"{path}: the TIFF file is damaged: its pages' sample format and bits per "
            "sample name no pixel type (re-copy it, or export it again)"
        )
    dtype = np.dtype(dtype)
    bits = series.keyframe.bitspersample
    if not isinstance(bits, (int, np.integer)) or not 0 < bits <= 8 * dtype.itemsize:
        raise MovieFormatError(
            f"{path}: the TIFF file is damaged: its pages claim {bits} bits per sample "
            f"for {dtype} pixels (re-copy it, or export it again)"
        )
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise MovieFormatError(
            f"{path}: the TIFF pages hold {dtype} pixels, which roitrace does not read; "
            "if the file should hold a movie of integers or floats, it is damaged: "
            "re-copy it, or export it again"
        )
    return dtype


def _check_series_shape(series: Any, n_lead: int, path: Path) -> None:
    """Refuse a series whose shape, as tifffile reports it from the header, cannot be a
    movie: a page without pixels, pages that do not end the series' shape, or more
    frames than the file has bytes (a frame takes one byte at least)."""
    key = series.keyframe
    shape, page_shape = tuple(series.shape), tuple(key.shape)
    ok = (
        all(isinstance(n, (int, np.integer)) for n in (*shape, *page_shape))
        and n_lead >= 0
        and len(page_shape) == len(key.axes)
        and len(shape) == len(series.axes)
        and shape[n_lead:] == page_shape
        and all(n >= 0 for n in (*shape, *page_shape))
    )
    if ok and not all(n > 0 for n in page_shape):
        raise MovieFormatError(
            f"{path}: the TIFF file is damaged: its header describes pages of shape "
            f"{page_shape} (axes {key.axes!r}), without pixels; re-copy it, or export it "
            "again"
        )
    if not ok:
        raise MovieFormatError(
            f"{path}: the TIFF file is damaged: its header describes pages of shape "
            f"{page_shape} (axes {key.axes!r}) in a series of shape {shape} (axes "
            f"{series.axes!r}), which do not fit together; re-copy it, or export it again"
        )
    # every frame (a page, or a sample plane of one) takes a byte of the file at least:
    # more frames than bytes is a lie, refused before a table of them is made
    n_samples = page_shape[key.axes.index("S")] if "S" in key.axes else 1
    n_frames = math.prod(int(n) for n in shape[:n_lead]) * n_samples
    size = path.stat().st_size
    if n_frames > size:
        raise MovieFormatError(
            f"{path}: the TIFF header claims {n_frames} frames but the file holds "
            f"{_human(size)}; the file is damaged or its header is wrong: re-copy or "
            "re-export it"
        )


class _SeriesFrames:
    """Frames of one TIFF series: a table (page, sample) per frame."""

    def __init__(self, series: Any, channel: int | None, path: Path) -> None:
        self.series = series
        self.path = path
        self.dtype = _series_dtype(series, path)
        key = series.keyframe
        page_axes = key.axes
        n_lead = len(series.axes) - len(page_axes)
        lead_axes, lead_shape = series.axes[:n_lead], series.shape[:n_lead]
        _check_series_shape(series, n_lead, path)
        if "Y" not in page_axes or "X" not in page_axes:
            raise MovieFormatError(f"{path}: TIFF pages have axes {page_axes!r}, not Y and X")
        self.frame_shape = (key.shape[page_axes.index("Y")], key.shape[page_axes.index("X")])
        self.page_axes = page_axes
        self.sample_axis = page_axes.index("S") if "S" in page_axes else None
        n_samples = key.shape[self.sample_axis] if self.sample_axis is not None else 1
        pages_grid = np.arange(int(np.prod(lead_shape, dtype=np.int64))).reshape(lead_shape)
        self.flattened: set[str] = set()
        samples: list[int | None] = [None]
        if channel is not None:
            if "C" in lead_axes:
                c = lead_axes.index("C")
                _check_channel(channel, lead_shape[c], path)
                pages_grid = np.take(pages_grid, channel, axis=c)
            elif self.sample_axis is not None:
                _check_channel(channel, n_samples, path)
                samples = [channel]
            else:
                raise ParameterError(
                    f"{path}: channel={channel} was given but the file has no channel axis "
                    f"(axes {series.axes}); leave channel out"
                )
        elif self.sample_axis is not None:
            samples = list(range(n_samples))
            if n_samples > 1:
                self.flattened.add("S")
        lead_left = [a for a, s in zip(lead_axes, lead_shape, strict=True) if s > 1]
        if channel is not None and "C" in lead_axes:
            lead_left = [a for a in lead_left if a != "C"]
        if len(lead_left) > 1 or any(a not in "TQI" for a in lead_left):
            self.flattened.update(lead_left)
        pages = pages_grid.reshape(-1)
        self.page_of = np.repeat(pages, len(samples))
        self.sample_of = np.tile(np.array([-1 if s is None else s for s in samples]), pages.size)
        self.pages = series.pages
        self.memmap = self._try_memmap()
        self._check_key_frame(path, n_samples)

    def _check_key_frame(self, path: Path, n_samples: int) -> None:
        """Refuse a header whose frames the file cannot hold, or memory cannot, before
        any frame is allocated (a memory map already proves the file holds them)."""
        key = self.series.keyframe
        y, x = self.frame_shape
        frames = f"frames of {y} x {x} {self.dtype}"
        if n_samples > 1:
            frames += f" x {n_samples} samples"
        size = path.stat().st_size
        claims = f"{path}: the TIFF header claims {frames} ({_human(key.nbytes)} each)"
        if self.memmap is None:
            problem = self.page_problem(key)
            if problem is not None:
                raise MovieFormatError(
                    f"{claims} but the file holds {_human(size)} ({problem}); the file is "
                    "damaged or its header is wrong: re-copy or re-export it"
                )
        avail = _memory.available_memory()
        if avail is not None and key.nbytes > avail:
            # a frame larger than memory in a file that cannot hold it is a lie (a
            # damaged header), not a reason to find a bigger machine
            lie = self._cannot_hold(key, size)
            if lie is not None:
                raise MovieFormatError(
                    f"{claims} but the file holds {_human(size)} ({lie}); the file is "
                    "damaged or its header is wrong: re-copy or re-export it"
                )
        check_frame_fits(f"{path}: the TIFF header", frames, int(key.nbytes))

    def _cannot_hold(self, key: Any, size: int) -> str | None:
        """Why a file of ``size`` bytes cannot hold the key frame its header claims."""
        ends = [int(o) + int(c) for o, c in zip(key.dataoffsets, key.databytecounts, strict=False)]
        if ends and max(ends) > size:
            return (
                f"the frame's strips or tiles are said to end at byte {max(ends)}, "
                "beyond the end of the file"
            )
        if key.compression == 1 and key.nbytes > size:
            return "uncompressed, such a frame cannot fit in it"
        if key.compression in _DEFLATE and size * _DEFLATE_MAX_RATIO + 1024 < key.nbytes:
            return "deflate data cannot expand that much"
        return None

    def page_problem(self, page: Any) -> str | None:
        """Why a page's strips or tiles cannot hold a frame of the key frame's size
        (None when they can, as far as their sizes tell)."""
        key = self.series.keyframe
        offsets, counts = page.dataoffsets, page.databytecounts
        if len(offsets) != len(counts):
            return (
                f"its directory lists {len(offsets)} strip or tile offsets but "
                f"{len(counts)} byte counts"
            )
        if page is not key and (page.shape != key.shape or page.dtype != key.dtype):
            return (
                f"its directory describes {page.dtype} pixels of shape {page.shape}, "
                f"not {key.dtype} of {key.shape} as the first page"
            )
        need = math.prod(key.chunked)  # strips or tiles a frame of this shape is cut into
        if len(counts) < need:
            return (
                f"its directory lists {len(counts)} of the {need} strips or tiles of such a frame"
            )
        stored = int(sum(counts))
        whole_bytes = key.bitspersample == 8 * self.dtype.itemsize
        if key.compression == 1 and whole_bytes and stored < key.nbytes:
            return f"the frame's strips or tiles hold {_human(stored)}"
        if key.compression in _DEFLATE and stored * _DEFLATE_MAX_RATIO + 1024 < key.nbytes:
            return (
                f"the frame's strips or tiles hold {_human(stored)} of deflate data, which "
                "cannot expand to that much"
            )
        return None  # strips beyond the end of the file: frame_end finds them (truncated)

    def _load_page(self, p: int) -> tuple[Any, str | None]:
        """``(page, None)``; ``(None, None)`` when its directory was lost with the end of
        the file; ``(None, why)`` when its directory is there but cannot be read."""
        try:
            return self.pages[p], None
        except (IndexError, ValueError, OSError):
            return None, None
        except MemoryError:
            raise
        except Exception as exc:  # tifffile on a damaged directory: anything
            return None, f"its page directory cannot be read ({_exception_words(exc)})"

    def frame_problem(self, i: int) -> str | None:
        """Why the page of frame ``i`` cannot hold it (its strips, read without decoding)."""
        if self.memmap is not None:
            return None
        page, problem = self._load_page(int(self.page_of[i]))
        if page is None:
            return problem  # None for a lost page: frame_end reports it
        return self.page_problem(page)

    def _try_memmap(self) -> np.ndarray | None:
        """The series' pages as one memory map, when tifffile says they lie contiguous
        and uncompressed, and the file holds them all (else they are read page by
        page, which checks each page's strips)."""
        s = self.series
        key = s.keyframe
        if s.dataoffset is None or key.compression != 1:
            return None
        page_size = math.prod(int(n) for n in key.shape)
        if page_size == 0 or key.bitspersample != 8 * self.dtype.itemsize:
            return None
        n_pages = math.prod(int(n) for n in s.shape) // page_size
        offset = int(s.dataoffset)
        end = offset + n_pages * page_size * self.dtype.itemsize
        if offset < 0 or n_pages == 0 or end > self.path.stat().st_size:
            return None  # e.g. truncated: page reading checks each page's size
        try:
            return np.memmap(
                s.parent.filehandle.path,
                dtype=self.dtype.newbyteorder(s.parent.byteorder),
                mode="r",
                offset=offset,
                shape=(n_pages, *key.shape),
            )
        except (ValueError, OSError, OverflowError):
            return None

    def __len__(self) -> int:
        return int(self.page_of.size)

    def frame_end(self, i: int) -> int:
        p = int(self.page_of[i])
        if self.memmap is not None:
            per_page = int(np.prod(self.series.keyframe.shape)) * self.dtype.itemsize
            return int(self.series.dataoffset) + (p + 1) * per_page
        page, problem = self._load_page(p)
        if page is None:
            # a directory lost with the end of the file ends beyond it; one that cannot
            # be read is the frame's problem (frame_problem says it)
            return _MISSING if problem is None else 0
        pairs = zip(page.dataoffsets, page.databytecounts, strict=False)
        ends = [int(o) + int(c) for o, c in pairs]
        return max(ends, default=0)  # offsets and counts that differ: frame_problem

    def _decode(self, pages: np.ndarray) -> np.ndarray:
        """Compressed (or scattered) pages, decoded in parallel threads by tifffile.

        A page that fails to decode raises :class:`_Undecodable` with its position in
        ``pages``: tifffile (zlib, imagecodecs) raises whatever its codec raises,
        from a worker thread, without saying which page, so the pages are decoded
        again one by one to find it.
        """
        with _TiffLog(self.path):
            try:
                return self._decode_pages(pages)
            except MemoryError:
                raise
            except Exception:
                one_by_one = []
                for k, p in enumerate(pages):
                    try:
                        one_by_one.append(self._decode_one(int(p)))
                    except MemoryError:
                        raise
                    except Exception as exc:
                        raise _Undecodable(k, exc, self.codec) from exc
                return np.stack(one_by_one)  # only the threaded read failed

    def _decode_one(self, p: int) -> np.ndarray:
        """Page ``p`` decoded, checked to hold a frame of the key frame's shape."""
        page = self.pages[p]
        if page is None:
            raise ValueError("its page directory is lost")
        arr = page.asarray()
        shape = tuple(self.series.keyframe.shape)
        if arr.shape != shape:
            raise ValueError(f"the page holds an image of shape {arr.shape}, not {shape}")
        return arr

    def _decode_pages(self, pages: np.ndarray) -> np.ndarray:
        shape = (pages.size, *self.series.keyframe.shape)
        if pages.size > 1 and self.series.kind != "recovered":
            block = self.series.parent.asarray(
                key=pages.tolist(), series=self.series, maxworkers=DECODE_THREADS
            )
            if block.shape == shape:
                return block
        return np.stack([self._decode_one(int(p)) for p in pages])

    @property
    def codec(self) -> str:
        """The pages' compression, as people call it."""
        c = self.series.keyframe.compression
        if c in _DEFLATE:
            return "deflate"
        if c == 1:
            return "uncompressed"
        return str(getattr(c, "name", c)).lower()

    def cut(self, n: int) -> None:
        self.page_of = self.page_of[:n]
        self.sample_of = self.sample_of[:n]

    def map_range(self, start: int, stop: int) -> np.ndarray | None:
        """Frames ``start:stop`` as a view of the memory map, when they are whole
        consecutive pages in native byte order (see :func:`map_rows`); else None."""
        if self.memmap is None or self.sample_axis is not None:
            return None
        pages = self.page_of[start:stop]
        if pages.size == 0 or np.any(np.diff(pages) != 1):
            return None
        return map_rows(self.memmap, int(pages[0]), int(pages[-1]) + 1)

    def take(self, idx: np.ndarray) -> np.ndarray:
        pages = self.page_of[idx]
        samples = self.sample_of[idx]
        if self.memmap is not None:
            block = _read_raw(self.memmap, pages)
        else:
            try:
                block = self._decode(pages)
            except _Undecodable as exc:
                exc.frame = int(idx[exc.frame])  # a position in pages: make it a frame
                raise
        if self.sample_axis is not None:
            axis = 1 + self.sample_axis
            block = np.moveaxis(block, axis, 1)[np.arange(pages.size), samples]
        return np.ascontiguousarray(block, dtype=self.dtype.newbyteorder("="))


def _tiff_frame_rate(tif: Any) -> float | None:
    """The frame rate the file's metadata records; None when it records none, or none
    that can be believed (a damaged description: text, zero, negative, infinite)."""
    try:
        rate = _tiff_metadata_rate(tif)
    except MemoryError:
        raise
    except Exception as exc:  # tifffile parses the metadata lazily: it may raise anything
        log.info("%s: the frame rate in its metadata cannot be read (%s)", tif.filename, exc)
        return None
    if rate is None or not math.isfinite(rate) or rate <= 0:
        if rate is not None:
            log.info("%s: the frame rate in its metadata (%r) is ignored", tif.filename, rate)
        return None
    return rate


def _tiff_metadata_rate(tif: Any) -> float | None:
    ij = tif.imagej_metadata or {}
    if ij.get("finterval"):
        return 1.0 / float(ij["finterval"])
    if ij.get("fps"):
        return float(ij["fps"])
    si = getattr(tif, "scanimage_metadata", None)
    if si:
        fd = si.get("FrameData", {})
        for key in ("SI.hRoiManager.scanFrameRate", "SI.hRoiManager.scanVolumeRate"):
            if key in fd:
                return float(fd[key])
    ome = tif.ome_metadata if tif.is_ome else None
    if ome:
        m = re.search(r'TimeIncrement="([0-9.eE+-]+)"', ome)
        unit = re.search(r'TimeIncrementUnit="(\w+)"', ome)
        if m and float(m.group(1)) > 0:
            scale = {"ms": 1e-3, "us": 1e-6, "µs": 1e-6, "min": 60.0, "h": 3600.0}.get(
                unit.group(1) if unit else "s", 1.0
            )
            return 1.0 / (float(m.group(1)) * scale)
    return None


def _ifd_loop(path: Path) -> str | None:
    """Where the chain of page directories (IFDs) loops back on itself, if it does.

    Each directory ends with the offset of the next; a damaged one may point back to
    an earlier directory (or itself). tifffile, listing pages one at a time, then
    follows the loop for ever (up to 2**32 pages, in time and memory), so the chain
    is walked here first: two small reads per page, each directory visited once.
    Anything else odd (an offset beyond the file, a directory cut off) ends the walk
    and is left to tifffile, which reports it.
    """
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 8:
                return None
            version = struct.unpack(order + "H", head[2:4])[0]
            if version == 42:
                count_fmt, entry_size, next_fmt = "H", 12, "I"
                offset = struct.unpack(order + "I", head[4:8])[0]
            elif version == 43 and len(head) == 16:
                count_fmt, entry_size, next_fmt = "Q", 20, "Q"
                offset = struct.unpack(order + "Q", head[8:16])[0]
            else:
                return None
            count_size = struct.calcsize(count_fmt)
            next_size = struct.calcsize(next_fmt)
            size = os.fstat(f.fileno()).st_size
            if version == 42 and size > 2**32:
                return None  # 32-bit offsets cannot reach it: an NDPI-like extension
            seen: dict[int, int] = {}
            while 0 < offset < size:
                if offset in seen:
                    return (
                        f"the directory of page {len(seen) - 1} points back to that of "
                        f"page {seen[offset]}"
                    )
                seen[offset] = len(seen)
                f.seek(offset)
                raw = f.read(count_size)
                if len(raw) < count_size:
                    return None
                count = struct.unpack(order + count_fmt, raw)[0]
                if count > 4096:  # tifffile stops there ("suspicious number of tags")
                    return None
                f.seek(offset + count_size + count * entry_size)
                raw = f.read(next_size)
                if len(raw) < next_size:
                    return None
                offset = struct.unpack(order + next_fmt, raw)[0]
    except OSError:
        return None  # tifffile opens it next, and says what is wrong
    return None


def _is_tiff_signature(path: Path) -> bool:
    """Whether the file starts as a TIFF (or BigTIFF) does: II or MM, then 42 or 43."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def _exception_words(exc: BaseException) -> str:
    """What tifffile (or numpy under it) raised, in one short line: its own message
    for a TiffFileError, else the exception's kind too (a bare ``KeyError: 256`` or
    ``AssertionError`` says nothing alone)."""
    import tifffile

    text = " ".join(str(exc).split())
    if isinstance(exc, (tifffile.TiffFileError, OSError)) and text:
        return text[:200]
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], int):
        code = exc.args[0]  # tifffile looks a tag up by its code
        name = tifffile.TIFF.TAGS.get(code)
        return f"a page lacks tag {code}" + (f" ({name})" if name else "")
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _unreadable_tiff(path: Path, exc: BaseException) -> str:
    """The message for a TIFF that tifffile could not open: not a TIFF at all, or a
    TIFF whose header or page directories are damaged."""
    why = _exception_words(exc)
    if not _is_tiff_signature(path):
        return (
            f"{path}: not a readable TIFF file ({why}); check that the file is complete "
            "and really a TIFF"
        )
    return (
        f"{path}: the TIFF file is damaged ({why}): its header or page directories "
        "are inconsistent; re-copy it, or export it again from the software that made it"
    )
