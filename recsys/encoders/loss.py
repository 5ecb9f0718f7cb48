"""Alignment losses: the (multi-positive) CLIP contrastive loss, and the distillation that keeps
the photo vectors close to what the frozen ImageNet classifier says about the photo."""

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


def distillation_loss(image_vectors, features, head, temperature: float):
    """KL(frozen ImageNet probabilities || softmax(photo vector . class-name vectors / T)).

    `head` is a `conse.ConseHead` (its classifier and MiniLM class-name vectors); `features`
    are the pooled photo features the classifier reads; `image_vectors` are the trained,
    L2-normalised photo vectors in MiniLM space. Words of the 1,000 ImageNet names stay where
    the pretrained towers put them relative to the photo, including words no catalog caption
    uses: that is what lets the aligned encoder name article types it never saw.
    """
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        target = torch.softmax(F.linear(features, head.fc_weight, head.fc_bias), dim=-1)
    logp = torch.log_softmax(image_vectors.float() @ head.names.T / temperature, dim=-1)
    return F.kl_div(logp, target, reduction="batchmean")
