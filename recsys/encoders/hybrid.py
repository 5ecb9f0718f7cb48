"""The catalog-clip heads on top of the two towers, and the model builder that assembles them.

Three optional parts, all set in `TowerConfig` (plain data saved with every checkpoint, so a
checkpoint rebuilds exactly its own structure; an old checkpoint has none of them):

- **locked text** (`text_proj="none"`, LiT-style): texts keep MiniLM's own 384-d sentence
  vectors, so any word MiniLM knows (an article type never seen in training, "belt", "denim")
  lands where MiniLM puts it; only the image side learns.
- **ConSE residual** (`conse_residual=True`): the image head is the untrained ConSE vector
  (`conse.ConseHead`: the names of the photo's top-10 ImageNet classes, in MiniLM space) plus a
  trained MLP correction that starts at zero. Alignment starts from ConSE and learns what the
  catalog adds.
- **instance block** (`instance_dim > 0`): the image vector gets a second block, the PCA of the
  pooled EfficientNet features (fitted on the training photos), weighted `instance_weight`;
  texts get zeros there. Photo-to-photo similarity then also sees the product's exact look
  (needed to find the same item in a phone photo), while photo-text scores are the aligned
  block's, scaled by the constant sqrt(1 - instance_weight).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conse import ConseHead, build_conse_head
from .towers import TowerConfig, build_clip_model, text_tokenizer

TEXT_WIDTH = 384           # MiniLM-L6's hidden size
IMAGE_FEATURES = 1280      # EfficientNet-Lite0's pooled features


class ResidualConseHead(nn.Module):
    """Pooled features -> ConSE vector + trained correction (the correction starts at 0)."""

    def __init__(self, mlp: nn.Module, conse: ConseHead):
        super().__init__()
        self.mlp, self.conse = mlp, conse
        last = [m for m in mlp.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()

    def forward(self, x):
        return self.mlp(x) + self.conse(x)


class InstanceBlockHead(nn.Module):
    """[sqrt(1 - w) * unit(aligned(x)), sqrt(w) * unit(PCA(x))]: a unit vector."""

    def __init__(self, aligned: nn.Module, in_dim: int, dim: int, weight: float):
        super().__init__()
        self.aligned = aligned
        self.weights = (math.sqrt(1.0 - weight), math.sqrt(weight))
        self.register_buffer("pca_mean", torch.zeros(in_dim))
        self.register_buffer("pca_components", torch.zeros(dim, in_dim))

    def fit(self, features) -> "InstanceBlockHead":
        """PCA of pooled features [n, in_dim] (the training photos)."""
        x = torch.as_tensor(features, dtype=torch.float32)
        mean = x.mean(0)
        dim = self.pca_components.shape[0]
        _, _, v = torch.linalg.svd(x - mean, full_matrices=False)
        comps = torch.zeros_like(self.pca_components)
        comps[:min(dim, v.shape[0])] = v[:dim]
        with torch.no_grad():
            self.pca_mean.copy_(mean)
            self.pca_components.copy_(comps)
        return self

    def instance(self, x):
        return F.normalize(F.linear(x.float() - self.pca_mean, self.pca_components), dim=-1)

    def forward(self, x):
        a = F.normalize(self.aligned(x).float(), dim=-1)
        return torch.cat([self.weights[0] * a, self.weights[1] * self.instance(x)], dim=-1)


class PadText(nn.Module):
    """Text projection followed by zeros where images carry their instance block."""

    def __init__(self, proj: nn.Module, pad: int):
        super().__init__()
        self.proj, self.pad = proj, int(pad)

    def forward(self, x):
        y = F.normalize(self.proj(x).float(), dim=-1)
        return torch.cat([y, y.new_zeros(*y.shape[:-1], self.pad)], dim=-1)


def output_dim(cfg: TowerConfig) -> int:
    """The length of the encoder's vectors."""
    return cfg.embed_dim + (cfg.instance_dim if cfg.instance_dim > 0 else 0)


def build_catalog_model(cfg: TowerConfig, pretrained: bool = True, instance: bool = True):
    """`towers.build_clip_model` with the heads `cfg` asks for (see the module docstring).

    With `pretrained=False` (loading a checkpoint) the ConSE and PCA buffers are zeros, filled
    by the checkpoint's state dict. `instance=False` leaves the instance block off (alignment
    trains without it and adds it at the end, see `add_instance_block`).
    """
    model = build_clip_model(cfg, pretrained=pretrained)
    if cfg.conse_residual:
        if pretrained:
            conse = build_conse_head(model, text_tokenizer(cfg.context_length))
        else:
            conse = ConseHead(IMAGE_FEATURES, TEXT_WIDTH)
        model.visual.head = ResidualConseHead(model.visual.head, conse)
    if instance and cfg.instance_dim > 0:
        add_instance_block(model, cfg)
    return model


def add_instance_block(model, cfg: TowerConfig, features=None):
    """Wrap the heads with the instance block; fit its PCA on `features` if given."""
    head = InstanceBlockHead(model.visual.head, IMAGE_FEATURES, cfg.instance_dim,
                             cfg.instance_weight)
    if features is not None:
        head.fit(features)
    model.visual.head = head
    model.text.proj = PadText(model.text.proj, cfg.instance_dim)
    return model
