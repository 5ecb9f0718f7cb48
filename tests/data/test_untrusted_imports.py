"""Importers under hostile or careless input (issue 9, items 2-7): photos outside the images
folder, interaction wipes, dropped or shifted CSV rows, bad numbers and timestamps, deep JSON,
damaged or huge zips, upload folders. Every row is imported or reported; refusals change
nothing.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recsys.cli import main
from recsys.data.datasets import (
    DataImportError,
    ImportReport,
    discard_upload,
    extract_images,
    import_catalog,
    import_catalog_upload,
    import_interactions,
    import_interactions_upload,
    max_unpacked_bytes,
    read_table,
    upload_dir,
    uploads_root,
)
from recsys.store import Store

from .test_datasets import make_catalog, snapshot


def png_bytes(colour: str = "red", size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def adds_up(rep: ImportReport) -> bool:
    """The report's promise: every row read was imported or reported."""
    return rep.rows_read == rep.imported + rep.rows_skipped


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    """A 4-item catalog 'shop' (items a-d) with 6 interactions."""
    csv = make_catalog(tmp_path / "cat")
    import_catalog(store, csv, tmp_path / "cat" / "images", dataset="shop",
                   columns={"item_id": "sku", "title": "name", "image_path": "image"})
    log = write(tmp_path / "events.csv", "user,item,event\nu1,a,view\nu1,b,cart\nu2,c,view\n"
                                         "u2,d,purchase\nu3,a,view\nu3,b,view\n")
    rep = import_interactions(store, log, dataset="shop")
    assert rep.imported == 6
    return store


# -- item 2: photos must be inside the images folder -------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A private photo outside the images folder."""
    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "secret.png").write_bytes(png_bytes("black"))
    return secret / "secret.png"


def test_absolute_and_dotdot_paths_outside_the_folder_are_refused(store, tmp_path, outside):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [
        {"id": "ok", "title": "Fine", "image": "a.png"},
        {"id": "abs", "title": "Absolute", "image": str(outside)},
        {"id": "abs-missing", "title": "Absolute", "image": str(outside.parent / "none.png")},
        {"id": "up", "title": "Up", "image": "../../private/secret.png"},
        {"id": "up-missing", "title": "Up", "image": "../../private/none.png"},
        {"id": "inside-abs", "title": "Inside", "image": str(images.resolve() / "b.png")},
    ])
    rep = import_catalog(store, csv, images, dataset="shop")
    assert store.item_ids("shop") == ["inside-abs", "ok"]
    assert rep.problems == {"image path outside the images folder": 4} and adds_up(rep)
    text = rep.summary() + json.dumps(rep.to_dict())
    assert "private" not in text and "secret" not in text and "none.png" not in text
    # whether the outside file exists changes nothing in what is reported
    assert rep.examples["image path outside the images folder"] == \
        ["id abs", "id abs-missing", "id up", "id up-missing"]


def test_symlinks_out_of_the_folder_are_refused(store, tmp_path, outside):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [
        {"id": "link", "title": "Named link", "image": "link.png"},
        {"id": "auto", "title": "Photo found by id", "image": ""},
        {"id": "dirlink", "title": "Through a linked folder", "image": "sub/secret.png"},
        {"id": "ok", "title": "Fine", "image": "a.png"},
    ])
    os.symlink(outside, images / "link.png")
    os.symlink(outside, images / "auto.png")
    os.symlink(outside.parent, images / "sub")
    rep = import_catalog(store, csv, images, dataset="shop")
    assert rep.problems == {"image path outside the images folder": 2}
    items = store.items("shop").set_index("item_id")
    assert sorted(items.index) == ["auto", "ok"]       # 'auto' imported, but not with the secret
    assert pd.isna(items.loc["auto", "image_path"])
    assert adds_up(rep)


def test_symlinked_images_folder_and_links_inside_it_work(store, tmp_path):
    real = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": "a.png"},
                                          {"id": "b", "title": "B", "image": "alias.png"}])
    os.symlink(real / "b.png", real / "alias.png")
    os.symlink(real, tmp_path / "linked")
    rep = import_catalog(store, csv, tmp_path / "linked", dataset="shop")
    assert rep.imported == 2 and not rep.problems


def test_image_paths_without_a_folder_are_refused_per_row(store, tmp_path, outside):
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": str(outside)},
                                          {"id": "b", "title": "B", "image": ""}])
    rep = import_catalog(store, csv, None, dataset="shop")
    assert rep.problems == {"image path given but no images folder": 1}
    assert store.item_ids("shop") == ["b"] and "secret" not in rep.summary() and adds_up(rep)


def test_cli_images_folder_with_a_link_out_is_refused(tmp_path, outside, capsys):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": "link.png"}])
    os.symlink(outside, images / "link.png")
    db = str(tmp_path / "cli.duckdb")
    code = main(["import-catalog", "--db", db, "--csv", str(csv), "--images", str(images),
                 "--dataset", "shop"])
    out = capsys.readouterr().out
    assert code == 1 and "outside the images folder" in out and "secret" not in out
    s = Store(db)
    assert s.dataset_names() == []
    s.close()


# -- item 3: interactions are never wiped unasked ------------------------------------------------
@pytest.mark.parametrize("content", ["user,item,event\n", "user,item,event\nu9,zzz,view\n"
                                     "u9,yyy,view\n"])
def test_header_only_or_all_unknown_items_never_wipes(shop, tmp_path, content):
    before = snapshot(shop)
    for kwargs in ({}, {"replace": True}, {"append": True}):
        rep = import_interactions(shop, write(tmp_path / "log.csv", content), dataset="shop",
                                  **kwargs)
        assert rep.refused and rep.imported == 0 and "no" in rep.reason
        assert "REFUSED" in rep.summary() and snapshot(shop) == before


def test_replacing_with_fewer_rows_needs_replace(shop, tmp_path):
    log = write(tmp_path / "few.csv", "user,item\nu7,a\nu7,b\n")
    before = snapshot(shop)
    rep = import_interactions(shop, log, dataset="shop")
    assert rep.refused and "remove more than it adds" in rep.reason and "--replace" in rep.reason
    assert snapshot(shop) == before
    rep = import_interactions(shop, log, dataset="shop", append=True)
    assert rep.imported == 2 and shop.interaction_count("shop") == 8
    rep = import_interactions(shop, log, dataset="shop", replace=True)
    assert rep.imported == 2 and shop.interaction_count("shop") == 2
    assert rep.details["interactions replaced"] == 8
    with pytest.raises(DataImportError, match="not both"):
        import_interactions(shop, log, dataset="shop", append=True, replace=True)


def test_replacing_with_as_many_rows_is_allowed(shop, tmp_path):
    log = write(tmp_path / "same.csv", "user,item\n" + "".join(f"u{i},a\n" for i in range(6)))
    rep = import_interactions(shop, log, dataset="shop")
    assert not rep.refused and shop.interaction_count("shop") == 6


def test_cli_header_only_import_keeps_the_interactions(tmp_path, capsys):
    db = str(tmp_path / "i.duckdb")
    csv = make_catalog(tmp_path, [{"id": k, "title": f"Item {k}", "image": f"{k}.png"}
                                  for k in "abcd"])
    assert main(["import-catalog", "--db", db, "--csv", str(csv), "--images",
                 str(tmp_path / "images"), "--dataset", "demo"]) == 0
    assert main(["import-interactions", "--db", db, str(write(tmp_path / "x.csv",
                 "user,item\nu1,a\nu2,b\n")), "--dataset", "demo"]) == 0
    capsys.readouterr()
    code = main(["import-interactions", "--db", db, str(write(tmp_path / "h.csv",
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
    assert main(["import-interactions", "--db", db, str(write(tmp_path / "x.csv",
                 "user,item\nu1,a\nu2,b\nu3,c\n")), "--dataset", "demo"]) == 0
    one = str(write(tmp_path / "one.csv", "user,item\nu9,d\n"))
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


# -- item 4: every CSV row imported or reported, with its line ---------------------------------
def test_unclosed_quote_costs_one_row_not_the_rest_of_the_file(shop, tmp_path):
    log = write(tmp_path / "q.csv", 'user,item,event\nu1,a,view\nu2,"b,view\nu3,c,view\n'
                                    'u4,d,view\nu5,a,view\nu6,b,view\nu7,c,view\n')
    rep = import_interactions(shop, log, dataset="shop", replace=True)
    assert rep.rows_read == 7 and rep.imported == 6 and adds_up(rep)
    assert rep.lines == {"malformed line": [3]} and "line 3" in rep.summary()
    rep = import_interactions(shop, log, dataset="shop", on_error="refuse")
    assert rep.refused and rep.imported == 0


def test_fields_longer_than_the_csv_module_limit_are_kept(store, tmp_path):
    long = "x" * 200_000
    make_catalog(tmp_path)
    csv = write(tmp_path / "long.csv", f'id,title,description,image\na,Red,"{long}",a.png\n'
                                       f"b,Blue,short,b.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 2 and adds_up(rep)
    assert store.items("shop")["description"].str.len().max() == 200_000
    log = write(tmp_path / "longid.csv", f"user,item\n{long},a\nu1,b\n")
    rep = import_interactions(store, log, dataset="shop")
    assert rep.imported == 1 and rep.problems == {"user or item id is not a plain id": 1}


def test_extra_and_missing_fields_are_reported_not_shifted(store, tmp_path):
    log = write(tmp_path / "x.csv", "user,item\n1,a\n2,b,extra,fields\n3\n4,d\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.rows_read == 4 and rep.imported == 2 and adds_up(rep)
    assert rep.lines == {"malformed line": [3, 4]}
    x = store.interactions("x")
    assert sorted(zip(x["user_id"], x["item_id"])) == [("1", "a"), ("4", "d")]
    assert "extra" not in set(x["user_id"]) | set(x["item_id"])


def test_line_numbers_follow_multiline_records_and_blank_lines(store, tmp_path):
    make_catalog(tmp_path)
    csv = write(tmp_path / "m.csv", 'id,title,description,image\na,Red,"two\nlines",a.png\n\n'
                                    'b,,no title,b.png\nc,Green,x,c.png,extra\n')
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.lines == {"malformed CSV line": [6], "missing title": [5]}
    assert rep.imported == 1 and adds_up(rep)


def test_bytes_that_are_not_utf8_cost_their_row_only(store, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user,item\n" + b"u1,a\n" * 2000 + b"u2,caf\xe9\n" + b"u3,b\n")
    rep = import_interactions(store, path, dataset="x")
    assert rep.imported == 2001 and rep.lines == {"malformed line": [2002]} and adds_up(rep)


# -- item 5: clear messages instead of tracebacks -----------------------------------------------
def test_mixed_timezone_offsets_are_converted_to_utc(store, tmp_path):
    log = write(tmp_path / "tz.csv", "user,item,timestamp\nu1,a,2024-01-01 10:00+01:00\n"
                                     "u1,b,2024-01-01 10:00-05:00\nu2,a,2024-01-02 08:00\n"
                                     "u2,b,2024-01-02T08:00:00Z\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.imported == 4 and not rep.problems
    ts = store.interactions("x").set_index(["user_id", "item_id"])["ts"]
    assert str(ts["u1", "a"]) == "2024-01-01 09:00:00"
    assert str(ts["u1", "b"]) == "2024-01-01 15:00:00"
    assert str(ts["u2", "a"]) == str(ts["u2", "b"]) == "2024-01-02 08:00:00"


def test_deeply_nested_json_split_file(store, tmp_path):
    (tmp_path / "train.json").write_text('{"0": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataImportError, match="nested too deeply"):
        import_interactions(store, tmp_path, fmt="json", dataset="x")
    (tmp_path / "train.json").write_text(json.dumps({"0": [1, [2, [3]], {"a": 1}, True, "4"]}))
    rep = import_interactions(store, tmp_path, fmt="json", dataset="x")
    assert rep.imported == 2 and rep.problems == {"item is not an id (a number or a string)": 3}
    assert adds_up(rep)


# -- item 7: numbers, names, empty files, server files ------------------------------------------
def test_negative_infinite_and_nan_prices_are_rejected(store, tmp_path):
    make_catalog(tmp_path)
    csv = write(tmp_path / "p.csv", "id,title,price,image\na,A,10,a.png\nb,B,-5,b.png\n"
                                    "c,C,inf,c.png\nd,D,nan,d.png\ne,E,1e400,a.png\nf,F,,b.png\n"
                                    "g,G,0,c.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.problems == {"price is not a number": 1, "price is negative or infinite": 3}
    assert store.item_ids("shop") == ["a", "f", "g"] and adds_up(rep)


def test_infinite_negative_and_nan_weights_are_rejected(store, tmp_path):
    log = write(tmp_path / "w.csv", "user,item,weight\nu,a,1\nu,b,inf\nu,c,-2\nu,d,nan\n"
                                    "u,e,-inf\nu,f,0\nu,g,\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.problems == {"weight is negative or infinite": 3, "weight is not a number": 1}
    x = store.interactions("x").set_index("item_id")["weight"]
    assert sorted(x.index) == ["a", "f", "g"] and x["f"] == 0.0 and adds_up(rep)


def test_absurd_years_are_left_empty_not_crashing(store, tmp_path):
    make_catalog(tmp_path)
    csv = write(tmp_path / "y.csv", "id,title,year,image\na,A,2011,a.png\nb,B,1e20,b.png\n"
                                    "c,C,inf,c.png\nd,D,-3,d.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 4 and rep.details["years not understood (left empty)"] == 3
    assert store.items("shop")["year"].tolist()[0] == 2011


@pytest.mark.parametrize("content", ["id,title,image\n", "id,title,image\n,,\n,x,\n"])
def test_catalog_without_valid_rows_creates_nothing(store, tmp_path, content):
    make_catalog(tmp_path / "old")
    import_catalog(store, make_catalog(tmp_path / "old"), tmp_path / "old" / "images",
                   dataset="old", columns={"item_id": "sku", "title": "name",
                                           "image_path": "image"})
    before = snapshot(store)
    rep = import_catalog(store, write(tmp_path / "empty.csv", content), None, dataset="new")
    assert rep.refused and rep.imported == 0 and rep.reason
    assert snapshot(store) == before and store.active_dataset() == "old"


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "", "x" * 65])
def test_dataset_names_cannot_escape_the_uploads_folder(store, name):
    with pytest.raises(DataImportError, match="dataset name"):
        upload_dir(store, name)
    assert not (uploads_root(store).parent / "x").exists()


def test_server_files_are_not_echoed(store, tmp_path):
    passwd = write(tmp_path / "passwd", "root:x:0:0:root:/root:/bin/bash\n"
                                        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    config = write(tmp_path / "settings.conf", "SECRET_TOKEN=abc123,def\nuser = admin\n"
                                               "password = hunter2\nport, 5432, extra, x\n"
                                               "host = db\n")
    for path in (passwd, config):
        for call in (lambda: import_catalog(store, path, None, dataset="x"),
                     lambda: import_interactions(store, path, dataset="x")):
            with pytest.raises(DataImportError) as err:
                call()
            for secret in ("root", "bash", "SECRET", "abc123", "hunter2", "admin"):
                assert secret not in str(err.value), (path.name, str(err.value))


def test_real_tables_still_name_their_columns(store, tmp_path):
    log = write(tmp_path / "t.csv", "who,what\nu1,a\nu2,b\n")
    with pytest.raises(DataImportError, match="its columns: who, what"):
        import_interactions(store, log, dataset="x")


# -- items 5 and 6: zips and upload folders ------------------------------------------------------
def make_zip(entries: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_with_a_bad_crc_leaves_nothing_behind(tmp_path):
    photos = {f"p{i}.png": png_bytes(c) for i, c in enumerate(["red", "green", "blue"])}
    data = bytearray(make_zip(photos))
    last = data.rfind(photos["p2.png"][30:60])
    data[last] ^= 0xFF                                  # one flipped byte in the third photo
    dest = tmp_path / "images"
    with pytest.raises(DataImportError, match="p2.png.*damaged"):
        extract_images(io.BytesIO(bytes(data)), dest)
    assert not dest.exists()                            # created for the unpack, removed again
    dest.mkdir()
    (dest / "old.png").write_bytes(b"kept")
    with pytest.raises(DataImportError):
        extract_images(io.BytesIO(bytes(data)), dest)
    assert [p.name for p in dest.iterdir()] == ["old.png"]


def test_encrypted_zip_is_refused_clearly(tmp_path):
    data = bytearray(make_zip({"a.png": png_bytes()}))
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):   # set the "encrypted" flag bit
        at = data.find(signature)
        flag_at = at + (6 if signature == b"PK\x03\x04" else 8)
        flags = struct.unpack_from("<H", data, flag_at)[0]
        struct.pack_into("<H", data, flag_at, flags | 0x1)
    with pytest.raises(DataImportError, match="password"):
        extract_images(io.BytesIO(bytes(data)), tmp_path / "images")
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


def test_zip_bomb_is_refused_before_writing(tmp_path):
    """A 1 MB-ish zip declaring 600 MB of photo: refused at once under the 500 MB default."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("huge.png", "w", force_zip64=True) as out:
            zero = b"\0" * (1 << 20)
            for _ in range(600):
                out.write(zero)
    assert buf.tell() < 2 << 20
    assert max_unpacked_bytes() == 500 * 2**20
    with pytest.raises(DataImportError, match="more than 500 MB"):
        extract_images(io.BytesIO(buf.getvalue()), tmp_path / "images")
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


def test_unpacked_size_limit_is_settable_and_counts_real_bytes(tmp_path, monkeypatch):
    photos = {f"p{i}.png": os.urandom(400_000) for i in range(3)}
    data = make_zip(photos)
    with pytest.raises(DataImportError, match="more than 1 MB"):
        extract_images(io.BytesIO(data), tmp_path / "a", max_unpacked_mb=1)
    monkeypatch.setenv("RECSYS_MAX_UNPACKED_MB", "1")
    with pytest.raises(DataImportError, match="RECSYS_MAX_UNPACKED_MB"):
        extract_images(io.BytesIO(data), tmp_path / "b")
    monkeypatch.setenv("RECSYS_MAX_UNPACKED_MB", "2")
    assert extract_images(io.BytesIO(data), tmp_path / "c") == 3
    # headers that lie (declared sizes far below the real ones) do not get past the count
    lying = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = lying.find(signature)
        while at != -1:
            struct.pack_into("<I", lying, at + offset, 10)
            at = lying.find(signature, at + 4)
    with pytest.raises(DataImportError):
        extract_images(io.BytesIO(bytes(lying)), tmp_path / "d")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_zip_names_are_flattened_and_odd_names_skipped(tmp_path):
    data = make_zip({"../../evil.png": png_bytes(), "dir\\win.png": png_bytes(),
                     "__MACOSX/._a.png": b"junk", "notes.txt": b"x", "ok/b.PNG": png_bytes()})
    assert extract_images(io.BytesIO(data), tmp_path / "images") == 3
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == \
        ["b.PNG", "evil.png", "win.png"]


def test_upload_helpers_clean_up(store, tmp_path):
    table = ("id,title,image\na,A,a.png\nb,B,b.png\n").encode()
    photos = make_zip({"a.png": png_bytes("red"), "b.png": png_bytes("blue"),
                       "unused.png": png_bytes("green")})
    rep = import_catalog_upload(store, "shop", table, "cat.csv", photos)
    assert rep.imported == 2 and rep.details["photos unpacked"] == 3
    kept = sorted(p.name for p in uploads_root(store).rglob("*") if p.is_file())
    assert kept == ["a.png", "b.png"]                # no table copy, no unused photo
    assert all(Path(p).is_file() for p in store.items("shop")["image_path"])
    # a refused import leaves no files, and the earlier upload's photos stay
    bad = ("id,title,image\na,A,a.png\na,B,b.png\n").encode()
    rep = import_catalog_upload(store, "shop", bad, "cat.csv", photos, on_error="refuse")
    assert rep.refused
    assert sorted(p.name for p in uploads_root(store).rglob("*") if p.is_file()) == kept
    # a failing unpack too
    with pytest.raises(DataImportError):
        import_catalog_upload(store, "shop", table, "cat.csv", b"not a zip")
    assert sorted(p.name for p in uploads_root(store).rglob("*") if p.is_file()) == kept
    # interaction uploads are removed whatever happens
    rep = import_interactions_upload(store, "shop", b"user,item\nu1,a\n", "log.csv")
    assert rep.imported == 1
    with pytest.raises(DataImportError):
        import_interactions_upload(store, "shop", b"who,what\n1,2\n", "log.csv")
    assert sorted(p.name for p in uploads_root(store).rglob("*") if p.is_file()) == kept


def test_discard_upload_only_deletes_upload_folders(store, tmp_path):
    folder = upload_dir(store, "shop") / "one"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"1234")
    assert discard_upload(store, folder) == 4 and not folder.exists()
    for other in (tmp_path, uploads_root(store), uploads_root(store) / ".." / "x"):
        with pytest.raises(DataImportError, match="not an upload folder"):
            discard_upload(store, other)


def test_read_table_reports_every_record(tmp_path):
    path = write(tmp_path / "t.csv", 'a,b\n1,2\n3,"4\n5,6\n\n7,8,9\n10,11\n')
    frame, bad = read_table(path)
    assert frame.index.tolist() == [2, 4, 7] and [line for line, _ in bad] == [3, 6]


def test_catalog_mixing_rows_with_and_without_photos(store, tmp_path):
    """Used to crash (a missing path became NaN, then a TypeError while hashing)."""
    csv = make_catalog(tmp_path, [{"id": "a", "title": "A", "image": "a.png"},
                                  {"id": "z", "title": "Z", "image": ""}])
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    items = store.items("shop").set_index("item_id")
    assert rep.imported == 2 and Path(items.loc["a", "image_path"]).is_file()
    assert pd.isna(items.loc["z", "image_path"])
