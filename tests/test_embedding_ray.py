"""Embedding with Ray Data (recsys/embedding_ray.py): local Ray with 2 CPUs, the 24-product
shapes catalog, the frozen towers. Same vectors as the in-process path, resumable after a
stop, throughput per worker, and the CLI joining a running Ray instance by its address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys.errors import RecsysError
from recsys.store import Store

from .encoder_helpers import draw_product, frozen, import_shapes, shapes_store  # noqa: F401

ray = pytest.importorskip("ray")

FROZEN = ("frozen", "lite0-minilm-v1")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module; the pipeline uses it as it is."""
    import logging

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def _cpus_freed(n: int, timeout: float = 30.0) -> bool:
    """Ray releases a stopped pipeline's actors asynchronously: wait (bounded) for them."""
    import time

    end = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < n:
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


class Stop(Exception):
    """What a progress callback raises to stop a run (as the app and Ctrl-C do)."""


def test_ray_embedding_resumes_after_a_stop_and_matches_in_process(local_ray, shapes_store,
                                                                   frozen):
    from recsys.embedding_ray import default_shard_dir, embed_items_ray
    from recsys.progress import Progress

    folder = default_shard_dir(shapes_store, "shapes", *FROZEN)
    seen: list[Progress] = []

    def stop_after_first_batch(p: Progress) -> None:
        seen.append(p)
        if p.stage == "ray" and p.done > 0:
            raise Stop

    with pytest.raises(Stop):
        embed_items_ray(shapes_store, "shapes", "frozen", workers=2, batch_size=4,
                        progress=stop_after_first_batch)
    kept = sorted(folder.glob("part-*.parquet"))
    assert kept, "the finished shards are kept"
    rows = pq.read_table(kept, columns=["modality"]).column("modality").to_pylist()
    photos_kept, texts_kept = rows.count("image"), rows.count("text")
    assert 0 < photos_kept < 24
    assert shapes_store.embedding_sets("shapes").empty, "nothing is imported before the end"
    assert _cpus_freed(2), "the stopped run let its workers go"

    rep = embed_items_ray(shapes_store, "shapes", "frozen", workers=2, batch_size=4)
    assert rep.resumed == {"image": photos_kept, "text": texts_kept}
    assert rep.encoded == {"image": 24 - photos_kept, "text": 24 - texts_kept}
    assert rep.embedded == {"image": 24, "text": 24} and not rep.failed
    assert not folder.exists(), "imported shards are deleted"
    assert rep.workers == 2 and rep.per_worker
    assert sum(w["photos"] for w in rep.per_worker) == 24 - photos_kept
    assert all(w["photos_per_s"] > 0 for w in rep.per_worker if w["photos"])
    assert "photos/s" in rep.summary() and "Resumed" in rep.summary()

    # the same vectors as the in-process encoder
    items = shapes_store.items("shapes").set_index("item_id")
    ids, vectors = shapes_store.embeddings("shapes", *FROZEN, "image")
    local = frozen.encode_images(list(items.loc[ids, "image_path"]))
    assert np.abs(vectors - local).max() < 2e-3
    hashes = shapes_store.embedding_hashes("shapes", *FROZEN, "text")
    assert hashes == dict(zip(items.index, items["content_hash"]))

    # up to date: no Ray work at all; more workers than CPUs is refused clearly
    again = embed_items_ray(shapes_store, "shapes", "frozen", workers=2)
    assert again.nothing_to_do and again.workers == 0 and again.seconds < 5
    with shapes_store.transaction() as cur:
        cur.execute("UPDATE items SET content_hash = 'new' WHERE item_id = 'red-ell-0'")
    with pytest.raises(RecsysError, match="offers 2 CPUs"):
        embed_items_ray(shapes_store, "shapes", "frozen", workers=3)


def test_cli_joins_a_running_ray_by_address_and_reports_workers(local_ray, tmp_path):
    """`embed --engine ray --ray-address ADDR` from another process: the package is shipped
    to the workers, a bad photo is reported and skipped, throughput per worker is printed."""
    db = tmp_path / "cli.duckdb"
    store = Store(db)
    import_shapes(store, tmp_path)
    bad = store.items("shapes", ["green-pol-0"])["image_path"].iloc[0]
    store.close()
    Path(bad).write_bytes(b"not a photo")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "recsys", "embed", "--db", str(db), "--encoder", "frozen",
           "--engine", "ray", "--ray-address", local_ray, "--workers", "1", "--batch-size", "8"]
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["engine"] == "ray" and out["address"] == local_ray and out["workers"] == 1
    assert out["embedded"] == {"image": 23, "text": 24} and list(out["failed"]) == ["green-pol-0"]
    [worker] = out["per_worker"]
    assert worker["photos"] == 24 and worker["photos_per_s"] > 0
    # the photo is fixed: only it is embedded again, and the text output names the worker
    draw_product("polygon", (30, 170, 60)).save(bad, "PNG")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 photos and 0 texts new or changed" in done.stdout
    assert "photos/s" in done.stdout and f"worker {worker['worker'].split(':')[0]}" in done.stdout
    store = Store(db, read_only=True)
    assert len(store.embedding_hashes("shapes", *FROZEN, "image")) == 24
    store.close()


# -- without Ray work --------------------------------------------------------------------------
def test_engine_options_are_checked(shapes_store):
    from recsys import usecases

    with pytest.raises(RecsysError, match="Unknown embedding engine"):
        usecases.embed(shapes_store, "shapes", "frozen", engine="spark")
    with pytest.raises(RecsysError, match="--engine ray"):
        usecases.embed(shapes_store, "shapes", "frozen", workers=2)
    with pytest.raises(RecsysError, match="at least 1"):
        usecases.embed(shapes_store, "shapes", "frozen", engine="ray", workers=0)


def test_missing_ray_is_a_clear_error(shapes_store, monkeypatch):
    from recsys.embedding_ray import RayUnavailable, ray_session

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayUnavailable, match=r"pip install 'ray\[data\]'"):
        with ray_session(None, 1):
            pass


def test_catalog_clip_loads_from_its_checkpoint_path_without_the_store(shapes_store, tmp_path):
    """What a Ray worker does: `portable_spec` resolves the checkpoint through the store once,
    then `get_encoder` builds the same encoder from the file alone."""
    from recsys.encoders import get_encoder, portable_spec
    from recsys.encoders.checkpoints import save_checkpoint
    from recsys.encoders.hybrid import build_catalog_model
    from recsys.encoders.towers import TowerConfig

    assert portable_spec("frozen") == "frozen"
    assert portable_spec("conse", shapes_store, "shapes") == "conse"
    cfg = TowerConfig()
    path = save_checkpoint(build_catalog_model(cfg, pretrained=False), tmp_path / "c.pt",
                           version="shapes-1", dataset="shapes", tower=cfg, config={})
    shapes_store.register_encoder("catalog-clip", "shapes-1", "catalog-clip", "shapes",
                                  str(path), {})
    spec = portable_spec(None, shapes_store, "shapes")
    assert spec == f"catalog-clip:{path}"
    assert portable_spec("catalog-clip@shapes-1", shapes_store) == spec
    enc = get_encoder(spec)
    assert enc.spec == "catalog-clip@shapes-1" and enc.kind == "catalog-clip"
    with pytest.raises(RecsysError, match="path or a version"):
        get_encoder(f"catalog-clip:{path.name}@shapes-1")
