"""DOCSTRING TO WRITE."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from recsys.store import Store


# -- video folders (item 11) ---------------------------------------------------------------------
def test_video_folder_links_out_are_refused_per_file(tmp_path):
    from recsys.vectors.embed import item_videos

    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "a.mp4").write_bytes(b"video a")
    (outside / "secret.mp4").write_bytes(b"not yours")
    os.symlink(outside / "secret.mp4", folder / "b.mp4")          # a link out: refused
    os.symlink(folder / "a.mp4", folder / "c.webm")               # a link inside: fine
    os.symlink(outside, folder / "sub")
    os.symlink(outside / "missing.mp4", folder / "d.mp4")         # dangling, outside
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"]})
    refused: dict[str, str] = {}
    found = item_videos(items, folder, refused=refused)
    assert found == {"a": str((folder / "a.mp4").resolve()),
                     "c": str((folder / "a.mp4").resolve())}
    assert set(refused) == {"b", "d"} and all("link out of the videos folder" in r
                                              for r in refused.values())
    assert str(outside) not in " ".join(refused.values())


@pytest.fixture
def video_folder_shop(tmp_path):
    pytest.importorskip("av")
    from ..data.test_video import product_clip
    from ..encoder_helpers import import_shapes

    store = Store(tmp_path / "v.duckdb")
    import_shapes(store, tmp_path, copies=1)
    ids = store.item_ids("shapes")
    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / f"{ids[0]}.mp4").write_bytes(product_clip("polygon", "Black"))
    (outside / "private.mp4").write_bytes(product_clip("ellipse", "Red"))
    os.symlink(outside / "private.mp4", folder / f"{ids[1]}.mp4")
    yield store, folder, ids
    store.close()


def test_embed_reports_a_video_linking_out_of_its_folder(video_folder_shop, frozen):
    """`embed --videos FOLDER` (and the use case): the file that links out is reported in the
    embed report, not read; the video inside is embedded."""
    from recsys.vectors.embed import embed_items

    store, folder, ids = video_folder_shop
    rep = embed_items(store, "shapes", frozen, videos=folder)
    assert rep.embedded["video"] == 1
    assert set(rep.failed_videos) == {ids[1]}
    assert "link out of the videos folder" in rep.summary()
