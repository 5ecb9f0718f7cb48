"""CF past 35k items (EASE's memory guard and its sparse variant, the fusion models' CF part)
and housekeeping (old model files deleted, the newest always kept, disk use)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.core.memory import MemoryBudget
from recsys.models import baselines, create_model
from recsys.models.baselines import (
    EASEMemoryError,
    dense_ease,
    dense_ease_bytes,
    plan_ease,
    sparse_ease,
    spd_inverse,
)
from recsys.recommend.housekeeping import disk_usage, format_bytes, prune_models
from recsys.recommend.training import find_run, load_model, train_model
from recsys.store import Store

from ..test_models_helpers import fill_store, tiny_data

GB = 2**30


def test_plan_follows_the_memory_budget():
    # 10k items need ~0.5 GB dense: fits 25% of 8 GB, not 25% of 1 GB
    assert plan_ease(10_000, available=8 * GB).mode == "dense"
    low = plan_ease(10_000, available=1 * GB)
    assert low.mode == "sparse" and "budget" in low.reason
    assert low.needed_bytes == dense_ease_bytes(10_000) > low.budget_bytes == GB // 4
    # a bigger share of the same memory lets dense through again
    assert plan_ease(10_000, memory_fraction=0.9, available=1 * GB).mode == "dense"
    # above dense_max_items auto switches whatever the memory (the inverse is O(n^3))
    big = plan_ease(25_000, available=200 * GB, dense_max_items=20_000)
    assert big.mode == "sparse" and "dense_max_items" in big.reason
    assert plan_ease(50, mode="sparse", available=200 * GB).mode == "sparse"
    # dense on request, over budget: a clear refusal with the numbers, no numpy traceback
    with pytest.raises(EASEMemoryError, match=r"54,305 items needs about [\d.]+ GB.*budget is 4\.0 GB.*mode=sparse"):
        plan_ease(54_305, mode="dense", available=16 * GB)
    with pytest.raises(Exception, match="mode must be one of"):
        plan_ease(10, mode="huge")


def random_clicks(users: int, items: int, density: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((users, items)) < density).astype(np.float32))


def test_dense_ease_in_place_matches_the_textbook_formula():
    x = random_clicks(500, 120, 0.05)
    gram = (x.T @ x).toarray().astype(np.float32)
    gram[np.diag_indices(120)] += 30.0
    inv = spd_inverse(gram)
    expect = inv / -np.diag(inv)[None, :]
    expect[np.diag_indices(120)] = 0.0
    np.testing.assert_allclose(dense_ease(x, 30.0), expect, atol=1e-6)


def test_sparse_ease_is_exact_when_every_item_is_a_neighbour():
    # dense co-occurrence and support >= items: each column is EASE's own ridge regression
    x = random_clicks(400, 40, 0.3, seed=1)
    np.testing.assert_allclose(sparse_ease(x, 5.0, support=64).toarray(), dense_ease(x, 5.0),
                               atol=2e-6)
    # a small support keeps at most that many weights per target item
    w = sparse_ease(x, 5.0, support=8)
    assert (w.getnnz(axis=0) <= 8).all() and w.diagonal().sum() == 0


def test_ease_switches_to_sparse_under_a_small_memory_budget(monkeypatch, tmp_path):
    data = tiny_data()
    monkeypatch.setattr(baselines, "memory_budget", lambda: MemoryBudget(64 * GB, "system"))
    roomy = create_model("ease").fit(data)
    assert roomy.variant == "dense" and isinstance(roomy.weights, np.ndarray)
    monkeypatch.setattr(baselines, "memory_budget",
                        lambda: MemoryBudget(1000, "system"))      # 1 kB free
    tight = create_model("ease").fit(data)
    assert tight.variant == "sparse" and sp.issparse(tight.weights)
    assert tight.describe()["variant"] == "sparse"
    # the sparse model still ranks each user's own taste group first
    top = tight.recommend("u00", k=3)
    assert len(top) == 3
    assert all(int(i[1:]) < 10 for i, _ in top)
    with pytest.raises(EASEMemoryError, match="Dense EASE"):
        create_model("ease", mode="dense").fit(data)
    path = tmp_path / "ease.npz"
    tight.save(path)
    again = type(tight).load(path)
    assert again.variant == "sparse"
    np.testing.assert_allclose(again.score([0, 1]), tight.score([0, 1]))


def test_fusion_models_take_the_sparse_cf_part_when_memory_is_short(monkeypatch):
    monkeypatch.setattr(baselines, "memory_budget", lambda: MemoryBudget(1000, "system"))
    data = tiny_data()
    late = create_model("late-fusion", epochs=2).fit(data)
    assert late.config.cf_model == "ease" and late.scorers["cf"].variant == "sparse"
    attention = create_model("attention-fusion", epochs=1).fit(data)
    assert attention.scorers["cf"].variant == "sparse"


def test_validation_scores_stay_within_their_memory_budget(monkeypatch):
    monkeypatch.setattr(baselines, "SCORE_BUDGET_BYTES", 4 * 22 * 5)     # 5 users x 22 items
    model = create_model("ease")
    users = model._validation_users(tiny_data(), np.random.default_rng(0))
    assert len(users) <= 100 and len(users) == len(np.unique(users))
    monkeypatch.setattr(baselines, "SCORE_BUDGET_BYTES", 10**9)
    assert len(model._validation_users(tiny_data(), np.random.default_rng(0))) == 20


# -- housekeeping --------------------------------------------------------------------------------
@pytest.fixture
def tiny_store(tmp_path):
    store = Store(tmp_path / "tiny.duckdb")
    fill_store(store, with_split=True, with_vectors=False)
    yield store
    store.close()


def test_training_keeps_the_newest_files_per_model(tiny_store):
    runs = [train_model(tiny_store, "tiny", "popularity", keep_models=0).run_id
            for _ in range(4)]
    other = train_model(tiny_store, "tiny", "itemknn", keep_models=0).run_id
    paths = {r: tiny_store.run(r)["artifact_path"] for r in runs}
    assert all(Path(p).is_file() for p in paths.values())
    preview = prune_models(tiny_store, "tiny", keep=2, dry_run=True)
    assert [d["run_id"] for d in preview.deleted] == runs[:2][::-1]
    assert all(Path(p).is_file() for p in paths.values())                 # dry run
    report = prune_models(tiny_store, "tiny", keep=2)
    assert sorted(d["run_id"] for d in report.deleted) == runs[:2]
    assert report.freed_bytes > 0 and "Deleted 2 model files" in report.summary()
    for r in runs[:2]:
        row = tiny_store.run(r)
        assert not Path(paths[r]).exists() and row["artifact_path"] is None
        assert row["status"] == "finished" and "housekeeping" in row["message"]
    assert all(Path(paths[r]).is_file() for r in runs[2:])
    assert Path(tiny_store.run(other)["artifact_path"]).is_file()          # another model
    assert load_model(tiny_store, "tiny", "popularity").run_id == runs[-1]
    # training prunes on its own: keep 1 leaves only the new file
    newest = train_model(tiny_store, "tiny", "popularity", keep_models=1)
    assert [d["run_id"] for d in newest.pruned] == runs[2:][::-1]
    assert find_run(tiny_store, "tiny", "popularity")["run_id"] == newest.run_id


def test_the_newest_finished_run_of_each_split_is_never_deleted(tiny_store):
    stored = train_model(tiny_store, "tiny", "popularity", keep_models=0).run_id
    randoms = [train_model(tiny_store, "tiny", "popularity", protocol="random",
                           keep_models=0).run_id for _ in range(2)]
    # keep=1, yet the newest finished run of each split (stored, random) stays
    report = prune_models(tiny_store, "tiny", keep=1)
    assert [d["run_id"] for d in report.deleted] == [randoms[0]]
    assert set(report.kept) == {stored, randoms[1]}
    assert find_run(tiny_store, "tiny", "popularity", protocol="stored")["run_id"] == stored
    metrics_kept = tiny_store.run(randoms[0])
    assert json.loads(metrics_kept["config"])["protocol"] == "random"


def test_disk_usage_counts_each_kind_of_file(tiny_store):
    train_model(tiny_store, "tiny", "popularity", keep_models=0)
    from recsys.core import config

    index_dir = config.artifacts_dir(tiny_store.path, "indexes", "tiny", "enc@v1", "float32")
    (index_dir / "flat.x.faiss").write_bytes(b"0" * 5000)
    enc = config.artifacts_dir(tiny_store.path, "encoders", "catalog-clip") / "tiny.pt"
    enc.write_bytes(b"0" * 3000)
    usage = disk_usage(tiny_store)
    assert usage.database > 0 and usage.models > 0 and usage.model_files == 1
    assert usage.indexes == 5000 and usage.index_files == 1
    assert usage.encoders == 3000 and usage.encoder_files == 1
    assert usage.total == usage.database + usage.models + usage.encoders + usage.indexes + \
        usage.other
    assert "search indexes 4.9 KB in 1 file" in usage.summary()
    assert format_bytes(3 * GB) == "3.0 GB" and format_bytes(12) == "12 B"
