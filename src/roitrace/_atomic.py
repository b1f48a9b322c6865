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
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar, overload

from ._paths import is_zarr_store, split_dataset_path
from .errors import DiskFullError, OutputError, RoitraceError

try:
    import fcntl
    import resource
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
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
    # The temporary is made inside the guarded block, and named in `made` by
    # _make_temp as soon as it exists: a Ctrl-C landing just after its creation
    # (before the name is even returned here) still has it removed.
    made: list[Path] = []
    try:
        if final.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        _make_folder(final.parent)
        tmp = _make_temp(final, suffix, made)
        yield tmp
        _fsync(tmp)
        _check_room(tmp)
        os.replace(tmp, final)
    except BaseException as exc:
        error = None
        if isinstance(exc, Exception) and not isinstance(exc, RoitraceError):
            error = _as_output_error(exc, final, existed)  # before the unlink frees space
        for left in made:
            with contextlib.suppress(OSError):
                left.unlink()
        if error is not None:
            raise error from exc
        raise
    _fsync_folder(final.parent)


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike, *, owned: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``folder``; when the block succeeds,
    make ``folder`` hold exactly the set of files written there.

    Files are written to the staging folder first, so a failure while writing (a
    full disk, Ctrl-C) leaves ``folder`` exactly as it was: never some files new
    and some old. Then, in one step under a lock, the files named in ``owned``
    that the block did not write (an earlier run's ``F_corrected.npy`` when this
    run has no neuropil) are removed and each new file is renamed into place
    (``folder`` is created if missing). Other files in it, such as suite2p's
    ``data.bin``, are kept. The lock (``fcntl.flock`` on a hidden file beside the
    folder, removed afterwards) makes concurrent writers take turns, so the folder
    ends up holding one run's complete set, the last one's, never a mix; readers
    see one such set with :func:`read_folder`. Errors are raised as
    by :func:`atomic_path`, naming ``folder``.
    """
    final = Path(folder)
    # Stage and lock beside the real folder: the renames stay on one filesystem and
    # two spellings of one folder (a link) share one lock.
    real = Path(os.path.realpath(final))
    existed = final.is_dir() and any(final.iterdir())
    made: list[Path] = []  # the staging folder once it exists (see atomic_path)
    try:
        if os.path.lexists(final) and not final.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{final} is a file, not a folder")
        _make_folder(real.parent)
        stage = _make_temp(real, "", made, folder=True)
        yield stage
        staged = sorted(p for p in stage.iterdir() if p.is_file())
        for f in staged:
            _fsync(f)
            _check_room(f)
        new = {f.name for f in staged}
        with _folder_lock(real):
            real.mkdir(exist_ok=True)
            # The earlier run's leftovers go first: should the process die in this
            # step, what remains is a smaller old set, or a mix that load() reports.
            for name in sorted(set(owned) - new):
                with contextlib.suppress(FileNotFoundError):
                    (real / name).unlink()
            for f in staged:
                os.replace(f, real / f.name)
            _fsync_folder(real)
    except BaseException as exc:
        error = None
        if isinstance(exc, Exception) and not isinstance(exc, RoitraceError):
            error = _as_output_error(exc, final, existed)
        for left in made:
            shutil.rmtree(left, ignore_errors=True)
        if error is not None:
            raise error from exc
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _lock_path(folder: Path) -> Path:
    """The lock file of ``folder`` (a real path): hidden beside it, a recognisable
    leftover (:func:`is_temporary`) should a writer be killed while holding it."""
    return folder.parent / f".{folder.name}{TMP_MARK}lock"


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (see :func:`atomic_folder`); a no-op
    where ``fcntl`` is missing (Windows)."""
    if fcntl is None:
        yield
        return
    path = _lock_path(folder)
    try:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # The holder before us removed the file as it let go: our lock is on a
                # file nobody else will open, so take the new one.
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    break
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
    except BaseException:
        # Ctrl-C while taking the lock: the lock file may be one we just created.
        _drop_unheld_lock(path)
        raise
    try:
        yield
    finally:
        # Removed while still held, so that no file is left and a writer that opened
        # it meanwhile sees, once it has the lock, that it must open the next one.
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _drop_unheld_lock(path: Path) -> None:
    """Remove the lock file ``path`` if no writer holds it (one interrupted while
    taking the lock may have just created it). It is locked first: only a holder
    may remove it (see :func:`_folder_lock`)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # gone already
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            path.unlink()
    except OSError:  # held by another writer, who removes it; or replaced meanwhile
        pass
    finally:
        os.close(fd)


T = TypeVar("T")


def read_folder(folder: str | os.PathLike, names: Iterable[str], read: Callable[[], T]) -> T:
    """``read()`` the files ``names`` of ``folder`` as one state of it, never half
    of one :func:`atomic_folder` swap and half of the next.

    The read counts only if none of the files was renamed, replaced or removed
    meanwhile and no writer is moving files in (it holds the folder's lock);
    otherwise it waits for the writer and reads again. Readers take no lock and
    write nothing: a folder they may only read is read the same way.
    """
    folder = Path(os.path.realpath(folder))
    # Busy writers may keep a reader waiting, but only a folder rewritten without a
    # pause for a minute keeps it from reading.
    deadline = time.monotonic() + 60
    while True:
        before = _state(folder, names)
        value = read()
        if _state(folder, names) == before and not _wait_for_writer(folder):
            return value
        if time.monotonic() > deadline:
            raise RoitraceError(f"{folder} kept changing while it was read: read it again")


def _state(folder: Path, names: Iterable[str]) -> list[tuple[int, ...] | None]:
    """What tells a file from the one that replaces it (a rename gives another inode)."""
    state: list[tuple[int, ...] | None] = []
    for name in names:
        try:
            st = os.stat(folder / name)
        except OSError:
            state.append(None)
        else:
            state.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return state


def _wait_for_writer(folder: Path) -> bool:
    """Wait until no :func:`atomic_folder` holds the lock of ``folder``; True if one did."""
    if fcntl is None:
        return False
    try:
        fd = os.open(_lock_path(folder), os.O_RDONLY)
    except OSError:  # no writer at work (or a lock we cannot open: nothing to wait for)
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a writer is at work: wait for it
            return True
        return False  # a leftover of a killed writer
    finally:
        os.close(fd)


# -- checks before the work ----------------------------------------------------------------
_TRY_ELSEWHERE = "write the output to another"


def input_file(path: str | os.PathLike) -> Path:
    """The file or folder an input path reads: ``file.h5:/dataset`` reads ``file.h5``.

    >>> str(input_file("no/such/run.h5:/imaging")), str(input_file("movie.tif"))
    ('no/such/run.h5', 'movie.tif')
    """
    return Path(split_dataset_path(path)[0])  # the file.h5:/dataset form of open_movie


def check_not_input(
    output: str | os.PathLike,
    inputs: Iterable[tuple[str, str | os.PathLike | None] | tuple[str, Any, str]],
    *,
    name: str = "path",
    label: str | None = None,
    folder: bool = False,
    replaces: Iterable[str] = (),
) -> None:
    """Raise :class:`~roitrace.errors.OutputError` if writing ``output`` would
    overwrite one of ``inputs``, before any work is done.

    Parameters
    ----------
    output : path
        The file, or with ``folder`` the folder, about to be written.
    inputs : iterable of (description, path) or (description, path, note)
        What is read, e.g. ``("the input movie", "in.tif")``; None paths are skipped.
        ``file.h5:/dataset`` stands for ``file.h5``. A folder input (a suite2p ROI
        source) also stands for the ``plane*`` folders in it, which it is read from;
        a Zarr store input for everything inside it (an output there would change
        the store). The note, in brackets after the path, says how roitrace knows it.
    name : str
        How the interface calls the output: ``"-o/--output"`` on the command line,
        the keyword in Python.
    label : str, optional
        The output as named in the message; default ``"{name} {output}"``.
    folder : bool
        ``output`` is a folder; the message then asks for another folder.
    replaces : iterable of str
        Names of the files that writing the folder ``output`` puts or removes in it
        (suite2p's ``F.npy``, ``stat.npy``...): an input among them is refused too.

    Paths are compared as files (``os.path.samefile``: links and hard links lead
    to the file itself), else as resolved paths when one does not exist yet.

    Examples
    --------
    >>> import tempfile, os
    >>> movie = os.path.join(tempfile.mkdtemp(), "in.tif")
    >>> open(movie, "wb").close()
    >>> check_not_input(movie, [("the input movie", movie)], name="-o/--output")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.OutputError: -o/--output ... is the input movie; write the output to ...
    """
    out = Path(output)
    label = label if label is not None else f"{name} {output}"
    noun = "folder" if folder else "file"
    targets = [(out, None)] + [(out / n, n) for n in replaces]
    for what, path, *notes in inputs:
        if path is None:
            continue
        note = "".join(f" ({n})" for n in notes)
        src = input_file(path)
        reads = [(src, None)]
        if src.is_dir():
            reads += [(p, p) for p in sorted(src.glob("plane*")) if p.is_dir()]
        for target, replaced in targets:
            for read, plane in reads:
                if not _same(target, read):
                    continue
                if replaced is not None:
                    message = f"{label} would replace {target}, which is {what} {path}{note}"
                elif plane is not None:
                    message = (
                        f"{label} is {plane}, the plane folder {what} {path}{note} is read from"
                    )
                else:
                    shown = "" if os.fspath(path) == os.fspath(output) else f" {path}"
                    message = f"{label} is {what}{shown}{note}"
                raise OutputError(f"{message}; {_TRY_ELSEWHERE} {noun}")
        if is_zarr_store(src) and _inside(out, src):
            # a file added to a store is one its readers (and roitrace) may trip on
            raise OutputError(
                f"{label} is inside {what} {path}{note}, a Zarr store: writing there would "
                f"change the store; {_TRY_ELSEWHERE} {noun}, outside the store"
            )


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (through links too), not being it."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real != top and real.is_relative_to(top)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (yet)
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_writable(
    output: str | os.PathLike,
    *,
    name: str = "path",
    label: str | None = None,
    folder: bool = False,
) -> None:
    """Raise :class:`~roitrace.errors.OutputError` now if ``output`` could not be
    written later, so that a long run does not come first.

    A file (or with ``folder``, a folder) is created the way :func:`atomic_path` and
    :func:`atomic_folder` create them, then removed, in the folder the output goes
    to: this catches a read-only or full-of-inodes folder, a read-only filesystem
    (for root too), a file where a folder is needed and a folder where a file is.
    Missing folders on the way are not created now (a run that fails leaves none
    behind); they are created when the output is written, which needs only the
    nearest existing one to be writable.
    """
    # Where the writers put their temporaries: atomic_path beside the path as given,
    # atomic_folder beside the real folder. Either way "." gets a name.
    final = Path(os.path.realpath(output) if folder else os.path.abspath(output))
    label = label if label is not None else f"{name} {output}"
    probes: list[Path] = []
    try:
        if folder:
            if os.path.lexists(final) and not final.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{final} is a file, not a folder")
        elif final.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        where = final.parent
        while not os.path.lexists(where) and where != where.parent:
            where = where.parent
        if not where.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{where} is a file, not a folder")
        folders = [where] + ([final] if folder and final.is_dir() else [])
        for f in folders:  # the staging folder and lock go beside a folder output
            # named as a temporary, should it be left behind, but told from the output's
            _make_temp(f / (final.name or "output"), ".probe", probes)
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None and exc.errno not in (errno.ENOTDIR, errno.EISDIR):
            why = f"cannot create a file in {Path(os.fsdecode(exc.filename)).parent}: {why}"
        raise OutputError(
            _one_line(
                f"{label}: could not write it ({why}); give a place you can write to "
                "(missing folders are created); nothing was read or written"
            )
        ) from exc
    finally:
        for p in probes:
            with contextlib.suppress(OSError):
                p.unlink()


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


def _make_temp(final: Path, suffix: str, made: list[Path], *, folder: bool = False) -> Path:
    """Create an empty, new temporary file (or with ``folder``, a folder, 0700) beside
    ``final`` (0666 less the umask) and return it.

    Its path is appended to ``made`` as soon as it exists, so that the caller can
    remove it after an interrupt (Ctrl-C) that lands before this function has
    returned; one that lands inside it, the name not yet in ``made``, is cleaned
    up here.
    """
    name = final.name
    while len(os.fsencode(name)) > 180:  # keep the temporary name under NAME_MAX (255)
        name = name[:-8]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = final.with_name(f".{name}{TMP_MARK}{secrets.token_hex(4)}.part{suffix}")
        try:
            if folder:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, flags, 0o666))
            made.append(tmp)
        except FileExistsError:  # another run picked the same name: draw again
            continue
        except OSError:  # nothing was created
            raise
        except BaseException:
            # Interrupted as or just after it was created (Python raises a Ctrl-C
            # as soon as a call returns). The name is fresh and random, so what
            # exists under it is ours; a new fd left open by the interrupt is the
            # lesser harm.
            with contextlib.suppress(OSError):
                if folder:
                    os.rmdir(tmp)
                else:
                    os.unlink(tmp)
            raise
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
