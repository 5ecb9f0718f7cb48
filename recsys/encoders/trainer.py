"""The alignment loop: trained tops over cached bottoms, one optimiser, validation numbers."""

from __future__ import annotations

import math

import numpy as np

from recsys.core.progress import ProgressCallback, report

from .clip_config import CatalogClipConfig
from .loss import contrastive_loss, distillation_loss
from .tower_parts import image_top, image_top_modules, text_top, text_top_modules
from .training_data import TrainingPairs, autocast, pad_hidden

TEXT_BUCKET = 64          # texts per length bucket when training text layers


class Trainer:
    """Holds the cache, the model tops and the optimiser for one alignment run."""

    def __init__(self, model, pairs: TrainingPairs, train_idx: np.ndarray, val_idx: np.ndarray,
                 img_cache, img_cache_flip, txt_cache, cfg: CatalogClipConfig,
                 distill_head=None, views=None, view_ok: np.ndarray | None = None):
        import torch

        self.model, self.pairs, self.cfg = model, pairs, cfg
        # the frozen ImageNet classifier + class-name vectors (a conse.ConseHead) when the
        # photo vectors are distilled toward the classifier (cfg.distill_weight > 0)
        self.distill_head = distill_head if cfg.distill_weight > 0 else None
        self.train_idx, self.val_idx = train_idx, val_idx
        self.img, self.img_flip, self.txt = img_cache, img_cache_flip, txt_cache
        # phone-style views of the photos [n, v, d] and which may be used [n, v] (`augment`)
        self.views, self.view_ok = views, view_ok
        if views is None or view_ok is None or not np.asarray(view_ok).any() \
                or cfg.augment_prob <= 0:
            self.views, self.view_ok = None, None
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

    def _images(self, rows: np.ndarray, flip: np.ndarray | None, augment: bool = False):
        import torch
        x = self.img[rows]
        if flip is not None and self.img_flip is not None and flip.any():
            x = x.clone()
            sel = torch.from_numpy(np.flatnonzero(flip))
            x[sel] = self.img_flip[rows[flip]]
        if augment and self.views is not None:
            ok = self.view_ok[rows]
            use = (self.rng.random(len(rows)) < self.cfg.augment_prob) & ok.any(1)
            if use.any():
                x = x.clone()
                sel = np.flatnonzero(use)
                # a random allowed view of each selected photo
                pick = np.array([self.rng.choice(np.flatnonzero(ok[i])) for i in sel])
                x[torch.from_numpy(sel)] = self.views[torch.from_numpy(rows[sel]),
                                                      torch.from_numpy(pick)]
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
            h, mask = pad_hidden(self.txt, text_ids[chunk])
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

    def logits(self, rows: np.ndarray, text_ids: np.ndarray, flip=None, augment: bool = False):
        import torch.nn.functional as F
        img = F.normalize(self._images(rows, flip, augment).float(), dim=-1)
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
            with autocast(self.cfg):
                logits, img, _ = self.logits(rows, text_ids, flip, augment=True)
                loss = contrastive_loss(logits.float(), self._positives(rows, kind_cols, text_ids))
                if self.distill_head is not None:
                    loss = loss + self.cfg.distill_weight * distillation_loss(
                        img, self.img[rows].float(), self.distill_head,
                        self.cfg.distill_temperature)
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
        with torch.inference_mode(), autocast(self.cfg):
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
