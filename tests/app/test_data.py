"""The Data page (AppTest): imports (CSV with a zip of photos, features with their id mapping),
refusals that change nothing (missing columns, interaction wipes, decoder bombs, paths outside
the data roots), simulated shoppers after a confirmation, the Myntra sample in one click, the
fields of the chosen source only, disk use and deleting old model files."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from recsys import usecases
from recsys.core import sandbox
from recsys.store import Store

from ..app_helpers import app_test, png_bytes, problems
from ..decode_attacks import (
    mmrec_id_map,
    rle_parquet,
    worker_growth_mb,
)
from ..import_helpers import snapshot
from ..path_attacks import SECRET
from ..usecases.test_data import fake_myntra


def test_data_page_shows_disk_use_and_deletes_old_model_files(app_db: Path):
    """The copy's runs of the set-up demo point at the session's model files: the runs pruned
    here are of a model the set-up never trains, so those files (shared with every later test
    that copies the demo, e.g. the Home page's model count) stay."""
    store = Store(app_db)
    try:
        shared = [p for p in store.runs("demo", kind="model")["artifact_path"]
                  if isinstance(p, str)]
        for _ in range(3):
            usecases.train(store, "demo", "itemknn", keep_models=0)
        before = usecases.disk_usage(store)
    finally:
        store.close()
    at = app_test(app_db, "app_pages/data.py")
    assert not problems(at)
    assert any(e.label.startswith("Disk use:") for e in at.expander)
    at.number_input(key="disk_keep").set_value(1).run()
    at.button(key="disk_prune").click().run()
    assert not problems(at)
    assert any("Deleted" in s.value and "model files" in s.value for s in at.success)
    store = Store(app_db)
    try:
        after = usecases.disk_usage(store)
    finally:
        store.close()
    assert after.model_files < before.model_files and after.models < before.models
    assert shared and all(Path(p).is_file() for p in shared)


def test_data_page_refuses_csv_without_required_columns(app_db: Path):
    at = app_test(app_db, "app_pages/data.py")
    at.file_uploader[0].set_value(("bad.csv", b"colour,size\nred,M\n", "text/csv"))
    at.text_input[0].input("broken")
    next(b for b in at.button if b.label == "Import catalog").click().run()
    assert not problems(at)
    assert at.error and "nothing was changed" in at.error[0].value
    store = Store(app_db)
    assert "broken" not in store.dataset_names()
    store.close()


def test_data_page_simulates_after_confirmation(app_db: Path):
    at = app_test(app_db, "app_pages/data.py")
    simulate = next(b for b in at.button if b.label == "Simulate")
    assert simulate.disabled                     # replacing interactions needs the checkbox
    at.number_input(key="sim_users").set_value(40)
    at.checkbox(key="sim_replace").check().run()
    next(b for b in at.button if b.label == "Simulate").click().run()
    assert not problems(at) and not at.error
    assert any("40 shoppers" in s.value for s in at.success)
    store = Store(app_db)
    assert store.counts("demo")["users"] == 40
    store.close()


def test_data_page_imports_csv_with_zip_of_photos(app_db: Path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, colour in enumerate([(200, 30, 30), (30, 30, 200), (30, 160, 60)]):
            zf.writestr(f"photos/p{n}.png", png_bytes(colour))
        zf.writestr("../evil.txt", b"not a photo, and outside the folder")
    csv = ("id,title,colour,image\n"
           "p0,Red Tee,Red,p0.png\np1,Blue Tee,Blue,p1.png\np2,Green Tee,Green,p2.png\n"
           "p3,Ghost Tee,White,missing.png\n").encode()
    at = app_test(app_db, "app_pages/data.py")
    at.file_uploader[0].set_value(("shop.csv", csv, "text/csv"))
    at.file_uploader[1].set_value(("photos.zip", buf.getvalue(), "application/zip"))
    at.text_input[0].input("shop")
    next(b for b in at.button if b.label == "Import catalog").click().run()
    assert not problems(at) and not at.error
    assert any("Imported 3 items into 'shop'" in s.value for s in at.success)
    assert any("missing" in w.value.lower() for w in at.warning)      # the ghost row, reported
    store = Store(app_db)
    items = store.items("shop")
    store.close()
    assert sorted(items["item_id"]) == ["p0", "p1", "p2"]
    assert all(Path(p).is_file() for p in items["image_path"])
    assert not (app_db.parent / "uploads" / "evil.txt").exists()


def test_data_page_never_wipes_interactions_without_a_confirmation(app_db: Path):
    """Regression: a header-only log (or a short one) used to replace the demo's thousands
    of interactions with nothing, with a green success. Now it is refused with the reason, and
    a short log replaces them only when the page's confirmation is ticked."""
    store = Store(app_db)
    before = store.interaction_count("demo")
    user, item = store.interactions("demo")[["user_id", "item_id"]].iloc[0]
    store.close()
    at = app_test(app_db, "app_pages/data.py")
    uploader = next(u for u in at.file_uploader if u.label == "Interaction file")
    uploader.set_value(("empty.csv", b"user,item,event\n", "text/csv"))
    next(b for b in at.button if b.label == "Import interactions").click().run()
    assert not problems(at)
    assert at.error and "nothing changed" in at.error[0].value and not at.success
    short = f"user,item,event\n{user},{item},view\n".encode()
    uploader = next(u for u in at.file_uploader if u.label == "Interaction file")
    uploader.set_value(("short.csv", short, "text/csv"))
    next(b for b in at.button if b.label == "Import interactions").click().run()
    assert at.error and "Replace even if this removes interactions" in at.error[0].value
    store = Store(app_db)
    assert store.interaction_count("demo") == before            # refused twice, unchanged
    store.close()
    at.checkbox(key="inter_replace").check()
    uploader = next(u for u in at.file_uploader if u.label == "Interaction file")
    uploader.set_value(("short.csv", short, "text/csv"))
    next(b for b in at.button if b.label == "Import interactions").click().run()
    assert not problems(at) and any("Imported 1 interactions" in s.value for s in at.success)
    store = Store(app_db)
    assert store.interaction_count("demo") == 1                  # replaced, as confirmed
    store.close()


def test_data_page_loads_the_sample_in_one_click(app_db: Path, tmp_path: Path, monkeypatch):
    fake_myntra(tmp_path / "shared" / "myntra_fashion")
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "shared"))
    at = app_test(app_db, "app_pages/data.py")
    button = at.button(key="myntra_one_click")
    assert button.label == "Load the Myntra sample"
    button.click().run()
    assert not problems(at) and not at.error
    assert any("Loaded 'myntra'" in s.value for s in at.success)
    store = Store(app_db)
    try:
        assert store.counts("myntra")["items"] == 38 and store.counts("myntra")["users"] == 2000
    finally:
        store.close()
    at = app_test(app_db, "app_pages/data.py")                 # loaded: no offer any more
    assert not any(b.key == "myntra_one_click" for b in at.button)


def test_data_page_offers_no_sample_that_is_not_there(app_db: Path, tmp_path: Path,
                                                      monkeypatch):
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "empty"))
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(tmp_path))     # typed paths: only under it
    at = app_test(app_db, "app_pages/data.py")
    assert not any(b.key == "myntra_one_click" for b in at.button)
    folder = at.text_input(key="myntra_folder")
    assert folder.value == ""
    folder.input(str(tmp_path / "nowhere")).run()
    at.button(key="myntra_load").click().run()
    assert not problems(at) and at.error and "No Myntra sample" in at.error[0].value


def test_data_page_shows_only_the_fields_of_the_chosen_source(app_db: Path):
    at = app_test(app_db, "app_pages/data.py")
    labels = {w.label for w in at.text_input}
    uploads = {u.label for u in at.get("file_uploader")}
    assert {"Catalog table or feed (CSV, TSV, Parquet, XML)", "Photos (zip)", "Interaction file"} <= uploads
    assert not {"Table path", "Images folder", "Path"} & labels
    at.radio(key="cat_source").set_value("Folder path on this machine").run()
    at.radio(key="inter_source").set_value("Path on this machine").run()
    labels = {w.label for w in at.text_input}
    uploads = {u.label for u in at.get("file_uploader")}
    assert {"Table path", "Images folder", "Path"} <= labels
    assert not uploads & {"Catalog table or feed (CSV, TSV, Parquet, XML)", "Photos (zip)", "Interaction file"}
    assert not problems(at)


def demo_ids(db: Path) -> list[str]:
    store = Store(db)
    try:
        return store.item_ids("demo")
    finally:
        store.close()


def test_data_page_imports_features_with_their_id_mapping(app_db: Path):
    ids = demo_ids(app_db)
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).normal(size=(len(ids) + 1, 6)).astype(np.float32))
    mapping = ("\n".join(ids + ["ghost"]) + "\n").encode()
    at = app_test(app_db, "app_pages/data.py")
    at.text_input(key="feat_path")            # the section is on the page
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("style.npy", buf.getvalue(),
                                                           "application/octet-stream"))
    uploads["Id mapping of a .npy (optional)"].set_value(("ids.txt", mapping, "text/plain"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at) and not at.error
    assert any(f"Imported {len(ids)} feature vectors" in s.value for s in at.success)
    assert any("item not in the dataset" in w.value for w in at.warning)      # the ghost row
    store = Store(app_db)
    try:
        sets = store.embedding_sets("demo")
    finally:
        store.close()
    assert "style" in set(sets["modality"])
    assert not any((app_db.parent / "uploads").rglob("*.npy"))              # cleaned up


# -- paths typed into the page --------------------------------------------------------------------
def page_text(at) -> str:
    return "\n".join(str(e.value) for kind in ("error", "warning", "success", "info",
                                               "markdown", "caption")
                     for e in getattr(at, kind))


def test_data_page_reads_only_under_the_data_roots(app_db: Path, path_tree, monkeypatch):
    """The same attacks typed into every path field of the Data page: an error in the page
    quoting nothing of the file, nothing imported; a table inside the root still imports."""
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(path_tree.root))
    before = Store(app_db)
    try:
        was = snapshot(before)
    finally:
        before.close()
    at = app_test(app_db, "app_pages/data.py")
    at.radio(key="cat_source").set_value("Folder path on this machine").run()
    at.radio(key="inter_source").set_value("Path on this machine").run()
    assert str(path_tree.root.resolve()) in page_text(at)            # the page says where

    def submit(label: str) -> None:
        next(b for b in at.button if b.label == label).click().run()

    def fields(label: str):
        return [w for w in at.text_input if w.label == label]

    typed = ["/etc/passwd", "/proc/self/environ", str(path_tree.root / "link.csv"),
             str(path_tree.evil / "cat.csv"),
             str(path_tree.root / "../../../../../../../etc/passwd")]
    for path in typed:
        fields("Table path")[0].input(path)
        submit("Import catalog")
        assert at.error and ("not inside the folders" in at.error[0].value or
                             "characters long" in at.error[0].value)
        fields("Table path")[0].input(str(path_tree.root / "cat.csv"))
        fields("Images folder")[0].input(path)
        submit("Import catalog")
        assert at.error and "images folder" in at.error[0].value.lower()
        fields("Path")[0].input(path)
        submit("Import interactions")
        assert at.error and "interaction file path" in at.error[0].value
        at.text_input(key="feat_modality").input("style")
        at.text_input(key="feat_path").input(path)
        submit("Import features")
        assert at.error and "feature file path" in at.error[0].value
        at.text_input(key="feat_path").input(str(path_tree.root / "f.npy"))
        at.text_input(key="feat_ids_path").input(path)
        submit("Import features")
        assert at.error and "id mapping path" in at.error[0].value
        at.text_input(key="feat_ids_path").input("")
        at.text_input(key="myntra_folder").input(path)
        at.button(key="myntra_load").click().run()
        assert at.error and "Myntra folder" in at.error[0].value
        text = page_text(at)
        assert SECRET not in text and "root:x" not in text and not problems(at)
    store = Store(app_db)
    try:
        assert snapshot(store) == was
    finally:
        store.close()
    fields("Table path")[0].input(str(path_tree.root / "cat.csv"))
    fields("Images folder")[0].input(str(path_tree.root))             # a folder inside: fine
    next(w for w in at.text_input if w.label == "Dataset name").input("inside")
    submit("Import catalog")
    assert not problems(at) and not at.error, [e.value for e in at.error]
    assert any("Imported 2 items into 'inside'" in s.value
                                    for s in at.success)


def test_data_page_feature_import_refuses_the_bombs(app_db: Path, tmp_path: Path, monkeypatch):
    # the page decodes in AppTest's script thread: record its replies where this thread can
    # read them (`last_reply` is per thread)
    monkeypatch.setattr(sandbox, "_local", SimpleNamespace())
    npy = mmrec_id_map(tmp_path / "baby")
    at = app_test(app_db, "app_pages/data.py")
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("image_feat.npy", npy.read_bytes(),
                                                           "application/octet-stream"))
    uploads["Id mapping of a .npy (optional)"].set_value(
        ("i_id_mapping.csv", (npy.parent / "i_id_mapping.csv").read_bytes(), "text/csv"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at)
    assert at.error and "maps itemID 300,000,000" in at.error[0].value
    parquet = rle_parquet(tmp_path / "rle.parquet")
    at = app_test(app_db, "app_pages/data.py")
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("rle.parquet", parquet.read_bytes(),
                                                           "application/octet-stream"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at)
    shown = " ".join(x.value for x in [*at.error, *at.warning, *at.markdown, *at.caption])
    assert "4,096" in shown and "all-zero vector" in shown
    assert worker_growth_mb() < 400
    assert not any((app_db.parent / "uploads").rglob("*.parquet"))          # cleaned up
