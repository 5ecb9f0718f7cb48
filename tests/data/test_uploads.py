"""Uploads: zips unpacked safely (a bad CRC, encryption, a zip bomb, the unpacked-size limit,
odd and shared names), upload folders inside `uploads/` only, cleaned up after a refusal, and
photos named by their folder in the zip."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from recsys.data.report import DataImportError
from recsys.data.uploads import (
    discard_upload,
    extract_images,
    import_catalog_upload,
    import_interactions_upload,
    max_unpacked_bytes,
    upload_dir,
    uploads_root,
)
from recsys.store import Store

from ..import_helpers import (
    check_counts,
    colour_png,
    make_zip,
)


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "", "x" * 65])
def test_dataset_names_cannot_escape_the_uploads_folder(store, name):
    with pytest.raises(DataImportError, match="dataset name"):
        upload_dir(store, name)
    assert not (uploads_root(store).parent / "x").exists()


def test_zip_with_a_bad_crc_leaves_nothing_behind(tmp_path):
    photos = {f"p{i}.png": colour_png(c) for i, c in enumerate(["red", "green", "blue"])}
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
    data = bytearray(make_zip({"a.png": colour_png()}))
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
    data = make_zip({"../../evil.png": colour_png(), "dir\\win.png": colour_png(),
                     "__MACOSX/._a.png": b"junk", "notes.txt": b"x", "ok/b.PNG": colour_png()})
    assert extract_images(io.BytesIO(data), tmp_path / "images") == 3
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == \
        ["b.PNG", "evil.png", "win.png"]


def test_upload_helpers_clean_up(store, tmp_path):
    table = ("id,title,image\na,A,a.png\nb,B,b.png\n").encode()
    photos = make_zip({"a.png": colour_png("red"), "b.png": colour_png("blue"),
                       "unused.png": colour_png("green")})
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


def png24(colour: str) -> bytes:
    return colour_png(colour, (24, 24))


# -- photos sharing a name in a zip ---------------------------------------------------------------
def test_zip_photos_sharing_a_name_are_all_kept(tmp_path):
    data = make_zip({"a/x.png": png24("red"), "b/x.png": png24("blue"), "c.png": png24("green"),
                     "../../d/x.png": png24("white"), "e/X.PNG": png24("black")})
    found: list[str] = []
    assert extract_images(io.BytesIO(data), tmp_path / "img", in_folders=found) == 5
    files = sorted(str(p.relative_to(tmp_path / "img")) for p in
                   (tmp_path / "img").rglob("*") if p.is_file())
    assert files == ["a/x.png", "b/x.png", "c.png", "d/x.png", "e/X.PNG"]
    assert Image.open(tmp_path / "img" / "b" / "x.png").getpixel((0, 0)) == (0, 0, 255)
    assert sorted(found) == ["../../d/x.png", "a/x.png", "b/x.png", "e/X.PNG"]
    # the same entry twice (a zip may hold it): numbered, not overwritten
    twice = io.BytesIO()
    with zipfile.ZipFile(twice, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("p/y.png", png24("red"))
        zf.writestr("p/y.png", png24("blue"))
    assert extract_images(io.BytesIO(twice.getvalue()), tmp_path / "twice") == 2
    assert sorted(p.name for p in (tmp_path / "twice" / "p").iterdir()) == ["y-2.png", "y.png"]


def test_catalog_upload_names_photos_with_their_zip_folder(tmp_path):
    """Before: b/x.png overwrote a/x.png and both items showed the same photo."""
    store = Store(tmp_path / "s.duckdb")
    try:
        table = b"id,title,image\n1,Red,a/x.png\n2,Blue,b/x.png\n3,Green,c.png\n4,Which,x.png\n"
        photos = make_zip({"a/x.png": png24("red"), "b/x.png": png24("blue"),
                           "c.png": png24("green")})
        rep = import_catalog_upload(store, "shop", table, "cat.csv", photos)
        assert rep.imported == 3 and rep.problems == {"image file not found": 1}
        assert rep.lines["image file not found"] == [5]
        assert rep.details["photos sharing a file name (kept under their zip folders)"] == 2
        assert any("share a file name" in n for n in rep.notes)
        check_counts(rep)
        items = store.items("shop").set_index("item_id")
        colours = {i: Image.open(items.loc[i, "image_path"]).convert("RGB").getpixel((0, 0))
                   for i in ("1", "2", "3")}
        assert colours == {"1": (255, 0, 0), "2": (0, 0, 255), "3": (0, 128, 0)}
    finally:
        store.close()
