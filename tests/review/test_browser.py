"""The review app in a real browser: Debian's headless Chromium driven by Selenium through the system chromedriver.

Open a demo-sized set, play, accept one event, relabel one, add one, reload; then check the review
file and the export. Skipped when chromium / chromedriver / selenium are absent (scripts/install.sh
installs them on Debian). Set SONOTELL_REVIEW_SCREENSHOT=path to keep a screenshot of the scan page.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from sonotell.speech.lexicon import load_lexicon

selenium = pytest.importorskip("selenium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and Path(CHROMEDRIVER).exists()), reason="Debian chromium + chromium-driver not installed"
)


@pytest.fixture
def server(labels_dir, manifest):
    import uvicorn

    from sonotell.review.app import create_app

    app = create_app(labels_dir, manifest, reviewer="tester")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1400,900",
    ):
        opts.add_argument(arg)
    # The system chromedriver, named explicitly: Selenium Manager never downloads a driver.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, cond, timeout=30, what=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: cond(d), what)


def _rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#events .ev')]"
        ".map(r => [r.dataset.id, r.dataset.label, r.dataset.status])"
    )


def _key(driver, key):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def test_review_in_a_browser_play_accept_relabel_add_reload_export(server, browser, labels_dir, tmp_path):
    from selenium.webdriver.common.by import By

    from sonotell.review.store import export_reviewed

    browser.get(server + "/")
    _wait(
        browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "list", what="scan list"
    )
    assert browser.find_element(By.ID, "progress").text == "reviewed 0 / 2"
    browser.find_element(By.LINK_TEXT, "scan_a").click()
    _wait(
        browser,
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "scan_a",
        what="scan page",
    )
    assert [r[1] for r in _rows(browser)] == ["liver", "kidney", "spleen", "bladder"]

    # play: the video advances
    browser.execute_script("document.getElementById('video').play()")
    _wait(
        browser,
        lambda d: d.execute_script("return document.getElementById('video').currentTime") > 0.3,
        what="playback",
    )
    # the manifest's separate wav plays along with the video (muted by the browser flag, but its clock runs)
    _wait(
        browser, lambda d: d.execute_script("return document.getElementById('audio').currentTime") > 0.2, what="audio"
    )
    browser.execute_script("document.getElementById('video').pause()")
    _wait(browser, lambda d: d.execute_script("return document.getElementById('audio').paused"), what="audio pauses")

    # accept the first event (click it, key a), relabel the next (j, then 3 = gallbladder)
    browser.find_elements(By.CSS_SELECTOR, "#events .ev")[0].click()
    _key(browser, "a")
    _wait(browser, lambda d: _rows(d)[0][2] == "accepted", what="accepted")
    _key(browser, "j")
    _key(browser, "3")
    _wait(browser, lambda d: _rows(d)[1][1:] == ["gallbladder", "edited"], what="relabelled")

    # add one at the play head: click a transcript word to seek there, key e (label: the last used)
    word = next(w for w in browser.find_elements(By.CSS_SELECTOR, "#transcript .word") if w.text.strip() == "big")
    t_word = float(word.get_attribute("data-t"))
    word.click()
    _wait(
        browser,
        lambda d: abs(d.execute_script("return document.getElementById('video').currentTime") - t_word) < 0.05,
        what="seek",
    )
    _key(browser, "e")
    _wait(browser, lambda d: any(r[2] == "added" for r in _rows(d)), what="added")

    shot = os.environ.get("SONOTELL_REVIEW_SCREENSHOT")
    browser.refresh()
    _wait(
        browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "scan_a", what="reload"
    )
    rows = _rows(browser)
    assert [r[2] for r in rows].count("added") == 1 and rows[0][2] == "accepted"
    assert ["gallbladder", "edited"] in [r[1:] for r in rows]
    if shot:
        browser.execute_script("document.getElementById('video').currentTime = 1.2")
        browser.find_elements(By.CSS_SELECTOR, "#events .ev")[1].click()
        time.sleep(1.0)
        browser.save_screenshot(shot)

    review = json.loads((labels_dir / "scan_a.review.json").read_text())
    statuses = sorted(d["status"] for d in review["decisions"].values())
    assert statuses == ["accepted", "added", "edited"]
    added = next(d for d in review["decisions"].values() if d["status"] == "added")
    assert added["label"] == "gallbladder" and abs(added["start_s"] - t_word) < 0.05 and added["by"] == "tester"

    export_reviewed(labels_dir, tmp_path / "reviewed")
    frames = pd.read_csv(tmp_path / "reviewed" / "scan_a.labels.csv", keep_default_na=False)
    names = load_lexicon("abdominal").labels
    confidence = [f"confidence:{n}" for n in names]
    assert list(frames.columns) == ["scan_id", "frame_index", "time_s", *names, *confidence, "source"]

    def at(t):  # the frame at t seconds (10 fps)
        return frames.iloc[round(t * 10)]

    assert (at(3.3)["gallbladder"], at(3.3)["kidney"], at(3.3)["source"]) == ("present", "unknown", "reviewed")
    assert (at(t_word + 0.5)["gallbladder"], at(t_word + 0.5)["source"]) == ("present", "reviewed")  # the added event
    assert at(5.2)["spleen"] == "absent" and "present" not in set(at(5.2)[names])  # "no spleen": stated absent
    assert at(0.2)["source"] == "speech"
