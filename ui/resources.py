"""Heavy objects shared by every session and page, created once and cached by Streamlit.

Keys carry a cheap "version token" read from DuckDB (row counts, newest run), so an import, a
new embedding or a new training run invalidates exactly what depends on it and nothing else.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from recsys import config
from recsys.store import Store


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The app's database (`$RECSYS_DB` or data/recsys.duckdb); one connection, a cursor per
    thread."""
    return _store(str(config.db_path()))


def items_token(dataset: str) -> str:
    """Changes whenever the dataset's items change (import, delete)."""
    row = get_store().cursor().execute(
        "SELECT count(*), coalesce(sum(hash(content_hash)) % 1000000007, 0) FROM items "
        "WHERE dataset = ?", [dataset]).fetchone()
    return f"{row[0]}:{row[1]}"


def interactions_token(dataset: str) -> str:
    row = get_store().cursor().execute(
        "SELECT count(*), max(ts) FROM interactions WHERE dataset = ?", [dataset]).fetchone()
    return f"{row[0]}:{row[1]}"


def vectors_token(dataset: str) -> str:
    sets = get_store().embedding_sets(dataset)
    if sets.empty:
        return "none"
    return "|".join(f"{r.encoder}@{r.version}:{r.modality}:{r.n_items}"
                    for r in sets.itertuples())


@st.cache_data(show_spinner=False, max_entries=16)
def _items(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().items(dataset)


def items(dataset: str) -> pd.DataFrame:
    """All items of a dataset (cached until the items change)."""
    return _items(str(config.db_path()), dataset, items_token(dataset))


@st.cache_data(show_spinner=False, max_entries=16)
def _users(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().users(dataset)


def users(dataset: str) -> pd.DataFrame:
    return _users(str(config.db_path()), dataset, interactions_token(dataset))


@st.cache_resource(show_spinner=False, max_entries=4)
def _index(db: str, dataset: str, token: str):
    from recsys.index import ItemIndex
    return ItemIndex.from_store(get_store(), dataset)


def item_index(dataset: str):
    """Cosine index over the dataset's newest item vectors, or None when there are none."""
    token = vectors_token(dataset)
    if token == "none":
        return None
    return _index(str(config.db_path()), dataset, token)


@st.cache_resource(show_spinner=False, max_entries=4)
def _encoder(db: str, dataset: str, spec: str):
    from PIL import Image

    from recsys.encoders import get_encoder
    encoder = get_encoder(spec, get_store(), dataset)
    # the first forward pass initialises torch's kernels (seconds): pay it here, not on the
    # user's first query
    encoder.encode_image(Image.new("RGB", (224, 224), (200, 200, 200)))
    encoder.encode_text("warm up")
    return encoder


def encoder_for(dataset: str, index) -> object:
    """The encoder that made the index's vectors (encodes queries into the same space)."""
    return _encoder(str(config.db_path()), dataset, index.spec)


@st.cache_resource(show_spinner=False, max_entries=6)
def _data(db: str, dataset: str, protocol: str, seed: int, encoder: str | None, token: str):
    from recsys.evaluation import load_data
    return load_data(get_store(), dataset, protocol, seed, encoder=encoder)


def interaction_data(dataset: str, protocol: str = "auto", seed: int = 0,
                     encoder: str | None = None):
    """The split a model was trained on (same protocol, seed and vectors)."""
    if encoder:
        encoder = encoder.split("@")[0]
    return _data(str(config.db_path()), dataset, protocol, seed, encoder,
                 interactions_token(dataset) + vectors_token(dataset))


@st.cache_resource(show_spinner=False, max_entries=8)
def _model(db: str, dataset: str, run_id: int):
    from recsys.training import load_model
    return load_model(get_store(), dataset, run_id)


def trained_model(dataset: str, run_id: int):
    """A finished run's model, loaded once per run."""
    return _model(str(config.db_path()), dataset, int(run_id))


def model_runs(dataset: str) -> pd.DataFrame:
    """Finished model runs of a dataset whose model file exists, newest first."""
    runs = get_store().runs(dataset, kind="model")
    if runs.empty:
        return runs
    ok = (runs["status"] == "finished") & runs["artifact_path"].notna()
    runs = runs[ok]
    exists = [Path(p).is_file() for p in runs["artifact_path"]]
    return runs[exists].reset_index(drop=True)


WEB_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


@st.cache_data(show_spinner=False, max_entries=20000)
def thumbnail_uri(path: str | None, size: int = 256) -> str | None:
    """A small JPEG of a product photo as a data URI (None when the file is unreadable)."""
    if not path:
        return None
    from PIL import Image

    from recsys.images import ImageError, load_image
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


def image_uri_from_bytes(data: bytes, size: int = 384) -> str:
    """An uploaded photo, decoded safely (ImageError for bad files), as a small JPEG data URI."""
    from recsys.images import load_image
    return _jpeg_uri(load_image(data), size)


def _jpeg_uri(img, size: int) -> str:
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def run_curve(run_id: int) -> pd.DataFrame:
    """A run's epochs with their JSON metrics spread into columns (for the curve charts)."""
    epochs = get_store().run_epochs(int(run_id))
    if epochs.empty:
        return epochs
    metrics = pd.json_normalize([json.loads(m) if isinstance(m, str) else (m or {})
                                 for m in epochs["metrics"]])
    metrics = metrics.drop(columns=[c for c in metrics.columns if c in epochs.columns])
    return pd.concat([epochs.drop(columns=["metrics"]).reset_index(drop=True), metrics], axis=1)


@st.cache_data(show_spinner=False, max_entries=16)
def _weekly_events(db: str, dataset: str, token: str) -> pd.DataFrame:
    return get_store().query(
        "SELECT date_trunc('week', ts) AS week, event, count(*) AS events FROM interactions "
        "WHERE dataset = ? AND ts IS NOT NULL GROUP BY ALL ORDER BY week", [dataset])


def weekly_events(dataset: str) -> pd.DataFrame:
    """Events per week and type (for the activity chart), cached until interactions change."""
    return _weekly_events(str(config.db_path()), dataset, interactions_token(dataset))
