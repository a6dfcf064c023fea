"""Retake the README's screenshots from `pagewatch demo`'s workspace, in Debian's chromium.

python docs/screenshots/take.py        (needs chromium and the test extra's playwright)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from pagewatch.demo import run_demo
from pagewatch.web.app import Settings
from pagewatch.web.server import BackgroundServer

HERE = Path(__file__).parent


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="pagewatch-shots-"))
    try:
        run_demo(root, lambda line: None)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with BackgroundServer(Settings(root)) as app, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 560}, locale="en-GB")
            page.goto(app.url)
            page.screenshot(path=HERE / "inbox.png")
            page.set_viewport_size({"width": 1280, "height": 1500})
            page.goto(f"{app.url}alerts/1")
            page.screenshot(path=HERE / "alert.png")
            browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
