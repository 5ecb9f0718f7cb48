"""Shared set-up for the dashboard tests: a ready demo database and an AppTest factory."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from PIL import Image

from recsys.store import Store
from recsys.usecases import set_up as bootstrap

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def build_app_db(source: Path, folder: Path) -> Path:
    """Copy the small demo database and make it ready: aligned encoder, vectors, a model."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recsys.duckdb"
    shutil.copy(source, path)
    store = Store(path)
    try:
        bootstrap(store)
    finally:
        store.close()
    return path


def png_bytes(colour=(200, 30, 30), size=(96, 96)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def app_test(db: Path, page: str | None = None, timeout: float = 120):
    """An AppTest of app.py on `db`, already run once on `page` (else on Home).

    The first run opens `page` itself, as a browser opening the page's address does: the app's
    pages keep their file names as addresses, so no run of Home is needed first (it cost about
    a second per test)."""
    from streamlit.testing.v1 import AppTest

    os.environ["RECSYS_DB"] = str(db)
    at = AppTest.from_file(APP, default_timeout=timeout)
    if page:
        at.switch_page(page)
    at.run()
    return at


def html_of(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def problems(at) -> list[str]:
    """Exceptions raised by the script (errors shown on purpose are not problems)."""
    return [str(e.value) for e in at.exception]


def nth_photo(store: Store, n: int = 0) -> tuple[str, str]:
    """(item id, photo path) of the demo's n-th product with a photo, by item id."""
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    row = items.iloc[n]
    return row["item_id"], row["image_path"]


def watch_whole_catalog_reads(monkeypatch) -> list[str]:
    """Record every `Store.items` call that reads a whole dataset (no `item_ids`): the list
    the test checks stays empty when a page reads narrowly."""
    whole: list[str] = []
    original = Store.items

    def watched(self, dataset, item_ids=None):
        if item_ids is None:
            whole.append(dataset)
        return original(self, dataset, item_ids)

    monkeypatch.setattr(Store, "items", watched)
    return whole
