"""Benchmark the app's photo search path on a big catalog: the search use case end to end.

Runs on the 1M-item DuckDB file of `search_scale.py --load-test` (realistic vectors: the real
Myntra catalog-clip embeddings expanded by small perturbations, stored under the encoder name
`bench-enc@v1`). Queries are real Myntra product photos, encoded by the real catalog-clip
encoder those vectors came from (registered here as the encoder kind `bench-enc`, so the use
case loads it like any encoder), then ranked and joined with their catalog rows exactly as the
Visual search page and `python -m recsys search` do.

Phases (each in its own process, so its peak memory is its own):

* `usecase`: `prepare_search` cold (index files memory-mapped, encoder loaded), then photo
  queries through `search_similar` (encode + filter + rank + join, and the whole call),
  filtered queries (facets + price: the cached mask; the first call builds it), a catalog
  product's neighbours (`index.vector`, no matrix copy), words, and exact search for
  comparison.
* `apptest`: the Visual search page itself in Streamlit's AppTest (the script run after an
  upload: server-side time without the browser), on the big catalog and on Myntra.
* `browser`: `streamlit run app.py` on the big catalog driven by Chromium (Playwright), as
  `benchmarks/app.py` does on Myntra: upload to results grid.

`--label` first gives the big catalog's items the titles and photos of the real products they
were expanded from (the same base mapping as `search_scale.expand`), so result cards show
real photos as on Myntra (rewrites the items rows; vectors and index are untouched).

    python benchmarks/search_app_path.py --db data/bench_search.duckdb \\
        --real-db data/myntra.duckdb --label --phases usecase apptest browser

Numbers, not assertions: they depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from machine import machine_state, peak_rss_mb  # noqa: E402
from recsys.store import Store  # noqa: E402

BENCH_ENCODER = ("bench-enc", "v1")
FILTERS = {"gender": ["Women"], "master_category": ["Apparel", "Footwear"]}
PRICE = (20.0, 80.0)


# -- the encoder of the expanded vectors ------------------------------------------------------
def register_bench_encoder(real_db: str, real_dataset: str) -> str:
    """Make `bench-enc@v1` load the real catalog-clip encoder of `real_db` (the vectors were
    expanded from its embeddings); returns the real encoder's spec."""
    from recsys.encoders import get_encoder, register_encoder_kind

    real = Store(real_db, read_only=True)
    sets = real.embedding_sets(real_dataset)
    spec = f"{sets.iloc[0]['encoder']}@{sets.iloc[0]['version']}"
    real.close()

    def factory(parsed, store, dataset):
        source = Store(real_db, read_only=True)
        try:
            enc = get_encoder(spec, source, real_dataset)
        finally:
            source.close()
        enc = copy.copy(enc)                     # same towers, the bench vectors' name
        enc.name, enc.version = BENCH_ENCODER
        return enc

    register_encoder_kind(BENCH_ENCODER[0], factory)
    return spec


def label_items(db: str, dataset: str, real_db: str, real_dataset: str) -> dict:
    """Give each expanded item the title, photo and descriptive columns of the real product
    it was expanded from (`search_scale.expand`: the real items first, then random picks of
    `default_rng(0)`), keeping its facets, price and content hash."""
    real = Store(real_db, read_only=True)
    items = real.items(real_dataset)             # the order of load_item_vectors (item_id)
    real.close()
    store = Store(db)
    bench = store.items(dataset)
    n, m = len(bench), len(items)
    rng = np.random.default_rng(0)
    base = np.concatenate([np.arange(min(n, m)), rng.integers(0, m, max(0, n - m))])
    src = items.iloc[base].reset_index(drop=True)
    same = float((src["article_type"].to_numpy() == bench["article_type"].to_numpy()).mean())
    if same < 0.999:
        store.close()
        raise SystemExit(f"the base mapping does not match this file ({same:.1%} of the "
                         "article types agree): was it written by search_scale.py?")
    t0 = time.perf_counter()
    for col in ("title", "description", "sub_category", "season", "usage", "year", "brand",
                "image_path"):
        if col in src:
            bench[col] = src[col].to_numpy()
    with store.transaction() as cur:
        store.upsert_items(cur, dataset, bench)
    store.close()
    return {"labelled_items": n, "seconds": round(time.perf_counter() - t0, 1)}


# -- measurements ---------------------------------------------------------------------------------
def photos(real_db: str, real_dataset: str, count: int, seed: int = 3) -> list[str]:
    real = Store(real_db, read_only=True)
    paths = real.items(real_dataset)["image_path"].dropna().tolist()
    real.close()
    rng = np.random.default_rng(seed)
    return [paths[i] for i in rng.choice(len(paths), count, replace=False)]


def med(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


def phase_usecase(args) -> dict:
    from recsys import usecases

    register_bench_encoder(args.real_db, args.real_dataset)
    store = Store(args.db, read_only=True)
    out: dict = {"machine_before": machine_state(sample_cpu=False)}
    t0 = time.perf_counter()
    info = usecases.prepare_search(store, args.dataset)
    out["prepare_search_cold_s"] = round(time.perf_counter() - t0, 2)
    out["index"] = {"items": info.items, "storage": info.storage, "ann": info.ann,
                    "encoder": info.encoder}
    out["rss_after_prepare_mb"] = round(peak_rss_mb())
    queries = [Path(p).read_bytes() for p in photos(args.real_db, args.real_dataset,
                                                     args.queries)]

    def run(label: str, calls) -> None:
        walls, parts = [], {}
        for call in calls:
            t = time.perf_counter()
            hits = call()
            walls.append(time.perf_counter() - t)
            for k, v in hits.timings.items():
                parts.setdefault(k, []).append(v)
        out[label] = {"calls": len(walls), "method": hits.method,
                      "use_case_total_ms": med(walls),
                      **{f"{k}_ms": med(v) for k, v in parts.items()},
                      "max_total_ms": round(1000 * max(walls), 1)}
        print(label, json.dumps(out[label]), flush=True)

    usecases.search_similar(store, args.dataset, photo=queries[0], k=16)    # warm-up
    run("photo", [lambda q=q: usecases.search_similar(store, args.dataset, photo=q, k=16)
                  for q in queries])
    t = time.perf_counter()
    usecases.search_similar(store, args.dataset, photo=queries[0], k=16, filters=FILTERS,
                            price=PRICE)
    out["first_filtered_call_s"] = round(time.perf_counter() - t, 2)   # builds the facet mask
    run("photo_filtered", [lambda q=q: usecases.search_similar(
        store, args.dataset, photo=q, k=16, filters=FILTERS, price=PRICE) for q in queries])
    ids = list(np.random.default_rng(5).choice(store.item_ids(args.dataset), args.queries))
    usecases.search_similar(store, args.dataset, item_id=ids[0], k=16)      # builds id map
    run("catalog_product", [lambda i=i: usecases.search_similar(store, args.dataset,
                                                                 item_id=i, k=16) for i in ids])
    run("words", [lambda w=w: usecases.search_similar(store, args.dataset, text=w, k=16)
                  for w in ("red dress", "black leather boots", "white sports shoes",
                            "blue denim jeans", "a watch with a white dial")])
    run("photo_exact", [lambda q=q: usecases.search_similar(
        store, args.dataset, photo=q, k=16, method="exact") for q in queries[:3]])
    out["peak_mb"] = round(peak_rss_mb())
    out["machine_after"] = machine_state(sample_cpu=False)
    store.close()
    return out


def phase_apptest(args) -> dict:
    from streamlit.testing.v1 import AppTest

    register_bench_encoder(args.real_db, args.real_dataset)
    queries = photos(args.real_db, args.real_dataset, args.queries, seed=11)
    os.environ["RECSYS_DB"] = str(Path(args.db).resolve())
    out: dict = {"machine_before": machine_state(sample_cpu=False), "db": args.db}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    t0 = time.perf_counter()
    at.run()
    out["first_page_home_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    at.switch_page("app_pages/visual_search.py")
    at.run()
    out["open_visual_search_s"] = round(time.perf_counter() - t0, 2)
    assert not at.exception, [e.value for e in at.exception]
    runs, cards = [], []
    for path in queries:
        t0 = time.perf_counter()
        at.file_uploader[0].set_value((Path(path).name, Path(path).read_bytes(),
                                       "image/jpeg")).run()
        runs.append(time.perf_counter() - t0)
        page = "\n".join(m.value for m in at.markdown)
        cards.append(page.count('class="rs-card"'))
        assert not at.exception, [e.value for e in at.exception]
    out["upload_to_results_script_ms"] = [round(1000 * r) for r in runs]
    out["upload_to_results_script_median_ms"] = med(runs[1:] or runs)
    out["cards_shown"] = cards
    out["peak_mb"] = round(peak_rss_mb())
    out["machine_after"] = machine_state(sample_cpu=False)
    return out


def phase_browser(args) -> dict:
    """`streamlit run app.py` on the big catalog (the bench encoder registered at interpreter
    start through a sitecustomize module), Chromium uploading photos on Visual search."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from app import open_app, open_page, start_app, upload_photo
    from playwright.sync_api import sync_playwright

    hook = tempfile.TemporaryDirectory()
    (Path(hook.name) / "sitecustomize.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from search_app_path import register_bench_encoder\n"
        f"register_bench_encoder({str(Path(args.real_db).resolve())!r}, "
        f"{args.real_dataset!r})\n")
    os.environ["PYTHONPATH"] = os.pathsep.join([hook.name, os.environ.get("PYTHONPATH", "")])
    queries = photos(args.real_db, args.real_dataset, args.queries, seed=11)
    out: dict = {"machine_before": machine_state(sample_cpu=False)}
    proc, url = start_app(Path(args.db).resolve())
    try:
        with sync_playwright() as p:
            browser, page, seconds = open_app(p, url)
            out["first_page_s"] = round(seconds, 1)
            t0 = time.perf_counter()
            open_page(page, "Visual search", 900_000)
            out["open_visual_search_s"] = round(time.perf_counter() - t0, 1)
            answers = []
            for path in queries:
                answers.append(upload_photo(page, path, 300_000))
                print(f"upload to grid {1000 * answers[-1]:.0f} ms", flush=True)
            out["visual_search_ms"] = [round(1000 * a) for a in answers]
            out["visual_search_median_ms"] = med(answers[1:] or answers)
            shot = ROOT / "benchmarks" / "results" / f"search-app-{args.dataset}.png"
            page.screenshot(path=str(shot), full_page=False)
            out["screenshot"] = str(shot.relative_to(ROOT))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    out["machine_after"] = machine_state(sample_cpu=False)
    return out


PHASES = {"usecase": phase_usecase, "apptest": phase_apptest, "browser": phase_browser}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(ROOT / "data" / "bench_search.duckdb"))
    ap.add_argument("--dataset", default="bench")
    ap.add_argument("--real-db", default=str(ROOT / "data" / "myntra.duckdb"))
    ap.add_argument("--real-dataset", default="myntra")
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--label", action="store_true", help="give the items real titles/photos")
    ap.add_argument("--phases", nargs="+", choices=list(PHASES), default=["usecase"])
    ap.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                          "search-app-path.json"))
    args = ap.parse_args()
    if args.phase:                                   # one phase, in this process
        print("RESULT " + json.dumps(PHASES[args.phase](args)), flush=True)
        return
    out = Path(args.out)
    results: dict = json.loads(out.read_text()) if out.is_file() else {}   # other phases kept
    results.update({"db": args.db, "dataset": args.dataset, "real_db": args.real_db})
    if args.label:
        results["label"] = label_items(args.db, args.dataset, args.real_db, args.real_dataset)
        print("label", json.dumps(results["label"]), flush=True)
    for name in args.phases:
        cmd = [sys.executable, __file__, "--phase", name, "--db", args.db, "--dataset",
               args.dataset, "--real-db", args.real_db, "--real-dataset", args.real_dataset,
               "--queries", str(args.queries)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            sys.stderr.write(proc.stderr[-4000:])
            results[name] = {"failed": proc.returncode}
            continue
        results[name] = json.loads(found[-1][len("RESULT "):])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
