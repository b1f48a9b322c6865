"""The browser harness of tests/browser.py on small hand-written pages: it waits for
data-ready, fails with the page's own error, catches console errors, and is offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import console_errors, console_logs, open_page

pytest_plugins = ("browser",)  # the browser fixture


def page(tmp_path: Path, script: str, name: str = "page.html") -> Path:
    """A self-contained page running ``script`` once loaded."""
    path = tmp_path / name
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>harness</title></head>"
        "<body><canvas id='c' width='200' height='100'></canvas>"
        f"<script>{script}</script></body></html>",
        encoding="utf-8",
    )
    return path


READY = "document.documentElement.dataset.ready = 'true';"


def test_waits_for_data_ready(browser, tmp_path):
    path = page(tmp_path, f"setTimeout(() => {{ {READY} }}, 300);")
    seconds = open_page(browser, path)
    assert 0.3 <= seconds < 30
    assert browser.execute_script("return document.documentElement.dataset.ready") == "true"
    assert browser.get_window_size() == {"width": 1400, "height": 1000}


def test_a_clean_page_logs_no_error(browser, tmp_path):
    # what a report does: draw on a canvas, log, say it is ready; offline Chromium
    # adds no noise of its own to the console
    script = (
        "const g = document.getElementById('c').getContext('2d');"
        "g.fillStyle = '#c00'; g.fillRect(10, 10, 50, 50); console.log('drawn');" + READY
    )
    open_page(browser, page(tmp_path, script))
    assert console_errors(browser) == []


def test_page_error_fails_with_its_text(browser, tmp_path):
    path = page(tmp_path, "document.documentElement.dataset.error = 'no traces in the data';")
    with pytest.raises(pytest.fail.Exception, match="no traces in the data"):
        open_page(browser, path)


def test_a_page_never_ready_times_out(browser, tmp_path):
    with pytest.raises(pytest.fail.Exception, match="did not set data-ready within 1 s"):
        open_page(browser, page(tmp_path, "console.log('working');"), timeout=1)


def test_console_errors_are_caught(browser, tmp_path):
    script = (
        "console.error('drawing failed: no canvas');"
        "console.warn('only a warning');"
        f"{READY} setTimeout(() => {{ null.x; }}, 0);"
    )
    open_page(browser, page(tmp_path, script))
    browser.execute_script("return 1")  # the uncaught TypeError has been thrown by now
    errors = console_errors(browser)
    messages = " | ".join(e["message"] for e in errors)
    assert "drawing failed: no canvas" in messages
    assert "TypeError" in messages
    assert "only a warning" not in messages
    assert console_logs(browser) == []  # reading empties the log


def test_the_network_is_off(browser, tmp_path):
    script = (
        "const d = document.documentElement.dataset;"
        "fetch('http://example.com/').then(() => { d.net = 'fetched'; })"
        ".catch(e => { d.net = 'failed: ' + e; })"
        f".finally(() => {{ {READY} }});"
    )
    for name in ("first.html", "second.html"):  # still offline after a navigation
        open_page(browser, page(tmp_path, script, name))
        net = browser.execute_script("return document.documentElement.dataset.net")
        assert net.startswith("failed: TypeError"), net
        errors = " ".join(e["message"] for e in console_errors(browser))
        # the DevTools offline mode, not only the host-resolver switch, refused it
        assert "http://example.com/" in errors
        assert "ERR_INTERNET_DISCONNECTED" in errors
