"""Embedding a dataset's items: photo and caption vectors stored in DuckDB, incrementally.

`embed_items` writes one image vector (from the item's photo) and one text vector (from
`item_caption`) per item, keyed by (dataset, item, encoder name, encoder version, modality),
with the item's `content_hash`. Re-running embeds only items that are new or whose hash changed
(new text or new photo bytes), and removes vectors of items no longer in the catalog. Vectors
are written in chunks, so an interrupted run keeps what it finished. A photo that cannot be
decoded is reported and skipped (its text is still embedded); the next run tries it again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .encoders.base import Encoder, get_encoder
from .encoders.captions import item_caption
from .progress import ProgressCallback, report, scaled
from .store import Store

MODALITIES = ("image", "text")
CHUNK = 512


@dataclass
class EmbedReport:
    dataset: str
    encoder: str
    version: str
    items: int = 0
    embedded: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    removed: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    without_photo: int = 0
    failed: dict[str, str] = field(default_factory=dict)    # item_id -> reason
    seconds: float = 0.0

    @property
    def spec(self) -> str:
        return f"{self.encoder}@{self.version}"

    def summary(self) -> str:
        e, u = self.embedded, self.unchanged
        lines = [f"Embedded '{self.dataset}' with {self.spec} in {self.seconds:.1f} s: "
                 f"{e['image']:,} photos and {e['text']:,} texts new or changed; "
                 f"{u['image']:,} photos and {u['text']:,} texts unchanged."]
        if self.without_photo:
            lines.append(f"  {self.without_photo:,} items have no photo (text vector only).")
        if any(self.removed.values()):
            lines.append(f"  Removed vectors of {max(self.removed.values()):,} items no longer "
                         "in the catalog.")
        if self.failed:
            examples = "; ".join(f"{k}: {v}" for k, v in list(self.failed.items())[:3])
            lines.append(f"  {len(self.failed):,} photos could not be read and were skipped "
                         f"(e.g. {examples}).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec}


def register_used_encoder(store: Store, encoder: Encoder, dataset: str) -> None:
    """Record a non-catalog encoder in the registry the first time it is used, so that
    `get_encoder("name@version", store)` can rebuild it for search (e.g. an OpenCLIP file)."""
    if encoder.kind == "catalog-clip":
        return
    known = store.encoders()
    if ((known["name"] == encoder.name) & (known["version"] == encoder.version)).any():
        return
    info = encoder.info()
    store.register_encoder(encoder.name, encoder.version, encoder.kind, None,
                           info.get("path"), info)


def embed_items(store: Store, dataset: str | None = None, encoder: Encoder | str | None = None,
                progress: ProgressCallback | None = None, batch_size: int = 64,
                force: bool = False, item_ids: list[str] | None = None) -> EmbedReport:
    """Embed new or changed items of `dataset` with `encoder` (default: catalog-clip, latest).

    `force` re-embeds everything; `item_ids` limits the work to those items.
    """
    t0 = time.perf_counter()
    dataset = store.resolve_dataset(dataset)
    enc = encoder if isinstance(encoder, Encoder) else get_encoder(encoder, store, dataset)
    register_used_encoder(store, enc, dataset)
    items = store.items(dataset) if item_ids is None else store.items(dataset, item_ids)
    rep = EmbedReport(dataset, enc.name, enc.version, items=len(items))
    if item_ids is None:
        for modality in MODALITIES:
            rep.removed[modality] = _remove_stale(store, dataset, enc, modality,
                                                  set(items["item_id"]))
    hashes = items["content_hash"].where(items["content_hash"].notna(), None)
    current = dict(zip(items["item_id"], hashes))
    todo: dict[str, pd.DataFrame] = {}
    for modality in MODALITIES:
        stored = {} if force else store.embedding_hashes(dataset, enc.name, enc.version,
                                                         modality)
        need = [i for i, h in current.items() if i not in stored or stored[i] != h or h is None]
        frame = items[items["item_id"].isin(set(need))]
        if modality == "image":
            has_photo = frame["image_path"].notna()
            rep.without_photo = int(items["image_path"].isna().sum())
            frame = frame[has_photo]
            rep.unchanged[modality] = int(items["image_path"].notna().sum()) - len(frame)
        else:
            rep.unchanged[modality] = len(items) - len(frame)
        todo[modality] = frame.reset_index(drop=True)
    n_img, n_txt = len(todo["image"]), len(todo["text"])
    # photos cost ~10x more than texts: share the bar accordingly
    img_share = (10 * n_img) / max(1, 10 * n_img + n_txt)
    _embed_texts(store, dataset, enc, todo["text"], rep, scaled(progress, img_share, 1.0))
    _embed_images(store, dataset, enc, todo["image"], rep, scaled(progress, 0.0, img_share),
                  batch_size)
    rep.seconds = time.perf_counter() - t0
    report(progress, 1, 1, "done", stage="done")
    return rep


def _embed_images(store: Store, dataset: str, enc: Encoder, frame: pd.DataFrame,
                  rep: EmbedReport, progress: ProgressCallback | None, batch_size: int) -> None:
    n = len(frame)
    for start in range(0, n, CHUNK):
        part = frame.iloc[start:start + CHUNK]
        failures: dict[int, str] = {}
        vecs = enc.encode_images(list(part["image_path"]), batch_size=batch_size,
                                 failures=failures,
                                 progress=scaled(progress, start / n, min(1.0, (start + CHUNK) / n)))
        ok = np.array([i not in failures for i in range(len(part))], dtype=bool)
        for i, reason in failures.items():
            rep.failed[str(part["item_id"].iloc[i])] = reason
        store.upsert_embeddings(dataset, enc.name, enc.version, "image",
                                list(part["item_id"][ok]), vecs[ok],
                                list(part["content_hash"][ok].where(
                                    part["content_hash"][ok].notna(), None)))
        rep.embedded["image"] += int(ok.sum())
        report(progress, start + len(part), n, f"{start + len(part):,}/{n:,} photos",
               stage="images")


def _embed_texts(store: Store, dataset: str, enc: Encoder, frame: pd.DataFrame,
                 rep: EmbedReport, progress: ProgressCallback | None) -> None:
    n = len(frame)
    records = frame.to_dict("records")
    for start in range(0, n, 4 * CHUNK):
        part = records[start:start + 4 * CHUNK]
        vecs = enc.encode_texts([item_caption(r) for r in part])
        store.upsert_embeddings(dataset, enc.name, enc.version, "text",
                                [r["item_id"] for r in part], vecs,
                                [r["content_hash"] if isinstance(r["content_hash"], str) else None
                                 for r in part])
        rep.embedded["text"] += len(part)
        report(progress, start + len(part), n, f"{start + len(part):,}/{n:,} texts",
               stage="texts")


def _remove_stale(store: Store, dataset: str, enc: Encoder, modality: str,
                  keep: set[str]) -> int:
    stored = store.embedding_hashes(dataset, enc.name, enc.version, modality)
    stale = [i for i in stored if i not in keep]
    if not stale:
        return 0
    with store.transaction() as cur:
        cur.execute("""DELETE FROM embeddings WHERE dataset = ? AND encoder = ? AND version = ?
                       AND modality = ? AND list_contains(?, item_id)""",
                    [dataset, enc.name, enc.version, modality, stale])
    return len(stale)
