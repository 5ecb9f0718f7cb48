"""Encoder checkpoints: safetensors + JSON config; a damaged one (truncated, bad JSON config,
tower settings out of range, wrong or missing tensors, NaN weights, a file swapped for another
version) is a `DamagedCheckpoint` asking to align again; an old `.pt` whose pickle calls
`os.system` is refused (the marker file it would create never appears); the aligned types a
checkpoint records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recsys.core.model_files import read_safetensors, write_safetensors
from recsys.encoders.checkpoints import (
    METADATA_KEY,
    NAME,
    DamagedCheckpoint,
    load_checkpoint,
    save_checkpoint,
)

from ..evil_files import evil_checkpoint


def test_the_payload_really_runs_with_the_old_loader(tmp_path: Path):
    """The test's own check: what the old loader did with this file."""
    marker = tmp_path / "ran"
    evil_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)   # noqa: the old, unsafe way
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_a_malicious_pt_is_refused_by_the_loader(tmp_path: Path, legacy: bool):
    marker = tmp_path / "ran"
    path = evil_checkpoint(tmp_path / "evil.pt", marker, legacy)
    with pytest.raises(DamagedCheckpoint, match="old .pt file that cannot be read safely"):
        load_checkpoint(path)
    from recsys.encoders import get_encoder
    with pytest.raises(DamagedCheckpoint):
        get_encoder(f"catalog-clip:{path}")                 # what a Ray worker loads
    assert not marker.exists()


# -- damaged checkpoints ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    from recsys.encoders.clip_config import default_tower
    from recsys.encoders.hybrid import build_catalog_model

    folder = tmp_path_factory.mktemp("ckpt")
    cfg = default_tower()
    model = build_catalog_model(cfg, pretrained=False)
    return save_checkpoint(model, folder / "good.pt", version="shop-1", dataset="shop",
                           tower=cfg, config={"epochs": 1})


def rewrite(good: Path, out: Path, tensors=None, header=None) -> Path:
    t, meta = read_safetensors(good)
    h = json.loads(meta[METADATA_KEY])
    if tensors is not None:
        t = tensors(t)
    if header is not None:
        h = header(h)
    write_safetensors(out, t, {METADATA_KEY: h if isinstance(h, str) else json.dumps(h)})
    return out


def _nan(t):
    key = next(k for k, v in t.items() if v.is_floating_point() and v.numel() > 10)
    t[key] = t[key].clone()
    t[key].view(-1)[3] = float("nan")
    return t


def _reshape(t):
    key = next(k for k, v in t.items() if v.ndim == 2)
    t[key] = t[key][:-1].clone()
    return t


def _drop(t):
    t.pop(next(iter(t)))
    return t


def _tower(**change):
    def edit(h):
        h["tower"] = {**h["tower"], **change}
        return h
    return edit


CKPT_DAMAGE = {
    "truncated": (None, "not a complete safetensors file"),
    "config not JSON": (dict(header=lambda h: '{"format": "recsys-catalog-clip", "na'),
                        "config is not valid JSON"),
    "another format": (dict(header=lambda h: {**h, "format": "something-else"}),
                       "not a catalog-clip checkpoint"),
    "version with a path": (dict(header=lambda h: {**h, "version": "../../x\nsecret"}),
                            "version is not a plain name"),
    "image size of a million": (dict(header=_tower(image_size=1_000_000)),
                                "tower settings are outside"),
    "unknown trunk": (dict(header=_tower(image_trunk="vit_huge_patch14_clip_224")),
                      "tower settings are outside"),
    "NaN dimension": (dict(header=_tower(init_temperature=float("nan"))),
                      "tower settings are outside|not valid JSON"),
    "calibration of another kind": (dict(header=lambda h: {**h, "calibration": {
        "seen_types": "Shirts", "gamma": "high"}}), "calibration is not a calibration"),
    "NaN weights": (dict(tensors=_nan), "not numbers"),
    "wrong-shape weights": (dict(tensors=_reshape), "wrong shape"),
    "a tensor missing": (dict(tensors=_drop), "not the ones of its architecture"),
}


@pytest.mark.parametrize("kind", list(CKPT_DAMAGE))
def test_each_kind_of_checkpoint_damage_is_refused(good_checkpoint: Path, tmp_path: Path, kind):
    change, reason = CKPT_DAMAGE[kind]
    path = tmp_path / "bad.safetensors"
    if change is None:
        data = good_checkpoint.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        rewrite(good_checkpoint, path, **change)
    with pytest.raises(DamagedCheckpoint, match=reason) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"The encoder checkpoint {path} is damaged")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_good_checkpoint_loads_and_a_swapped_one_is_refused(good_checkpoint: Path, store):
    assert good_checkpoint.suffix == ".safetensors"
    assert good_checkpoint.read_bytes()[8:9] == b"{"            # safetensors' JSON header
    from recsys.encoders.checkpoints import load_catalog_clip
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
    store.register_encoder(NAME, "shop-1", NAME, "shop", str(good_checkpoint), {})
    enc = load_catalog_clip(store, "shop", "shop-1")
    assert enc.spec == "catalog-clip@shop-1" and enc.dim == 640
    # the same file registered as another version: the vectors would not be its own
    store.register_encoder(NAME, "shop-2", NAME, "shop", str(good_checkpoint), {})
    with pytest.raises(DamagedCheckpoint, match="not the one registered as "
                                                "catalog-clip@shop-2"):
        load_catalog_clip(store, "shop", "shop-2")


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
