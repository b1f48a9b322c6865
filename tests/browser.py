"""A headless, offline Chromium for the tests of pages roitrace writes (the HTML report).

Debian's Chromium and chromedriver (``/usr/bin/chromium``, ``/usr/bin/chromedriver``;
packages ``chromium`` and ``chromium-driver``, which ``.ci/run`` installs) driven by
Selenium 4; tests that need them are skipped when any of the three is absent.

Use the ``browser`` fixture by naming this module a plugin of the test module, and
import the helpers::

    from browser import console_errors, open_page

    pytest_plugins = ("browser",)

    def test_report_opens(browser, tmp_path):
        seconds = open_page(browser, tmp_path / "report.html")
        assert console_errors(browser) == []

* ``browser``: a Selenium ``WebDriver``, shared by the whole session (Chromium takes
  about a second to start); before each test it shows ``about:blank`` and its
  console log is emptied, so that :func:`console_errors` sees that test's messages
  only. The network is off: no page can fetch anything.
* :func:`open_page`: load a local file and wait until the page says it has
  rendered (``document.documentElement.dataset.ready == "true"``), failing with the
  page's own text when it sets ``dataset.error`` instead.
* :func:`console_errors`: the SEVERE entries of the console log since it was last
  read (JavaScript errors, uncaught exceptions, failed loads).

Outside pytest (``benchmarks/report_size.py``): :func:`skip_reason` says why no
browser can start (None when one can), :func:`new_driver` starts one; quit it.

PYTEST_DONT_REWRITE: the test module imports this one before pytest loads it as a
plugin, too late for assertion rewriting (which it does not need: it has no assert),
and pytest would warn, an error under this project's ``filterwarnings``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOT_INSTALLED = (
    "Chromium and chromedriver not installed (Debian packages chromium, chromium-driver; "
    ".ci/run installs them)"
)
WINDOW = (1400, 1000)

#: Chromium's switches: headless, nothing started in the background, no network
#: service worth the name (the CDP switch below turns the network off for the page).
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    # belt and braces with the CDP offline mode: no name resolves
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def skip_reason() -> str | None:
    """Why no browser can start here, or None when one can."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return NOT_INSTALLED
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def new_driver(profile: str | Path, *, window: tuple[int, int] = WINDOW) -> Any:
    """A headless Chromium under chromedriver, offline, its console log captured.

    ``profile``: an empty folder for the user data (the caller removes it after
    ``driver.quit()``). Selenium Manager is never run (it would look for, and may
    download, a driver): the driver's and the browser's paths are both given.
    """
    # read only by Selenium Manager, which the explicit paths skip; set all the same
    os.environ.setdefault("SE_AVOID_STATS", "true")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ARGUMENTS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        go_offline(driver)
    except BaseException:
        driver.quit()
        raise
    return driver


def go_offline(driver: Any) -> None:
    """Turn the network off for the driver's page (Chrome DevTools Protocol): every
    request fails with ``net::ERR_INTERNET_DISCONNECTED``; ``file://`` still loads."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def console_logs(driver: Any) -> list[dict[str, Any]]:
    """The console log since it was last read (reading empties it): dicts with
    ``level`` ("SEVERE", "WARNING", "INFO"...), ``message``, ``source``, ``timestamp``."""
    return list(driver.get_log("browser"))


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The SEVERE entries of :func:`console_logs` (reading empties the log)."""
    return [e for e in console_logs(driver) if e.get("level") == "SEVERE"]


def open_page(driver: Any, path: str | Path, timeout: float = 60) -> float:
    """Load the local file ``path`` and wait until it has rendered; its seconds.

    Rendered: the page sets ``document.documentElement.dataset.ready = "true"``. A
    page that sets ``dataset.error`` instead fails the test with that text, and so
    does one that sets neither within ``timeout`` seconds.
    """
    from selenium.common.exceptions import TimeoutException

    url = Path(path).resolve().as_uri()
    script = (
        "const d = document.documentElement && document.documentElement.dataset;"
        "return d ? [d.ready || null, d.error || null] : [null, null];"
    )
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(timeout)  # a page busy rendering answers late
    start = time.perf_counter()
    try:
        driver.get(url)
    except TimeoutException:
        pytest.fail(f"{url} did not load within {timeout} s")
    while True:
        ready, error = driver.execute_script(script)
        elapsed = time.perf_counter() - start
        if error is not None:
            pytest.fail(f"{url} reported an error: {error}")
        if ready == "true":
            return elapsed
        if elapsed > timeout:
            pytest.fail(
                f"{url} did not set data-ready within {timeout} s "
                f"(data-ready is {ready!r}); console: {console_logs(driver)}"
            )
        time.sleep(0.05)


@pytest.fixture(scope="session")
def browser_session() -> Iterator[Any]:
    """One offline headless Chromium for the session; quit at its end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="roitrace-chromium-")
    try:
        driver = new_driver(profile)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(browser_session: Any) -> Any:
    """The session's browser on a blank page, its console log emptied."""
    browser_session.get("about:blank")
    console_logs(browser_session)
    return browser_session
