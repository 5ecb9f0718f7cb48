"""Imported item features: the MMRec layout end to end, id mappings (original ids, an id map
naming itemID 300,000,000 refused at once), tables validated and problems reported, Parquet
lists and wide columns, replacement, a failed write or a full disk keeping the previous
features, sizes checked from the metadata before reading, bounded batches and lines; search
ignores imported features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.data.interactions import load_data
from recsys.data.report import DataImportError
from recsys.store import Store
from recsys.vectors.modalities import (
    FEATURES_ENCODER,
    load_modality_matrices,
    modality_sources,
)

from ..decode_attacks import (
    mmrec_id_map,
    rle_parquet,
    worker_growth_mb,
)
from ..import_helpers import snapshot


# -- sizes and budgets ----------------------------------------------------------------------------
def test_an_id_map_naming_itemID_300000000_is_refused_at_once(ten_item_shop: Store, tmp_path: Path):
    npy = mmrec_id_map(tmp_path / "baby")
    assert (tmp_path / "baby" / "i_id_mapping.csv").stat().st_size == 28
    before = snapshot(ten_item_shop)
    with pytest.raises(DataImportError, match=r"maps itemID 300,000,000, but image_feat.npy "
                                              r"has 10 rows"):
        usecases.import_features(ten_item_shop, npy, "image", "shop")
    assert worker_growth_mb() < 50 and snapshot(ten_item_shop) == before


def test_a_run_length_encoded_parquet_is_read_in_bounded_batches(ten_item_shop: Store,
                                                                 tmp_path: Path):
    path = rle_parquet(tmp_path / "rle.parquet")     # 4,096 x 8,192 zeros: 2.3 GB before
    assert path.stat().st_size < 64 * 2**10
    rep = usecases.import_features(ten_item_shop, path, "style", "shop")
    assert rep.rows_read == 4096 and rep.problems == {"all-zero vector (no direction)": 4096}
    assert rep.refused and worker_growth_mb() < 400
    ones = rle_parquet(tmp_path / "ones.parquet", value=1.0)
    rep = usecases.import_features(ten_item_shop, ones, "style", "shop")
    assert rep.imported == 10 and rep.rows_read == 4096 and rep.details["dimensions"] == 8192
    assert rep.problems == {"duplicate item id (the first row is kept)": 4086}
    assert worker_growth_mb() < 400


def test_feature_sizes_are_checked_from_the_metadata_first(ten_item_shop: Store, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.save(tmp_path / "wide.npy", np.zeros((1, 70_000), np.float32))
    with pytest.raises(DataImportError, match="70,000 dimensions; at most 65,536"):
        usecases.import_features(ten_item_shop, tmp_path / "wide.npy", "style", "shop")
    np.save(tmp_path / "long.npy", np.zeros((200_000, 1), np.float32))
    with pytest.raises(DataImportError, match=r"200,000 rows for a dataset of 10 items; at most "
                                              r"100,040 are read"):
        usecases.import_features(ten_item_shop, tmp_path / "long.npy", "style", "shop")
    lists = pa.ListArray.from_arrays(pa.array([0, 70_000, 140_000], pa.int32()),
                                     pa.array(np.ones(140_000, np.int8)))
    pq.write_table(pa.table({"item_id": ["0", "1"], "vector": lists}), tmp_path / "wide.parquet")
    with pytest.raises(DataImportError, match="70,000 dimensions"):
        usecases.import_features(ten_item_shop, tmp_path / "wide.parquet", "style", "shop")
    header = ",".join(["id"] + [f"d{i}" for i in range(70_000)])
    (tmp_path / "wide.csv").write_text(header + "\n0," + ",".join(["1"] * 70_000) + "\n")
    with pytest.raises(DataImportError, match="70,000 dimensions"):
        usecases.import_features(ten_item_shop, tmp_path / "wide.csv", "style", "shop")
    (tmp_path / "long.csv").write_text("id,vector\n" + "0,1 2\n" * 100_041)
    with pytest.raises(DataImportError, match="more than 100,040 rows"):
        usecases.import_features(ten_item_shop, tmp_path / "long.csv", "style", "shop")


def test_csv_lines_are_bounded_and_bad_lines_reported(ten_item_shop: Store, tmp_path: Path):
    from recsys.vectors.feature_readers import CSV_BLOCK_BYTES, MAX_VECTOR_CHARS

    # pyarrow reads blocks of CSV_BLOCK_BYTES; a line may straddle one boundary, not two
    long_line = "id,vector\n0,1 2\n1," + "1 " * (CSV_BLOCK_BYTES * 5 // 4) + "\n2,3 4\n"
    (tmp_path / "long_line.csv").write_text(long_line)
    with pytest.raises(DataImportError, match="a line is longer than 8 MB"):
        usecases.import_features(ten_item_shop, tmp_path / "long_line.csv", "style", "shop")
    rows = ["id,vector", "0,1 2", "1,3 4,5", "2," + "1 " * (MAX_VECTOR_CHARS // 2 + 1),
            "3,5 6", "4"]
    (tmp_path / "mixed.csv").write_text("\n".join(rows) + "\n")
    rep = usecases.import_features(ten_item_shop, tmp_path / "mixed.csv", "style", "shop")
    assert rep.imported == 2 and rep.rows_read == 5 == rep.imported + rep.rows_skipped
    assert rep.problems == {"line does not have the header's fields": 2,
                            f"vector text longer than {MAX_VECTOR_CHARS:,} characters": 1}
    assert sorted(rep.lines["line does not have the header's fields"]) == [3, 6]


def test_a_parquet_row_too_big_for_the_budget_is_stopped(ten_item_shop: Store, tmp_path: Path,
                                                         monkeypatch):
    """One row of 32 million numbers among 600 empty ones passes the footer's average; its
    batch needs 256 MB as float64: the memory budget stops it, nothing is imported."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, big = 600, 32 * 2**20
    offsets = pa.array(np.r_[0, np.full(n, big)].astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(np.zeros(big, np.int8)))
    pq.write_table(pa.table({"item_id": [str(i % 10) for i in range(n)], "vector": lists}),
                   tmp_path / "skew.parquet", compression="zstd")
    monkeypatch.setenv("RECSYS_FEATURES_BUDGET_MB", "150")
    before = snapshot(ten_item_shop)
    with pytest.raises(DataImportError, match=r"needs more than the 150 MB of memory allowed "
                                              r"for decoding a feature file "
                                              r"\(RECSYS_FEATURES_BUDGET_MB\)"):
        usecases.import_features(ten_item_shop, tmp_path / "skew.parquet", "style", "shop")
    assert snapshot(ten_item_shop) == before
    assert worker_growth_mb() <= 150


def test_a_full_disk_while_staging_the_vectors_is_a_message(ten_item_shop: Store, tmp_path: Path,
                                                           monkeypatch):
    import errno

    import recsys.vectors.features as features

    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    monkeypatch.setenv("RECSYS_SANDBOX", "0")            # the patch below is in this process

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features, "_validate", full)
    before = snapshot(ten_item_shop)
    with pytest.raises(DataImportError, match="could not be staged .*No space left on device"):
        usecases.import_features(ten_item_shop, tmp_path / "f.npy", "style", "shop")
    assert snapshot(ten_item_shop) == before


# -- the MMRec layout and feature tables ----------------------------------------------------------
def write_mmrec_folder(folder: Path, n_users: int = 90, n_items: int = 40, seed: int = 0,
                       image_dim: int = 32, text_dim: int = 12) -> Path:
    """Amazon Baby's layout, small: train/val/test.json ({user index: [item indices]}),
    i_id_mapping.csv (asin, itemID), item2id.json, image_feat.npy and text_feat.npy (rows =
    itemID), with features that follow the 4 item groups users buy from."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    groups = np.arange(n_items) % 4
    splits = {"train": {}, "val": {}, "test": {}}
    for u in range(n_users):
        mine = rng.permutation(np.flatnonzero(groups == u % 4))[:7]
        splits["train"][str(u)] = [int(i) for i in mine[:5]]
        splits["val"][str(u)] = [int(mine[5])]
        splits["test"][str(u)] = [int(mine[6])]
    for name, data in splits.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    asins = [f"B{i:09d}" for i in range(n_items)]
    pd.DataFrame({"asin": asins, "itemID": range(n_items)}).to_csv(
        folder / "i_id_mapping.csv", sep="\t", index=False)
    (folder / "item2id.json").write_text(json.dumps({a: i for i, a in enumerate(asins)}))
    for name, dim in (("image_feat", image_dim), ("text_feat", text_dim)):
        centres = rng.normal(size=(4, dim))
        feats = centres[groups] + 0.3 * rng.normal(size=(n_items, dim))
        np.save(folder / f"{name}.npy", feats.astype(np.float32))
    return folder


def test_amazon_layout_with_features_works_end_to_end(store, tmp_path):
    folder = write_mmrec_folder(tmp_path / "baby")
    rep = usecases.import_interactions(store, folder, fmt="json", dataset="baby")
    assert not rep.refused
    for modality in ("image", "text"):
        rep = usecases.import_features(store, folder / f"{modality}_feat.npy", modality, "baby")
        assert not rep.refused and rep.imported == 40 and not rep.problems
        assert rep.details["items without a vector"] == 0
    mods = {m["modality"]: m for m in usecases.list_modalities(store, "baby")}
    assert mods["image"]["dim"] == 32 and mods["text"]["dim"] == 12
    assert mods["image"]["encoder"] == FEATURES_ENCODER and mods["image"]["imported"]
    # row r of the .npy is MMRec's itemID r, which the split JSON's item ids are
    data = load_data(store, "baby")
    feats = np.load(folder / "image_feat.npy")
    row = int(np.flatnonzero(data.item_ids == "7")[0])
    np.testing.assert_allclose(data.content("image")[row], feats[7] / np.linalg.norm(feats[7]),
                               rtol=1e-5)
    assert usecases.default_model(store, "baby") == usecases.DEFAULT_MODEL
    frame = usecases.evaluate(store, "baby", ["ease", "content-knn", "late-fusion"], ks=(10,))
    ndcg = frame[(frame.slice == "all") & (frame.metric == "ndcg")].set_index("model")["value"]
    assert ndcg["content-knn"] > 0.15 and ndcg["late-fusion"] > 0.15
    recs = usecases.recommend_for(store, "baby", "3", "late-fusion", k=3)
    assert set(recs.items[0].weights) == {"cf", "image", "text"}


def test_features_keyed_by_original_ids_use_the_other_mapping_column(store, tmp_path):
    """A catalog keyed by ASIN: the mapping's asin column names the rows."""
    folder = write_mmrec_folder(tmp_path / "baby")
    asins = pd.read_csv(folder / "i_id_mapping.csv", sep="\t")["asin"]
    pd.DataFrame({"item_id": asins, "title": [f"Product {a}" for a in asins]}).to_csv(
        tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rep = usecases.import_features(store, folder / "text_feat.npy", "text", "shop")
    assert rep.imported == 40 and not rep.problems


def test_feature_tables_are_validated_and_problems_reported(store, tmp_path):
    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(10)],
                            "title": [f"Product {i}" for i in range(10)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rows = [("p0", "[1, 0, 0]"), ("p1", "0 1 0"), ("p2", "0;0;1"), ("p3", "1, 2"),
            ("p4", "1, nan, 0"), ("p5", "0, 0, 0"), ("ghost", "1, 1, 1"), ("p0", "1, 1, 0"),
            ("p6", "red, green, blue"), ("", "1, 1, 1"), ("p7", "")]
    pd.DataFrame(rows, columns=["sku", "embedding"]).to_csv(tmp_path / "f.csv", index=False)
    rep = usecases.import_features(store, tmp_path / "f.csv", "style", "shop",
                                   columns={"item_id": "sku"})
    assert rep.imported == 3 and rep.rows_read == 11
    assert rep.problems == {"row without an item id": 1, "row without a vector": 1,
                            "vector is not a list of numbers": 1,
                            "vector does not have 3 dimensions (the first row's)": 1,
                            "NaN or infinite value": 1, "all-zero vector (no direction)": 1,
                            "item not in the dataset": 1,
                            "duplicate item id (the first row is kept)": 1}
    assert rep.examples["item not in the dataset"] == ["item ghost"]
    assert rep.lines["item not in the dataset"] == [8]          # the CSV's line number
    assert rep.details["items without a vector"] == 7
    assert rep.details["e.g. items without a vector"].startswith("p3, p4, p5")
    mats = load_modality_matrices(store, "shop")
    assert mats.present["style"].sum() == 3 and mats.vectors["style"].shape == (10, 3)
    # refuse: nothing changes (the 3 vectors stay)
    rep = usecases.import_features(store, tmp_path / "f.csv", "style", "shop",
                                   columns={"item_id": "sku"}, on_error="refuse")
    assert rep.refused and rep.imported == 0
    assert load_modality_matrices(store, "shop").present["style"].sum() == 3


def test_parquet_list_and_wide_columns_and_replacement(store, tmp_path):
    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(6)],
                            "title": [f"Product {i}" for i in range(6)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 5))
    pd.DataFrame({"item_id": catalog["item_id"], "vector": list(vecs)}).to_parquet(
        tmp_path / "f.parquet")
    rep = usecases.import_features(store, tmp_path / "f.parquet", "style", "shop")
    assert rep.imported == 6 and not rep.problems and rep.details["dimensions"] == 5
    wide = pd.DataFrame(vecs[:4, :2], columns=["d0", "d1"]).assign(id=catalog["item_id"][:4])
    wide.to_csv(tmp_path / "wide.csv", index=False)
    rep = usecases.import_features(store, tmp_path / "wide.csv", "style", "shop")
    assert rep.imported == 4 and rep.details["dimensions"] == 2
    sources = modality_sources(store, "shop")
    assert sources["style"].encoder == FEATURES_ENCODER
    sets = store.embedding_sets("shop")
    assert len(sets[sets.modality == "style"]) == 1              # the re-import replaced it
    assert store.embedding_dim("shop", FEATURES_ENCODER, sources["style"].version,
                               "style") == 2


def test_a_failed_write_keeps_the_previous_features(store, tmp_path, monkeypatch):
    import recsys.vectors.features as features

    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(9)],
                            "title": [f"Product {i}" for i in range(9)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    np.save(tmp_path / "a.npy", np.ones((9, 4), np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(catalog["item_id"]) + "\n")
    usecases.import_features(store, tmp_path / "a.npy", "style", "shop", ids=tmp_path / "ids.txt")
    np.save(tmp_path / "b.npy", np.full((9, 4), 2.0, np.float32))
    monkeypatch.setattr(features, "CHUNK_ROWS", 4)
    real = Store.insert_frame.__func__
    calls = {"n": 0}

    def failing(cls, cur, table, frame, mode="append"):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk trouble")
        return real(cls, cur, table, frame, mode)

    monkeypatch.setattr(Store, "insert_frame", classmethod(failing))
    with pytest.raises(OSError):
        usecases.import_features(store, tmp_path / "b.npy", "style", "shop",
                                 ids=tmp_path / "ids.txt")
    monkeypatch.undo()
    mats = load_modality_matrices(store, "shop")
    assert mats.present["style"].sum() == 9
    assert store.embedding_sets("shop")["n_items"].tolist() == [9]


@pytest.mark.parametrize("content, message", [
    (b"not a numpy file", "not a readable .npy"),
    (None, "2-D matrix"),
])
def test_unreadable_feature_files_are_clear_errors(store, tmp_path, content, message):
    catalog = pd.DataFrame({"item_id": ["p0"], "title": ["Product"]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    path = tmp_path / "f.npy"
    if content is None:
        np.save(path, np.ones(3, np.float32))
    else:
        path.write_bytes(content)
    with pytest.raises(DataImportError, match=message):
        usecases.import_features(store, path, "style", "shop")
    with pytest.raises(DataImportError, match="cannot name a modality"):
        usecases.import_features(store, path, "CF", "shop")


def test_search_ignores_imported_features(store, tmp_path):
    """Imported vectors cannot encode a query: search keeps the encoder's own vectors."""
    from recsys.vectors.modalities import searchable_encoder

    folder = write_mmrec_folder(tmp_path / "baby")
    usecases.import_interactions(store, folder, fmt="json", dataset="baby")
    usecases.import_features(store, folder / "image_feat.npy", "image", "baby")
    assert searchable_encoder(store, "baby") is None
    with pytest.raises(usecases.NoVectors):
        usecases.search_similar(store, "baby", text="a bag")
