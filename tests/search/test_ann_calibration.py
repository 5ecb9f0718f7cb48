"""The IVF part of the search index: nprobe calibrated on held-out-like photo and text queries,
filtered searches probing by the filter's allowed rows, SQ8 codes, and the storage plan of a
large index (issue 23, items 4-5). Small clustered synthetic catalogs, a few seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.search import ivf
from recsys.search.memory_plan import RESIDENT_TARGET_BYTES, plan_storage, resident_bytes
from recsys.search.vector_index import VectorIndex

DIM = 24


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def catalog(n: int, seed: int = 0, clusters: int = 40):
    """Clustered photo vectors, text vectors of the same meaning across a modality gap, each
    item's cluster; `new` draws products that are not in the catalog."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(clusters, DIM)))
    gap = 0.8 * unit(rng.normal(size=DIM))

    def draw(count, r):
        c = r.integers(0, clusters, count)
        sem = unit(centres[c] + 0.5 * unit(r.normal(size=(count, DIM))))
        img = unit(sem + 0.2 * unit(r.normal(size=(count, DIM))))
        txt = unit(sem + gap + 0.4 * unit(r.normal(size=(count, DIM))))
        return img, txt, c

    img, txt, c = draw(n, rng)
    return img, txt, c, draw


def build(n=4000, seed=0, nlist=32):
    img, txt, c, draw = catalog(n, seed)
    index = VectorIndex({"image": DIM, "text": DIM}, ann_min_items=1000)
    index.add([f"i{i}" for i in range(n)], {"image": img, "text": txt})
    index.build_ann(nlist=nlist)
    return index, img, txt, c, draw


def recall(index, queries, allowed=None, k=10):
    got, hits = [], []
    for q in queries:
        a = index.search({"image": q, "text": q}, k=k, allowed=allowed, method="ann").item_ids
        b = index.search({"image": q, "text": q}, k=k, allowed=allowed, method="exact").item_ids
        hits.append(len(set(a) & set(b)) / len(b))
    return float(np.mean(hits))


def test_calibration_queries_are_the_items_own_photo_and_text_left_out():
    rows = unit(np.random.default_rng(1).normal(size=(5, 2 * DIM)))
    present = np.array([[True, True], [True, False], [True, True], [False, True],
                        [True, True]])
    slots = np.array([10, 11, 12, 13, 14])
    qs = ivf.calibration_queries(slots, rows, present, ["image", "text"],
                                 {"image": DIM, "text": DIM}, {"image": 0, "text": DIM})
    assert list(qs["photo_slots"]) == [10, 11, 12, 14]
    assert list(qs["text_slots"]) == [10, 12, 13, 14]
    # a text query is the item's text vector against both modalities, half weight each
    np.testing.assert_allclose(qs["text"][0, :DIM], rows[0, DIM:] / 2)
    np.testing.assert_allclose(qs["text"][0, DIM:], rows[0, DIM:] / 2)
    # the item itself is left out of both sides of the recall
    assert ivf.recall_at_k(np.array([[7, 1, 2]]), np.array([[1, 2, 3]]), np.array([7]),
                           2) == 1.0
    assert ivf.recall_at_k(np.array([[1, 5, 6]]), np.array([[1, 2, 3]]), np.array([7]),
                           2) == 0.5


def test_nprobe_reaches_the_target_for_held_out_photo_and_text_queries():
    index, _, _, _, draw = build()
    assert 1 <= index.nprobe < index.ann.nlist          # no blanket doubling up to every list
    img, txt, _ = draw(60, np.random.default_rng(77))   # products the index never saw
    assert recall(index, img) >= 0.95
    assert recall(index, txt) >= 0.95


def test_filtered_probes_follow_the_filter_not_just_its_share():
    index, img, _, c, draw = build()
    q = index.layout.query_row({"image": img[0], "text": img[0]},
                               {"image": 0.5, "text": 0.5}, np.array([True, True]))
    sample = index.probe_sample()
    same_cluster = index.slot_mask(c == c[0])                         # correlated, ~2.5%
    rng = np.random.default_rng(3)
    scattered = index.slot_mask(rng.random(len(c)) < (c == c[0]).mean())  # same share, random
    near, _ = ivf.filtered_probes(index.ann, q, same_cluster, index.nprobe, *sample)
    far, _ = ivf.filtered_probes(index.ann, q, scattered, index.nprobe, *sample)
    assert index.nprobe <= len(near) < len(far)


@pytest.mark.parametrize("share", [0.05, 0.5])
def test_filtered_ann_search_keeps_recall(share):
    index, _, _, c, draw = build()
    rng = np.random.default_rng(5)
    allowed = rng.random(len(index)) < share
    img, txt, _ = draw(30, np.random.default_rng(78))
    assert recall(index, img, allowed) >= 0.95
    assert recall(index, txt, allowed) >= 0.95
    hits = index.search({"image": img[0]}, k=10, allowed=allowed, method="ann")
    assert all(allowed[index.item_ids.index(i)] for i in hits.item_ids)


def test_ivf_codes_are_8_bit_and_a_filtered_search_sees_added_items():
    import faiss

    index, img, txt, _, draw = build(n=2000, nlist=16)
    ivf_part = faiss.extract_index_ivf(index.ann)
    assert ivf_part.code_size == 2 * DIM                  # one byte a number
    index.probe_sample()
    new_img, new_txt, _ = draw(1, np.random.default_rng(9))
    index.add(["new"], {"image": new_img, "text": new_txt})
    allowed = np.zeros(len(index), dtype=bool)
    allowed[index.item_ids.index("new")] = True
    allowed[:50] = True
    hits = index.search({"image": new_img[0]}, k=3, allowed=allowed, method="ann")
    assert hits.item_ids[0] == "new"
    index.remove(["new"])
    hits = index.search({"image": new_img[0]}, k=3, allowed=allowed[:-1], method="ann")
    assert "new" not in hits.item_ids


def test_a_million_items_with_ivf_are_planned_under_4_gb():
    n, width = 1_000_000, 1280
    assert resident_bytes(n, width, "float32", True) > RESIDENT_TARGET_BYTES
    plan = plan_storage(n, width, "float32", True, available=200 * 10**9)
    assert (plan.storage, plan.ann) == ("float16", True)
    assert plan.resident_bytes <= 4 * 10**9 and "resident" in plan.reason
    small = plan_storage(100_000, width, "float32", True, available=200 * 10**9)
    assert (small.storage, small.ann) == ("float32", True) and "fits" in small.reason


def test_a_filter_far_from_the_query_keeps_recall():
    index, img, _, c, draw = build()
    q_img, q_txt, q_c = draw(40, np.random.default_rng(79))
    found = []
    for q, qc in zip(q_img, q_c):
        # ten clusters unlike the query's (a category other than the photo's)
        other = [x for x in range(40) if x != qc][:10]
        allowed = np.isin(c, other)
        a = index.search({"image": q, "text": q}, k=10, allowed=allowed, method="ann")
        b = index.search({"image": q, "text": q}, k=10, allowed=allowed, method="exact")
        found.append(len(set(a.item_ids) & set(b.item_ids)) / 10)
    assert np.mean(found) >= 0.95


def test_saved_and_reloaded_index_keeps_its_codes_nprobe_and_filtered_results(tmp_path):
    from recsys.search.index_files import load_index, save_index

    index, img, _, c, draw = build(n=3000, nlist=24)
    allowed = np.random.default_rng(6).random(len(index)) < 0.3
    q, _, _ = draw(5, np.random.default_rng(80))
    before = [index.search({"image": v}, k=10, allowed=allowed, method="ann").item_ids
              for v in q]
    save_index(index, tmp_path / "ix")
    for mmap in (True, False):
        again = load_index(tmp_path / "ix", mmap=mmap)
        assert again.nprobe == index.nprobe
        assert again.ann.code_size == index.ann.code_size == 2 * DIM
        after = [again.search({"image": v}, k=10, allowed=allowed, method="ann").item_ids
                 for v in q]
        assert after == before
    # an incremental update of the reloaded (writable) index still answers filtered searches
    new_img, new_txt, _ = draw(1, np.random.default_rng(81))
    again.add(["fresh"], {"image": new_img, "text": new_txt})
    mask = np.append(allowed, True)
    assert again.search({"image": new_img[0]}, k=1, allowed=mask,
                        method="ann").item_ids == ["fresh"]
