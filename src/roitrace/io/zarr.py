"""Zarr movies: one array of a Zarr store (format 3, or format 2 as zarr-python 3
also reads it), or the full-resolution level of an OME-Zarr image, read lazily chunk
by chunk (only the chunks holding the frames asked for are read).

What is opened
--------------
* A store that is an array: that array.
* A group that is an OME-Zarr image (NGFF 0.4 on Zarr format 2: ``multiscales`` in
  the group's attributes; 0.5 on format 3: under its ``ome`` attribute): level 0,
  ``multiscales[0].datasets[0].path``, its axes from ``multiscales[0].axes``.
* Any other group: the one array of 3 or more dimensions in it (or the one OME-Zarr
  image in it, e.g. series ``0`` of a bioformats2raw store); with several, name one
  with ``dataset=`` or in the path, ``"store.zarr:/group/array"``
  (:func:`roitrace._paths.split_dataset_path`). ``dataset=`` may also name another
  level of an OME-Zarr image (``dataset="1"``).

Axes
----
``axes=`` (letters T, Y, X, C for a channel, Z for planes) wins; else an OME-Zarr
image's axes (the one of type ``"time"`` or named ``t`` is time, type
``"channel"``/name ``c`` the channel axis, ``z``/``y``/``x`` by name); else the
array's dimension names (format 3 ``dimension_names``, format 2 xarray's
``_ARRAY_DIMENSIONS``) when they name T, Y and X (``t``/``time``/``frame``...);
else T, Y, X. A channel axis of size 1 is dropped; a larger one needs ``channel=``.
A Z axis of size 1 is dropped; a larger one is flattened into time (each time
point's planes in turn), with a warning, as the TIFF reader does.

Frame rate
----------
``frame_rate=`` wins; else, for OME-Zarr, the time axis's scale (level 0's
``coordinateTransformations`` scale, times the multiscale's own when it has one) in
the time axis's unit (``second``, ``millisecond``, ``microsecond``, ``nanosecond``,
``minute``, ``hour``; none given: not known): ``1 / (scale in seconds)``; else a
``frame_rate``, ``fs``, ``fps``, ``frameRate`` or ``rate`` attribute of the array or
of its group, as for HDF5.

Safety
------
Metadata is checked before anything is allocated: a frame must fit in memory, and
a chunk (decoded whole to read any part of it) must fit in memory and be at most
1 GiB (:data:`MAX_CHUNK_BYTES`); a sharded array's index too. A chunk that cannot be
decoded is a :class:`~roitrace.errors.MovieFormatError` naming the store and its
frames. Missing chunks read as the array's fill value, as Zarr defines them.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import _memory
from .._memory import human_bytes as _human
from .._optional import require
from .._paths import ZARR_MARKERS
from .._warnings import warn_user
from ..errors import MovieFormatError, ParameterError, RoitraceError
from ._base import MovieFormat, suffix_of
from ._movie import Movie, _check_channel, check_frame_fits
from .hdf5 import _AXIS_LABELS

__all__ = ["MAX_CHUNK_BYTES", "ZARR_MARKERS", "ZarrMovie", "ZarrMovieFormat"]

log = logging.getLogger(__name__)

#: The largest chunk (decoded) roitrace reads: a chunk is decoded whole to read any
#: frame of it, and Zarr decodes several at once; a movie chunked sensibly for a
#: cluster is tens of MiB.
MAX_CHUNK_BYTES = 1024**3

#: Seconds per unit of an OME-Zarr time axis (UDUNITS-2 names, as NGFF asks, and
#: their usual symbols).
_SECONDS = {
    "second": 1.0, "s": 1.0, "sec": 1.0, "seconds": 1.0,
    "millisecond": 1e-3, "ms": 1e-3, "milliseconds": 1e-3,
    "microsecond": 1e-6, "us": 1e-6, "µs": 1e-6, "microseconds": 1e-6,
    "nanosecond": 1e-9, "ns": 1e-9, "nanoseconds": 1e-9,
    "minute": 60.0, "min": 60.0, "minutes": 60.0,
    "hour": 3600.0, "h": 3600.0, "hours": 3600.0,
}  # fmt: skip

#: Dimension names that name an axis (HDF5's labels, and planes).
_NAMES = {**_AXIS_LABELS, "z": "Z", "plane": "Z", "planes": "Z", "depth": "Z"}

#: Attributes that may hold the frame rate of a plain array (as for HDF5).
_RATE_KEYS = ("frame_rate", "fs", "fps", "frameRate", "rate")


class ZarrMovieFormat(MovieFormat):
    """Movies as a Zarr array or OME-Zarr image (see :mod:`roitrace.io.zarr`).

    Examples
    --------
    >>> import numpy as np, tempfile, os, zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "movie.zarr")
    >>> z = zarr.create_array(path, shape=(6, 4, 5), chunks=(2, 4, 5), dtype="uint16")
    >>> z[:] = np.arange(120).reshape(6, 4, 5)
    >>> fmt = ZarrMovieFormat()
    >>> fmt.can_open(path)
    True
    >>> movie = fmt.read(path)
    >>> movie.shape, movie.frame_chunk, int(movie[5][3, 4])
    ((6, 4, 5), 2, 119)
    """

    name = "zarr"
    title = "Zarr"
    suffixes = (".zarr",)
    folder = True
    # a core dependency; named so that a broken install still gets the pip command
    requires = ("zarr", "zarr", None)
    read_options = ("dataset", "axes", "channel", "frame_rate")

    def can_open(self, path: str | os.PathLike) -> bool:
        """A folder (or path) named ``*.zarr``, or a folder holding Zarr metadata."""
        p = Path(path)
        if suffix_of(p) == ".zarr":
            return True
        return p.is_dir() and any((p / m).is_file() for m in ZARR_MARKERS)

    def _read(
        self,
        path: str | os.PathLike,
        *,
        dataset: str | None = None,
        axes: str | None = None,
        channel: int | None = None,
        frame_rate: float | None = None,
    ) -> Movie:
        return ZarrMovie(Path(path), dataset, axes, channel, frame_rate)


class ZarrMovie(Movie):
    """A movie stored as a Zarr array (or an OME-Zarr image's level), any axis order."""

    def __init__(
        self,
        path: Path,
        dataset: str | None,
        axes: str | None,
        channel: int | None,
        frame_rate: float | None,
    ) -> None:
        zarr = require("zarr", f"reading {path}")
        self.path = path
        if not path.is_dir():
            raise MovieFormatError(
                f"{path} is not a Zarr store: a store is a folder holding zarr.json (or "
                ".zarray/.zgroup); give the store's folder"
            )
        try:
            store = zarr.storage.LocalStore(str(path), read_only=True)
            root = zarr.open(store=store, mode="r")
        except Exception as exc:  # no metadata, or metadata zarr cannot parse
            raise MovieFormatError(
                f"{path}: not a readable Zarr store ({_one_line(exc)}); a store is a folder "
                "holding zarr.json (Zarr format 3) or .zarray/.zgroup (format 2)"
            ) from exc
        self._zarr = zarr
        arr, ome = self._locate(root, dataset)
        self._array = arr
        self._name = "/" + arr.path if arr.path else None
        self._init_axes(arr, ome, axes, channel)
        self.frame_rate = frame_rate if frame_rate is not None else self._file_rate(root, ome)
        self._check_fits()
        self._say_missing_chunks()

    def _say_missing_chunks(self) -> None:
        """Zarr reads a chunk that is not in the store as the fill value: right for a
        chunk that held nothing else (Zarr leaves those unwritten), wrong for one that
        was lost. A movie's chunks all hold pixels, so missing ones are said."""
        try:
            stored, total = self._array.nchunks_initialized, self._array.nchunks
        except Exception:  # another zarr version: nothing said rather than a wrong count
            return
        if stored < total:
            warn_user(
                f"{self.path}: {total - stored} of {total} chunks are missing from the store; "
                f"zarr reads them as the fill value ({self._array.fill_value}): if they were "
                "lost (an incomplete copy), the frames there are not the recording's"
            )

    # -- which array ---------------------------------------------------------------------
    def _locate(self, root: Any, dataset: str | None) -> tuple[Any, _Ome | None]:
        """The array holding the movie, and the OME-Zarr metadata that describes it."""
        zarr = self._zarr
        node = root
        key = dataset.strip("/") if dataset is not None else ""
        if key:
            if isinstance(root, zarr.Array):
                raise MovieFormatError(
                    f"{self.path} is a single array, not a group: leave dataset= out"
                )
            try:
                node = root[key]
            except (KeyError, ValueError) as exc:  # absent, or '..' in it
                raise MovieFormatError(
                    f"{self.path}: no array {dataset!r}; it holds "
                    f"{_listing(self._candidates(root)) or 'none'}"
                ) from exc
        if isinstance(node, zarr.Array):
            return node, self._ome_of_level(root, node)
        ome = _ome(node, self.path)
        if ome is not None:
            return self._level(node, ome.paths[0]), ome
        found = self._candidates(node)
        if len(found) != 1:
            raise MovieFormatError(
                f"{self.path}: say which array holds the movie with dataset=... "
                f"(or STORE.zarr:/path); candidates: "
                f"{_listing(found) or 'none with 3 or more dimensions'}"
            )
        inner = node[found[0].strip("/")]
        if isinstance(inner, zarr.Array):
            return inner, None
        ome = _ome(inner, self.path)
        assert ome is not None  # a candidate group is an OME-Zarr image
        return self._level(inner, ome.paths[0]), ome

    def _candidates(self, group: Any) -> list[str]:
        """Arrays of 3 or more dimensions under ``group``, and its OME-Zarr images (not
        the arrays of their levels)."""
        zarr = self._zarr
        images: list[str] = []
        arrays: list[tuple[str, Any]] = []
        try:
            members = sorted(group.members(max_depth=None), key=lambda m: m[0])
        except Exception as exc:
            raise MovieFormatError(
                f"{self.path}: its groups could not be listed ({_one_line(exc)})"
            ) from exc
        for name, node in members:
            if isinstance(node, zarr.Array):
                if node.ndim >= 3:
                    arrays.append((name, node))
            elif _ome(node, self.path) is not None:
                images.append(name)
        inside = [a for a, _ in arrays if not any(a.startswith(i + "/") for i in images)]
        return ["/" + n for n in sorted(images + inside)]

    def _level(self, group: Any, key: str) -> Any:
        try:
            node = group[key]
        except (KeyError, ValueError) as exc:
            raise MovieFormatError(
                f"{self.path}: the OME-Zarr image names its level {key!r}, which is not in "
                "the store; the store is incomplete: re-copy it"
            ) from exc
        if not isinstance(node, self._zarr.Array):
            raise MovieFormatError(
                f"{self.path}: the OME-Zarr level {key!r} is a group, not an array"
            )
        return node

    def _ome_of_level(self, root: Any, arr: Any) -> _Ome | None:
        """The OME-Zarr metadata of the image whose level ``arr`` is (when named with
        ``dataset=``), so that its axes are known."""
        parent, _, name = arr.path.rpartition("/")
        if not name:
            return None
        try:
            group = root[parent] if parent else root
        except (KeyError, ValueError):
            return None
        if not isinstance(group, self._zarr.Group):
            return None
        ome = _ome(group, self.path)
        if ome is None or name not in ome.paths:
            return None
        return ome.at_level(ome.paths.index(name))

    # -- axes ----------------------------------------------------------------------------
    def _init_axes(
        self, arr: Any, ome: _Ome | None, axes: str | None, channel: int | None
    ) -> None:
        shape = tuple(int(n) for n in arr.shape)
        where = f"{self.path}{':' + self._name if self._name else ''}"
        if axes is not None:
            letters = _check_letters(axes, shape)
        elif ome is not None:
            letters = ome.letters(where)
            if len(letters) != len(shape):
                raise MovieFormatError(
                    f"{where}: the OME-Zarr metadata names {len(letters)} axes but the array "
                    f"has {len(shape)} dimensions {shape}; the store is damaged, or give axes="
                )
        else:
            letters = _named_axes(arr) or _default_letters(shape)
        self._axes = letters
        sizes = dict(zip(letters, shape, strict=True))
        self._fixed: dict[str, int] = {}
        if "C" in sizes:
            if channel is None and sizes["C"] > 1:
                raise ParameterError(
                    f"{where} has a channel axis of size {sizes['C']}: pass channel= to choose one"
                )
            channel = 0 if channel is None else channel
            _check_channel(channel, sizes["C"], where)
            self._fixed["C"] = channel
        elif channel is not None:
            raise ParameterError(
                f"channel={channel} was given but {where} has no channel axis "
                f"(axes {letters}): leave channel out"
            )
        self._nz = sizes.get("Z", 1)
        if "Z" in sizes and self._nz == 1:
            self._fixed["Z"] = 0
        self._t_axis = letters.index("T")
        n = sizes["T"] * self._nz
        self.shape = (n, sizes["Y"], sizes["X"])
        self.dtype = np.dtype(arr.dtype)
        if self.dtype.kind not in "biuf":
            raise MovieFormatError(
                f"{where} holds {self.dtype} values, not numbers: a movie's pixels are "
                "integers or floats"
            )
        if self._nz > 1:
            warn_user(
                f"{self.path.name}: axis Z of the Zarr array ({self._nz} planes) was "
                f"flattened into time ({n} frames: each time point's planes in turn)"
            )

    # -- metadata checks -----------------------------------------------------------------
    def _check_fits(self) -> None:
        """A Zarr array's shape and chunks cost nothing to declare: refuse frames, and
        chunks (decoded whole to read any frame of them), that cannot fit in memory,
        before anything is read."""
        where = f"{self.path}{' array ' + repr(self._name) if self._name else ''}"
        y, x = self.frame_shape
        check_frame_fits(where, f"frames of {y} x {x} {self.dtype}", self.frame_nbytes)
        arr = self._array
        chunks = tuple(int(c) for c in arr.chunks)
        chunk_bytes = math.prod(chunks) * self.dtype.itemsize
        avail = _memory.available_memory()
        limit = MAX_CHUNK_BYTES if avail is None else min(MAX_CHUNK_BYTES, avail)
        if chunk_bytes > limit:
            why = (
                f"more than the {_human(avail)} of memory available"
                if avail is not None and avail < MAX_CHUNK_BYTES
                else f"more than the {_human(MAX_CHUNK_BYTES)} roitrace reads at once"
            )
            raise MovieFormatError(
                f"{where} is stored in chunks of {' x '.join(map(str, chunks))} "
                f"({_human(chunk_bytes)} each), {why}, and a chunk is decoded whole to read "
                "any frame of it; re-save the array with smaller chunks (e.g. 100 frames "
                "per chunk)"
            )
        shards = getattr(arr, "shards", None)
        if shards is not None:
            # a shard's index holds 16 bytes per chunk in it, read whole
            index = math.prod(-(-int(s) // c) for s, c in zip(shards, chunks, strict=True)) * 16
            if index > limit:
                raise MovieFormatError(
                    f"{where} is stored in shards of {' x '.join(map(str, shards))} chunks "
                    f"whose index takes {_human(index)}, more than roitrace reads at once; "
                    "re-save the array with larger chunks or smaller shards"
                )

    @property
    def frame_chunk(self) -> int:
        """Frames stored together: a chunk's length in time (times the planes, when a Z
        axis is flattened into time). For a sharded array, the chunk inside a shard:
        it is read on its own."""
        return int(self._array.chunks[self._t_axis]) * self._nz

    # -- frame rate ----------------------------------------------------------------------
    def _file_rate(self, root: Any, ome: _Ome | None) -> float | None:
        if ome is not None:
            return ome.frame_rate(self.path)
        owners = [self._array]
        parent = self._array.path.rpartition("/")[0]
        if self._array.path:
            try:
                owners.append(root[parent] if parent else root)
            except (KeyError, ValueError):
                pass
        for obj in owners:
            attrs = _attrs(obj)
            for key in _RATE_KEYS:
                if key in attrs:
                    rate = _positive(attrs[key])
                    if rate is not None:
                        return rate
        return None

    # -- reading -------------------------------------------------------------------------
    def _read_range(self, start: int, stop: int) -> np.ndarray:
        if start == stop:
            return np.empty((0, *self.frame_shape), self.dtype)
        nz = self._nz
        t0, t1 = start // nz, (stop - 1) // nz + 1
        block = self._read_times(slice(t0, t1))
        first = start - t0 * nz
        if first == 0 and block.shape[0] == stop - start:
            return block
        return np.ascontiguousarray(block[first : first + stop - start])

    def _take(self, idx: np.ndarray) -> np.ndarray:
        nz = self._nz
        times = idx // nz
        uniq = np.unique(times)
        if uniq.size == uniq[-1] - uniq[0] + 1:
            block = self._read_times(slice(int(uniq[0]), int(uniq[-1]) + 1))
        else:
            block = self._read_times(uniq)
        rows = np.searchsorted(uniq, times) * nz + idx % nz
        if rows.size == block.shape[0] and np.array_equal(rows, np.arange(rows.size)):
            return block
        return block[rows]  # repeats or another order: a copy

    def _read_times(self, times: slice | np.ndarray) -> np.ndarray:
        """The frames of the time points ``times`` (stored T index), as (n, Y, X)."""
        sel: list[Any] = []
        for a in self._axes:
            sel.append(times if a == "T" else self._fixed.get(a, slice(None)))
        try:
            if isinstance(times, slice):
                block = self._array[tuple(sel)]
            else:
                block = self._array.get_orthogonal_selection(tuple(sel))
        except RoitraceError:
            raise
        except Exception as exc:  # a chunk zarr cannot read or decode
            raise self._damaged(times, exc) from exc
        kept = [a for a in self._axes if a not in self._fixed]
        block = np.transpose(np.asarray(block), [kept.index(a) for a in "TZYX" if a in kept])
        # a copy only when the stored axes are not (T, Z,) Y, X: the read block is new
        return np.ascontiguousarray(block).reshape(-1, *self.frame_shape)

    def _damaged(self, times: slice | np.ndarray, exc: Exception) -> MovieFormatError:
        """Name the first chunk (along time) of ``times`` that cannot be read, by
        reading one time point of each: the frames it holds and how to avoid them."""
        ts = np.arange(times.start, times.stop) if isinstance(times, slice) else times
        ct = int(self._array.chunks[self._t_axis])
        n_t = self.n_frames // self._nz
        bad, error = None, exc
        for k in np.unique(ts // ct):
            sel = [
                int(ts[ts // ct == k][0]) if a == "T" else self._fixed.get(a, slice(None))
                for a in self._axes
            ]
            try:
                self._array[tuple(sel)]
            except Exception as inner:
                bad, error = int(k), inner
                break
        nz = self._nz
        if bad is None:  # every chunk read alone: name the whole range
            f0, f1 = int(ts.min()) * nz, (int(ts.max()) + 1) * nz
            what = f"frames {f0}-{f1 - 1} of {self.path} could not be read"
        else:
            f0, f1 = bad * ct * nz, min((bad + 1) * ct, n_t) * nz
            what = (
                f"frames {f0}-{f1 - 1} of {self.path} (chunk {bad} along time"
                f"{' of ' + repr(self._name) if self._name else ''}) could not be read"
            )
        msg = f"{what} ({type(error).__name__}: {_one_line(error)}); the store is damaged there"
        if f0 == 0:
            return MovieFormatError(f"{msg}: re-copy it")
        return MovieFormatError(
            f"{msg}: re-copy it, or use the {f0} frames before it with frames=(0, {f0})"
        )


# -- OME-Zarr metadata ---------------------------------------------------------------------
class _Ome:
    """The parts of an OME-Zarr image's ``multiscales[0]`` roitrace uses, checked."""

    def __init__(self, ms: dict, paths: list[str], axes: list[dict], level: int = 0) -> None:
        self._ms = ms
        self.paths = paths
        self.axes = axes
        self.level = level

    def at_level(self, level: int) -> _Ome:
        return _Ome(self._ms, self.paths, self.axes, level)

    def letters(self, where: str) -> str:
        """The axes as letters T, C, Z, Y, X."""
        out = []
        for ax in self.axes:
            name = str(ax.get("name", "")).strip().lower()
            kind = str(ax.get("type", "")).strip().lower()
            if kind == "time" or name == "t":
                out.append("T")
            elif kind == "channel" or name == "c":
                out.append("C")
            else:  # space axes by name: NGFF calls them z, y, x
                out.append({"z": "Z", "y": "Y", "x": "X"}.get(name, "?"))
        letters = "".join(out)
        names = ", ".join(str(ax.get("name")) for ax in self.axes)
        if "T" not in letters:
            raise MovieFormatError(
                f"{where}: the OME-Zarr image has no time axis (axes {names}): it is an "
                "image, not a movie; if one axis holds time, give axes= (e.g. 'TYX')"
            )
        if (
            "?" in letters
            or any(letters.count(a) != 1 for a in "TYX")
            or len(set(letters)) != len(letters)
        ):
            raise MovieFormatError(
                f"{where}: the OME-Zarr axes {names} are not t, c, z, y, x; give axes= "
                "(letters T, Y, X, C for a channel, Z for planes) to say which is which"
            )
        return letters

    def frame_rate(self, path: Path) -> float | None:
        """Frames per second from the time axis's scale and unit; None when unknown."""
        t = next(
            (
                i
                for i, ax in enumerate(self.axes)
                if str(ax.get("type", "")).lower() == "time"
                or str(ax.get("name", "")).lower() == "t"
            ),
            None,
        )
        if t is None:
            return None
        unit = str(self.axes[t].get("unit", "")).strip().lower()
        if unit not in _SECONDS:
            if unit:
                log.info("%s: time unit %r unknown; frame rate not read", path, unit)
            return None
        datasets = self._ms.get("datasets", [])
        step = 1.0
        for owner in (datasets[self.level], self._ms):
            scale = _scale(owner.get("coordinateTransformations"))
            if scale is not None:
                if len(scale) != len(self.axes):
                    return None
                step *= scale[t]
        return _positive(1.0 / (step * _SECONDS[unit])) if step > 0 else None


def _ome(group: Any, path: Path) -> _Ome | None:
    """The OME-Zarr multiscales metadata of ``group``, or None when it is not an image;
    a :class:`~roitrace.errors.MovieFormatError` when it is malformed."""
    attrs = _attrs(group)
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        ms = ome["multiscales"]
    elif "multiscales" in attrs:
        ms = attrs["multiscales"]
    else:
        return None
    where = f"{path}{':/' + group.path if group.path else ''}"
    try:
        first = ms[0]
        datasets = first["datasets"]
        paths = [str(d["path"]) for d in datasets]
        raw_axes = first["axes"]
        # NGFF 0.3 listed axes as names; 0.4 and later as objects
        axes = [a if isinstance(a, dict) else {"name": str(a)} for a in raw_axes]
        if not paths or not isinstance(first, dict):
            raise ValueError("no datasets")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MovieFormatError(
            f"{where}: its OME-Zarr multiscales metadata is malformed ({_one_line(exc)}); "
            "the store is damaged, or name the array with dataset="
        ) from exc
    return _Ome(first, paths, axes)


def _scale(transforms: Any) -> list[float] | None:
    if not isinstance(transforms, list):
        return None
    for tr in transforms:
        if isinstance(tr, dict) and tr.get("type") == "scale":
            try:
                return [float(v) for v in tr["scale"]]
            except (KeyError, TypeError, ValueError):
                return None
    return None


# -- helpers -------------------------------------------------------------------------------
def _attrs(node: Any) -> dict:
    try:
        attrs = node.attrs.asdict()
    except Exception:
        return {}
    return attrs if isinstance(attrs, dict) else {}


def _positive(value: Any) -> float | None:
    """A frame rate as a file records it, when it is one (a positive finite number)."""
    try:
        rate = float(np.asarray(value, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def _named_axes(arr: Any) -> str | None:
    """The axis order the array's dimension names say (format 3 ``dimension_names``,
    format 2 ``_ARRAY_DIMENSIONS``), when every one names an axis roitrace knows and
    T, Y and X are all there; else None (the default order)."""
    names = getattr(arr.metadata, "dimension_names", None)
    if names is None:
        names = _attrs(arr).get("_ARRAY_DIMENSIONS")
    if not isinstance(names, (list, tuple)) or len(names) != arr.ndim:
        return None
    letters = "".join(_NAMES.get(str(n).strip().lower(), "?") for n in names)
    if "?" in letters or any(letters.count(a) != 1 for a in "TYX"):
        return None
    if letters.count("C") > 1 or letters.count("Z") > 1:
        return None
    return letters


def _default_letters(shape: tuple[int, ...]) -> str:
    if len(shape) != 3:
        raise MovieFormatError(
            f"the array has {len(shape)} dimensions {shape} and no dimension names roitrace "
            "knows; give axes= (letters T, Y, X, C for a channel, Z for planes) to say "
            "which is which"
        )
    return "TYX"


def _check_letters(axes: str, shape: tuple[int, ...]) -> str:
    letters = axes.upper()
    extra = sorted(letters.replace("T", "", 1).replace("Y", "", 1).replace("X", "", 1))
    if (
        len(letters) != len(shape)
        or any(letters.count(a) != 1 for a in "TYX")
        or extra
        not in (
            [],
            ["C"],
            ["Z"],
            ["C", "Z"],
        )
    ):
        raise ParameterError(
            f"axes={axes!r} does not describe data of shape {shape}: use one letter per "
            "dimension, each of T, Y, X once (and C for a channel axis, Z for planes), "
            "e.g. 'YXT'"
        )
    return letters


def _listing(names: list[str], most: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
