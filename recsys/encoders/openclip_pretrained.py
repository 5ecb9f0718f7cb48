"""Pretrained OpenCLIP models: `openclip:ARCH/PRETRAINED` or `openclip:ARCH/path/to/checkpoint`.

This is the real loading code for a user with internet (open_clip downloads the weights from
the Hugging Face hub into its cache) or with a downloaded file. Before anything heavy is
imported, `resolve` checks what is available: a missing file, or hub weights that are neither
cached nor downloadable (HF_HUB_OFFLINE=1, or no connection to the hub within a second), fail
at once with a message that says what to download and where to put it.

A local checkpoint may be any file open_clip's `create_model(arch, pretrained=PATH)` reads
(`open_clip_pytorch_model.bin`, `open_clip_model.safetensors`, a training checkpoint with a
`state_dict`). If ARCH is not one of open_clip's built-in model names, the model config is read
from `open_clip_config.json` beside the file (the layout of OpenCLIP repositories on the hub).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .base import EncoderError, EncoderSpec, MissingWeightsError

HUB_HOST = "huggingface.co"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt")
EXAMPLE = "openclip:ViT-B-32/laion2b_s34b_b79k"


@dataclass(frozen=True)
class OpenClipSource:
    """Where an OpenCLIP model's weights come from: a local file or a pretrained tag."""

    arch: str
    tag: str | None = None
    path: Path | None = None
    hub_repo: str | None = None      # e.g. laion/CLIP-ViT-B-32-laion2B-s34B-b79K
    cached_file: Path | None = None  # the weights already in the local hub cache

    @property
    def name(self) -> str:
        return f"openclip:{self.arch}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    """True if the hub must not (HF_HUB_OFFLINE) or cannot (no connection in 1 s) be reached."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=1.0):
            return False
    except OSError:
        return True


def _looks_like_path(text: str) -> bool:
    return ("/" in text or "\\" in text or text.startswith(("~", ".")) or
            text.lower().endswith(CHECKPOINT_SUFFIXES))


@lru_cache(maxsize=1)
def _pretrained_table() -> dict[str, dict[str, str]]:
    """{arch: {tag: hub repo}} read from open_clip's pretrained.py without importing open_clip
    (which imports torch: seconds). Empty if the file cannot be parsed; the slow path then
    reports problems instead."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError("open_clip is not installed: `pip install open_clip_torch`.")
    source = Path(list(spec.submodule_search_locations)[0]) / "pretrained.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return {}
    variables: dict[str, dict[str, str]] = {}
    table: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or \
                not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        value = node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "dict":
            tags = {}
            for kw in value.keywords:
                if kw.arg and isinstance(kw.value, ast.Call):
                    hub = next((k.value.value for k in kw.value.keywords if k.arg == "hf_hub"
                                and isinstance(k.value, ast.Constant)), "")
                    tags[kw.arg] = str(hub)
            variables[name] = tags
        elif name == "_PRETRAINED" and isinstance(value, ast.Dict):
            for k, v in zip(value.keys, value.values):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Name):
                    table[str(k.value)] = v.id
    return {arch: variables.get(var, {}) for arch, var in table.items()}


def _hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home) / "hub"


def _cached_weights(repo: str) -> Path | None:
    """The weights of `repo` in the local Hugging Face cache, if downloaded before."""
    folder = _hub_cache_dir() / ("models--" + repo.replace("/", "--")) / "snapshots"
    if not folder.is_dir():
        return None
    for snapshot in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        for filename in WEIGHT_FILES:
            if (snapshot / filename).is_file():
                return snapshot / filename
    return None


def resolve(spec: EncoderSpec, store=None) -> OpenClipSource:
    """Check the spec against what is on this machine, fast (no torch import)."""
    argument = (spec.argument or "").strip()
    if spec.version and "/" not in argument:
        return _registered(argument, spec.version, store)
    arch, sep, pretrained = argument.partition("/")
    arch, pretrained = arch.strip(), pretrained.strip()
    if not sep or not arch or not pretrained:
        raise EncoderError(f"Expected openclip:ARCH/PRETRAINED or openclip:ARCH/path/to/"
                           f"checkpoint, e.g. {EXAMPLE}; got openclip:{argument}.")
    table = dict(_pretrained_table())
    if arch.endswith("-quickgelu") and arch not in table:   # open_clip builds these at import
        table[arch] = table.get(arch[:-len("-quickgelu")], {})
    if _looks_like_path(pretrained) and pretrained not in table.get(arch, {}):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise MissingWeightsError(
                f"OpenCLIP checkpoint not found: {path}. Download the weights of {arch} (for "
                f"example open_clip_pytorch_model.bin from its Hugging Face page) and give "
                f"the file's path: --encoder openclip:{arch}/path/to/open_clip_pytorch_model.bin")
        return OpenClipSource(arch, path=path.resolve())
    if table and arch not in table:
        close = [a for a in table if a.lower().replace("-", "") == arch.lower().replace("-", "")]
        hint = f" Did you mean {close[0]}?" if close else ""
        raise EncoderError(f"Unknown OpenCLIP architecture {arch!r}.{hint} Examples: "
                           f"{', '.join(list(table)[:8])}, ... (see open_clip.list_models()). "
                           "For a checkpoint of another architecture put its "
                           "open_clip_config.json beside the file and give the file's path.")
    tags = table.get(arch, {})
    if tags and pretrained not in tags:
        raise EncoderError(f"{arch} has no pretrained weights named {pretrained!r}; known: "
                           f"{', '.join(tags)}.")
    hub = tags.get(pretrained, "").rstrip("/")
    repo = hub.rsplit("/", 1)[0] if hub.count("/") > 1 else hub
    cached = _cached_weights(repo) if repo else None
    if cached is None and is_offline():
        where = f"https://{HUB_HOST}/{repo}" if repo else "its Hugging Face or GitHub page"
        raise MissingWeightsError(
            f"The OpenCLIP weights {arch}/{pretrained} are not on this machine and cannot be "
            f"downloaded here (offline). Download {WEIGHT_FILES[1]} (or {WEIGHT_FILES[0]}) from "
            f"{where} on a machine with internet, copy it to this machine (e.g. "
            f"data/models/{arch}/) and use --encoder openclip:{arch}/data/models/{arch}/"
            f"{WEIGHT_FILES[1]}. The default encoder, catalog-clip, needs no download.")
    return OpenClipSource(arch, tag=pretrained, hub_repo=repo or None, cached_file=cached)


def _registered(arch: str, version: str, store) -> OpenClipSource:
    """`openclip:ARCH@VERSION`: a model used before, found in the encoder registry."""
    if version.startswith("file-"):
        if store is None:
            raise EncoderError(f"openclip:{arch}@{version} names a checkpoint file recorded in "
                               "the database; pass the store, or give the file's path.")
        rows = store.encoders()
        rows = rows[(rows["name"] == f"openclip:{arch}") & (rows["version"] == version)]
        if rows.empty or not rows.iloc[0]["path"]:
            raise EncoderError(f"openclip:{arch}@{version} is not in the encoder registry; give "
                               f"the checkpoint path: openclip:{arch}/path/to/checkpoint.")
        return resolve(EncoderSpec("openclip", f"{arch}/{rows.iloc[0]['path']}"), store)
    return resolve(EncoderSpec("openclip", f"{arch}/{version}"), store)


def file_version(path: Path) -> str:
    """`file-<sha1 of the first and last MB + size>`: identifies a checkpoint file cheaply."""
    h = hashlib.sha1()
    size = path.stat().st_size
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    h.update(str(size).encode())
    return f"file-{h.hexdigest()[:12]}"


def load_openclip(spec: EncoderSpec, store=None, precision: str | None = None):
    """Build the `ClipEncoder` of an OpenCLIP spec (see the module docstring)."""
    source = resolve(spec, store)
    import open_clip

    from .clip_encoder import ClipEncoder

    arch = source.arch
    if arch not in open_clip.list_models():
        config = source.path.parent / "open_clip_config.json" if source.path else None
        if config is None or not config.is_file():
            raise EncoderError(f"Unknown OpenCLIP architecture {arch!r} and no "
                               "open_clip_config.json beside the checkpoint.")
        _register_config(arch, config)
    pretrained = str(source.path or source.cached_file or source.tag)
    try:
        model = open_clip.create_model(arch, pretrained=pretrained, device="cpu")
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise EncoderError(f"Cannot load OpenCLIP {arch} from {pretrained}: {exc}") from exc
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as exc:  # HF tokenizers of some archs need the hub
        raise MissingWeightsError(f"The tokenizer of {arch} cannot be loaded offline: {exc}") \
            from exc
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = pp.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = pp.get("mean") or open_clip.OPENAI_DATASET_MEAN
    std = pp.get("std") or open_clip.OPENAI_DATASET_STD
    dim = open_clip.get_model_config(arch)["embed_dim"]
    version = file_version(source.path) if source.path else str(source.tag)
    meta = {"arch": arch, "pretrained": source.tag, "path": str(source.path) if source.path
            else None, "hub_repo": source.hub_repo}
    return ClipEncoder(model, lambda texts: tokenizer(list(texts)), name=source.name,
                       version=version, dim=dim, kind="openclip", image_size=int(size), mean=mean,
                       std=std, precision=precision, meta=meta)


def _register_config(arch: str, config: Path) -> None:
    import open_clip
    from open_clip.factory import _MODEL_CONFIGS

    data = json.loads(config.read_text())
    model_cfg = data.get("model_cfg", data)
    if not all(k in model_cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise EncoderError(f"{config} is not an OpenCLIP model config (needs embed_dim, "
                           "vision_cfg, text_cfg).")
    _MODEL_CONFIGS[arch] = model_cfg
    assert arch in open_clip.list_models()
