"""Phone shots: find the exact product from a phone-style photo of it.

Held-out catalog products (never used in alignment) are turned into phone-style queries
(`phone_shots.phone_shot`: pasted on a real-looking background, scaled, rotated, warped,
relit, JPEG-compressed; reproducible from `seed`), encoded, and searched among the photo
vectors of the whole catalog (the product's own studio photo included):

- `exact_recall@1` / `exact_recall@10`: the product itself is first / in the top 10;
- `same_type_precision@10`: share of the top 10 of the query's category (article type).

Three query sets are scored: `studio` (the catalog photo itself, the ceiling), `phone`, and
`phone_crop` (the phone shot through `crop.crop_to_product`, as visual search does).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled

from .base import Encoder
from .evaluate import EvaluationError, category_field, heldout_items, heldout_rule_for
from .registry import get_encoder

PROTOCOL = "encoder-phone-shots"
DEFAULT_QUERIES = 500


@dataclass
class PhoneShotEvaluation:
    dataset: str
    encoder: str
    n_queries: int
    n_gallery: int
    seed: int
    metrics: dict[str, float]
    style: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exact_item_metrics(queries: np.ndarray, gallery: np.ndarray, own: np.ndarray,
                       labels: np.ndarray, k: int = 10) -> dict[str, float]:
    """Query i looks for gallery row own[i]; labels are the gallery rows' categories."""
    sims = queries @ gallery.T
    own_score = sims[np.arange(len(own)), own][:, None]
    rank = (sims > own_score).sum(1)
    k = min(k, gallery.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    same = labels[top] == labels[own][:, None]
    return {"exact_recall@1": float((rank < 1).mean()),
            f"exact_recall@{k}": float((rank < k).mean()),
            f"same_type_precision@{k}": float(same.mean())}


def _gallery(store, dataset: str, encoder: Encoder, items: pd.DataFrame,
             progress: ProgressCallback | None) -> np.ndarray:
    """Photo vectors of every catalog item: the stored ones when current, else computed."""
    ids = list(items["item_id"])
    stored_ids, stored = store.embeddings(dataset, encoder.name, encoder.version, "image")
    hashes = store.embedding_hashes(dataset, encoder.name, encoder.version, "image")
    if stored_ids and all(hashes.get(i) == h for i, h in zip(ids, items["content_hash"])):
        pos = {i: k for k, i in enumerate(stored_ids)}
        report(progress, 1, 1, "stored photo vectors", stage="gallery")
        return stored[[pos[i] for i in ids]]
    return encoder.encode_images(list(items["image_path"]), progress=progress)


def make_phone_shots(items: pd.DataFrame, donors: list[str], seed: int = 0, style=None):
    """One phone-style PIL image per item row (its own generator per (seed, item))."""
    from PIL import Image

    from .phone_shots import PhoneShotStyle, phone_shot, shot_rng

    style = style or PhoneShotStyle()
    shots = []
    for item_id, path in zip(items["item_id"], items["image_path"]):
        rng = shot_rng(seed, str(item_id))
        with Image.open(donors[int(rng.integers(len(donors)))]) as donor, \
                Image.open(path) as photo:
            shots.append(phone_shot(photo, rng, style, donor=donor.convert("RGB")))
    return shots


def evaluate_phone_shots(store, dataset: str | None = None,
                         encoder: Encoder | str | None = None, n: int = DEFAULT_QUERIES,
                         seed: int = 0, progress: ProgressCallback | None = None,
                         record: bool = True) -> PhoneShotEvaluation:
    """Score `encoder` (default: the dataset's newest catalog-clip) on `n` phone shots of
    held-out products against the whole catalog (see the module docstring)."""
    from .crop import crop_to_product
    from .phone_shots import PhoneShotStyle

    t0 = time.perf_counter()
    dataset = store.resolve_dataset(dataset)
    enc = encoder if isinstance(encoder, Encoder) else get_encoder(encoder, store, dataset)
    catalog = store.items(dataset)
    catalog = catalog[catalog["image_path"].notna()].reset_index(drop=True)
    held = heldout_items(store, dataset, heldout_rule_for(store, dataset, enc))
    if n is not None:
        held = held.head(max(1, int(n)))
    if len(held) < 1 or len(catalog) < 2:
        raise EvaluationError(f"Dataset '{dataset}' has no held-out products with photos to "
                              "make phone shots of.")
    cat = category_field(catalog)
    labels = (catalog[cat].fillna("").astype(str).to_numpy(dtype=object) if cat
              else np.array([""] * len(catalog), dtype=object))
    pos = {i: k for k, i in enumerate(catalog["item_id"])}
    own = np.array([pos[i] for i in held["item_id"]])
    gallery = _gallery(store, dataset, enc, catalog, scaled(progress, 0.0, 0.6))
    report(progress, 0.6, 1, f"making {len(held)} phone shots", stage="shots")
    shots = make_phone_shots(held, list(catalog["image_path"]), seed)
    phone = enc.encode_images(shots, progress=scaled(progress, 0.7, 0.85))
    cropped = enc.encode_images([crop_to_product(s) for s in shots],
                                progress=scaled(progress, 0.85, 1.0))
    metrics: dict[str, float] = {}
    for name, queries in (("studio", gallery[own]), ("phone", phone), ("phone_crop", cropped)):
        for key, value in exact_item_metrics(queries, gallery, own, labels).items():
            metrics[f"{name}_{key}"] = value
    for name in ("phone", "phone_crop"):
        metrics[f"{name}_recall@10_vs_studio"] = (metrics[f"{name}_exact_recall@10"]
                                                 / max(1e-9, metrics["studio_exact_recall@10"]))
    ev = PhoneShotEvaluation(dataset, enc.spec, len(held), len(catalog), seed, metrics,
                             PhoneShotStyle().to_dict(), time.perf_counter() - t0)
    if record:
        run_id = store.start_run(dataset, "evaluation", enc.spec,
                                 {"protocol": PROTOCOL, "n": len(held), "seed": seed,
                                  "style": ev.style})
        store.add_metrics(run_id, [(PROTOCOL, "all", k, None, v) for k, v in metrics.items()])
        store.finish_run(run_id, "finished", ev.seconds,
                         message=f"{len(held)} phone shots vs {len(catalog)} photos")
        ev.run_id = run_id
    report(progress, 1, 1, "done", stage="done")
    return ev
