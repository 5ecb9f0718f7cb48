"""End to end in a real browser: start `streamlit run app.py`, drive Debian's Chromium with
Playwright, upload a photo on Visual search, and save a screenshot of every page
(tests/screenshots/)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..app_helpers import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "screenshots"
PAGES = {"home": "", "catalog": "catalog", "visual_search": "visual_search",
         "user_picks": "user_picks", "train": "train", "evaluate": "evaluate", "data": "data",
         "catalog_map": "catalog_map", "new_shopper": "new_shopper", "ab_test": "ab_test"}

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ready_demo_db: Path, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    db = tmp_path_factory.mktemp("browser") / "recsys.duckdb"   # the set-up demo, a copy
    shutil.copy(ready_demo_db, db)
    from recsys.store import Store

    store = Store(db)                 # read before the app holds the database's lock
    facts = {"photo": store.items("demo")["image_path"].dropna().iloc[5],
             "busy": store.users("demo").set_index("user_id")["n_interactions"].idxmax()}
    store.close()
    port = _free_port()
    env = {**os.environ, "RECSYS_DB": str(db)}
    # the server's output goes to a file (printed at the end): a pipe nobody reads would
    # block the server once 64 KB of log lines filled it
    log = tmp_path_factory.mktemp("browser-log") / "server.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        out.close()
        pytest.fail("streamlit did not start: " + log.read_text(errors="replace")[-2000:])
    yield url, db, facts
    proc.terminate()
    proc.wait(10)
    out.close()
    print(f"server log: {log.stat().st_size:,} bytes, ends with:\n"
          + log.read_text(errors="replace")[-1500:])


def _wait_idle(page) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("h1", timeout=60_000)
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=60_000,
                           state="attached")
    page.wait_for_timeout(1500)   # tables and uploaders draw after the script has finished


def _choose(page, n: int, text: str) -> None:
    """Pick the option containing `text` in the n-th select box of the page (not the
    sidebar's)."""
    box = page.locator("[data-testid=stMain]").get_by_role("combobox").nth(n)
    box.click()
    page.keyboard.type(text, delay=20)
    page.get_by_role("option").filter(has_text=text).first.click()
    _wait_idle(page)


def test_browser_visual_search_and_screenshots(server):
    from playwright.sync_api import sync_playwright

    url, db, facts = server
    photo = facts["photo"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        outside: list[str] = []            # the app must work offline: no outside request
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith((url, "data:", "blob:")) else None)
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
        for name, path in PAGES.items():
            t0 = time.perf_counter()
            page.goto(f"{url}/{path}")
            _wait_idle(page)
            print(f"{name}: {time.perf_counter() - t0:.2f} s")
            assert page.locator('[data-testid="stException"]').count() == 0, name
            page.screenshot(path=str(SHOTS / f"{name}.png"))

        page.goto(f"{url}/visual_search")
        _wait_idle(page)
        t0 = time.perf_counter()
        page.locator('input[type="file"]').first.set_input_files(photo)
        page.wait_for_selector(".rs-card", timeout=60_000)
        _wait_idle(page)
        print(f"visual search, upload to grid: {time.perf_counter() - t0:.2f} s")
        cards = page.locator(".rs-grid .rs-card").count()
        assert cards >= 4
        assert page.get_by_text("most similar products").count() >= 1
        page.screenshot(path=str(SHOTS / "visual_search_results.png"))
        browser.close()
    assert not errors, errors
    assert not outside, outside
    # Opening a page by its own URL (/user_picks) makes Streamlit's frontend probe
    # /user_picks/_stcore/health before the root: local 404s of its own, harmless.
    probes = [u for u in missing if u.startswith(url) and "/_stcore/" in u]
    assert missing == probes, missing
    assert [m for m in console if "Failed to load resource" not in m] == [], console


def test_browser_picks_search_examples_and_stop(server):
    """Live picks and visual search in a real browser: the User picks page explains in words,
    Visual search runs an example photo in one click (exact match badge, query on top) and a
    phone photo with the crop, and the Train page's Stop button interrupts a run, keeping the
    previous model."""
    from playwright.sync_api import sync_playwright

    url, db, facts = server
    busy = facts["busy"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 2200})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{url}/user_picks")
        _wait_idle(page)
        _choose(page, 0, busy)
        assert page.get_by_role("heading", name=busy).count() == 0   # the name, not the id
        assert page.get_by_text(f"id {busy}").count() >= 1
        assert page.locator(".rs-why").count() >= 4            # a sentence per pick
        assert page.locator(".rs-cite").count() >= 4           # cited items with titles
        assert page.get_by_text("All ").first.is_visible()     # the history expands
        page.screenshot(path=str(SHOTS / "user_picks_explained.png"), full_page=True)

        page.goto(f"{url}/visual_search")
        _wait_idle(page)
        page.get_by_role("button", name="Try").first.click()             # a catalog photo
        page.wait_for_selector(".rs-querybar", timeout=60_000)
        _wait_idle(page)
        assert page.get_by_text("exact match").count() >= 1
        page.screenshot(path=str(SHOTS / "visual_search_example.png"))
        page.get_by_role("button", name="Try").nth(3).click()            # a phone photo
        _wait_idle(page)                  # cropped to the product by default
        assert page.get_by_text("cropped to the product").count() >= 1
        page.screenshot(path=str(SHOTS / "visual_search_phone_cropped.png"))

        page.goto(f"{url}/train")
        _wait_idle(page)
        _choose(page, 0, "Combined: learned together")
        for label, value in (("max epochs", "1000"), ("early-stopping patience", "100")):
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
            _wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        try:
            page.get_by_text(re.compile(r"epoch \d+/1000")).first.wait_for(timeout=180_000)
            page.get_by_role("button", name="Stop training").click()
            notice = page.get_by_text("Training of Combined: learned together stopped")
            notice.wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path=str(SHOTS / "train_stop_failed.png"))   # what the page showed
            raise
        _wait_idle(page)
        text = notice.inner_text()
        assert "is marked interrupted" in text, text
        assert "there is no earlier Combined: learned together, so none is in use" in text, text
        page.screenshot(path=str(SHOTS / "train_stopped.png"))
        page.goto(f"{url}/user_picks")                # the model in use is still the default
        _wait_idle(page)
        assert page.get_by_text("Combined: weighted blend").count() >= 1
        assert page.locator(".rs-why").count() >= 4


EVALUATE_TABS = ("Overview", "Metric at K", "Slices", "Diversity", "Training curves", "Table")


def test_browser_evaluate_page_tabs(server):
    """The Evaluate page is ready after the first start, led by its sentence, and every tab
    draws without an error (screenshots: tests/screenshots/evaluate_<tab>.png)."""
    from playwright.sync_api import sync_playwright

    url, _db, _facts = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1600})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/evaluate")
        _wait_idle(page)
        assert page.get_by_text("No evaluation").count() == 0
        assert page.get_by_text("the best single-signal model").count() >= 1
        for tab in EVALUATE_TABS:
            t0 = time.perf_counter()
            page.get_by_role("tab", name=tab).click()
            _wait_idle(page)
            print(f"evaluate / {tab}: {time.perf_counter() - t0:.2f} s")
            assert page.locator('[data-testid="stException"]').count() == 0, tab
            page.screenshot(path=str(SHOTS / f"evaluate_{tab.lower().replace(' ', '_')}.png"),
                            full_page=True)
        browser.close()
    assert not errors, errors
