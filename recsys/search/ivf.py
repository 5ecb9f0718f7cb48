"""The approximate part of the search index: a faiss IVF index (inverted lists of fp16 codes)
over the same rows as the exact one, its `nprobe` calibrated at build time, and its search with
the probes widened under a filter.

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
"""Recall@10 against exact search that the IVF `nprobe` calibration aims for (>= 0.95 asked);
the calibrated nprobe is then doubled as a margin for queries unlike the calibration sample."""
FILTER_PROBE_FACTOR = 3
"""A filtered IVF search probes this many times nprobe / (share of items kept) lists: the
filtered top-k lie further from the query than the unfiltered one (1x: recall@10 0.87 at 1M
items with 17% kept; 3x: 1.0 at 300k, ~20 ms at 1M on 2 busy cores)."""
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
    """Train an IVF index (fp16 codes, inner product) of `nlist` lists on a sample of the rows
    of `slots` (`rows(slots)` reads them) and fill it with every one, ids being the slots."""
    faiss = load_faiss()
    n = len(slots)
    sample = np.sort(rng.choice(slots, min(n, TRAINING_POINTS_PER_LIST * nlist),
                                replace=False))
    with faiss_threads(build_threads()):
        report(progress, 0, 3, f"training {nlist} IVF lists", stage="ann")
        quantizer = faiss.IndexFlatIP(width)
        ann = faiss.IndexIVFScalarQuantizer(quantizer, width, nlist,
                                            faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT)
        ann.cp.seed = seed
        ann.train(rows(sample))
        ann.quantizer_trains_alone = 0
        for start in range(0, n, CHUNK):
            part = slots[start:start + CHUNK]
            ann.add_with_ids(rows(part), part)
            report(progress, 1 + (start + len(part)) / n, 3, "filling IVF lists", stage="ann")
    return ann


def calibration_queries(rows: np.ndarray, present: np.ndarray, modalities: Sequence[str],
                        dims: Mapping[str, int], offsets: Mapping[str, int],
                        rng: np.random.Generator) -> np.ndarray:
    """Sample queries like the app's photo search: each item's vector of one modality (in turn,
    else one it has), plus noise, compared with every modality of that dimension (equal
    weights). `rows` / `present`: the sampled items' stored rows and presence flags."""
    width = rows.shape[1]
    queries = np.zeros((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):
        j = i % len(modalities)
        m = modalities[j] if present[i, j] else modalities[int(np.argmax(present[i]))]
        v = row[offsets[m]:offsets[m] + dims[m]]
        v = v + rng.normal(0, 0.15 / np.sqrt(len(v)), len(v)).astype(np.float32)
        v /= max(float(np.linalg.norm(v)), 1e-12)
        same = [x for x in modalities if dims[x] == dims[m]]
        for x in same:
            queries[i, offsets[x]:offsets[x] + dims[x]] = v / len(same)
    return queries


def calibrate_nprobe(flat, ann, queries: np.ndarray, k: int, target_recall: float) -> int:
    """Smallest nprobe (doubling) whose recall@k against the exact index `flat` reaches
    `target_recall` on `queries`."""
    faiss = load_faiss()
    with faiss_threads(build_threads()):
        _, truth = flat.search(queries, k)
        nprobe = 1
        while True:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, got = ann.search(queries, k, params=params)
            recall = np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                              for a, b in zip(got, truth)])
            if recall >= target_recall or nprobe >= ann.nlist:
                return int(nprobe)
            nprobe = min(ann.nlist, nprobe * 2)


def search_ivf(ann, query_row: np.ndarray, k: int, mask: np.ndarray | None,
               kept_share: float, nprobe: int) -> np.ndarray:
    """Slots of the `k` best rows for one query row (-1 past the end). Under a filter (`mask`
    over the slots, keeping `kept_share` of the items) each list holds fewer candidates, so
    `FILTER_PROBE_FACTOR * nprobe / kept_share` lists are probed."""
    faiss = load_faiss()
    if mask is not None:
        share = max(kept_share, 1e-6)
        probe = int(min(ann.nlist, np.ceil(FILTER_PROBE_FACTOR * nprobe / share)))
        params = faiss.SearchParametersIVF(nprobe=probe, sel=mask_selector(mask))
    else:
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, ann.nlist))
    _, ids = ann.search(query_row, k, params=params)
    return ids[0]
