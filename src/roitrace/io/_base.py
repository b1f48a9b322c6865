"""The io boundary's parts: one :class:`Format` per file format, three registries
(movies, ROI sets, results) and the lookups that choose a format for a path.

A format declares what it is (``name``, ``title``, ``kind``), the paths it takes
(``suffixes``; ``folder`` for a folder format), the optional package it needs
(``requires``), the keywords its reader and writer accept (``read_options``,
``write_options``), and implements ``_read`` and, unless it is read-only, ``_write``.
:meth:`Format.read` and :meth:`Format.write` refuse keywords the format does not
know, naming the close ones, so that a misspelt option never passes silently.

The registries are filled, in order, by :mod:`roitrace.io` (its ``__init__``): the
first format that claims a path is used. Nothing here imports a format module.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from .._optional import available, require
from .._validate import frame_rate as check_frame_rate
from ..errors import (
    InputFormatError,
    MovieFormatError,
    ParameterError,
    ResultFormatError,
    RoiFormatError,
    ShapeMismatchError,
)

__all__ = [
    "KINDS",
    "REGISTRIES",
    "Format",
    "MovieFormat",
    "RoiFormat",
    "check_options",
    "format_named",
    "formats",
    "is_folder_output",
    "movie_format",
    "result_format",
    "roi_format",
    "writable_suffixes",
]

#: The three kinds of files roitrace reads and writes.
KINDS = ("movie", "rois", "result")

#: Every format of each kind, in the order they are tried (filled by roitrace.io).
REGISTRIES: dict[str, list[Format]] = {kind: [] for kind in KINDS}

#: What each kind of file is called in messages, and what an unreadable one raises.
_WORDS = {"movie": "movie", "rois": "ROI", "result": "result"}
_READ_ERRORS: dict[str, type[InputFormatError]] = {
    "movie": MovieFormatError,
    "rois": RoiFormatError,
    "result": ResultFormatError,
}


class Format:
    """One file format of one kind: what it reads and writes, and which paths it takes.

    Subclasses set the class attributes and implement :meth:`_read` (and
    :meth:`_write` when the format can be written); users call :meth:`read` and
    :meth:`write`, which check the keywords first.

    Attributes
    ----------
    name : str
        A short identifier: ``"tiff"``, ``"imagej"``, ``"csv"``...
    title : str
        What people call the files: ``"TIFF"``, ``"ImageJ ROI"``, ``"CSV"``.
    kind : {"movie", "rois", "result"}
        What the files hold.
    suffixes : tuple of str
        The file suffixes it takes, lower case with the dot.
    folder : bool
        A folder format (a suite2p ``plane0`` folder): found by :meth:`can_open`,
        not by suffix.
    requires : (str, str, str or None) or None
        The package it needs beyond numpy: ``(import name, pip package, extra)``,
        the extra being the ``roitrace[...]`` one that installs it (None: the plain
        install does).
    read_options, write_options : tuple of str
        The keywords :meth:`read` and :meth:`write` accept.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    folder: ClassVar[bool] = False
    requires: ClassVar[tuple[str, str, str | None] | None] = None
    read_options: ClassVar[tuple[str, ...]] = ()
    write_options: ClassVar[tuple[str, ...]] = ()

    # -- what it takes ---------------------------------------------------------------
    def can_open(self, path: str | os.PathLike) -> bool:
        """Whether this format reads ``path``: its suffix, or for a folder format
        the folder (checked on disk). The content is not read: a damaged file of
        this suffix gets this format's own diagnosis, not "unknown format"."""
        return suffix_of(path) in self.suffixes

    @property
    def writable(self) -> bool:
        """Whether the format can be written (else it is read-only)."""
        return type(self)._write is not Format._write

    def describe(self) -> str:
        """``"CSV files (.csv)"``, ``"suite2p plane folders"``: for messages."""
        if self.folder:
            return f"{self.title} folders"
        return f"{self.title} files ({', '.join(self.suffixes)})"

    def available(self) -> bool:
        """Whether the package the format needs is installed (without importing it)."""
        return self.requires is None or available(self.requires[0])

    def require(self, purpose: str) -> None:
        """Raise :class:`~roitrace.errors.MissingDependencyError`, with the pip
        command, when the package the format needs is not installed."""
        if self.requires is not None:
            module, pip, extra = self.requires
            require(module, purpose, pip=pip, extra=extra)

    # -- reading and writing -----------------------------------------------------------
    def read(self, path: str | os.PathLike, **options: Any) -> Any:
        """Read ``path``; ``options`` must be among :attr:`read_options`."""
        check_options(self, options, "read")
        self.require(f"reading {path}")
        return self._read(path, **options)

    def write(self, obj: Any, path: str | os.PathLike, **options: Any) -> Path:
        """Write ``obj`` to ``path``; ``options`` must be among :attr:`write_options`."""
        if not self.writable:
            raise ParameterError(
                f"{self.describe()} can be read, not written by roitrace; "
                f"write {path} in another format ({_choices(self.kind, writing=True)})"
            )
        check_options(self, options, "write")
        self.require(f"writing {path}")
        return self._write(obj, path, **options)

    def _read(self, path: str | os.PathLike, **options: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _write(self, obj: Any, path: str | os.PathLike, **options: Any) -> Path:
        raise NotImplementedError  # pragma: no cover - `writable` is False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.describe()}>"


class MovieFormat(Format):
    """A format of movies: :meth:`read` returns a lazy
    :class:`~roitrace.movie.Movie`. Every one takes ``channel`` (which channel to
    keep) and ``frame_rate`` (frames per second, overriding the file's; checked)."""

    kind = "movie"
    read_options: ClassVar[tuple[str, ...]] = ("channel", "frame_rate")

    def read(self, path: str | os.PathLike, **options: Any) -> Any:
        if options.get("frame_rate") is not None:
            options["frame_rate"] = check_frame_rate(options["frame_rate"])
        return super().read(path, **options)


class RoiFormat(Format):
    """A format of ROI sets: :meth:`read` takes ``shape``, the movie's frame shape
    ``(Y, X)``, and checks the ROIs against it (ImageJ ROIs need it: their files do
    not record the frame size)."""

    kind = "rois"
    read_options: ClassVar[tuple[str, ...]] = ("shape",)

    def read(self, path: str | os.PathLike, **options: Any) -> Any:
        rois = super().read(path, **options)
        shape = options.get("shape")
        if shape is not None and rois.frame_shape != tuple(shape):
            raise ShapeMismatchError(
                f"{Path(path)}: the ROIs are for {rois.frame_shape[0]} x "
                f"{rois.frame_shape[1]} frames but the movie's frames are {shape[0]} x "
                f"{shape[1]}; use the ROIs made for this movie"
            )
        return rois


# -- options ---------------------------------------------------------------------------
def check_options(fmt: Format, options: Mapping[str, Any], action: str = "read") -> None:
    """Raise :class:`~roitrace.errors.ParameterError` if ``options`` holds a keyword
    that ``fmt`` does not take when it reads (``action="read"``) or writes
    (``"write"``). The message names the keyword, the format and the keywords it
    takes, and a close one when there is one (``indicatr``: did you mean
    ``'indicator'``?), also when it belongs to another format of the same kind.
    """
    accepted = fmt.read_options if action == "read" else fmt.write_options
    unknown = [name for name in options if name not in accepted]
    if not unknown:
        return
    name = unknown[0]
    verb = "read" if action == "read" else "written"
    if accepted:
        takes = f"they take {', '.join(repr(o) for o in accepted)}"
    else:
        takes = "they take no option"
    hint = ""
    close = difflib.get_close_matches(name, accepted, n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    else:
        others = [f for f in REGISTRIES.get(fmt.kind, ()) if f is not fmt]
        owners = [f for f in others if name in _options_of(f, action)]
        if owners:
            hint = f"; {name!r} is an option of {_join([f.describe() for f in owners])}"
        else:
            pool = sorted({o for f in others for o in _options_of(f, action)})
            close = difflib.get_close_matches(name, pool, n=1)
            if close:
                owner = next(f for f in others if close[0] in _options_of(f, action))
                hint = f"; did you mean {close[0]!r}, an option of {owner.describe()}?"
    raise ParameterError(f"{fmt.describe()} take no option {name!r} when {verb}: {takes}{hint}")


def _options_of(fmt: Format, action: str) -> tuple[str, ...]:
    return fmt.read_options if action == "read" else fmt.write_options


# -- lookups ---------------------------------------------------------------------------
def check_read_option(kind: str, option: str, value: Any, path: Path) -> None:
    """An option only some formats read (``dataset=``, ``plane_segmentation=``) given
    for a file none of them opens: a :class:`~roitrace.errors.ParameterError` naming
    the formats it is for, before any reading."""
    if value is None:
        return
    takers = [f for f in formats(kind) if option in f.read_options]
    if not any(f.can_open(path) for f in takers):
        raise ParameterError(
            f"{option}={value!r} is for {_join([f.title for f in takers])} files; "
            f"{path} is not one: leave it out"
        )


def formats(kind: str, *, writing: bool = False) -> list[Format]:
    """The formats of ``kind`` (``"movie"``, ``"rois"``, ``"result"``) in the order
    they are tried; with ``writing``, those that can be written."""
    if kind not in REGISTRIES:
        raise ParameterError(f"kind={kind!r}: use one of {', '.join(map(repr, KINDS))}")
    found = REGISTRIES[kind]
    return [f for f in found if f.writable] if writing else list(found)


def writable_suffixes(kind: str) -> tuple[str, ...]:
    """Every suffix of the formats of ``kind`` that can be written, in order."""
    return tuple(s for f in formats(kind, writing=True) for s in f.suffixes)


def format_named(kind: str, name: str) -> Format:
    """The format of ``kind`` called ``name`` (``"imagej"``, ``"labels"``...)."""
    for fmt in formats(kind):
        if fmt.name == name:
            return fmt
    names = ", ".join(repr(f.name) for f in formats(kind))
    raise ParameterError(f"format={name!r} is no {_WORDS[kind]} format; use one of {names}")


def movie_format(path: str | os.PathLike) -> Format:
    """The format that reads the movie ``path``, or a
    :class:`~roitrace.errors.MovieFormatError` listing the movie formats."""
    return _reader("movie", path)


def roi_format(path: str | os.PathLike, *, for_writing: bool = False) -> Format:
    """The format of the ROI set ``path``: :class:`~roitrace.errors.RoiFormatError`
    when none reads it; with ``for_writing``, the format to write it in, or a
    :class:`~roitrace.errors.ParameterError` (a folder, an unknown suffix)."""
    if not for_writing:
        return _reader("rois", path)
    folder = _ends_with_slash(path) or Path(path).is_dir()
    return _writer("rois", path, folder=folder)


def result_format(path: str | os.PathLike, *, for_writing: bool = False) -> Format:
    """The format of the saved result ``path``.

    Reading: a folder is a suite2p plane folder, else the suffix decides
    (:class:`~roitrace.errors.ResultFormatError` when none fits). Writing (what
    :func:`roitrace.save` does): a path ending in ``/``, an existing folder or a
    path without a suffix is a suite2p folder, else the suffix decides
    (:class:`~roitrace.errors.ParameterError` when none fits).
    """
    if not for_writing:
        return _reader("result", path)
    return _writer("result", path, folder=is_folder_output(path))


def is_folder_output(path: str | os.PathLike) -> bool:
    """Whether a result written to ``path`` is a folder (suite2p style): ``path``
    ends with a slash (``"run.v2/"``), is an existing folder, or has no suffix at
    all (a ``pathlib.Path`` cannot end with a slash) and no other format's."""
    if _ends_with_slash(path):
        return True
    suffix = suffix_of(path)
    return suffix not in writable_suffixes("result") and (suffix == "" or Path(path).is_dir())


def _reader(kind: str, path: str | os.PathLike) -> Format:
    registry = formats(kind)
    # folder formats first: a folder (or suite2p's stat.npy) is theirs whatever its name
    for fmt in sorted(registry, key=lambda f: not f.folder):
        if fmt.can_open(path):
            return fmt
    suffix = suffix_of(path)
    what = (
        f"unknown {_WORDS[kind]} format {suffix!r}"
        if suffix
        else f"no suffix, so its {_WORDS[kind]} format is unknown"
    )
    raise _READ_ERRORS[kind](f"{Path(path)}: {what}; roitrace reads {_choices(kind)}")


def _writer(kind: str, path: str | os.PathLike, *, folder: bool) -> Format:
    registry = formats(kind)
    if folder:
        for fmt in registry:
            if fmt.folder:
                return fmt  # read-only ones say so when they are asked to write
    else:
        suffix = suffix_of(path)
        for fmt in registry:
            if not fmt.folder and suffix in fmt.suffixes:
                return fmt
    suffix = "" if folder else suffix_of(path)
    if folder:
        what = "is a folder"
    elif suffix:
        what = (
            f"is of an unknown {'output' if kind == 'result' else _WORDS[kind]} format {suffix!r}"
        )
    else:
        what = "has no suffix"
    raise ParameterError(f"{Path(path)} {what}; use {_choices(kind, writing=True, short=True)}")


def _choices(kind: str, *, writing: bool = False, short: bool = False) -> str:
    """The formats of ``kind`` for messages: ``"CSV (.csv), NWB (.nwb) and suite2p
    plane folders"``; ``short``: ``".csv, .nwb, or a folder ending in / (suite2p
    style)"``."""
    found = formats(kind, writing=writing)
    if short:
        suffixes = [s for f in found for s in f.suffixes]
        folder = any(f.folder for f in found)
        return ", ".join(suffixes) + (
            ", or a folder ending in / (suite2p style)" if folder else ""
        )
    return _join(
        [
            f"{f.title} folders" if f.folder else f"{f.title} ({', '.join(f.suffixes)})"
            for f in found
        ]
    )


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def suffix_of(path: str | os.PathLike) -> str:
    """The path's last suffix, lower case: ``".tif"`` for ``Movie.OME.TIF``."""
    return Path(path).suffix.lower()


def _ends_with_slash(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(("/", os.sep))
