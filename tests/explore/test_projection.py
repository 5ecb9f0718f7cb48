"""The catalog map: cluster purity counts majority labels, clusters are named, and a damaged map
cache is made again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import io
from pathlib import Path
from ..damaged_files import write_npz


def test_purity_counts_majority_labels():
    from recsys.explore.projection import name_clusters, purity

    labels = np.array([0, 0, 0, 1, 1, 1])
    truth = ["a", "a", "b", "c", "c", "c"]
    assert purity(labels, truth) == pytest.approx(5 / 6)
    assert purity(np.zeros(6, int), truth) == pytest.approx(3 / 6)
    items = pd.DataFrame({"article_type": truth, "gender": ["Men"] * 3 + ["Women"] * 3,
                          "base_colour": ["Red", "Blue", "Green", "Black", "Black", "Black"]})
    named = name_clusters(labels, items).set_index("cluster")
    assert named.loc[0, "name"] == "a · Men" and named.loc[1, "name"] == "c · Black"
    assert named.loc[0, "size"] == 3 and named.loc[1, "share_base_colour"] == 1.0


# -- the map's cache ------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["truncated", "wrong shape", "NaN", "objects", "fine"])
def test_a_damaged_catalog_map_cache_is_made_again(tmp_path: Path, content: str):
    from recsys.explore.projection import cached_projection

    path = tmp_path / "map.npz"
    good = np.arange(10, dtype=np.float32).reshape(5, 2)
    write_npz(path, {"coords": good})
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif content == "wrong shape":
        write_npz(path, {"coords": np.zeros((5, 3), np.float32)})
    elif content == "NaN":
        write_npz(path, {"coords": np.full((5, 2), np.nan, np.float32)})
    elif content == "objects":
        import zipfile
        buf = io.BytesIO()
        np.save(buf, np.array([None] * 10, dtype=object).reshape(5, 2), allow_pickle=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("coords.npy", buf.getvalue())
    made = np.ones((5, 2), np.float32)
    coords, cached = cached_projection(path, lambda: made, rows=5)
    if content == "fine":
        assert cached and np.array_equal(coords, good)
    else:
        assert not cached and np.array_equal(coords, made)
        assert cached_projection(path, lambda: made * 2, rows=5)[1]       # rewritten whole
