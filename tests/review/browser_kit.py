"""Shared by the browser tests: the app served on a free loopback port, headless Debian Chromium, small helpers.

Import the fixtures into a test module (``from tests.review.browser_kit import browser, server``); the module
skips itself when chromium / chromedriver / selenium are absent (scripts/install.sh installs them on Debian).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and Path(CHROMEDRIVER).exists()), reason="Debian chromium + chromium-driver not installed"
)


@contextmanager
def serving(labels_dir, manifest, port: int = 0, **kwargs):
    """The review app on loopback (a free port by default); yields (url, stop): ``stop()`` shuts it down early."""
    import uvicorn

    from sonotell.review.app import create_app

    app = create_app(labels_dir, manifest, reviewer="tester", **kwargs)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)

    def stop():
        srv.should_exit = True
        thread.join(10)
        sock.close()

    try:
        yield f"http://127.0.0.1:{port}", stop
    finally:
        if thread.is_alive():
            stop()


@pytest.fixture
def server(labels_dir, manifest):
    with serving(labels_dir, manifest) as (url, _):
        yield url


def chrome():
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
    return driver


@pytest.fixture
def browser():
    driver = chrome()
    yield driver
    driver.quit()


def wait(driver, cond, timeout=30, what=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: cond(d), what)


def loaded(driver, what: str, timeout=30):
    wait(driver, lambda d: d.execute_script("return document.body.dataset.loaded") == what, timeout, what)


def rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#events .ev')]"
        ".map(r => [r.dataset.id, r.dataset.label, r.dataset.status])"
    )


def video(driver, prop):
    return driver.execute_script(f"return document.getElementById('video').{prop}")


def source(driver):
    return driver.execute_script("return document.getElementById('video').dataset.source || ''")


def key(driver, keys):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def js(driver, code, *args):
    return driver.execute_script(code, *args)
