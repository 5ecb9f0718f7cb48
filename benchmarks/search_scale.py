"""Benchmark photo search at 10k / 100k / 1M items: the issue-14 table, ratios from one script.

Realistic vectors: the real Myntra image/text embeddings of a database (9,583 items), expanded
by small perturbations: each synthetic item is a real item moved a random 0-35% of the way
towards one of its 10 nearest real neighbours (the same move for its photo and text vectors),
plus isotropic noise of norm 0.15, renormalised (cosine to its base item ~0.9-0.98). Queries are
new photos of real products: a real photo vector plus noise of norm 0.1, searched with photo and
text weighted 0.5 each (the app's default).

Rows: the project's previous index (full argsort, float64 temporaries, as it was before issue
14), the new exact search (fp32 and fp16 storage), the approximate IVF index (recall@10 against
exact), faiss IndexFlatIP on one thread over the same rows, the memory-bandwidth floor (bytes
streamed per query / single-thread read bandwidth measured here, and at the issue's 12 GB/s),
and a filtered search (gender + category + price range, about 10% kept: mask time + search
time). `--compare-ann N` also builds hnswlib and usearch HNSW indexes at N items; `--load-test
N` writes N items to a DuckDB file and measures, each in its own process, the old loader, the
full index build from DuckDB, the memory-mapped reload and an incremental update (time and peak
memory).

    python benchmarks/search_scale.py --db data/myntra.duckdb --sizes 10000 100000 1000000 \\
        --compare-ann 100000 --load-test 1000000

`--peers N` instead runs the issue-23 comparison (`search_peers.py`): N simulated clustered
items at the app's vector width, held-out photo and text queries, the automatic search vs faiss
IVF tuned to the same recall, filtered (5% / 50%) vs faiss IVF + IDSelector, resident memory:

    python benchmarks/search_scale.py --peers 1000000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import machine_state, peak_rss_mb  # noqa: E402

from recsys.core import config  # noqa: E402
from recsys.search.facets import FacetMasks  # noqa: E402
from recsys.search.index_files import index_for_dataset  # noqa: E402
from recsys.search.vector_index import ANN_MIN_ITEMS, VectorIndex  # noqa: E402
from recsys.store import Store  # noqa: E402

FACET_COLUMNS = ("gender", "master_category", "article_type", "base_colour")
FILTER = {"gender": ["Women"], "master_category": ["Apparel", "Footwear"]}
PRICE = (20.0, 80.0)


# -- data ----------------------------------------------------------------------------------------
def real_vectors(db: str, dataset: str):
    from recsys.vectors.loading import load_item_vectors

    store = Store(db, read_only=True)
    vec = load_item_vectors(store, dataset)
    items = store.items(dataset, vec.item_ids)
    store.close()
    if vec.image is None or vec.text is None:
        sys.exit(f"{db} has no image+text vectors for {dataset}: run `python -m recsys embed`")
    return vec.image, vec.text, items


def neighbours(x: np.ndarray, k: int = 10) -> np.ndarray:
    out = np.empty((len(x), k), dtype=np.int64)
    for s in range(0, len(x), 2048):
        sims = x[s:s + 2048] @ x.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -np.inf
        out[s:s + 2048] = np.argpartition(-sims, k, axis=1)[:, :k]
    return out


def expand(img: np.ndarray, txt: np.ndarray, items: pd.DataFrame, n: int, seed: int = 0):
    """n items: the real ones first, then perturbed copies (see the module docstring)."""
    rng = np.random.default_rng(seed)
    nn = neighbours(img)
    real = len(img)
    base = np.concatenate([np.arange(min(n, real)), rng.integers(0, real, max(0, n - real))])
    out_i = np.empty((n, img.shape[1]), dtype=np.float32)
    out_t = np.empty((n, txt.shape[1]), dtype=np.float32)
    for s in range(0, n, 100_000):
        b = base[s:s + 100_000]
        synth = np.arange(s, s + len(b)) >= real
        nb = nn[b, rng.integers(0, nn.shape[1], len(b))]
        a = (rng.uniform(0, 0.35, len(b)) * synth)[:, None].astype(np.float32)
        for src, dst in ((img, out_i), (txt, out_t)):
            v = (1 - a) * src[b] + a * src[nb]
            noise = rng.standard_normal(v.shape).astype(np.float32)
            v += synth[:, None] * 0.15 * noise / np.sqrt(v.shape[1])
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            dst[s:s + len(b)] = v
    facets = items.reset_index(drop=True).iloc[base][list(FACET_COLUMNS)].reset_index(drop=True)
    facets["item_id"] = [f"i{j:07d}" for j in range(n)]
    facets["price"] = np.round(np.exp(rng.normal(3.7, 0.6, n)), 2)
    return out_i, out_t, facets


def queries(img: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = img[rng.integers(0, len(img), count)] + \
        0.1 * rng.standard_normal((count, img.shape[1])).astype(np.float32) / np.sqrt(img.shape[1])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# -- the previous implementation (before issue 14), kept here for the ratio ---------------------
class LegacyIndex:
    """recsys/search/item_index.py's ItemIndex search as it was: two float32 matrix-vector products with
    float64 accumulators, ~8 float64 temporaries, a full stable argsort, and a Python loop over
    item ids for filters (catalog.rank_subset)."""

    def __init__(self, ids, image, text):
        self.item_ids, self.image, self.text = list(ids), image, text
        self._pos = {i: p for p, i in enumerate(self.item_ids)}
        self.has = np.ones(len(ids), dtype=bool)

    def search(self, q, k=10, w=0.5, exclude=()):
        img_s = self._scores(self.image, [q])
        txt_s = self._scores(self.text, [q])
        fin_i, fin_t = np.isfinite(img_s), np.isfinite(txt_s)
        w_i = np.where(fin_i, w, 0.0)
        w_t = np.where(fin_t, 1.0 - w, 0.0)
        w_i = np.where((w_i + w_t == 0) & fin_i, 1.0, w_i)
        w_t = np.where((w_i + w_t == 0) & fin_t, 1.0, w_t)
        total = w_i + w_t
        comb = (np.where(fin_i, img_s, 0) * w_i + np.where(fin_t, txt_s, 0) * w_t)
        comb = np.where(total > 0, comb / np.where(total > 0, total, 1), -np.inf)
        for item in exclude:
            if item in self._pos:
                comb[self._pos[item]] = -np.inf
        order = np.argsort(-comb, kind="stable")[:k]
        return [self.item_ids[i] for i in order]

    def _scores(self, matrix, qs):
        total = np.zeros(matrix.shape[0], dtype=np.float64)
        for q in qs:
            total += matrix @ (q / np.linalg.norm(q))
        total /= len(qs)
        return np.where(self.has, total, -np.inf)

    def rank_subset(self, candidates, q, k=10):
        allowed = {str(c) for c in candidates}
        exclude = [i for i in self.item_ids if i not in allowed]
        return self.search(q, k, exclude=exclude)


# -- measuring -----------------------------------------------------------------------------------
def timed(fn, qs, repeat_first: bool = True) -> tuple[float, list]:
    """Median milliseconds per query (after one warm-up query) and the results."""
    if repeat_first:
        fn(qs[0])
    times, out = [], []
    for q in qs:
        t0 = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)), out


def read_bandwidth() -> float:
    """Single-thread read bandwidth (bytes/s): summing a 512 MB float32 array, best of 3."""
    x = np.ones(128 * 1024 * 1024, dtype=np.float32)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        np.add.reduce(x)
        best = min(best, time.perf_counter() - t0)
    return x.nbytes / best


def recall(approx: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def run_size(n: int, img, txt, items, qs, bandwidth: float, legacy_queries: int) -> dict:
    """Build every variant at n items, then time them query by query in turn (so a burst of
    load from other processes hits all of them alike): medians per variant."""
    import faiss

    print(f"\n== {n:,} items ==", flush=True)
    t0 = time.perf_counter()
    ei, et, facets = expand(img, txt, items, n)
    ids = facets["item_id"].tolist()
    row: dict = {"items": n, "generate_s": round(time.perf_counter() - t0, 1)}
    w = {"image": 0.5, "text": 0.5}
    d = ei.shape[1]
    legacy = LegacyIndex(ids, ei, et)
    indexes = {}
    for storage in ("float32", "float16"):
        t0 = time.perf_counter()
        ix = VectorIndex({"image": d, "text": d}, storage=storage, ann_min_items=10**12)
        for s in range(0, n, 100_000):
            ix.add(ids[s:s + 100_000], {"image": ei[s:s + 100_000], "text": et[s:s + 100_000]})
        row[f"build_{storage}_s"] = round(time.perf_counter() - t0, 1)
        indexes[storage] = ix
    ix = indexes["float32"]
    t0 = time.perf_counter()
    ix.build_ann()
    row["ann_build_s"] = round(time.perf_counter() - t0, 1)
    row["ann_nlist"], row["ann_nprobe"] = int(ix.ann.nlist), int(ix.nprobe)
    ix.ann_min_items = ANN_MIN_ITEMS              # `auto` follows the real rule from here on
    flats = {}
    for name in ("faiss_flat_concat", "faiss_flat_1mod"):
        flat = faiss.IndexFlatIP(2 * d if name.endswith("concat") else d)
        for s in range(0, n, 100_000):
            part = np.hstack([ei[s:s + 100_000], et[s:s + 100_000]]) \
                if name.endswith("concat") else ei[s:s + 100_000]
            flat.add(np.ascontiguousarray(part))
        flats[name] = flat
    t0 = time.perf_counter()
    masks = FacetMasks(facets, ix.item_ids)
    row["facet_masks_build_s"] = round(time.perf_counter() - t0, 2)
    mask = masks.mask(FILTER, PRICE)
    row["filter_kept_share"] = float(mask.mean())
    allowed_ids = [ids[i] for i in np.flatnonzero(mask)]
    f16 = indexes["float16"]
    both = lambda q: {"image": q, "text": q}               # noqa: E731
    methods = {
        "legacy": lambda q: legacy.search(q),
        "exact_float32": lambda q: ix.search(both(q), w, 10, method="exact").slots,
        "exact_float16": lambda q: f16.search(both(q), w, 10, method="exact").slots,
        "ann": lambda q: ix.search(both(q), w, 10, method="ann").slots,
        "faiss_flat_concat": lambda q: flats["faiss_flat_concat"].search(
            np.concatenate([q, q])[None] * 0.5, 10)[1][0],
        "faiss_flat_1mod": lambda q: flats["faiss_flat_1mod"].search(q[None], 10)[1][0],
        "mask": lambda q: masks.mask(FILTER, PRICE),
        # filtered: the facet mask is computed inside the timed call, then `auto` decides
        # (the IVF index with a selector above ANN_MIN_ITEMS items, else the exact scan)
        "filtered": lambda q: ix.search(both(q), w, 10, allowed=masks.mask(FILTER, PRICE),
                                        method="auto" if n >= ANN_MIN_ITEMS else "exact"),
        "filtered_fp16": lambda q: f16.search(both(q), w, 10,
                                              allowed=masks.mask(FILTER, PRICE),
                                              method="exact"),
        "legacy_filtered": lambda q: legacy.rank_subset(allowed_ids, q),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    out: dict[str, list] = {m: [] for m in methods}
    slow = {"legacy": legacy_queries, "legacy_filtered": max(1, legacy_queries // 3)}
    for fn in methods.values():                           # warm-up (page cache, lazy setup)
        if fn is not methods["legacy_filtered"]:
            fn(qs[0])
    for i, q in enumerate(qs):
        for name, fn in methods.items():
            if i >= slow.get(name, len(qs)):
                continue
            t0 = time.perf_counter()
            out[name].append(fn(q))
            times[name].append(time.perf_counter() - t0)
    for name in methods:
        row[f"{name}_ms"] = 1000 * float(np.median(times[name]))
    exact = out["exact_float32"]
    row["fp16_recall@10"] = recall(out["exact_float16"], exact)
    row["ann_recall@10"] = recall(out["ann"], exact)
    truth = [ix.search(both(q), w, 10, allowed=mask, method="exact").slots for q in qs]
    for name in ("filtered", "filtered_fp16"):
        row[f"{name}_method"] = out[name][0].method
        row[f"{name}_recall@10"] = recall([r.slots for r in out[name]], truth)
        assert all(mask[np.searchsorted(ix.alive_slots, r.slots)].all() for r in out[name])
    row["floor_fp32_ms"] = 1000 * n * 2 * d * 4 / bandwidth
    row["floor_fp16_ms"] = row["floor_fp32_ms"] / 2
    row["floor_fp32_12GBs_ms"] = 1000 * n * 2 * d * 4 / 12e9
    row["floor_1mod_12GBs_ms"] = row["floor_fp32_12GBs_ms"] / 2
    for key, value in list(row.items()):
        if isinstance(value, float):
            row[key] = round(value, 3)
    print(json.dumps(row), flush=True)
    return row


# -- ANN libraries compared ----------------------------------------------------------------------
def compare_ann(n: int, img, txt, items, qs) -> list[dict]:
    """faiss IVF (chosen) vs hnswlib vs usearch HNSW at n items: build, query, recall@10."""
    print(f"\n== ANN libraries at {n:,} items ==", flush=True)
    ei, et, facets = expand(img, txt, items, n)
    d = ei.shape[1]
    rows_mat = np.hstack([ei, et]).astype(np.float32)
    qcat = np.hstack([qs, qs]) * 0.5
    ix = VectorIndex({"image": d, "text": d}, ann_min_items=10**12)
    ix.add(facets["item_id"].tolist(), {"image": ei, "text": et})
    exact = [ix.search({"image": q, "text": q}, {"image": .5, "text": .5}, 10,
                       method="exact").slots for q in qs]
    out = []
    t0 = time.perf_counter()
    ix.build_ann()
    build = time.perf_counter() - t0
    ms, res = timed(lambda q: ix.search({"image": q, "text": q}, {"image": .5, "text": .5}, 10,
                                        method="ann"), qs)
    out.append({"library": "faiss IVF-fp16 (chosen)", "build_s": round(build, 1),
                "query_ms": round(ms, 3), "recall@10": recall([r.slots for r in res], exact),
                "params": f"nlist {ix.ann.nlist}, nprobe {ix.nprobe} (calibrated)",
                "incremental": "add + remove", "filters": "IDSelector inside the scan"})
    threads = 2
    try:
        import hnswlib

        t0 = time.perf_counter()
        h = hnswlib.Index(space="ip", dim=2 * d)
        h.init_index(max_elements=n, ef_construction=100, M=16)
        h.set_num_threads(threads)
        h.add_items(rows_mat, np.arange(n))
        build = time.perf_counter() - t0
        h.set_num_threads(1)
        for ef in (32, 64, 128):
            h.set_ef(ef)
            ms, res = timed(lambda q: h.knn_query(q[None], k=10)[0][0], qcat)
            out.append({"library": "hnswlib HNSW", "build_s": round(build, 1),
                        "query_ms": round(ms, 3), "recall@10": recall(res, exact),
                        "params": f"M 16, efC 100, ef {ef}",
                        "incremental": "add + mark_deleted", "filters": "Python callback"})
        del h
    except ImportError:
        print("hnswlib not installed: skipped")
    try:
        from usearch.index import Index

        t0 = time.perf_counter()
        u = Index(ndim=2 * d, metric="ip", dtype="f16", connectivity=16, expansion_add=128)
        u.add(np.arange(n), rows_mat, threads=threads)
        build = time.perf_counter() - t0
        for ef in (32, 64, 128):
            u.expansion_search = ef
            ms, res = timed(lambda q: u.search(q, 10, threads=1).keys, qcat)
            out.append({"library": "usearch HNSW-f16", "build_s": round(build, 1),
                        "query_ms": round(ms, 3), "recall@10": recall(res, exact),
                        "params": f"M 16, efC 128, ef {ef}",
                        "incremental": "add + remove", "filters": "compiled predicate"})
        del u
    except ImportError:
        print("usearch not installed: skipped")
    for r in out:
        r["recall@10"] = round(r["recall@10"], 3)
        print(json.dumps(r), flush=True)
    return out


# -- loading from DuckDB, each phase in its own process for its peak memory ---------------------
def phase(args) -> None:
    """One measured step in a fresh process: prints a JSON line (seconds, peak RSS)."""
    base = peak_rss_mb()
    store = Store(args.bench_db)
    t0 = time.perf_counter()
    out: dict = {"phase": args.phase, "rss_after_imports_mb": round(base)}
    if args.phase == "legacy-load":
        image, text = legacy_load(store, "bench")
        out["loaded"] = int(image.shape[0])
    else:
        t1 = time.perf_counter()
        fingerprint = store.embedding_fingerprint("bench", "bench-enc", "v1")
        out["fingerprint_s"] = round(time.perf_counter() - t1, 2)
        ix = index_for_dataset(store, "bench")
        out.update(action=ix.meta.get("action"), items=len(ix), same=fingerprint ==
                   ix.meta.get("fingerprint"), ann=ix.ann is not None, nprobe=ix.nprobe,
                   open_s=round(time.perf_counter() - t1 - out["fingerprint_s"], 2))
        q = ix.rows(ix.alive_slots[:1])[0, :256]
        t1 = time.perf_counter()
        ix.search({"image": q, "text": q}, {"image": .5, "text": .5}, 10)
        out["first_query_ms"] = round(1000 * (time.perf_counter() - t1), 1)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = round(peak_rss_mb())
    store.close()
    print(json.dumps(out), flush=True)


def legacy_load(store: Store, dataset: str):
    """load_item_vectors as it was before issue 14 (per modality: arrow -> numpy, a zero
    matrix, a scatter, a norm, a division)."""
    item_ids = store.item_ids(dataset)
    sets = store.embedding_sets(dataset)
    encoder, version = str(sets.iloc[0]["encoder"]), str(sets.iloc[0]["version"])
    position = {item: i for i, item in enumerate(item_ids)}
    mats = []
    for modality in ("image", "text"):
        tbl = store.cursor().sql(
            """SELECT item_id, vector FROM embeddings WHERE dataset = $d AND encoder = $e
               AND version = $v AND modality = $m ORDER BY item_id""",
            params={"d": dataset, "e": encoder, "v": version, "m": modality}).to_arrow_table()
        ids = tbl.column("item_id").to_pylist()
        flat = np.asarray(tbl.column("vector").combine_chunks().flatten(), dtype=np.float32)
        vectors = flat.reshape(len(ids), -1)
        full = np.zeros((len(item_ids), vectors.shape[1]), dtype=np.float32)
        rows = [(position[i], k) for k, i in enumerate(ids) if i in position]
        dst, src = map(np.array, zip(*rows))
        full[dst] = vectors[src]
        norms = np.linalg.norm(full, axis=1, keepdims=True)
        mats.append(full / np.where(norms > 0, norms, 1.0))
    return mats


def load_test(n: int, img, txt, items, path: Path, reuse: bool = False) -> list[dict]:
    print(f"\n== loading {n:,} items from DuckDB ==", flush=True)
    import shutil

    shutil.rmtree(config.artifacts_dir(path, "indexes", "bench", create=False),
                  ignore_errors=True)
    ids = [f"i{j:07d}" for j in range(n)]
    written = 0
    if reuse and path.is_file():
        store = Store(path)
        written = store.counts("bench")["items"] if "bench" in store.dataset_names() else 0
        store.close()
    reused = written == n
    if not reused:
        write_bench_db(n, img, txt, items, path)
    results = [{"phase": "write-duckdb", "reused": reused,
                "db_mb": round(path.stat().st_size / 2**20)}]
    return _load_phases(results, ids, img, path)


def write_bench_db(n: int, img, txt, items, path: Path) -> None:
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    ei, et, facets = expand(img, txt, items, n)
    store = Store(path)
    t0 = time.perf_counter()
    ids = facets["item_id"].tolist()
    frame = facets.assign(dataset="bench", content_hash=ids)
    with store.transaction() as cur:
        store.upsert_dataset(cur, "bench", "catalog")
        cur.register("_bench_items", frame)
        cur.execute("INSERT INTO items BY NAME SELECT * FROM _bench_items")
        cur.unregister("_bench_items")
    for s in range(0, n, 100_000):
        sl = slice(s, s + 100_000)
        for m, mat in (("image", ei), ("text", et)):
            store.upsert_embeddings("bench", "bench-enc", "v1", m, ids[sl], mat[sl], ids[sl])
    print(json.dumps({"phase": "write-duckdb", "seconds": round(time.perf_counter() - t0, 1)}),
          flush=True)
    store.close()


def _load_phases(results: list[dict], ids: list[str], img, path: Path) -> list[dict]:
    def run(name: str) -> dict:
        cmd = [sys.executable, __file__, "--phase", name, "--bench-db", str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-2000:])
            return {"phase": name, "error": proc.returncode}
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(line), flush=True)
        return line

    results.append(run("legacy-load"))
    results.append(run("build"))
    results.append(run("reload"))
    store = Store(path)
    changed = ids[:1000]
    rng = np.random.default_rng(5)
    vec = rng.standard_normal((1000, img.shape[1])).astype(np.float32)
    store.upsert_embeddings("bench", "bench-enc", "v1", "image", changed, vec,
                            [f"new-{i}" for i in changed])
    store.close()
    results.append(run("update"))
    return results


# -- output --------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    def f(v):
        return "—" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100
                                       else f"{v:.0f}")

    lines = ["| single photo query (image + text, weights 0.5), top-10 | "
             + " | ".join(f"{r['items']:,} items" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    spec = [("project index before issue 14", "legacy_ms", ""),
            ("new exact, fp32 (faiss flat, 1 thread)", "exact_float32_ms", ""),
            ("new exact, fp16 storage", "exact_float16_ms", ""),
            ("new ANN (IVF-fp16, calibrated nprobe)", "ann_ms", "ann_recall@10"),
            ("faiss IndexFlatIP 1 thread, same 512-d rows", "faiss_flat_concat_ms", ""),
            ("faiss IndexFlatIP 1 thread, one modality", "faiss_flat_1mod_ms", ""),
            ("bandwidth floor fp32, 2 modalities (measured read BW)", "floor_fp32_ms", ""),
            ("bandwidth floor fp16, 2 modalities (measured read BW)", "floor_fp16_ms", ""),
            ("bandwidth floor one modality at 12 GB/s (issue's row)", "floor_1mod_12GBs_ms", ""),
            ("filtered (gender+category+price): mask + search, auto (ANN above 50k)",
             "filtered_ms", "filtered_recall@10"),
            ("filtered, exact fp16 (selector inside the flat scan)", "filtered_fp16_ms",
             "filtered_fp16_recall@10"),
            ("filtered, project before issue 14 (Python loop)", "legacy_filtered_ms", ""),
            ("facet mask alone (precomputed codes)", "mask_ms", "")]
    for label, key, rec in spec:
        cells = []
        for r in rows:
            v = r.get(key)
            cell = f(v) + " ms" if v is not None else "—"
            if rec and r.get(rec) is not None:
                cell += f" (recall {r[rec]:.3f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| share kept by the filter | " + " | ".join(
        f"{100 * r['filter_kept_share']:.1f}%" for r in rows) + " |")
    lines.append("| fp16 recall@10 vs fp32 exact | " + " | ".join(
        f"{r['fp16_recall@10']:.3f}" for r in rows) + " |")
    lines.append("| ANN nlist / nprobe / build s | " + " | ".join(
        f"{r['ann_nlist']} / {r['ann_nprobe']} / {r['ann_build_s']}" for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "data" / "myntra.duckdb"),
                        help="database with real image+text vectors (read only)")
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--legacy-queries", type=int, default=9)
    parser.add_argument("--compare-ann", type=int, default=0, metavar="N",
                        help="also compare hnswlib and usearch at N items")
    parser.add_argument("--load-test", type=int, default=0, metavar="N",
                        help="write N items to DuckDB and measure loading (separate processes)")
    parser.add_argument("--bench-db", default=str(ROOT / "data" / "bench_search.duckdb"))
    parser.add_argument("--reuse-bench-db", action="store_true",
                        help="keep a --bench-db already holding N items (writing 1M takes minutes)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "search-scale.json"))
    parser.add_argument("--peers", type=int, default=0, metavar="N",
                        help="run the held-out comparison with faiss at N simulated items "
                             "(search_peers.py; no database needed)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers:
        import search_peers

        sys.argv = [sys.argv[0], "--items", str(args.peers), "--queries", str(args.queries)]
        search_peers.main()
        return
    if args.phase:
        phase(args)
        return
    state = machine_state()
    bandwidth = read_bandwidth()
    state["read_bandwidth_gbs_1thread"] = round(bandwidth / 1e9, 1)
    print("machine:", json.dumps(state), flush=True)
    img, txt, items = real_vectors(args.db, args.dataset)
    qs = queries(img, args.queries)
    result: dict = {"machine": state, "sizes": []}
    for n in args.sizes:
        result["sizes"].append(run_size(n, img, txt, items, qs, bandwidth, args.legacy_queries))
    if args.compare_ann:
        result["ann_libraries"] = compare_ann(args.compare_ann, img, txt, items, qs)
    if args.load_test:
        result["load"] = load_test(args.load_test, img, txt, items, Path(args.bench_db),
                                   args.reuse_bench_db)
    result["machine_after"] = machine_state()
    print()
    print(table(result["sizes"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"\nSaved to {args.out}")


if __name__ == "__main__":
    main()
