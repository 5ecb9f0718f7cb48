"""Phone-shot families, the views alignment trains on, the crop that says where the
product is and leaves product shots alone, the instance block trained on views, the "no close
match" threshold, and held-out-type draws whose names leak."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recsys.encoders.augment import ViewPlan
from recsys.encoders.crop import ProductCrop, is_product_shot, locate_product
from recsys.encoders.phone_families import (FAMILIES, FAMILY_NAMES, DonorPool, cutout,
                                            family_rng, family_shot)


def _studio(rgb=(200, 20, 20), size=224, box=(60, 40, 160, 190)) -> Image.Image:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    ImageDraw.Draw(img).rectangle(box, fill=rgb)
    return img


@pytest.fixture
def donors(tmp_path):
    paths = []
    for k, rgb in enumerate([(20, 160, 40), (30, 40, 200), (240, 200, 20)]):
        p = tmp_path / f"donor{k}.png"
        _studio(rgb, box=(30 + 10 * k, 30, 150, 180)).save(p)
        paths.append(str(p))
    return DonorPool(paths)


def _red(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(int)
    return (arr[..., 0] > 110) & (arr[..., 1] < 90) & (arr[..., 2] < 100)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_each_family_is_reproducible_and_its_box_holds_the_product(family, donors):
    a = family_shot(family, _studio(), family_rng(family, 0, "item-1"), donors.donors())
    b = family_shot(family, _studio(), family_rng(family, 0, "item-1"), donors.donors())
    c = family_shot(family, _studio(), family_rng(family, 1, "item-1"), donors.donors())
    assert a.image.mode == "RGB"
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.box == b.box
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))
    x0, y0, x1, y1 = a.box
    w, h = a.image.size
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # the product spans 35-75% of the frame's larger relative side (40-70% before the warps)
    assert 0.3 <= max((x1 - x0) / w, (y1 - y0) / h) <= 0.8
    red = _red(np.asarray(a.image))
    inside = red[y0:y1, x0:x1].sum()
    assert inside > 0.2 * (x1 - x0) * (y1 - y0) and inside > 0.9 * red.sum()


def test_families_differ_in_frame_and_background(donors):
    shots = {f: family_shot(f, _studio(), family_rng(f, 0, "x"), donors.donors())
             for f in FAMILIES}
    assert len({s.image.size for s in shots.values()}) >= 3            # portrait, landscape, square
    corners = {f: np.asarray(s.image)[:20, :20].reshape(-1, 3).mean(0) for f, s in shots.items()}
    assert len({tuple(np.round(c / 10)) for c in corners.values()}) == len(FAMILIES)


def test_donor_pool_never_gives_the_product_its_own_photo(tmp_path):
    own = tmp_path / "own.png"
    other = tmp_path / "other.png"
    _studio().save(own)
    _studio((0, 0, 200)).save(other)
    pool = DonorPool([str(own), str(other)])
    draw = pool.donors(exclude=str(own))
    rng = np.random.default_rng(0)
    assert all(np.asarray(draw(rng))[100, 100, 2] > 150 for _ in range(10))
    assert DonorPool([str(other), str(own)]).paths == pool.paths       # order-free


def test_cutout_keeps_the_product_and_drops_the_white():
    product = cutout(_studio())
    assert product.mode == "RGBA" and 95 <= product.width <= 105 and 145 <= product.height <= 155
    assert np.asarray(product.getchannel("A"))[70, 50] == 255


# -- views ---------------------------------------------------------------------------------------
def test_view_plan_gives_each_item_distinct_families_and_masks_a_held_out_one():
    plan = ViewPlan(views=2, seed=0)
    ids = [f"item-{i}" for i in range(200)]
    table = plan.table(ids)
    assert table.shape == (200, 2)
    assert all(a != b for a, b in table)
    assert np.array_equal(table, ViewPlan(views=2, seed=0).table(ids))
    assert {f for row in table for f in row} == set(FAMILY_NAMES)     # every family is used
    ok = plan.allowed(table, ["collage"])
    assert not ok[table == "collage"].any() and ok[table != "collage"].all()
    assert ViewPlan(views=0).table(ids).shape == (200, 0)
    with pytest.raises(ValueError):
        ViewPlan(families=("collage", "marble"))


# -- the crop ------------------------------------------------------------------------------------
def test_crop_leaves_catalog_photos_alone_including_a_model_touching_the_frame():
    shoe = _studio(box=(10, 70, 214, 160))                               # product shot on white
    model = Image.new("RGB", (224, 224), (255, 255, 255))               # a person, head to knee
    d = ImageDraw.Draw(model)
    d.ellipse((92, 0, 132, 40), fill=(200, 160, 130))
    d.rectangle((70, 40, 154, 224), fill=(30, 60, 160))
    for img in (shoe, model):
        crop = locate_product(img)
        assert isinstance(crop, ProductCrop)
        assert crop.box is None and crop.reason == "product shot"
        assert np.array_equal(np.asarray(crop.image), np.asarray(img))
        assert is_product_shot(img)


def test_crop_finds_a_small_product_on_a_busy_background_and_returns_its_box():
    rng = np.random.default_rng(0)
    noise = np.clip(rng.normal(120, 35, (320, 240, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(noise).filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(3))
    ImageDraw.Draw(img).rectangle((130, 150, 210, 280), fill=(220, 20, 20))
    crop = locate_product(img)
    assert crop.reason == "cropped" and crop.cropped
    x0, y0, x1, y1 = crop.box
    assert x0 <= 130 and y0 <= 150 and x1 >= 210 and y1 >= 280           # holds the product
    assert (x1 - x0) * (y1 - y0) < 0.35 * 240 * 320                      # and little else
    assert crop.image.size == (x1 - x0, y1 - y0)
    assert np.array_equal(np.asarray(crop.image), np.asarray(img.crop(crop.box)))
    assert not is_product_shot(img)
    # GrabCut seeds its colour models from OpenCV's RNG: the same photo gives the same box
    assert all(locate_product(img).box == crop.box for _ in range(3))


def test_crop_box_is_in_the_upright_photo_pixels():
    img = Image.new("RGB", (300, 200), (90, 140, 90))
    ImageDraw.Draw(img).rectangle((20, 120, 90, 190), fill=(250, 250, 30))
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # rotated 90 degrees
    import io
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    crop = locate_product(Image.open(io.BytesIO(buf.getvalue())))
    assert crop.image.mode == "RGB"
    if crop.box is not None:
        x0, y0, x1, y1 = crop.box
        assert x1 <= 200 and y1 <= 300                                   # upright: 200 x 300


# -- the instance block --------------------------------------------------------------------------
def test_instance_block_training_makes_views_find_their_own_photo():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.instance import recall_at, train_instance_block

    class InstanceBlockHead(torch.nn.Module):
        """The buffers of `hybrid.InstanceBlockHead` (importing it loads open_clip: slow)."""

        def __init__(self, _aligned, in_dim, dim, _weight):
            super().__init__()
            self.register_buffer("pca_mean", torch.zeros(in_dim))
            self.register_buffer("pca_components", torch.zeros(dim, in_dim))

        def fit(self, x):
            mean = x.mean(0)
            _, _, v = torch.linalg.svd(x - mean, full_matrices=False)
            self.pca_mean.copy_(mean)
            self.pca_components.copy_(v[:self.pca_components.shape[0]])
            return self

        def instance(self, x):
            return F.normalize(F.linear(x - self.pca_mean, self.pca_components), dim=-1)

    rng = np.random.default_rng(0)
    n, d, k = 160, 48, 8
    identity = rng.normal(0, 1, (n, 16)) @ rng.normal(0, 1, (16, d))    # what the product is
    nuisance = rng.normal(0, 1, (d,))                                    # what a phone shot adds
    studio = identity + rng.normal(0, 0.1, (n, d))
    views = np.stack([identity + rng.normal(0, 1, (n, 1)) * 6 * nuisance
                      + rng.normal(0, 0.3, (n, d)) for _ in range(2)], 1)
    head = InstanceBlockHead(torch.nn.Identity(), d, k, 0.5)
    head.fit(torch.tensor(studio, dtype=torch.float32))
    s_t = torch.tensor(studio, dtype=torch.float32)
    v_t = torch.tensor(views, dtype=torch.float32)

    def recall():
        with torch.no_grad():
            return recall_at(head.instance(v_t[:, 0]).numpy(), head.instance(s_t).numpy(),
                             np.arange(n), k=1)

    before = recall()
    cfg = CatalogClipConfig(instance_epochs=30, instance_batch_size=32, instance_lr=1e-2)
    info = train_instance_block(head, s_t, v_t, np.ones((n, 2), bool), np.arange(n),
                                ["a", "b"] * (n // 2), cfg, val_rows=np.arange(n - 20, n))
    assert info["epochs"] == 30 and len(info["history"]) == 30
    assert recall() > before + 0.2
    # no epochs: the PCA stays as it was
    head2 = InstanceBlockHead(torch.nn.Identity(), d, k, 0.5).fit(s_t)
    pca = head2.pca_components.clone()
    train_instance_block(head2, s_t, v_t, np.ones((n, 2), bool), np.arange(n), ["a"] * n,
                         CatalogClipConfig(instance_epochs=0))
    assert torch.equal(pca, head2.pca_components)


# -- no close match ------------------------------------------------------------------------------
def test_match_threshold_separates_types_the_catalog_has_from_types_it_lacks():
    from recsys.encoders.match_threshold import (calibrate_match_threshold, is_close_match,
                                                 match_score)

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (6, 32))
    labels = np.repeat([f"type{t}" for t in range(6)], 40)
    vecs = centres[np.repeat(np.arange(6), 40)] + rng.normal(0, 0.25, (240, 32))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    mt = calibrate_match_threshold(vecs, labels, false_alarm=0.05)
    assert mt is not None and mt.in_fire_rate <= 0.06 and mt.off_fire_rate >= 0.9
    # a new product of a known type matches; a product of another kind does not
    known = centres[2] + rng.normal(0, 0.25, 32)
    unknown = rng.normal(0, 1, 32)
    for q, expected in ((known, True), (unknown, False)):
        q = q / np.linalg.norm(q)
        scores = np.sort(vecs @ q)[::-1]
        assert mt.is_close_match(scores) is expected
        assert is_close_match(match_score(scores), mt.threshold) is expected
    assert match_score([0.9, 0.1, 0.5], k=2) == pytest.approx(0.7)     # mean of the best k
    assert mt.is_close_match([1.0] + [0.0] * 20)         # the catalog photo itself: a match
    assert mt.is_close_match([1.0] * 10) and not mt.is_close_match([mt.threshold - 1e-6] * 10)
    assert calibrate_match_threshold(vecs[:10], labels[:10]) is None     # too small
    assert is_close_match(0.1, None)                                     # no threshold: match


# -- held-out types whose names leak -------------------------------------------------------------
def test_leaking_names_are_found_and_the_draw_is_replaced():
    from recsys.encoders.evaluate_unseen import draw_clean_unseen_types, name_leaks

    labels = ["Heels"] * 30 + ["Flats"] * 30 + ["Caps"] * 30 + ["Belts"] * 30
    texts = ([f"Catwalk Women Pink Flats {i}" for i in range(20)]
             + [f"Catwalk Women Heels {i}" for i in range(10)]
             + [f"Flats {i}" for i in range(30)] + [f"Cap {i}" for i in range(30)]
             + [f"Belt {i}" for i in range(30)])
    assert name_leaks(texts, labels, ["Flats"]) == {"Flats": {"Heels": 20}}
    assert name_leaks(texts, labels, ["Flats", "Heels"]) == {}      # both held out: no leak
    assert name_leaks(texts, labels, ["Caps"]) == {}
    # one stray mention is not a leak (at least 5 items and 5% of the type are)
    assert name_leaks(texts[:1] + texts[20:], labels[:1] + labels[20:], ["Flats"]) == {}
    draws = [draw_clean_unseen_types(labels, texts, 1, seed=s, min_photos=20) for s in range(6)]
    assert all(types != ["Flats"] for types, _ in draws)
    replaced = [r for _, rep in draws for r in rep]
    assert replaced and all(r["unseen_types"] == ["Flats"] and "Flats" in r["leaks"]
                            for r in replaced)


# -- leave one family out --------------------------------------------------------------------------
def test_phone_shot_test_scores_each_family_with_an_alignment_that_never_saw_it(
        shapes_store, monkeypatch):
    """`eval-encoder --phone-shots` on an aligned encoder: one alignment per family with that
    family's views masked, one without augmentation; each family is scored only by the
    alignment that excluded it. (The alignments themselves are replaced by the encoder's own
    model here: what is tested is which alignment scores which family.)"""
    from recsys.encoders import alignment
    from recsys.encoders.alignment import AlignmentResult
    from recsys.encoders.checkpoints import wrap_model
    from recsys.encoders.clip_config import default_tower
    from recsys.encoders.evaluate_phone import evaluate_phone_shots
    from recsys.encoders.hybrid import build_catalog_model

    tower = default_tower()
    enc = wrap_model(build_catalog_model(tower, pretrained=True).eval(), tower, "catalog-clip",
                     "t", "catalog-clip", None, {})
    calls = []

    def fake_align(items, cfg, progress=None, on_epoch=None, features=None):
        calls.append((list(cfg.augment_exclude), cfg.augment_views, sorted(items["split"].unique())))
        return AlignmentResult(enc.model)

    monkeypatch.setattr(alignment, "align", fake_align)
    ev = evaluate_phone_shots(shapes_store, "shapes", enc, n=2, seed=0,
                              families=["noise", "room"], record=False,
                              config={"augment_views": 1, "calibration_types": 0})
    assert ev.protocol == "held-out family" and ev.families == ["noise", "room"]
    assert [c[:2] for c in calls] == [(["noise"], 1), (["room"], 1), ([], 0)]
    assert all("heldout" not in c[2] for c in calls)          # never aligned on the queries
    m = ev.metrics
    for fam in ("noise", "room"):
        for key in ("phone_exact_recall@10", "phone_crop_exact_recall@10",
                    "noaug_phone_exact_recall@10", "conse_phone_exact_recall@10", "crop_rate"):
            assert 0.0 <= m[f"family:{fam}:{key}"] <= 1.0
    assert m["phone_exact_recall@10"] == pytest.approx(np.mean(
        [m["family:noise:phone_exact_recall@10"], m["family:room:phone_exact_recall@10"]]))
    assert m["studio_exact_recall@1"] == 1.0 and m["studio_crop_exact_recall@10"] == 1.0


def test_alignment_sees_views_of_the_allowed_families_only_and_trains_the_instance_block(
        shapes_store):
    """`train-encoder` with phone-style augmentation: views rendered through the real towers
    for the training and validation photos, a masked family contributes none, and the
    instance block moves away from its PCA start."""
    import torch

    from recsys.encoders.alignment import align
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.training_data import training_items

    items = training_items(shapes_store, "shapes", CatalogClipConfig().holdout)
    items = items[items["split"] != "heldout"].reset_index(drop=True)
    base = dict(epochs=1, max_steps=2, batch_size=8, calibration_types=0, augment_views=2,
                augment_families=["noise", "room"], instance_epochs=2, instance_batch_size=4)
    full = align(items, CatalogClipConfig.from_dict(base))
    masked = align(items, CatalogClipConfig.from_dict({**base, "augment_exclude": ["noise"],
                                                       "instance_epochs": 0}))
    assert full.metrics["augmented_views"] == 2 * len(items)      # every train + val photo
    assert masked.metrics["augmented_views"] == len(items)        # the room views only
    assert full.metrics["seconds_cache_views"] > 0
    # the same PCA start (studio photos only); trained in one, left as the PCA in the other
    head, plain = full.model.visual.head, masked.model.visual.head
    assert torch.allclose(head.pca_mean, plain.pca_mean)
    assert not torch.allclose(head.pca_components, plain.pca_components)


def test_query_photo_fuses_the_whole_photo_and_its_crop_and_leaves_product_shots_alone():
    from recsys.encoders.query_photo import encode_query_photo, fuse

    class FakeEncoder:
        """Vectors that tell images apart by size and mean colour."""

        def encode_images(self, images):
            out = []
            for im in images:
                a = np.asarray(im, np.float32)
                v = np.array([im.width, im.height, *a.reshape(-1, 3).mean(0)], np.float32)
                out.append(v / np.linalg.norm(v))
            return np.stack(out)

    enc = FakeEncoder()
    shoe = _studio(box=(10, 70, 214, 160))
    q = encode_query_photo(enc, shoe)
    assert q.crop.box is None and np.allclose(q.vector, enc.encode_images([shoe])[0])
    assert q.to_dict() == {"box": None, "reason": "product shot", "cropped": False}
    rng = np.random.default_rng(0)
    busy = Image.fromarray(np.clip(rng.normal(120, 35, (320, 240, 3)), 0, 255).astype(np.uint8))
    busy = busy.filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(3))
    ImageDraw.Draw(busy).rectangle((130, 150, 210, 280), fill=(220, 20, 20))
    q = encode_query_photo(enc, busy)
    assert q.crop.cropped and q.to_dict()["box"] == list(q.crop.box)
    full, part = enc.encode_images([busy]), enc.encode_images([busy.crop(q.crop.box)])
    assert np.allclose(q.full_vector, full[0])
    assert np.allclose(q.vector, fuse(full, part)[0]) and abs(np.linalg.norm(q.vector) - 1) < 1e-5
