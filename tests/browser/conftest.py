"""Browser tests: headless Chromium (Debian's chromium + chromium-driver) through Selenium.

They run in the `browser` nox session, which installs both and sets TOOLKIT_BROWSER_TESTS;
the core test sessions leave this folder out. Screenshots go to TOOLKIT_SCREENSHOTS
(default: artifacts/screenshots/ at the top of the repository).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "report"))

if not os.environ.get("TOOLKIT_BROWSER_TESTS"):
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TOOLKIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TOOLKIT_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("TOOLKIT_SCREENSHOTS") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (the browser nox session installs them)"
        )
    profile = tempfile.mkdtemp(prefix="toolkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_ready(driver, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )


def full_page_shot(driver, path: Path, height: int | None = None) -> None:
    """A screenshot of the whole page (the window grown to the page's height)."""
    size = driver.get_window_size()
    h = height or driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1300, min(max(h, 600), 6000))
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
