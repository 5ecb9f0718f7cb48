"""Shopify's orders CSV export as purchases.

Columns: Name (the order), Email, Created at, Lineitem sku, Lineitem name, Lineitem quantity;
one row per line item, the order's fields often only on its first row (carried down the
order's rows). The customer is the salted SHA-256 of the e-mail (lower-cased): the e-mail itself
is never stored or shown, and the salt is kept per database (`customer_salt`), so the same
shopper is the same user across imports into one database and cannot be looked up from
another. A line item's SKU is mapped to the catalog's product (a Shopify products import keeps
each variant's SKU); otherwise the SKU is the item id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.readers import read_table
from recsys.data.report import DataImportError, ImportReport
from recsys.store import Store

SALT_SETTING = "customer_email_salt"


def customer_salt(store: Store) -> str:
    """The database's salt for customer e-mails (made on first use)."""
    salt = store.get_setting(SALT_SETTING)
    if not salt:
        salt = secrets.token_hex(16)
        store.set_setting(SALT_SETTING, salt)
    return salt


def customer_id(email: str, salt: str) -> str:
    digest = hashlib.sha256(f"{salt}\x1f{email.strip().lower()}".encode("utf-8")).hexdigest()
    return f"c_{digest[:20]}"


def sku_to_item(store: Store, dataset: str) -> dict[str, str]:
    """SKU -> item id from the variants a Shopify products import kept in `extra`."""
    if dataset not in store.dataset_names():
        return {}
    items = store.item_columns(dataset, ["item_id", "extra"])
    out: dict[str, str] = {}
    for item_id, extra in zip(items["item_id"], items["extra"]):
        if not isinstance(extra, str) or "sku" not in extra:
            continue
        try:
            variants = json.loads(extra).get("variants") or []
        except (ValueError, AttributeError):
            continue
        for variant in variants:
            if isinstance(variant, dict) and variant.get("sku"):
                out.setdefault(str(variant["sku"]), item_id)
    return out


def _col(frame: pd.DataFrame, name: str) -> str | None:
    lower = {c.strip().lower(): c for c in frame.columns}
    return lower.get(name.lower())


def read_shopify_orders(path: Path, dataset: str | None, salt: str,
                        skus: dict[str, str]) -> tuple[pd.DataFrame, ImportReport]:
    frame, bad = read_table(path, sep=",")
    cols = {k: _col(frame, n) for k, n in {
        "order": "Name", "email": "Email", "created": "Created at", "sku": "Lineitem sku",
        "name": "Lineitem name", "quantity": "Lineitem quantity"}.items()}
    if cols["order"] is None or (cols["sku"] is None and cols["name"] is None):
        raise DataImportError(f"{path.name} is not a Shopify orders export (it needs the Name "
                              "and Lineitem sku columns).")
    rep = ImportReport(dataset=dataset or path.stem, kind="interactions",
                       rows_read=len(frame) + len(bad), unit=frame.attrs.get("unit", "line"))
    for line, why in bad:
        rep.add_problem("malformed line", f"line {line}: {why}", lines=[line])

    def column(key: str) -> pd.Series:
        if cols[key] is None:
            return pd.Series(pd.NA, index=frame.index, dtype="string")
        values = frame[cols[key]].astype("string").str.strip()
        return values.mask(values == "")

    order = column("order")
    by_order = pd.DataFrame({"order": order, "email": column("email"),
                             "created": column("created")})
    filled = by_order.groupby("order", dropna=False)[["email", "created"]].transform("first")
    emails, created = filled["email"], filled["created"]
    sku = column("sku").fillna(column("name"))
    labels = frame.index.to_numpy()
    no_email = emails.isna().to_numpy()
    where = np.flatnonzero(no_email)
    rep.add_rows("order without a customer e-mail (a guest or a point-of-sale order)",
                 labels[where], lambda k: f"line {labels[where[k]]}")
    users = pd.Series([customer_id(e, salt) if isinstance(e, str) else pd.NA for e in emails],
                      index=frame.index, dtype="string")
    mapped = sku.map(lambda s: skus.get(s, s) if isinstance(s, str) else s).astype("string")
    if skus:
        rep.details["line items matched to a product by SKU"] = int(
            sku.isin(list(skus)).to_numpy(dtype=bool, na_value=False)[~no_email].sum())
    out = pd.DataFrame({"user_id": users, "item_id": mapped,
                        "event": pd.Series("purchase", index=frame.index, dtype="string"),
                        "ts": created})
    rep.details["orders"] = int(order[~no_email].nunique())
    return out.loc[~no_email], rep
