"""`python -m recsys` data commands: human text, --json, clear errors, exit codes; `status` on a
truncated or internally damaged database (one line, exit 2); imports that refuse a photo link
out of the images folder, keep the interactions on a header-only file, shrink only with
--replace, and say so when the disk is full."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import main
from recsys.store import HEADER_BYTES, Store, StoreError

from ..damaged_files import DAMAGED, damage, shop_database
from ..import_helpers import (
    make_catalog,
    write_file,
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_catalog_text_and_json(tmp_path: Path, capsys):
    csv = make_catalog(tmp_path)
    db = str(tmp_path / "cli.duckdb")
    code, out, _ = run(capsys, "import-catalog", "--db", db, "--csv", str(csv), "--images",
                       str(tmp_path / "images"), "--dataset", "shop", "--column", "item_id=sku",
                       "--column", "title=name", "--column", "image_path=image")
    assert code == 0 and "Imported 4 items into dataset 'shop'" in out
    code, out, _ = run(capsys, "status", "--db", db, "--json")
    data = json.loads(out)
    assert data["active_dataset"] == "shop" and data["datasets"][0]["items"] == 4


def test_refused_import_exits_non_zero(tmp_path: Path, capsys):
    csv = make_catalog(tmp_path, [{"id": "a", "title": "x", "image": "a.png"},
                                  {"id": "a", "title": "y", "image": "b.png"}])
    code, out, _ = run(capsys, "import-catalog", "--db", str(tmp_path / "c.duckdb"), "--csv",
                       str(csv), "--images", str(tmp_path / "images"), "--on-error", "refuse",
                       "--json")
    assert code == 1 and json.loads(out)["refused"] is True


def test_errors_are_one_clear_line(tmp_path: Path, capsys):
    db = str(tmp_path / "e.duckdb")
    code, out, err = run(capsys, "import-catalog", "--db", db, "--csv", str(tmp_path / "x.csv"))
    assert code == 2 and err.startswith("error: File not found") and "Traceback" not in err
    code, _, err = run(capsys, "simulate", "--db", db, "--users", "5")
    assert code == 2 and "init-demo" in err
    code, _, err = run(capsys, "use", "--db", db, "nope")
    assert code == 2 and "Unknown dataset 'nope'" in err
    code, _, err = run(capsys, "import-catalog", "--db", db, "--csv", "a", "--column", "oops")
    assert code == 2 and "FIELD=COLUMN" in err


def test_interactions_and_simulate_and_delete(tmp_path: Path, capsys):
    db = str(tmp_path / "i.duckdb")
    csv = make_catalog(tmp_path, [{"id": k, "title": f"Item {k}", "image": f"{k}.png",
                                   "article_type": "Shirts", "gender": "Men"} for k in "abcd"])
    assert run(capsys, "import-catalog", "--db", db, "--csv", str(csv), "--images",
               str(tmp_path / "images"), "--dataset", "shop")[0] == 0
    code, out, _ = run(capsys, "simulate", "--db", db, "--users", "7", "--seed", "1", "--json")
    assert code == 0 and json.loads(out)["users_with_history"] == 7
    code, _, err = run(capsys, "delete-dataset", "--db", db, "shop")
    assert code == 2 and "--yes" in err
    code, out, _ = run(capsys, "delete-dataset", "--db", db, "shop", "--yes")
    assert code == 0 and "Deleted" in out


def test_module_entry_point_runs(tmp_path: Path):
    out = subprocess.run([sys.executable, "-m", "recsys", "status", "--db",
                          str(tmp_path / "m.duckdb")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "No datasets yet" in out.stdout


def test_status_over_every_damaged_block_is_a_message_or_an_answer(tmp_path: Path, capsys):
    """Each block of a real database damaged in turn (the reported 1 MB of 0xff at offset
    2,000,000 too): `status` answers, or exits 2 with the damaged-file message; never a
    traceback. Most damage is only met by a query, after the open-time check passed."""
    good = shop_database(tmp_path / "good.duckdb")
    size = good.stat().st_size
    block = 262144
    offsets = [2_000_000] + list(range(HEADER_BYTES, size, block))
    at_query = 0
    for offset in offsets:
        path = tmp_path / "bad.duckdb"
        shutil.copy(good, path)
        damage(path, offset, (1 << 20) if offset == 2_000_000 else block)
        try:
            Store(path, read_only=True).close()
            opens = True
        except StoreError as exc:
            assert DAMAGED in str(exc)
            opens = False
        code = main(["status", "--db", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 2), (offset, err)
        if code == 2:
            assert DAMAGED in err and err.count("\n") == 1, (offset, err)
            at_query += opens
    assert at_query >= 3          # blocks of users, interactions and items met by queries


def test_cli_status_on_a_damaged_block_is_one_line(damaged_db: Path, capsys):
    code = main(["status", "--db", str(damaged_db)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and DAMAGED in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_images_folder_with_a_link_out_is_refused(tmp_path, outside_photo, capsys):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": "link.png"}])
    os.symlink(outside_photo, images / "link.png")
    db = str(tmp_path / "cli.duckdb")
    code = main(["import-catalog", "--db", db, "--csv", str(csv), "--images", str(images),
                 "--dataset", "shop"])
    out = capsys.readouterr().out
    assert code == 1 and "outside the images folder" in out and "secret" not in out
    s = Store(db)
    assert s.dataset_names() == []
    s.close()


def test_cli_header_only_import_keeps_the_interactions(tmp_path, capsys):
    db = str(tmp_path / "i.duckdb")
    csv = make_catalog(tmp_path, [{"id": k, "title": f"Item {k}", "image": f"{k}.png"}
                                  for k in "abcd"])
    assert main(["import-catalog", "--db", db, "--csv", str(csv), "--images",
                 str(tmp_path / "images"), "--dataset", "demo"]) == 0
    assert main(["import-interactions", "--db", db, str(write_file(tmp_path / "x.csv",
                 "user,item\nu1,a\nu2,b\n")), "--dataset", "demo"]) == 0
    capsys.readouterr()
    code = main(["import-interactions", "--db", db, str(write_file(tmp_path / "h.csv",
                 "user,item,event\n")), "--format", "csv", "--dataset", "demo"])
    assert code == 1 and "REFUSED" in capsys.readouterr().out
    s = Store(db)
    assert s.interaction_count("demo") == 2
    s.close()


def test_cli_replace_flag_shrinks_only_when_asked(tmp_path, capsys):
    db = str(tmp_path / "r.duckdb")
    csv = make_catalog(tmp_path, [{"id": k, "title": f"Item {k}", "image": f"{k}.png"}
                                  for k in "abcd"])
    assert main(["import-catalog", "--db", db, "--csv", str(csv), "--images",
                 str(tmp_path / "images"), "--dataset", "demo"]) == 0
    assert main(["import-interactions", "--db", db, str(write_file(tmp_path / "x.csv",
                 "user,item\nu1,a\nu2,b\nu3,c\n")), "--dataset", "demo"]) == 0
    one = str(write_file(tmp_path / "one.csv", "user,item\nu9,d\n"))
    capsys.readouterr()
    assert main(["import-interactions", "--db", db, one, "--dataset", "demo"]) == 1
    assert "--replace" in capsys.readouterr().out
    assert main(["import-interactions", "--db", db, one, "--dataset", "demo", "--replace"]) == 0
    s = Store(db)
    assert s.interaction_count("demo") == 1
    s.close()
    with pytest.raises(SystemExit):          # --append and --replace exclude each other
        main(["import-interactions", "--db", db, one, "--dataset", "demo", "--replace",
              "--append"])


def test_cli_on_a_truncated_database_is_one_line(tmp_path: Path, good_db: bytes, capsys):
    path = tmp_path / "bad.duckdb"
    path.write_bytes(good_db[: len(good_db) // 2])
    code = main(["status", "--db", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "damaged" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_import_onto_a_full_tmpfs(tmp_path: Path, capsys):
    """The same on a real 8 MB tmpfs (needs root and mount; skipped elsewhere)."""
    from ..import_helpers import make_catalog

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                                            str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        db = mnt / "full.duckdb"
        s = Store(db)
        with s.transaction() as cur:
            s.upsert_dataset(cur, "shop", "catalog")
        s.close()
        rows = [{"id": f"i{n}", "title": os.urandom(200).hex()} for n in range(20000)]
        csv = make_catalog(tmp_path, rows)
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(0, free - 200_000))
        code = main(["import-catalog", "--db", str(db), "--csv", str(csv), "--images",
                     str(tmp_path / "images"), "--dataset", "big"])
        err = capsys.readouterr().err
        assert code == 2 and "is full" in err and "Traceback" not in err
        (mnt / "filler").unlink()
        s = Store(db)
        assert s.dataset_names() == ["shop"]
        s.close()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
