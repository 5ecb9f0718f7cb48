"""The search index's files: persisted and updated incrementally, one set per database, an
approximate part above the threshold; a full disk or a file size limit while they are written
gives the store's "disk is full" message and search answers from memory, with no half-written
file left and the previous generation intact; damaged files (manifest, slot table, faiss files)
are found when they are read and the index is rebuilt from the database."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.search.index_files import (
    IndexNotSaved,
    index_dir,
    index_for_dataset,
    load_index,
    save_index,
)
from recsys.search.item_index import ItemIndex
from recsys.search.vector_index import VectorIndexError
from recsys.store import Store

from ..app_helpers import app_test, problems
from .test_vector_index import clustered, vector_catalog

ROOT = Path(__file__).resolve().parents[2]
FULL = "The disk holding the search index"
ENOSPC_TEXT = ("Error in void faiss::write_index(const Index*, IOWriter*) at faiss/impl/io.cpp: "
               "fwrite failed: No space left on device")


def _shop(store: Store, n: int = 400) -> tuple[list[str], np.ndarray]:
    ids = vector_catalog(store, "shop", n)
    img = clustered(n, 8, 7)
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, img, [f"h{i}" for i in range(n)])
    return ids, img


def no_space(*args, **kwargs):
    raise RuntimeError(ENOSPC_TEXT)


def _generation_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_a_full_disk_while_writing_keeps_the_index_in_memory(store: Store, monkeypatch):
    import faiss

    ids, img = _shop(store)
    monkeypatch.setattr(faiss, "write_index", no_space)
    index = index_for_dataset(store, "shop")
    assert index.meta["persisted"] is False
    warning = index.meta["warning"]
    assert warning.startswith(FULL) and "is full" in warning
    assert "search answers from memory" in warning and "Free some space" in warning
    hits = index.search({"image": img[3]}, {"image": 1.0}, k=5)
    assert index.item_ids[hits.slots[0]] == ids[3]                  # answers from memory
    folder = index_dir(store, "shop", "enc", "v1")
    assert _generation_files(folder) == set()                       # nothing half-written
    item_index = ItemIndex(index)
    assert item_index.notes == [warning]


def test_a_failed_update_leaves_the_previous_generation_whole(store: Store, monkeypatch):
    import faiss

    ids, img = _shop(store)
    first = index_for_dataset(store, "shop")
    folder = index_dir(store, "shop", "enc", "v1")
    before = _generation_files(folder)
    manifest = (folder / "manifest.json").read_bytes()
    store.upsert_embeddings("shop", "enc", "v1", "image", [ids[0]], img[[9]], ["changed"])
    real = faiss.write_index
    calls = []

    def second_write_fails(index, path):          # the flat file is written, the slots not
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(index, path)

    monkeypatch.setattr(faiss, "write_index", second_write_fails)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    updated = index_for_dataset(store, "shop")
    assert updated.meta["persisted"] is False and "is full" in updated.meta["warning"]
    np.testing.assert_allclose(updated.vector(ids[0], "image"), img[9], atol=1e-6)
    assert _generation_files(folder) == before                      # old generation, no tmp
    assert (folder / "manifest.json").read_bytes() == manifest
    monkeypatch.undo()
    again = index_for_dataset(store, "shop")                  # space again: saved
    assert again.meta.get("persisted", True) and again.meta["files"] != first.meta["files"]


def test_other_write_failures_are_said_plainly(store: Store, monkeypatch):
    import faiss

    _shop(store)
    monkeypatch.setattr(faiss, "write_index", lambda *a: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied")))
    index = index_for_dataset(store, "shop")
    assert index.meta["warning"].startswith("The search index could not be saved in")
    assert "Permission denied" in index.meta["warning"]
    with pytest.raises(IndexNotSaved):
        save_index(index, index_dir(store, "shop", "enc", "v1"))


def test_a_real_file_size_limit_while_the_index_is_written(tmp_path: Path):
    """A process that may not grow any file past 64 KB (RLIMIT_FSIZE, as a full disk): faiss's
    write fails; the search still answers, the message is the store's, no traceback, and no
    file of the failed generation is left."""
    db = tmp_path / "shop.duckdb"
    store = Store(db)
    ids, _ = _shop(store, 3000)
    store.close()
    script = textwrap.dedent(f"""
        import resource, signal
        from recsys.search.item_index import ItemIndex
        from recsys.store import Store
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # writes past the limit get EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        store = Store({str(db)!r}, read_only=True)
        index = ItemIndex.from_store(store, "shop")
        result = index.similar({ids[5]!r}, k=3)
        print("FOUND", result.item_ids)
        print("NOTES", index.notes)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert "FOUND ['sku" in out.stdout
    assert f"NOTES ['{FULL}" in out.stdout and "is full" in out.stdout
    folder = index_dir(Store(db, read_only=True), "shop", "enc", "v1")
    assert not [p for p in _generation_files(folder) if not p.endswith(".json")]


def test_search_and_the_page_say_the_disk_is_full_and_still_answer(app_db: Path, monkeypatch):
    import faiss

    monkeypatch.setattr(faiss, "write_index", no_space)
    store = Store(app_db)
    try:
        item = store.item_ids("demo")[0]
        hits = usecases.search_similar(store, "demo", item_id=item, k=5)
        assert len(hits.rows()) == 5
        assert hits.notes and hits.notes[0].startswith(FULL)
        assert usecases.prepare_search(store, "demo").notes == hits.notes
    finally:
        store.close()
    at = app_test(app_db, "app_pages/visual_search.py")
    assert not problems(at), problems(at)
    assert any(w.value.startswith(FULL) for w in at.warning)


# -- damaged index files ----------------------------------------------------------------------
def _damage(folder: Path, kind: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["files"]
    if kind == "manifest not JSON":
        (folder / "manifest.json").write_text('{"format": 1, "dims": ')
    elif kind == "manifest points outside":
        manifest["files"]["flat"] = "../../../../etc/passwd"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "huge dimension":
        manifest["dims"] = {"image": 10 ** 9}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "flat truncated":
        path = folder / files["flat"]
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "slots truncated":
        path = folder / files["slots"]
        path.write_bytes(path.read_bytes()[:500])
    elif kind == "slots of another length":
        with np.load(folder / files["slots"], allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["alive"] = arrays["alive"][:-1]
        path = folder / files["slots"]
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        manifest["sizes"][files["slots"]] = path.stat().st_size   # a consistent liar
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "ids that are not live slots":
        import faiss
        index = faiss.read_index(str(folder / files["flat"]))
        ids = faiss.vector_to_array(index.id_map)
        ids[0] = 10 ** 9
        faiss.copy_array_to_vector(ids, index.id_map)
        path = folder / files["flat"]
        faiss.write_index(index, str(path))
        manifest["sizes"][files["flat"]] = path.stat().st_size
        (folder / "manifest.json").write_text(json.dumps(manifest))
    else:
        raise ValueError(kind)


INDEX_DAMAGE = {"manifest not JSON": "not valid JSON",
                "manifest points outside": "file names that are not its own",
                "huge dimension": "no valid modalities",
                "flat truncated": "size changed",
                "slots truncated": "size changed",
                "slots of another length": "slot table does not fit together",
                "ids that are not live slots": "ids are not the live slots"}


@pytest.mark.parametrize("kind", list(INDEX_DAMAGE))
def test_damaged_index_files_are_found_and_rebuilt(store: Store, kind: str):
    ids, img = _shop(store)
    index_for_dataset(store, "shop")
    folder = index_dir(store, "shop", "enc", "v1")
    _damage(folder, kind)
    with pytest.raises(VectorIndexError, match=INDEX_DAMAGE[kind]):
        load_index(folder)
    rebuilt = index_for_dataset(store, "shop")         # from the database
    assert rebuilt.meta["action"] == "built" and len(rebuilt) == len(ids)
    hits = rebuilt.search({"image": img[7]}, {"image": 1.0}, k=3)
    assert rebuilt.item_ids[hits.slots[0]] == ids[7]
    load_index(folder)                                 # the new files are whole


def test_for_dataset_persists_and_updates_incrementally(store):
    ids = vector_catalog(store, "shop", 400)
    img, txt = clustered(400, 8, 7), clustered(400, 8, 8)
    hashes = [f"h{i}" for i in range(400)]
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, img, hashes)
    store.upsert_embeddings("shop", "enc", "v1", "text", ids[:300], txt[:300], hashes[:300])
    built = index_for_dataset(store, "shop")
    assert built.meta["action"] == "built" and len(built) == 400 and built.readonly
    folder = index_dir(store, "shop", "enc", "v1")
    assert (folder / "manifest.json").is_file() and folder.parent.parent.name == "shop"
    q = {"image": img[10], "text": img[10]}
    before = built.search(q, {"image": .5, "text": .5}, k=10)

    # round trip: unchanged vectors -> the same files are memory-mapped, same answers
    again = index_for_dataset(store, "shop")
    assert again.meta["files"] == built.meta["files"] and again.readonly
    same = again.search(q, {"image": .5, "text": .5}, k=10)
    assert list(same.slots) == list(before.slots)
    with pytest.raises(VectorIndexError, match="read-only"):
        again.add(["x"], {"image": img[:1]})

    # one item re-embedded (new content), one removed from the catalog, one added
    store.upsert_embeddings("shop", "enc", "v1", "image", [ids[10]], img[[20]], ["changed"])
    with store.transaction() as cur:
        cur.execute("DELETE FROM items WHERE dataset = 'shop' AND item_id = ?", [ids[11]])
        cur.execute("INSERT INTO items (dataset, item_id) VALUES ('shop', 'fresh')")
    store.upsert_embeddings("shop", "enc", "v1", "image", ["fresh"], img[[10]], ["hf"])
    updated = index_for_dataset(store, "shop")
    assert updated.meta["action"] == "updated" and len(updated) == 400
    assert ids[11] not in updated.item_ids and "fresh" in updated.item_ids
    np.testing.assert_allclose(updated.vector(ids[10], "image"), img[20], atol=1e-6)
    # the incrementally updated index answers exactly like a fresh build
    fresh = index_for_dataset(store, "shop", persist=False)
    for probe in (img[10], img[20], txt[3]):
        qq = {"image": probe, "text": probe}
        a = updated.search(qq, {"image": .7, "text": .3}, k=15)
        b = fresh.search(qq, {"image": .7, "text": .3}, k=15)
        assert list(updated.slot_ids[a.slots]) == list(fresh.slot_ids[b.slots])
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    assert len(list(folder.glob("flat.*.faiss"))) == 1       # old generations deleted

    # a new encoder version is another index; a dataset without vectors is a clear error
    store.upsert_embeddings("shop", "enc", "v2", "image", ids[:50], img[:50], hashes[:50])
    assert len(index_for_dataset(store, "shop", "enc", "v2")) == 49   # ids[11] is gone
    with pytest.raises(VectorIndexError, match="embed"):
        index_for_dataset(store, "shop", "other")


def test_for_dataset_builds_ann_above_threshold(store):
    ids = vector_catalog(store, "big", 1200)
    x = clustered(1200, 16, 9)
    store.upsert_embeddings("big", "enc", "v1", "image", ids, x, [None] * 1200)
    index = index_for_dataset(store, "big", ann_min_items=500)
    assert index.ann is not None and index.ann.ntotal == 1200
    assert index.search({"image": x[0]}, k=5).method == "ann"
    assert index_for_dataset(store, "big", ann_min_items=500).meta["files"] == \
        index.meta["files"]                                  # unchanged: reused as is
    small = index_for_dataset(store, "big", ann="never", ann_min_items=500)
    assert small.ann is None and small.search({"image": x[0]}, k=5).method == "exact"


def test_an_unwritable_folder_falls_back_to_an_in_memory_index(store, monkeypatch):
    import recsys.search.index_files as vi

    ids = vector_catalog(store, "shop", 50)
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, clustered(50, 8, 12), ids)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(vi, "index_dir", refuse)
    index = index_for_dataset(store, "shop")
    assert len(index) == 50 and index.meta["persisted"] is False and not index.readonly


def test_an_unchanged_index_leaves_the_store_usable(store):
    """Regression: the fingerprint query left a half-read DuckDB result on the cursor, so the
    CLI's second search (index unchanged) failed in `store.items(dataset, ids)`."""
    ids = vector_catalog(store, "shop", 20)
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, clustered(20, 4, 14), ids)
    ItemIndex.from_store(store, "shop")
    index = ItemIndex.from_store(store, "shop")                  # loaded as is
    res = index.search(image=clustered(1, 4, 15)[0], k=3)
    assert list(store.items("shop", res.item_ids)["item_id"]) == res.item_ids


def test_two_databases_in_one_folder_keep_their_own_index_files(tmp_path):
    """Index files are keyed by the database file (artifacts/<db stem>/indexes/...): a second
    database beside the first never loads (or overwrites) the first one's index, and each
    one's disk use counts only its own files."""
    from recsys.recommend.housekeeping import disk_usage

    stores = [Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")]
    try:
        answers = []
        for n, s in enumerate(stores):
            ids = vector_catalog(s, "shop", 60 + 20 * n)
            vecs = clustered(len(ids), 6, 30 + n)
            s.upsert_embeddings("shop", "enc", "v1", "image", ids, vecs, ids)
            index = index_for_dataset(s, "shop")
            assert index.meta["action"] == "built" and len(index) == len(ids)
            answers.append(index.search({"image": vecs[0]}, {"image": 1.0}, k=5))
        dirs = [index_dir(s, "shop", "enc", "v1") for s in stores]
        assert dirs[0] != dirs[1]
        assert dirs[0].is_relative_to(tmp_path / "artifacts" / "a")
        # reopened: each database memory-maps its own index, with its own size
        for s, size in zip(stores, (60, 80)):
            again = index_for_dataset(s, "shop")
            assert again.meta["action"] == "built" and len(again) == size   # loaded as saved
        usage = [disk_usage(s) for s in stores]
        own = [sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) for d in dirs]
        assert usage[0].indexes == own[0] and usage[1].indexes == own[1]
    finally:
        for s in stores:
            s.close()
