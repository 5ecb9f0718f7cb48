"""Nothing in a model file runs code (issue 19, item 1), and encoder checkpoints are validated
before use (item 6).

* No pickle, `torch.load(weights_only=False)`, `np.load(allow_pickle=True)` or `joblib.load` in
  the code the app and the CLI run (`recsys/`, `app.py`, `app_pages/`, `ui/`): a text search,
  and a syntax-tree check that every `torch.load` says `weights_only=True`.
* A `.pt` whose pickle calls `os.system` is refused on the paths a user hits (`search --text`
  through the use case and the CLI, a `catalog-clip:PATH` spec): the marker file it would
  create never appears.
* Checkpoints are safetensors + JSON config; a damaged one (truncated, bad JSON config, tower
  settings out of range, wrong or missing tensors, NaN weights, a file swapped for another
  version) is a `DamagedCheckpoint` asking to align again.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from recsys import usecases
from recsys.cli import main
from recsys.core.model_files import read_safetensors, write_safetensors
from recsys.encoders.checkpoints import (
    CHECKPOINT_FORMAT,
    METADATA_KEY,
    NAME,
    DamagedCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from recsys.store import Store

ROOT = Path(__file__).resolve().parents[2]
SERVED = [ROOT / "recsys", ROOT / "app.py", ROOT / "app_pages", ROOT / "ui"]
FORBIDDEN = {
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "joblib.load": re.compile(r"\bjoblib\s*\.\s*load"),
    "pickle": re.compile(r"\bimport\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b|"
                         r"\bfrom\s+(c?pickle|dill|cloudpickle|shelve|marshal)\s+import|"
                         r"\b(c?pickle|dill|cloudpickle|marshal)\s*\.\s*loads?\s*\(|"
                         r"\bread_pickle\s*\(|\bshelve\s*\.\s*open\s*\("),
}


def served_files() -> list[Path]:
    out = []
    for root in SERVED:
        out += [root] if root.is_file() else sorted(root.rglob("*.py"))
    return out


def test_no_unsafe_deserialisation_in_the_served_code():
    found = []
    for path in served_files():
        text = path.read_text()
        for what, pattern in FORBIDDEN.items():
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, "unsafe deserialisation:\n" + "\n".join(found)


def test_every_torch_and_numpy_load_is_the_safe_one():
    """`torch.load` only with a literal `weights_only=True`; `np.load` never with
    `allow_pickle` other than a literal False (its default is False)."""
    bad = []
    for path in served_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or \
                    node.func.attr != "load" or not isinstance(node.func.value, ast.Name):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if node.func.value.id == "torch":
                v = kw.get("weights_only")
                if not (isinstance(v, ast.Constant) and v.value is True):
                    bad.append(f"{where}: torch.load without weights_only=True")
            elif node.func.value.id in ("np", "numpy"):
                v = kw.get("allow_pickle")
                if v is not None and not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{where}: np.load with allow_pickle not False")
    assert not bad, "\n".join(bad)


# -- a malicious .pt ------------------------------------------------------------------------------
class RunsCode:
    """A pickle that runs a shell command when it is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A .pt that looks like a catalog-clip checkpoint and runs `touch marker` when loaded
    with `weights_only=False` (the old loader)."""
    payload = {"format": CHECKPOINT_FORMAT, "name": NAME, "version": "evil-1",
               "tower": {}, "state_dict": {}, "config": RunsCode(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


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


@pytest.fixture
def evil_store(app_db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The set-up demo with a newer catalog-clip 'checkpoint' that is the malicious .pt, and
    item vectors of that version (so search uses it)."""
    marker = tmp_path / "ran"
    path = evil_checkpoint(tmp_path / "evil-1.pt", marker)
    store = Store(app_db)
    ids = store.item_ids("demo")
    rng = np.random.default_rng(0)
    store.register_encoder(NAME, "evil-1", NAME, "demo", str(path), {})
    for modality in ("image", "text"):
        store.upsert_embeddings("demo", NAME, "evil-1", modality, ids,
                                rng.standard_normal((len(ids), 640)).astype(np.float32),
                                [None] * len(ids))
    store.close()
    return app_db, marker


def test_search_text_through_the_use_case_does_not_run_the_pickle(evil_store):
    db, marker = evil_store
    store = Store(db)
    try:
        with pytest.raises(DamagedCheckpoint, match="cannot be read safely.*Align the encoder "
                                                    "again"):
            usecases.search_similar(store, "demo", text="red summer dress")
        with pytest.raises(DamagedCheckpoint):
            usecases.prepare_search(store, "demo")
    finally:
        store.close()
    assert not marker.exists()


def test_cli_search_text_does_not_run_the_pickle(evil_store, capsys):
    db, marker = evil_store
    code = main(["search", "--db", str(db), "--text", "red summer dress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: The encoder checkpoint")
    assert "cannot be read safely" in err and err.count("\n") == 1
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
