"""What the pages read on every rerun, cached by Streamlit: the database connection, a
dataset's items and users, photo thumbnails, the weekly activity.

Only caching lives here: each cached function calls one store or use-case function, keyed by a
cheap version token from the store (`Store.items_version`, `Store.interactions_version`), so an
import or new interactions invalidate exactly what depends on them. The heavy objects of search
and recommendation (index, query encoder, a run's split and model) are cached by the use cases
themselves (`recsys.usecases`), for the CLI as well.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from recsys.core import config
from recsys.store import Store


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The app's database (`$RECSYS_DB` or data/recsys.duckdb); one connection, a cursor per
    thread."""
    return _store(str(config.db_path()))


@st.cache_data(show_spinner=False, max_entries=16)
def _items(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().items(dataset)


def items(dataset: str) -> pd.DataFrame:
    """All items of a dataset (cached until the items change)."""
    return _items(str(config.db_path()), dataset, get_store().items_version(dataset))


@st.cache_data(show_spinner=False, max_entries=16)
def _users(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().users(dataset)


def users(dataset: str) -> pd.DataFrame:
    """A dataset's users with their number of interactions (cached until those change)."""
    return _users(str(config.db_path()), dataset, get_store().interactions_version(dataset))


@st.cache_data(show_spinner=False, max_entries=16)
def _sample_items(db: str, dataset: str, token: str, n: int) -> pd.DataFrame:
    return get_store().sample_items(dataset, n)


def sample_items(dataset: str, n: int = 12) -> pd.DataFrame:
    """`n` products with photos (the same until the items change): a narrow read, so a page
    that shows a few products never loads a million rows."""
    return _sample_items(str(config.db_path()), dataset, get_store().items_version(dataset), n)


@st.cache_data(show_spinner=False, max_entries=16)
def _value_counts(db: str, dataset: str, token: str, column: str) -> pd.Series:
    return get_store().item_value_counts(dataset, column)


def value_counts(dataset: str, column: str) -> pd.Series:
    """Items per value of `column` (counted by the database), cached until the items change."""
    return _value_counts(str(config.db_path()), dataset, get_store().items_version(dataset),
                         column)


WEB_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


@st.cache_data(show_spinner=False, max_entries=20000)
def thumbnail_uri(path: str | None, size: int = 256) -> str | None:
    """A small JPEG of a product photo as a data URI (None when the file is unreadable)."""
    if not path:
        return None
    from PIL import Image

    from recsys.data.images import ImageError, load_image
    try:
        with Image.open(path) as probe:       # reads the header only
            fmt, dims = probe.format, probe.size
        if fmt in WEB_FORMATS and max(dims) <= size * 1.5 and Path(path).stat().st_size < 200_000:
            # already small: send the file as it is (decoding and re-encoding cost ~25 ms)
            data = Path(path).read_bytes()
            return f"data:{WEB_FORMATS[fmt]};base64," + base64.b64encode(data).decode()
        return _jpeg_uri(load_image(path), size)
    except (ImageError, OSError, ValueError):
        return None


def image_uri_from_bytes(data: bytes, size: int = 384, trusted: bool = False) -> str:
    """An uploaded photo, decoded safely (ImageError for bad files; by a worker process under
    the photo budget unless `trusted`, i.e. made by the app), as a small JPEG data URI."""
    from recsys.data.images import load_image
    return _jpeg_uri(load_image(data, target_size=size, trusted=trusted), size)


def _jpeg_uri(img, size: int) -> str:
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


HEAVY_MODULES = ("torch", "faiss", "sklearn", "scipy.sparse", "plotly.graph_objects",
                 "recsys.encoders", "recsys.encoders.hybrid", "recsys.models",
                 "recsys.search.item_index", "recsys.usecases.search", "recsys.usecases.recommenders")
"""What the server imports once before freezing its heap (see `settle_heap`). Not torchvision,
timm, open_clip or transformers: the app's own encoder does not use them
(`recsys.encoders.lite_towers`), and importing them cost ~8-10 s of CPU, on the first start
right after the set-up, before Home was drawn."""


_SETTLE_LOCK = threading.Lock()
_SETTLING: list[threading.Thread] = []


def _settle() -> None:
    import gc
    import importlib

    for name in HEAVY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:            # an optional library missing: nothing to pre-load
            continue
    gc.collect()
    gc.freeze()


def settle_heap() -> threading.Thread:
    """Once per server process, in a background thread: import the heavy libraries, collect,
    then move every live object to the permanent generation (`gc.freeze`). Returns that
    thread (`join` it to wait).

    Why: torch, transformers, plotly, pandas and the rest leave ~600,000 long-lived Python
    objects, and every full (generation 2) collection walked all of them: 330-390 ms with the
    interpreter stopped, and one fell in almost every photo upload (measured in the server
    with `gc.callbacks`: an upload answered in ~1.0 s of which ~0.4 s was the collector). Frozen
    objects are never walked again; objects made later (pages' data, garbage cycles) are
    collected as before. app.py calls this after the first page is drawn, when the pages
    would load those libraries anyway; in a thread, so that page's run ends without waiting
    for it (~1.1 s on the first start, right before Home).
    """
    with _SETTLE_LOCK:
        if not _SETTLING:
            thread = threading.Thread(target=_settle, name="settle-heap", daemon=True)
            thread.start()
            _SETTLING.append(thread)
        return _SETTLING[0]


@st.cache_data(show_spinner=False, max_entries=16)
def _weekly_events(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().weekly_events(dataset)


def weekly_events(dataset: str) -> pd.DataFrame:
    """Events per week and type (for the activity chart), cached until interactions change."""
    return _weekly_events(str(config.db_path()), dataset,
                          get_store().interactions_version(dataset))
