"""`ClipEncoder`: any open_clip model behind the `Encoder` interface, tuned for a 2-core CPU.

Photos are decoded in a thread pool while the model runs on the previous batch (PIL releases
the GIL), in JPEG draft mode when the photo is larger than needed, padded to a white square
(product shots sit on white; cropping would cut off shoes and bags) and resized. The model runs
under `torch.inference_mode`, in channels-last layout, with bfloat16 autocast where the CPU has
native bf16 (AVX512-BF16 / AMX: about twice as fast as fp32 for EfficientNet-Lite0).
Texts are sorted by length so each batch is padded only to its own longest text.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from recsys.core.progress import ProgressCallback, report
from recsys.core.threads import thread_count, threads_for
from recsys.core.threads import torch_threads as _torch_threads
from recsys.data.images import ImageError, _to_rgb, load_image

from .base import Encoder, EncoderError, ImageInput

PRECISIONS = ("auto", "fp32", "bf16")


def encoder_threads() -> int:
    """Torch threads for encoding and alignment: $RECSYS_ENCODER_THREADS, else the idle cores.

    Measured on the 2-core machine (Myntra JPEGs): idle, 2 threads 104 photos/s and 531
    texts/s vs 65 and 335 with one; busy (load ~6), 1 thread 54-63 photos/s vs 33-35 with two.
    """
    return thread_count("RECSYS_ENCODER_THREADS")


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run a block with `n` intra-op torch threads (default `encoder_threads()`)."""
    with _torch_threads(n or encoder_threads()):
        yield


def request_threads(n_items: int) -> int:
    """Threads for encoding `n_items` now: 1 for a query (one photo, a few texts), else
    $RECSYS_ENCODER_THREADS or the cores idle at this moment (`recsys.core.threads.threads_for`)."""
    return threads_for(n_items, "RECSYS_ENCODER_THREADS")


def resolve_precision(precision: str | None = None) -> str:
    """`fp32` or `bf16`: `auto` (default, or $RECSYS_ENCODER_PRECISION) picks bf16 when the CPU
    computes it natively."""
    precision = (precision or os.environ.get("RECSYS_ENCODER_PRECISION") or "auto").lower()
    if precision not in PRECISIONS:
        raise EncoderError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    if precision != "auto":
        return precision
    import torch
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def prepare_image(source: ImageInput, size: int, pad_to_square: bool = True) -> np.ndarray:
    """Decode (safely, via `load_image`) and resize a photo to a `size`x`size` uint8 RGB array."""
    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        img = _to_rgb(ImageOps.exif_transpose(source))
    else:
        img = load_image(source, target_size=size)
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError("The image has no pixels.")
    if pad_to_square and w != h:
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC, reducing_gap=3.0 if min(w, h) > 2 * size
                         else None)
    return np.asarray(img, dtype=np.uint8)


def normalise_pixels(arrays: Sequence[np.ndarray], mean: Sequence[float],
                     std: Sequence[float]):
    """uint8 HxWx3 arrays -> the normalised float NCHW (channels-last) batch a tower takes."""
    import torch

    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return ((x - m) / s).contiguous(memory_format=torch.channels_last)


class ClipEncoder(Encoder):
    """An open_clip model (image tower, text tower) with its preprocessing and tokenizer."""

    def __init__(self, model: Any, tokenize: Callable[[list[str]], Any], *, name: str,
                 version: str, dim: int, kind: str, image_size: int = 224,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 pad_to_square: bool = True, precision: str | None = None,
                 meta: dict[str, Any] | None = None):
        import torch

        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.visual.to(memory_format=torch.channels_last)
        self.tokenize = tokenize
        self.name, self.version, self.dim, self.kind = name, version, int(dim), kind
        self.image_size = int(image_size)
        self.pad_to_square = pad_to_square
        self.precision = resolve_precision(precision)
        self.meta = dict(meta or {})
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- images -------------------------------------------------------------------------------
    def prepare_image(self, source: ImageInput) -> np.ndarray:
        return prepare_image(source, self.image_size, self.pad_to_square)

    def pixels(self, arrays: Sequence[np.ndarray]):
        """uint8 HxWx3 arrays -> the normalised float batch the image tower takes."""
        import torch

        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)

    def encode_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Vectors of already prepared photos (uint8 HxWx3 at `image_size`)."""
        import torch

        with torch.inference_mode(), self._autocast():
            out = self.model.encode_image(self.pixels(arrays))
        return _normalise(out)

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 64,
                      progress: ProgressCallback | None = None,
                      failures: dict[int, str] | None = None) -> np.ndarray:
        with torch_threads(request_threads(len(images))):
            return self._encode_images(images, batch_size, progress, failures)

    def _encode_images(self, images: Sequence[ImageInput], batch_size: int,
                       progress: ProgressCallback | None,
                       failures: dict[int, str] | None) -> np.ndarray:
        n = len(images)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        batch_size = max(1, int(batch_size))
        fast = self._fast_trunk(n)

        def prep(i: int) -> tuple[int, np.ndarray | None, str | None]:
            try:
                return i, self.prepare_image(images[i]), None
            except ImageError as exc:
                if failures is None:
                    if n > 1:
                        raise ImageError(f"image {i + 1} of {n}: {exc}") from exc
                    raise
                return i, None, str(exc)

        if n == 1:  # one upload: no thread hand-off, lowest latency
            _, arr, err = prep(0)
            if arr is None:
                failures[0] = err  # type: ignore[index]
            else:
                out[0] = (self.encode_arrays([arr]) if fast is None
                          else self.encode_image_features(fast(self.pixels([arr]))))[0]
            return out
        starts = list(range(0, n, batch_size))
        pool = self._executor()
        pending: list[Future] = [pool.submit(prep, i) for i in range(0, min(batch_size, n))]
        for b, start in enumerate(starts):
            results = [f.result() for f in pending]
            if b + 1 < len(starts):  # decode the next batch while the model runs on this one
                nxt = starts[b + 1]
                pending = [pool.submit(prep, i) for i in range(nxt, min(nxt + batch_size, n))]
            ok = [(i, a) for i, a, _ in results if a is not None]
            for i, _, err in results:
                if err is not None:
                    failures[i] = err  # type: ignore[index]
            if ok:
                arrays = [a for _, a in ok]
                out[[i for i, _ in ok]] = (
                    self.encode_arrays(arrays) if fast is None
                    else self.encode_image_features(fast(self.pixels(arrays))))
            done = min(start + batch_size, n)
            report(progress, done, n, f"{done:,}/{n:,} photos", stage="images")
        return out

    def _fast_trunk(self, n: int):
        """For a job of `n` photos: the image trunk on a faster runtime
        (`tower_runtime.frozen_trunk`, then only the head runs in PyTorch), or None (the whole
        tower in PyTorch: small jobs while the trunk's converted model is not at hand, towers
        without a trunk + head)."""
        from .tower_runtime import at_hand, choose_runtime, frozen_trunk

        visual = getattr(self.model, "visual", None)
        if n < 1 or not (hasattr(visual, "trunk") and hasattr(visual, "head")):
            return None
        if choose_runtime(n) != "openvino" and not at_hand(
                visual.trunk, self.precision, self.image_size):
            return None
        trunk = frozen_trunk(visual, n, self.precision, runtime="openvino")
        return None if trunk is visual.trunk else trunk

    def encode_image_features(self, features) -> np.ndarray:
        """Vectors of photos from the image tower's pooled trunk features (what the tower
        computes before its head, e.g. cached by an alignment: `features.TowerOutputs`): only
        the head runs. Equal to `encode_images` on the same photos (within bf16 rounding)."""
        import torch

        with torch_threads(request_threads(len(features))), torch.inference_mode(), \
                self._autocast():
            out = self.model.visual.head(torch.as_tensor(features).float())
        return _normalise(out)

    # -- texts --------------------------------------------------------------------------------
    def encode_text_features(self, features) -> np.ndarray:
        """Vectors of texts from the text tower's pooled features (before its projection):
        only the projection runs."""
        import torch

        with torch.inference_mode(), self._autocast():
            out = self.model.text.proj(torch.as_tensor(features).float())
        return _normalise(out)

    def encode_tokens(self, tokens) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            out = self.model.encode_text(tokens)
        return _normalise(out)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256,
                     progress: ProgressCallback | None = None) -> np.ndarray:
        with torch_threads(request_threads(len(texts))):
            return self._encode_texts(texts, batch_size, progress)

    def _encode_texts(self, texts: Sequence[str], batch_size: int,
                      progress: ProgressCallback | None) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        texts = [str(t) if t is not None else "" for t in texts]
        order = np.argsort([len(t) for t in texts], kind="stable")
        batch_size = max(1, int(batch_size))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.encode_tokens(self.tokenize([texts[i] for i in idx]))
            done = min(start + batch_size, n)
            report(progress, done, n, f"{done:,}/{n:,} texts", stage="texts")
        return out

    # -- helpers ------------------------------------------------------------------------------
    def _autocast(self):
        import contextlib

        import torch
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
            return self._pool

    def info(self) -> dict[str, Any]:
        return {**super().info(), "image_size": self.image_size, "precision": self.precision,
                **self.meta}


def _normalise(features) -> np.ndarray:
    x = features.float().numpy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
