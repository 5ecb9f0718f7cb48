"""Search at scale against faiss, with queries the index never saw (issue 23, items 4-5).

The catalog (simulated, own generator, made here because no 1M-item real catalog exists): N
items with an image and a text vector of the app's width (640-d each: a 384-d semantic block
and a 256-d photo-instance block, as the catalog-clip encoder makes them), clustered like a
catalog: 40 categories x 50 product types (2,000 clusters, sizes Zipf-like), each item its
type's centre plus its own variation; its text vector the same semantics moved by a fixed
modality gap plus noise, with an empty instance block (texts have none). Every item is in one
category (the facet filters use it) and has a uniform random "price" (an uncorrelated filter).

Queries the index never saw, drawn from the same generator with another seed:
* photo: a new product's photo vector (not in the catalog) plus a view change (noise);
* text: a new product's text vector with more noise (a short query, not a description);
both searched as the app does (the query against image and text vectors, weights 0.5 each),
k = 10, one query at a time on one thread (faiss set to 1 OpenMP thread for both sides).

Rows, side by side in one run (recall@10 against exact float32 search):
* ours: the project's `VectorIndex` as the app builds it above `ANN_MIN_ITEMS` (its storage and
  IVF codes, nprobe calibrated at build time, exact re-ranking), method auto;
* faiss IVF: `IndexIVFFlat` (float32, the same list count), nprobe tuned: the smallest of a
  grid whose recall reaches ours (the "same recall");
* filtered (5% and 50% kept; by category = correlated with the clusters, by price = not): ours
  with its mask vs faiss IVF + `IDSelectorBitmap`, nprobe tuned the same way.
Resident memory: the bytes of the index's faiss parts and slot table (what stays in RAM).

    python benchmarks/search_peers.py --items 1000000 --queries 200
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_state, peak_rss_mb  # noqa: E402

from recsys.search.faiss_runtime import load_faiss, mask_selector  # noqa: E402
from recsys.search.memory_plan import plan_storage  # noqa: E402
from recsys.search.vector_index import VectorIndex  # noqa: E402

SEM, INST = 384, 256
DIM = SEM + INST
CATEGORIES, TYPES = 40, 50
CHUNK = 50_000
K = 10
KEEP_ITEMS = 300_000
"""Catalogs up to this size are kept in memory between passes; larger ones are drawn again."""
NPROBE_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
               1024, 1536, 2048)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Catalog:
    """The generator: cluster centres from `seed`, items of a chunk from (seed, chunk)."""

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.n = n
        n_clusters = CATEGORIES * TYPES
        cat = unit(rng.normal(size=(CATEGORIES, SEM)))
        self.type_cat = np.repeat(np.arange(CATEGORIES), TYPES)
        self.sem = unit(cat[self.type_cat] + 0.8 * unit(rng.normal(size=(n_clusters, SEM))))
        self.inst = unit(rng.normal(size=(n_clusters, INST)))
        weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.7
        self.p = rng.permutation(weights / weights.sum())
        self.gap = 0.9 * unit(rng.normal(size=SEM))
        self.seed = seed

    def draw(self, count: int, rng: np.random.Generator):
        """(image, text, category, price) of `count` new products."""
        c = rng.choice(len(self.p), count, p=self.p)
        sem = unit(self.sem[c] + 0.55 * unit(rng.normal(size=(count, SEM))))
        inst = unit(self.inst[c] + 0.9 * unit(rng.normal(size=(count, INST))))
        img = np.concatenate([unit(sem + 0.25 * unit(rng.normal(size=(count, SEM)))),
                              0.5 * inst], axis=1)
        txt = np.concatenate([unit(sem + self.gap + 0.45 * unit(rng.normal(size=(count, SEM)))),
                              np.zeros((count, INST), np.float32)], axis=1)
        return unit(img), unit(txt), self.type_cat[c], rng.random(count)

    def chunks(self):
        """The catalog in chunks of (image, text, category, price): kept after the first pass
        up to `KEEP_ITEMS` items, else drawn again on every pass (the same seeds, the same
        items; float32 they would take 5 GB at 1M items)."""
        if hasattr(self, "_chunks"):
            yield from self._chunks
            return
        keep = [] if self.n <= KEEP_ITEMS else None
        for i, start in enumerate(range(0, self.n, CHUNK)):
            rng = np.random.default_rng([self.seed, 1, i])
            chunk = (start, self.draw(min(CHUNK, self.n - start), rng))
            if keep is not None:
                keep.append(chunk)
            yield chunk
        if keep is not None:
            self._chunks = keep

    def queries(self, count: int, seed: int = 99):
        """Held-out photo and text queries: new products (another seed), a view change for a
        photo, more noise for a short text."""
        rng = np.random.default_rng([self.seed, seed])
        img, _, _, _ = self.draw(count, rng)
        photo = unit(img + 0.3 * unit(rng.normal(size=img.shape)) / np.sqrt(2))
        _, txt, _, _ = self.draw(count, rng)
        txt[:, :SEM] = unit(txt[:, :SEM] + 0.35 * unit(rng.normal(size=(count, SEM))))
        return {"photo": photo, "text": txt}


def query_rows(q: np.ndarray) -> np.ndarray:
    """The app's query row: the vector against both modalities, weights 0.5 each."""
    return np.concatenate([0.5 * q, 0.5 * q], axis=1).astype(np.float32)


def exact_truth(cat: Catalog, rows: dict[str, np.ndarray], masks: dict[str, np.ndarray]):
    """Exact float32 top-k ids per query kind and mask (None = no filter)."""
    names = [None] + list(masks)
    best = {(kind, m): (np.full((len(r), K), -np.inf), np.full((len(r), K), -1))
            for kind, r in rows.items() for m in names}
    for start, (img, txt, _, _) in cat.chunks():
        items = np.concatenate([img, txt], axis=1)
        ids = np.arange(start, start + len(items))
        for kind, r in rows.items():
            s = r @ items.T
            for m in names:
                sm = s if m is None else np.where(masks[m][ids], s, -np.inf)
                bs, bi = best[(kind, m)]
                allv = np.concatenate([bs, sm], axis=1)
                alli = np.concatenate([bi, np.broadcast_to(ids, sm.shape)], axis=1)
                top = np.argpartition(-allv, K, axis=1)[:, :K]
                best[(kind, m)] = (np.take_along_axis(allv, top, 1),
                                   np.take_along_axis(alli, top, 1))
    return {key: v[1] for key, v in best.items()}


def recall(got: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(g.tolist()) & set(t.tolist())) / K
                          for g, t in zip(got, truth)]))


def ci(times: list[float]) -> tuple[float, float, float]:
    """Median and a bootstrap 95% interval of the median (ms)."""
    t = np.asarray(times) * 1000
    rng = np.random.default_rng(0)
    meds = np.median(rng.choice(t, (500, len(t))), axis=1)
    return float(np.median(t)), float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def timed(fn, qs) -> tuple[list, list[float]]:
    fn(qs[0])
    out, times = [], []
    for q in qs:
        t0 = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t0)
    return out, times


def resident_bytes(index: VectorIndex) -> int:
    faiss = load_faiss()
    total = faiss.serialize_index(index.flat).nbytes
    if index.ann is not None:
        total += faiss.serialize_index(index.ann).nbytes
    return total + index.present.nbytes + index.alive.nbytes + index.slot_ids.nbytes


def build_ours(cat: Catalog, storage: str):
    index = VectorIndex({"image": DIM, "text": DIM}, storage=storage)
    for start, (img, txt, _, _) in cat.chunks():
        index.add([str(i) for i in range(start, start + len(img))],
                  {"image": img, "text": txt})
    t0 = time.perf_counter()
    index.build_ann()
    return index, time.perf_counter() - t0


def build_faiss(cat: Catalog, nlist: int):
    faiss = load_faiss()
    faiss.omp_set_num_threads(2)
    quantizer = faiss.IndexFlatIP(2 * DIM)
    ivf = faiss.IndexIVFFlat(quantizer, 2 * DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(5)
    sample = []
    for _, (img, txt, _, _) in cat.chunks():
        take = rng.random(len(img)) < min(1.0, 48 * nlist / cat.n)
        sample.append(np.concatenate([img[take], txt[take]], axis=1))
    ivf.train(np.concatenate(sample))
    for start, (img, txt, _, _) in cat.chunks():
        ivf.add(np.concatenate([img, txt], axis=1))
    faiss.omp_set_num_threads(1)
    return ivf


def faiss_nprobe(ivf, rows: np.ndarray, truth: np.ndarray, target: float, mask=None):
    """Smallest nprobe of the grid whose recall over all queries reaches `target` (the recall
    of ours), else the largest tried: (nprobe, recall)."""
    faiss = load_faiss()
    sel = mask_selector(mask) if mask is not None else None
    last = None
    for nprobe in NPROBE_GRID:
        nprobe = min(nprobe, ivf.nlist)
        params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel) if sel is not None \
            else faiss.SearchParametersIVF(nprobe=nprobe)
        _, got = ivf.search(rows, K, params=params)
        last = (nprobe, recall(list(got), truth))
        if last[1] >= target or nprobe >= ivf.nlist:
            return last
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--storage", default="plan",
                        help="rows of our index: float32, float16, or plan (what the app's "
                             "storage plan picks for N items: float16 above 4 GB resident)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "search_peers.json"))
    args = parser.parse_args()
    state = machine_state()
    print(f"machine: {state}", flush=True)
    if args.storage == "plan":
        # the storage it picks (built here chunk by chunk, not with the DuckDB build's peak)
        plan = plan_storage(args.items, 2 * DIM, "float32", True, available=10**13)
        args.storage = plan.storage
        print(f"storage plan: {plan.storage} ({plan.reason})", flush=True)
    cat = Catalog(args.items)
    qs = cat.queries(args.queries)
    rows = {k: query_rows(v) for k, v in qs.items()}
    facets = [(c, p) for _, (_, _, c, p) in cat.chunks()]
    cats = np.concatenate([c for c, _ in facets])
    price = np.concatenate([p for _, p in facets])
    order = np.argsort(np.bincount(cats, minlength=CATEGORIES))
    sizes = np.bincount(cats, minlength=CATEGORIES)[order].cumsum() / len(cats)
    masks = {}
    for share in (0.05, 0.5):
        chosen = order[:int(np.searchsorted(sizes, share)) + 1]
        masks[f"category {share:.0%}"] = np.isin(cats, chosen)
        masks[f"price {share:.0%}"] = price < share
    t0 = time.perf_counter()
    truth = exact_truth(cat, rows, masks)
    print(f"exact truth: {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    ours, ann_s = build_ours(cat, args.storage)
    print(f"ours built: {time.perf_counter() - t0:.0f} s (IVF {ann_s:.0f} s), nprobe "
          f"{ours.nprobe}, {ours.ann.nlist} lists", flush=True)
    mem = resident_bytes(ours)
    nlist = ours.ann.nlist
    t0 = time.perf_counter()
    ivf = build_faiss(cat, nlist)
    print(f"faiss IVF built: {time.perf_counter() - t0:.0f} s", flush=True)
    if hasattr(cat, "_chunks"):
        del cat._chunks
    gc.collect()
    faiss = load_faiss()
    results = []
    for kind, q in qs.items():
        for mname in [None] + list(masks):
            mask = None if mname is None else masks[mname]
            truth_rows = truth[(kind, mname)]

            def ours_fn(v):
                return ours.search({"image": v, "text": v}, {"image": 0.5, "text": 0.5}, K,
                                   allowed=mask).slots

            got, _ = timed(ours_fn, q)
            r = recall(got, truth_rows)
            nprobe, fr = faiss_nprobe(ivf, rows[kind], truth_rows, r, mask)
            sel = mask_selector(mask) if mask is not None else None
            params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel) if sel is not None \
                else faiss.SearchParametersIVF(nprobe=nprobe)
            # side by side: each query by ours then by faiss, so both see the same load
            t_ours, t_faiss = [], []
            for v, row in zip(q, rows[kind]):
                t1 = time.perf_counter()
                ours_fn(v)
                t2 = time.perf_counter()
                ivf.search(row[None], K, params=params)
                t3 = time.perf_counter()
                t_ours.append(t2 - t1)
                t_faiss.append(t3 - t2)
            ratio = np.asarray(t_ours) / np.asarray(t_faiss)
            rng = np.random.default_rng(1)
            boot = [np.median(np.asarray(t_ours)[s]) / np.median(np.asarray(t_faiss)[s])
                    for s in rng.integers(0, len(q), (500, len(q)))]
            row = {"query": kind, "filter": mname or "none",
                   "kept": 1.0 if mask is None else float(mask.mean()),
                   "ours_recall": r, "ours_ms": ci(t_ours), "faiss_nprobe": nprobe,
                   "faiss_recall": fr, "faiss_ms": ci(t_faiss),
                   "ratio": float(np.median(t_ours) / np.median(t_faiss)),
                   "ratio_ci": (float(np.percentile(boot, 2.5)),
                                float(np.percentile(boot, 97.5))),
                   "per_query_ratio_median": float(np.median(ratio))}
            results.append(row)
            print(f"{kind:5} {mname or 'none':13} ours recall {r:.3f} "
                  f"{row['ours_ms'][0]:.2f} ms | faiss nprobe {nprobe} recall {fr:.3f} "
                  f"{row['faiss_ms'][0]:.2f} ms | ratio {row['ratio']:.2f}", flush=True)
    print()
    print(f"{args.items:,} simulated items (own generator, 2 x 640-d), {args.queries} held-out "
          f"queries of each kind, k={K}, 1 thread; ours: {args.storage} rows + IVF codes, "
          f"resident {mem / 1e9:.2f} GB; faiss IndexIVFFlat {nlist} lists")
    print("| query | filter (kept) | ours recall | ours ms (95% CI) | faiss IVF nprobe | "
          "faiss recall | faiss ms (95% CI) | ours/faiss (95% CI) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        o, f = row["ours_ms"], row["faiss_ms"]
        lo, hi = row["ratio_ci"]
        print(f"| {row['query']} | {row['filter']} ({row['kept']:.1%}) | "
              f"{row['ours_recall']:.3f} | {o[0]:.2f} ({o[1]:.2f}-{o[2]:.2f}) | "
              f"{row['faiss_nprobe']} | {row['faiss_recall']:.3f} | "
              f"{f[0]:.2f} ({f[1]:.2f}-{f[2]:.2f}) | {row['ratio']:.2f} ({lo:.2f}-{hi:.2f}) |")
    end = machine_state()
    print(f"\nload at start: {state}\nload at end: {end}\npeak RSS {peak_rss_mb():.0f} MB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"items": args.items, "queries": args.queries,
                                          "storage": args.storage, "resident_bytes": mem,
                                          "rows": results, "machine_start": state,
                                          "machine_end": end}, indent=1, default=str))


if __name__ == "__main__":
    main()
