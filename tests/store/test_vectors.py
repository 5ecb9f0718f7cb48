"""The store's vectors: embeddings round-trip and are replaced; a modality's vector set is
replaced in one transaction, other encoders kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.store import Store


def test_replacing_a_modality_keeps_one_set_and_other_encoders(tmp_path: Path):
    store = Store(tmp_path / "s.duckdb")
    try:
        store.upsert_embeddings("d", "clip", "1", "image", ["a", "b"],
                                np.ones((2, 4), np.float32), [None, None])
        for version, dim in (("v1", 3), ("v2", 5)):
            written = store.replace_modality_vectors(
                "d", "features", version, "image",
                iter([(["a"], np.ones((1, dim))), (["b", "c"], np.ones((2, dim)))]))
            assert written == 3
        sets = store.embedding_sets("d")
        assert sorted(zip(sets["encoder"], sets["version"])) == [("clip", "1"),
                                                                 ("features", "v2")]
        assert store.embedding_dim("d", "features", "v2", "image") == 5
        assert store.embedding_dim("d", "features", "v1", "image") == 0
    finally:
        store.close()


def test_embeddings_round_trip_and_replace(store: Store):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 8)).astype(np.float32)
    ids = [f"i{k}" for k in range(5)]
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, vecs, ["h"] * 5)
    got_ids, got = store.embeddings("shop", "enc", "v1", "image")
    assert got_ids == ids and np.allclose(got, vecs)
    store.upsert_embeddings("shop", "enc", "v1", "image", ["i0"], vecs[:1] * 2, ["h2"])
    _, got = store.embeddings("shop", "enc", "v1", "image")
    assert np.allclose(got[0], vecs[0] * 2) and len(got) == 5
    assert store.embedding_hashes("shop", "enc", "v1", "image")["i0"] == "h2"
    assert store.embeddings("shop", "enc", "v2", "image")[0] == []
