"""Benchmark the dashboard in a real browser: first start, page switches, visual search.

Starts `streamlit run app.py` on a database, drives Debian's Chromium with Playwright and prints
(and saves as JSON under benchmarks/results/) how long a user waits:

* first start on an empty database until Home shows the catalog (demo, encoder, model);
* page switches through the sidebar with a warm cache;
* visual search: photo upload to results grid, several times (the first includes nothing but
  the upload: the encoder is loaded when the page opens).

    python benchmarks/app.py --fresh                 # first start on a new temporary database
    RECSYS_DB=path/to/myntra.duckdb python benchmarks/app.py --dataset myntra --photo a.jpg b.jpg

Numbers, not assertions: they depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
NAV = ["Catalog", "Visual search", "User picks", "Train", "Evaluate", "Data", "Home"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "RECSYS_DB": str(db), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


def idle(page, timeout: float = 600_000) -> None:
    """Wait until Streamlit reports that no script run is in progress."""
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=timeout,
                           state="attached")


HEADINGS = {"Home": "Multimodal recommendations"}


def open_app(playwright, url: str, wait_for: str | None = None,
             timeout: float = 900_000) -> tuple:
    """Chromium on the app's Home page, waited until its script run ended (and `wait_for`, a
    selector, is there): (browser, page, seconds it took)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(f"text={HEADINGS['Home']}", timeout=timeout)
    if wait_for:
        page.wait_for_selector(wait_for, timeout=timeout)
    idle(page, timeout)
    return browser, page, time.perf_counter() - t0


def open_page(page, name: str, timeout: float = 120_000) -> None:
    """Click a sidebar link and wait for that page's heading and the end of its run."""
    page.get_by_role("link", name=name, exact=True).first.click()
    page.wait_for_selector(f'h1:has-text("{HEADINGS.get(name, name)}")', timeout=timeout)
    idle(page, timeout)


def upload_photo(page, photo: str | Path, timeout: float = 120_000) -> float:
    """Upload a photo on the Visual search page; seconds until its results are drawn and the
    script run has ended."""
    t0 = time.perf_counter()
    page.locator('input[type="file"]').first.set_input_files(str(photo))
    page.wait_for_selector(f"text=similar products to {Path(photo).name}", timeout=timeout)
    idle(page, timeout)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="time the first start on an empty DB")
    ap.add_argument("--dataset", help="dataset to select in the sidebar (default: active)")
    ap.add_argument("--photo", nargs="+", help="query photos for visual search (default: two demo "
                                           "photos)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out: dict = {"load_average_at_start": list(os.getloadavg())}
    tmp = tempfile.TemporaryDirectory()
    db = Path(tmp.name) / "recsys.duckdb" if args.fresh else \
        Path(os.environ.get("RECSYS_DB", ROOT / "data" / "recsys.duckdb"))
    proc, url = start_app(db)
    try:
        with sync_playwright() as p:
            browser, page, out["first_page_s"] = open_app(p, url, wait_for=".rs-card")
            print(f"{'first start' if args.fresh else 'first page'}: "
                  f"{out['first_page_s']:.1f} s")
            # warm every page once, then time switches
            for name in NAV:
                open_page(page, name)
            times: dict[str, list[float]] = {n: [] for n in NAV}
            for _ in range(3):
                for name in NAV:
                    t0 = time.perf_counter()
                    open_page(page, name)
                    times[name].append(time.perf_counter() - t0)
            out["page_switch_s"] = {n: statistics.median(v) for n, v in times.items()}
            for n, v in out["page_switch_s"].items():
                print(f"page switch to {n:<14} {v * 1000:6.0f} ms (median of 3, warm cache)")
            # visual search
            photos = args.photo or _demo_photos(db)
            open_page(page, "Visual search")
            answers = []
            for i in range(args.repeat):
                answers.append(upload_photo(page, photos[i % len(photos)]))
            out["visual_search_s"] = answers
            print("visual search, upload to grid: "
                  + ", ".join(f"{a * 1000:.0f}" for a in answers) + " ms "
                  f"(median {statistics.median(answers) * 1000:.0f} ms)")
            page.screenshot(path=str(Path(tmp.name) / "last.png"))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:      # a busy machine: do not lose the numbers
            proc.kill()
            proc.wait(10)
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    out["cpus"] = os.cpu_count()
    busy = out["load_average_1_5_15_min"][0] >= 0.75 * out["cpus"]
    print(f"machine: {out['cpus']} CPUs, load average {out['load_average_1_5_15_min']} "
          f"({'busy: other work shared the CPUs' if busy else 'quiet'}; the app and the "
          "browser themselves load it by about 1)")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "app-fresh.json" if args.fresh else f"app-{args.dataset or 'active'}.json"
    (results / name).write_text(json.dumps(out, indent=2))
    print(f"saved {results / name}")


def _demo_photos(db: Path) -> list[str]:
    """Two demo product photos (the demo's images live beside its database)."""
    photos = sorted((db.parent / "demo" / "images").glob("*.jpg"))
    if not photos:
        raise SystemExit("no demo photos beside the database: pass --photo FILE")
    return [str(photos[7 % len(photos)]), str(photos[11 % len(photos)])]


if __name__ == "__main__":
    main()
