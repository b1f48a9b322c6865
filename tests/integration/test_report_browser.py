"""The report in a real browser: Debian's Chromium, offline, from ``file://``.

Opens the report of a real recording (../shared/data/thunder-mouse), checks that the
page draws without a console error, that every ROI has its ``[data-roi]`` row, that
sorting and filtering the table and opening a ROI (from the table and from the image)
work, by reading the DOM; saves screenshots (``ROITRACE_SCREENSHOTS=folder`` keeps them).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import roitrace as rt
from browser import console_errors, open_page
from roitrace.result import result_frame_shape, result_rois

pytest_plugins = ("browser",)


def _shot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    keep = os.environ.get("ROITRACE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


@pytest.fixture(scope="module")
def thunder(mouse_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("thunder-report")
    movie = rt.open_movie(mouse_path, frame_rate=10.0)
    with warnings.catch_warnings():  # r not converged, F0 <= 0: what the flags report
        warnings.simplefilter("ignore")
        rois = rt.find_rois(movie, method="otsu", min_size=5)
        ds = rt.extract(
            movie, rois, neuropil={"gap": 1, "width": 3}, neuropil_factor="estimate",
            deconvolve=True,
        )  # fmt: skip
        rt.save(ds, folder / "mouse.nc")
        page = rt.report(folder / "mouse.nc", folder / "report.html", movie=mouse_path)
    qc = json.loads((folder / "quality_control.json").read_text())
    return page, ds, qc


def _rows(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#roi-table tbody tr')]"
        ".filter(r => !r.hidden).map(r => r.dataset.roi)"
    )


def _panel(driver) -> str:
    return driver.execute_script("return document.getElementById('roi-panel').dataset.roi")


def _ink(driver, selector: str) -> int:
    """Pixels of a canvas that are not blank: it was drawn."""
    return driver.execute_script(
        """const c = document.querySelector(arguments[0]);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++;
        return k;""",
        selector,
    )


def test_thunder_report_in_chromium(browser, thunder, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page, ds, qc = thunder
    seconds = open_page(browser, page)
    assert seconds < 30
    assert console_errors(browser) == []
    ids = [str(i) for i in ds["roi"].values.tolist()]
    # every ROI has its element, in the result's order
    assert _rows(browser) == ids
    assert browser.execute_script(
        "return document.querySelectorAll('#roi-table tbody tr[data-roi]').length"
    ) == len(ids)
    # the summary counts every flag as the quality file does
    for name, flag in qc["flags"].items():
        chip = browser.find_element(By.CSS_SELECTOR, f'.flag-chip[data-flag="{name}"]')
        assert chip.text == f"{name}: {flag['count'] if flag['evaluated'] else 'n/a'}"
    _shot(browser, tmp_path, "thunder-report")

    # sorting: by peak SNR, ascending then descending
    snr = {str(r["id"]): r["metrics"]["peak_snr"] for r in qc["rois"]}
    header = browser.find_element(By.CSS_SELECTOR, '#roi-table th[data-key="peak_snr"]')
    header.click()
    assert _rows(browser) == sorted(ids, key=lambda i: (snr[i], int(i)))
    header.click()
    assert [snr[i] for i in _rows(browser)] == sorted(snr.values(), reverse=True)

    # filtering by flag, by text, by a metric's range; clearing
    flagged = {str(r["id"]) for r in qc["rois"] if "neuropil_not_converged" in r["flags"]}
    assert flagged, "Thunder's estimated r leaves some ROIs unconverged"
    Select(browser.find_element(By.ID, "filter-flag")).select_by_value("neuropil_not_converged")
    assert set(_rows(browser)) == flagged
    Select(browser.find_element(By.ID, "filter-flag")).select_by_value("none")
    clean = {str(r["id"]) for r in qc["rois"] if not r["flags"]}
    assert set(_rows(browser)) == clean
    browser.find_element(By.ID, "filter-clear").click()
    assert len(_rows(browser)) == len(ids)
    low = browser.find_element(By.CSS_SELECTOR, 'input[data-metric="npix"][data-side="min"]')
    low.send_keys("9")
    npix = {str(r["id"]): r["metrics"]["npix"] for r in qc["rois"]}
    assert set(_rows(browser)) == {i for i in ids if npix[i] >= 9}
    browser.find_element(By.ID, "filter-clear").click()
    browser.find_element(By.ID, "filter-text").send_keys(ids[-1])
    assert ids[-1] in _rows(browser)
    browser.find_element(By.ID, "filter-clear").click()

    # opening a ROI from the table: its panel, traces and crop are drawn
    target = ids[len(ids) // 2]
    browser.find_element(By.CSS_SELECTOR, f'#roi-table tr[data-roi="{target}"]').click()
    assert _panel(browser) == target
    title = browser.find_element(By.ID, "panel-title").text
    assert title.startswith(f"ROI {target}")
    flags = next(r["flags"] for r in qc["rois"] if str(r["id"]) == target)
    shown = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#panel-flags .badge")]
    assert shown == flags
    assert _ink(browser, '#plots canvas[data-plot="dF/F"]') > 1000
    assert _ink(browser, "#crop") > 1000
    browser.execute_script("document.getElementById('roi-panel').scrollIntoView()")
    _shot(browser, tmp_path, "thunder-panel")

    # opening a ROI from the image: click on its centroid
    k = len(ids) - 1
    rois = result_rois(ds)
    others = np.zeros(result_frame_shape(ds), bool)
    for j, r in enumerate(rois):
        if j != k:
            others[r.y, r.x] = True
    own = [(y, x) for y, x in zip(rois[k].y, rois[k].x, strict=True) if not others[y, x]]
    py, px = own[len(own) // 2]
    canvas = browser.find_element(By.ID, "overview")
    browser.execute_script("arguments[0].scrollIntoView()", canvas)
    size = canvas.size["width"]
    scale = size / max(result_frame_shape(ds))
    scrolled = browser.execute_script("return window.scrollY")
    ActionChains(browser).move_to_element_with_offset(
        canvas, int((px + 0.5) * scale - size / 2), int((py + 0.5) * scale - size / 2)
    ).click().perform()
    assert _panel(browser) == ids[k]
    # the table scrolls in its own box; the page stays where the image is
    assert browser.execute_script("return window.scrollY") == scrolled
    assert (
        browser.find_element(By.CSS_SELECTOR, "#roi-table tr.selected").get_attribute("data-roi")
        == ids[k]
    )
    # keyboard: the ROI above in the table as it is sorted now (by peak SNR)
    order = _rows(browser)
    browser.find_element(By.TAG_NAME, "body").send_keys("k")
    assert _panel(browser) == order[order.index(ids[k]) - 1]
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    assert _panel(browser) == ids[k]
    # the ids of the ROIs shown, in the table's order, to copy into a script
    Select(browser.find_element(By.ID, "filter-flag")).select_by_value("none")
    browser.find_element(By.ID, "export-ids").click()
    box = browser.find_element(By.ID, "export-box")
    assert box.get_attribute("value").split(", ") == _rows(browser)
    assert console_errors(browser) == []


def test_large_simulated_report_opens(browser, tmp_path):
    """2000 ROIs: every row is there and the page draws without an error."""
    from test_report import _benchmark

    ds = _benchmark("report_size").simulated_result(2000, 3000, seed=1, deconvolve=False)
    page = rt.report(ds, tmp_path / "big.html")
    seconds = open_page(browser, page, timeout=120)
    assert console_errors(browser) == []
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#roi-table tbody tr[data-roi]').length"
        )
        == 2000
    )
    _shot(browser, tmp_path, "large-report")
    assert seconds < 60
