"""The broad product-type list's prompts through the text tower are computed once per machine
(`recsys.encoders.text_cache`): the vectors equal the encoder's own text path, and a second
embedding (a new process) runs no MiniLM pass over the broad list."""

from __future__ import annotations

import numpy as np

from recsys.encoders import conse, match_decision, text_cache
from recsys.encoders.product_types import PRODUCT_TYPES


def test_type_names_from_the_machine_cache_equal_the_text_tower(frozen, monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    passes: list[int] = []
    real = conse.minilm_vectors

    def counting(model, tokenize, texts, *a, **k):
        passes.append(len(texts))
        return real(model, tokenize, texts, *a, **k)

    monkeypatch.setattr(conse, "minilm_vectors", counting)
    names = ["Belts", PRODUCT_TYPES[0], PRODUCT_TYPES[5]]
    kept = match_decision.name_vectors(frozen, names)
    broad = len(text_cache.broad_prompts())
    assert broad in passes                                # the broad list computed once
    assert len(list((tmp_path / "cache").glob("conse-names-*.npy"))) == 1
    # the same as the encoder's own text path (prompt ensemble, unit rows)
    monkeypatch.setattr(text_cache, "cached_text_vectors", lambda enc, texts: None)
    direct = match_decision.name_vectors(frozen, names)
    assert kept.shape == direct.shape
    assert np.min(np.sum(kept * direct, axis=1)) > 0.999
    monkeypatch.undo()
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    passes.clear()
    monkeypatch.setattr(conse, "minilm_vectors", counting)
    again = match_decision.name_vectors(frozen, names)       # the next process: read back
    assert broad not in passes and sum(passes) <= len(names) * 5
    assert np.allclose(again, kept, atol=1e-6)


def test_an_encoder_without_a_projection_uses_its_own_text_path():
    class Texts:
        def encode_texts(self, texts, batch_size=256, progress=None):
            return np.ones((len(texts), 4))

    assert text_cache.cached_text_vectors(Texts(), ["a photo of Belts"]) is None
    assert match_decision.name_vectors(Texts(), ["Belts"]).shape == (1, 4)
