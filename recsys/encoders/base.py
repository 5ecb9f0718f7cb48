"""The encoder interface and registry.

An `Encoder` turns product photos and texts into L2-normalised vectors of one shared space
(`dim` floats), identified by `name` and `version` (the pair the embeddings table is keyed by).
`get_encoder(spec)` builds one from a spec string:

- ``catalog-clip`` / ``catalog-clip@VERSION``: the CLIP aligned on a catalog (the default;
  needs the store to find the checkpoint, and the dataset for "latest"),
- ``frozen``: the same pretrained towers without alignment (a baseline),
- ``openclip:ARCH/PRETRAINED`` or ``openclip:ARCH/path/to/open_clip_pytorch_model.bin``:
  a pretrained OpenCLIP model (``openclip:ARCH@VERSION`` reloads one recorded in the store).

Kinds register a factory with `register_encoder_kind`; nothing heavy is imported or loaded
until a factory runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

import numpy as np

from ..errors import RecsysError
from ..progress import ProgressCallback

if TYPE_CHECKING:
    from PIL import Image

    from ..images import ImageSource
    from ..store import Store

    ImageInput = Union[ImageSource, Image.Image]
else:
    ImageInput = Any

DEFAULT_ENCODER = "catalog-clip"


class EncoderError(RecsysError):
    """An encoder cannot be found, built or loaded as asked."""


class MissingWeightsError(EncoderError):
    """Pretrained weights are not on this machine; the message says how to get them."""


class NoCheckpointError(EncoderError):
    """No aligned catalog-clip checkpoint exists yet for a dataset."""


class Encoder(ABC):
    """Photos and texts -> L2-normalised float32 vectors in one space of `dim` dimensions."""

    name: str
    version: str
    dim: int
    kind: str = "encoder"

    @property
    def spec(self) -> str:
        """`name@version`: the string that reloads exactly this encoder via `get_encoder`."""
        return f"{self.name}@{self.version}"

    @abstractmethod
    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 64,
                      progress: ProgressCallback | None = None,
                      failures: dict[int, str] | None = None) -> np.ndarray:
        """Vectors of photos (paths, bytes, file objects or PIL images), one row each.

        A bad photo raises `ImageError`, unless `failures` is given: then its row is zeros and
        `failures[index]` says what is wrong with it.
        """

    @abstractmethod
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256,
                     progress: ProgressCallback | None = None) -> np.ndarray:
        """Vectors of texts, one row each."""

    def encode_image(self, image: ImageInput) -> np.ndarray:
        """One photo's vector (an uploaded file, for instance); raises `ImageError` if bad."""
        return self.encode_images([image], batch_size=1)[0]

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text], batch_size=1)[0]

    def info(self) -> dict[str, Any]:
        """Plain-data description (for the registry, the CLI and the app)."""
        return {"name": self.name, "version": self.version, "spec": self.spec, "dim": self.dim,
                "kind": self.kind}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} dim={self.dim}>"


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec: kind (`catalog-clip`, `frozen`, `openclip`), argument, version."""

    kind: str
    argument: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        text = self.kind + (f":{self.argument}" if self.argument else "")
        return text + (f"@{self.version}" if self.version else "")


EncoderFactory = Callable[[EncoderSpec, "Store | None", "str | None"], Encoder]
_KINDS: dict[str, EncoderFactory] = {}


def register_encoder_kind(kind: str, factory: EncoderFactory) -> None:
    """Make `get_encoder` accept specs of `kind` (`kind`, `kind@VERSION` or `kind:ARG`)."""
    _KINDS[kind] = factory


def encoder_kinds() -> list[str]:
    _register_builtin_kinds()
    return sorted(_KINDS)


def parse_spec(spec: str | None) -> EncoderSpec:
    """`catalog-clip@v1` -> EncoderSpec("catalog-clip", None, "v1");
    `openclip:ViT-B-32/laion2b_s34b_b79k` -> EncoderSpec("openclip", "ViT-B-32/laion2b_s34b_b79k")."""
    _register_builtin_kinds()
    text = (spec or DEFAULT_ENCODER).strip()
    kind, sep, rest = text.partition(":")
    argument = None
    version = None
    if sep:
        # openclip:ARCH/TAG_OR_PATH or openclip:ARCH@VERSION (a path may itself hold an '@')
        head, at, tail = rest.partition("@")
        if at and "/" not in head and "/" not in tail and "\\" not in tail:
            argument, version = head, tail
        else:
            argument = rest
    else:
        kind, at, version = text.partition("@")
        if at and not version.strip():
            raise EncoderError(f"Incomplete encoder spec {text!r}: give a version after '@'.")
        version = version.strip() or None
    kind = kind.strip()
    if kind not in _KINDS:
        raise EncoderError(f"Unknown encoder {text!r}. Use catalog-clip, catalog-clip@VERSION, "
                           "frozen, or openclip:ARCH/PRETRAINED_OR_CHECKPOINT_PATH "
                           "(for example openclip:ViT-B-32/laion2b_s34b_b79k).")
    if (argument is not None and not argument.strip()) or (version is not None and not version):
        raise EncoderError(f"Incomplete encoder spec {text!r}.")
    return EncoderSpec(kind, argument, version)


def get_encoder(spec: str | EncoderSpec | None = None, store: "Store | None" = None,
                dataset: str | None = None) -> Encoder:
    """Build (load) the encoder a spec names; see the module docstring for the spec syntax.

    Loading reads weights from disk, so callers that encode often (the app) should keep the
    result, e.g. in `st.cache_resource`.
    """
    parsed = spec if isinstance(spec, EncoderSpec) else parse_spec(spec)
    return _KINDS[parsed.kind](parsed, store, dataset)


def _catalog_clip_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .catalog_clip import load_catalog_clip
    if spec.argument:
        raise EncoderError(f"catalog-clip takes a version (catalog-clip@VERSION), not {spec}.")
    return load_catalog_clip(store, dataset, spec.version)


def _frozen_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .catalog_clip import frozen_encoder
    return frozen_encoder(spec.version)


def _openclip_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .openclip_pretrained import load_openclip
    return load_openclip(spec, store)


def _register_builtin_kinds() -> None:
    if "catalog-clip" not in _KINDS:
        register_encoder_kind("catalog-clip", _catalog_clip_factory)
        register_encoder_kind("frozen", _frozen_factory)
        register_encoder_kind("openclip", _openclip_factory)
