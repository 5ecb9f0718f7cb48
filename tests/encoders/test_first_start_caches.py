"""What the first start's preload thread prepares, and what the next process reads back: the
image trunk converted for OpenVINO (kept per machine, read instead of converted), the text
tower's vectors of the ImageNet class names and of the broad type-name prompts; none of it
draws a random number, and a thread that needs a vector file while another computes it
waits for it instead of computing it twice."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from recsys.encoders import tower_runtime

needs_openvino = pytest.mark.skipif(not tower_runtime.openvino_available(),
                                    reason="OpenVINO is not installed")


def _tiny_visual(seed: int = 0, dim: int = 16):
    import torch

    torch.manual_seed(seed)
    trunk = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(), torch.nn.Conv2d(8, dim, 1), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten()).eval()
    return SimpleNamespace(trunk=trunk, head=torch.nn.Linear(dim, 4).eval())


@pytest.fixture
def new_process(monkeypatch, tmp_path):
    """An empty per-machine cache folder and no trunk compiled in this process yet."""
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RECSYS_TOWER_RUNTIME", raising=False)
    monkeypatch.setattr(tower_runtime, "_COMPILED", {})
    return tmp_path / "cache"


@needs_openvino
def test_the_converted_trunk_is_kept_and_the_next_process_reads_it(new_process, monkeypatch):
    import torch

    visual = _tiny_visual(5)
    assert not tower_runtime.at_hand(visual.trunk)
    fast = tower_runtime.OpenVinoTrunk(visual.trunk, "fp32")
    assert len(list(new_process.glob("trunk-openvino-*.xml"))) == 1
    assert len(list(new_process.glob("trunk-openvino-*.bin"))) == 1
    assert not [p for p in new_process.iterdir() if p.name.startswith(".")]  # no temp left

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(tower_runtime, "_COMPILED", {})            # the next process
    monkeypatch.setattr(tower_runtime, "_convert", no_conversion)
    assert tower_runtime.at_hand(visual.trunk)
    again = tower_runtime.OpenVinoTrunk(visual.trunk, "fp32")
    x = torch.randn(3, 3, 224, 224)
    assert np.allclose(again(x).numpy(), fast(x).numpy(), atol=1e-5)
    # now even a small job runs on OpenVINO (no conversion to pay back), one photo included
    assert tower_runtime.frozen_trunk(visual, 10) is not visual.trunk
    assert tower_runtime.frozen_trunk(visual, 1) is not visual.trunk
    # any other weights (one number changed) never read that file
    with torch.no_grad():
        visual.trunk[0].weight[0, 0, 0, 0] += 0.5
    assert not tower_runtime.at_hand(visual.trunk)


@needs_openvino
def test_a_damaged_kept_trunk_is_converted_again(new_process, monkeypatch):
    import torch

    visual = _tiny_visual(6)
    tower_runtime.OpenVinoTrunk(visual.trunk, "fp32")
    xml = next(new_process.glob("trunk-openvino-*.xml"))
    xml.write_text("<net>not a model")
    monkeypatch.setattr(tower_runtime, "_COMPILED", {})
    fast = tower_runtime.OpenVinoTrunk(visual.trunk, "fp32")
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        want = visual.trunk(x).numpy()
    assert np.allclose(fast(x).numpy(), want, atol=1e-4)
    assert "<net>not a model" not in xml.read_text()                # written again


@needs_openvino
def test_one_uploaded_photo_and_a_catalog_batch_get_the_same_vector(new_process, frozen,
                                                                   monkeypatch):
    """Once the trunk's converted model is at hand, a single photo (a query) runs on the same
    runtime as the catalog's batches, so a catalog photo searched for finds itself at cosine
    ~1, not at the PyTorch-vs-OpenVINO distance."""
    from PIL import Image, ImageDraw

    imgs = []
    for i, rgb in enumerate([(200, 30, 30), (30, 160, 60), (40, 40, 200)]):
        img = Image.new("RGB", (224, 224), (250, 250, 250))
        ImageDraw.Draw(img).ellipse((40 + 10 * i, 50, 180, 200), fill=rgb)
        imgs.append(img)
    tower_runtime.OpenVinoTrunk(frozen.model.visual.trunk, frozen.precision)   # kept now
    batch = frozen.encode_images(imgs)
    one = np.stack([frozen.encode_image(img) for img in imgs])
    assert (batch * one).sum(1).min() > 0.9999


def test_no_disk_cache_when_the_cache_setting_is_empty(monkeypatch):
    monkeypatch.setenv("RECSYS_CACHE_DIR", "")
    assert tower_runtime._kept_model_path("0" * 32, 224) is None


@needs_openvino
def test_the_preload_compiles_the_alignments_trunk_without_drawing_random_numbers(new_process):
    import torch

    from recsys.encoders.clip_encoder import resolve_precision
    from recsys.encoders.towers import TowerConfig, build_clip_model

    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert tower_runtime.warm_imagenet_trunk(resolve_precision(None))
    assert torch.equal(torch.get_rng_state(), state)     # a seeded alignment is unchanged
    model = build_clip_model(TowerConfig(), pretrained=True)       # what an alignment builds
    # the alignment finds its trunk compiled: same digest, nothing to convert
    assert tower_runtime.at_hand(model.visual.trunk, resolve_precision(None))
    key = (tower_runtime._fingerprint(model.visual.trunk),
           tower_runtime._ov_precision(resolve_precision(None)), 224)
    assert key in tower_runtime._COMPILED


def test_the_preload_keeps_the_text_vectors_the_alignment_computes(new_process, frozen,
                                                                   monkeypatch):
    import torch

    from recsys.encoders import conse, preload, text_cache

    monkeypatch.setattr(conse, "_NAME_VECTORS", {})
    torch.manual_seed(7)
    state = torch.get_rng_state()
    model, key = preload._pretrained_text_tower()
    assert torch.equal(torch.get_rng_state(), state)
    assert key == conse._text_fingerprint(frozen.model)    # the pretrained MiniLM's weights
    assert preload.warm_text_cache(model, key, "names")
    assert preload.warm_text_cache(model, key, "prompts")
    assert len(list(new_process.glob("conse-names-*.npy"))) == 2
    real = conse.minilm_vectors

    def no_pass(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(conse, "minilm_vectors", no_pass)
    head = conse.build_conse_head(frozen.model, frozen.tokenize)    # read, not computed
    names = list(conse.imagenet_class_names())[:16]
    want = real(frozen.model, frozen.tokenize, names)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.allclose(head.names.numpy()[:16], want, atol=1e-5)
    prompts = text_cache.broad_prompts()[:8]
    got = text_cache.cached_text_vectors(frozen, prompts)             # read, not computed
    assert got.shape[0] == 8


def test_a_thread_needing_vectors_being_computed_waits_for_them(new_process):
    from recsys.encoders import conse

    calls, started = [], threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return np.ones((3, 4), np.float32)

    labels = ["a", "b", "c"]
    first = threading.Thread(target=conse.kept_vectors, args=(("k",), labels, slow))
    first.start()
    started.wait(10)
    got = conse.kept_vectors(("k",), labels, slow)       # meanwhile: waits, reads the file
    first.join()
    assert calls == [1] and got.shape == (3, 4)


def test_text_vectors_do_not_depend_on_their_batch(frozen):
    """`minilm_vectors` batches texts of similar length together (less padding): a text's
    vector is the same as computed alone, in the caller's order."""
    from recsys.encoders import conse

    texts = ["sock", "a photo of a pair of running shoes in the studio", "jean, blue jean, denim",
             "", "watch", "a leather handbag with a long strap and a brass buckle"]
    together = conse.minilm_vectors(frozen.model, frozen.tokenize, texts, batch_size=4)
    alone = np.stack([conse.minilm_vectors(frozen.model, frozen.tokenize, [t])[0]
                      for t in texts])
    assert together.shape == (6, 384)
    assert np.allclose(together, alone, atol=1e-5)


@needs_openvino
def test_openvino_sends_no_telemetry(tmp_path):
    """Importing openvino and converting a model post usage events (a forked process each)
    when `openvino-telemetry` is installed: the app's OpenVINO never does, in a new process
    as the app's server is."""
    import subprocess
    import sys

    code = (
        "import sys, multiprocessing.process as mp\n"
        "started = []\n"
        "real = mp.BaseProcess.start\n"
        "mp.BaseProcess.start = lambda self: (started.append(self), real(self))\n"
        "import torch\n"
        "from recsys.encoders import tower_runtime\n"
        "t = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),\n"
        "                        torch.nn.Flatten()).eval()\n"
        "tower_runtime.OpenVinoTrunk(t, 'fp32')\n"
        "print(len(started), sys.modules.get('openvino_telemetry'))\n")
    env = {**__import__("os").environ, "RECSYS_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env, cwd=str(__import__("pathlib").Path(
                             __file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "None"], out.stdout
