"""Alignment data: the catalog's photo-text pairs and the frozen towers' outputs over them.

`build_pairs` turns training items into caption variants (ids into a table of distinct texts);
`cache_images` / `cache_texts` run the frozen bottoms once over every photo and text (most of
the compute of an alignment run), kept in memory as bf16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report

from .captions import caption_variants, item_category
from .clip_config import CatalogClipConfig
from .clip_encoder import prepare_image, resolve_precision
from .splits import HoldoutRule
from .tower_parts import image_bottom, text_bottom


@dataclass
class TrainingPairs:
    """Training items with their caption variants as ids into a table of distinct texts."""

    item_ids: list[str]
    image_paths: list[str]
    texts: list[str]                  # distinct texts
    kinds: list[str]                  # variant kinds (columns of variant_ids)
    variant_ids: np.ndarray           # [items, kinds] text id or -1
    caption_ids: np.ndarray           # [items] text id of the full caption
    title_ids: np.ndarray             # [items] text id of the title (or caption)
    categories: list[str]


def build_pairs(items: pd.DataFrame) -> TrainingPairs:
    text_index: dict[str, int] = {}
    texts: list[str] = []
    kinds: list[str] = []
    rows: list[dict[str, int]] = []

    def tid(text: str) -> int:
        if text not in text_index:
            text_index[text] = len(texts)
            texts.append(text)
        return text_index[text]

    records = items.to_dict("records")
    for rec in records:
        row = {}
        for kind, text in caption_variants(rec):
            if kind not in kinds:
                kinds.append(kind)
            row[kind] = tid(text)
        rows.append(row)
    variant_ids = np.full((len(records), len(kinds)), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        for kind, t in row.items():
            variant_ids[i, kinds.index(kind)] = t
    cap = variant_ids[:, kinds.index("caption")]
    title = variant_ids[:, kinds.index("title")] if "title" in kinds else cap
    title = np.where(title >= 0, title, cap)
    return TrainingPairs([str(r["item_id"]) for r in records], [str(r["image_path"]) for r in records],
                  texts, kinds, variant_ids, cap, title, [item_category(r) for r in records])


def training_items(store, dataset: str, rule: HoldoutRule) -> pd.DataFrame:
    """Items with a photo and a title, with their split ('heldout', 'val', 'train')."""
    items = store.items(dataset)
    items = items[items["image_path"].notna() & items["title"].notna()].reset_index(drop=True)
    items["split"] = rule.splits(items["item_id"])
    return items


# -- caching the frozen bottoms -----------------------------------------------------------------
def cache_images(model, paths: list[str], cfg: CatalogClipConfig, encoder_prep,
                  progress: ProgressCallback | None, flip: bool, job_rows: int | None = None):
    """Frozen image-bottom activations of every photo (bf16), and of its mirror if `flip`.
    `job_rows`: the photos of the whole job when `paths` is one chunk of it (it chooses the
    trunk's runtime, `tower_runtime.frozen_trunk`)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from .tower_runtime import frozen_trunk

    n = len(paths)
    out, out_flip = None, None
    bs = 64
    pixels = encoder_prep
    # the pooled features of many photos: the fastest runtime for the frozen trunk
    trunk = frozen_trunk(model.visual, (job_rows or n) * (2 if flip else 1),
                         resolve_precision(cfg.precision)) \
        if cfg.image_trainable <= 0 else None

    def bottom(x):
        if trunk is not None:
            return trunk(x)
        return image_bottom(model.visual, x, cfg.image_trainable)

    with ThreadPoolExecutor(max_workers=2) as pool, torch.inference_mode(), autocast(cfg):
        arrays_iter = pool.map(lambda p: prepare_image(p, cfg.tower.image_size), paths)
        for start in range(0, n, bs):
            arrays = [next(arrays_iter) for _ in range(min(bs, n - start))]
            x = pixels(arrays)
            h = bottom(x).to(torch.bfloat16)
            if out is None:
                out = torch.empty((n, *h.shape[1:]), dtype=torch.bfloat16)
                if flip:
                    out_flip = torch.empty_like(out)
            out[start:start + len(arrays)] = h
            if flip:
                hf = bottom(torch.flip(x, dims=[3]))
                out_flip[start:start + len(arrays)] = hf.to(torch.bfloat16)
            report(progress, start + len(arrays), n, f"{start + len(arrays):,}/{n:,} photos",
                   stage="cache images")
    return out, out_flip


def cache_texts(model, tokenize, texts: list[str], cfg: CatalogClipConfig,
                 progress: ProgressCallback | None):
    """Frozen text-bottom outputs of every distinct text: a list of [len, 384] tensors (or one
    [n, 384] matrix of pooled vectors when only the projection trains)."""
    import torch

    n = len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    pooled = cfg.text_trainable <= 0
    out: list[Any] = [None] * n
    bs = 256
    with torch.inference_mode(), autocast(cfg):
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            ids = tokenize([texts[i] for i in idx])
            h, mask = text_bottom(model.text, ids, cfg.text_trainable)
            h = h.to(torch.bfloat16)
            lengths = mask.sum(1).tolist()
            for row, i in enumerate(idx):
                out[i] = h[row] if pooled else h[row, :lengths[row]].clone()
            report(progress, min(start + bs, n), n, f"{min(start + bs, n):,}/{n:,} texts",
                   stage="cache texts")
    if pooled:
        return torch.stack(out)
    return out


def pad_hidden(hidden: list, ids: np.ndarray):
    import torch
    from torch.nn.utils.rnn import pad_sequence

    seqs = [hidden[i] for i in ids]
    h = pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([s.shape[0] for s in seqs])
    mask = torch.arange(h.shape[1])[None, :] < lengths[:, None]
    return h, mask


def autocast(cfg: CatalogClipConfig):
    import contextlib

    import torch
    if resolve_precision(cfg.precision) == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
