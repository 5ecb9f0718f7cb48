"""The catalog CLIP model in plain PyTorch: EfficientNet-Lite0 + MiniLM without open_clip.

`towers.build_clip_model` used to assemble open_clip's `CustomTextCLIP` over a timm trunk and a
transformers `BertModel`. Importing those three libraries (open_clip -> torchvision ->
torch._dynamo, timm, transformers' modelling code) cost 10-12 s of CPU on the 2-core box before
a single photo was encoded, on every first start and every new process. The two towers are
small and fixed, so they are written here with only `torch`:

- `Lite0Trunk`: timm's `tf_efficientnet_lite0` (TF "same" padding, batch norm eps 1e-3, ReLU6)
  with its classifier removed and average pooling, as open_clip's `TimmModel` builds it;
- `MiniLM`: transformers' `BertModel` for all-MiniLM-L6-v2 (absolute positions, GELU, no
  pooler), read from the package's `model.safetensors`;
- `CatalogClip`: `.visual` (trunk + head), `.text` (transformer + mean pooler + projection) and
  `.logit_scale`, with open_clip's module names, so the state dict has exactly open_clip's keys,
  in the same order: checkpoints saved by the open_clip model load here unchanged, and back.

Building the image trunk draws the same random numbers, in the same order, as timm and
open_clip did (timm's convolution and classifier initialisation, then the head), so an
alignment seeded before the build (`alignment.align`) starts from the same head weights as
before. tests/encoders/test_lite_towers.py checks keys, outputs and the random state against
open_clip's model.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-3              # timm's BN_EPS_TF_DEFAULT for the tf_ variants
# (expansion, kernel, stride, out channels, repeats) per stage: timm's arch_def for
# efficientnet_lite0 ('ds_r1_k3_s1_e1_c16', 'ir_r2_k3_s2_e6_c24', ...)
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM = 32
FEATURES = 1280
IMAGENET_CLASSES = 1000


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding: static (symmetric) where the stride is
    1, else computed from the input size and applied before the convolution (asymmetric, as
    timm's `Conv2dSame`)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        self.dynamic = stride > 1
        super().__init__(cin, cout, kernel, stride, 0 if self.dynamic else (kernel - 1) // 2,
                         groups=groups, bias=False)

    def forward(self, x):
        if self.dynamic:
            ih, iw = x.shape[-2:]
            kh, kw = self.kernel_size
            sh, sw = self.stride
            ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


class BatchNormAct(nn.BatchNorm2d):
    """Batch norm followed by ReLU6 (or nothing): timm's `BatchNormAct2d`, same tensors."""

    def __init__(self, channels: int, act: bool = True):
        super().__init__(channels, eps=BN_EPS)
        self.act = act

    def forward(self, x):
        x = super().forward(x)
        return F.relu6(x) if self.act else x


class DepthwiseSeparable(nn.Module):
    """timm's `DepthwiseSeparableConv` (the first stage): depthwise, then pointwise."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv_dw = SameConv2d(cin, cin, kernel, stride, groups=cin)
        self.bn1 = BatchNormAct(cin)
        self.conv_pw = SameConv2d(cin, cout, 1)
        self.bn2 = BatchNormAct(cout, act=False)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return y + x if self.has_skip else y


class InvertedResidual(nn.Module):
    """timm's `InvertedResidual` without squeeze-excitation (EfficientNet-Lite)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.conv_pw = SameConv2d(cin, mid, 1)
        self.bn1 = BatchNormAct(mid)
        self.conv_dw = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.bn2 = BatchNormAct(mid)
        self.conv_pwl = SameConv2d(mid, cout, 1)
        self.bn3 = BatchNormAct(cout, act=False)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.has_skip else y


class Lite0Trunk(nn.Module):
    """EfficientNet-Lite0 up to its pooled 1,280 features (timm's names: `conv_stem`, `bn1`,
    `blocks`, `conv_head`, `bn2`, `forward_head`)."""

    def __init__(self):
        super().__init__()
        self.conv_stem = SameConv2d(3, STEM, 3, 2)
        self.bn1 = BatchNormAct(STEM)
        for _ in range(2):          # timm's block builder makes (and drops) two 8-channel 1x1
            nn.Conv2d(8, 8, 1)      # convolutions here: the same random numbers drawn
        stages, cin = [], STEM
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            blocks = []
            for r in range(repeats):
                s = stride if r == 0 else 1
                blocks.append(DepthwiseSeparable(cin, cout, kernel, s) if expand == 1
                              else InvertedResidual(cin, cout, kernel, s, expand))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = SameConv2d(cin, FEATURES, 1)
        self.bn2 = BatchNormAct(FEATURES)
        self.num_features = FEATURES
        self._init_like_timm()

    def _init_like_timm(self) -> None:
        """timm's 1,000-class classifier made, then `_init_weight_goog` over the modules
        (open_clip's `reset_classifier(0)` then drops the classifier): the pretrained weights
        replace all of this, but the random numbers drawn are the ones timm drew."""
        classifier = nn.Linear(FEATURES, IMAGENET_CLASSES)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        bound = 1.0 / math.sqrt(IMAGENET_CLASSES)
        nn.init.uniform_(classifier.weight, -bound, bound)

    def forward_features(self, x):
        return self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))

    def forward_head(self, x):
        return x.mean((2, 3))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class Mlp(nn.Module):
    """timm's `Mlp` as open_clip's `timm_proj="mlp"` head uses it (fc1 with bias, GELU, fc2
    without)."""

    def __init__(self, cin: int, hidden: int, cout: int):
        super().__init__()
        self.fc1 = nn.Linear(cin, hidden, bias=True)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, cout, bias=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ImageTower(nn.Module):
    """open_clip's `TimmModel` for this trunk: `trunk` then `head` (`proj` or `mlp`)."""

    def __init__(self, embed_dim: int, proj: str, image_size: int):
        super().__init__()
        self.image_size = (image_size, image_size)
        self.trunk = Lite0Trunk()
        if proj == "linear":
            self.head = nn.Sequential()
            self.head.add_module("drop", nn.Dropout(0.0))
            self.head.add_module("proj", nn.Linear(FEATURES, embed_dim, bias=False))
        elif proj == "mlp":
            self.head = nn.Sequential()
            self.head.add_module("mlp", Mlp(FEATURES, 2 * embed_dim, embed_dim))
        else:
            raise ValueError(f"unknown image projection {proj!r}")

    def forward(self, x):
        return self.head(self.trunk(x))


# -- MiniLM (BERT) --------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size,
                                            padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids):
        n = input_ids.shape[1]
        h = self.word_embeddings(input_ids) + self.position_embeddings.weight[:n] \
            + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(h))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c.num_attention_heads
        self.dropout_prob = c.attention_probs_dropout_prob
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h, bias):
        b, n, d = h.shape

        def split(x):
            return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.query(h)), split(self.key(h)),
                                             split(self.value(h)), attn_mask=bias,
                                             dropout_p=self.dropout_prob if self.training
                                             else 0.0)
        return out.transpose(1, 2).reshape(b, n, d)


class BertDenseNorm(nn.Module):
    """`dense` then residual `LayerNorm` (BertSelfOutput / BertOutput)."""

    def __init__(self, cin: int, c):
        super().__init__()
        self.dense = nn.Linear(cin, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertDenseNorm(c.hidden_size, c)

    def forward(self, h, bias):
        return self.output(self.self(h, bias), h)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertDenseNorm(c.intermediate_size, c)

    def forward(self, hidden_states, attention_mask=None):
        """`attention_mask`: an additive bias [batch, 1, 1, tokens] (0 or a large negative)."""
        a = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))


class MiniLM(nn.Module):
    """transformers' `BertModel` (no pooler) for MiniLM's config: `embeddings`,
    `encoder.layer`; called with `input_ids` and `attention_mask` (1 = token) it returns an
    object with `last_hidden_state`, like transformers does."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)

    def forward(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        bias = attention_bias(attention_mask.bool())
        h = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            h = layer(h, bias)
        return SimpleNamespace(last_hidden_state=h)


def attention_bias(mask):
    """[batch, tokens] bool (True = a token) -> the additive bias [batch, 1, 1, tokens]."""
    bias = torch.zeros(mask.shape, dtype=torch.float32)
    return bias.masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None, :]


class MeanPooler(nn.Module):
    """open_clip's `MeanPooler`: the mean of the token states where the mask is 1."""

    def forward(self, x, attention_mask):
        masked = x.last_hidden_state * attention_mask.unsqueeze(-1)
        return masked.sum(dim=1) / attention_mask.sum(-1, keepdim=True)


class TextTower(nn.Module):
    """open_clip's `HFTextEncoder` with the mean pooler: `transformer`, `pooler`, `proj`."""

    def __init__(self, config, embed_dim: int, proj: str, context_length: int,
                 empty: bool = False):
        """`empty`: MiniLM's weights to be filled by `load_minilm_weights`; its random
        initial values leave torch's random state as it was (transformers' `from_pretrained`
        builds on the meta device and draws none; the meta device itself would import
        torch._dynamo)."""
        super().__init__()
        self.config = config
        self.output_dim = embed_dim
        self.context_length = context_length
        self.vocab_size = config.vocab_size
        with torch.random.fork_rng(devices=[]) if empty else contextlib.nullcontext():
            self.transformer = MiniLM(config)
        self.pooler = MeanPooler()
        width = config.hidden_size
        if proj == "none":
            if width != embed_dim:
                raise ValueError(f"text_proj 'none' needs embed_dim {width}")
            self.proj = nn.Identity()
        elif proj == "linear":
            self.proj = nn.Linear(width, embed_dim, bias=False)
        elif proj == "mlp":
            hidden = (width + embed_dim) // 2
            self.proj = nn.Sequential(nn.Linear(width, hidden, bias=False), nn.GELU(),
                                      nn.Linear(hidden, embed_dim, bias=False))
        else:
            raise ValueError(f"unknown text projection {proj!r}")

    def forward(self, ids):
        mask = (ids != self.config.pad_token_id).long()
        return self.proj(self.pooler(self.transformer(input_ids=ids, attention_mask=mask), mask))


class CatalogClip(nn.Module):
    """The two towers and the temperature, with open_clip's `CustomTextCLIP` interface
    (`encode_image`, `encode_text`, `logit_scale`) and state-dict keys."""

    def __init__(self, visual: ImageTower, text: TextTower, init_logit_scale: float):
        super().__init__()
        self.visual = visual
        self.text = text
        self.context_length = text.context_length
        self.vocab_size = text.vocab_size
        self.logit_scale = nn.Parameter(torch.ones([]) * init_logit_scale)
        self.logit_bias = None

    def encode_image(self, image, normalize: bool = False):
        x = self.visual(image)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, text, normalize: bool = False):
        x = self.text(text)
        return F.normalize(x, dim=-1) if normalize else x

    def forward(self, image=None, text=None):
        img = self.encode_image(image, normalize=True) if image is not None else None
        txt = self.encode_text(text, normalize=True) if text is not None else None
        return img, txt, self.logit_scale.exp()


def minilm_config(folder: Path) -> SimpleNamespace:
    """The BERT settings the tower needs, from the model folder's `config.json`."""
    data = json.loads((Path(folder) / "config.json").read_text())
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps", "pad_token_id")
    missing = [k for k in keys if k not in data]
    if missing or data.get("hidden_act", "gelu") != "gelu" or \
            data.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"not a BERT config this tower reads (missing: {missing})")
    return SimpleNamespace(**{k: data[k] for k in keys}, model_type="bert",
                           hidden_dropout_prob=data.get("hidden_dropout_prob", 0.1),
                           attention_probs_dropout_prob=data.get(
                               "attention_probs_dropout_prob", 0.1))


def load_minilm_weights(transformer: MiniLM, folder: Path) -> None:
    """MiniLM's pretrained weights from the folder's `model.safetensors` (data only); tensors
    the tower does not have (the unused pooler, position ids) are left out."""
    from safetensors.torch import load_file

    source = load_file(str(Path(folder) / "model.safetensors"), device="cpu")
    target = transformer.state_dict()
    missing = [k for k in target if k not in source]
    if missing:
        raise KeyError(f"MiniLM weights lack {len(missing)} tensors, e.g. {missing[0]}")
    transformer.load_state_dict({k: source[k] for k in target}, strict=True)


def build_catalog_clip(cfg: Any, text_folder: Path, pretrained: bool) -> CatalogClip:
    """The model for a `towers.TowerConfig` (mean-pooled text only); MiniLM's weights loaded
    when `pretrained` (the image trunk's are loaded by `towers.load_lite0_imagenet`)."""
    if cfg.image_trunk != "tf_efficientnet_lite0" or cfg.text_pooler != "mean_pooler":
        raise ValueError("the plain-torch towers build EfficientNet-Lite0 + mean-pooled MiniLM")
    visual = ImageTower(cfg.embed_dim, cfg.image_proj, cfg.image_size)
    config = minilm_config(text_folder)
    text = TextTower(config, cfg.embed_dim, cfg.text_proj, cfg.context_length,
                     empty=pretrained)
    if pretrained:
        load_minilm_weights(text.transformer, text_folder)
    return CatalogClip(visual, text, float(math.log(1 / cfg.init_temperature)))
