"""The frozen image trunk on a faster runtime (OpenVINO) for large alignments, PyTorch otherwise;
and the phone-style views cut each photo out once for all its views."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recsys.encoders import tower_runtime
from recsys.encoders.tower_runtime import frozen_trunk

needs_openvino = pytest.mark.skipif(not tower_runtime.openvino_available(),
                                    reason="OpenVINO is not installed")


@pytest.fixture(scope="module", autouse=True)
def own_cache_folder(tmp_path_factory):
    """The small test trunks are kept in a folder of this module's, never in the user's
    per-machine cache (where they would push out the real trunk)."""
    import os

    before = os.environ.get("RECSYS_CACHE_DIR")
    os.environ["RECSYS_CACHE_DIR"] = str(tmp_path_factory.mktemp("machine-cache"))
    yield
    if before is None:
        os.environ.pop("RECSYS_CACHE_DIR", None)
    else:
        os.environ["RECSYS_CACHE_DIR"] = before


def _tiny_visual(seed: int = 0, dim: int = 32):
    """A stand-in for open_clip's TimmModel: a small conv trunk (pooled features) + a head."""
    import torch

    torch.manual_seed(seed)
    trunk = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, dim, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    return SimpleNamespace(trunk=trunk, head=torch.nn.Linear(dim, 8).eval())


def _photo(path, rgb, box=(60, 40, 160, 190)):
    img = Image.new("RGB", (224, 224), (255, 255, 255))
    ImageDraw.Draw(img).rectangle(box, fill=rgb)
    img.save(path)
    return str(path)


def _cosine(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_small_jobs_and_the_torch_setting_run_the_pytorch_trunk(monkeypatch):
    visual = _tiny_visual()
    monkeypatch.delenv("RECSYS_TOWER_RUNTIME", raising=False)
    assert frozen_trunk(visual, 10) is visual.trunk                  # conversion would not pay
    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "torch")
    assert tower_runtime.choose_runtime(100_000) == "torch"
    assert frozen_trunk(visual, 100_000) is visual.trunk
    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "auto")
    monkeypatch.setattr(tower_runtime, "openvino_available", lambda: False)
    assert tower_runtime.choose_runtime(100_000) == "torch"


def test_a_failed_conversion_falls_back_to_pytorch(monkeypatch):
    visual = _tiny_visual(1)

    def broken(*args, **kwargs):
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(tower_runtime, "_compile", broken)
    monkeypatch.setattr(tower_runtime, "openvino_available", lambda: True)
    assert frozen_trunk(visual, 10, runtime="openvino") is visual.trunk


@pytest.fixture(scope="module")
def converted():
    """One small trunk converted once for the tests below (the conversion traces the module)."""
    from recsys.encoders.clip_encoder import resolve_precision

    visual = _tiny_visual(2)        # in the encoders' precision (bf16 where the CPU has it)
    return visual, tower_runtime.OpenVinoTrunk(visual.trunk, resolve_precision(None))


@needs_openvino
def test_openvino_trunk_gives_the_pytorch_features(converted):
    import torch

    visual, fast = converted
    x = torch.randn(5, 3, 224, 224)
    with torch.inference_mode():
        want = visual.trunk(x).numpy()
    got = fast(x).numpy()
    assert got.shape == want.shape == (5, 32)
    cos = _cosine(got, want)
    assert cos.min() > 0.995 and cos.mean() > 0.999, cos       # bf16 on CPUs that have it
    # the compiled model is kept for the same weights (the alignment's photos, then its views)
    assert tower_runtime.OpenVinoTrunk(visual.trunk, fast.precision).compiled is fast.compiled


@needs_openvino
def test_alignment_photo_cache_runs_the_trunk_on_openvino(converted, monkeypatch, tmp_path):
    """`cache_images` (the alignment's pass over its photos) goes through the fast runtime:
    the PyTorch trunk never runs, and the features are those of the PyTorch trunk."""
    import torch

    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.clip_encoder import normalise_pixels
    from recsys.encoders.training_data import cache_images

    visual, _ = converted                    # already converted (the conversion traces it)
    model = SimpleNamespace(visual=visual)
    cfg = CatalogClipConfig()
    paths = [_photo(tmp_path / f"p{k}.png", rgb) for k, rgb in
             enumerate([(200, 20, 20), (20, 160, 40), (30, 40, 200)])]

    def pixels(arrays):
        return normalise_pixels(arrays, (0.5,) * 3, (0.5,) * 3)

    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "torch")
    want, _ = cache_images(model, paths, cfg, pixels, None, False)
    calls = [0]
    handle = visual.trunk.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "openvino")
    got, flipped = cache_images(model, paths, cfg, pixels, None, True)
    handle.remove()
    assert calls[0] == 0
    assert got.shape == want.shape == (3, 32) and flipped.shape == (3, 32)
    assert _cosine(got.float(), want.float()).min() > 0.99


def test_views_cut_each_photo_out_once_and_draw_the_same_views(monkeypatch, tmp_path):
    """Each training photo is decoded and cut out once for all its views (before: once per
    view); the views are the same pixels as drawn one by one (`render_view`)."""
    import torch

    from recsys.data import images
    from recsys.encoders.augment import ViewPlan, render_view, view_features
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.clip_encoder import normalise_pixels, prepare_image
    from recsys.encoders.phone_families import DonorPool

    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "torch")
    paths = [_photo(tmp_path / f"p{k}.png", rgb) for k, rgb in
             enumerate([(200, 20, 20), (20, 160, 40), (30, 40, 200), (240, 200, 20)])]
    donors = [_photo(tmp_path / f"d{k}.png", rgb, (30, 30, 150, 180)) for k, rgb in
              enumerate([(90, 90, 90), (10, 200, 200)])]
    ids = [f"item-{k}" for k in range(len(paths))]
    plan = ViewPlan(views=3)
    decoded: Counter = Counter()
    real = images.load_image

    def counting(source, *args, **kwargs):
        decoded[str(source)] += 1
        return real(source, *args, **kwargs)

    monkeypatch.setattr(images, "load_image", counting)
    drawn = []
    from recsys.encoders import clip_encoder      # view_features imports prepare_image from it

    def keep(source, size, *args, **kwargs):
        arr = prepare_image(source, size, *args, **kwargs)
        drawn.append(arr)
        return arr

    monkeypatch.setattr(clip_encoder, "prepare_image", keep)
    visual = _tiny_visual(4)
    cfg = CatalogClipConfig()
    got = view_features(SimpleNamespace(visual=visual), cfg, paths, ids, plan,
                        lambda a: normalise_pixels(a, (0.5,) * 3, (0.5,) * 3), None, donors)
    assert got.features.shape == (4, 3, 32)
    assert all(decoded[p] == 1 for p in paths), decoded
    # the same pixels as each view drawn on its own (decode + cutout per view)
    monkeypatch.setattr(images, "load_image", real)
    pool = DonorPool(donors, seed=plan.seed)
    table = plan.table(ids)
    want = [prepare_image(render_view(table[i, j], plan.seed, ids[i], pool, paths[i]).image, 224)
            for i in range(len(paths)) for j in range(3)]
    assert len(drawn) == len(want)
    assert all(np.array_equal(a, b) for a, b in zip(sorted(drawn, key=lambda a: a.tobytes()),
                                                    sorted(want, key=lambda a: a.tobytes())))
    with torch.inference_mode():
        direct = visual.trunk(normalise_pixels(want, (0.5,) * 3, (0.5,) * 3))
    assert _cosine(got.features.reshape(12, 32).float(), direct).min() > 0.99


def test_sharded_photo_features_choose_the_runtime_for_the_whole_job(monkeypatch, tmp_path):
    """The alignment's photos go through the tower one shard at a time: the runtime is chosen
    for all the photos still to encode, not for one shard (a 256-photo shard alone is below
    `MIN_ROWS`, so a large catalog ran on PyTorch)."""
    from recsys.encoders import feature_shards
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.clip_encoder import normalise_pixels
    from recsys.encoders.feature_shards import PhotoFeatureShards, ShardedTowerFeatures, photo_key

    asked = []

    def record(visual, rows, precision=None, runtime=None):
        asked.append(rows)
        return visual.trunk

    monkeypatch.setattr(tower_runtime, "frozen_trunk", record)
    monkeypatch.setattr(feature_shards, "SHARD_PHOTOS", 2)
    paths = [_photo(tmp_path / f"p{k}.png", rgb) for k, rgb in
             enumerate([(200, 20, 20), (20, 160, 40), (30, 40, 200), (240, 200, 20),
                        (90, 90, 90)])]
    sharded = ShardedTowerFeatures(PhotoFeatureShards(tmp_path / "shards"),
                                   {p: photo_key(p, None) for p in paths})
    feats, _ = sharded.images(SimpleNamespace(visual=_tiny_visual(5, 1280)), paths, CatalogClipConfig(),
                              lambda a: normalise_pixels(a, (0.5,) * 3, (0.5,) * 3), None, False)
    assert tuple(feats.shape) == (5, 1280) and sharded.computed == 5
    assert asked == [5, 5, 5]                      # three shards, each told the job is 5 photos


@needs_openvino
def test_embedding_after_an_alignment_reuses_the_converted_trunk(converted, monkeypatch,
                                                                 tmp_path):
    """The catalog's embedding right after an alignment encodes the held-out photos in small
    chunks: the trunk the alignment converted runs them (no PyTorch trunk pass), with the same
    vectors; the torch setting turns it off."""
    import torch

    from recsys.encoders.clip_encoder import ClipEncoder

    visual, _ = converted

    class TinyClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = torch.nn.Module()
            self.visual.trunk, self.visual.head = visual.trunk, visual.head

        def encode_image(self, x):
            return self.visual.head(self.visual.trunk(x))

    enc = ClipEncoder(TinyClip(), lambda texts: None, name="tiny", version="1", dim=8,
                      kind="image")
    paths = [_photo(tmp_path / f"p{k}.png", rgb) for k, rgb in
             enumerate([(200, 20, 20), (20, 160, 40), (30, 40, 200)])]
    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "torch")
    want = enc.encode_images(paths)
    calls = [0]
    handle = visual.trunk.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    monkeypatch.setenv("RECSYS_TOWER_RUNTIME", "auto")
    got = enc.encode_images(paths)
    handle.remove()
    assert calls[0] == 0
    assert _cosine(got, want).min() > 0.99


def test_flatlay_cuts_each_donor_out_once_and_draws_the_same_shot(monkeypatch, tmp_path):
    """A flat-lay shot's distractor is a donor photo's cutout: the pool keeps it (one cutout
    per donor, not one per shot) and the shot is the same as with a fresh cutout."""
    from recsys.encoders import phone_families
    from recsys.encoders.phone_families import DonorPool, family_rng, family_shot

    donors = [_photo(tmp_path / f"d{k}.png", rgb, (30, 30, 150, 180)) for k, rgb in
              enumerate([(90, 90, 90), (10, 200, 200)])]
    studio = Image.open(_photo(tmp_path / "p.png", (200, 20, 20))).convert("RGB")
    pool = DonorPool(donors)
    plain = pool.donors()
    fresh = family_shot("flatlay", studio, family_rng("flatlay", 0, "x"), lambda r: plain(r))
    cuts = Counter()
    real = phone_families.cutout

    def counting(photo):
        cuts[photo.size] += 1
        return real(photo)

    monkeypatch.setattr(phone_families, "cutout", counting)
    shots = [family_shot("flatlay", None, family_rng("flatlay", 0, str(k % 2 or "x")),
                         pool.donors(), product=real(studio)) for k in range(6)]
    assert np.array_equal(np.asarray(shots[0].image), np.asarray(fresh.image))
    assert shots[0].box == fresh.box
    assert sum(cuts.values()) <= len(donors)        # before: one cutout per shot (6)
