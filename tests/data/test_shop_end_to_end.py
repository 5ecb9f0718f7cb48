"""A shop end to end, offline: a Merchant feed whose photos are URLs on a local server and a
GA4 export of simulated shoppers -> photos downloaded -> embedded -> a model trained -> picks.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys import usecases
from recsys.data.downloads import DownloadSettings
from recsys.store import Store

from .test_shop_events import T0, write_ndjson
from .web import PhotoServer, jpeg

COLOURS = {"Red": (200, 30, 30), "Blue": (30, 60, 200), "Green": (30, 160, 60)}
TYPES = ["Shirts", "Shoes", "Bags"]
HEADER = "id\ttitle\tdescription\timage_link\tprice\tbrand\tgender\tcolor\tproduct_type"


def shop_feed(tmp_path, base: str) -> tuple:
    lines, photos, ids = [HEADER], {}, []
    n = 0
    for colour, rgb in COLOURS.items():
        for kind in TYPES:
            for copy in range(3):
                item_id = f"{colour[0]}{kind[:3]}{copy}".lower()
                size = (40 + 8 * TYPES.index(kind), 64 - 8 * TYPES.index(kind))
                photos[f"{item_id}.jpg"] = jpeg(tuple(max(0, v - 30 * copy) for v in rgb), size)
                lines.append("\t".join([item_id, f"{colour} {kind[:-1].lower()} {copy}",
                                        f"a {colour.lower()} {kind[:-1].lower()}",
                                        f"{base}/img/{item_id}.jpg", f"{10 + n}.00 USD", "Acme",
                                        "unisex", colour, f"Apparel > {kind}"]))
                ids.append(item_id)
                n += 1
    lines.append("\t".join(["dead1", "Dead link", "", f"{base}/img/gone.jpg", "1 USD", "", "",
                            "", "X"]))
    feed = tmp_path / "shop.tsv"
    feed.write_text("\n".join(lines) + "\n")
    return feed, photos, ids


def shoppers(ids: list[str], users: int = 40, seed: int = 0) -> list[dict]:
    """Each simulated shopper likes one colour: views, carts and buys its items."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(users):
        liked = [i for i in ids if i[0] == "rbg"[u % 3]]
        for k, item in enumerate(rng.choice(liked, size=5, replace=False)):
            name = ["view_item", "view_item", "add_to_cart", "view_item", "purchase"][k]
            events.append({"event_name": name, "event_timestamp": T0 + (u * 10 + k) * 10**6,
                           "user_pseudo_id": f"s{u}", "items": [{"item_id": str(item)}]})
        events.append({"event_name": "page_view", "event_timestamp": T0,
                       "user_pseudo_id": f"s{u}"})
    return events


def test_feed_and_events_to_picks(tmp_path, monkeypatch, frozen):
    import recsys.vectors.embed as embedding

    monkeypatch.setattr(embedding, "get_encoder", lambda spec, *args: frozen)
    store = Store(tmp_path / "shop.duckdb")
    settings = DownloadSettings(workers=8, retries=0, allow_private=True)
    try:
        with PhotoServer() as srv:
            feed, photos, ids = shop_feed(tmp_path, srv.base)
            srv.photos.update(photos)
            rep = usecases.import_catalog(store, feed, fmt="auto", download=settings)
            assert rep.imported == 27 and rep.problems == {"photo download failed": 1}
            assert rep.rows_read == rep.imported + rep.rows_skipped
            assert rep.details["photos downloaded"] == 27
            events = write_ndjson(tmp_path / "events.ndjson", shoppers(ids))
            ev = usecases.import_interactions(store, events, fmt="ga4", dataset="shop")
            assert ev.imported == 200 and ev.problems == {
                "event is not an item event of GA4 e-commerce": 40}
            again = usecases.import_catalog(store, feed, fmt="merchant", download=settings)
            assert again.details["photos downloaded"] == 0
        emb = usecases.embed(store, "shop", "frozen")
        assert emb.embedded["image"] == 27 and emb.embedded["text"] == 27
        usecases.train(store, "shop", "content")
        picks = usecases.recommend_for(store, "shop", "s0", "content", k=5)
        items = [row["item_id"] for row in picks.to_dict()["items"]]
        assert len(items) == 5 and not set(items) & set(
            store.interactions("shop").query("user_id == 's0'")["item_id"])
        # s0 likes red: the photo+text model picks mostly red items
        assert sum(i.startswith("r") for i in items) >= 3
    finally:
        store.close()
