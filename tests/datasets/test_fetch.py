"""Tests of roitrace.datasets.fetch against a local HTTP server (no test touches the internet)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pooch
import pytest
import tifffile

from roitrace.datasets.fetch import DATASETS, Dataset, cache_dir, fetch
from roitrace.errors import FetchError, ParameterError

FNAME = "single_cell.tif"
ENV_URL = "ROITRACE_FETCH_URL_SINGLE_CELL"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, counts GET requests and fakes a few failures."""

    server: _Server

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append(self.path)
        if self.path.startswith("/truncated"):
            # Promise more bytes than are sent, then hang up: an interrupted download.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"II*\x00" + b"\x00" * 60)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/unavailable"):
            self.send_error(503, "Service Unavailable")
            return
        super().do_GET()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        self.root = root
        self.lock = threading.Lock()
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))

    def url(self, name: str = FNAME) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def count(self, name: str = FNAME) -> int:
        with self.lock:
            return sum(path.lstrip("/") == name for path in self.requests)


def _write_movie(path: Path, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    tifffile.imwrite(path, rng.integers(0, 4096, size=(5, 8, 9), dtype=np.uint16))
    return path.read_bytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    srv = _Server(root)
    thread = threading.Thread(
        target=srv.serve_forever, args=(0.05,), name="test-http-server", daemon=True
    )
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


@pytest.fixture
def movie(server) -> bytes:
    """The bytes of the small TIFF the server serves as single_cell.tif."""
    return _write_movie(server.root / FNAME)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    """No test may see a real download URL or cache set in the environment."""
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv("ROITRACE_DATA_DIR", raising=False)


def _dead_url() -> str:
    """A URL on a local port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{FNAME}"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the registry and the cache folder ---------------------------------------------------


def test_registry_has_single_cell_without_invented_hash():
    entry = DATASETS["single-cell"]
    assert isinstance(entry, Dataset)
    assert entry.url == "https://uni-bonn.sciebo.de/s/QXTKzW6UGeozcUN/download"
    assert entry.fname == FNAME
    assert entry.sha256 is None
    assert entry.description


def test_cache_dir_default_and_env(monkeypatch, tmp_path):
    assert cache_dir() == Path(pooch.os_cache("roitrace")).absolute()
    monkeypatch.setenv("ROITRACE_DATA_DIR", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"


def test_env_data_dir_is_used_by_fetch(monkeypatch, server, movie, tmp_path):
    monkeypatch.setenv("ROITRACE_DATA_DIR", str(tmp_path / "envcache"))
    path = fetch(url=server.url())
    assert path == (tmp_path / "envcache" / FNAME).resolve()
    assert path.read_bytes() == movie


# --- downloading and caching -------------------------------------------------------------


def test_download_returns_same_bytes(server, movie, cache):
    path = fetch("single-cell", cache_dir=cache, url=server.url())
    assert isinstance(path, Path)
    assert path == (cache / FNAME).resolve()
    assert path.read_bytes() == movie
    np.testing.assert_array_equal(tifffile.imread(path), tifffile.imread(server.root / FNAME))
    assert server.count() == 1


def test_second_fetch_does_not_download_again(server, movie, cache):
    first = fetch(cache_dir=cache, url=server.url())
    second = fetch(cache_dir=cache, url=server.url())
    assert first == second
    assert second.read_bytes() == movie
    assert server.count() == 1


def test_env_var_overrides_registry_url(monkeypatch, server, movie, cache):
    monkeypatch.setenv(ENV_URL, server.url())
    path = fetch("single-cell", cache_dir=cache)
    assert path.read_bytes() == movie
    assert server.count() == 1


def test_url_argument_beats_env_var(monkeypatch, server, movie, cache):
    monkeypatch.setenv(ENV_URL, _dead_url())
    assert fetch(cache_dir=cache, url=server.url()).read_bytes() == movie


def test_name_is_normalised(server, movie, cache):
    assert fetch("Single_Cell", cache_dir=cache, url=server.url()).read_bytes() == movie


@pytest.mark.parametrize("block", [True, False])
def test_progress_without_tqdm_does_not_crash(monkeypatch, server, movie, cache, block):
    if block:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # "import tqdm" raises ImportError
    path = fetch(cache_dir=cache, url=server.url(), progress=True)
    assert path.read_bytes() == movie


def test_new_download_hash_is_logged_not_printed(server, movie, cache, caplog, capfd):
    with caplog.at_level(logging.INFO, logger="roitrace.datasets.fetch"):
        fetch(cache_dir=cache, url=server.url())
    assert _sha256(movie) in caplog.text
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""  # pooch's own stderr logging is silenced


# --- checksums ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "sha256:", "SHA256:"])
def test_known_hash_correct(server, movie, cache, prefix):
    path = fetch(cache_dir=cache, url=server.url(), known_hash=prefix + _sha256(movie))
    assert path.read_bytes() == movie
    fetch(cache_dir=cache, url=server.url(), known_hash=_sha256(movie).upper())
    assert server.count() == 1


def test_known_hash_other_algorithm(server, movie, cache):
    md5 = hashlib.md5(movie).hexdigest()
    path = fetch(cache_dir=cache, url=server.url(), known_hash=f"md5:{md5}")
    assert path.read_bytes() == movie


def test_known_hash_wrong_raises_and_leaves_nothing(server, movie, cache):
    wrong = "0" * 64
    with pytest.raises(FetchError) as info:
        fetch(cache_dir=cache, url=server.url(), known_hash=wrong)
    message = str(info.value)
    assert wrong in message
    assert _sha256(movie) in message
    assert "\n" not in message
    assert not (cache / FNAME).exists()
    assert _leftovers(cache) == []  # not even pooch's temporary file


def test_registry_hash_is_verified(monkeypatch, server, movie, cache):
    entry = dataclasses.replace(DATASETS["single-cell"], sha256="f" * 64)
    monkeypatch.setitem(DATASETS, "single-cell", entry)
    with pytest.raises(FetchError, match="DATASETS") as info:
        fetch(cache_dir=cache, url=server.url())
    assert _sha256(movie) in str(info.value)
    assert not (cache / FNAME).exists()

    entry = dataclasses.replace(entry, sha256=_sha256(movie))
    monkeypatch.setitem(DATASETS, "single-cell", entry)
    assert fetch(cache_dir=cache, url=server.url()).read_bytes() == movie


@pytest.mark.parametrize("bad", ["nothex", "md5:", "nosuchalg:abcd", 123])
def test_unusable_known_hash_is_parameter_error(cache, bad):
    with pytest.raises(ParameterError):
        fetch(cache_dir=cache, url=_dead_url(), known_hash=bad)


def test_tofu_sidecar_written(server, movie, cache):
    path = fetch(cache_dir=cache, url=server.url())
    sidecar = path.with_name(FNAME + ".sha256")
    assert sidecar.read_text() == f"{_sha256(movie)}  {FNAME}\n"
    assert _leftovers(cache) == sorted([FNAME, FNAME + ".sha256"])


def test_tofu_tampered_file_is_downloaded_again(server, movie, cache, caplog):
    path = fetch(cache_dir=cache, url=server.url())
    path.write_bytes(b"tampered")
    with caplog.at_level(logging.WARNING, logger="roitrace.datasets.fetch"):
        again = fetch(cache_dir=cache, url=server.url())
    assert "does not match" in caplog.text
    assert again.read_bytes() == movie
    assert server.count() == 2


def test_tofu_tampered_file_and_changed_server_raises(server, movie, cache):
    path = fetch(cache_dir=cache, url=server.url())
    path.write_bytes(b"tampered")
    changed = _write_movie(server.root / FNAME, seed=1)
    with pytest.raises(FetchError) as info:
        fetch(cache_dir=cache, url=server.url())
    message = str(info.value)
    assert _sha256(movie) in message  # the trusted hash
    assert _sha256(changed) in message  # the server's
    assert "\n" not in message
    # The trusted record is kept; the untrusted download is not under the final name.
    assert path.read_bytes() == b"tampered"
    assert (cache / (FNAME + ".sha256")).read_text().startswith(_sha256(movie))


def test_tofu_tampered_file_offline_raises(server, movie, cache):
    path = fetch(cache_dir=cache, url=server.url())
    path.write_bytes(b"tampered")
    with pytest.raises(FetchError, match="could not download"):
        fetch(cache_dir=cache, url=_dead_url(), timeout=5)


def test_sidecar_checks_a_fresh_download(server, movie, cache):
    path = fetch(cache_dir=cache, url=server.url())
    path.unlink()  # cache cleaned, sidecar kept
    _write_movie(server.root / FNAME, seed=2)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(cache_dir=cache, url=server.url())
    assert not path.exists()


def test_file_saved_by_hand_is_trusted_without_network(movie, cache):
    cache.mkdir()
    (cache / FNAME).write_bytes(movie)
    path = fetch(cache_dir=cache, url=_dead_url(), timeout=5)
    assert path.read_bytes() == movie
    assert (cache / (FNAME + ".sha256")).read_text().split()[0] == _sha256(movie)


def test_malformed_sidecar_raises(server, movie, cache):
    fetch(cache_dir=cache, url=server.url())
    (cache / (FNAME + ".sha256")).write_text("garbage\n")
    with pytest.raises(FetchError, match="delete it"):
        fetch(cache_dir=cache, url=server.url())


def test_known_hash_updates_stale_sidecar(server, movie, cache):
    fetch(cache_dir=cache, url=server.url())
    changed = _write_movie(server.root / FNAME, seed=3)
    path = fetch(cache_dir=cache, url=server.url(), known_hash=_sha256(changed))
    assert path.read_bytes() == changed
    # Later fetches without known_hash trust the explicitly verified file.
    assert fetch(cache_dir=cache, url=server.url()).read_bytes() == changed
    assert server.count() == 2


# --- errors ------------------------------------------------------------------------------


def test_unknown_name_lists_known_ones(cache):
    with pytest.raises(FetchError, match="unknown dataset 'nope'") as info:
        fetch("nope", cache_dir=cache)
    message = str(info.value)
    for known in DATASETS:
        assert repr(known) in message
    assert "\n" not in message
    assert not cache.exists()


def test_http_404(server, movie, cache):
    with pytest.raises(FetchError, match="HTTP 404") as info:
        fetch(cache_dir=cache, url=server.url("missing.tif"))
    message = str(info.value)
    assert server.url("missing.tif") in message
    assert str((cache / FNAME).resolve()) in message  # where to put a hand download
    assert "\n" not in message
    assert _leftovers(cache) == []


def test_other_http_error(server, cache):
    with pytest.raises(FetchError, match="HTTP 503"):
        fetch(cache_dir=cache, url=server.url("unavailable"))
    assert _leftovers(cache) == []


def test_connection_refused_is_quick(cache):
    url = _dead_url()
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(cache_dir=cache, url=url, timeout=2)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert url in message
    assert "by hand" in message
    assert str((cache / FNAME).resolve()) in message
    assert "\n" not in message
    assert not (cache / FNAME).exists()


def test_interrupted_download_leaves_nothing(server, cache):
    with pytest.raises(FetchError, match="could not download"):
        fetch(cache_dir=cache, url=server.url("truncated.tif"), timeout=5)
    assert _leftovers(cache) == []


def test_keyboard_interrupt_mid_download_leaves_nothing(monkeypatch, server, movie, cache):
    class Interrupted:
        def __init__(self, **kwargs):
            pass

        def __call__(self, url, output_file, pooch_):
            with open(output_file, "wb") as stream:
                stream.write(movie[:10])
            raise KeyboardInterrupt

    monkeypatch.setattr(pooch, "HTTPDownloader", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(cache_dir=cache, url=server.url())
    assert _leftovers(cache) == []


@pytest.mark.parametrize("bad", ["file:///tmp/x.tif", "not a url", ""])
def test_unusable_url_is_parameter_error(cache, bad):
    with pytest.raises(ParameterError):
        fetch(cache_dir=cache, url=bad)


@pytest.mark.parametrize("bad", [0, -1, "soon"])
def test_bad_timeout_is_parameter_error(cache, bad):
    with pytest.raises(ParameterError):
        fetch(cache_dir=cache, url=_dead_url(), timeout=bad)


def test_unwritable_cache_is_fetch_error(server, movie, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(FetchError, match="cache_dir="):
        fetch(cache_dir=blocker / "cache", url=server.url())


def test_options_are_keyword_only(cache):
    with pytest.raises(TypeError):
        fetch("single-cell", cache)  # type: ignore[misc]
