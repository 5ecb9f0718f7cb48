"""Opening damaged databases, full disks and runs left 'running' by a killed process (issue 9,
items 5 and 7): clear StoreErrors, the file untouched, no masked errors, no eternal 'running'.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from recsys.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]


def damaged(good: bytes) -> dict[str, bytes]:
    half = len(good) // 2
    return {"random bytes": os.urandom(len(good)), "text file": b"name,price\nshirt,10\n" * 50,
            "empty file": b"", "truncated to half": good[:half],
            "truncated to 4 KB": good[:4096], "truncated to 100 B": good[:100],
            "blocks zeroed": good[:8192] + b"\0" * (len(good) - 8192)}


@pytest.mark.parametrize("case", ["random bytes", "text file", "empty file", "truncated to half",
                                  "truncated to 4 KB", "truncated to 100 B", "blocks zeroed"])
def test_damaged_database_gives_a_clear_store_error(tmp_path: Path, good_db: bytes, case):
    path = tmp_path / "bad.duckdb"
    data = damaged(good_db)[case]
    path.write_bytes(data)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="damaged or incomplete.*Restore it from a backup"):
            Store(path, read_only=read_only)
    assert path.read_bytes() == data            # never "repaired" or overwritten


def test_folder_and_missing_read_only_database(tmp_path: Path):
    (tmp_path / "dir.duckdb").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path / "dir.duckdb")
    with pytest.raises(StoreError, match="does not exist yet"):
        Store(tmp_path / "none.duckdb", read_only=True)


# -- full disk ---------------------------------------------------------------------------------
def test_disk_full_inside_a_transaction_is_a_store_error(store: Store):
    with pytest.raises(StoreError, match="disk holding the database .* is full"):
        with store.transaction() as cur:
            store.upsert_dataset(cur, "shop", "catalog")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert store.dataset_names() == []
    with pytest.raises(StoreError, match="is full"):
        with store.transaction():
            raise duckdb.IOException('IO Error: Could not write file "x.duckdb": No space left '
                                     "on device")


def test_a_failing_rollback_does_not_mask_the_original_error(store: Store):
    """When DuckDB has already ended the transaction, ROLLBACK fails ("no transaction is
    active"); the caller must still see the error that happened, not that one."""
    with pytest.raises(StoreError, match="is full"):
        with store.transaction() as cur:
            cur.rollback()
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyError, match="original"):
        with store.transaction() as cur:
            cur.rollback()
            raise KeyError("original")
    assert store.dataset_names() == []          # and the store still works


def _fill_disk_script(db: Path, csv: Path, images: Path) -> str:
    return textwrap.dedent(f"""
        import resource, signal, sys
        from recsys.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
        limit = {db.stat().st_size} + 4096
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        sys.exit(main(["import-catalog", "--db", {str(db)!r}, "--csv", {str(csv)!r},
                       "--images", {str(images)!r}, "--dataset", "big"]))
    """)


def test_import_onto_a_full_disk_says_so_and_changes_nothing(tmp_path: Path):
    """A real write failure: the importing process may not grow any file past its size
    (RLIMIT_FSIZE, portable), so DuckDB's write or COMMIT fails like on a full disk."""
    from ..import_helpers import make_catalog

    db = tmp_path / "full.duckdb"
    s = Store(db)
    with s.transaction() as cur:
        s.upsert_dataset(cur, "shop", "catalog")
    s.close()
    rows = [{"id": f"i{n}", "title": "x" * 200 + str(n), "description": os.urandom(300).hex()}
            for n in range(6000)]
    csv = make_catalog(tmp_path, rows)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", _fill_disk_script(db, csv, tmp_path / "images")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "is full" in out.stderr and "Traceback" not in out.stderr
    s = Store(db)
    assert s.dataset_names() == ["shop"] and s.counts("shop")["items"] == 0
    s.close()


# -- runs of a killed process -------------------------------------------------------------------
def test_runs_of_a_killed_process_become_interrupted(tmp_path: Path):
    db = tmp_path / "runs.duckdb"
    Store(db).close()
    script = textwrap.dedent(f"""
        import os, signal
        from recsys.store import Store
        s = Store({str(db)!r})
        run_id = s.start_run("shop", "model", "ease", {{}})
        print(run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == -signal.SIGKILL
    run_id = int(out.stdout.split()[0])
    reader = Store(db, read_only=True)          # a reader changes nothing
    assert reader.run(run_id)["status"] == "running"
    reader.close()
    s = Store(db)                               # the next writer marks it
    run = s.run(run_id)
    assert run["status"] == "interrupted" and run["message"] == "stopped unexpectedly"
    assert run["finished_at"] is not None
    # a run this process is running is left alone by another Store on the same file
    live = s.start_run("shop", "model", "ease", {})
    other = Store(db)
    assert other.run(live)["status"] == "running"
    s.finish_run(live, "finished", 1.0)
    assert other.run(live)["status"] == "finished"
    other.close()
    s.close()
