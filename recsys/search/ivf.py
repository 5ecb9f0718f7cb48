"""The approximate part of the search index: a faiss IVF index (inverted lists of SQ8 codes)
over the same rows as the exact one, its `nprobe` calibrated at build time on held-out-like
photo and text queries, and its search with the lists chosen from the filter under one.

Built above `vector_index.ANN_MIN_ITEMS` items (`VectorIndex.build_ann`); the top candidates it
finds are re-scored exactly by `VectorIndex.search`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from recsys.core.progress import ProgressCallback, report
from recsys.search.faiss_runtime import (
    CHUNK,
    build_threads,
    faiss_threads,
    load_faiss,
    mask_selector,
)

TARGET_RECALL = 0.98
"""Recall@10 against exact search that the IVF `nprobe` calibration aims for (>= 0.95 asked),
on held-out-like photo and text queries (`calibration_queries`); the larger of the two kinds'
nprobe is kept, with no further margin."""
NPROBE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
                1024, 1536, 2048, 3072, 4096, 6144, 8192)
"""The nprobe values calibration tries (steps of 1.33-1.5x instead of doubling)."""
FILTER_PROBE_FACTOR = 2.0
FILTER_PROBE_POWER = 0.5
"""Under a filter keeping a share s of the rows in the query's own `nprobe` lists (estimated
from a sample of each list's members), 2 nprobe / s**0.5 lists are probed (s = 5%: ~9x; faiss
IVF + IDSelector needed 4x for recall 1.0 on 200k clustered items, benchmarks/search_peers.py,
and 1x left recall 0.8 on small catalogs with nprobe 2): a filter correlated with the query's
region (its category) probes few lists; one away from it (s under half the filter's overall
share: a category unlike the photo) every list estimated to hold an allowed row."""
PROBE_SAMPLE = 64
"""Members per inverted list kept to estimate how many of its rows a filter allows."""
CODES = "SQ8"
"""IVF codes: 8-bit scalar quantizer (1 byte a number; candidates are re-ranked exactly from
the stored rows, so only the candidate order is approximate)."""
TRAINING_POINTS_PER_LIST = 48
"""k-means sample: this many rows per inverted list (faiss wants at least 39)."""


def list_count(n_items: int, nlist: int | None = None) -> int:
    """Inverted lists for `n_items` rows: `nlist`, else about 2 sqrt(n) (16 to 8,192), never
    fewer than 39 training rows a list."""
    nlist = int(nlist or max(16, min(8192, round(2 * np.sqrt(n_items)))))
    return max(1, min(nlist, n_items // 39))


def build_ivf(rows: Callable[[np.ndarray], np.ndarray], slots: np.ndarray, width: int,
              nlist: int, rng: np.random.Generator, seed: int = 0,
              progress: ProgressCallback | None = None):
    """Train an IVF index (SQ8 codes, inner product) of `nlist` lists on a sample of the rows
    of `slots` (`rows(slots)` reads them) and fill it with every one, ids being the slots."""
    faiss = load_faiss()
    n = len(slots)
    sample = np.sort(rng.choice(slots, min(n, TRAINING_POINTS_PER_LIST * nlist),
                                replace=False))
    with faiss_threads(build_threads()):
        report(progress, 0, 3, f"training {nlist} IVF lists", stage="ann")
        quantizer = faiss.IndexFlatIP(width)
        ann = faiss.IndexIVFScalarQuantizer(quantizer, width, nlist,
                                            faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        ann.cp.seed = seed
        ann.train(rows(sample))
        ann.quantizer_trains_alone = 0
        for start in range(0, n, CHUNK):
            part = slots[start:start + CHUNK]
            ann.add_with_ids(rows(part), part)
            report(progress, 1 + (start + len(part)) / n, 3, "filling IVF lists", stage="ann")
    return ann


def calibration_queries(slots: np.ndarray, rows: np.ndarray, present: np.ndarray,
                        modalities: Sequence[str], dims: Mapping[str, int],
                        offsets: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Held-out-like queries, by kind, from sampled items (`slots`; `rows`, `present`: their
    stored rows and presence flags): an item's photo vector ("photo") or its text vector ("text"), compared
    with every modality of that dimension (equal weights, as the app's search). The sampled
    item itself is left out of both the exact and the approximate results (`recall_at_k`), so
    each query is a product the index never saw, drawn from the catalog's own distribution
    (not a near-copy of an indexed item)."""
    width = rows.shape[1]
    out: dict[str, np.ndarray] = {}
    for kind, m in (("photo", "image"), ("text", "text")):
        if m not in modalities:
            continue
        j = list(modalities).index(m)
        have = np.flatnonzero(present[:, j])
        if not len(have):
            continue
        same = [x for x in modalities if dims[x] == dims[m]]
        queries = np.zeros((len(have), width), dtype=np.float32)
        v = rows[have, offsets[m]:offsets[m] + dims[m]]
        for x in same:
            queries[:, offsets[x]:offsets[x] + dims[x]] = v / len(same)
        out[kind] = queries
        out[kind + "_slots"] = np.asarray(slots)[have]
    return out


def recall_at_k(got: np.ndarray, truth: np.ndarray, own: np.ndarray, k: int) -> float:
    """Mean recall@k of `got` against `truth` (rows of ids), each row's own slot left out."""
    hits = []
    for a, b, s in zip(got, truth, own):
        a = [x for x in a if x >= 0 and x != s][:k]
        b = [x for x in b if x >= 0 and x != s][:k]
        hits.append(len(set(a) & set(b)) / max(1, len(b)))
    return float(np.mean(hits)) if hits else 1.0


def rerank(rows: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, ids: np.ndarray,
           k: int) -> np.ndarray:
    """The best `k` of each row of candidate `ids` by exact inner product with its query."""
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for i, (q, cand) in enumerate(zip(queries, ids)):
        cand = np.unique(cand[cand >= 0])
        if len(cand):
            order = np.argsort(-(rows(cand) @ q), kind="stable")[:k]
            out[i, :len(order)] = cand[order]
    return out


def calibrate_nprobe(flat, ann, queries: Mapping[str, np.ndarray], k: int,
                     target_recall: float,
                     rows: Callable[[np.ndarray], np.ndarray] | None = None) -> int:
    """Smallest nprobe of `NPROBE_STEPS` whose recall@k (the search as it runs: the IVF
    candidates, re-ranked exactly when `rows` reads stored rows) against the exact index
    `flat` reaches `target_recall` for every query kind of `queries`
    (`calibration_queries`); the largest of the kinds' values."""
    faiss = load_faiss()
    best = 1
    with faiss_threads(build_threads()):
        for kind, qs in queries.items():
            if kind.endswith("_slots") or not len(qs):
                continue
            own = queries[kind + "_slots"]
            _, truth = flat.search(qs, k + 1)
            for nprobe in NPROBE_STEPS:
                nprobe = min(nprobe, ann.nlist)
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                fetch = candidate_count(k + 1)
                _, got = ann.search(qs, fetch, params=params)
                if rows is not None:
                    got = rerank(rows, qs, got, k + 1)
                if recall_at_k(got, truth, own, k) >= target_recall or nprobe >= ann.nlist:
                    break
            best = max(best, int(nprobe))
    return best


def candidate_count(fetch: int) -> int:
    """IVF candidates fetched for `fetch` results (re-ranked exactly afterwards)."""
    return max(fetch + 16, 2 * fetch)


def probe_sample(ann, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(up to `PROBE_SAMPLE` member ids of each inverted list, -1 padded; each list's size;
    the list centroids): what `filtered_probes` ranks lists and estimates a filter's allowed
    rows per list from."""
    faiss = load_faiss()
    invlists = faiss.extract_index_ivf(ann).invlists
    sample = np.full((ann.nlist, PROBE_SAMPLE), -1, dtype=np.int64)
    sizes = np.zeros(ann.nlist, dtype=np.int64)
    for lst in range(ann.nlist):
        size = invlists.list_size(lst)
        sizes[lst] = size
        if size:
            ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()
            if size > PROBE_SAMPLE:
                ids = rng.choice(ids, PROBE_SAMPLE, replace=False)
            sample[lst, :len(ids)] = ids
    centroids = ann.quantizer.reconstruct_n(0, ann.nlist)
    return sample, sizes, centroids


def filtered_probes(ann, query_row: np.ndarray, mask: np.ndarray, nprobe: int,
                    sample: np.ndarray, sizes: np.ndarray, centroids: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(lists to probe, their centroid scores), best first, for a filtered search, from each
    list's allowed rows (estimated from its member `sample` and `mask`): 2 nprobe / s**0.5
    lists, s the share the filter keeps in the query's own `nprobe` lists
    (`FILTER_PROBE_FACTOR`, `FILTER_PROBE_POWER`); when s is under half the filter's overall
    share (it keeps a region away from the query: a category unlike the photo), every list
    estimated to hold an allowed row (their order by centroid says little that far out)."""
    # einsum, not BLAS: a threaded gemv took 14 ms instead of ~1 ms on the busy 2 cores
    scores = np.einsum("ld,d->l", centroids, query_row[0])
    lists = np.argsort(-scores, kind="stable")
    scores = scores[lists]
    members = sample[lists]
    known = members >= 0
    allowed = np.where(known, mask[np.where(known, members, 0)], False).sum(axis=1)
    estimate = sizes[lists] * allowed / np.maximum(known.sum(axis=1), 1)
    total = np.cumsum(estimate)
    if not len(total) or total[-1] <= 0:
        return lists[:nprobe], scores[:nprobe]
    near = total[min(nprobe, len(total)) - 1] / max(sizes[lists[:nprobe]].sum(), 1)
    overall = total[-1] / max(sizes.sum(), 1)
    if near < 0.5 * overall:
        # a filter allowing fewer rows stops at the last list estimated to hold any
        count = int(np.searchsorted(total, total[-1])) + 1
    else:
        count = int(np.ceil(FILTER_PROBE_FACTOR * nprobe
                            * max(near, 1e-6) ** -FILTER_PROBE_POWER))
    count = min(len(lists), max(nprobe, count))
    return lists[:count], scores[:count]


def search_ivf(ann, query_row: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int,
               sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Slots of the `k` best rows for one query row (-1 past the end). Under a filter (`mask`
    over the slots) the lists are chosen by `filtered_probes` (`sample` from `probe_sample`)
    and scanned with the mask as a faiss id selector."""
    faiss = load_faiss()
    if mask is None:
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, ann.nlist))
        _, ids = ann.search(query_row, k, params=params)
        return ids[0]
    lists, _ = filtered_probes(ann, query_row, mask, nprobe, *sample)
    # the lists chosen are the best len(lists) by centroid score: faiss's own pick for that nprobe
    params = faiss.SearchParametersIVF(nprobe=len(lists), sel=mask_selector(mask))
    _, ids = ann.search(query_row, k, params=params)
    return ids[0]
