"""Training the instance block: the photo-to-photo part of a photo's vector, robust to phone shots.

The instance block (`hybrid.InstanceBlockHead`) starts as the PCA of the pooled photo features:
it keeps what varies most between catalog photos, including what a phone shot changes (the
background, the light, the framing). `train_instance_block` turns its projection into one that
keeps what identifies *the product*: each augmented view of a training photo (`augment`) is
pulled toward its own studio photo and pushed away from the other studio photos of the batch
(InfoNCE both ways, at `cfg.instance_temperature`); half the batches are drawn within one
article type at a time, so the negatives include the products most like it (hard negatives).
Only the projection [instance_dim, 1280] trains (the mean stays the PCA's); it starts at the
PCA, so zero epochs or no views leave the PCA as it was.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from recsys.core.progress import ProgressCallback, report


def _batches(rng: np.random.Generator, rows: np.ndarray, labels: np.ndarray, size: int
             ) -> list[np.ndarray]:
    """One epoch of batches: half random, half grouped by label (hard negatives)."""
    rows = rng.permutation(rows)
    half = len(rows) // 2
    random_part, typed_part = rows[:half], rows[half:]
    out = [random_part[i:i + size] for i in range(0, len(random_part), size)]
    order = np.lexsort((rng.random(len(typed_part)), labels[typed_part]))
    typed = typed_part[order]
    out += [typed[i:i + size] for i in range(0, len(typed), size)]
    out = [b for b in out if len(b) >= 2]
    return [out[i] for i in rng.permutation(len(out))]


def recall_at(queries, gallery, own: np.ndarray, k: int = 10) -> float:
    """Share of queries whose own gallery row (`own`) is among their `k` most similar."""
    sims = queries @ gallery.T
    own_score = sims[np.arange(len(own)), own][:, None]
    return float(((sims > own_score).sum(1) < k).mean())


def train_instance_block(head, studio, views, view_ok: np.ndarray, train_rows: np.ndarray,
                         labels: Sequence[str], cfg, val_rows: np.ndarray | None = None,
                         progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Train `head.pca_components` (an `InstanceBlockHead` already fitted by PCA) in place.

    `studio` [n, d] pooled features of the photos, `views` [n, v, d] of their augmented views,
    `view_ok` [n, v] which views may be used (the allowed families), `train_rows` the rows that
    train, `val_rows` rows whose views report view -> own photo recall@10 among the studio
    photos of train + val rows after every epoch. Returns what happened (per-epoch history).
    """
    import torch
    import torch.nn.functional as F

    t0 = time.perf_counter()
    view_ok = np.asarray(view_ok, bool)
    labels = np.asarray([str(x) for x in labels], dtype=object)
    rows = np.asarray([r for r in train_rows if view_ok[r].any()], dtype=np.int64)
    info: dict[str, Any] = {"epochs": 0, "rows": int(len(rows)), "history": []}
    if cfg.instance_epochs <= 0 or len(rows) < 2:
        info["note"] = "instance block left as the PCA (no epochs or no augmented views)"
        return info
    rng = np.random.default_rng(cfg.seed + 17)
    mean = head.pca_mean.detach().float()
    weight = torch.nn.Parameter(head.pca_components.detach().float().clone())
    opt = torch.optim.AdamW([weight], lr=cfg.instance_lr, weight_decay=0.0)
    tau = float(cfg.instance_temperature)
    studio_f = torch.as_tensor(studio).float()

    def project(x):
        return F.normalize(F.linear(x.float() - mean, weight), dim=-1)

    gallery_rows = np.arange(len(studio_f)) if val_rows is None else \
        np.concatenate([np.asarray(train_rows), np.asarray(val_rows)])
    val = None
    if val_rows is not None:
        val = np.asarray([r for r in val_rows if view_ok[r].any()], dtype=np.int64)
    ok_idx = [np.flatnonzero(view_ok[r]) for r in range(len(view_ok))]
    for epoch in range(1, cfg.instance_epochs + 1):
        batches = _batches(rng, rows, labels, cfg.instance_batch_size)
        losses = []
        for b, batch in enumerate(batches):
            pick = np.array([rng.choice(ok_idx[r]) for r in batch])
            v = project(views[torch.from_numpy(batch), torch.from_numpy(pick)])
            s = project(studio_f[torch.from_numpy(batch)])
            logits = v @ s.T / tau
            target = torch.arange(len(batch))
            loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            report(progress, (epoch - 1) * len(batches) + b + 1,
                   cfg.instance_epochs * len(batches),
                   f"instance block epoch {epoch}/{cfg.instance_epochs}", stage="instance")
        row = {"epoch": epoch, "loss": float(np.mean(losses))}
        if val is not None and len(val):
            with torch.no_grad():
                pos = {int(r): i for i, r in enumerate(gallery_rows)}
                g = project(studio_f[torch.from_numpy(gallery_rows)]).numpy()
                q = project(views[torch.from_numpy(val),
                                  torch.from_numpy(np.array([ok_idx[r][0] for r in val]))]).numpy()
                row["val_view_recall@10"] = recall_at(q, g, np.array([pos[int(r)] for r in val]))
        info["history"].append(row)
    with torch.no_grad():
        head.pca_components.copy_(weight.detach())
    info.update(epochs=cfg.instance_epochs, seconds=time.perf_counter() - t0,
                final=info["history"][-1] if info["history"] else {})
    return info
