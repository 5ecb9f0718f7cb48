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
"""The filtered-search rule of an index built before the rule was calibrated: under a filter
keeping a share s of the rows in the query's own `nprobe` lists, FACTOR nprobe / s**POWER lists
are probed (s = 5%: ~9x). Indexes built now calibrate the two numbers (`calibrate_filter_rule`):
on 200k clustered items 2x nprobe at 5% and 1x at 50% reached recall 0.98, as faiss IVF +
IDSelector did (benchmarks/search_peers.py)."""
FILTER_SHARES = (0.05, 0.5)
"""Shares of random (uncorrelated) filters the filtered-search rule is calibrated on."""
FILTER_STEPS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
"""Multiples of nprobe tried when calibrating the filtered-search rule."""
FILTER_QUERIES = 64
"""Calibration queries per kind for the filtered-search rule (of the nprobe calibration's)."""
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


def exact_neighbours(flat, queries: Mapping[str, np.ndarray], depth: int
                     ) -> dict[str, np.ndarray]:
    """The `depth` best slots (exact search of `flat`) of each query kind of `queries`
    (`calibration_queries`), computed once for both calibrations."""
    out = {}
    with faiss_threads(build_threads()):
        for kind, qs in queries.items():
            if kind.endswith("_slots") or not len(qs):
                continue
            out[kind] = flat.search(qs, min(depth, flat.ntotal))[1]
    return out


def calibrate_nprobe(flat, ann, queries: Mapping[str, np.ndarray], k: int,
                     target_recall: float,
                     rows: Callable[[np.ndarray], np.ndarray] | None = None,
                     truth: Mapping[str, np.ndarray] | None = None) -> int:
    """Smallest nprobe of `NPROBE_STEPS` whose recall@k (the search as it runs: the IVF
    candidates, re-ranked exactly when `rows` reads stored rows) against the exact index
    `flat` reaches `target_recall` for every query kind of `queries`
    (`calibration_queries`); the largest of the kinds' values. `truth`: the kinds' exact
    neighbours when already known (`exact_neighbours`, at least k + 1 deep)."""
    faiss = load_faiss()
    best = 1
    with faiss_threads(build_threads()):
        for kind, qs in queries.items():
            if kind.endswith("_slots") or not len(qs):
                continue
            own = queries[kind + "_slots"]
            exact = truth[kind][:, :k + 1] if truth is not None else flat.search(qs, k + 1)[1]
            for nprobe in NPROBE_STEPS:
                nprobe = min(nprobe, ann.nlist)
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                fetch = candidate_count(k + 1)
                _, got = ann.search(qs, fetch, params=params)
                if rows is not None:
                    got = rerank(rows, qs, got, k + 1)
                if recall_at_k(got, exact, own, k) >= target_recall or nprobe >= ann.nlist:
                    break
            best = max(best, int(nprobe))
    return best


def filter_truth_depth(k: int) -> int:
    """How deep the exact neighbours `calibrate_filter_rule` reads must go: the k + 1 best
    rows a random filter keeping the smallest of `FILTER_SHARES` allows are among them
    (4x the expected depth; queries with fewer allowed rows there are skipped)."""
    return int(np.ceil(4 * (k + 1) / min(FILTER_SHARES)))


def calibrate_filter_rule(ann, queries: Mapping[str, np.ndarray],
                          truth: Mapping[str, np.ndarray], k: int, target_recall: float,
                          nprobe: int, rows: Callable[[np.ndarray], np.ndarray],
                          sample: tuple[np.ndarray, np.ndarray, np.ndarray],
                          n_slots: int, rng: np.random.Generator) -> tuple[float, float]:
    """(factor, power) of the filtered-search rule (`filtered_probes`: factor nprobe / s**power
    lists for a filter keeping a share s near the query), fitted through the smallest multiple
    of nprobe (`FILTER_STEPS`) that reaches `target_recall` for every query kind under two
    filters of each of `FILTER_SHARES`: rows at random, and whole inverted lists (the search
    as it runs: chosen lists, the filter inside the scan, exact re-ranking). `truth`: `exact_neighbours` at least
    `filter_truth_depth(k)` deep."""
    faiss = load_faiss()
    invlists = faiss.extract_index_ivf(ann).invlists
    members = [faiss.rev_swig_ptr(invlists.get_ids(lst), invlists.list_size(lst)).copy()
               for lst in range(ann.nlist)]
    needed = []
    for share in FILTER_SHARES:
        # rows drawn at random (a price range), and whole inverted lists (a category: a filter
        # shaped like the clusters, whose edges a query near them must look past)
        lists = rng.permutation(ann.nlist)
        total = np.cumsum([len(members[lst]) for lst in lists])
        chosen = lists[:int(np.searchsorted(total, share * total[-1])) + 1]
        shaped = np.zeros(n_slots, dtype=bool)
        shaped[np.concatenate([members[lst] for lst in chosen])] = True
        worst = 1.0
        for mask, (kind, qs) in ((m, kq) for m in (rng.random(n_slots) < share, shaped)
                                 for kq in queries.items()):
            if kind.endswith("_slots") or not len(qs):
                continue
            own = queries[kind + "_slots"][:FILTER_QUERIES]
            qs = qs[:FILTER_QUERIES]
            deep = truth[kind][:FILTER_QUERIES]
            allowed = [row[(row >= 0) & mask[np.maximum(row, 0)]][:k + 1] for row in deep]
            keep = [i for i, a in enumerate(allowed) if len(a) == k + 1]
            if not keep:
                continue
            exact = np.stack([allowed[i] for i in keep])
            for multiple in FILTER_STEPS:
                got = np.stack([
                    search_ivf(ann, qs[i][None], candidate_count(k + 1), mask, nprobe, sample,
                               rule=(multiple, 0.0)) for i in keep])
                got = rerank(rows, qs[keep], got, k + 1)
                if recall_at_k(got, exact, own[keep], k) >= target_recall or \
                        multiple * nprobe >= ann.nlist:
                    break
            worst = max(worst, multiple)
        needed.append(worst)
    (s1, m1), (s2, m2) = zip(FILTER_SHARES, needed)
    power = max(0.0, float(np.log(m1 / m2) / np.log(s2 / s1)))
    return float(m2 * s2 ** power), power


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
                    sample: np.ndarray, sizes: np.ndarray, centroids: np.ndarray,
                    rule: tuple[float, float] = (FILTER_PROBE_FACTOR, FILTER_PROBE_POWER),
                    n_allowed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lists to probe, their centroid scores), best first, for a filtered search, from the
    share s of allowed rows in the query's own `nprobe` lists (estimated from their member
    `sample` and `mask`): factor nprobe / s**power lists (`rule`, calibrated at build time by
    `calibrate_filter_rule`; never fewer than nprobe); when s is under half the filter's
    overall share (it keeps a region away from the query: a category unlike the photo), every
    list estimated to hold an allowed row (their order by centroid says little that far out).
    `n_allowed`: the rows `mask` keeps, when already counted."""
    scores = centroid_scores(centroids, query_row[0])
    nprobe = max(1, min(nprobe, len(scores)))
    own = nearest(scores, nprobe)
    if n_allowed is None:
        n_allowed = int(np.count_nonzero(mask))
    overall = n_allowed / max(int(sizes.sum()), 1)
    if overall <= 0:
        return own, scores[own]
    members = sample[own]
    known = members >= 0
    allowed = np.where(known, mask[np.where(known, members, 0)], False).sum(axis=1)
    near = float((sizes[own] * allowed / np.maximum(known.sum(axis=1), 1)).sum()
                 / max(sizes[own].sum(), 1))
    if near < 0.5 * overall:
        # a filter allowing fewer rows here stops at the last list estimated to hold any
        lists = np.argsort(-scores, kind="stable")
        members = sample[lists]
        known = members >= 0
        holds = np.where(known, mask[np.where(known, members, 0)], False).any(axis=1)
        count = int(np.flatnonzero(holds)[-1]) + 1 if holds.any() else nprobe
    else:
        # sparser here than overall (a filter leaning away from the query): its nearest
        # allowed rows lie further out, probed as if the share were that much smaller
        factor, power = rule
        share = max(near * min(1.0, near / overall), 1e-6)
        count = int(np.ceil(nprobe * max(1.0, factor * share ** -power)))
        count = min(len(scores), max(nprobe, count))
        lists = own if count == nprobe else nearest(scores, count)
    count = min(len(lists), max(nprobe, count))
    return lists[:count], scores[lists[:count]]


def centroid_scores(centroids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Inner products of one query with every list centroid (faiss's single-thread SIMD
    kernel: a BLAS gemv ran threaded and took 14 ms instead of ~1 ms on the busy 2 cores)."""
    faiss = load_faiss()
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32)
    out = np.empty(len(centroids), dtype=np.float32)
    faiss.fvec_inner_products_ny(faiss.swig_ptr(out), faiss.swig_ptr(query),
                                 faiss.swig_ptr(centroids), len(query), len(centroids))
    return out


def nearest(scores: np.ndarray, count: int) -> np.ndarray:
    """The `count` lists of highest centroid score, best first (ties by list number)."""
    if count >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, count - 1)[:count]
    return top[np.lexsort((top, -scores[top]))]


def scan_lists(ann, query_row: np.ndarray, k: int, lists: np.ndarray, scores: np.ndarray,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Slots of the `k` best rows of the inverted `lists` (their centroid `scores` as
    computed here) for one query row, only those `mask` allows (a faiss id selector inside
    the scan). faiss's `search_preassigned`: the coarse search is not run a second time (on the
    busy 2 cores faiss's own took 1-2 ms a query, the einsum over the centroids ~0.3 ms)."""
    faiss = load_faiss()
    sel = mask_selector(mask) if mask is not None else None
    params = faiss.SearchParametersIVF(nprobe=len(lists), sel=sel) if sel is not None \
        else faiss.SearchParametersIVF(nprobe=len(lists))
    x = np.ascontiguousarray(query_row, dtype=np.float32).reshape(1, -1)
    assign = np.ascontiguousarray(lists, dtype=np.int64).reshape(1, -1)
    coarse = np.ascontiguousarray(scores, dtype=np.float32).reshape(1, -1)
    dist = np.empty((1, k), dtype=np.float32)
    ids = np.empty((1, k), dtype=np.int64)
    faiss.extract_index_ivf(ann).search_preassigned_c(
        1, faiss.swig_ptr(x), k, faiss.swig_ptr(assign), faiss.swig_ptr(coarse),
        faiss.swig_ptr(dist), faiss.swig_ptr(ids), False, params)
    return ids[0]


def search_ivf(ann, query_row: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int,
               sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               rule: tuple[float, float] = (FILTER_PROBE_FACTOR, FILTER_PROBE_POWER),
               n_allowed: int | None = None) -> np.ndarray:
    """Slots of the `k` best rows for one query row (-1 past the end): the `nprobe` lists
    nearest the query (by their centroids, `sample[2]`, when given). Under a filter (`mask`
    over the slots) the lists are chosen by `filtered_probes` (`sample` from `probe_sample`,
    `rule` the index's calibrated one) and scanned with the mask as a faiss id selector."""
    if mask is None:
        if sample is None:
            faiss = load_faiss()
            params = faiss.SearchParametersIVF(nprobe=min(nprobe, ann.nlist))
            return ann.search(query_row, k, params=params)[1][0]
        scores = centroid_scores(sample[2], query_row[0])
        lists = nearest(scores, max(1, min(nprobe, len(scores))))
        return scan_lists(ann, query_row, k, lists, scores[lists])
    lists, scores = filtered_probes(ann, query_row, mask, nprobe, *sample, rule=rule,
                                    n_allowed=n_allowed)
    return scan_lists(ann, query_row, k, lists, scores, mask)
