"""Every scan plays in Chromium: the videos archives hold (MPEG-4 Part 2, H.264, GIF, DICOM cine) through the
browser preview made on first open, with the narration inside it; a video that cannot be played at all leaves the
narration playing alone, and the page says so."""

from __future__ import annotations

import pytest

selenium = pytest.importorskip("selenium")
from tests.review.browser_kit import js, key, loaded, needs_browser, serving, source, video, wait  # noqa: E402
from tests.review.media_kit import sweep, use_video, write_scan_video  # noqa: E402

pytestmark = needs_browser


@pytest.mark.parametrize("kind", ["mpeg4", "h264", "gif", "dicom"])
def test_every_scan_plays_with_its_narration(browser, labels_dir, manifest, kind):
    use_video(manifest, "scan_a", write_scan_video(kind, manifest.parent, sweep(80), 10))
    with serving(labels_dir, manifest) as (url, _):
        browser.get(url + "/#/scan/scan_a")
        loaded(browser, "scan_a")
        wait(browser, lambda d: source(d) == "preview", what="preview")
        assert (labels_dir / "cache" / "previews" / "scan_a.mp4").is_file()
        js(browser, "document.getElementById('video').focus()")  # its own controls must not toggle a second time
        key(browser, " ")  # space plays: video and narration are one element
        wait(browser, lambda d: video(d, "currentTime") > 0.5, what="playback")
        wait(browser, lambda d: video(d, "webkitAudioDecodedByteCount") > 0, what="narration")
        assert video(browser, "error") is None and video(browser, "videoWidth") == 160
        key(browser, " ")
        wait(browser, lambda d: video(d, "paused"), what="pause")
    # a second server reuses the cached preview: the page gets it at once
    with serving(labels_dir, manifest) as (url, _):
        browser.get(url + "/#/scan/scan_a")
        loaded(browser, "scan_a")
        assert source(browser) == "preview"


def test_a_video_that_cannot_be_played_leaves_the_narration_playing_and_says_so(browser, labels_dir, manifest):
    broken = manifest.parent / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    use_video(manifest, "scan_a", broken)
    with serving(labels_dir, manifest) as (url, _):
        browser.get(url + "/#/scan/scan_a")
        loaded(browser, "scan_a")
        note = browser.find_element("id", "media-note")
        wait(browser, lambda d: "narration plays alone" in note.text, what="note")
        assert "cannot be played" in note.text
        key(browser, " ")
        wait(browser, lambda d: js(d, "return document.getElementById('audio').currentTime") > 0.5, what="narration")
        # the play head follows the narration's clock
        assert js(browser, "return playhead()") > 0.5


def test_without_a_preview_the_separate_narration_follows_speed_seek_and_mute(browser, labels_dir, manifest, tmp_path):
    # no preview can be written (the cache is a file): the page plays the webm and keeps the wav in sync itself
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")
    with serving(labels_dir, manifest, cache_dir=blocked) as (url, _):
        browser.get(url + "/#/scan/scan_a")
        loaded(browser, "scan_a")
        key(browser, "++++")  # 2x
        assert video(browser, "playbackRate") == 2
        key(browser, " ")
        wait(browser, lambda d: video(d, "currentTime") > 3.0, what="playback at 2x")
        t_video, t_audio, rate = js(
            browser,
            "const a = document.getElementById('audio'), v = document.getElementById('video');"
            "return [v.currentTime, a.currentTime, a.playbackRate]",
        )
        assert source(browser) == "" and rate == 2 and abs(t_video - t_audio) < 0.25
        js(browser, "document.getElementById('video').muted = true")
        wait(browser, lambda d: js(d, "return document.getElementById('audio').muted"), what="mute follows")
        key(browser, " ")
        wait(browser, lambda d: js(d, "return document.getElementById('audio').paused"), what="pause follows")
