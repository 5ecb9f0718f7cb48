"""Issue 22: the catalog's type-name vectors are stored when the catalog is embedded and read
with the index, so the first photo query of a process does not run the text tower for them."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM
from recsys import usecases
from recsys.encoders import type_names as tn
from recsys.encoders.clip_encoder import ClipEncoder
from recsys.encoders.product_types import PRODUCT_TYPES
from recsys.search import close_match
from recsys.search.query_photos import phone_shot
from recsys.store import Store
from recsys.usecases import _cache
from recsys.vectors.embed import embed_items


def test_first_photo_query_reads_the_type_names_kept_by_the_embedding(app_db: Path,
                                                                      monkeypatch):
    store = Store(app_db)
    try:
        items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
        sets = store.embedding_sets("demo")
        name, version = str(sets["encoder"].iloc[0]), str(sets["version"].iloc[0])
        folder = tn.type_names_folder(store.path, "demo", name, version)
        (folder / tn.FILE).unlink(missing_ok=True)
        (folder / close_match.FILE).unlink(missing_ok=True)
        embed_items(store, "demo", item_ids=list(items["item_id"][:1]), force=True)
        kept = tn.read_type_vectors(folder)
        assert set(kept) == set(items["article_type"].dropna()) | set(PRODUCT_TYPES)

        _cache.clear()                                      # a new process
        prompts: list[str] = []
        original = ClipEncoder.encode_texts

        def recording(self, texts, *args, **kwargs):
            prompts.extend(texts)
            return original(self, texts, *args, **kwargs)

        monkeypatch.setattr(ClipEncoder, "encode_texts", recording)
        belt = items.loc[items["article_type"] == "Belts", "image_path"].iloc[0]
        found = usecases.search_similar(store, "demo", photo=phone_shot(belt, seed=3), k=5)
        assert found.close_match is not None
        saved = json.loads((folder / close_match.FILE).read_text())
        assert saved["token"].endswith(f":names:open:fa{DEFAULT_FALSE_ALARM:g}")  # type names used
        assert not [p for p in prompts if p != "warm up"]  # ... without the text tower
    finally:
        store.close()
