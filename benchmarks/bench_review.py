"""Benchmark: how fast the review app opens a large scan and saves a decision.

One synthetic labels folder with a single hour-long scan (25 fps, 90,000 frame rows), 5,000 events
and 5,000 words; no media (the page's data only). A *cold open* is what the scan page asks for first
on a server that has not read the scan yet: the scan's data, the first page of events (1,000) and of
words (5,000). A *warm open* repeats it. A *save* is one relabel (PUT) written to the review file,
then the next page of events that reflects it. Each figure: the median of ``--repeats`` runs
(a new server each cold run), wall and CPU seconds of this process (the server's threads included).

    python benchmarks/bench_review.py              # 5 repeats
    python benchmarks/bench_review.py --repeats 3
    python benchmarks/bench_review.py --browser 40 # also: redraw time per change in headless Chromium

``--browser N``: the same scan (5,000 events) served by uvicorn and opened in Debian's headless Chromium;
N changes by keyboard (relabel, accept, reject, negate, move on) and, per change, the page's own redraw
time after the server answered (``performance.now()`` around the redraw and the style and layout it
forces, kept by the page in ``S.redrawMs``) and the wall time from the key to the saved row (Selenium
round trips included).

Prints a table and writes JSON (default bench_out/bench_review.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from sonotell.files import write_json
from sonotell.review.app import create_app


def make_folder(root: Path, n_events: int = 5000, hours: float = 1.0, fps: float = 25.0) -> Path:
    out = root / "labels"
    out.mkdir(parents=True)
    duration = 3600.0 * hours
    step = duration / n_events
    events = [
        {
            "label": "liver",
            "term": "liver",
            "start_s": round(i * step, 3),
            "end_s": round(i * step + 0.4, 3),
            "confidence": 0.8,
            "negated": False,
            "speaker": "clinician",
        }
        for i in range(n_events)
    ]
    words = [
        {"text": "liver", "start_s": e["start_s"], "end_s": e["end_s"], "confidence": 0.9, "speaker": "clinician"}
        for e in events
    ]
    n = int(duration * fps)
    doc = {
        "scan_id": "big",
        "subject_id": "p",
        "events": events,
        "words": words,
        "segments": [],
        "info": {"fps": fps, "n_frames": n, "duration_s": duration},
    }
    (out / "big.json").write_text(json.dumps(doc))
    pd.DataFrame(
        {
            "scan_id": "big",
            "frame_index": range(n),
            "time_s": [i / fps for i in range(n)],
            "label": "unlabelled",
            "confidence": 0.0,
        }
    ).to_csv(out / "big.labels.csv", index=False)
    (out / "summary.json").write_text(json.dumps({"lexicon": "abdominal"}))
    return out


def _open(client: TestClient) -> None:
    assert client.get("/api/scans/big").status_code == 200
    assert len(client.get("/api/scans/big/events?limit=1000").json()["events"]) == 1000
    assert len(client.get("/api/scans/big/words?limit=5000").json()["words"]) == 5000


def _timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def browser_changes(folder: Path, n_changes: int) -> dict:
    """Open the scan in headless Chromium and make ``n_changes`` changes by key; redraw ms per change."""
    import shutil
    import socket
    import threading

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(create_app(folder), log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    try:
        t0 = time.perf_counter()
        driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/#/scan/big")
        WebDriverWait(driver, 120, 0.05).until(lambda d: d.execute_script("return document.body.dataset.loaded"))
        open_s = time.perf_counter() - t0
        WebDriverWait(driver, 60, 0.05).until(lambda d: d.execute_script("return S.peaks !== null"))  # settled
        keys = ["2", "j", "a", "j", "x", "j", "n", "j", "3", "a"]  # relabel, move, accept, move, reject ...
        walls = []
        for k in range(n_changes):
            key = keys[k % len(keys)]
            before = driver.execute_script("return S.redrawMs.length")
            t = time.perf_counter()
            ActionChains(driver).send_keys(key).perform()
            if key != "j":
                WebDriverWait(driver, 30, 0.005).until(
                    lambda d, b=before: d.execute_script("return S.redrawMs.length") > b
                )
                walls.append(time.perf_counter() - t)
        redraw = driver.execute_script("return S.redrawMs")
    finally:
        driver.quit()
        srv.should_exit = True
        thread.join(10)
        sock.close()
    redraw_sorted = sorted(redraw)
    return {
        "open_page_s": open_s,
        "changes": len(redraw),
        "redraw_ms_median": statistics.median(redraw),
        "redraw_ms_p95": redraw_sorted[int(0.95 * (len(redraw) - 1))],
        "redraw_ms_max": max(redraw),
        "redraw_ms": [round(x, 2) for x in redraw],
        "key_to_saved_row_s_median": statistics.median(walls),
        "chromium": driver.capabilities.get("browserVersion"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_review.json"))
    ap.add_argument("--browser", type=int, default=0, metavar="N", help="also N changes in headless Chromium")
    args = ap.parse_args()
    browser = None
    rows: dict[str, list[tuple[float, float]]] = {"cold open": [], "warm open": [], "save + reload page": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp))
        for k in range(args.repeats):
            client = TestClient(create_app(folder), base_url="http://127.0.0.1")
            client.get("/api/meta")  # the client's own start-up, not the scan
            rows["cold open"].append(_timed(lambda c=client: _open(c)))
            rows["warm open"].append(_timed(lambda c=client: _open(c)))
            eid = client.get("/api/scans/big/events?offset=2500&limit=1").json()["events"][0]["id"]
            label = ("kidney", "spleen")[k % 2]

            def save(c=client, eid=eid, label=label):
                assert (
                    c.put(f"/api/scans/big/events/{eid}", json={"status": "edited", "label": label}).status_code == 200
                )
                assert c.get("/api/scans/big/events?offset=2000&limit=1000").status_code == 200

            rows["save + reload page"].append(_timed(save))
        if args.browser:
            browser = browser_changes(folder, args.browser)
    table = [
        {
            "step": name,
            "wall_s": statistics.median(w for w, _ in v),
            "cpu_s": statistics.median(c for _, c in v),
            "max_wall_s": max(w for w, _ in v),
        }
        for name, v in rows.items()
    ]
    print(f"{'step':<20}{'median wall s':>15}{'median CPU s':>14}{'max wall s':>12}")
    for r in table:
        print(f"{r['step']:<20}{r['wall_s']:>15.3f}{r['cpu_s']:>14.3f}{r['max_wall_s']:>12.3f}")
    write_json(
        args.out,
        {
            "repeats": args.repeats,
            "events": 5000,
            "words": 5000,
            "duration_s": 3600,
            "rows": table,
            "browser": browser,
            "machine": platform.platform(),
            "python": platform.python_version(),
        },
    )
    if browser:
        print(f"browser (Chromium {browser['chromium']}): page open {browser['open_page_s']:.2f} s; redraw per change")
        print(f"{'changes':>8}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'key->saved row s':>18}")
        print(
            f"{browser['changes']:>8}{browser['redraw_ms_median']:>11.2f}{browser['redraw_ms_p95']:>9.2f}"
            f"{browser['redraw_ms_max']:>9.2f}{browser['key_to_saved_row_s_median']:>18.3f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
