"""Behaviour exports: GA4 BigQuery e-commerce events (NDJSON, Parquet) and Shopify orders
(customers only as salted hashes), through `import_interactions`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.feeds.shopify_orders import SALT_SETTING
from recsys.data.interactions_import import import_interactions
from recsys.data.report import DataImportError
from recsys.store import Store

T0 = 1_700_000_000_000_000          # event_timestamp is in microseconds


def ga4_events(n_users: int = 5) -> list[dict]:
    events = []
    for u in range(n_users):
        for k, name in enumerate(["session_start", "view_item", "add_to_cart", "purchase"]):
            items = [] if name == "session_start" else \
                [{"item_id": f"i{u}", "item_name": "x", "price": 9.5}]
            if name == "view_item":
                items.append({"item_id": f"i{u + 1}"})
            events.append({"event_date": "20231114", "event_timestamp": str(T0 + k * 10**6),
                           "event_name": name, "user_pseudo_id": f"p{u}",
                           "user_id": f"member{u}" if u == 0 else None, "items": items})
    events.append({"event_name": "purchase", "event_timestamp": T0, "user_pseudo_id": "p9",
                   "items": []})                                   # an event without items
    return events


def write_ndjson(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_ga4_ndjson(store: Store, tmp_path):
    rep = import_interactions(store, write_ndjson(tmp_path / "ga4.ndjson", ga4_events()),
                              fmt="ga4", dataset="shop")
    assert not rep.refused
    # 5 users x (2 viewed + 1 cart + 1 purchase) item rows
    assert rep.imported == 20
    assert rep.problems == {"event is not an item event of GA4 e-commerce": 5,
                            "event has no items": 1}
    assert rep.rows_read == rep.imported + rep.rows_skipped
    assert "session_start x5" in rep.details["GA4 events not used"]
    inter = store.interactions("shop")
    assert set(inter["event"]) == {"view", "cart", "purchase"}
    assert "member0" in set(inter["user_id"]) and "p0" not in set(inter["user_id"])
    assert inter["ts"].min() == pd.Timestamp(T0 // 10**6 + 1, unit="s")   # the first view


def test_ga4_parquet(store: Store, tmp_path):
    frame = pd.DataFrame([e for e in ga4_events(2) if e["items"]])
    frame["event_timestamp"] = frame["event_timestamp"].astype("int64")
    frame = frame.drop(columns=["user_id"])
    frame.to_parquet(tmp_path / "ga4.parquet")
    rep = import_interactions(store, tmp_path / "ga4.parquet", fmt="ga4", dataset="shop")
    assert rep.imported == 8 and not rep.problems


def test_ga4_unreadable_file_quotes_nothing(store: Store, tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text('{"event_name": "password=hunter2"\n')
    with pytest.raises(DataImportError, match="GA4 export") as err:
        import_interactions(store, path, fmt="ga4")
    assert "hunter2" not in str(err.value)


ORDERS = """Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem name,Lineitem sku
#1001,Ann@Example.com,paid,2024-01-05 10:00:00 +0100,1,Linen shirt - S,LS-S
#1001,,,,2,Canvas bag,CB-1
#1002,bob@example.com,paid,2024-01-06 11:30:00 +0000,1,Linen shirt - M,LS-M
#1003,,paid,2024-01-07 09:00:00 +0000,1,Canvas bag,CB-1
#1004,ann@example.com ,paid,2024-02-01 09:00:00 +0000,1,Wool hat,WH-1
"""


def test_shopify_orders_hash_emails(store: Store, tmp_path):
    path = tmp_path / "orders_export.csv"
    path.write_text(ORDERS)
    rep = import_interactions(store, path, fmt="shopify-orders", dataset="shop")
    assert rep.imported == 4 and rep.problems == {
        "order without a customer e-mail (a guest or a point-of-sale order)": 1}
    inter = store.interactions("shop")
    users = set(inter["user_id"])
    assert len(users) == 2 and all(u.startswith("c_") for u in users)   # Ann twice = one user
    assert set(inter["item_id"]) == {"LS-S", "CB-1", "LS-M", "WH-1"}
    assert set(inter["event"]) == {"purchase"}
    salt = store.get_setting(SALT_SETTING)
    assert salt and len(salt) == 32
    # the e-mails are nowhere in the database, the report or its examples
    dump = " ".join(str(v) for t in ("users", "interactions", "items")
                    for v in store.query(f"SELECT * FROM {t}").to_numpy().ravel())
    text = dump + rep.summary() + json.dumps(rep.to_dict())
    assert "example.com" not in text.lower() and "ann" not in text.lower()
    # same database, same salt: a second import maps Ann to the same user
    rep2 = import_interactions(store, path, fmt="shopify-orders", dataset="shop", replace=True)
    assert set(store.interactions("shop")["user_id"]) == users and rep2.imported == 4


def test_shopify_orders_salt_differs_per_database(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)
    ids = []
    for name in ("a", "b"):
        st = Store(tmp_path / f"{name}.duckdb")
        import_interactions(st, path, fmt="shopify-orders", dataset="shop")
        ids.append(set(st.interactions("shop")["user_id"]))
        st.close()
    assert not ids[0] & ids[1]


def test_shopify_orders_map_skus_to_products(store: Store, tmp_path):
    from .test_feeds import SHOPIFY, _photos, FAST
    from .web import PhotoServer
    from recsys.data.catalog_import import import_catalog

    with PhotoServer(_photos()) as srv:
        products = tmp_path / "products.csv"
        products.write_text(SHOPIFY.format(base=srv.base))
        import_catalog(store, products, fmt="auto", dataset="shop", download=FAST)
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)
    rep = import_interactions(store, orders, fmt="shopify-orders", dataset="shop")
    assert set(store.interactions("shop")["item_id"]) == {"linen-shirt", "canvas-bag"}
    assert rep.problems["item not in the catalog"] == 1            # the hat is not sold here
    assert rep.details["line items matched to a product by SKU"] == 3
