"""A stopped align + embed job, run again, continues from what it wrote: the photo features
the alignment kept on disk (`recsys.encoders.feature_shards`) and the vectors already stored.
Each photo goes through the image tower once over both runs."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.jobs.runner import JobStopped

from .test_encode_once import TINY, drop_feature_shards, encode_counts  # noqa: F401


def stop_at(stage: str):
    """A progress callback that raises Stop (as the job runner does) at the first report of
    `stage`."""
    def progress(p):
        if p.stage == stage:
            raise JobStopped(1)
    return progress


def test_a_stopped_alignment_resumes_from_its_feature_shards(shapes_store, encode_counts,  # noqa: F811
                                                            monkeypatch):
    from recsys.encoders import feature_shards
    from recsys.vectors.embed import ensure_item_vectors

    decoded, trunk_rows = encode_counts
    monkeypatch.setattr(feature_shards, "SHARD_PHOTOS", 8)
    with pytest.raises(JobStopped):
        ensure_item_vectors(shapes_store, "shapes", config=TINY,
                            progress=stop_at("cache images"))
    # the chunk in hand finished and was written before the job stopped
    assert sum(decoded.values()) == trunk_rows[0] == 8
    runs = shapes_store.runs("shapes", kind="encoder")
    assert runs.iloc[0]["status"] == "interrupted"
    rep = ensure_item_vectors(shapes_store, "shapes", config=TINY)
    assert rep.trained and rep.embedded == {"image": 24, "text": 24}
    assert set(decoded.values()) == {1} and len(decoded) == 24 and trunk_rows[0] == 24


def test_a_stopped_embedding_resumes_without_encoding_again(shapes_store, encode_counts,  # noqa: F811
                                                           monkeypatch):
    from recsys.vectors import embed as embed_module
    from recsys.vectors.embed import embed_items, ensure_item_vectors

    decoded, trunk_rows = encode_counts
    monkeypatch.setattr(embed_module, "IMAGE_CHUNK", 8)
    with pytest.raises(JobStopped):
        ensure_item_vectors(shapes_store, "shapes", config=TINY, progress=stop_at("images"))
    enc = shapes_store.encoders("shapes").iloc[0]           # aligned and registered
    ids, _ = shapes_store.embeddings("shapes", "catalog-clip", enc["version"], "image")
    assert 0 < len(ids) < 24                               # stopped after a chunk
    rep = ensure_item_vectors(shapes_store, "shapes")       # the job run again
    assert rep.trained is None and rep.embedded["image"] == 24 - len(ids)
    assert rep.reused["image"] > 0                         # from the alignment's shards
    assert set(decoded.values()) == {1} and len(decoded) == 24 and trunk_rows[0] == 24
    # and the vectors are the checkpoint's own (run in full, from scratch)
    _, resumed = shapes_store.embeddings("shapes", "catalog-clip", enc["version"], "image")
    drop_feature_shards(shapes_store)
    assert embed_items(shapes_store, "shapes", "catalog-clip", force=True).reused == {}
    _, full = shapes_store.embeddings("shapes", "catalog-clip", enc["version"], "image")
    assert np.sum(resumed * full, axis=1).min() > 0.999


def test_unreadable_shards_are_dropped_and_computed_again(tmp_path):
    import torch

    from recsys.encoders.feature_shards import PhotoFeatureShards

    shards = PhotoFeatureShards(tmp_path)
    feats = torch.randn(3, 1280).to(torch.bfloat16)
    shards.append(["a", "b", "c"], feats)
    (tmp_path / "part-00001.npz").write_bytes(b"half a shard")
    again = PhotoFeatureShards(tmp_path)
    assert list(again.rows(["a", "c", "x"])) == [True, True, False]
    assert torch.equal(again.features(["c", "a"]), feats[[2, 0]])
    assert not (tmp_path / "part-00001.npz").exists()
