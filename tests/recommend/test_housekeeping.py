"""Old model files: training keeps the newest per model, the newest finished run of each split is
never deleted, and disk use counts each kind of file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.recommend.housekeeping import disk_usage, format_bytes, prune_models
from recsys.recommend.training import find_run, load_model, train_model
from recsys.store import Store

from ..test_models_helpers import fill_store

GB = 2**30


@pytest.fixture
def tiny_split_store(tmp_path):
    store = Store(tmp_path / "tiny.duckdb")
    fill_store(store, with_split=True, with_vectors=False)
    yield store
    store.close()


def test_training_keeps_the_newest_files_per_model(tiny_split_store):
    runs = [train_model(tiny_split_store, "tiny", "popularity", keep_models=0).run_id
            for _ in range(4)]
    other = train_model(tiny_split_store, "tiny", "itemknn", keep_models=0).run_id
    paths = {r: tiny_split_store.run(r)["artifact_path"] for r in runs}
    assert all(Path(p).is_file() for p in paths.values())
    preview = prune_models(tiny_split_store, "tiny", keep=2, dry_run=True)
    assert [d["run_id"] for d in preview.deleted] == runs[:2][::-1]
    assert all(Path(p).is_file() for p in paths.values())                 # dry run
    report = prune_models(tiny_split_store, "tiny", keep=2)
    assert sorted(d["run_id"] for d in report.deleted) == runs[:2]
    assert report.freed_bytes > 0 and "Deleted 2 model files" in report.summary()
    for r in runs[:2]:
        row = tiny_split_store.run(r)
        assert not Path(paths[r]).exists() and row["artifact_path"] is None
        assert row["status"] == "finished" and "housekeeping" in row["message"]
    assert all(Path(paths[r]).is_file() for r in runs[2:])
    assert Path(tiny_split_store.run(other)["artifact_path"]).is_file()          # another model
    assert load_model(tiny_split_store, "tiny", "popularity").run_id == runs[-1]
    # training prunes on its own: keep 1 leaves only the new file
    newest = train_model(tiny_split_store, "tiny", "popularity", keep_models=1)
    assert [d["run_id"] for d in newest.pruned] == runs[2:][::-1]
    assert find_run(tiny_split_store, "tiny", "popularity")["run_id"] == newest.run_id


def test_the_newest_finished_run_of_each_split_is_never_deleted(tiny_split_store):
    stored = train_model(tiny_split_store, "tiny", "popularity", keep_models=0).run_id
    randoms = [train_model(tiny_split_store, "tiny", "popularity", protocol="random",
                           keep_models=0).run_id for _ in range(2)]
    # keep=1, yet the newest finished run of each split (stored, random) stays
    report = prune_models(tiny_split_store, "tiny", keep=1)
    assert [d["run_id"] for d in report.deleted] == [randoms[0]]
    assert set(report.kept) == {stored, randoms[1]}
    assert find_run(tiny_split_store, "tiny", "popularity", protocol="stored")["run_id"] == stored
    metrics_kept = tiny_split_store.run(randoms[0])
    assert json.loads(metrics_kept["config"])["protocol"] == "random"


def test_disk_usage_counts_each_kind_of_file(tiny_split_store):
    train_model(tiny_split_store, "tiny", "popularity", keep_models=0)
    from recsys.core import config

    index_dir = config.artifacts_dir(tiny_split_store.path, "indexes", "tiny", "enc@v1", "float32")
    (index_dir / "flat.x.faiss").write_bytes(b"0" * 5000)
    enc = config.artifacts_dir(tiny_split_store.path, "encoders", "catalog-clip") / "tiny.pt"
    enc.write_bytes(b"0" * 3000)
    usage = disk_usage(tiny_split_store)
    assert usage.database > 0 and usage.models > 0 and usage.model_files == 1
    assert usage.indexes == 5000 and usage.index_files == 1
    assert usage.encoders == 3000 and usage.encoder_files == 1
    assert usage.total == usage.database + usage.models + usage.encoders + usage.indexes + \
        usage.other
    assert "search indexes 4.9 KB in 1 file" in usage.summary()
    assert format_bytes(3 * GB) == "3.0 GB" and format_bytes(12) == "12 B"


def test_deleting_a_dataset_deletes_its_files_and_only_its_own(tmp_path):
    """Model files, indexes and feature shards of a deleted dataset go with it; another
    dataset's, another database's and a name that tries to climb out of the folder stay."""
    from recsys import usecases
    from recsys.core import config
    from recsys.recommend.housekeeping import delete_dataset_files

    store = Store(tmp_path / "shop.duckdb")
    try:
        fill_store(store, with_split=True, with_vectors=False)       # dataset "tiny"
        run = train_model(store, "tiny", "popularity")
        model_file = Path(store.run(run.run_id)["artifact_path"])
        shard = config.artifacts_dir(store.path, "tower-features", "tiny", "lite0") / "part-0.npz"
        shard.write_bytes(b"x" * 100)
        index = config.artifacts_dir(store.path, "indexes", "tiny") / "image.faiss"
        index.write_bytes(b"y" * 50)
        kept = config.artifacts_dir(store.path, "models", "other") / "ease-run1.npz"
        kept.write_bytes(b"z")
        other_db = config.artifacts_dir(tmp_path / "b.duckdb", "models", "tiny") / "m.npz"
        other_db.write_bytes(b"w")
        assert model_file.is_file()
        assert delete_dataset_files(store, "..") == (0, 0)           # never climbs out
        info = usecases.delete_dataset(store, "tiny", confirm=True)
        assert info["files_deleted"] >= 3 and info["bytes_freed"] >= 150
        assert not model_file.exists() and not shard.exists() and not index.exists()
        assert kept.is_file() and other_db.is_file()
        assert "tiny" not in store.dataset_names()
    finally:
        store.close()
