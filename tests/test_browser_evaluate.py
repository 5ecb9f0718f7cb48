"""The Evaluate page in a real browser (headless Chromium): ready after the first start, led by
its sentence, every tab drawn without an error; a screenshot of each tab goes to
tests/screenshots/evaluate_<tab>.png."""

from __future__ import annotations

import time

import pytest

from .test_browser import SHOTS, _wait_idle, server  # noqa: F401  (the app server fixture)

pytestmark = pytest.mark.browser

TABS = ("Overview", "Metric at K", "Slices", "Diversity", "Training curves", "Table")


def test_browser_evaluate_page_tabs(server):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from .test_browser import CHROMIUM

    url, _ = server
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
        for tab in TABS:
            t0 = time.perf_counter()
            page.get_by_role("tab", name=tab).click()
            _wait_idle(page)
            print(f"evaluate / {tab}: {time.perf_counter() - t0:.2f} s")
            assert page.locator('[data-testid="stException"]').count() == 0, tab
            page.screenshot(path=str(SHOTS / f"evaluate_{tab.lower().replace(' ', '_')}.png"),
                            full_page=True)
        browser.close()
    assert not errors, errors
