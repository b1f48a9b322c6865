"""Download the example datasets (the teaching notebook's movie) with pooch.

:func:`fetch` downloads a dataset once into a local cache and returns the path of
the cached file; later calls return the cached file without touching the network.
:data:`DATASETS` lists the datasets it knows and :func:`cache_dir` says where the
cache lives (``ROITRACE_DATA_DIR`` moves it).

Integrity
---------
A dataset whose sha256 is recorded in :data:`DATASETS` (or given as
``known_hash=``) is checked by pooch on every download and every cache hit.
Where the registry does not know the hash yet (the ``single-cell`` movie's was
never recorded), :func:`fetch` uses *trust on first use*: the first download's
sha256 is written beside the file as ``<file>.sha256`` (``sha256sum`` format) and
every later call checks the cached file against it. A cached file that no longer
matches is downloaded again; when the server's file does not match either,
:class:`~roitrace.errors.FetchError` names both hashes. The hash of each new
download is logged (logger ``roitrace.datasets.fetch``, level INFO) so that a maintainer
can copy it into :data:`DATASETS`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FetchError, ParameterError

log = logging.getLogger(__name__)

__all__ = ["DATASETS", "Dataset", "cache_dir", "fetch"]

DATA_DIR_ENV = "ROITRACE_DATA_DIR"
"""Environment variable that moves the download cache (see :func:`cache_dir`)."""

URL_ENV_PREFIX = "ROITRACE_FETCH_URL_"
"""Prefix of the environment variables that override a dataset's URL."""

SIDECAR_SUFFIX = ".sha256"
"""Suffix of the file that records the sha256 trusted on first download."""

DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for the server to connect or send data before giving up."""

_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class Dataset:
    """One downloadable dataset of the registry :data:`DATASETS`.

    Attributes
    ----------
    url : str
        Where the file is downloaded from.
    fname : str
        The file's name in the cache folder.
    sha256 : str or None
        The file's SHA-256 digest (64 hex digits), or None while it is not known:
        the download is then trusted on first use (see :func:`fetch`).
    description : str
        One line on what the data are.
    """

    url: str
    fname: str
    sha256: str | None
    description: str


DATASETS: dict[str, Dataset] = {
    "single-cell": Dataset(
        # A Nextcloud/ownCloud public share: the share link + "/download" is the file.
        url="https://uni-bonn.sciebo.de/s/QXTKzW6UGeozcUN/download",
        fname="single_cell.tif",
        # Unknown: recorded on first download (trust on first use), see fetch().
        sha256=None,
        description=(
            "Calcium-imaging movie (time, y, x) of a single neuron, from the "
            "multi-pixel extraction teaching notebook."
        ),
    ),
}
"""The datasets :func:`fetch` knows, by name."""


def cache_dir() -> Path:
    """Return the folder where :func:`fetch` keeps downloaded datasets.

    Returns
    -------
    pathlib.Path
        ``$ROITRACE_DATA_DIR`` when that environment variable is set and not
        empty, else the operating system's cache folder for roitrace
        (``pooch.os_cache("roitrace")``, e.g. ``~/.cache/roitrace`` on Linux).
        The folder is not created here; :func:`fetch` creates it when it
        downloads.

    Examples
    --------
    >>> from roitrace.datasets.fetch import cache_dir
    >>> cache_dir().is_absolute()
    True
    """
    import pooch

    env = os.environ.get(DATA_DIR_ENV, "").strip()
    folder = Path(env).expanduser() if env else Path(pooch.os_cache("roitrace"))
    return folder.absolute()


def fetch(
    name: str = "single-cell",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    known_hash: str | None = None,
    progress: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download a dataset into the local cache (once) and return its path.

    The first call downloads the file with :func:`pooch.retrieve`; later calls
    check the cached copy and return it without downloading again. Downloads are
    atomic: pooch writes to a temporary file in the cache folder and renames it
    to the final name only once the download is complete and its checksum
    matches, so a failed or interrupted download never leaves a file under the
    final name.

    Checksums are handled as follows:

    * ``known_hash=``, if given, is the expected checksum; otherwise the
      registry's sha256 (:attr:`Dataset.sha256`) when known. The cached file and
      every download are verified against it; a cached file that does not match
      is downloaded again, and a download that does not match raises
      :class:`~roitrace.errors.FetchError`.
    * Otherwise (no hash known, as for ``single-cell``) the file is *trusted on
      first use*: after the first download its sha256 is saved in a sidecar file
      ``<file>.sha256`` next to it, and every later call verifies the cached file
      against that sidecar (re-downloading it on mismatch, and raising
      ``FetchError`` when the server's file does not match either). A file
      copied into the cache by hand, without a sidecar, is trusted and its
      sidecar written. Delete the file and its sidecar to trust a new version.

    The sha256 of every new download is logged (logger ``roitrace.datasets.fetch``,
    level INFO) so that a maintainer can record it in :data:`DATASETS`.

    Parameters
    ----------
    name : str, optional
        The dataset's name, a key of :data:`DATASETS` (case and ``_``/``-`` do
        not matter). Default ``"single-cell"``, the teaching notebook's movie
        ``single_cell.tif``.
    cache_dir : str or os.PathLike, optional
        Folder to keep the file in. Default: :func:`cache_dir`
        (``$ROITRACE_DATA_DIR`` or the system's cache folder).
    url : str, optional
        Download from this URL instead of the registry's (a mirror of the same
        file: the cache is keyed by the dataset's file name, not by the URL).
        Without it, the environment variable ``ROITRACE_FETCH_URL_<NAME>``
        (name upper-cased, ``-`` replaced by ``_``, e.g.
        ``ROITRACE_FETCH_URL_SINGLE_CELL``) overrides the registry's URL when set.
    known_hash : str, optional
        Expected checksum of the file: a sha256 hex digest, or
        ``"<algorithm>:<hex digest>"`` (e.g. ``"md5:..."``) as in pooch. Takes
        precedence over the registry and the sidecar.
    progress : bool, optional
        Show a download progress bar on stderr (needs ``tqdm``; without it the
        download proceeds without a bar). Default False.
    timeout : float, optional
        Seconds to wait for the server to connect or send data. Default 60.

    Returns
    -------
    pathlib.Path
        Absolute path of the cached file.

    Raises
    ------
    FetchError
        The name is unknown, the server could not be reached or answered with an
        HTTP error (404...), the file's checksum does not match, or the file
        could not be saved in the cache folder. The message says what to do,
        e.g. where to save a file downloaded by hand.
    ParameterError
        ``known_hash``, ``url`` or ``timeout`` cannot be used.

    Examples
    --------
    >>> from roitrace.datasets.fetch import DATASETS, fetch
    >>> sorted(DATASETS)
    ['single-cell']
    >>> DATASETS["single-cell"].fname
    'single_cell.tif'
    >>> path = fetch("single-cell")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'single_cell.tif'
    """
    key, dataset = _lookup(name)
    source = _source_url(key, dataset, url)
    expected, origin = _expected_hash(known_hash, dataset)
    timeout = _check_timeout(timeout)
    folder = _resolve_folder(cache_dir)
    target = folder / dataset.fname
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)

    if expected is None and (recorded := _read_sidecar(sidecar, target)) is not None:
        expected, origin = recorded, "sidecar"

    if target.is_file():
        if expected is None:
            # A file put here by hand (or whose sidecar was deleted): trust it now.
            digest = _file_hash(target, "sha256")
            _write_sidecar(sidecar, digest, target.name)
            log.info(
                "trusting the cached %s (sha256 %s) on first use; recorded it in %s",
                target,
                digest,
                sidecar,
            )
            return target
        if _file_hash(target, _algorithm(expected)) == _digest(expected):
            _sync_sidecar(sidecar, target, expected, origin)
            log.debug("using cached %s", target)
            return target
        log.warning(
            "cached %s does not match the %s %s; downloading it again",
            target,
            _describe_origin(origin, sidecar),
            expected,
        )

    digest = _download(
        key,
        source,
        target,
        expected,
        origin,
        sidecar,
        progress=progress,
        timeout=timeout,
    )
    if expected is None:
        _write_sidecar(sidecar, digest, target.name)
        log.info(
            "downloaded dataset %r from %s to %s; sha256 %s (no checksum was known: "
            "trusted on first use and recorded in %s; a maintainer can pin it with "
            "sha256=%r in roitrace.datasets.fetch.DATASETS[%r])",
            key,
            source,
            target,
            digest,
            sidecar,
            digest,
            key,
        )
    else:
        _sync_sidecar(sidecar, target, expected, origin, sha256=digest)
        log.info("downloaded dataset %r from %s to %s; sha256 %s", key, source, target, digest)
    return target


# --- resolving the arguments -------------------------------------------------------------


def _lookup(name: str) -> tuple[str, Dataset]:
    """Return the registry key and entry for ``name``, or raise FetchError."""
    if not isinstance(name, str):
        raise ParameterError(f"dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        known = ", ".join(repr(k) for k in sorted(DATASETS))
        raise FetchError(f"unknown dataset {name!r}: use one of the known datasets: {known}")
    return key, DATASETS[key]


def _url_env_var(key: str) -> str:
    return URL_ENV_PREFIX + key.upper().replace("-", "_")


def _source_url(key: str, dataset: Dataset, url: str | None) -> str:
    """``url`` if given, else ``$ROITRACE_FETCH_URL_<NAME>`` if set, else the registry's."""
    if url is None:
        url = os.environ.get(_url_env_var(key), "").strip() or dataset.url
    elif not isinstance(url, str) or not url.strip():
        raise ParameterError(f"url must be a non-empty string, got {url!r}")
    url = url.strip()
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in {"http", "https", "ftp", "sftp", "doi"}:
        raise ParameterError(
            f"cannot download {url!r}: the URL must start with http://, https://, ftp://, "
            "sftp:// or doi:"
        )
    return url


def _expected_hash(known_hash: str | None, dataset: Dataset) -> tuple[str | None, str | None]:
    """The checksum to verify against and where it comes from."""
    from pooch.hashes import ALGORITHMS_AVAILABLE

    if known_hash is not None:
        if not isinstance(known_hash, str):
            raise ParameterError(f"known_hash must be a string, got {type(known_hash).__name__}")
        known_hash = known_hash.strip()
        alg, _, value = known_hash.rpartition(":")
        alg = alg.lower() or "sha256"
        if alg not in ALGORITHMS_AVAILABLE:
            raise ParameterError(
                f"known_hash {known_hash!r} names an unknown algorithm {alg!r}: give a "
                "sha256 hex digest or 'algorithm:digest' (e.g. 'md5:...')"
            )
        if not _HEX_RE.fullmatch(value):
            raise ParameterError(
                f"known_hash {known_hash!r} is not a hex digest: give a sha256 hex digest "
                "or 'algorithm:digest'"
            )
        return known_hash, "known_hash"
    if dataset.sha256 is not None:
        return dataset.sha256, "registry"
    return None, None


def _check_timeout(timeout: float) -> float:
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ParameterError(f"timeout must be a number of seconds, got {timeout!r}") from None
    if not value > 0:
        raise ParameterError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return value


def _resolve_folder(folder: str | os.PathLike[str] | None) -> Path:
    if folder is None:
        return cache_dir().resolve()
    return Path(folder).expanduser().resolve()


# --- checksums ---------------------------------------------------------------------------


def _algorithm(known_hash: str) -> str:
    alg, _, _ = known_hash.rpartition(":")
    return alg.lower() or "sha256"


def _digest(known_hash: str) -> str:
    return known_hash.rpartition(":")[2].lower()


def _file_hash(path: str | os.PathLike[str], alg: str) -> str:
    import pooch

    return pooch.file_hash(str(path), alg=alg).lower()


def _describe_origin(origin: str | None, sidecar: Path) -> str:
    if origin == "registry":
        return "sha256 recorded in roitrace.datasets.fetch.DATASETS"
    if origin == "sidecar":
        return f"sha256 trusted on first download (recorded in {sidecar})"
    return "checksum given as known_hash"


def _read_sidecar(sidecar: Path, target: Path) -> str | None:
    """The sha256 recorded in ``sidecar``, or None when there is no sidecar."""
    try:
        text = sidecar.read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError(
            f"cannot read the checksum file {sidecar} ({exc}): delete it (and {target.name} "
            "if you do not trust it) and fetch again"
        ) from exc
    fields = text.split()
    if not fields or not _SHA256_RE.fullmatch(fields[0]):
        raise FetchError(
            f"the checksum file {sidecar} does not hold a sha256 digest: delete it (and "
            f"{target.name} if you do not trust it) and fetch again"
        )
    return fields[0].lower()


def _write_sidecar(sidecar: Path, digest: str, fname: str) -> None:
    """Write ``sidecar`` atomically, in ``sha256sum`` format."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{sidecar.name}.", suffix=".part", dir=sidecar.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as stream:
                stream.write(f"{digest}  {fname}\n")
            os.replace(tmp, sidecar)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise FetchError(
            f"could not write the checksum file {sidecar} ({exc}): make the folder "
            f"writable or choose another one with cache_dir= or ${DATA_DIR_ENV}"
        ) from exc


def _sync_sidecar(
    sidecar: Path,
    target: Path,
    expected: str,
    origin: str | None,
    *,
    sha256: str | None = None,
) -> None:
    """After a file was verified against a given hash, keep its sidecar in step."""
    if origin == "sidecar":
        return
    if sha256 is None:
        if _algorithm(expected) == "sha256":
            sha256 = _digest(expected)
        elif sidecar.exists():
            sha256 = _file_hash(target, "sha256")
        else:
            return
    try:
        current = sidecar.read_text(encoding="ascii").split()[:1]
    except (OSError, UnicodeDecodeError):
        current = []
    if current != [sha256]:
        _write_sidecar(sidecar, sha256, target.name)


# --- downloading -------------------------------------------------------------------------


class _DropInfo(logging.Filter):
    """Drop pooch's INFO records (it logs them straight to stderr); we log our own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _quiet_pooch():
    import pooch

    logger = pooch.get_logger()
    flt = _DropInfo()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def _make_downloader(source: str, *, progress: bool, timeout: float) -> Any:
    """A pooch downloader for ``source`` that closes every HTTP response it opens.

    pooch's HTTPDownloader streams the response and does not close it when the
    server answers with an error or the download is interrupted; the socket would
    then be closed by the garbage collector, with a ResourceWarning. A requests
    response hook records the responses so that they are closed in all cases.
    """
    import pooch

    bar = bool(progress)
    if bar and not _tqdm_available():
        log.info("tqdm is not installed: downloading without a progress bar")
        bar = False
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    responses: list[Any] = []

    def record(response: Any, *args: Any, **kwargs: Any) -> Any:
        responses.append(response)
        return response

    try:
        if scheme in {"http", "https"}:
            inner = pooch.HTTPDownloader(
                progressbar=bar, timeout=timeout, hooks={"response": [record]}
            )
        elif scheme == "ftp":
            inner = pooch.FTPDownloader(progressbar=bar, timeout=timeout)
        elif scheme == "doi":
            inner = pooch.DOIDownloader(progressbar=bar, timeout=timeout)
        else:
            inner = pooch.choose_downloader(source, progressbar=bar)
    except ValueError as exc:  # e.g. sftp:// without paramiko
        raise ParameterError(f"cannot download {source!r}: {exc}") from exc

    def downloader(url: str, output_file: Any, pooch_: Any) -> None:
        try:
            inner(url, output_file, pooch_)
        finally:
            while responses:
                responses.pop().close()

    return downloader


def _short_reason(exc: BaseException) -> str:
    """A one-line reason for a requests error, without urllib3's pool details."""
    import requests

    reason: Any = exc
    if isinstance(exc, requests.ConnectionError) and exc.args:
        inner = getattr(exc.args[0], "reason", None)  # urllib3 MaxRetryError
        if inner is not None:
            reason = inner
    text = str(reason) or type(reason).__name__
    if isinstance(reason, Exception) and reason is not exc:
        # "HTTPConnection(host=..., port=...): Failed to establish ...": drop the prefix.
        text = text.split("): ", 1)[-1]
    return " ".join(text.split())


def _download(
    key: str,
    source: str,
    target: Path,
    expected: str | None,
    origin: str | None,
    sidecar: Path,
    *,
    progress: bool,
    timeout: float,
) -> str:
    """Download ``source`` to ``target`` with pooch; return the file's sha256."""
    import pooch
    import requests

    downloader = _make_downloader(source, progress=progress, timeout=timeout)
    seen: dict[str, str] = {}
    alg = _algorithm(expected) if expected is not None else "sha256"

    def hashing_downloader(url: str, output_file: Any, pooch_: Any) -> None:
        downloader(url, output_file, pooch_)
        seen["sha256"] = _file_hash(output_file, "sha256")
        seen["got"] = seen["sha256"] if alg == "sha256" else _file_hash(output_file, alg)

    by_hand = f"download it by hand from {source} and save it as {target}"
    log.info("downloading dataset %r from %s to %s", key, source, target)
    try:
        with _quiet_pooch():
            pooch.retrieve(
                source,
                known_hash=expected,
                fname=target.name,
                path=target.parent,
                downloader=hashing_downloader,
            )
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        reason = (exc.response.reason if exc.response is not None else "") or "error"
        if status == 404:
            raise FetchError(
                f"HTTP 404 (not found) for {source}: dataset {key!r} is no longer at that "
                f"address; pass the current link as url= (or set {_url_env_var(key)}), "
                f"or {by_hand}"
            ) from exc
        raise FetchError(
            f"HTTP {status} ({reason}) from {source} while downloading dataset {key!r}: "
            f"try again later, or {by_hand}"
        ) from exc
    except requests.RequestException as exc:
        raise FetchError(
            f"could not download dataset {key!r} from {source} ({_short_reason(exc)}): "
            f"check the network connection, or {by_hand}"
        ) from exc
    except ValueError as exc:
        if expected is None or "got" not in seen:
            raise FetchError(f"could not download dataset {key!r} from {source}: {exc}") from exc
        if origin == "registry":
            advice = (
                "try again; if the file changed on purpose, report it to the roitrace "
                "maintainers or pass the new hash as known_hash="
            )
        elif origin == "sidecar":
            advice = (
                "the file on the server changed since it was first downloaded; if you "
                f"trust the new version, delete {target} and {sidecar} and fetch again"
            )
        else:
            advice = "check the known_hash you passed, or try again"
        raise FetchError(
            f"checksum mismatch for dataset {key!r} downloaded from {source}: {alg} is "
            f"{seen['got']} but the {_describe_origin(origin, sidecar)} is "
            f"{_digest(expected)}; the download was discarded; {advice}"
        ) from exc
    except OSError as exc:
        raise FetchError(
            f"could not save dataset {key!r} in {target.parent} ({exc}): choose a writable "
            f"folder with cache_dir= or ${DATA_DIR_ENV}"
        ) from exc
    if "sha256" not in seen:  # pooch found the file after all (written concurrently)
        seen["sha256"] = _file_hash(target, "sha256")
    return seen["sha256"]
