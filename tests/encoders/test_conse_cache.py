"""The ConSE head's class-name vectors are computed once per machine: kept in the cache folder,
read back by the next process (no MiniLM pass), recomputed when the file is not right."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def fresh_names(monkeypatch, tmp_path):
    from recsys.encoders import conse

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(conse, "_NAME_VECTORS", {})
    calls = [0]

    def counting(model, tokenize, texts):
        # stands in for MiniLM (the caching is under test, not the text tower): new numbers
        # on every call, so a vector read back is told apart from one computed again
        calls[0] += 1
        rng = np.random.default_rng(calls[0])
        return rng.normal(size=(len(texts), 384)).astype(np.float32)

    monkeypatch.setattr(conse, "minilm_vectors", counting)
    return conse, calls, tmp_path / "cache"


def test_class_name_vectors_are_read_from_the_cache_folder(fresh_names, frozen):
    conse, calls, folder = fresh_names
    first = conse.build_conse_head(frozen.model, frozen.tokenize)
    assert calls[0] == 1 and len(list(folder.glob("conse-names-*.npy"))) == 1
    conse._NAME_VECTORS.clear()                         # a new process
    second = conse.build_conse_head(frozen.model, frozen.tokenize)
    assert calls[0] == 1                                # no MiniLM pass
    assert np.array_equal(first.names.numpy(), second.names.numpy())
    assert second.names.shape == (1000, 384)


def test_a_damaged_cache_file_is_recomputed(fresh_names, frozen):
    conse, calls, folder = fresh_names
    conse.build_conse_head(frozen.model, frozen.tokenize)
    (path,) = folder.glob("conse-names-*.npy")
    good = np.load(path)
    path.write_bytes(b"not an array")
    conse._NAME_VECTORS.clear()
    head = conse.build_conse_head(frozen.model, frozen.tokenize)
    good = good / np.linalg.norm(good, axis=1, keepdims=True)     # the head keeps unit rows
    assert calls[0] == 2 and not np.allclose(head.names.numpy(), good, atol=1e-6)
    assert np.load(path).shape == (1000, 384)                         # rewritten
    conse._NAME_VECTORS.clear()
    again = conse.build_conse_head(frozen.model, frozen.tokenize)
    assert calls[0] == 2 and np.array_equal(again.names.numpy(), head.names.numpy())
    np.save(path, np.full((1000, 384), np.nan, dtype=np.float32))   # wrong numbers
    conse._NAME_VECTORS.clear()
    conse.build_conse_head(frozen.model, frozen.tokenize)
    assert calls[0] == 3 and np.isfinite(np.load(path)).all()


def test_the_real_text_tower_fills_the_head_once_per_machine(frozen, monkeypatch, tmp_path):
    """With MiniLM itself: the vectors read back are the ones computed."""
    from recsys.encoders import conse

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(conse, "_NAME_VECTORS", {})
    first = conse.build_conse_head(frozen.model, frozen.tokenize)
    conse._NAME_VECTORS.clear()
    monkeypatch.setattr(conse, "minilm_vectors", None)     # would fail if called
    second = conse.build_conse_head(frozen.model, frozen.tokenize)
    assert np.array_equal(first.names.numpy(), second.names.numpy())


def test_an_empty_cache_setting_keeps_nothing_on_disk(fresh_names, frozen, monkeypatch):
    conse, calls, folder = fresh_names
    monkeypatch.setenv("RECSYS_CACHE_DIR", "")
    conse.build_conse_head(frozen.model, frozen.tokenize)
    assert calls[0] == 1 and not folder.exists()
