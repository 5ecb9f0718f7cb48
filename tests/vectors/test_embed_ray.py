"""Embedding with Ray Data (recsys/vectors/embed_ray.py): local Ray with 2 CPUs, the 24-product
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

from recsys.core.errors import RecsysError
from recsys.store import Store

from ..encoder_helpers import draw_product, import_shapes

ray = pytest.importorskip("ray")

FROZEN = ("frozen", "lite0-minilm-v1")
ROOT = Path(__file__).resolve().parents[2]


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
    from recsys.core.progress import Progress
    from recsys.vectors.embed_ray import default_shard_dir, embed_items_ray

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
    assert again.nothing_to_do and again.workers == 0     # in seconds: a perf test below
    with shapes_store.transaction() as cur:
        cur.execute("UPDATE items SET content_hash = 'new' WHERE item_id = 'red-ell-0'")
    with pytest.raises(RecsysError, match="offers 2 CPUs"):
        embed_items_ray(shapes_store, "shapes", "frozen", workers=3)

    # item_ids: only those items are looked at (the changed one is embedded, nothing else is
    # encoded or removed)
    some = embed_items_ray(shapes_store, "shapes", "frozen", workers=1,
                           item_ids=["red-ell-0", "red-ell-1"])
    assert some.items == 2 and some.encoded == {"image": 1, "text": 1}
    assert some.embedded == {"image": 1, "text": 1} and some.removed == {"image": 0, "text": 0}
    assert shapes_store.embedding_hashes("shapes", *FROZEN, "image")["red-ell-0"] == "new"
    assert len(shapes_store.embedding_hashes("shapes", *FROZEN, "image")) == 24


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wrong_addresses_are_refused(local_ray) -> float:
    """Each kind of wrong address is refused with what is wrong; the seconds it all took."""
    import socket
    import threading
    import time

    from recsys.vectors.ray_cluster import RayUnavailable, probe_address

    probe_address(local_ray)                   # the running Ray instance answers
    start = time.monotonic()
    with pytest.raises(RayUnavailable, match="nothing answers"):
        probe_address(f"127.0.0.1:{_free_port()}", timeout=2)
    with pytest.raises(RayUnavailable, match="does not resolve"):
        probe_address("no-such-head.invalid:6379", timeout=2)
    with pytest.raises(RayUnavailable, match="not a Ray address"):
        probe_address("head-node", timeout=2)

    server = socket.socket()                   # a server that is not Ray: HTTP/1
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"HTTP/1.0 400 Bad request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with pytest.raises(RayUnavailable, match="not Ray"):
        probe_address(f"127.0.0.1:{server.getsockname()[1]}", timeout=2)
    server.close()
    return time.monotonic() - start


def _cli_on_a_closed_port_is_one_line(tmp_path) -> float:
    """The CLI in a fresh process (no Ray session yet) given a closed port: one line, exit
    code 2, nothing imported; the seconds the command took."""
    import time

    db = tmp_path / "c.duckdb"
    store = Store(db)
    import_shapes(store, tmp_path)
    store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "recsys", "embed", "--db", str(db),
                           "--encoder", "frozen", "--engine", "ray", "--ray-address",
                           f"127.0.0.1:{_free_port()}"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    seconds = time.monotonic() - start
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]     # after the progress bar
    assert last.startswith("error: Cannot reach the Ray cluster at 127.0.0.1:"), last
    assert "Traceback" not in done.stderr
    store = Store(db, read_only=True)
    assert store.embedding_sets("shapes").empty
    store.close()
    return seconds


def test_an_unreachable_cluster_is_a_fast_clear_error(local_ray, tmp_path):
    """`ray.init(address=...)` alone retries a wrong address for minutes: the probe answers,
    saying what is wrong (regression: the CLI hung on a closed port; the probes' own timeouts
    and the command's bound it here, the perf test below checks the seconds)."""
    _wrong_addresses_are_refused(local_ray)
    _cli_on_a_closed_port_is_one_line(tmp_path)


@pytest.mark.perf
def test_an_unreachable_cluster_is_reported_in_seconds(local_ray, tmp_path):
    assert _wrong_addresses_are_refused(local_ray) < 15
    assert _cli_on_a_closed_port_is_one_line(tmp_path) < 60


@pytest.mark.perf
def test_an_up_to_date_catalog_needs_no_ray_work(local_ray, shapes_store):
    from recsys.vectors.embed_ray import embed_items_ray

    embed_items_ray(shapes_store, "shapes", "frozen", workers=2, batch_size=4)
    again = embed_items_ray(shapes_store, "shapes", "frozen", workers=2)
    assert again.nothing_to_do and again.workers == 0
    assert again.seconds < 5


# -- without Ray work --------------------------------------------------------------------------
def test_engine_options_are_checked(shapes_store):
    from recsys import usecases

    with pytest.raises(RecsysError, match="Unknown embedding engine"):
        usecases.embed(shapes_store, "shapes", "frozen", engine="spark")
    with pytest.raises(RecsysError, match="--engine ray"):
        usecases.embed(shapes_store, "shapes", "frozen", workers=2)
    with pytest.raises(RecsysError, match="at least 1"):
        usecases.embed(shapes_store, "shapes", "frozen", engine="ray", workers=0)
    with pytest.raises(RecsysError, match="local engine only"):
        usecases.embed(shapes_store, "shapes", "frozen", engine="ray", videos="clips/")


def test_shard_import_rules_and_fresh_timestamps(shapes_store, tmp_path):
    """`Store.import_embedding_shards`, without Ray: bad rows, gone items and changed hashes
    are left out, the newest shard wins, and a replaced vector gets a new `created_at`
    (regression: INSERT OR REPLACE kept the old one, so caches keyed on `updated_at` missed
    re-embedded vectors)."""
    import time

    import pyarrow as pa

    from recsys.vectors.embed_ray import ShardDir

    items = shapes_store.items("shapes").set_index("item_id")
    a, b, c = "red-ell-0", "red-ell-1", "blue-ell-0"
    shapes_store.upsert_embeddings("shapes", "toy", "1", "image", [a],
                                   np.zeros((1, 2), np.float32), [items.loc[a, "content_hash"]])
    before = shapes_store.embedding_sets("shapes")["updated_at"].max()
    time.sleep(0.01)

    def shard(rows):
        ids, vecs, hashes, errors = zip(*rows)
        return pa.table({"item_id": list(ids), "modality": ["image"] * len(ids),
                         "content_hash": list(hashes),
                         "vector": pa.array([list(v) for v in vecs], pa.list_(pa.float32())),
                         "error": pa.array(list(errors), pa.string())})

    shards = ShardDir(tmp_path / "shards")
    h = items["content_hash"]
    shards.write(shard([(a, (1, 0), h[a], None), (b, (1, 0), h[b], None),
                        (c, (1, 0), h[c], None), ("gone", (1, 0), "x", None)]))
    shards.write(shard([(a, (0, 1), h[a], None), (b, (0, 1), h[b], "unreadable photo"),
                        (c, (0, 1), "an older hash", None)]))
    counts = shapes_store.import_embedding_shards("shapes", "toy", "1", shards.files())
    assert counts == {"image": 3}
    ids, vectors = shapes_store.embeddings("shapes", "toy", "1", "image")
    got = dict(zip(ids, vectors.tolist()))
    assert got == {a: [0, 1], b: [1, 0], c: [1, 0]}
    assert shapes_store.embedding_sets("shapes")["updated_at"].max() > before


def test_missing_ray_is_a_clear_error(shapes_store, monkeypatch):
    from recsys.vectors.ray_cluster import RayUnavailable, ray_session

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
