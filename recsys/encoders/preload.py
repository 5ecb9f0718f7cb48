"""Start loading the encoder's code and weights early, in a background thread.

The first start draws the demo catalog (PIL and numpy, which release the GIL for most of the
work) before it aligns the encoder; importing torch and the tower code (3-4 s of CPU), the
optimiser's `torch._dynamo` (another 3-4 s, imported by any torch optimiser) and reading the
two towers' weight files from disk can happen meanwhile on the other core. `start_preload`
starts that; whatever it has not finished when the alignment needs it, the alignment waits
for (Python's import lock) or does itself. A failure here is never reported: the real load
reports it with its own message.
"""

from __future__ import annotations

import threading

MODULES = ("torch", "torch._dynamo", "torch.optim", "safetensors.torch", "tokenizers",
           "recsys.encoders.lite_towers", "recsys.encoders.hybrid",
           "recsys.encoders.checkpoints", "recsys.encoders.catalog_clip",
           "recsys.encoders.trainer", "scipy.stats")   # scipy.stats: the first evaluation's tests


def preload() -> list[str]:
    """Import `MODULES` and read the towers' weight files once (into the OS file cache);
    returns what failed (nothing, normally)."""
    import importlib

    failed = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the real load reports it
            failed.append(name)
    try:
        from .towers import lite0_weights_path, minilm_path

        for path in (lite0_weights_path(), minilm_path() / "model.safetensors"):
            with open(path, "rb") as fh:
                while fh.read(1 << 22):
                    pass
    except Exception:  # noqa: BLE001
        failed.append("weights")
    return failed


def start_preload() -> threading.Thread:
    """`preload` in a daemon thread, started; join it to wait for it."""
    thread = threading.Thread(target=preload, name="encoder-preload", daemon=True)
    thread.start()
    return thread
