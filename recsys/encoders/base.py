"""The encoder interface: `Encoder`, its parsed spec and its errors.

An `Encoder` turns product photos and texts into L2-normalised vectors of one shared space
(`dim` floats), identified by `name` and `version` (the pair the embeddings table is keyed by).
The concrete encoders import this module; building one from a spec string is the registry's
job (`registry.get_encoder`), which keeps this module free of imports of its subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback

if TYPE_CHECKING:
    from PIL import Image

    from recsys.data.images import ImageSource

    ImageInput = Union[ImageSource, Image.Image]
else:
    ImageInput = Any

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
