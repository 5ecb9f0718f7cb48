"""Align + embed encode each photo once: the catalog's embedding right after an alignment
reuses the frozen towers' outputs the alignment computed (only the held-out items' photos go
through the image tower), and its vectors equal those of the saved checkpoint run in full."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

TINY = {"epochs": 2, "max_steps": 2, "batch_size": 8, "augment_views": 0}


@pytest.fixture
def encode_counts(monkeypatch):
    """Photos decoded per path and rows run through the image tower's trunk (EfficientNet, in
    PyTorch or OpenVINO)."""
    import torch

    from recsys.encoders import clip_encoder, training_data

    decoded: Counter = Counter()
    real = clip_encoder.prepare_image

    def counting(source, *args, **kwargs):
        if isinstance(source, str):
            decoded[source] += 1
        return real(source, *args, **kwargs)

    monkeypatch.setattr(clip_encoder, "prepare_image", counting)
    monkeypatch.setattr(training_data, "prepare_image", counting)
    trunk_rows = [0]

    def hook(module, inputs, output):
        if type(module).__name__ in ("EfficientNet", "Lite0Trunk"):   # open_clip's or ours
            trunk_rows[0] += int(inputs[0].shape[0])

    from recsys.encoders import tower_runtime

    fast = tower_runtime.OpenVinoTrunk.__call__

    def counting_fast(self, x):                # the same trunk run by OpenVINO
        trunk_rows[0] += int(x.shape[0])
        return fast(self, x)

    monkeypatch.setattr(tower_runtime.OpenVinoTrunk, "__call__", counting_fast)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    yield decoded, trunk_rows
    handle.remove()


def test_align_and_embed_encode_each_photo_once(shapes_store, encode_counts):
    from recsys.vectors.embed import ensure_item_vectors

    decoded, trunk_rows = encode_counts
    rep = ensure_item_vectors(shapes_store, "shapes", config=TINY)
    photos = set(shapes_store.items("shapes")["image_path"])
    assert rep.trained and rep.embedded == {"image": 24, "text": 24}
    assert set(decoded) == photos and set(decoded.values()) == {1}, decoded
    assert trunk_rows[0] == 24
    # the alignment's 80% (train + validation) came from its cache; the held-out 20% were new
    assert 0 < rep.reused["image"] < 24 and rep.reused["text"] == rep.reused["image"]
    assert "encoded once" in rep.summary()


def drop_feature_shards(store) -> None:
    """Delete the photo features alignments kept on disk (the next embedding runs the tower)."""
    import shutil

    from recsys.core.config import artifacts_dir

    shutil.rmtree(artifacts_dir(store.path, "tower-features"))


def test_reused_vectors_equal_the_checkpoint_run_in_full(shapes_store):
    from recsys.vectors.embed import embed_items, ensure_item_vectors

    rep = ensure_item_vectors(shapes_store, "shapes", config=TINY)
    assert rep.reused["image"] > 0
    before = {m: shapes_store.embeddings("shapes", rep.encoder, rep.version, m)
              for m in ("image", "text")}
    # the old path: the checkpoint reloaded from disk, every photo and caption encoded in full
    drop_feature_shards(shapes_store)
    full = embed_items(shapes_store, "shapes", "catalog-clip", force=True)
    assert full.embedded == {"image": 24, "text": 24} and not full.reused
    for modality, (ids, vecs) in before.items():
        ids2, vecs2 = shapes_store.embeddings("shapes", rep.encoder, rep.version, modality)
        assert ids == ids2 and vecs.shape == vecs2.shape == (24, 640)
        cosine = np.sum(vecs * vecs2, axis=1)
        # bf16 autocast on CPUs that have it: the same numbers up to its rounding
        assert cosine.min() > 0.999, (modality, cosine.min())
        assert np.abs(vecs - vecs2).max() < 0.02, (modality, np.abs(vecs - vecs2).max())
