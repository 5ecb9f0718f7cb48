"""Alignment losses: the (multi-positive) CLIP contrastive loss."""

from __future__ import annotations


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
