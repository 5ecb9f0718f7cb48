"""DOCSTRING TO WRITE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.data.datasets import DataImportError
from recsys.store import Store

from ..decode_attacks import (
    mmrec_id_map,
    rle_parquet,
    worker_growth_mb,
)
from ..import_helpers import snapshot


# -- feature files --------------------------------------------------------------------------------
def test_an_id_map_naming_itemID_300000000_is_refused_at_once(ten_item_shop: Store, tmp_path: Path):
    npy = mmrec_id_map(tmp_path / "baby")
    assert (tmp_path / "baby" / "i_id_mapping.csv").stat().st_size == 28
    before = snapshot(ten_item_shop)
    with pytest.raises(DataImportError, match=r"maps itemID 300,000,000, but image_feat.npy "
                                              r"has 10 rows"):
        usecases.import_features(ten_item_shop, npy, "image", "shop")
    assert worker_growth_mb() < 50 and snapshot(ten_item_shop) == before


def test_a_run_length_encoded_parquet_is_read_in_bounded_batches(ten_item_shop: Store, tmp_path: Path):
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
    from recsys.vectors.features import CSV_BLOCK_BYTES, MAX_VECTOR_CHARS

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
