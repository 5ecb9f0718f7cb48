"""Catalog CLIP: pretrained towers aligned on a catalog's own photo-text pairs (the default).

Training (`train_catalog_clip`) freezes the bottom of both towers and trains their top layers
plus the projections with a CLIP contrastive loss:

1. The frozen bottoms run once over the training items: EfficientNet-Lite0 activations up to
   the first trained stage (optionally for the mirrored photo too) and MiniLM hidden states up
   to the first trained layer for every distinct caption. That is most of the compute, done
   once instead of once per epoch.
2. Each epoch runs only the trained tops over the cache. Every item is paired with one of its
   caption variants (full caption, title, colour+category phrase, category prompts), and the
   loss counts every batch entry that the text truly describes as a positive (UniCL-style), so
   two T-shirts sharing "a photo of Tshirts" are not pushed apart.
3. Batch-norm statistics stay frozen, so the cached path computes exactly what the full model
   computes on a photo; the trained layers are the model's own modules, so after training the
   open_clip model is simply saved (atomically) and registered.

The held-out 20% (see `splits.HoldoutRule`) is never read by training; the rule is stored in the
encoder's config in DuckDB so `eval-encoder` uses the same items.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import config as recsys_config
from ..artifacts import atomic_path
from ..errors import RecsysError
from ..progress import ProgressCallback, report, scaled
from .base import EncoderError, NoCheckpointError
from .captions import caption_variants, item_category
from .clip_encoder import ClipEncoder, prepare_image, resolve_precision, torch_threads
from .splits import HoldoutRule
from .towers import IMAGE_MEAN, IMAGE_STD, TowerConfig, build_clip_model, text_tokenizer

NAME = "catalog-clip"
FROZEN_NAME = "frozen"
FROZEN_VERSION = "lite0-minilm-v1"
CHECKPOINT_FORMAT = "recsys-catalog-clip"
CHECKPOINT_FORMAT_VERSION = 1
N_IMAGE_STAGES = 7        # EfficientNet-Lite0 has 7 block stages
N_TEXT_LAYERS = 6         # MiniLM-L6
TEXT_BUCKET = 64          # texts per length bucket when training text layers


class TrainingError(RecsysError):
    """The catalog cannot be used to align an encoder (too few items with photos...)."""


def default_tower() -> TowerConfig:
    """The catalog-clip architecture: the pretrained towers with MLP projections to 256-d."""
    return TowerConfig(image_proj="mlp", text_proj="mlp")


@dataclass
class CatalogClipConfig:
    """Everything that defines an alignment run (saved as JSON with the run and the encoder)."""

    # Defaults = the best measured configuration on Myntra (docs/encoders.md): both towers
    # frozen, two-layer MLP projections trained over cached pooled features for 30 epochs.
    # Unfreezing MiniLM's top layer or EfficientNet's conv_head cost 5-30x the time and did not
    # score better on the held-out items.
    tower: TowerConfig = field(default_factory=lambda: default_tower())
    # Which layers learn: 0 = projection only; n = the top n groups of EfficientNet-Lite0
    # (1 = conv_head, 2 = + last stage, 3 = + the 192-channel stage) / of MiniLM's 6 layers.
    image_trainable: int = 0
    text_trainable: int = 0
    epochs: int = 30
    batch_size: int = 256
    lr_head: float = 2e-3            # projections and temperature
    lr_tower: float = 3e-4           # unfrozen tower layers
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    flip_augment: bool = False       # also cache the mirrored photo and pick one at random
    multi_positive: bool = True      # identical descriptions in a batch count as positives
    caption_weights: dict[str, float] = field(default_factory=lambda: {
        "caption": 0.35, "title": 0.25, "attributes": 0.15, "category": 0.25})
    holdout: HoldoutRule = field(default_factory=HoldoutRule)
    seed: int = 0
    max_items: int | None = None     # use at most this many training items (tests, smoke runs)
    max_steps: int | None = None     # stop after this many optimiser steps (tests)
    precision: str = "auto"          # bf16 autocast where the CPU supports it natively

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["holdout"] = self.holdout.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CatalogClipConfig":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise EncoderError(f"Unknown catalog-clip setting(s): {', '.join(unknown)}. "
                               f"Known: {', '.join(sorted(known))}.")
        tower = TowerConfig.from_dict({**default_tower().to_dict(),
                                       **(data.pop("tower", None) or {})})
        holdout = HoldoutRule.from_dict(data.pop("holdout", None))
        return cls(tower=tower, holdout=holdout, **data)


@dataclass
class EncoderInfo:
    """A trained (or registered) encoder: what `train_catalog_clip` returns."""

    name: str
    version: str
    dataset: str | None
    path: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    run_id: int | None = None
    seconds: float | None = None

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec}


# -- the model split into a frozen bottom and a trained top -------------------------------------
def image_bottom(visual, x, trainable: int):
    """Frozen part of the image tower: photo batch -> the activation the top starts from."""
    trunk = visual.trunk
    if trainable <= 0:
        return visual.trunk(x)                               # pooled 1280-d features
    h = trunk.bn1(trunk.conv_stem(x))
    for block in trunk.blocks[:N_IMAGE_STAGES + 1 - trainable]:
        h = block(h)
    return h


def image_top(visual, h, trainable: int):
    """Trained part of the image tower (ends with the projection)."""
    if trainable > 0:
        trunk = visual.trunk
        for block in trunk.blocks[N_IMAGE_STAGES + 1 - trainable:]:
            h = block(h)
        h = trunk.forward_head(trunk.bn2(trunk.conv_head(h)))
    return visual.head(h)


def image_top_modules(visual, trainable: int) -> list:
    trunk = visual.trunk
    mods = [visual.head]
    if trainable > 0:
        mods += [trunk.conv_head, trunk.bn2] + list(trunk.blocks[N_IMAGE_STAGES + 1 - trainable:])
    return mods


def _attention_bias(mask):
    import torch
    bias = torch.zeros(mask.shape, dtype=torch.float32)
    return bias.masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None, :]


def _run_layers(layers, h, mask):
    bias = _attention_bias(mask)
    for layer in layers:
        out = layer(h, attention_mask=bias)
        h = out[0] if isinstance(out, tuple) else out
    return h


def _mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1)


def text_bottom(text, ids, trainable: int):
    """Frozen part of the text tower: token ids -> (hidden states or pooled vector, mask)."""
    tr = text.transformer
    mask = ids != text.config.pad_token_id
    h = tr.embeddings(input_ids=ids)
    h = _run_layers(tr.encoder.layer[:N_TEXT_LAYERS - trainable], h, mask)
    if trainable <= 0:
        return _mean_pool(h, mask), mask
    return h, mask


def text_top(text, h, mask, trainable: int):
    """Trained part of the text tower (ends with the projection)."""
    if trainable > 0:
        h = _run_layers(text.transformer.encoder.layer[N_TEXT_LAYERS - trainable:], h, mask)
        h = _mean_pool(h, mask)
    return text.proj(h)


def text_top_modules(text, trainable: int) -> list:
    layers = list(text.transformer.encoder.layer[N_TEXT_LAYERS - trainable:]) if trainable > 0 \
        else []
    return [text.proj] + layers


# -- loading ------------------------------------------------------------------------------------
def frozen_encoder(version: str | None = None, precision: str | None = None) -> ClipEncoder:
    """The pretrained towers without alignment: seeded random orthogonal projections to the
    shared dimension. Within-modality neighbours are meaningful; cross-modal scores are at
    chance by construction. This is the baseline `eval-encoder` reports."""
    import torch

    if version not in (None, FROZEN_VERSION):
        raise EncoderError(f"Unknown frozen encoder version {version!r}; the only one is "
                           f"{FROZEN_VERSION}.")
    cfg = TowerConfig()
    model = build_clip_model(cfg, pretrained=True)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for lin in (model.visual.head.proj, model.text.proj):
            w = torch.empty_like(lin.weight)
            q, _ = torch.linalg.qr(torch.randn(max(w.shape), min(w.shape), generator=gen))
            lin.weight.copy_(q.T if w.shape[0] < w.shape[1] else q)
    return _wrap(model, cfg, FROZEN_NAME, FROZEN_VERSION, "frozen", precision,
                 {"description": "EfficientNet-Lite0 (ImageNet) + all-MiniLM-L6-v2, no alignment"})


def _wrap(model, cfg: TowerConfig, name: str, version: str, kind: str,
          precision: str | None, meta: dict[str, Any]) -> ClipEncoder:
    return ClipEncoder(model, text_tokenizer(cfg.context_length), name=name, version=version,
                       dim=cfg.embed_dim, kind=kind, image_size=cfg.image_size, mean=IMAGE_MEAN,
                       std=IMAGE_STD, precision=precision, meta=meta)


def catalog_clip_checkpoints(store, dataset: str | None = None) -> pd.DataFrame:
    """Registered catalog-clip checkpoints (newest first), with `exists` for the file."""
    frame = store.encoders(dataset)
    frame = frame[frame["name"] == NAME].copy()
    frame["exists"] = [bool(p) and Path(p).is_file() for p in frame["path"]]
    return frame.reset_index(drop=True)


def resolve_checkpoint(store, dataset: str | None, version: str | None) -> dict[str, Any]:
    """The registry row of `catalog-clip@version`, or of the dataset's newest checkpoint."""
    if store is None:
        raise EncoderError("catalog-clip needs the database to find its checkpoint; pass the "
                           "store (or use --encoder frozen / openclip:...).")
    if version is None:
        dataset = store.resolve_dataset(dataset)
        rows = catalog_clip_checkpoints(store, dataset)
        rows = rows[rows["exists"]]
        if rows.empty:
            raise NoCheckpointError(
                f"No aligned catalog-clip encoder exists for dataset '{dataset}' yet. Train one "
                f"with `python -m recsys train-encoder --dataset {dataset}` (a few minutes on a "
                "CPU), or embed with the unaligned baseline: --encoder frozen.")
        return rows.iloc[0].to_dict()
    rows = catalog_clip_checkpoints(store)
    rows = rows[rows["version"] == version]
    if rows.empty:
        known = ", ".join(catalog_clip_checkpoints(store)["version"].head(8)) or "none"
        raise EncoderError(f"Unknown encoder catalog-clip@{version}. Known versions: {known}.")
    row = rows.iloc[0].to_dict()
    if not row["exists"]:
        raise EncoderError(f"The checkpoint of catalog-clip@{version} ({row['path']}) is missing; "
                           "retrain with `python -m recsys train-encoder`.")
    return row


def load_catalog_clip(store, dataset: str | None = None, version: str | None = None,
                      precision: str | None = None) -> ClipEncoder:
    """The aligned encoder `catalog-clip@version` (default: the dataset's newest)."""
    row = resolve_checkpoint(store, dataset, version)
    return load_checkpoint(row["path"], precision=precision)


def load_checkpoint(path: str | Path, precision: str | None = None) -> ClipEncoder:
    """Rebuild a ClipEncoder from a catalog-clip checkpoint file."""
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise EncoderError(f"Cannot read the encoder checkpoint {path}: {exc}. Retrain with "
                           "`python -m recsys train-encoder`.") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise EncoderError(f"{path} is not a catalog-clip checkpoint.")
    cfg = TowerConfig.from_dict(ckpt["tower"])
    model = build_clip_model(cfg, pretrained=False)
    model.load_state_dict(ckpt["state_dict"])
    return _wrap(model, cfg, ckpt["name"], ckpt["version"], NAME, precision,
                 {"dataset": ckpt.get("dataset"), "path": str(path)})


# -- training data ------------------------------------------------------------------------------
@dataclass
class _Pairs:
    """Training items with their caption variants as ids into a table of distinct texts."""

    item_ids: list[str]
    image_paths: list[str]
    texts: list[str]                  # distinct texts
    kinds: list[str]                  # variant kinds (columns of variant_ids)
    variant_ids: np.ndarray           # [items, kinds] text id or -1
    caption_ids: np.ndarray           # [items] text id of the full caption
    title_ids: np.ndarray             # [items] text id of the title (or caption)
    categories: list[str]


def _build_pairs(items: pd.DataFrame) -> _Pairs:
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
    return _Pairs([str(r["item_id"]) for r in records], [str(r["image_path"]) for r in records],
                  texts, kinds, variant_ids, cap, title, [item_category(r) for r in records])


def training_items(store, dataset: str, rule: HoldoutRule) -> pd.DataFrame:
    """Items with a photo and a title, with their split ('heldout', 'val', 'train')."""
    items = store.items(dataset)
    items = items[items["image_path"].notna() & items["title"].notna()].reset_index(drop=True)
    items["split"] = rule.splits(items["item_id"])
    return items


# -- caching the frozen bottoms -----------------------------------------------------------------
def _cache_images(model, paths: list[str], cfg: CatalogClipConfig, encoder_prep,
                  progress: ProgressCallback | None, flip: bool):
    """Frozen image-bottom activations of every photo (bf16), and of its mirror if `flip`."""
    import torch
    from concurrent.futures import ThreadPoolExecutor

    n = len(paths)
    out, out_flip = None, None
    bs = 64
    pixels = encoder_prep
    with ThreadPoolExecutor(max_workers=2) as pool, torch.inference_mode(), _autocast(cfg):
        arrays_iter = pool.map(lambda p: prepare_image(p, cfg.tower.image_size), paths)
        for start in range(0, n, bs):
            arrays = [next(arrays_iter) for _ in range(min(bs, n - start))]
            x = pixels(arrays)
            h = image_bottom(model.visual, x, cfg.image_trainable).to(torch.bfloat16)
            if out is None:
                out = torch.empty((n, *h.shape[1:]), dtype=torch.bfloat16)
                if flip:
                    out_flip = torch.empty_like(out)
            out[start:start + len(arrays)] = h
            if flip:
                hf = image_bottom(model.visual, torch.flip(x, dims=[3]), cfg.image_trainable)
                out_flip[start:start + len(arrays)] = hf.to(torch.bfloat16)
            report(progress, start + len(arrays), n, f"{start + len(arrays):,}/{n:,} photos",
                   stage="cache images")
    return out, out_flip


def _cache_texts(model, tokenize, texts: list[str], cfg: CatalogClipConfig,
                 progress: ProgressCallback | None):
    """Frozen text-bottom outputs of every distinct text: a list of [len, 384] tensors (or one
    [n, 384] matrix of pooled vectors when only the projection trains)."""
    import torch

    n = len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    pooled = cfg.text_trainable <= 0
    out: list[Any] = [None] * n
    bs = 256
    with torch.inference_mode(), _autocast(cfg):
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


def _pad_hidden(hidden: list, ids: np.ndarray):
    import torch
    from torch.nn.utils.rnn import pad_sequence

    seqs = [hidden[i] for i in ids]
    h = pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([s.shape[0] for s in seqs])
    mask = torch.arange(h.shape[1])[None, :] < lengths[:, None]
    return h, mask


def _autocast(cfg: CatalogClipConfig):
    import contextlib

    import torch
    if resolve_precision(cfg.precision) == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# -- the loss -----------------------------------------------------------------------------------
def contrastive_loss(logits, positives=None):
    """Symmetric CLIP loss; with `positives` (bool [n, n], diagonal set) every positive of a row
    gets an equal share of the target (UniCL), otherwise only the diagonal does."""
    import torch
    import torch.nn.functional as F

    n = logits.shape[0]
    if positives is None:
        labels = torch.arange(n)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    pos = positives.float()
    t_rows = pos / pos.sum(1, keepdim=True)
    t_cols = pos.T / pos.T.sum(1, keepdim=True)
    loss_i = -(t_rows * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(t_cols * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return 0.5 * (loss_i + loss_t)


# -- training -----------------------------------------------------------------------------------
class _Trainer:
    """Holds the cache, the model tops and the optimiser for one alignment run."""

    def __init__(self, model, pairs: _Pairs, train_idx: np.ndarray, val_idx: np.ndarray,
                 img_cache, img_cache_flip, txt_cache, cfg: CatalogClipConfig):
        import torch

        self.model, self.pairs, self.cfg = model, pairs, cfg
        self.train_idx, self.val_idx = train_idx, val_idx
        self.img, self.img_flip, self.txt = img_cache, img_cache_flip, txt_cache
        self.txt_lengths = np.array([1 if t.ndim == 1 else t.shape[0] for t in txt_cache])
        self.rng = np.random.default_rng(cfg.seed)
        kinds = pairs.kinds
        # sampling weight per variant column ("category" weight is shared by its templates)
        w = []
        cat_cols = [k for k in kinds if k.startswith("category:")]
        for k in kinds:
            if k.startswith("category:"):
                w.append(cfg.caption_weights.get("category", 0.0) / max(1, len(cat_cols)))
            else:
                w.append(cfg.caption_weights.get(k, 0.0))
        self.kind_weights = np.array(w, dtype=np.float64)
        if self.kind_weights.sum() <= 0:
            self.kind_weights[kinds.index("caption")] = 1.0

        for p in model.parameters():
            p.requires_grad_(False)
        self.image_modules = image_top_modules(model.visual, cfg.image_trainable)
        self.text_modules = text_top_modules(model.text, cfg.text_trainable)
        head_params = list(model.visual.head.parameters()) + list(model.text.proj.parameters())
        tower_params = [p for m in self.image_modules[1:] + self.text_modules[1:]
                        for p in m.parameters()]
        for p in head_params + tower_params + [model.logit_scale]:
            p.requires_grad_(True)
        decay = lambda ps: [p for p in ps if p.ndim >= 2]      # noqa: E731
        no_decay = lambda ps: [p for p in ps if p.ndim < 2]    # noqa: E731
        groups = [
            {"params": decay(head_params), "lr": cfg.lr_head, "weight_decay": cfg.weight_decay},
            {"params": no_decay(head_params) + [model.logit_scale], "lr": cfg.lr_head,
             "weight_decay": 0.0},
            {"params": decay(tower_params), "lr": cfg.lr_tower, "weight_decay": cfg.weight_decay},
            {"params": no_decay(tower_params), "lr": cfg.lr_tower, "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        self.base_lrs = [g["lr"] for g in groups]
        self.opt = torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)
        self.n_trainable = sum(p.numel() for g in groups for p in g["params"])
        bs = max(2, min(cfg.batch_size, len(train_idx)))
        self.batch_size = bs
        self.steps_per_epoch = max(1, len(train_idx) // bs)
        total = self.steps_per_epoch * cfg.epochs
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.warmup = max(1, int(cfg.warmup_fraction * self.total_steps))
        self.step = 0

    def _set_lr(self) -> None:
        s = self.step
        if s < self.warmup:
            factor = (s + 1) / self.warmup
        else:
            progress = (s - self.warmup) / max(1, self.total_steps - self.warmup)
            factor = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for g, lr in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = lr * factor

    def _images(self, rows: np.ndarray, flip: np.ndarray | None):
        import torch
        x = self.img[rows]
        if flip is not None and self.img_flip is not None and flip.any():
            x = x.clone()
            sel = torch.from_numpy(np.flatnonzero(flip))
            x[sel] = self.img_flip[rows[flip]]
        x = x.float()
        if x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return image_top(self.model.visual, x, self.cfg.image_trainable)

    def _texts(self, text_ids: np.ndarray):
        """Text vectors through the trained top; sequences run in length buckets, so a batch of
        mostly short names is not padded to its longest caption (about 2x less work)."""
        import torch

        if self.cfg.text_trainable <= 0:
            return text_top(self.model.text, self.txt[text_ids].float(), None, 0)
        order = np.argsort(self.txt_lengths[text_ids], kind="stable")
        parts = []
        for chunk in np.array_split(order, max(1, math.ceil(len(order) / TEXT_BUCKET))):
            h, mask = _pad_hidden(self.txt, text_ids[chunk])
            parts.append(text_top(self.model.text, h.float(), mask, self.cfg.text_trainable))
        inverse = torch.from_numpy(np.argsort(order))
        return torch.cat(parts)[inverse]

    def _positives(self, rows: np.ndarray, kind_cols: np.ndarray, text_ids: np.ndarray):
        import torch
        if not self.cfg.multi_positive:
            return None
        table = self.pairs.variant_ids[rows][:, kind_cols]        # [n images, n texts]
        pos = table == text_ids[None, :]
        np.fill_diagonal(pos, True)
        return torch.from_numpy(pos)

    def logits(self, rows: np.ndarray, text_ids: np.ndarray, flip=None):
        import torch.nn.functional as F
        img = F.normalize(self._images(rows, flip).float(), dim=-1)
        txt = F.normalize(self._texts(text_ids).float(), dim=-1)
        scale = self.model.logit_scale.clamp(max=math.log(100.0)).exp()
        return scale * img @ txt.T, img, txt

    def train_epoch(self, epoch: int, progress: ProgressCallback | None) -> float:

        for m in self.image_modules + self.text_modules:
            m.eval()   # frozen BN statistics, no dropout: the cached path equals inference
        order = self.rng.permutation(self.train_idx)
        losses = []
        bs = self.batch_size
        for b in range(self.steps_per_epoch):
            if self.step >= self.total_steps:
                break
            rows = order[b * bs:(b + 1) * bs]
            kind_cols = self._sample_kinds(rows)
            text_ids = self.pairs.variant_ids[rows, kind_cols]
            flip = self.rng.random(len(rows)) < 0.5 if self.cfg.flip_augment else None
            self._set_lr()
            with _autocast(self.cfg):
                logits, _, _ = self.logits(rows, text_ids, flip)
                loss = contrastive_loss(logits.float(), self._positives(rows, kind_cols, text_ids))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            losses.append(float(loss.detach()))
            report(progress, b + 1, self.steps_per_epoch,
                   f"epoch {epoch} step {b + 1}/{self.steps_per_epoch}", stage="epoch",
                   loss=round(float(np.mean(losses)), 4))
        return float(np.mean(losses)) if losses else float("nan")

    def _sample_kinds(self, rows: np.ndarray) -> np.ndarray:
        avail = self.pairs.variant_ids[rows] >= 0
        w = avail * self.kind_weights[None, :]
        w = w / w.sum(1, keepdims=True)
        u = self.rng.random(len(rows))[:, None]
        return (u > np.cumsum(w, axis=1)).sum(1).clip(max=w.shape[1] - 1)

    def validate(self) -> tuple[float, dict[str, float]]:
        """Validation loss (full captions) and retrieval/zero-shot numbers on the val items."""
        import torch

        rows = self.val_idx
        if len(rows) < 2:
            return float("nan"), {}
        kinds = self.pairs.kinds
        cap_col = np.full(len(rows), kinds.index("caption"))
        with torch.inference_mode(), _autocast(self.cfg):
            logits, img, _ = self.logits(rows, self.pairs.caption_ids[rows])
            loss = float(contrastive_loss(logits.float(),
                                          self._positives(rows, cap_col,
                                                          self.pairs.caption_ids[rows])))
            titles = torch.nn.functional.normalize(
                self._texts(self.pairs.title_ids[rows]).float(), dim=-1)
            sims = (titles @ img.T).float().numpy()
            metrics = {"val_t2i_r10": _recall_at(sims, 10)}
            cats = [self.pairs.categories[i] for i in rows]
            labels = sorted({c for c in cats if c})
            col = [k for k in kinds if k.startswith("category:")]
            if len(labels) > 1 and col:
                # one prompt per label: the text id of that label's first category template
                first = kinds.index(col[0])
                label_tid = {}
                for i in range(len(self.pairs.item_ids)):
                    c = self.pairs.categories[i]
                    if c in labels and c not in label_tid and self.pairs.variant_ids[i, first] >= 0:
                        label_tid[c] = self.pairs.variant_ids[i, first]
                usable = [c for c in labels if c in label_tid]
                if len(usable) > 1:
                    proto = torch.nn.functional.normalize(
                        self._texts(np.array([label_tid[c] for c in usable])).float(), dim=-1)
                    pred = (img @ proto.T).argmax(1).numpy()
                    truth = np.array([usable.index(c) if c in usable else -1 for c in cats])
                    metrics["val_zeroshot_acc"] = float((pred == truth)[truth >= 0].mean())
        return loss, metrics


def _recall_at(sims: np.ndarray, k: int) -> float:
    """Share of rows whose own column (the diagonal) is among the row's top k."""
    own = np.diag(sims)[:, None]
    rank = (sims > own).sum(1)
    return float((rank < k).mean())


def new_version(dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-") or "dataset"
    return f"{slug}-{datetime.now():%Y%m%d%H%M%S}"


def train_catalog_clip(store, dataset: str | None = None,
                       config: CatalogClipConfig | dict | None = None,
                       progress: ProgressCallback | None = None) -> EncoderInfo:
    """Align the pretrained towers on a catalog's photos and texts; save, register, return it.

    Records a run (kind "encoder") with one row per epoch. On any exception or Ctrl-C the run
    is marked failed/interrupted and no checkpoint is written or registered (the previous one
    stays the dataset's current encoder).
    """

    cfg = config if isinstance(config, CatalogClipConfig) else CatalogClipConfig.from_dict(config)
    _check_config(cfg)
    dataset = store.resolve_dataset(dataset)
    t0 = time.perf_counter()
    items = training_items(store, dataset, cfg.holdout)
    train_items = items[items["split"] != "heldout"].reset_index(drop=True)
    if cfg.max_items is not None:
        train_items = train_items.head(cfg.max_items)
    if len(train_items) < 8:
        raise TrainingError(f"Dataset '{dataset}' has {len(train_items)} items with a photo and "
                            "a title outside the held-out 20%; aligning an encoder needs at least "
                            "8. Import a larger catalog.")
    version = new_version(dataset)
    run_config = {**cfg.to_dict(), "version": version, "n_items": int(len(items)),
                  "n_train": int((train_items["split"] == "train").sum()),
                  "n_val": int((train_items["split"] == "val").sum()),
                  "n_heldout": int((items["split"] == "heldout").sum())}
    run_id = store.start_run(dataset, "encoder", NAME, run_config)
    try:
        with torch_threads():
            info = _train(store, dataset, cfg, train_items, version, run_id, run_config, t0,
                          progress)
    except Exception as exc:
        store.finish_run(run_id, "failed", time.perf_counter() - t0,
                         message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    except BaseException:
        # Ctrl-C, or Streamlit stopping the script when the user leaves the page
        store.finish_run(run_id, "interrupted", time.perf_counter() - t0,
                         message="interrupted; the previous encoder checkpoint is unchanged")
        raise
    return info


def _check_config(cfg: CatalogClipConfig) -> None:
    if not 0 <= cfg.image_trainable <= N_IMAGE_STAGES + 1:
        raise EncoderError(f"image_trainable must be 0..{N_IMAGE_STAGES + 1}")
    if not 0 <= cfg.text_trainable <= N_TEXT_LAYERS:
        raise EncoderError(f"text_trainable must be 0..{N_TEXT_LAYERS}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise EncoderError("epochs must be >= 1 and batch_size >= 2")


def _train(store, dataset: str, cfg: CatalogClipConfig, train_items: pd.DataFrame, version: str,
           run_id: int, run_config: dict, t0: float,
           progress: ProgressCallback | None) -> EncoderInfo:
    import torch

    torch.manual_seed(cfg.seed)
    report(progress, 0, 1, "loading the pretrained towers", stage="load")
    model = build_clip_model(cfg.tower, pretrained=True)
    model.visual.to(memory_format=torch.channels_last)
    tokenize = text_tokenizer(cfg.tower.context_length)
    helper = ClipEncoder.__new__(ClipEncoder)   # only for its pixel normalisation
    helper._mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1) * 255.0
    helper._std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1) * 255.0

    pairs = _build_pairs(train_items)
    split = train_items["split"].to_numpy()
    train_idx = np.flatnonzero(split == "train")
    val_idx = np.flatnonzero(split == "val")
    if len(train_idx) < 2:
        train_idx = np.arange(len(split))

    # Share of the bar per phase, from measured costs on Myntra.
    img_share, txt_share = (0.45, 0.1)
    t_cache = time.perf_counter()
    img_cache, img_flip = _cache_images(
        model, pairs.image_paths, cfg, helper.pixels, scaled(progress, 0.0, img_share),
        flip=cfg.flip_augment)
    t_img = time.perf_counter() - t_cache
    txt_cache = _cache_texts(model, tokenize, pairs.texts, cfg,
                             scaled(progress, img_share, img_share + txt_share))
    t_txt = time.perf_counter() - t_cache - t_img

    trainer = _Trainer(model, pairs, train_idx, val_idx, img_cache, img_flip, txt_cache, cfg)
    history = []
    start = img_share + txt_share
    per_epoch = (1.0 - start) / cfg.epochs
    for epoch in range(1, cfg.epochs + 1):
        te = time.perf_counter()
        bar = scaled(progress, start + (epoch - 1) * per_epoch, start + epoch * per_epoch)
        train_loss = trainer.train_epoch(epoch, bar)
        val_loss, val_metrics = trainer.validate()
        seconds = time.perf_counter() - te
        metrics = {**val_metrics,
                   "temperature": float(1 / trainer.model.logit_scale.detach().exp())}
        store.add_epoch(run_id, epoch, train_loss, val_loss, metrics, seconds)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        **metrics, "seconds": seconds})
        report(bar, 1, 1, f"epoch {epoch}/{cfg.epochs}", stage="epoch", loss=train_loss,
               val_loss=val_loss, **{k: round(v, 4) for k, v in val_metrics.items()})
        if trainer.step >= trainer.total_steps:
            break

    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    folder = recsys_config.artifacts_dir(store.path, "encoders", NAME)
    path = folder / f"{version}.pt"
    ckpt = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
            "name": NAME, "version": version, "dataset": dataset, "tower": cfg.tower.to_dict(),
            "config": cfg.to_dict(), "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    seconds = time.perf_counter() - t0
    last = history[-1] if history else {}
    metrics = {k: v for k, v in last.items() if k.startswith("val_")}
    metrics.update({"train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                    "epochs": len(history), "steps": trainer.step, "seconds": seconds,
                    "seconds_cache_images": t_img, "seconds_cache_texts": t_txt,
                    "trainable_parameters": trainer.n_trainable})
    enc_config = {**run_config, "run_id": run_id}
    store.register_encoder(NAME, version, NAME, dataset, str(path), enc_config, metrics)
    store.finish_run(run_id, "finished", seconds, artifact_path=str(path),
                     message=f"{NAME}@{version}")
    report(progress, 1, 1, f"saved {NAME}@{version}", stage="done")
    return EncoderInfo(NAME, version, dataset, str(path), enc_config, metrics, run_id, seconds)
