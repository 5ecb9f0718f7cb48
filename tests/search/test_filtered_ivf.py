"""Filtered IVF search (issue 23, item 4): the lists a filter probes follow a rule calibrated at
build time on random and cluster-shaped filters (not a fixed multiple), the chosen lists are
scanned without running the coarse search a second time, and the rule is saved with the index.
Small clustered synthetic catalogs (from test_ann_calibration), a few seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.search import ivf
from recsys.search.faiss_runtime import load_faiss, mask_selector

from .test_ann_calibration import build, recall


@pytest.fixture(scope="module")
def built():
    return build()


def test_the_filter_rule_is_calibrated_at_build_time(built):
    index, *_ = built
    factor, power = index.filter_rule
    # fitted, not the fixed rule of an index saved before (2 nprobe / s ** 0.5)
    assert (factor, power) != (ivf.FILTER_PROBE_FACTOR, ivf.FILTER_PROBE_POWER)
    assert factor >= 1.0 * ivf.FILTER_SHARES[1] ** power and power >= 0


@pytest.mark.parametrize("share", ivf.FILTER_SHARES)
def test_the_calibrated_rule_reaches_the_target_on_new_queries(built, share):
    index, _, _, _, draw = built
    allowed = np.random.default_rng(15).random(len(index)) < share
    img, txt, _ = draw(40, np.random.default_rng(16))
    assert recall(index, img, allowed) >= 0.95
    assert recall(index, txt, allowed) >= 0.95


def test_chosen_lists_are_scanned_as_faiss_would_scan_them(built):
    """scan_lists (search_preassigned with the filter as a selector) returns what faiss's own
    search returns for the same lists, and only allowed rows."""
    index, img, _, _, _ = built
    faiss = load_faiss()
    mask = index.slot_mask(np.random.default_rng(4).random(len(index)) < 0.2)
    _, _, centroids = index.probe_sample()
    for v in img[:10]:
        row = index.layout.query_row({"image": v, "text": v}, {"image": 0.5, "text": 0.5},
                                     np.array([True, True]))
        scores = centroids @ row[0]
        lists = np.argsort(-scores)[:5]
        ours = ivf.scan_lists(index.ann, row, 20, lists, scores[lists], mask)
        params = faiss.SearchParametersIVF(nprobe=5, sel=mask_selector(mask))
        theirs = index.ann.search(row, 20, params=params)[1][0]
        assert sorted(ours.tolist()) == sorted(theirs.tolist())
        assert mask[ours[ours >= 0]].all()


def test_an_unfiltered_search_scans_the_nearest_nprobe_lists(built):
    index, img, _, _, _ = built
    faiss = load_faiss()
    for v in img[:10]:
        row = index.layout.query_row({"image": v, "text": v}, {"image": 0.5, "text": 0.5},
                                     np.array([True, True]))
        ours = ivf.search_ivf(index.ann, row, 20, None, index.nprobe, index.probe_sample())
        params = faiss.SearchParametersIVF(nprobe=index.nprobe)
        theirs = index.ann.search(row, 20, params=params)[1][0]
        assert sorted(ours.tolist()) == sorted(theirs.tolist())


def test_a_filter_sparser_near_the_query_probes_more_lists(built):
    """The same overall share, but the query's own lists hold fewer allowed rows than
    elsewhere: more lists than under a filter spread evenly."""
    index, img, _, _, _ = built
    row = index.layout.query_row({"image": img[0], "text": img[0]},
                                 {"image": 0.5, "text": 0.5}, np.array([True, True]))
    sample = index.probe_sample()
    own, _ = ivf.filtered_probes(index.ann, row, np.ones(index.n_slots, bool), index.nprobe,
                                 *sample, rule=(2.0, 0.5))
    rng = np.random.default_rng(8)
    even = rng.random(index.n_slots) < 0.5
    sparse_here = even.copy()
    members = sample[0][own].ravel()
    sparse_here[members[members >= 0]] = rng.random((members >= 0).sum()) < 0.3
    a, _ = ivf.filtered_probes(index.ann, row, even, index.nprobe, *sample, rule=(2.0, 0.5))
    b, _ = ivf.filtered_probes(index.ann, row, sparse_here, index.nprobe, *sample,
                               rule=(2.0, 0.5))
    assert len(b) > len(a)


def test_the_rule_is_saved_and_read_back(built, tmp_path):
    from recsys.search.index_files import load_index, save_index

    index, *_ = built
    save_index(index, tmp_path / "ix")
    for mmap in (True, False):
        assert load_index(tmp_path / "ix", mmap=mmap).filter_rule == pytest.approx(
            index.filter_rule)


def test_an_index_saved_without_a_rule_keeps_the_fixed_one(built, tmp_path):
    import json

    from recsys.search.index_files import load_index, save_index

    index, *_ = built
    save_index(index, tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    del manifest["filter_rule"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    again = load_index(tmp_path / "ix")
    assert again.filter_rule == (ivf.FILTER_PROBE_FACTOR, ivf.FILTER_PROBE_POWER)
    manifest["filter_rule"] = ["x", 1]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    from recsys.search.vector_index import VectorIndexError

    with pytest.raises(VectorIndexError, match="filtered-search rule"):
        load_index(tmp_path / "ix")
