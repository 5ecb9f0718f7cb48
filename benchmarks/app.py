"""Benchmark the dashboard in a real browser: first start, page switches, visual search.

Starts `streamlit run app.py` on a database, drives Debian's Chromium with Playwright and prints
(and saves as JSON under benchmarks/results/) how long a user waits:

* first start on an empty database until Home shows the catalog (demo, encoder, model);
* page switches through the sidebar with a warm cache;
* visual search: photo upload to results grid, several times (the first includes nothing but
  the upload: the encoder is loaded when the page opens);
* `--cold` (with `--fresh` or `--stages`): as on a machine's very first start, each run
  with a new, empty per-machine cache folder (`$RECSYS_CACHE_DIR`: the text tower's
  vectors of class names and type-name prompts, the image trunk converted for OpenVINO);
  to also start with nothing in the OS file cache, run `sync; echo 3 >
  /proc/sys/vm/drop_caches` (root) first;
* `--stages` (also printed first by `--fresh`): the first start's set-up (`usecases.set_up`:
  demo, alignment, embedding, default model, first evaluation) run in this process on a new
  database, timed by stage from its progress reports, with the demo's quality numbers (the
  encoder's held-out scores and the first evaluation's NDCG@10);
* `--first-upload ROUNDS`: a new visitor's first uploads (a new server, Home, Visual search,
  then uploads of different photos), with the shipped settings and with Streamlit's
  source-file watcher on, alternating in one run; each upload is timed to its results drawn
  (photos decoded) and to the end of the script run;
* `--home-items N`: what Home and Catalog read from the database on a synthetic catalog of N
  items, before (every row: `Store.items`) and now (Home: a 12-item sample and the category
  counts; Catalog: facets counted by the database and one page of filtered rows), and both
  pages' whole script runs in Streamlit's AppTest (server side, no browser).

    python benchmarks/app.py --fresh                 # first start on a new temporary database
    python benchmarks/app.py --stages                # first start's set-up, in process, by stage
    python benchmarks/app.py --fresh --cold          # ... on a machine's very first start
    python benchmarks/app.py --stages --draw threads # the demo drawn by threads (A/B)
    RECSYS_DB=data/prep.duckdb python benchmarks/app.py --prepare myntra   # align + embed, by stage
    python benchmarks/app.py --home-items 1000000    # Home's reads at scale (no browser)
    RECSYS_DB=data/demo.duckdb python benchmarks/app.py --first-upload 3 --repeat 4
                                                     # a new visitor's first uploads
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


def start_app(db: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on `db` (`options`: extra command-line options, e.g.
    "--server.fileWatcherType", "auto"); (process, URL) once it answers."""
    port = free_port()
    env = {**os.environ, "RECSYS_DB": str(db), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--server.headless", "true",
                             *options],
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


QUERY_BAR = ".rs-querybar"
UPLOAD_CLOCK = """([bar, name, before]) => {
  // Times one upload with the page's own clock, from the file input's change event (the
  // moment a user picks the file) to (1) the results on screen: a new query bar naming the
  // photo and every photo of the grid and the query bar decoded, and (2) also the script run
  // reported ended. The automation's own round trips are not counted.
  const u = window.__upload = {t0: null, drawn: null, ended: null};
  const drawn = () => {
    const q = document.querySelector(bar);
    if (!q || !q.textContent.includes(name) || q.textContent === before) return false;
    return [...document.querySelectorAll('.rs-grid img, ' + bar + ' img')]
      .every(i => i.complete && i.naturalWidth > 0);
  };
  const check = () => {
    if (u.t0 === null) return;
    if (u.drawn === null && drawn()) u.drawn = performance.now();
    const s = document.querySelector('[data-test-script-state]');
    if (u.drawn !== null && u.ended === null && s &&
        s.getAttribute('data-test-script-state') === 'notRunning') {
      u.ended = performance.now();
      obs.disconnect();
      document.removeEventListener('load', check, true);
    }
  };
  document.querySelector('input[type="file"]').addEventListener(
    'change', () => { u.t0 = performance.now(); }, {once: true, capture: true});
  const obs = new MutationObserver(check);
  obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  document.addEventListener('load', check, true);      // images decode after the DOM changes
}"""


def upload_photo(page, photo: str | Path, timeout: float = 120_000) -> float:
    """Upload a photo on the Visual search page; seconds until its results are drawn and the
    script run has ended (see `upload_timed`)."""
    return upload_timed(page, photo, timeout)[1]


def upload_timed(page, photo: str | Path, timeout: float = 120_000) -> tuple[float, float]:
    """Upload a photo on the Visual search page: (seconds until this upload's results are on
    screen: its query bar, new, naming the photo, and every photo of the grid and the query bar
    decoded; seconds until Streamlit also reports the script run ended: the "running" sign
    gone, the download button drawn), both from the moment the file input changed, measured by
    the page's clock (`UPLOAD_CLOCK`): on a busy box Playwright's polling and round trips added
    0.25-0.4 s to what the page showed.

    The query bar must differ from the one shown before the upload (it says how long the search
    took), so uploading the photo shown last is not counted as done before it started."""
    bar = page.locator(QUERY_BAR)
    before = bar.first.text_content() if bar.count() else ""
    page.evaluate(UPLOAD_CLOCK, [QUERY_BAR, Path(photo).name, before])
    page.locator('input[type="file"]').first.set_input_files(str(photo))
    page.wait_for_function("() => window.__upload.ended !== null", timeout=timeout)
    u = page.evaluate("() => window.__upload")
    return (u["drawn"] - u["t0"]) / 1000, (u["ended"] - u["t0"]) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="time the first start on an empty DB")
    ap.add_argument("--dataset", help="dataset to select in the sidebar (default: active)")
    ap.add_argument("--photo", nargs="+", help="query photos for visual search (default: two demo "
                                           "photos)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--save-as", metavar="NAME",
                    help="file name under benchmarks/results/ for --stages / --fresh / "
                         "--first-upload (default: the committed names)")
    ap.add_argument("--cold", action="store_true",
                    help="with --fresh / --stages: empty per-machine caches (a machine's very "
                         "first start)")
    ap.add_argument("--browser-only", action="store_true",
                    help="with --fresh: skip the in-process set-up printed first (so the "
                         "browser's first start is the first thing this machine runs)")
    ap.add_argument("--draw", choices=("auto", "threads", "processes"), default="auto",
                    help="with --stages: how the demo's photos are drawn (default: as shipped; "
                         "to compare the two side by side)")
    ap.add_argument("--stages", action="store_true",
                    help="only time the first start's set-up by stage, in process (no browser)")
    ap.add_argument("--prepare", metavar="DATASET",
                    help="only time align + embed of DATASET on $RECSYS_DB (myntra: loaded "
                         "first if missing), by stage")
    ap.add_argument("--home-items", type=int, metavar="N",
                    help="only time Home's reads on a synthetic catalog of N items")
    ap.add_argument("--first-upload", type=int, metavar="ROUNDS",
                    help="only time a new visitor's first uploads (Home -> Visual search -> "
                         "--repeat uploads), ROUNDS times with the shipped settings and with "
                         "Streamlit's source-file watcher on, alternating, in one run")
    args = ap.parse_args()
    cold = tempfile.TemporaryDirectory() if args.cold else None
    if cold is not None:
        os.environ["RECSYS_CACHE_DIR"] = str(Path(cold.name) / "stages")
    if args.first_upload:
        first_upload(args.first_upload, args.repeat, args.photo, Path(
            os.environ.get("RECSYS_DB", ROOT / "data" / "recsys.duckdb")), args.save_as)
        return
    if args.home_items:
        home_at_scale(args.home_items)
        return
    if args.draw != "auto":
        _force_drawing(args.draw == "processes")
    if args.stages:
        setup_stages(args.save_as or True)
        return
    if args.prepare:
        prepare(args.prepare, Path(os.environ.get("RECSYS_DB", ROOT / "data" / "recsys.duckdb")))
        return
    from playwright.sync_api import sync_playwright

    out: dict = {"load_average_at_start": list(os.getloadavg()),
                 "machine_caches": "empty" if cold is not None else "as found"}
    if args.fresh and not args.browser_only:
        out["setup_stages"] = setup_stages(save=False)
    if cold is not None:               # the server's own empty per-machine caches
        os.environ["RECSYS_CACHE_DIR"] = str(Path(cold.name) / "server")
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
            timed = [upload_timed(page, photos[i % len(photos)]) for i in range(args.repeat)]
            answers = [t[1] for t in timed]
            out["visual_search_s"] = answers                  # upload to the run's end
            out["visual_search_drawn_s"] = [t[0] for t in timed]   # upload to results drawn
            print("visual search, upload to results drawn: "
                  + ", ".join(f"{t[0] * 1000:.0f}" for t in timed) + " ms; to the run's end: "
                  + ", ".join(f"{a * 1000:.0f}" for a in answers) + " ms "
                  f"(median {statistics.median(answers) * 1000:.0f} ms; the first is the "
                  "session's first upload, after every page was opened once)")
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
    name = args.save_as or ("app-fresh.json" if args.fresh else
                            f"app-{args.dataset or 'active'}.json")
    (results / name).write_text(json.dumps(out, indent=2))
    print(f"saved {results / name}")


def best(fn, repeat=3) -> float:
    """The fastest of `repeat` runs of `fn`, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


SETTINGS = {"shipped": (),
            "file watcher on": ("--server.fileWatcherType", "auto")}   # streamlit's default


def first_upload(rounds: int, repeat: int, photos: list[str] | None, db: Path,
                 save_as: str | None = None) -> dict:
    """A new visitor's first uploads, as they happen: a new server, Home, then Visual search
    (its script run loads and warms the query path), then `repeat` uploads of different
    photos. Per upload: seconds until the results are drawn and until the run has ended.
    Done `rounds` times for each of `SETTINGS`, alternating (shipped first), so both see the
    same machine load; prints the first upload against the later ones, and the load."""
    from playwright.sync_api import sync_playwright

    photos = photos or _demo_photos(db, max(2, repeat))
    out: dict = {"load_average_at_start": list(os.getloadavg()), "rounds": rounds,
                 "uploads": {name: [] for name in SETTINGS}}
    with sync_playwright() as p:
        for r in range(rounds):
            for name, options in SETTINGS.items():
                proc, url = start_app(db, *options)
                try:
                    browser, page, _ = open_app(p, url)
                    open_page(page, "Visual search")
                    out["uploads"][name].append(
                        [upload_timed(page, photos[i % len(photos)]) for i in range(repeat)])
                    browser.close()
                finally:
                    _stop(proc)
                first = out["uploads"][name][-1][0]
                print(f"round {r + 1}, {name:<16} first upload: drawn {first[0] * 1000:5.0f} ms,"
                      f" run ended {first[1] * 1000:5.0f} ms; later (run ended): " + ", ".join(
                          f"{t[1] * 1000:.0f}" for t in out["uploads"][name][-1][1:]) + " ms")
    print("summary (median over rounds; 'later' = median of the uploads after the first):")
    for name, runs in out["uploads"].items():
        first_drawn = statistics.median(run[0][0] for run in runs)
        first_end = statistics.median(run[0][1] for run in runs)
        later = statistics.median(t[1] for run in runs for t in run[1:]) if repeat > 1 else 0
        out[f"{name}: first drawn s"], out[f"{name}: first ended s"] = first_drawn, first_end
        out[f"{name}: later ended s"] = later
        print(f"  {name:<16} first upload: drawn {first_drawn * 1000:5.0f} ms, run ended "
              f"{first_end * 1000:5.0f} ms; later uploads: run ended {later * 1000:5.0f} ms")
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average at start "
          f"{out['load_average_at_start']}, at end {out['load_average_1_5_15_min']}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = save_as or "app-first-upload.json"
    (results / name).write_text(json.dumps(out, indent=2))
    print(f"saved {results / name}")
    return out


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def home_at_scale(n: int) -> None:
    """Home's data on a synthetic catalog of `n` items (titles, categories, photo paths): the
    whole-table read it did before vs the narrow reads it does now, then the page's script run
    in AppTest (cache cleared, then warm)."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from recsys.store import Store

    out: dict = {"items": n, "load_average_at_start": list(os.getloadavg())}
    tmp = tempfile.TemporaryDirectory()
    db = Path(tmp.name) / "recsys.duckdb"
    store = Store(db)
    rng = np.random.default_rng(0)
    cats = np.array(["Apparel", "Footwear", "Accessories", "Personal Care", "Free Items"])
    t0 = time.perf_counter()
    with store.transaction() as cur:
        store.upsert_dataset(cur, "big", "catalog")
        for start in range(0, n, 200_000):
            m = min(200_000, n - start)
            ids = [f"i{start + i:07d}" for i in range(m)]
            store.upsert_items(cur, "big", pd.DataFrame({
                "item_id": ids, "title": [f"product {i}" for i in ids],
                "master_category": cats[rng.integers(0, len(cats), m)],
                "article_type": "Tshirts", "price": rng.uniform(5, 200, m),
                "image_path": [f"/nowhere/{i}.jpg" for i in ids]}))
    print(f"built {n:,} items in {time.perf_counter() - t0:.1f} s")

    out["whole_table_s"] = best(lambda: store.items("big"))
    out["narrow_s"] = best(lambda: (store.sample_items("big", 12),
                                    store.item_value_counts("big", "master_category")))
    print(f"Home's data, every row (before): {out['whole_table_s'] * 1000:8.0f} ms")
    print(f"Home's data, narrow (now):       {out['narrow_s'] * 1000:8.0f} ms "
          f"({out['whole_table_s'] / out['narrow_s']:.0f}x less)")
    catalog_at_scale(store, out)
    store.close()

    from streamlit.testing.v1 import AppTest
    os.environ["RECSYS_DB"] = str(db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    t = time.perf_counter()
    at.run()
    out["home_first_run_s"] = time.perf_counter() - t
    t = time.perf_counter()
    at.run()
    out["home_warm_run_s"] = time.perf_counter() - t
    errors = [str(e.value) for e in at.exception]
    print(f"Home page script, first run: {out['home_first_run_s']:.2f} s "
          f"(includes the first-start check); warm rerun: {out['home_warm_run_s']:.2f} s "
          f"(AppTest, server side)" + (f"; errors: {errors}" if errors else ""))
    catalog_page_at_scale(at, out)
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {out['load_average_1_5_15_min']}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"app-home-{n}.json").write_text(json.dumps(out, indent=2))


def stage_of(p) -> str:
    """A progress report's stage, the calibration alignments' epochs told apart."""
    if p.stage == "epoch" and p.message.startswith("calibration"):
        return "calibration"
    return p.stage or "other"


class StageClock:
    """A progress callback timing stages: the time from a stage's first report to the next
    stage's, summed per stage; `top` stages (the set-up's own) prefix the others. With `live`
    each stage is printed when it ends, so a run cut short still says where the time went."""

    def __init__(self, top: tuple[str, ...] = (), live: bool = False):
        self.top_stages, self.live = top, live
        self.spans: dict[str, float] = {}
        self.cpu: dict[str, float] = {}      # this process's CPU seconds (all threads) per stage
        self.top, self.sub, self.t, self.c = "", "", 0.0, 0.0

    def __call__(self, p) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if p.stage in self.top_stages:
            self.top, key = p.stage, p.stage
        elif p.stage == "done" and p.message == "ready":
            key = "ready"
        else:
            key = f"{self.top}: {stage_of(p)}" if self.top else stage_of(p)
        if key == self.sub:
            return
        if self.sub:
            self.spans[self.sub] = self.spans.get(self.sub, 0.0) + now - self.t
            self.cpu[self.sub] = self.cpu.get(self.sub, 0.0) + cpu - self.c
            if self.live:
                print(f"  {self.sub:<34} {self.spans[self.sub]:7.1f} s  (CPU "
                      f"{self.cpu[self.sub]:.1f} s, load {os.getloadavg()[0]:.1f})", flush=True)
        self.sub, self.t, self.c = key, now, cpu


def _force_drawing(processes: bool) -> None:
    """The demo's photos drawn by processes or by threads in this process's set-up."""
    sys.path.insert(0, str(ROOT))
    import functools

    import recsys.demo.catalog as catalog

    catalog.render_catalog = functools.partial(catalog.render_catalog, processes=processes)


def setup_stages(save: bool | str = True) -> dict:
    """The first start's set-up on a new database, in this process, timed by stage (the time
    from a stage's first progress report to the next stage's), with the load and the demo's
    quality numbers; printed, returned and (with `save`) written to
    benchmarks/results/app-setup-stages.json."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from recsys.core.config import machine_cache_dir
    from recsys.store import Store
    from recsys.usecases import set_up

    folder = machine_cache_dir()
    out: dict = {"load_average_at_start": list(os.getloadavg()),
                 "heavy_modules_before": _heavy_modules(),
                 "machine_cache_files_at_start": len(list(folder.glob("*")))
                 if folder is not None and folder.is_dir() else 0}
    tmp = tempfile.TemporaryDirectory()
    store = Store(Path(tmp.name) / "recsys.duckdb")
    progress = StageClock(("demo", "encoder", "model", "evaluation"))
    spans = progress.spans

    t0, c0 = time.perf_counter(), time.process_time()
    set_up(store, progress=progress)
    out["total_s"] = time.perf_counter() - t0
    out["total_cpu_s"] = time.process_time() - c0
    out["stages_s"] = spans
    out["stages_cpu_s"] = progress.cpu
    out["heavy_modules_after"] = _heavy_modules()
    print(f"first start's set-up, in process: {out['total_s']:.1f} s "
          f"({out['total_cpu_s']:.1f} s of CPU, all threads)")
    print(f"  {'stage':<34} {'wall':>6}   {'CPU':>6}")
    for key, sec in spans.items():
        if sec >= 0.05:
            print(f"  {key:<34} {sec:6.1f} s {progress.cpu.get(key, 0.0):6.1f} s")
    print(f"  heavy libraries imported: before {out['heavy_modules_before'] or 'none'}, "
          f"after {out['heavy_modules_after'] or 'none'}")
    out.update(_demo_quality(store))
    store.close()
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    print(f"per-machine cache files at start: {out['machine_cache_files_at_start']} "
          f"({folder or 'cache off'})")
    print(f"machine: {os.cpu_count()} CPUs, load average at start {out['load_average_at_start']}"
          f", at end {out['load_average_1_5_15_min']}")
    if save:
        results = ROOT / "benchmarks" / "results"
        results.mkdir(parents=True, exist_ok=True)
        name = save if isinstance(save, str) else "app-setup-stages.json"
        (results / name).write_text(json.dumps(out, indent=2))
        print(f"saved {results / name}")
    return out


HEAVY = ("torch", "torch._dynamo", "open_clip", "timm", "torchvision", "transformers")


def _heavy_modules() -> list[str]:
    """Which of the slow-to-import libraries this process has imported."""
    return [m for m in HEAVY if m in sys.modules]


def prepare(dataset: str, db: Path) -> dict:
    """"Align the encoder and embed the catalog" on `dataset` of `db` (the Myntra sample is
    loaded first when the database does not have it; not timed as part of the prepare), timed
    by stage, each stage printed as it ends; written to benchmarks/results/prepare-<dataset>.json.
    Starts from no encoder: the dataset's checkpoints, vectors and the alignment's feature
    shards must not exist (use a new database)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from recsys import usecases
    from recsys.store import Store

    store = Store(db)
    out: dict = {"dataset": dataset, "db": str(db)}
    if dataset not in store.dataset_names():
        if dataset != "myntra":
            raise SystemExit(f"no dataset {dataset!r} in {db}")
        t = time.perf_counter()
        usecases.load_myntra_sample(store)
        out["load_myntra_s"] = time.perf_counter() - t
        print(f"loaded the Myntra sample in {out['load_myntra_s']:.0f} s (not part of the "
              "prepare)", flush=True)
    if not store.encoders(dataset).empty:
        raise SystemExit(f"{dataset} already has an encoder: use a new database")
    out["photos"] = store.photo_count(dataset)
    out["load_average_at_start"] = list(os.getloadavg())
    print(f"prepare {dataset} ({out['photos']:,} photos), load {out['load_average_at_start']}",
          flush=True)
    clock = StageClock(live=True)
    t0, c0 = time.perf_counter(), time.process_time()
    rep = usecases.embed(store, dataset, align=True, progress=clock)
    clock(type("P", (), {"stage": "end", "message": ""})())
    out["total_s"] = time.perf_counter() - t0
    # CPU seconds of this process (all threads): on a shared box, wall time / CPU time says
    # how much of the machine the run got (2 cores idle: wall >= CPU / 2)
    out["cpu_s"] = time.process_time() - c0
    out["stages_s"] = clock.spans
    out["stages_cpu_s"] = clock.cpu
    out["embedded"] = rep.embedded
    out["reused"] = getattr(rep, "reused", {})
    enc = store.encoders(dataset)
    out["encoder_metrics"] = json.loads(enc.iloc[0]["metrics"]) if not enc.empty else {}
    store.close()
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    print(f"prepare (align + embed) {dataset}: {out['total_s']:.0f} s = "
          f"{out['total_s'] / 60:.1f} min ({out['cpu_s']:.0f} s of CPU); photos through the "
          f"heads only: "
          f"{out['reused'].get('image', 0):,}; load at end {out['load_average_1_5_15_min']}")
    m = out["encoder_metrics"]
    photos = out["reused"].get("image", 0)     # the alignment's photos (reused by the embedding)
    views = m.get("augmented_views") or 0
    for what, count, seconds in (("alignment photos", photos, m.get("seconds_cache_images")),
                                 ("phone-style views", views, m.get("seconds_cache_views"))):
        if count and seconds:
            out[f"{what.split()[-1]}_per_s"] = count / seconds
            print(f"  {what}: {count:,} through the tower in {seconds:.0f} s "
                  f"({count / seconds:.1f}/s)")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"prepare-{dataset}.json").write_text(json.dumps(out, indent=2, default=str))
    return out


def _demo_quality(store) -> dict:
    """The demo's quality numbers after its set-up: the aligned encoder's own metrics on its
    validation items (recorded by the alignment) and the first evaluation's NDCG@10."""
    out: dict = {}
    enc = store.encoders("demo")
    if not enc.empty:
        metrics = json.loads(enc.iloc[0]["metrics"])
        out["encoder_val"] = {k: metrics.get(k) for k in ("val_t2i_r10", "val_zeroshot_acc",
                                                          "augmented_views")}
        print("  encoder (validation items): " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in out["encoder_val"].items()))
    from recsys.usecases import eval_encoder

    ev = eval_encoder(store, "demo", baseline="none")
    out["encoder_heldout"] = {k: float(v) for k, v in ev.metrics.items()
                              if isinstance(v, (int, float))}
    print(f"  encoder on the held-out 20% ({ev.n_items} items, {ev.n_classes} classes): " + ", ".join(
        f"{k} {v:.3f}" for k, v in out["encoder_heldout"].items() if not k.startswith("n_")))
    out["first_evaluation"] = _first_evaluation_ndcg(store)
    if out["first_evaluation"]:
        print("  first evaluation NDCG@10: " + ", ".join(
            f"{k} {v:.3f}" for k, v in out["first_evaluation"].items()))
    return out


def _first_evaluation_ndcg(store) -> dict:
    """model -> NDCG@10 (all users) of the first evaluation."""
    from recsys.usecases.evaluation import evaluation_results

    frame = evaluation_results(store, "demo")
    if frame.empty:
        return {}
    rows = frame[(frame["metric"] == "ndcg") & (frame["k"] == 10)]
    if "slice" in rows:
        rows = rows[rows["slice"].isin(["all", "", None]) | rows["slice"].isna()]
    return {str(m): float(v) for m, v in zip(rows["model"], rows["value"])}


def catalog_at_scale(store, out: dict) -> None:
    """The Catalog page's reads without a query on the big catalog: before (every row, then
    pandas filters and facets) and now (facets counted by the database, one page read)."""
    from recsys import usecases
    from recsys.search.facets import available_facets, facet_values, filter_items

    def before():
        items = store.items("big")
        facets = {c: facet_values(items, c) for c in available_facets(items)}
        shown = filter_items(items, {"master_category": ["Footwear"]}, "").sort_values("item_id")
        return facets, shown.iloc[24:48]

    def now_first():                  # a new catalog version: nothing cached yet
        from recsys.usecases import _cache

        _cache.clear()
        usecases.search_facets(store, "big")
        usecases.browse_catalog(store, "big", filters={"master_category": ["Footwear"]},
                                page=2)

    def now_page():                   # every rerun: a filtered page (facets cached)
        store.items_version("big")
        store.item_count("big")
        usecases.browse_catalog(store, "big", filters={"master_category": ["Footwear"]},
                                keywords="product", page=2)

    out["catalog_whole_table_s"] = best(before, 1)
    out["catalog_narrow_first_s"] = best(now_first, 1)
    out["catalog_narrow_page_s"] = best(now_page)
    print(f"Catalog's data, every row + pandas (before): "
          f"{out['catalog_whole_table_s'] * 1000:8.0f} ms")
    print(f"Catalog's data, facets counted + one page, first (now): "
          f"{out['catalog_narrow_first_s'] * 1000:8.0f} ms")
    print(f"Catalog's data, a filtered page with keywords, later reruns (now): "
          f"{out['catalog_narrow_page_s'] * 1000:8.0f} ms")


def catalog_page_at_scale(at, out: dict) -> None:
    """The Catalog page's whole script run in AppTest on the big catalog (server side), after
    Home: the switch to it, a warm rerun, then a filter and a page change."""
    t = time.perf_counter()
    at.switch_page("app_pages/catalog.py")
    at.run()
    out["catalog_first_run_s"] = time.perf_counter() - t
    t = time.perf_counter()
    at.run()
    out["catalog_warm_run_s"] = time.perf_counter() - t
    t = time.perf_counter()
    at.multiselect(key="cat_f_master_category").set_value(["Footwear"]).run()
    out["catalog_filter_run_s"] = time.perf_counter() - t
    t = time.perf_counter()
    at.number_input(key="cat_page").set_value(3).run()
    out["catalog_next_page_run_s"] = time.perf_counter() - t
    errors = [str(e.value) for e in at.exception]
    print(f"Catalog page script (AppTest, server side): switch from Home "
          f"{out['catalog_first_run_s']:.2f} s, warm rerun {out['catalog_warm_run_s']:.2f} s, "
          f"a filter {out['catalog_filter_run_s']:.2f} s, page 3 "
          f"{out['catalog_next_page_run_s']:.2f} s" + (f"; errors: {errors}" if errors else ""))


def _demo_photos(db: Path, n: int = 2) -> list[str]:
    """`n` demo product photos (the demo's images live beside its database)."""
    photos = sorted((db.parent / "demo" / "images").glob("*.jpg"))
    if not photos:
        raise SystemExit("no demo photos beside the database: pass --photo FILE")
    return [str(photos[(7 + 4 * i) % len(photos)]) for i in range(n)]


if __name__ == "__main__":
    main()
