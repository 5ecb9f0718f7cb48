"""Embedding in process: alignment, registration and incremental re-embedding (one item changed,
one gone), bad photos skipped, up-to-date catalogs loading no model, and video folders whose
links out are refused per file."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from recsys.encoders import (
    NoCheckpointError,
    get_encoder,
)
from recsys.store import Store

from ..encoder_helpers import draw_product


# -- video folders --------------------------------------------------------------------------------
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


def test_train_embed_search_and_incremental_reembedding(shapes_store, recwarn):
    """A tiny alignment run (via ensure_item_vectors, the app's one call), registered and
    reloadable; embedding is incremental; search and similar work on the stored vectors."""
    from recsys.core.progress import Progress
    from recsys.search.item_index import ItemIndex
    from recsys.vectors.embed import embed_items, ensure_item_vectors

    with pytest.raises(NoCheckpointError):
        embed_items(shapes_store, "shapes")
    seen: list[Progress] = []
    rep = ensure_item_vectors(shapes_store, "shapes", progress=seen.append,
                              config={"epochs": 2, "max_steps": 2, "batch_size": 8})
    assert not [w for w in recwarn if "requires_grad" in str(w.message)]
    assert rep.trained and rep.trained.startswith("catalog-clip@shapes-")
    assert rep.embedded == {"image": 24, "text": 24} and not rep.nothing_to_do
    assert all(isinstance(p, Progress) for p in seen) and seen[-1].fraction == 1.0
    assert any(p.stage == "epoch" for p in seen)
    runs = shapes_store.runs("shapes", kind="encoder")
    assert runs.iloc[0]["status"] == "finished"
    registered = shapes_store.encoders("shapes")
    assert rep.trained == f"catalog-clip@{registered.iloc[0]['version']}"
    assert json.loads(registered.iloc[0]["metrics"])["steps"] == 2

    enc = get_encoder("catalog-clip", shapes_store, "shapes")
    assert enc.spec == rep.trained and enc.dim == 384 + 256
    assert enc.encode_texts(["x"]).shape == (1, 640)
    again = ensure_item_vectors(shapes_store, "shapes")     # nothing to do: no model loaded
    assert again.nothing_to_do and again.unchanged == {"image": 24, "text": 24}
    assert again.trained is None            # and in seconds: the perf test below

    # one item changes, one disappears: only those are touched
    with shapes_store.transaction() as cur:
        cur.execute("UPDATE items SET title = 'Red ellipse renamed', content_hash = 'changed' "
                    "WHERE dataset = 'shapes' AND item_id = 'red-ell-0'")
        cur.execute("DELETE FROM items WHERE dataset = 'shapes' AND item_id = 'blue-ell-1'")
    rep = embed_items(shapes_store, "shapes", "catalog-clip")
    assert rep.embedded == {"image": 1, "text": 1}
    assert rep.unchanged == {"image": 22, "text": 22}
    assert rep.removed == {"image": 1, "text": 1}

    index = ItemIndex.from_store(shapes_store, "shapes")
    assert index.spec == enc.spec and len(index) == 23
    query = enc.encode_image(draw_product("ellipse", (220, 30, 30)))
    res = index.search(image=query, k=5)
    assert len(res) == 5 and res.scores[0] >= res.scores[-1]
    both = index.search(image=query, text=enc.encode_text("red circle badge"), k=3,
                        image_weight=0.7)
    assert len(both.item_ids) == 3
    sim = index.similar("red-ell-0", k=4, image_weight=1.0)
    assert "red-ell-0" not in sim.item_ids and len(sim) == 4


def test_frozen_embedding_is_incremental_and_skips_bad_photos(shapes_store, frozen, tmp_path):
    from recsys.vectors.embed import embed_items

    photo = shapes_store.items("shapes", ["green-pol-0"])["image_path"].iloc[0]
    open(photo, "wb").write(b"not a photo")
    rep = embed_items(shapes_store, "shapes", frozen)
    assert rep.embedded == {"image": 23, "text": 24} and list(rep.failed) == ["green-pol-0"]
    assert "could not be read" in rep.summary()
    draw_product("polygon", (30, 170, 60)).save(photo, "PNG")
    rep = embed_items(shapes_store, "shapes", "frozen")      # the failed photo is retried
    assert rep.embedded == {"image": 1, "text": 0} and not rep.failed
    assert embed_items(shapes_store, "shapes", "frozen", force=True).embedded["image"] == 24


@pytest.mark.perf
def test_up_to_date_item_vectors_load_no_model_and_take_seconds(shapes_store):
    """`ensure_item_vectors` on a catalog whose vectors are current answers without loading
    a model: well under two seconds."""
    from recsys.vectors.embed import ensure_item_vectors

    ensure_item_vectors(shapes_store, "shapes",
                        config={"epochs": 2, "max_steps": 2, "batch_size": 8})
    again = ensure_item_vectors(shapes_store, "shapes")
    assert again.nothing_to_do and again.trained is None
    assert again.seconds < 2
