"""Issue 15: the ConSE baseline, the catalog-clip heads, the distillation, phone shots, the
product crop, and the held-out-types and phone-shot evaluations (on drawn products)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from recsys.encoders import get_encoder, parse_spec
from recsys.encoders.crop import crop_to_product, is_studio_photo, product_box
from recsys.encoders.phone_shots import (
    PhoneShotStyle,
    phone_shot,
    product_mask,
    shot_rng,
)

from ..encoder_helpers import draw_product

ENCODERS = Path(__file__).resolve().parents[2] / "recsys" / "encoders"


def test_encoder_modules_do_not_import_the_registry_below_it():
    """The registry imports the concrete encoders; none of them may import it back (the old
    base.py <-> catalog_clip.py cycle)."""
    below = {"base", "towers", "clip_encoder", "checkpoints", "conse", "hybrid", "tower_parts",
             "training_data", "trainer", "alignment", "loss", "clip_config", "captions",
             "splits", "openclip_pretrained", "phone_shots", "crop"}
    for name in below:
        tree = ast.parse((ENCODERS / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
        assert "registry" not in imported and None not in imported, name


# -- ConSE and the heads -------------------------------------------------------------------------
def test_conse_head_is_the_weighted_mean_of_its_top_class_names():
    from recsys.encoders.conse import N_IMAGENET, ConseHead

    torch.manual_seed(0)
    names = torch.randn(N_IMAGENET, 6)
    head = ConseHead(4, 6, top_k=2).fill(torch.zeros(N_IMAGENET, 4), torch.zeros(N_IMAGENET),
                                         names)
    with torch.no_grad():
        head.fc_bias[7] = 5.0                          # class 7 dominates, class 3 second
        head.fc_bias[3] = 4.0
    out = head(torch.zeros(1, 4))[0]
    p = torch.softmax(head.fc_bias, 0)
    unit = torch.nn.functional.normalize(names, dim=-1)
    expected = torch.nn.functional.normalize(p[7] * unit[7] + p[3] * unit[3], dim=0)
    assert torch.allclose(out, expected, atol=1e-5)


def test_residual_head_starts_as_conse_and_instance_block_keeps_cross_modal_scores():
    from recsys.encoders.conse import N_IMAGENET, ConseHead
    from recsys.encoders.hybrid import InstanceBlockHead, PadText, ResidualConseHead

    torch.manual_seed(0)
    conse = ConseHead(5, 3).fill(torch.randn(N_IMAGENET, 5), torch.randn(N_IMAGENET),
                                 torch.randn(N_IMAGENET, 3))
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.GELU(), torch.nn.Linear(4, 3))
    head = ResidualConseHead(mlp, conse)
    x = torch.randn(8, 5)
    assert torch.allclose(head(x), conse(x))           # the correction starts at zero
    block = InstanceBlockHead(head, 5, 2, 0.36).fit(torch.randn(50, 5))
    img = block(x)
    txt = PadText(torch.nn.Identity(), 2)(torch.randn(8, 3))
    assert img.shape == (8, 5) and txt.shape == (8, 5)
    assert torch.allclose(img.norm(dim=1), torch.ones(8), atol=1e-5)
    aligned = torch.nn.functional.normalize(head(x), dim=-1)
    assert torch.allclose(img @ txt.T, 0.8 * aligned @ txt[:, :3].T, atol=1e-5)


def test_distillation_prefers_the_photo_vector_of_its_imagenet_classes():
    from recsys.encoders.conse import N_IMAGENET, ConseHead
    from recsys.encoders.loss import distillation_loss

    torch.manual_seed(0)
    head = ConseHead(4, 8).fill(torch.zeros(N_IMAGENET, 4), torch.zeros(N_IMAGENET),
                                torch.randn(N_IMAGENET, 8))
    with torch.no_grad():
        head.fc_bias[11] = 8.0
    features = torch.zeros(1, 4)
    right = head.names[11:12]
    wrong = head.names[500:501]
    assert distillation_loss(right, features, head, 0.05) < \
        distillation_loss(wrong, features, head, 0.05)


def test_conse_encoder_is_a_registered_baseline():
    assert parse_spec("conse").kind == "conse"
    enc = get_encoder("conse")
    assert enc.dim == 384 and enc.spec.startswith("conse@")
    v = enc.encode_images([draw_product("ellipse", (200, 20, 20))])
    t = enc.encode_texts(["a red ball", "running shoes"])
    assert v.shape == (1, 384) and t.shape == (2, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)


# -- phone shots and the crop --------------------------------------------------------------------
def _studio(size=224):
    img = Image.new("RGB", (size, size), (255, 255, 255))
    ImageDraw.Draw(img).rectangle((60, 40, 160, 190), fill=(180, 30, 40))
    return img


def test_phone_shots_are_reproducible_phone_sized_and_keep_the_product():
    a = phone_shot(_studio(), shot_rng(0, "item-1"))
    b = phone_shot(_studio(), shot_rng(0, "item-1"))
    c = phone_shot(_studio(), shot_rng(1, "item-1"))
    style = PhoneShotStyle()
    assert a.size == (style.width, style.height) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # some pixels are still the product's red; the white studio background is gone
    arr = np.asarray(a).astype(int)
    red = (arr[..., 0] > 110) & (arr[..., 1] < 80) & (arr[..., 2] < 90)
    assert red.mean() > 0.01
    mask = product_mask(_studio())
    assert mask[100, 100] > 0.9 and mask[5, 5] < 0.1


def _on_texture(product_box_xyxy=(200, 250, 330, 450), size=(480, 640)):
    rng = np.random.default_rng(3)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    wood = 120 + 30 * np.sin(xx / 9.0 + 3 * np.sin(yy / 40.0))
    bg = np.dstack([wood, wood * 0.8, wood * 0.6]) + rng.normal(0, 4, (h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    ImageDraw.Draw(img).ellipse(product_box_xyxy, fill=(30, 60, 200))
    return img


def test_crop_finds_the_product_on_a_textured_background():
    box = product_box(_on_texture())
    assert box is not None
    x0, y0, x1, y1 = box
    # the crop contains the product and is much smaller than the photo
    assert x0 <= 200 and y0 <= 250 and x1 >= 330 and y1 >= 450
    assert (x1 - x0) * (y1 - y0) < 0.25 * 480 * 640
    out = crop_to_product(_on_texture())
    assert out.size == (x1 - x0, y1 - y0) and out.mode == "RGB"


def test_crop_leaves_studio_photos_and_featureless_photos_alone():
    studio = _studio()
    assert is_studio_photo(studio)
    assert crop_to_product(studio).size == studio.size          # identical photo stays first
    flat = Image.new("RGB", (300, 200), (90, 120, 150))
    assert crop_to_product(flat).size == flat.size
    grey = Image.new("LA", (64, 64), (128, 255))                # any mode comes back as RGB
    assert crop_to_product(grey).mode == "RGB"


# -- the evaluations on the drawn catalog --------------------------------------------------------
def test_metric_functions_on_known_vectors():
    from recsys.encoders.evaluate_phone import exact_item_metrics
    from recsys.encoders.evaluate_unseen import draw_unseen_types, unseen_type_metrics

    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[1, 0.1, 0, 0], [1, 0.9, 0, 0]], np.float32)   # 2nd: own item 2nd
    m = exact_item_metrics(queries, gallery, np.array([0, 1]), np.array(list("aabb")), k=2)
    assert m["exact_recall@1"] == 0.5 and m["exact_recall@2"] == 1.0
    assert m["same_type_precision@2"] == 1.0

    labels = ["x", "x", "y", "z"]
    images = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    titles = images.copy()
    cls = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}
    mm = unseen_type_metrics(images, titles, labels, ["y", "z"], ["x", "y", "z"],
                             np.array([cls["y"], cls["z"]], np.float32),
                             np.array([cls["x"], cls["y"], cls["z"]], np.float32))
    assert mm["unseen_wf1"] == 1.0 and mm["unseen_vs_all_wf1"] == 1.0 and mm["seen_wf1"] == 1.0
    assert draw_unseen_types(["a"] * 3 + ["b"] * 3 + ["c"], 1, seed=0, min_photos=3) in \
        (["a"], ["b"])


def test_held_out_types_evaluation_aligns_without_them(shapes_store):
    from recsys.encoders.evaluate_unseen import evaluate_unseen_types

    before = len(shapes_store.encoders())
    ev = evaluate_unseen_types(shapes_store, "shapes", k=1, seed=0, min_photos=5,
                               config={"epochs": 1, "max_steps": 1, "batch_size": 8},
                               baseline=None)
    assert len(ev.unseen_types) == 1 and ev.n_train < 24
    assert ev.metrics["n_unseen_items"] == 8
    for key in ("unseen_wf1", "unseen_vs_all_wf1", "t2i_recall@10_unseen"):
        assert 0.0 <= ev.metrics[key] <= 1.0
    assert ev.metrics["unseen_wf1"] == 1.0      # one unseen name: always right among itself
    assert len(shapes_store.encoders()) == before     # nothing registered
    runs = shapes_store.runs("shapes", kind="evaluation")
    assert runs.iloc[0]["status"] == "finished"


def test_phone_shot_evaluation_on_the_drawn_catalog(shapes_store, frozen):
    from recsys.encoders.evaluate_phone import evaluate_phone_shots

    ev = evaluate_phone_shots(shapes_store, "shapes", frozen, n=4, seed=0)
    m = ev.metrics
    assert ev.n_gallery == 24 and 1 <= ev.n_queries <= 4
    assert m["studio_exact_recall@1"] == 1.0        # the photo itself is in the gallery
    for key in ("phone_exact_recall@10", "phone_crop_exact_recall@10",
                "phone_same_type_precision@10"):
        assert 0.0 <= m[key] <= 1.0
    assert ev.run_id is not None


# -- calibrated stacking ---------------------------------------------------------------------------
def test_calibrated_stacking_names_an_unseen_type_the_seen_bias_took():
    """Seen types A, B were aligned on, C was not: a photo of C scores A a little higher
    (the seen bias). The gamma chosen on the validation scores flips it to C and keeps the
    seen photos right; without the calibration it stays A."""
    from recsys.encoders.calibration import (
        TypeCalibration,
        ValidationScores,
        choose_gamma,
        name_types,
    )

    classes = ["A", "B", "C"]
    seen = np.array([True, True, False])
    # validation photos: two seen (A, B: own score 0.9, C 0.3), two pseudo-unseen C photos
    # that the seen bias pushes toward A (0.6 vs 0.5)
    val = ValidationScores(np.array([[0.9, 0.2, 0.3], [0.2, 0.9, 0.3],
                                     [0.6, 0.1, 0.5], [0.55, 0.1, 0.5]]),
                           np.array([0, 1, 2, 2]), seen, np.array([False, False, True, True]))
    gamma, table = choose_gamma([val])
    assert table[0]["gamma"] == 0.0 and table[0]["unseen_accuracy"] == 0.0
    assert 0.1 < gamma < 0.6          # the smallest gamma that flips both C photos, no more
    assert next(r for r in table if r["gamma"] == gamma)["harmonic_mean"] == 1.0

    calib = TypeCalibration(seen_types=["A", "B"], gamma=gamma)
    vecs = np.eye(3, dtype=np.float32)
    photo = np.array([[0.6, 0.1, 0.5], [0.9, 0.2, 0.3]], np.float32)    # a C photo, an A photo
    assert list(name_types(photo, classes, vecs)) == ["A", "A"]
    assert list(name_types(photo, classes, vecs, calib)) == ["C", "A"]
    # every type seen (the in-distribution case): the same constant everywhere, no change
    everything = TypeCalibration(seen_types=classes, gamma=gamma)
    assert list(name_types(photo, classes, vecs, everything)) == ["A", "A"]
    # names match case- and space-insensitively; unknown types count as unseen
    assert list(calib.seen_mask(["a", " B ", "Z"])) == [True, True, False]


def test_pseudo_unseen_types_come_from_the_training_types_only():
    from recsys.encoders.calibration import draw_pseudo_unseen

    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5 + ["d"] * 5 + ["tiny"] * 2
    draws = draw_pseudo_unseen(labels, 2, draws=3, seed=0, min_photos=5)
    assert len(draws) == 3
    for d in draws:
        assert len(d) == 2 and set(d) <= {"a", "b", "c", "d"}
    assert draws == draw_pseudo_unseen(labels, 2, draws=3, seed=0, min_photos=5)
    assert len(draw_pseudo_unseen(labels, 10, 1, 0, 5)[0]) == 2      # at most half held out
    assert draw_pseudo_unseen(["a"] * 5, 1, 1, 0, 5) == []             # nothing to hold out
    kept = draw_pseudo_unseen(labels, 2, draws=5, seed=1, min_photos=5, exclude=["A", "b"])
    assert len(kept) == 5
    assert all(len(d) == 1 and set(d) <= {"c", "d"} for d in kept)   # excluded: never drawn


def test_held_out_types_calibration_is_chosen_without_the_test_types(shapes_store):
    """The alignment inside `--unseen-types` picks its gamma on pseudo-unseen types drawn
    among its own training types: never the held-out test type; the test type is not among
    the seen types either, so calibration can only raise it."""
    from recsys.encoders.evaluate_unseen import evaluate_unseen_types

    ev = evaluate_unseen_types(shapes_store, "shapes", k=1, seed=0, min_photos=5,
                               config={"epochs": 1, "max_steps": 1, "batch_size": 8,
                                       "calibration_types": 1, "calibration_draws": 2,
                                       "calibration_min_photos": 3},
                               baseline=None, record=False)
    calib = ev.calibration
    test_type = ev.unseen_types[0]
    assert test_type not in calib["seen_types"] and len(calib["seen_types"]) == 2
    draws = calib["validation"]["pseudo_unseen_types"]
    assert len(draws) == 2
    for d in draws:
        assert d and set(d) <= set(calib["seen_types"])
    assert calib["gamma"] == pytest.approx(calib["gamma_cosine"] * calib["score_scale"])
    for key in ("seen_accuracy", "unseen_vs_all_accuracy", "harmonic_accuracy"):
        assert 0.0 <= ev.metrics[key] <= 1.0


def test_checkpoint_records_its_aligned_types_and_old_ones_name_types_uncalibrated(
        shapes_store, tmp_path):
    from recsys.encoders.calibration import type_calibration
    from recsys.encoders.catalog_clip import load_checkpoint, train_catalog_clip

    info = train_catalog_clip(shapes_store, "shapes",
                              {"epochs": 1, "max_steps": 1, "batch_size": 8,
                               "calibration_types": 1, "calibration_draws": 1,
                               "calibration_min_photos": 3})
    calib = info.config["calibration"]
    assert calib["seen_types"] == ["Circle Badges", "Square Tiles", "Triangle Flags"]
    assert calib["validation"]["pseudo_unseen_types"][0][0] in calib["seen_types"]
    loaded = type_calibration(load_checkpoint(info.path))
    assert loaded is not None and loaded.seen_types == calib["seen_types"]
    assert loaded.gamma == calib["gamma"]

    # a checkpoint from before calibrated stacking (and before safetensors: torch.save's .pt,
    # read with weights_only=True): no list of types, no calibration
    from recsys.core.model_files import read_safetensors
    from recsys.encoders.checkpoints import METADATA_KEY

    tensors, metadata = read_safetensors(info.path)
    ckpt = {**json.loads(metadata[METADATA_KEY]), "format_version": 1, "state_dict": tensors}
    del ckpt["calibration"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    assert type_calibration(load_checkpoint(old)) is None
