"""The review app in a real browser: Debian's headless Chromium driven by Selenium through the system chromedriver.

Open a demo-sized set, play, accept one event, relabel one, add one, reload; then check the review
file and the export. Skipped when chromium / chromedriver / selenium are absent (scripts/install.sh
installs them on Debian). Set SONOTELL_REVIEW_SCREENSHOT=path to keep a screenshot of the scan page.
"""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from sonotell.speech.lexicon import load_lexicon

selenium = pytest.importorskip("selenium")
from tests.review.browser_kit import key as _key  # noqa: E402
from tests.review.browser_kit import needs_browser, source, video, wait  # noqa: E402
from tests.review.browser_kit import rows as _rows  # noqa: E402

pytestmark = needs_browser
_wait = wait
_video, _source = video, source


def test_review_in_a_browser_play_accept_relabel_add_reload_export(server, browser, labels_dir, tmp_path):
    from selenium.webdriver.common.by import By

    from sonotell.review.store import export_reviewed

    browser.get(server + "/")
    _wait(
        browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "list", what="scan list"
    )
    assert browser.find_element(By.ID, "progress").text == "reviewed 0 / 2 scans · 0 / 5 events decided"
    browser.find_element(By.LINK_TEXT, "scan_a").click()
    _wait(
        browser,
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "scan_a",
        what="scan page",
    )
    assert [r[1] for r in _rows(browser)] == ["liver", "kidney", "spleen", "bladder"]

    # play: the browser copy (made on first open: H.264 with the narration inside) advances, sound decoded
    _wait(browser, lambda d: _source(d) == "preview", what="preview")
    browser.execute_script("document.getElementById('video').play()")
    _wait(browser, lambda d: _video(d, "currentTime") > 0.3, what="playback")
    _wait(browser, lambda d: _video(d, "webkitAudioDecodedByteCount") > 0, what="narration decoded")
    browser.execute_script("document.getElementById('video').pause()")

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
