"""The review page in Chromium: nothing lost silently, the queue, the timeline, keys and accessibility.

Each test opens the demo set's scan_a (liver 1.0-1.5, kidney 3.0-3.6 conf 0.4, NOT spleen 5.0-5.5,
bladder 6.5-6.9 by another speaker) or scan_b (gallbladder), drives it by keyboard and checks the review file.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

selenium = pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402

from tests.review.browser_kit import (  # noqa: E402
    js,
    key,
    loaded,
    needs_browser,
    rows,
    serving,
    video,
    wait,
)

pytestmark = needs_browser


def _review(labels_dir, scan="scan_a"):
    p = labels_dir / f"{scan}.review.json"
    return json.loads(p.read_text()) if p.exists() else {"decisions": {}, "reviewed": False}


def _decision(labels_dir, eid, scan="scan_a"):
    return _review(labels_dir, scan)["decisions"].get(eid)


def _open(browser, url, scan="scan_a"):
    browser.get(f"{url}/#/scan/{scan}")
    loaded(browser, scan)


def _put(server, path, body):
    req = urllib.request.Request(
        server + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="PUT"
    )
    return urllib.request.urlopen(req).status


def _banner(driver):
    return driver.execute_script("const b = document.getElementById('banner'); return b.hidden ? '' : b.innerText")


def test_relabel_then_accept_keeps_the_relabel(server, browser, labels_dir):
    _open(browser, server)
    assert not browser.find_element(By.ID, "banner").is_displayed()  # no failure: no banner
    eid = rows(browser)[0][0]
    key(browser, "3")
    wait(browser, lambda d: rows(d)[0][1:] == ["gallbladder", "edited"], what="relabel")
    key(browser, "a")
    wait(browser, lambda d: (_decision(labels_dir, eid) or {}).get("rev") == 2, what="accept saved")
    assert rows(browser)[0][1:] == ["gallbladder", "edited"]
    d = _decision(labels_dir, eid)
    assert (d["label"], d["status"]) == ("gallbladder", "edited")


def test_a_change_made_in_another_tab_shows_a_banner_and_retry_applies_mine(server, browser, labels_dir):
    _open(browser, server)
    eid = rows(browser)[0][0]
    req = urllib.request.Request(
        f"{server}/api/scans/scan_a/events/{eid}",
        data=json.dumps({"status": "edited", "label": "spleen", "rev": 0}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    assert urllib.request.urlopen(req).status == 200  # the other tab
    key(browser, "x")
    wait(browser, lambda d: "another tab" in _banner(d), what="409 banner")
    assert browser.find_element(By.ID, "banner").is_displayed()
    assert "Not saved: reject (liver" in _banner(browser)
    js(browser, "document.body.dataset.loaded = ''")
    browser.find_element(By.ID, "banner-retry").click()
    wait(browser, lambda d: _banner(d) == "", what="banner gone")
    d = _decision(labels_dir, eid)
    assert (d["status"], d["rev"]) == ("rejected", 2)
    assert rows(browser)[0][2] == "rejected"


def test_a_stopped_server_shows_a_banner_and_retry_saves_once_it_is_back(browser, labels_dir, manifest):
    with serving(labels_dir, manifest) as (url, stop):
        _open(browser, url)
        eid = rows(browser)[1][0]
        port = int(url.rsplit(":", 1)[1])
        stop()
        key(browser, "j")
        key(browser, "a")
        wait(browser, lambda d: "not reachable" in _banner(d), what="banner")
        assert "Not saved: accept (kidney" in _banner(browser)
        js(browser, "document.getElementById('status').textContent = 'ready'")  # later messages do not hide it
        assert "not reachable" in _banner(browser)
    with serving(labels_dir, manifest, port=port):
        browser.find_element(By.ID, "banner-retry").click()
        wait(browser, lambda d: _banner(d) == "", what="banner gone")
        assert _decision(labels_dir, eid)["status"] == "accepted"


def test_undo_survives_a_reload_and_undoes_a_mark_reviewed(server, browser, labels_dir):
    _open(browser, server)
    eid = rows(browser)[0][0]
    key(browser, "x")
    wait(browser, lambda d: _decision(labels_dir, eid) is not None, what="reject saved")
    browser.refresh()
    loaded(browser, "scan_a")
    key(browser, "u")
    wait(browser, lambda d: rows(d)[0][2] == "speech", what="undone after reload")
    assert _decision(labels_dir, eid) is None
    # m marks the scan reviewed and opens the next unreviewed scan; u undoes the mark and comes back
    key(browser, "m")
    loaded(browser, "scan_b")
    assert _review(labels_dir)["reviewed"] is True
    key(browser, "u")
    loaded(browser, "scan_a")
    assert _review(labels_dir)["reviewed"] is False
    assert browser.find_element(By.ID, "mark-reviewed").text.startswith("Mark scan reviewed")
    # the last unreviewed scan: m goes to the list, and u there still reopens it
    _put(server, "/api/scans/scan_b/reviewed", {"reviewed": True})
    key(browser, "m")
    loaded(browser, "list")
    key(browser, "u")
    loaded(browser, "scan_a")
    assert _review(labels_dir)["reviewed"] is False


def test_no_zero_length_event_and_keys_work_with_shift(server, browser, labels_dir):
    _open(browser, server)
    eid = rows(browser)[0][0]  # liver 1.0-1.5
    key(browser, "{" * 7)  # end earlier by 0.7 s: stops 0.05 s after the start
    wait(browser, lambda d: (_decision(labels_dir, eid) or {}).get("rev") == 7, what="nudges saved")
    d = _decision(labels_dir, eid)
    assert (d["start_s"], d["end_s"]) == (1.0, 1.05)
    assert _banner(browser) == ""
    key(browser, "J")  # Shift / Caps Lock: J is j
    key(browser, "A")
    wait(browser, lambda d: rows(d)[1][2] == "accepted", what="shifted keys")


def test_queue_filters_low_confidence_first_next_undecided_and_next_unreviewed(server, browser, labels_dir):
    _open(browser, server)

    def choose(sel_id, value):
        js(
            browser,
            "const s = document.getElementById(arguments[0]); s.value = arguments[1];"
            "s.dispatchEvent(new Event('change'))",
            sel_id,
            value,
        )

    choose("f-order", "confidence")
    assert [r[1] for r in rows(browser)] == ["kidney", "spleen", "bladder", "liver"]  # 0.4, 0.7, 0.8, 0.9
    key(browser, "a")  # a new order selects its first event: kidney
    wait(browser, lambda d: rows(d)[0][2] == "accepted", what="accept")
    choose("f-speaker", "other")
    assert [r[1] for r in rows(browser)] == ["bladder"]
    choose("f-speaker", "")
    choose("f-status", "speech")
    assert [r[1] for r in rows(browser)] == ["spleen", "bladder", "liver"]
    choose("f-status", "")
    choose("f-conf", "0.75")
    assert [r[1] for r in rows(browser)] == ["spleen"]  # undecided with confidence <= 0.75
    choose("f-conf", "1")
    assert js(browser, "return current().label") == "spleen"  # the only one shown: selected
    key(browser, ".")  # next undecided in the order (spleen 0.7, bladder 0.8, liver 0.9, kidney decided)
    assert js(browser, "return current().label") == "bladder"
    assert browser.find_element(By.ID, "scan-progress").text == "1 / 4 events decided"
    # scan_b reviewed elsewhere: > from the list opens scan_a, the only unreviewed one
    urllib.request.urlopen(
        urllib.request.Request(
            f"{server}/api/scans/scan_b/reviewed",
            data=b'{"reviewed": true}',
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
    )
    assert browser.find_element(By.ID, "progress").text == "reviewed 0 / 2 scans · 1 / 5 events decided"
    browser.get(server + "/#/")
    loaded(browser, "list")
    assert "reviewed 1 / 2 scans · 1 / 5 events decided" == browser.find_element(By.ID, "progress").text
    choose("s-label", "gallbladder")  # the list's filters: scans with a gallbladder event
    assert [tr.get_attribute("data-scan") for tr in browser.find_elements(By.CSS_SELECTOR, "#scan-table tbody tr")] == [
        "scan_b"
    ]
    choose("s-label", "")
    choose("s-status", "open")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scan-table tbody tr")) == 1
    choose("s-status", "")
    assert [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#scan-table tbody tr td:nth-child(4)")] == [
        "1/4",
        "0/1",
    ]
    key(browser, ">")
    loaded(browser, "scan_a")


def test_timeline_lanes_waveform_seek_zoom_speed_and_loop(server, browser, labels_dir):
    from selenium.webdriver.common.action_chains import ActionChains

    _open(browser, server)
    wait(
        browser, lambda d: js(d, "return document.getElementById('video').dataset.source") == "preview", what="preview"
    )
    js(browser, "seekTo(1.2)")
    key(browser, "e")  # added at 1.2-2.2: overlaps liver 1.0-1.5, so it goes to a second lane
    wait(browser, lambda d: any(r[2] == "added" for r in rows(d)), what="added")
    assert js(browser, "return [S.nLanes, S.lanes[S.sel]]") == [2, 1]
    assert "“" not in browser.find_element(By.CSS_SELECTOR, "#events .ev.added").text  # no quote: nothing was said
    wave = browser.find_element(By.ID, "wave")
    width = wave.size["width"]
    ActionChains(browser).move_to_element_with_offset(wave, int(width * 0.25) - width // 2, 0).click().perform()
    wait(browser, lambda d: abs(video(d, "currentTime") - 2.0) < 0.1, what="click to seek")  # 8 s scan, 1/4
    js(browser, "zoom(0.5, 4.0)")
    assert js(browser, "return S.view") == [2.0, 6.0]
    key(browser, "0")
    assert js(browser, "return S.view") is None
    key(browser, "++")
    assert video(browser, "playbackRate") == 1.5
    key(browser, "-")
    assert video(browser, "playbackRate") == 1.25
    key(browser, "k")  # back to liver (1.0-1.5), loop it
    key(browser, "l")
    seen = []
    for _ in range(40):
        seen.append(video(browser, "currentTime"))
        browser.implicitly_wait(0)
        js(browser, "return new Promise(r => setTimeout(r, 50))")
    assert max(seen) < 1.5 + 0.25 and min(seen[5:]) >= 1.0 - 0.05  # played, looped back, never ran on
    assert not video(browser, "paused")


def test_help_overlay_focusable_rows_announcement_and_contrast(server, browser, labels_dir):
    _open(browser, server)
    key(browser, "?")
    assert browser.find_element(By.ID, "help").is_displayed()
    key(browser, "\ue00c")  # Escape
    assert not browser.find_element(By.ID, "help").is_displayed()
    first = browser.find_elements(By.CSS_SELECTOR, "#events .ev")[0]
    assert first.get_attribute("tabindex") == "0" and first.get_attribute("aria-selected") == "true"
    first.send_keys("j")  # focus in the list: it follows the selection
    second = browser.find_elements(By.CSS_SELECTOR, "#events .ev")[1]
    assert browser.switch_to.active_element == second
    assert browser.find_element(By.ID, "announce").get_attribute("textContent").startswith("event 2 of 4: kidney")
    # WCAG AA: every visible text on the page has a contrast of at least 4.5:1 with what is behind it
    key(browser, "x")
    wait(browser, lambda d: rows(d)[1][2] == "rejected", what="a rejected row")
    worst = js(browser, CONTRAST_JS)
    assert worst["ratio"] >= 4.5, worst
    browser.get(server + "/#/")
    loaded(browser, "list")
    js(browser, "document.querySelector('#scan-table tbody tr').className = 'done'")
    worst = js(browser, CONTRAST_JS)
    assert worst["ratio"] >= 4.5, worst


CONTRAST_JS = """
const lum = (c) => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((x) => x / 255)
  .map((x) => (x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
const bg = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
  if (c && !c.endsWith(', 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
let worst = { ratio: 99 };
for (const el of document.querySelectorAll('body *')) {
  if (!el.offsetParent && el.tagName !== 'BODY') continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || ['SCRIPT', 'STYLE', 'OPTION'].includes(el.tagName)) continue;
  const st = getComputedStyle(el);
  const a = lum(st.color), b = lum(bg(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst.ratio) worst = { ratio, text: el.textContent.slice(0, 40), color: st.color, bg: bg(el) };
}
return worst;
"""
