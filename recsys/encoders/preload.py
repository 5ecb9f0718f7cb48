"""Start loading the encoder's code, weights and per-machine caches early, in a background
thread.

The first start draws the demo catalog (PIL and numpy, which release the GIL for most of the
work) before it aligns the encoder. Meanwhile, on the other core: importing torch and the
tower code (3-4 s of CPU) and the optimiser's `torch._dynamo` (another 1.5 s); on a machine's
very first start also the text tower's vectors of the ImageNet class names and of the broad
type-name prompts (`conse`, `text_cache`: 2.5 s each) and the image trunk converted for
OpenVINO (`tower_runtime`: 3 s), all kept per machine; on later starts reading those back.
`start_preload` starts that; whatever it has not finished when the alignment needs it, the
alignment waits for (Python's import lock, `conse.kept_vectors`' lock, `tower_runtime`'s
compile lock) rather than doing it twice. A failure here is never reported: the real load
reports it with its own message.
"""
from __future__ import annotations

import threading
from types import SimpleNamespace

FIRST = ("torch", "recsys.encoders.lite_towers", "recsys.encoders.towers")
MODULES = ("torch._dynamo", "torch.optim", "safetensors.torch", "tokenizers",
           "recsys.encoders.hybrid", "recsys.encoders.checkpoints",
           "recsys.encoders.catalog_clip", "recsys.encoders.trainer",
           "scipy.stats")   # scipy.stats: the first evaluation's tests


def _imports(names: tuple[str, ...]) -> list[str]:
    import importlib

    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the real load reports it
            failed.append(name)
    return failed


def _pretrained_text_tower():
    """(model with `.text.transformer/.pooler/.config`, fingerprint) of the pretrained MiniLM,
    built on the meta device and filled from its weight file: no random number is drawn (an
    alignment seeded in another thread meanwhile draws the same ones as without this)."""
    import torch

    from . import conse
    from .lite_towers import MeanPooler, MiniLM, load_minilm_weights, minilm_config
    from .towers import minilm_path

    folder = minilm_path()
    config = minilm_config(folder)
    with torch.device("meta"):
        transformer = MiniLM(config)
    transformer = transformer.to_empty(device="cpu")
    load_minilm_weights(transformer, folder)
    transformer.eval()
    model = SimpleNamespace(text=SimpleNamespace(transformer=transformer, pooler=MeanPooler(),
                                                 config=config))
    return model, conse._text_fingerprint(model)


def warm_text_cache(model, key: tuple, which: str) -> bool:
    """The pretrained MiniLM's pooled vectors of `which` texts into this machine's cache
    (`config.machine_cache_dir()`), unless they are there already (`conse.kept_vectors`: a
    thread needing them meanwhile waits for them rather than computing them twice):
    "names", the 1,000 ImageNet class names of every alignment's ConSE head
    (`conse.build_conse_head`), or "prompts", the broad type-name prompts of every
    embedding's "no close match" names (`text_cache`). About 2.5 s of CPU each on a
    machine's very first start, moved off the set-up's path. True when done."""
    try:
        from . import conse, text_cache
        from .towers import text_tokenizer

        if which == "names":
            labels, file_key = list(conse.imagenet_class_names()), key
        else:
            labels, file_key = text_cache.broad_prompts(), ("pooled-prompts",) + key
        conse.kept_vectors(file_key, labels,
                           lambda: conse.minilm_vectors(model, text_tokenizer(64), labels))
        return True
    except Exception:  # noqa: BLE001 - the set-up computes them itself
        return False


def _precision() -> str:
    """The encoders' precision (`clip_encoder.resolve_precision`), "fp32" if undecidable."""
    try:
        from .clip_encoder import resolve_precision

        return resolve_precision(None)
    except Exception:  # noqa: BLE001 - e.g. a wrong $RECSYS_ENCODER_PRECISION: said later
        return "fp32"


def preload(warm: bool = False) -> list[str]:
    """In the order the alignment needs them: import torch and the towers, the ConSE class
    names' text vectors (`warm_text_cache`), then (with `warm`) the ImageNet image trunk
    compiled for OpenVINO (`tower_runtime.warm_imagenet_trunk`: read from this machine's kept
    model, or converted once and kept), then the training code's imports (`MODULES`), and last
    the type-name prompts' text vectors (needed at the end of the embedding). Returns what
    failed (nothing, normally)."""
    from . import tower_runtime

    model = key = None
    try:
        failed = _imports(FIRST)
        try:
            model, key = _pretrained_text_tower()
        except Exception:  # noqa: BLE001 - the alignment loads MiniLM itself
            failed.append("text tower")
        if model is not None and not warm_text_cache(model, key, "names"):
            failed.append("class names")
        if warm and not tower_runtime.warm_imagenet_trunk(_precision()):
            failed.append("openvino trunk")
    finally:
        if warm:
            tower_runtime.end_warming()
    failed += _imports(MODULES)
    if model is not None and not warm_text_cache(model, key, "prompts"):
        failed.append("type-name prompts")
    return failed


def start_preload() -> threading.Thread:
    """`preload` in a daemon thread, started; join it to wait for it. The image trunk is
    compiled for OpenVINO there too, unless OpenVINO is off or missing."""
    from .tower_runtime import begin_warming

    thread = threading.Thread(target=preload, args=(begin_warming(),), name="encoder-preload",
                              daemon=True)
    thread.start()
    return thread
