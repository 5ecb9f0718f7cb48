"""The real peak memory of building the search index from DuckDB, against the storage plan's
estimate (issue 23, item 5): can a 1M x 1280-d index with its IVF part be built on a 24 GB box?

Writes N simulated items (clustered image and text vectors of the given widths, the
generator of `search_peers.py`) to a DuckDB file under data/ (kept, reused when it already
holds N items), then builds the index in a fresh process exactly as the app does
(`index_for_dataset`: stream from DuckDB, the flat rows, the IVF part and its calibration, the
files written beside the database) and prints that process's peak resident memory (VmHWM)
above its baseline, the build time, the plan's estimate (`memory_plan.index_build_bytes`) and
its resident size (`memory_plan.resident_bytes`) next to the size of the saved files.

    python benchmarks/index_build_memory.py --items 1000000 --storage float16
    python benchmarks/index_build_memory.py --items 200000 --storage float32
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_state, peak_rss_mb  # noqa: E402

DATASET, ENCODER, VERSION = "bench", "bench-enc", "v1"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_db(path: Path, n: int) -> float:
    """N items of the search_peers generator (image and text, 640-d each) into `path`."""
    from search_peers import Catalog

    from recsys.store import Store

    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    import pandas as pd

    t0 = time.perf_counter()
    store = Store(path)
    ids = [f"i{j:07d}" for j in range(n)]
    with store.transaction() as cur:
        store.upsert_dataset(cur, DATASET, "catalog")
        frame = pd.DataFrame({"dataset": DATASET, "item_id": ids, "content_hash": ids})
        cur.register("_bench_items", frame)
        cur.execute("INSERT INTO items BY NAME SELECT * FROM _bench_items")
        cur.unregister("_bench_items")
    for start, (img, txt, _, _) in Catalog(n).chunks():
        part = ids[start:start + len(img)]
        store.upsert_embeddings(DATASET, ENCODER, VERSION, "image", part, img, part)
        store.upsert_embeddings(DATASET, ENCODER, VERSION, "text", part, txt, part)
        print(f"  written {start + len(img):,}", flush=True)
    store.close()
    return time.perf_counter() - t0


def build_phase(db: str, storage: str, duckdb_mb: int | None = None) -> None:
    """In a fresh process: build the index from the database, print one JSON line."""
    from recsys.core.config import artifacts_dir
    from recsys.search import index_files
    from recsys.search.index_files import index_for_dataset

    if duckdb_mb:           # the name index_files reads at call time
        index_files.DUCKDB_BUILD_BYTES = duckdb_mb * 2**20
    from recsys.search.memory_plan import index_build_bytes, resident_bytes
    from recsys.store import Store

    store = Store(db)
    shutil.rmtree(artifacts_dir(db, "indexes", DATASET, create=False), ignore_errors=True)
    import faiss  # noqa: F401  (its import is not the build's memory)

    base = rss_mb()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}

    def progress(event) -> None:
        # the peak so far when each stage starts: the load's peak shows at the IVF's start
        stage = getattr(event, "stage", None) or "?"
        if stage not in stages:
            stages[stage] = round((peak_rss_mb() - base) / 1024, 2)
            print(f"  stage {stage}: peak so far {stages[stage]} GB after "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    index = index_for_dataset(store, DATASET, storage=storage, ann="always", plan=False,
                              progress=progress)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb() - base
    n, width = len(index), index.width
    folder = artifacts_dir(db, "indexes", DATASET, create=False)
    files = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    print(json.dumps({
        "items": n, "width": width,
        "duckdb_limit_mb": index_files.DUCKDB_BUILD_BYTES // 2**20, "storage": index.storage, "ann": index.ann is not None,
        "nprobe": index.nprobe, "filter_rule": list(index.filter_rule),
        "build_s": round(seconds, 1), "peak_above_baseline_gb": round(peak / 1024, 2),
        "peak_when_stage_started_gb": stages,
        "peak_bytes_per_cell": round(peak * 2**20 / (n * width), 2),
        "estimate_gb": round(index_build_bytes(n, width, storage, True) / 2**30, 2),
        "resident_estimate_gb": round(resident_bytes(n, width, storage, True) / 2**30, 2),
        "saved_files_gb": round(files / 2**30, 2)}), flush=True)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--storage", default="float16", choices=("float32", "float16"))
    parser.add_argument("--db", default=None,
                        help="default data/build_memory_<items>.duckdb (kept for reuse)")
    parser.add_argument("--duckdb-mb", type=int, default=None,
                        help="DuckDB's memory limit during the build (default: the app's, "
                             "index_files.DUCKDB_BUILD_BYTES)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    db = Path(args.db or ROOT / "data" / f"build_memory_{args.items}.duckdb")
    if args.phase == "build":
        build_phase(str(db), args.storage, args.duckdb_mb)
        return
    print("machine:", json.dumps(machine_state()), flush=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    from recsys.store import Store

    have = 0
    if db.is_file():
        store = Store(db, read_only=True)
        have = store.counts(DATASET)["items"] if DATASET in store.dataset_names() else 0
        store.close()
    if have != args.items:
        print(f"writing {args.items:,} items to {db}", flush=True)
        print(f"  written in {write_db(db, args.items):.0f} s", flush=True)
    cmd = [sys.executable, __file__, "--phase", "build", "--db", str(db), "--storage",
           args.storage, "--items", str(args.items)] + \
        (["--duckdb-mb", str(args.duckdb_mb)] if args.duckdb_mb else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(proc.returncode)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["machine_end"] = machine_state()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
