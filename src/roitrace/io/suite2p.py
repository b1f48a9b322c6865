"""suite2p ``plane0`` folders in and out.

suite2p saves the results of one imaging plane in ``suite2p/plane0/``:

- ``stat.npy``: one dict per ROI (``ypix``, ``xpix``, ``lam``, ``med``, ``npix``,
  ``overlap``, ``radius``, ``neuropil_mask``...), a pickled object array;
- ``iscell.npy``: (n, 2) floats, column 0 is 1.0 for cells, column 1 the
  classifier's probability;
- ``F.npy``, ``Fneu.npy``, ``spks.npy``: (n_rois, n_frames) traces;
- ``ops.npy``: the options and image size (``Ly``, ``Lx``, ``fs``, ``nframes``...),
  a pickled dict (suite2p 1.0 saves ``db.npy`` with the same keys instead).

:func:`read_suite2p` turns the ROIs into a :class:`~roitrace.rois.RoiSet`;
:func:`write_suite2p` writes an :func:`roitrace.extract` result in that layout for
code that reads suite2p outputs, and :func:`read_suite2p_result` reads its traces
back. :class:`Suite2pRoisFormat` and :class:`Suite2pResultFormat` are the two
entries of the io registries (ROI sets: read only; results: read and write).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_folder, read_folder
from .._version import __version__
from ..errors import (
    InputFormatError,
    ParameterError,
    ResultFormatError,
    RoiFormatError,
    RoiNotFoundError,
    ShapeMismatchError,
)
from ..result import (
    DECONVOLUTION_NOISE,
    FRAME,
    FRAME_RATE,
    FRAME_SHAPE,
    NEUROPIL_CONVERGED,
    NEUROPIL_FACTOR,
    NOISE,
    NPIX,
    PARAMETERS,
    ROI,
    ROITRACE_VERSION,
    SOURCE,
    TIME,
    TRACE_VARS,
    VAR_CALCIUM,
    VAR_DFF,
    VAR_F,
    VAR_F0,
    VAR_F_CORRECTED,
    VAR_FNEU,
    VAR_SPIKES,
    check_result,
    result_frame_rate,
    result_rois,
)
from ..rois import Roi, RoiSet
from ._base import Format, RoiFormat

log = logging.getLogger(__name__)

__all__ = [
    "Suite2pResultFormat",
    "Suite2pRoisFormat",
    "read_suite2p",
    "read_suite2p_result",
    "write_suite2p",
]

#: Pickled files holding the image size and frame rate, in order of preference.
_OPS_FILES = ("ops.npy", "db.npy")
#: (roi, time) traces a plane folder may hold.
TRACE_FILES = (
    "F.npy",
    "Fneu.npy",
    "spks.npy",
    "F_corrected.npy",
    "dff.npy",
    "F0.npy",
    "calcium.npy",
)
#: The files roitrace writes in a plane folder (with ``extra=("F_corrected", "dff", "F0",
#: "calcium")``):
#: one run's set. A new run removes those it does not write, so that an earlier run's
#: files never lie beside its own.
WRITTEN = ("F.npy", "Fneu.npy", "spks.npy", "iscell.npy", "stat.npy", "ops.npy")
OWNED = (*WRITTEN, "F_corrected.npy", "dff.npy", "F0.npy", "calcium.npy")
#: Per-ROI values of a result that ``ops.npy`` records, by their result names.
OPS_PER_ROI = (NEUROPIL_FACTOR, NEUROPIL_CONVERGED, NOISE, DECONVOLUTION_NOISE)


# -- the io registries' entries ---------------------------------------------------------
class Suite2pRoisFormat(RoiFormat):
    """The ROIs of a suite2p plane folder (or its ``stat.npy``): :func:`read_suite2p`.
    Read only: write a result with :func:`roitrace.save` to make such a folder."""

    name = "suite2p"
    title = "suite2p plane"
    folder = True
    read_options = ("shape", "allow_pickle", "cells_only")

    def can_open(self, path: str | os.PathLike) -> bool:
        p = Path(path)
        return p.is_dir() or p.name == "stat.npy"

    def _read(
        self,
        path: str | os.PathLike,
        *,
        shape: tuple[int, int] | None = None,
        allow_pickle: bool = False,
        cells_only: bool = True,
    ) -> RoiSet:
        return read_suite2p(path, allow_pickle=allow_pickle, cells_only=cells_only, shape=shape)


# -- reading -----------------------------------------------------------------------------
def read_suite2p(
    folder: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    cells_only: bool = True,
    shape: tuple[int, int] | None = None,
) -> RoiSet:
    """Read the ROIs of a suite2p plane folder.

    Parameters
    ----------
    folder : str or path-like
        The ``suite2p/plane0`` folder; also its parent ``suite2p/`` folder when that
        holds exactly one ``plane*`` folder, or the path of ``stat.npy`` itself.
    allow_pickle : bool
        ``stat.npy`` and ``ops.npy`` are Python pickles, which can run arbitrary
        code when loaded. roitrace loads them only when this is True (CLI:
        ``--trust-pickle``); pass it only for files you trust.
    cells_only : bool
        Keep only the ROIs suite2p classed as cells (``iscell.npy`` column 0 is 1).
        False keeps every ROI (and does not need ``iscell.npy``).
    shape : (int, int), optional
        The movie's frame shape ``(Y, X)``; needed only when the folder has no
        ``ops.npy`` (or ``db.npy``) giving suite2p's ``Ly`` and ``Lx``.

    Returns
    -------
    rois : RoiSet
        One :class:`~roitrace.rois.Roi` per kept row of ``stat.npy``:
        ``y = ypix``, ``x = xpix``, ``weights = lam``, ``name = "suite2p {i}"`` and
        ``id = i + 1``, where ``i`` is the row in ``stat.npy`` (and in ``F.npy``).
        ``meta`` holds ``suite2p_index`` (those rows, an int array),
        ``suite2p_probability`` (the classifier's probability, when
        ``iscell.npy`` is there), ``frame_rate`` (ops ``fs``, when known) and
        ``folder``.

    Raises
    ------
    ParameterError
        ``allow_pickle`` is False; the parent folder holds several planes.
    RoiNotFoundError
        The folder, ``stat.npy``, or (with ``cells_only``) ``iscell.npy`` is missing.
    RoiFormatError
        A file is unreadable, or a ``stat.npy`` entry lacks integer ``ypix``/``xpix``.
    ShapeMismatchError
        ROI pixels fall outside the frame, or ``shape`` disagrees with ``ops.npy``.

    Notes
    -----
    Pixels suite2p marks in ``overlap`` are kept. suite2p itself leaves them out
    when it computes ``F`` (its default ``allow_overlap=False``), so traces that
    roitrace extracts from these ROIs differ slightly where cells overlap.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from roitrace import extract
    >>> from roitrace.rois import RoiSet
    >>> labels = np.zeros((12, 12), int); labels[2:5, 2:5] = 1; labels[7:10, 6:9] = 2
    >>> movie = np.random.default_rng(0).poisson(100, (20, 12, 12)).astype(np.uint16)
    >>> ds = extract(movie, labels, neuropil={"gap": 1, "width": 1})
    >>> folder = write_suite2p(ds, RoiSet.from_labels(labels), tempfile.mkdtemp())
    >>> rois = read_suite2p(folder, allow_pickle=True)
    >>> rois.ids, rois.frame_shape, [r.npix for r in rois]
    ([1, 2], (12, 12), [9, 9])
    >>> round(float(rois[0].weights.sum()), 6)
    1.0
    """
    plane, stat_path = _find_plane(Path(folder))
    if not allow_pickle:
        raise ParameterError(
            f"{plane}: suite2p's stat.npy and ops.npy are Python pickles, which can run "
            "arbitrary code when loaded, so roitrace loads them only when asked with "
            "allow_pickle=True; do so only for files you trust"
        )
    iscell_path = plane / "iscell.npy"

    def read() -> tuple[tuple[np.ndarray, np.ndarray | None], dict[str, tuple[int, ...]]]:
        stat = _load_stat(stat_path)
        iscell = _read_iscell(iscell_path) if iscell_path.is_file() else None
        shapes = {"stat.npy": stat.shape}
        if iscell is not None:
            shapes["iscell.npy"] = iscell.shape
        return (stat, iscell), shapes

    stat, iscell = read_consistently(plane, read)
    n = len(stat)
    frame_shape, frame_rate = _frame_info(plane, shape)

    keep = np.arange(n)
    probability = None
    if iscell is not None:
        iscell = _check_iscell(iscell, iscell_path, n)
        probability = iscell[:, 1] if iscell.shape[1] > 1 else None
        if cells_only:
            keep = np.flatnonzero(iscell[:, 0] > 0.5)
    elif cells_only:
        raise RoiNotFoundError(
            f"{iscell_path} is missing: roitrace needs it to keep only the ROIs suite2p "
            "classed as cells; pass cells_only=False to keep all ROIs"
        )

    rois = [_roi(stat[i], int(i), stat_path) for i in keep]
    meta: dict[str, Any] = {"suite2p_index": keep.astype(np.int64), "folder": str(plane)}
    if probability is not None:
        meta["suite2p_probability"] = probability[keep].astype(np.float64)
    if frame_rate:
        meta["frame_rate"] = frame_rate
    return RoiSet(rois, frame_shape, source=str(stat_path), meta=meta)


def _find_plane(path: Path) -> tuple[Path, Path]:
    """The plane folder and its stat.npy, from the plane folder, its parent or stat.npy."""
    if not path.exists():
        raise RoiNotFoundError(
            f"{path}: no such file or folder; give suite2p's plane folder "
            "(suite2p/plane0) or its stat.npy"
        )
    if path.is_file():
        if path.name != "stat.npy":
            raise ParameterError(
                f"{path}: not a suite2p stat.npy; give suite2p's plane folder "
                "(suite2p/plane0) or its stat.npy"
            )
        return path.parent, path
    if (path / "stat.npy").is_file():
        return path, path / "stat.npy"
    planes = sorted(p for p in path.glob("plane*") if p.is_dir())
    if len(planes) == 1 and (planes[0] / "stat.npy").is_file():
        return planes[0], planes[0] / "stat.npy"
    if len(planes) > 1:
        raise ParameterError(
            f"{path} holds {len(planes)} suite2p planes ({', '.join(p.name for p in planes)}): "
            f"give one plane folder, e.g. {planes[0]}"
        )
    where = planes[0] if planes else path
    contents = sorted(p.name + ("/" if p.is_dir() else "") for p in where.iterdir())
    listing = ", ".join(contents[:20]) + (" ..." if len(contents) > 20 else "")
    raise RoiNotFoundError(
        f"no stat.npy in {where} (it holds: {listing or 'nothing'}); give the suite2p "
        "plane folder that holds stat.npy, e.g. suite2p/plane0"
    )


def _load_pickled(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=True)
    except Exception as exc:  # corrupt, truncated, not a .npy file
        raise RoiFormatError(
            f"{path} could not be read as a NumPy .npy file ({type(exc).__name__}: {exc}); "
            "is it a complete suite2p output?"
        ) from exc


def _load_stat(path: Path) -> np.ndarray:
    stat = _load_pickled(path)
    if not isinstance(stat, np.ndarray) or stat.ndim != 1:
        raise RoiFormatError(
            f"{path} holds {type(stat).__name__} {getattr(stat, 'shape', '')}, not suite2p's "
            "1-D array of one dict per ROI; is it a suite2p stat.npy?"
        )
    return stat


def _frame_info(plane: Path, shape: Any) -> tuple[tuple[int, int], float]:
    """The frame shape (from ops.npy / db.npy, else ``shape``) and frame rate (0 if unknown)."""
    ops: dict[str, Any] = {}
    ops_path = None
    for name in _OPS_FILES:
        p = plane / name
        if p.is_file():
            obj = _load_pickled(p)
            ops = obj.item() if isinstance(obj, np.ndarray) and obj.ndim == 0 else obj
            if not isinstance(ops, dict):
                raise RoiFormatError(
                    f"{p} holds {type(ops).__name__}, not suite2p's dict of options"
                )
            ops_path = p
            break
    given = _check_shape(shape) if shape is not None else None
    if "Ly" in ops and "Lx" in ops:
        frame_shape = (int(ops["Ly"]), int(ops["Lx"]))
        if given is not None and given != frame_shape:
            raise ShapeMismatchError(
                f"shape={given} but {ops_path} says suite2p's frames are "
                f"{frame_shape[0]} x {frame_shape[1]} (Ly x Lx): were these ROIs made "
                "from another movie? Leave shape= out to use suite2p's size"
            )
    elif given is not None:
        frame_shape = given
    else:
        found = f"{ops_path} has no Ly/Lx" if ops_path else "it has no ops.npy"
        raise ParameterError(
            f"the frame size of {plane} is unknown ({found}): pass shape=(Y, X), "
            "the movie's frame shape"
        )
    fs = ops.get("fs")
    try:
        frame_rate = float(fs) if fs is not None else 0.0
    except (TypeError, ValueError):
        frame_rate = 0.0
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        frame_rate = 0.0
    return frame_shape, frame_rate


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        y, x = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ParameterError(
            f"shape={shape!r}: give the movie's frame shape as two integers (Y, X)"
        ) from None
    if y < 1 or x < 1:
        raise ParameterError(f"shape={shape!r}: both sizes must be positive")
    return y, x


def _read_iscell(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RoiFormatError(
            f"{path} could not be read as a NumPy array ({type(exc).__name__}: {exc}); "
            "pass cells_only=False to keep all ROIs without it"
        ) from exc


def _check_iscell(iscell: np.ndarray, path: Path, n: int) -> np.ndarray:
    if iscell.ndim == 1:
        iscell = iscell[:, np.newaxis]
    numeric = np.issubdtype(iscell.dtype, np.number) or iscell.dtype == bool
    if iscell.ndim != 2 or iscell.shape[0] != n or not numeric:
        raise RoiFormatError(
            f"{path} holds a {iscell.dtype} array of shape {iscell.shape}, but stat.npy "
            f"has {n} ROIs: expected ({n}, 2) numbers; pass cells_only=False to ignore it"
        )
    return iscell.astype(np.float64)


def _roi(entry: Any, i: int, stat_path: Path) -> Roi:
    if not isinstance(entry, dict) or "ypix" not in entry or "xpix" not in entry:
        raise RoiFormatError(
            f"{stat_path}: entry {i} has no 'ypix'/'xpix' pixel lists "
            f"(it is a {type(entry).__name__}); is it a suite2p stat.npy?"
        )
    y = np.asarray(entry["ypix"])
    x = np.asarray(entry["xpix"])
    for name, v in (("ypix", y), ("xpix", x)):
        if v.ndim != 1 or not (np.issubdtype(v.dtype, np.integer) or v.size == 0):
            raise RoiFormatError(
                f"{stat_path}: entry {i} has {name} of dtype {v.dtype} and shape {v.shape}; "
                "suite2p's pixel lists are 1-D integer arrays"
            )
    if y.size != x.size:
        raise RoiFormatError(
            f"{stat_path}: entry {i} has {y.size} ypix but {x.size} xpix; "
            "each pixel needs both coordinates"
        )
    weights = None
    if entry.get("lam") is not None:
        weights = np.asarray(entry["lam"], dtype=np.float64).reshape(-1)
        if weights.size != y.size:
            raise RoiFormatError(
                f"{stat_path}: entry {i} has {weights.size} lam weights for {y.size} pixels"
            )
    return Roi(i + 1, y.astype(np.int64), x.astype(np.int64), weights, f"suite2p {i}")


# -- one run's files ---------------------------------------------------------------------
def read_consistently(
    plane: Path, read: Any, *, error: type[InputFormatError] = RoiFormatError
) -> Any:
    """``read()`` the plane folder's files, checking that they are one run's.

    ``read`` returns ``(value, shapes)``, ``shapes`` giving the shape of each file it
    read by name; the other files of the folder are checked from their ``.npy``
    headers. The read sees one state of the folder, waiting for a roitrace writer
    at work (:func:`roitrace._atomic.read_folder`); files that still disagree, on
    their number of ROIs or frames, are an ``error`` (a
    :class:`~roitrace.errors.RoiFormatError` when ROIs are read, a
    :class:`~roitrace.errors.ResultFormatError` when traces are) naming the files and
    their shapes.
    """

    def read_and_check() -> tuple[Any, str | None]:
        value, shapes = read()
        return value, mismatch(plane, shapes)

    value, problem = read_folder(plane, (*OWNED, *_OPS_FILES), read_and_check)
    if problem is not None:
        raise error(problem)
    return value


def mismatch(plane: Path, known: dict[str, tuple[int, ...]] | None = None) -> str | None:
    """Why the files of ``plane`` cannot come from one run (ROI or frame counts that
    differ), or None. ``known`` gives shapes already read; the other files are
    checked from their headers, without loading them (nor their pickles)."""
    shapes = dict(known or {})
    for name in (*TRACE_FILES, "stat.npy", "iscell.npy"):
        if name not in shapes and (plane / name).is_file():
            shape = _npy_shape(plane / name)
            if shape is not None:  # unreadable: reported when it is read
                shapes[name] = shape
    rows = {k: v[0] for k, v in shapes.items() if len(v) >= 1}
    cols = {k: v[1] for k, v in shapes.items() if k != "iscell.npy" and len(v) == 2}

    def shown(name: str) -> str:
        # ops.npy comes as (ROIs, its nframes): it records a frame count only
        return f"nframes {shapes[name][1]}" if name == "ops.npy" else f"shape {shapes[name]}"

    for counts, what in ((rows, "ROIs"), (cols, "frames")):
        ref = next((k for k in ("F.npy", "stat.npy", *counts) if k in counts), None)
        for name, count in counts.items():
            if ref is not None and count != counts[ref]:
                return (
                    f"suite2p folder {plane}: {ref} has {counts[ref]} {what} ({shown(ref)}) "
                    f"but {name} has {count} ({shown(name)}); the folder mixes files of "
                    "different runs: write it again"
                )
    return None


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The shape in a ``.npy`` file's header (no data, no pickle read); None if unreadable."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            major, _ = fmt.read_magic(f)
            header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            return tuple(int(v) for v in header(f)[0])
    except Exception:
        return None


# -- writing -----------------------------------------------------------------------------
def write_suite2p(
    result: Any,
    rois: RoiSet,
    folder: str | os.PathLike,
    *,
    extra: tuple[str, ...] = (),
) -> Path:
    """Write an extraction result as a suite2p plane folder.

    For code downstream that reads suite2p outputs. The files are written to a
    hidden folder beside it first and moved in only when all are complete, so an
    error (a full disk, Ctrl-C) leaves the folder as it was, never half new and
    half old; the folder is created if missing. The files of roitrace's set that
    this call does not write (an earlier run's ``F_corrected.npy`` or ``dff.npy``,
    or an ``extra`` variable the result lacks) are removed in the same step, and
    concurrent writers take turns, so the folder always holds one run's set; other
    files in it (suite2p's ``data.bin``...) are kept.

    Parameters
    ----------
    result : xarray.Dataset
        An :func:`roitrace.extract` result, dims ``(roi, time)``.
    rois : RoiSet
        The ROIs it was extracted from, in the same order (``result["roi"]`` must
        equal ``rois.ids``).
    folder : str or path-like
        The plane folder to write, e.g. ``out/suite2p/plane0``.
    extra : tuple of str
        Further variables of ``result`` to write as ``NAME.npy`` (float32, roi x
        time), e.g. ``("F_corrected", "dff")``; absent ones are skipped.

    Returns
    -------
    folder : pathlib.Path

    Notes
    -----
    Files written:

    - ``F.npy``: ``result["F"]`` as float32, (n_rois, n_frames).
    - ``Fneu.npy``: ``result["Fneu"]``; zeros (and a logged warning) when the
      result has no neuropil.
    - ``spks.npy``: ``result["spikes"]`` when the result was deconvolved
      (``extract(..., deconvolve=True)``), else zeros of the same shape.
    - ``iscell.npy``: ones, (n_rois, 2): every ROI a cell, probability 1.
    - ``stat.npy``: one dict per ROI with ``ypix``, ``xpix``, ``lam`` (the ROI's
      weights, else uniform ``1 / npix``; float32 as in suite2p), ``med`` (the
      pixel nearest the median, as suite2p picks it), ``npix``, ``radius``
      (``sqrt(npix / pi)``) and ``overlap`` (all False).
    - ``ops.npy``: ``Ly``, ``Lx``, ``nframes``, ``fs`` (the result's
      ``frame_rate`` attribute, else from its ``time`` coordinate; left out when
      unknown), ``neucoeff`` (the neuropil factor, as suite2p names it, when one
      number serves every ROI) and ``neuropil_factor`` (one per ROI, when the
      result records it), ``roitrace_version`` and ``parameters`` (the result's JSON).

    ``stat.npy`` and ``ops.npy`` are pickled object arrays, as suite2p writes them.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from roitrace import extract
    >>> from roitrace.rois import RoiSet
    >>> labels = np.zeros((12, 12), int); labels[2:5, 2:5] = 1; labels[7:10, 6:9] = 2
    >>> movie = np.random.default_rng(0).poisson(100, (20, 12, 12)).astype(np.uint16)
    >>> ds = extract(movie, labels, neuropil={"gap": 1, "width": 1})
    >>> folder = write_suite2p(ds, RoiSet.from_labels(labels), tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['F.npy', 'Fneu.npy', 'iscell.npy', 'ops.npy', 'spks.npy', 'stat.npy']
    >>> np.load(folder / "F.npy").shape
    (2, 20)
    >>> read_suite2p(folder, allow_pickle=True).ids
    [1, 2]
    """
    folder = Path(folder)
    if not isinstance(rois, RoiSet):
        raise ParameterError(
            f"rois must be a RoiSet (the ROIs the result was extracted from), "
            f"got {type(rois).__name__}"
        )
    check_result(result, needs=(VAR_F,), writer="write_suite2p")
    F = _traces(result, VAR_F)
    _check_match(result, rois)
    n, nt = F.shape
    if VAR_FNEU in result.data_vars:
        Fneu = _traces(result, VAR_FNEU)
    else:
        log.warning(
            "the result has no Fneu (extracted without neuropil=): %s/Fneu.npy holds zeros; "
            "extract with neuropil={'gap': ..., 'width': ...} for a neuropil trace",
            folder,
        )
        Fneu = np.zeros_like(F)

    ny, nx = rois.frame_shape
    ops: dict[str, Any] = {"Ly": ny, "Lx": nx, "nframes": nt}
    fs = _frame_rate(result)
    if fs:
        ops["fs"] = fs
    else:
        log.info("the result's frame rate is unknown: %s/ops.npy has no 'fs'", folder)
    for name in OPS_PER_ROI:
        if name in result.variables:
            ops[name] = np.asarray(result[name].values)
    if NEUROPIL_FACTOR in ops:
        r = ops[NEUROPIL_FACTOR]
        if r.size and np.all(r == r[0]):
            ops["neucoeff"] = float(r[0])
    ops["roitrace_version"] = __version__
    ops["parameters"] = str(result.attrs.get(PARAMETERS, ""))

    stat = np.empty(n, dtype=object)
    for k, roi in enumerate(rois):
        stat[k] = _stat_entry(roi)
    iscell = np.ones((n, 2), np.float64)

    owned = (*OWNED, *(f"{name}.npy" for name in extra))
    with atomic_folder(folder, owned=owned) as stage:
        _save(stage / "F.npy", F)
        _save(stage / "Fneu.npy", Fneu)
        spks = _traces(result, VAR_SPIKES) if VAR_SPIKES in result.data_vars else np.zeros_like(F)
        _save(stage / "spks.npy", spks)
        _save(stage / "iscell.npy", iscell)
        _save(stage / "stat.npy", stat, allow_pickle=True)
        _save(stage / "ops.npy", np.array(ops, dtype=object), allow_pickle=True)
        for name in extra:
            if name in result.data_vars:
                _save(stage / f"{name}.npy", _traces(result, name))
    return folder


def _traces(result: Any, name: str) -> np.ndarray:
    da = result[name]
    if set(da.dims) != {ROI, TIME}:
        raise ShapeMismatchError(
            f"result[{name!r}] has dims {da.dims}; expected ('roi', 'time') as "
            "roitrace.extract() returns"
        )
    return np.ascontiguousarray(da.transpose(ROI, TIME).values, dtype=np.float32)


def _check_match(result: Any, rois: RoiSet) -> None:
    ids = [int(i) for i in np.asarray(result[ROI].values).reshape(-1)]
    if ids != rois.ids:
        raise ShapeMismatchError(
            f"the result's ROIs {_short(ids)} are not the RoiSet's ROIs {_short(rois.ids)} "
            "in the same order: pass the RoiSet the result was extracted from"
        )
    if NPIX in result.coords:
        npix = np.asarray(result[NPIX].values).reshape(-1)
        for roi, m in zip(rois, npix, strict=True):
            if int(m) != roi.npix:
                raise ShapeMismatchError(
                    f"ROI {roi.id} has {roi.npix} pixels in the RoiSet but the result was "
                    f"extracted from {int(m)}: pass the RoiSet the result was extracted from"
                )


def _short(ids: list[int]) -> str:
    return str(ids) if len(ids) <= 10 else f"[{', '.join(map(str, ids[:10]))}, ...]"


def _frame_rate(result: Any) -> float:
    fr = result_frame_rate(result)
    if fr is not None:
        return fr
    # no rate recorded (a result read from a CSV file...): the time coordinate's
    if TIME in result.coords and result.sizes.get(TIME, 0) > 1:
        dt = np.diff(np.asarray(result[TIME].values, dtype=np.float64))
        if dt.size and np.all(dt > 0):
            return float(1.0 / np.median(dt))
    return 0.0


def _stat_entry(roi: Roi) -> dict[str, Any]:
    y = np.asarray(roi.y, dtype=np.int32)
    x = np.asarray(roi.x, dtype=np.int32)
    npix = int(y.size)
    if roi.weights is not None:
        lam = np.asarray(roi.weights, dtype=np.float32).reshape(-1)
    else:
        lam = np.full(npix, 1.0 / max(npix, 1), np.float32)
    if npix:
        ym, xm = np.median(y), np.median(x)
        k = int(np.argmin((y - ym) ** 2 + (x - xm) ** 2))
        med = [int(y[k]), int(x[k])]
    else:
        med = [0, 0]
    return {
        "ypix": y,
        "xpix": x,
        "lam": lam,
        "med": med,
        "npix": npix,
        "radius": float(np.sqrt(npix / np.pi)),
        "overlap": np.zeros(npix, bool),
    }


def _save(path: Path, arr: np.ndarray, *, allow_pickle: bool = False) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=allow_pickle)


# -- results -----------------------------------------------------------------------------
class Suite2pResultFormat(Format):
    """Results as a suite2p ``plane0`` folder: :func:`write_suite2p` with
    ``F_corrected.npy`` and ``dff.npy``, read back by :func:`read_suite2p_result`."""

    name = "suite2p"
    title = "suite2p plane"
    kind = "result"
    folder = True
    read_options = ("allow_pickle",)
    write_options = ("rois",)
    #: The files a write replaces or removes (the folder keeps any other).
    owned = OWNED

    def can_open(self, path: str | os.PathLike) -> bool:
        return Path(path).is_dir()

    def _read(self, path: str | os.PathLike, *, allow_pickle: bool = False) -> Any:
        return read_suite2p_result(path, allow_pickle=allow_pickle)

    def _write(self, result: Any, path: str | os.PathLike, *, rois: RoiSet | None = None) -> Path:
        extra = (VAR_F_CORRECTED, VAR_DFF, VAR_F0, VAR_CALCIUM)
        return write_suite2p(result, rois or result_rois(result), path, extra=extra)


def read_suite2p_result(folder: str | os.PathLike, *, allow_pickle: bool = False) -> Any:
    """Read the traces of a suite2p plane folder back into a result Dataset.

    ``folder`` is the plane folder, or a folder holding ``plane0``. ``allow_pickle``
    lets its ``ops.npy`` (a pickle) give the frame rate; without it the traces are
    read and ``time`` is left out.
    """
    import xarray as xr

    folder = Path(folder)
    if not (folder / "F.npy").exists() and (folder / "plane0" / "F.npy").exists():
        folder = folder / "plane0"
    spks: dict[str, np.ndarray] = {}

    def read() -> tuple[tuple[dict[str, Any], dict[str, Any]], dict[str, tuple[int, ...]]]:
        # Inside the consistent read: a folder being created has no F.npy for a moment.
        data = {}
        for v in TRACE_VARS:
            try:
                data[v] = ((ROI, TIME), _load_traces(folder / f"{v}.npy"))
            except FileNotFoundError:  # absent, or removed now by a writer (then read again)
                pass
        if allow_pickle:
            try:
                spks["spks.npy"] = _load_traces(folder / "spks.npy")
            except FileNotFoundError:
                pass
        ops: dict[str, Any] = {}
        if allow_pickle and (folder / "ops.npy").exists():
            ops = np.load(folder / "ops.npy", allow_pickle=True).item()
        shapes = {f"{v}.npy": a.shape for v, (_, a) in data.items()}
        if "F.npy" in shapes and "nframes" in ops:
            if shapes["F.npy"][1:] != (int(ops["nframes"]),):
                # the frame count ops.npy records, seen as an (roi, frame) shape to compare
                shapes["ops.npy"] = (shapes["F.npy"][0], int(ops["nframes"]))
        return (data, ops), shapes

    data_vars, ops = read_consistently(folder, read, error=ResultFormatError)
    if VAR_F not in data_vars:
        raise ResultFormatError(f"{folder}: no F.npy here; is this a suite2p plane0 folder?")
    n_roi, n_t = data_vars[VAR_F][1].shape
    coords: dict[str, Any] = {ROI: np.arange(1, n_roi + 1), FRAME: (TIME, np.arange(n_t))}
    attrs: dict[str, Any] = {SOURCE: str(folder)}
    if ops:
        if ops.get("fs"):
            coords[TIME] = (TIME, np.arange(n_t) / float(ops["fs"]), {"units": "s"})
            attrs[FRAME_RATE] = float(ops["fs"])
        if ops.get("Ly") and ops.get("Lx"):
            attrs[FRAME_SHAPE] = json.dumps([int(ops["Ly"]), int(ops["Lx"])])
        for k in (ROITRACE_VERSION, PARAMETERS):
            if k in ops:
                attrs[k] = ops[k]
        for k in OPS_PER_ROI:
            if k in ops and np.shape(ops[k]) == (n_roi,):
                coords[k] = (ROI, np.asarray(ops[k]))
        # spks.npy holds zeros unless roitrace deconvolved: its parameters say which
        if "spks.npy" in spks and '"deconvolve": {' in str(ops.get(PARAMETERS, "")):
            data_vars[VAR_SPIKES] = ((ROI, TIME), spks["spks.npy"])
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _load_traces(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated, not a .npy file, a pickle
        raise ResultFormatError(
            f"{path} could not be read as a NumPy .npy file ({type(exc).__name__}: {exc}); "
            "is it a complete suite2p output?"
        ) from exc
    if arr.ndim != 2:
        raise ResultFormatError(
            f"{path} holds an array of shape {arr.shape}, not (ROIs, frames) traces"
        )
    return arr
