"""The search index's files (issue 19, items 5 and 6): a full disk while they are written gives
the store's "disk is full" message and search answers from memory, with no half-written file
left and the previous generation intact; damaged files (manifest, slot table, faiss files) are
found when they are read and the index is rebuilt from the database.
"""

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
from recsys.search.item_index import ItemIndex
from recsys.search.vector_index import (
    IndexNotSaved,
    VectorIndex,
    VectorIndexError,
    index_dir,
)
from recsys.store import Store

from ..app_helpers import app_test, problems
from .test_vector_index import _catalog, clustered

ROOT = Path(__file__).resolve().parents[2]
FULL = "The disk holding the search index"
ENOSPC_TEXT = ("Error in void faiss::write_index(const Index*, IOWriter*) at faiss/impl/io.cpp: "
               "fwrite failed: No space left on device")


def _shop(store: Store, n: int = 400) -> tuple[list[str], np.ndarray]:
    ids = _catalog(store, "shop", n)
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
    index = VectorIndex.for_dataset(store, "shop")
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
    first = VectorIndex.for_dataset(store, "shop")
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
    updated = VectorIndex.for_dataset(store, "shop")
    assert updated.meta["persisted"] is False and "is full" in updated.meta["warning"]
    np.testing.assert_allclose(updated.vector(ids[0], "image"), img[9], atol=1e-6)
    assert _generation_files(folder) == before                      # old generation, no tmp
    assert (folder / "manifest.json").read_bytes() == manifest
    monkeypatch.undo()
    again = VectorIndex.for_dataset(store, "shop")                  # space again: saved
    assert again.meta.get("persisted", True) and again.meta["files"] != first.meta["files"]


def test_other_write_failures_are_said_plainly(store: Store, monkeypatch):
    import faiss

    _shop(store)
    monkeypatch.setattr(faiss, "write_index", lambda *a: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied")))
    index = VectorIndex.for_dataset(store, "shop")
    assert index.meta["warning"].startswith("The search index could not be saved in")
    assert "Permission denied" in index.meta["warning"]
    with pytest.raises(IndexNotSaved):
        index.save(index_dir(store, "shop", "enc", "v1"))


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
    VectorIndex.for_dataset(store, "shop")
    folder = index_dir(store, "shop", "enc", "v1")
    _damage(folder, kind)
    with pytest.raises(VectorIndexError, match=INDEX_DAMAGE[kind]):
        VectorIndex.load(folder)
    rebuilt = VectorIndex.for_dataset(store, "shop")         # from the database
    assert rebuilt.meta["action"] == "built" and len(rebuilt) == len(ids)
    hits = rebuilt.search({"image": img[7]}, {"image": 1.0}, k=3)
    assert rebuilt.item_ids[hits.slots[0]] == ids[7]
    VectorIndex.load(folder)                                 # the new files are whole
