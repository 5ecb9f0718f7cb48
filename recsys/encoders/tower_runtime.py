"""The frozen image trunk (EfficientNet-Lite0) run fast over many photos: OpenVINO when it pays.

Aligning a catalog runs the frozen trunk over every training photo and every phone-style view
(`training_data.cache_images`, `augment.view_features`): tens of thousands of rows on a large
catalog, nearly all of an alignment's time. OpenVINO's CPU runtime runs the same network with
bf16 matrix units (AMX / AVX-512 BF16) and fused depthwise convolutions, about 2x the photos per
CPU second of PyTorch's bf16 autocast on the project's 2-core box (`benchmarks/tower_runtime.py`
measures both side by side and checks that the features agree).

`frozen_trunk(visual, rows)` returns a callable `pixels batch -> pooled [n, 1280] features`:

* `RECSYS_TOWER_RUNTIME=torch` (or OpenVINO not installed, or a small job while the trunk was
  never converted on this machine: fewer than `MIN_ROWS` rows, where converting the network,
  3 s of CPU, would not pay back): PyTorch, `visual.trunk(x)`;
* `auto` (default) with at least `MIN_ROWS` rows, or with the trunk's converted model at hand
  (`at_hand`: compiled in this process, kept on this machine, or being converted by the
  first start's preload thread), or `openvino`: the trunk converted with
  `openvino.convert_model`, compiled for the CPU in the encoder's precision (bf16 where the
  CPU computes it natively, as PyTorch's autocast would: `clip_encoder.resolve_precision`,
  resolved by the caller), else fp32. If the conversion fails for any reason the PyTorch
  trunk is used (logged, never an error).

The converted model is kept per process for the trunk's weights (a digest of every tensor), so
the alignment's photos and views and the held-out-family test's alignments convert once; and
per machine, as OpenVINO's own model files (`.xml` + `.bin`, no code, no pickle) in
`config.machine_cache_dir()`, named by that digest and OpenVINO's version, so the next process
reads it in ~0.1 s instead of converting (3 s). A file that cannot be read is converted again.
`warm_imagenet_trunk`: the first start's preload thread (`preload.py`, between
`begin_warming` and `end_warming`) converts (or reads) the ImageNet trunk while the demo is
drawn, so the demo's few hundred photos also run on OpenVINO (about 10x the
photos per CPU second of PyTorch's trunk at that batch size on the 2-core box).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino")
# Below this many rows the PyTorch trunk runs (conversion + compilation cost a few seconds).
MIN_ROWS = 1500

KEPT_MODELS = 4       # converted trunks kept per machine (each ~14 MB); the oldest go first

_COMPILED: dict[tuple, Any] = {}
_LOCK = threading.Lock()
_REQUESTS = threading.local()    # per thread: an inference request per compiled trunk
_WARMING = threading.Event()     # set while the preload thread prepares the ImageNet trunk


def runtime_setting() -> str:
    value = (os.environ.get("RECSYS_TOWER_RUNTIME") or "auto").strip().lower()
    return value if value in RUNTIMES else "auto"


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def choose_runtime(rows: int, at_hand: bool = False) -> str:
    """'openvino' or 'torch' for a job of `rows` photos; `at_hand`: the trunk's converted
    model costs no conversion (`at_hand()`; see the module doc)."""
    setting = runtime_setting()
    if setting == "torch" or not openvino_available():
        return "torch"
    if setting == "openvino" or rows >= MIN_ROWS or (at_hand and rows >= 1):
        return "openvino"
    return "torch"


def frozen_trunk(visual, rows: int, precision: str = "fp32",
                 runtime: str | None = None) -> Callable[[Any], Any]:
    """`x (float NCHW torch tensor) -> pooled features (torch tensor [n, 1280])` for a job of
    `rows` photos: OpenVINO or PyTorch (see the module doc). `precision`: 'bf16' or 'fp32'
    (resolved: `clip_encoder.resolve_precision`); `runtime` forces one."""
    if runtime is None:
        runtime = choose_runtime(rows)
        if runtime == "torch" and choose_runtime(rows, at_hand=True) == "openvino" \
                and at_hand(visual.trunk, precision):
            runtime = "openvino"
    if runtime == "openvino":
        try:
            return OpenVinoTrunk(visual.trunk, precision)
        except Exception as exc:     # noqa: BLE001 - any failure: the PyTorch trunk still works
            log.warning("OpenVINO could not run the image tower (%s); using PyTorch", exc)
    return visual.trunk


def at_hand(trunk, precision: str = "fp32", image_size: int = 224) -> bool:
    """Whether `trunk` runs on OpenVINO without a conversion: compiled in this process (e.g.
    by the alignment just before an embedding), kept on this machine's disk, or being
    converted right now by the preload thread (then waiting for it is the shorter way). Then
    even a small job runs on OpenVINO, one uploaded photo included (3 ms instead of 36 ms on
    one thread of the 2-core box), so a catalog's vectors and its queries' come from the
    same runtime."""
    if runtime_setting() == "torch" or not openvino_available():
        return False
    if _WARMING.is_set():
        return True
    digest = _fingerprint(trunk)
    if (digest, _ov_precision(precision), image_size) in _COMPILED:
        return True
    path = _kept_model_path(digest, image_size)
    return path is not None and path.is_file() and path.with_suffix(".bin").is_file()


def _ov_precision(precision: str) -> str:
    """OpenVINO's name of a resolved precision (`clip_encoder.resolve_precision`)."""
    return "bf16" if precision == "bf16" else "f32"


def _fingerprint(trunk) -> str:
    """A digest of every tensor of `trunk` (weights and batch-norm statistics, ~14 MB for
    EfficientNet-Lite0: ~18 ms): two trunks that differ in any number never share a model.
    Kept on the module until one of its tensors is replaced or changed in place (torch counts
    in-place changes in each tensor's `_version`), so a query pays for it once."""
    import torch

    state = trunk.state_dict()
    stamp = tuple((t.data_ptr(), t._version) for t in state.values())
    kept = getattr(trunk, "_recsys_fingerprint", None)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in state.items():
            h.update(name.encode())
            h.update(str(tuple(tensor.shape)).encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()
    try:
        object.__setattr__(trunk, "_recsys_fingerprint", (stamp, digest))
    except (AttributeError, TypeError):
        pass
    return digest


def _kept_model_path(digest: str, image_size: int) -> Path | None:
    """This machine's file of the trunk converted for OpenVINO (`.xml`; its weights beside it
    in `.bin`), or None when the per-machine cache is off."""
    from recsys.core.config import machine_cache_dir

    folder = machine_cache_dir()
    if folder is None:
        return None
    try:
        version = openvino_module().get_version()
    except Exception:  # noqa: BLE001 - no OpenVINO: no file
        return None
    key = hashlib.sha256(f"{digest}|{image_size}|{version}".encode()).hexdigest()[:20]
    return folder / f"trunk-openvino-{key}.xml"


def _read_kept(path: Path | None):
    """The kept converted model, or None (absent, damaged, written by another version)."""
    if path is None or not path.is_file() or not path.with_suffix(".bin").is_file():
        return None
    try:
        return openvino_module().Core().read_model(str(path))
    except Exception as exc:  # noqa: BLE001 - converted again
        log.info("the kept OpenVINO trunk %s could not be read (%s); converting again",
                 path.name, exc)
        return None


def _keep(model, path: Path | None) -> None:
    """Write the converted model for the next process (both files replaced whole, the
    weights first); a folder that cannot be written is no error. Keeps `KEPT_MODELS`."""
    if path is None:
        return
    import shutil
    import tempfile

    ov = openvino_module()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".trunk-", dir=path.parent))
        try:
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            os.replace(tmp / "model.bin", path.with_suffix(".bin"))
            os.replace(tmp / "model.xml", path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        kept = sorted(path.parent.glob("trunk-openvino-*.xml"),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEPT_MODELS:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".bin").unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - the next process converts again
        log.info("could not keep the OpenVINO trunk in %s (%s)", path.parent, exc)


class OpenVinoTrunk:
    """The trunk converted to OpenVINO and compiled for this CPU; called like the module."""

    runtime = "openvino"

    def __init__(self, trunk, precision: str = "fp32", image_size: int = 224):
        self.precision = _ov_precision(precision)
        digest = _fingerprint(trunk)
        key = (digest, self.precision, image_size)
        with _LOCK:
            compiled = _COMPILED.get(key)
            if compiled is None:
                compiled = _compile(trunk, self.precision, image_size,
                                    _kept_model_path(digest, image_size))
                _COMPILED.clear()            # one trunk per process: the newest
                _COMPILED[key] = compiled
        self.compiled, self.key = compiled, key

    def __call__(self, x):
        import numpy as np
        import torch

        requests = getattr(_REQUESTS, "by_key", None)
        if requests is None:
            requests = _REQUESTS.by_key = {}
        request = requests.get(self.key)
        if request is None or request[0] is not self.compiled:
            request = requests[self.key] = (self.compiled,
                                            self.compiled.create_infer_request())
        request = request[1]
        arr = np.ascontiguousarray(x.detach().float().contiguous().numpy())
        out = request.infer({0: arr})
        return torch.from_numpy(np.array(out[0], dtype=np.float32, copy=True))


def _compile(trunk, precision: str, image_size: int, kept: Path | None = None):
    """`trunk` compiled for this CPU: read from `kept` (this machine's converted model) when
    it is there, else converted (and written to `kept`)."""
    import torch

    ov = openvino_module()

    model = _read_kept(kept)
    if model is None:
        model = _convert(trunk, image_size)
        _keep(model, kept)
    threads = max(1, torch.get_num_threads())
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
              "PERFORMANCE_HINT": "LATENCY"}
    return ov.Core().compile_model(model, "CPU", config)


def openvino_module():
    """`openvino`, imported with its usage telemetry off. When the `openvino-telemetry` package
    is installed (a dependency of `openvino`), importing openvino and converting a model each
    post usage events to Google Analytics, one forked process per event, unless the user ran
    its opt-out tool. Offline those processes wait on the network (they held a test run's
    pipes open for minutes); online they would report from a user's machine without asking.
    So the package is hidden from the import (`sys.modules` entry None: openvino then uses
    its own stand-in, `telemetry_stub`, as when the package is absent); if openvino was
    imported before, its modules are switched to that stand-in (`telemetry_off`)."""
    import sys

    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    telemetry_off()
    return openvino


def telemetry_off() -> None:
    """Put OpenVINO's telemetry stand-in in place of the real one in its conversion modules
    (see `openvino_module`)."""
    try:
        import openvino.tools.ovc.convert_impl as convert_impl
        import openvino.tools.ovc.telemetry_stub as stub
        import openvino.tools.ovc.telemetry_utils as telemetry_utils
        import openvino.tools.ovc.utils as ovc_utils
    except ImportError:                 # another layout: nothing known to switch off
        return
    for module in (telemetry_utils, convert_impl, ovc_utils):
        if getattr(module, "tm", stub) is not stub:
            module.tm = stub


def _convert(trunk, image_size: int):
    """`trunk` traced and converted to an OpenVINO model (3 s of CPU for EfficientNet-Lite0),
    with OpenVINO's telemetry off (`openvino_module`)."""
    import torch

    ov = openvino_module()
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
    return model


def warm_imagenet_trunk(precision: str) -> bool:
    """Compile the ImageNet EfficientNet-Lite0 trunk (what every alignment starts from) for
    OpenVINO in this process: read from this machine's kept model, or converted and kept.
    The trunk is built on the meta device and filled from the weight file, so no random
    number is drawn (an alignment seeded in another thread meanwhile draws the same ones).
    `precision`: resolved, as `frozen_trunk`'s. True when done; False when OpenVINO is off
    or missing or anything failed."""
    if runtime_setting() == "torch" or not openvino_available():
        return False
    try:
        import torch

        from .lite_towers import Lite0Trunk
        from .towers import load_lite0_imagenet

        with torch.device("meta"):
            trunk = Lite0Trunk()
        trunk = trunk.to_empty(device="cpu")
        for name, buf in trunk.named_buffers():      # num_batches_tracked: not in the file
            if name.endswith("num_batches_tracked"):
                buf.zero_()
        load_lite0_imagenet(trunk)
        trunk.eval()
        OpenVinoTrunk(trunk, precision)
        return True
    except Exception as exc:  # noqa: BLE001 - the alignment converts (or uses PyTorch) itself
        log.info("could not prepare the OpenVINO trunk ahead (%s)", exc)
        return False


def begin_warming() -> bool:
    """Say that a thread is about to run `warm_imagenet_trunk` (then `at_hand` says yes, so
    the alignment waits for it rather than converting or running PyTorch); False when OpenVINO
    is off or missing (nothing to warm). The thread calls `end_warming` when done."""
    if runtime_setting() == "torch" or not openvino_available():
        return False
    _WARMING.set()
    return True


def end_warming() -> None:
    _WARMING.clear()
