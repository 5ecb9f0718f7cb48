"""A GA4 BigQuery e-commerce export (newline-delimited JSON or Parquet) as interaction rows.

Each item of an event is one row: `view_item` -> view, `select_item` -> click, `add_to_cart`
and `begin_checkout` -> cart, `add_to_wishlist` -> wishlist, `purchase` -> purchase; the user
is `user_id` when the site sets one, else `user_pseudo_id`; `event_timestamp` is in
microseconds. Every other event (page_view, session_start...) and every event without items is
reported, by name, never imported silently. The file is read by DuckDB
(`recsys.store.ga4.ga4_item_events`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.report import DataImportError, ImportReport
from recsys.store.ga4 import Ga4ReadError, ga4_item_events

GA4_EVENTS = {"view_item": "view", "select_item": "click", "add_to_cart": "cart",
              "begin_checkout": "cart", "add_to_wishlist": "wishlist", "purchase": "purchase"}


def _name(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return (text[:40] + "…") if len(text) > 40 else (text or "(none)")


def read_ga4(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport]:
    """(user_id, item_id, event, ts as epoch seconds) strings indexed by event number, and the
    report with the events left out."""
    if not path.is_file():
        raise DataImportError(f"File not found: {path}")
    try:
        raw = ga4_item_events(path)
    except Ga4ReadError as exc:
        raise DataImportError(str(exc)) from None
    rep = ImportReport(dataset=dataset or path.stem, kind="interactions", rows_read=len(raw),
                       unit="event")
    if raw.empty:
        return pd.DataFrame(columns=["user_id", "item_id", "event", "ts"], dtype="string"), rep
    labels = raw["event_no"].to_numpy(dtype="int64")
    names = raw["event_name"].astype("string")
    known = names.isin(list(GA4_EVENTS)).to_numpy(dtype=bool, na_value=False)
    unknown = np.flatnonzero(~known)
    if len(unknown):
        rep.add_rows("event is not an item event of GA4 e-commerce", labels[unknown],
                     lambda k: f"event {labels[unknown[k]]}: {_name(names.iloc[unknown[k]])}")
        counts = names[~known].fillna("(none)").value_counts()
        rep.details["GA4 events not used"] = ", ".join(
            f"{_name(n)} x{int(c):,}" for n, c in counts.head(6).items()) + \
            (f" and {len(counts) - 6:,} other names" if len(counts) > 6 else "")
    no_item = known & raw["item_id"].isna().to_numpy()
    positions = np.flatnonzero(no_item)
    rep.add_rows("event has no items", labels[positions],
                 lambda k: f"event {labels[positions[k]]}: {_name(names.iloc[positions[k]])}")
    keep = known & ~no_item
    micros = pd.to_numeric(raw["event_timestamp"], errors="coerce")
    seconds = (micros / 1e6).map(lambda v: repr(float(v)) if pd.notna(v) else None)
    ts = seconds.where(micros.notna(), raw["event_timestamp"])     # unreadable: reported later
    frame = pd.DataFrame({
        "user_id": raw["user_id"].astype("string"), "item_id": raw["item_id"].astype("string"),
        "event": names.map(GA4_EVENTS).astype("string"), "ts": ts.astype("string")})
    frame.index = pd.Index(labels)
    rep.details["GA4 events read"] = int(raw["event_no"].nunique())
    return frame.loc[keep], rep
