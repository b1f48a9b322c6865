"""Write files under a temporary name and rename them into place.

An error, Ctrl-C, a killed process or a full disk while writing never leaves a
half-written file under the final name: readers see either the old file or the
complete new one.

The temporary file is hidden and says where it comes from, e.g.
``.traces.csv.roitrace-tmp-1f3a9c0e.part.csv`` beside ``traces.csv``; only a
process killed outright (``kill -9``, a power cut) can leave one behind, and it
can be deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import overload

from .errors import DiskFullError, OutputError, RoitraceError

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

#: Marks the temporary files of :func:`atomic_path`: ``.NAME.roitrace-tmp-XXXXXXXX.part.SUFFIX``.
TMP_MARK = ".roitrace-tmp-"

# errno values meaning "no room left", with what to do; EDQUOT is not on every platform.
_FREE_SPACE = "free some space and run again"
_NO_ROOM = {
    errno.ENOSPC: ("the disk is full", _FREE_SPACE),
    errno.EFBIG: (
        "the file is larger than this disk or the file-size limit allows",
        "write it to another disk",
    ),
}
if hasattr(errno, "EDQUOT"):
    _NO_ROOM[errno.EDQUOT] = ("the disk quota is full", _FREE_SPACE)
# fsync errors meaning "this filesystem cannot", not "the data did not make it".
_CANNOT_SYNC = {errno.EINVAL, errno.EBADF, getattr(errno, "ENOTSUP", errno.EINVAL)}
# numpy's tofile (np.save, tifffile) reports a short write without an errno.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary file lives in the same folder so that the final rename is atomic
    on POSIX filesystems. It keeps the final suffix (writers such as tifffile and
    matplotlib choose the format from it). It is flushed to the disk (``fsync``)
    before the rename, so that a crash just after it cannot leave an empty file.

    On any exception, including ``KeyboardInterrupt``, the temporary file is
    removed and ``path`` is left as it was (absent, or holding its old content).
    An ``OSError`` while writing (and an HDF5 error caused by one) is raised as
    :class:`~roitrace.errors.DiskFullError` when the disk or a quota is full, else
    as :class:`~roitrace.errors.OutputError`: both are ``OSError`` too, and say
    which file could not be written. Other exceptions are re-raised unchanged.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("complete")
    >>> (folder / "a.txt").read_text()
    'complete'
    >>> try:
    ...     with atomic_path(folder / "a.txt") as tmp:
    ...         _ = tmp.write_text("half")
    ...         raise OSError(28, "No space left on device")
    ... except OSError as exc:
    ...     print(type(exc).__name__)
    DiskFullError
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('complete', ['a.txt'])
    """
    final = Path(path)
    suffix = final.suffix if suffix is None else suffix
    existed = os.path.lexists(final)
    try:
        if final.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        _make_folder(final.parent)
        tmp = _make_temp(final, suffix)
    except OSError as exc:
        raise _as_output_error(exc, final, existed) from exc
    try:
        yield tmp
        _fsync(tmp)
        _check_room(tmp)
        os.replace(tmp, final)
    except BaseException as exc:
        error = None
        if isinstance(exc, Exception) and not isinstance(exc, RoitraceError):
            error = _as_output_error(exc, final, existed)  # before the unlink frees space
        with contextlib.suppress(OSError):
            tmp.unlink()
        if error is not None:
            raise error from exc
        raise
    _fsync_folder(final.parent)


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``folder``; when the block succeeds,
    move every file written there into ``folder``.

    Files are written to the staging folder first, so a failure while writing (a
    full disk, Ctrl-C) leaves ``folder`` exactly as it was: never some files new
    and some old. Only then is each file renamed into place (created if missing;
    other files in it, such as suite2p's ``data.bin``, are kept). Errors are
    raised as by :func:`atomic_path`, naming ``folder``.
    """
    final = Path(folder)
    existed = final.is_dir() and any(final.iterdir())
    try:
        if os.path.lexists(final) and not final.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{final} is a file, not a folder")
        _make_folder(final.parent)
        stage = Path(
            tempfile.mkdtemp(prefix=f".{final.name}{TMP_MARK}", suffix=".part", dir=final.parent)
        )
    except OSError as exc:
        raise _as_output_error(exc, final, existed) from exc
    try:
        yield stage
        staged = sorted(p for p in stage.iterdir() if p.is_file())
        for f in staged:
            _fsync(f)
            _check_room(f)
        final.mkdir(exist_ok=True)
        for f in staged:
            os.replace(f, final / f.name)
    except BaseException as exc:
        error = None
        if isinstance(exc, Exception) and not isinstance(exc, RoitraceError):
            error = _as_output_error(exc, final, existed)
        shutil.rmtree(stage, ignore_errors=True)
        if error is not None:
            raise error from exc
        raise
    shutil.rmtree(stage, ignore_errors=True)
    _fsync_folder(final)


def write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    final = Path(path)
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return final


@contextlib.contextmanager
def hdf5_file(path: str | os.PathLike) -> Iterator[object]:
    """An ``h5py.File`` built in memory, then written to ``path`` atomically.

    HDF5 crashes the process (h5py issue 914) when a write to a real file fails, e.g.
    on a full disk; built in memory, the file reaches the disk as plain bytes, so a
    full disk is a :class:`~roitrace.errors.DiskFullError` like for any other
    format. Costs memory the size of the file.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    write_bytes(path, buffer.getbuffer())


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a temporary file of :func:`atomic_path`.

    >>> is_temporary(".traces.csv.roitrace-tmp-1f3a9c0e.part.csv"), is_temporary("traces.csv")
    (True, False)
    """
    name = Path(path).name
    return name.startswith(".") and TMP_MARK in name


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file is in the way
        blocker = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), folder)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder") from exc


def _make_temp(final: Path, suffix: str) -> Path:
    """Create an empty, new temporary file beside ``final`` (0666 less the umask)."""
    name = final.name
    while len(os.fsencode(name)) > 180:  # keep the temporary name under NAME_MAX (255)
        name = name[:-8]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = final.with_name(f".{name}{TMP_MARK}{secrets.token_hex(4)}.part{suffix}")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # another run picked the same name: draw again
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(final.parent))


def _fsync(path: Path) -> None:
    """Flush a written file to the disk; a no-op where the filesystem cannot."""
    if not path.is_file():
        return
    mode = os.O_RDWR if os.name == "nt" else os.O_RDONLY  # Windows flushes only writable files
    fd = os.open(path, mode | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC:
            raise  # EIO, or ENOSPC from a network filesystem: the data did not make it
    finally:
        os.close(fd)


def _check_room(tmp: Path) -> None:
    """Raise ENOSPC/EFBIG if the disk or the file-size limit was reached while writing.

    numpy's ``tofile`` (behind ``np.save`` and tifffile) writes through a C ``FILE``
    whose last buffered bytes are written when it is closed, and numpy ignores an
    error there: on a full disk the file silently lacks its tail. A file that
    filled the disk to the last block, or reached the file-size limit, is therefore
    taken as incomplete.
    """
    try:
        st = os.statvfs(tmp.parent)
    except (AttributeError, OSError):  # no statvfs on Windows
        pass
    else:
        # root may write into the blocks reserved for it; others may not.
        free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
        if st.f_blocks and free == 0:
            raise OSError(errno.ENOSPC, "no room left after writing: the file may lack its end")
    if resource is None:  # Windows
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and tmp.stat().st_size >= limit:
        raise OSError(errno.EFBIG, "the file reached the file-size limit (ulimit -f)")


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry of a renamed file (POSIX); best effort."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@overload
def _as_output_error(exc: OSError, final: Path, existed: bool) -> OutputError: ...
@overload
def _as_output_error(exc: BaseException, final: Path, existed: bool) -> OutputError | None: ...
def _as_output_error(exc: BaseException, final: Path, existed: bool) -> OutputError | None:
    """The roitrace error for a failed write of ``final``; None if ``exc`` is not an I/O error."""
    kept = f" ({final.name} was left as it was)" if existed else ""
    room = _no_room(exc, final)
    if room is not None:
        reason, advice, code = room
        error: OutputError = DiskFullError(
            _one_line(f"{final}: {reason}, so nothing was written{kept}; {advice}")
        )
        error.errno = code
        return error
    if not isinstance(exc, OSError):
        return None
    if exc.errno and exc.strerror and "errno =" in exc.strerror:  # HDF5's long reports
        why = os.strerror(exc.errno)
    else:
        why = exc.strerror or str(exc) or type(exc).__name__
    other = exc.filename  # worth naming when it is neither the output nor its temporary
    if isinstance(other, (str, bytes, os.PathLike)):
        other = os.fsdecode(other)
        if other != str(final) and not is_temporary(other):
            why = f"{why}: {other}"
    error = OutputError(
        _one_line(f"{final}: could not write it ({why}), so nothing was written{kept}")
    )
    error.errno = exc.errno
    return error


def _no_room(exc: BaseException, final: Path) -> tuple[str, str, int] | None:
    """``(reason, advice, errno)`` if ``exc`` or one behind it says there is no room left."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
        text = str(e)
        for code, (reason, advice) in _NO_ROOM.items():
            # HDF5 (h5py, h5netcdf, pynwb) puts the C errno and its text in its messages.
            if (
                getattr(e, "errno", None) == code
                or f"errno = {code}," in text
                or os.strerror(code) in text
            ):
                return f"{reason} ({os.strerror(code)})", advice, code
        short = _SHORT_WRITE.search(text) if isinstance(e, OSError) else None
        if short is not None:
            asked, done = int(short[1]), int(short[2])
            left = _free_bytes(final.parent)
            if left is None or left < asked - done:
                reason, advice = _NO_ROOM[errno.ENOSPC]
            else:
                reason = "the disk quota or the file-size limit is reached"
                advice = "free some space or write it to another disk"
            reason = f"{reason} (only {done} of {asked} bytes could be written)"
            return reason, advice, errno.ENOSPC
    return None


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except (AttributeError, OSError):  # no statvfs on Windows
        return None
    return st.f_bavail * st.f_frsize


def _one_line(text: str) -> str:
    return " ".join(text.split())
