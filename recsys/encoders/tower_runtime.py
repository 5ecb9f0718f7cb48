"""The frozen image trunk (EfficientNet-Lite0) run fast over many photos: OpenVINO when it pays.

Aligning a catalog runs the frozen trunk over every training photo and every phone-style view
(`training_data.cache_images`, `augment.view_features`): tens of thousands of rows on a large
catalog, nearly all of an alignment's time. OpenVINO's CPU runtime runs the same network with
bf16 matrix units (AMX / AVX-512 BF16) and fused depthwise convolutions, about 2x the photos per
CPU second of PyTorch's bf16 autocast on the project's 2-core box (`benchmarks/tower_runtime.py`
measures both side by side and checks that the features agree).

`frozen_trunk(visual, rows)` returns a callable `pixels batch -> pooled [n, 1280] features`:

* `RECSYS_TOWER_RUNTIME=torch` (or OpenVINO not installed, or fewer than `MIN_ROWS` rows, where
  converting the network, a few seconds, would not pay back): PyTorch, `visual.trunk(x)`;
* `auto` (default) with at least `MIN_ROWS` rows, or `openvino`: the trunk converted in memory
  with `openvino.convert_model` (no file is written or read), compiled for the CPU in the
  encoder's precision (bf16 where the CPU computes it natively, as PyTorch's autocast would:
  `clip_encoder.resolve_precision`, resolved by the caller), else fp32.
  If the conversion fails for any reason the PyTorch trunk is used (logged, never an error).

The converted model is kept per process for the trunk's weights (a fingerprint of them), so the
alignment's photos and views and the held-out-family test's alignments convert once.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any, Callable

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino")
# Below this many rows the PyTorch trunk runs (conversion + compilation cost a few seconds).
MIN_ROWS = 1500

_COMPILED: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def runtime_setting() -> str:
    value = (os.environ.get("RECSYS_TOWER_RUNTIME") or "auto").strip().lower()
    return value if value in RUNTIMES else "auto"


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def choose_runtime(rows: int) -> str:
    """'openvino' or 'torch' for a job of `rows` photos (see the module doc)."""
    setting = runtime_setting()
    if setting == "torch" or not openvino_available():
        return "torch"
    if setting == "openvino" or rows >= MIN_ROWS:
        return "openvino"
    return "torch"


def frozen_trunk(visual, rows: int, precision: str = "fp32",
                 runtime: str | None = None) -> Callable[[Any], Any]:
    """`x (float NCHW torch tensor) -> pooled features (torch tensor [n, 1280])` for a job of
    `rows` photos: OpenVINO or PyTorch (see the module doc). `precision`: 'bf16' or 'fp32'
    (resolved: `clip_encoder.resolve_precision`); `runtime` forces one."""
    runtime = runtime or choose_runtime(rows)
    if runtime == "openvino":
        try:
            return OpenVinoTrunk(visual.trunk, precision)
        except Exception as exc:     # noqa: BLE001 - any failure: the PyTorch trunk still works
            log.warning("OpenVINO could not run the image tower (%s); using PyTorch", exc)
    return visual.trunk


def converted_here(trunk, precision: str = "fp32", image_size: int = 224) -> bool:
    """Whether this process already converted `trunk` (e.g. the alignment just before an
    embedding): then even a small batch job runs on OpenVINO at no extra cost."""
    if not _COMPILED or runtime_setting() == "torch":
        return False
    return (_fingerprint(trunk), _ov_precision(precision), image_size) in _COMPILED


def _ov_precision(precision: str) -> str:
    """OpenVINO's name of a resolved precision (`clip_encoder.resolve_precision`)."""
    return "bf16" if precision == "bf16" else "f32"


def _fingerprint(trunk) -> tuple:
    import torch

    with torch.no_grad():
        return tuple(round(float(p.double().sum()), 6) for p in list(trunk.parameters())[::16])


class OpenVinoTrunk:
    """The trunk converted to OpenVINO and compiled for this CPU; called like the module."""

    runtime = "openvino"

    def __init__(self, trunk, precision: str = "fp32", image_size: int = 224):
        self.precision = _ov_precision(precision)
        key = (_fingerprint(trunk), self.precision, image_size)
        with _LOCK:
            compiled = _COMPILED.get(key)
            if compiled is None:
                compiled = _compile(trunk, self.precision, image_size)
                _COMPILED.clear()            # one trunk per process: the newest
                _COMPILED[key] = compiled
        self.compiled = compiled
        self._local = threading.local()

    def __call__(self, x):
        import numpy as np
        import torch

        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        arr = np.ascontiguousarray(x.detach().float().contiguous().numpy())
        out = request.infer({0: arr})
        return torch.from_numpy(np.array(out[0], dtype=np.float32, copy=True))


def _compile(trunk, precision: str, image_size: int):
    import openvino as ov
    import torch

    was_training = trunk.training
    trunk.eval()
    try:
        # the trace's warnings (the padding of "same" convolutions read from the input's
        # shape as constants; torch.jit.trace deprecated) say nothing to a user: the input's
        # height and width are fixed here, so those constants are right
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            example = torch.zeros((1, 3, image_size, image_size))
            model = ov.convert_model(trunk, example_input=example,
                                     input=[(-1, 3, image_size, image_size)])
    finally:
        trunk.train(was_training)
    threads = max(1, torch.get_num_threads())
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
              "PERFORMANCE_HINT": "LATENCY"}
    return ov.Core().compile_model(model, "CPU", config)
