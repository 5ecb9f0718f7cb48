"""A real shop's catalog feed, end to end, offline: the Myntra catalog (9,583 products with a
photo) written as a Google Merchant Center TSV feed whose `image_link`s point at a local HTTP
server serving the Myntra photos; imported with `import-catalog` (format detected, photos
downloaded through the safe downloader, decoded under the upload budget), optionally
embedded, then imported again (the photo cache: nothing is downloaded twice).

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    python benchmarks/feed_import.py                  # all 9,583 products, import + re-import
    python benchmarks/feed_import.py --embed          # ... and embed them (slow on 2 cores)
    python benchmarks/feed_import.py --limit 2000 --workers 32

Prints rows read / imported / reported and the rows unaccounted for (must be 0), the download
throughput (photos/s) and the times, with the machine's load (a shared 2-core box: say so when
quoting), and writes JSON to benchmarks/results/feed-import-myntra.json. Works in a temporary
folder (database, photo cache); reads `../shared/datasets/myntra_fashion` (or --folder).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_state  # noqa: E402

from recsys import usecases  # noqa: E402
from recsys.core.config import shared_datasets_dir  # noqa: E402
from recsys.data.downloads import DownloadSettings  # noqa: E402
from recsys.store import Store  # noqa: E402

GENDER = {"Men": ("male", "adult"), "Women": ("female", "adult"), "Boys": ("male", "kids"),
          "Girls": ("female", "kids"), "Unisex": ("unisex", "adult")}
HEADER = ["id", "title", "description", "link", "image_link", "brand", "gender", "age_group",
          "color", "google_product_category", "product_type"]


class QuietHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(QuietHandler, directory=str(folder)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def write_feed(styles: Path, images: Path, base: str, out: Path, limit: int | None) -> int:
    """The Myntra rows that have a photo, as a Merchant Center TSV feed; returns the count."""
    have = {p.stem for p in images.glob("*.jpg")}
    n = 0
    with open(styles, newline="", encoding="utf-8") as src, \
            open(out, "w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src, restkey="_more")
        writer = csv.writer(dst, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(HEADER)
        for row in reader:
            if row["id"] not in have:
                continue
            gender, age = GENDER.get(row.get("gender") or "", ("", ""))
            title = (row.get("productDisplayName") or "").replace("\t", " ")
            writer.writerow([
                row["id"], title,
                f"{row.get('baseColour') or ''} {row.get('articleType') or ''} for "
                f"{row.get('usage') or 'everyday'} wear, {row.get('season') or ''} "
                f"{row.get('year') or ''}".strip(),
                f"https://shop.example/p/{row['id']}", f"{base}/{row['id']}.jpg", "", gender, age,
                row.get("baseColour") or "", row.get("masterCategory") or "",
                " > ".join(p for p in (row.get("masterCategory"), row.get("subCategory"),
                                       row.get("articleType")) if p)])
            n += 1
            if limit and n >= limit:
                break
    return n


def accounted(rep) -> dict:
    return {"rows_read": rep.rows_read, "imported": rep.imported,
            "reported": rep.rows_skipped,
            "unaccounted": rep.rows_read - rep.imported - rep.rows_skipped,
            "problems": rep.problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path,
                    default=shared_datasets_dir() / "myntra_fashion")
    ap.add_argument("--limit", type=int, default=None, help="only the first N products")
    ap.add_argument("--workers", type=int, default=16, help="concurrent downloads")
    ap.add_argument("--embed", action="store_true", help="also embed the imported products")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" /
                    "feed-import-myntra.json")
    args = ap.parse_args()
    styles, images = args.folder / "styles.csv", args.folder / "images"
    if not styles.is_file() or not images.is_dir():
        sys.exit(f"Myntra not found at {args.folder} (styles.csv + images/); give --folder.")
    os.environ["RECSYS_ALLOW_PRIVATE_URLS"] = "1"       # the local server stands for the shop
    before = machine_state()
    httpd = serve(images)
    base = f"http://127.0.0.1:{httpd.server_port}"
    settings = DownloadSettings(workers=args.workers)
    with tempfile.TemporaryDirectory(prefix="feed-import-") as tmp:
        feed = Path(tmp) / "myntra_merchant.tsv"
        products = write_feed(styles, images, base, feed, args.limit)
        store = Store(Path(tmp) / "shop.duckdb")
        started = time.perf_counter()
        rep = usecases.import_catalog(store, feed, fmt="auto", dataset="myntra-feed",
                                      download=settings)
        import_seconds = time.perf_counter() - started
        during = machine_state(sample_cpu=False)
        first = {**accounted(rep), "format": rep.details.get("format"),
                 "downloaded": rep.details.get("photos downloaded"),
                 "download_failed": rep.details.get("photo downloads failed"),
                 "download_photos_per_s": rep.details.get("download photos/s"),
                 "seconds": round(import_seconds, 1)}
        embed = None
        if args.embed:
            started = time.perf_counter()
            emb = usecases.embed(store, "myntra-feed", "frozen")
            seconds = time.perf_counter() - started
            embed = {"encoder": "frozen (pretrained EfficientNet-Lite0 + MiniLM)",
                     "embedded": emb.embedded, "seconds": round(seconds, 1),
                     "items_per_s": round(sum(emb.embedded.values()) / 2 / seconds, 1)}
        started = time.perf_counter()
        again = usecases.import_catalog(store, feed, fmt="auto", dataset="myntra-feed",
                                        download=settings)
        second = {**accounted(again), "downloaded": again.details.get("photos downloaded"),
                  "from_cache": again.details.get("photos already in the cache"),
                  "seconds": round(time.perf_counter() - started, 1)}
        store.close()
    httpd.shutdown()
    result = {"data": "Myntra (real catalog text and photos) as a Merchant Center TSV feed, "
                      "photos served by a local HTTP server on this machine",
              "products_in_feed": products, "download_workers": args.workers,
              "import": first, "embed": embed, "reimport": second,
              "machine_before": before, "machine_after_import": during,
              "command": "python benchmarks/feed_import.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"feed: {products:,} Myntra products as a Merchant TSV feed, photos on {base}")
    print(f"import:    {first['rows_read']:,} rows read, {first['imported']:,} imported, "
          f"{first['reported']:,} reported, {first['unaccounted']} unaccounted "
          f"({first['problems'] or 'no problems'})")
    print(f"download:  {first['downloaded']:,} photos, {first['download_failed']:,} failed, "
          f"{first['download_photos_per_s']} photos/s; import total {first['seconds']} s")
    if embed:
        print(f"embed:     {embed['embedded']} in {embed['seconds']} s "
              f"({embed['items_per_s']} items/s)")
    print(f"re-import: {second['downloaded']:,} downloaded, {second['from_cache']:,} from the "
          f"cache, {second['unaccounted']} unaccounted, {second['seconds']} s")
    print(f"load (1/5 min) before {before['load_1min']}/{before['load_5min']}, after the "
          f"import {during['load_1min']}/{during['load_5min']} on {before['cores']} cores; "
          f"busy CPU before {before.get('cpu_busy_percent')}%")


if __name__ == "__main__":
    main()
