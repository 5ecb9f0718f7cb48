"""A scripted walk through every page of the app in Debian's Chromium (Playwright with
`executable_path`; never `playwright install`), saving small JPEG screenshots to docs/img/.

    # a database that is set up (the demo after a first start, or the Myntra sample loaded)
    python benchmarks/walk_screenshots.py --db data/recsys.duckdb --prefix demo
    python benchmarks/walk_screenshots.py --db data/myntra.duckdb --prefix myntra \
        --query "red summer dress"

Each page is opened, left to finish running, checked for a Streamlit exception and shot at
1440 px wide (viewport height 1100; User picks and the A/B test whole), JPEG quality 55. On
Catalog the query `--query` (default "black running shoes for women") is typed; on Visual
search the first example photo is tried; on the A/B test the default test is run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = {"home": "", "catalog": "catalog", "visual_search": "visual_search",
         "user_picks": "user_picks", "train": "train", "evaluate": "evaluate", "data": "data",
         "catalog_map": "catalog_map", "new_shopper": "new_shopper", "ab_test": "ab_test"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _idle(page) -> None:
    page.wait_for_selector("h1", timeout=120_000)
    page.wait_for_timeout(1500)         # a rerun an action started has begun by now
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=180_000,
                           state="attached")
    try:                                # no greyed-out (stale) elements left from the last run
        page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')",
                               timeout=30_000)
    except Exception:                   # noqa: BLE001 - shoot what is there
        pass
    page.wait_for_timeout(2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--prefix", default="demo")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--query", default="black running shoes for women",
                        help="the words typed into Catalog's search box")
    parser.add_argument("--pages", default=",".join(PAGES),
                        help="comma-separated page names (default: every page)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "RECSYS_DB": str(Path(args.db).resolve())},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            for name in args.pages.split(","):
                path = PAGES[name]
                t0 = time.perf_counter()
                page.goto(f"{url}/{path}")
                _idle(page)
                if name == "catalog":
                    box = page.locator('input[aria-label="Search by meaning"]').first
                    box.fill(args.query)
                    box.press("Enter")
                    _idle(page)
                if name == "visual_search":     # an example photo, so results show
                    page.get_by_role("button", name="Try").first.click()
                    _idle(page)
                if name == "ab_test":
                    page.get_by_role("button", name="Run the test").click()
                    page.wait_for_timeout(3000)
                    _idle(page)
                broken = page.locator('[data-testid="stException"]').count()
                shot = out / f"{args.prefix}-{name}.jpg"
                page.screenshot(path=str(shot), type="jpeg", quality=55,
                                full_page=name in ("ab_test", "user_picks"))
                print(f"{name}: {time.perf_counter() - t0:.1f} s, {shot.stat().st_size // 1024}"
                      f" KB{' EXCEPTION ON PAGE' if broken else ''}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
