"""Headless tests of the Streamlit dashboard (streamlit.testing.v1.AppTest) on demo data."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from recsys.store import Store
from recsys.usecases import DEFAULT_MODEL, readiness
from recsys.usecases import set_up as bootstrap

from .app_helpers import app_test, html_of, png_bytes, problems

PAGES = ["app_pages/home.py", "app_pages/catalog.py", "app_pages/visual_search.py", "app_pages/user_picks.py",
         "app_pages/train.py", "app_pages/evaluate.py", "app_pages/data.py"]


@pytest.fixture(scope="module")
def ready_db(ready_demo_db: Path) -> Path:
    """The small demo, bootstrapped once: aligned encoder, item vectors, the default model."""
    return ready_demo_db


@pytest.fixture
def app_db(ready_db: Path, tmp_path: Path) -> Path:
    """A private copy a test may change."""
    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_db, path)
    return path


def demo_photo(db: Path) -> bytes:
    store = Store(db)
    try:
        path = store.items("demo")["image_path"].dropna().iloc[0]
    finally:
        store.close()
    return Path(path).read_bytes()


def test_bootstrap_made_everything(ready_db: Path):
    store = Store(ready_db)
    try:
        state = readiness(store)
        assert state.ready, state.missing
        assert state.vectors > 0 and state.encoder.startswith("catalog-clip@")
        runs = store.runs("demo", kind="model")
        assert DEFAULT_MODEL in set(runs["model"])
    finally:
        store.close()


def test_bootstrap_is_idempotent(app_db: Path):
    store = Store(app_db)
    try:
        before = len(store.runs())
        assert bootstrap(store).ready
        assert len(store.runs()) == before     # nothing retrained
    finally:
        store.close()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app_db: Path, page: str):
    at = app_test(app_db, page)
    assert not problems(at), problems(at)
    assert at.title or "rs-hero" in html_of(at), f"{page} shows no heading"


def test_home_shows_sizes_and_photos(app_db: Path):
    at = app_test(app_db)
    values = {m.label: m.value for m in at.metric}
    # the default model, plus bestsellers, EASE and a content model of the first evaluation
    assert values["Products"] == "64" and values["Trained models"] == "4"
    assert html_of(at).count('class="rs-card"') == 12
    assert len(at.get("plotly_chart")) == 2          # catalog mix, weekly activity


def test_visual_search_upload_returns_grid(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("query.jpg", demo_photo(app_db), "image/jpeg")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert page.count('class="rs-card"') == at.slider(key="vs_k").value
    assert "most similar products" in page and "answered in" in page
    store = Store(app_db)
    title = store.items("demo").dropna(subset=["image_path"]).iloc[0]["title"]
    store.close()
    first_card = page.split('class="rs-card"')[1]
    assert title in first_card            # the product whose photo was uploaded comes first


@pytest.mark.parametrize("payload, message", [
    (b"this is not an image at all", "not an image"),
    (b"", "empty"),
    (png_bytes()[:60], ""),
])
def test_visual_search_bad_upload_is_a_message(app_db: Path, payload: bytes, message: str):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("bad.jpg", payload, "image/jpeg")).run()
    assert not problems(at)
    assert at.error, "a bad upload must show an error"
    assert message.lower() in at.error[0].value.lower()
    assert 'class="rs-card"' not in html_of(at)


def test_visual_search_refuses_decompression_bomb(app_db: Path):
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")          # 81 MP, a few kB on disk
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("huge.png", buf.getvalue(), "image/png")).run()
    assert not problems(at) and at.error
    assert "pixels" in at.error[0].value.lower() or "large" in at.error[0].value.lower()


def test_visual_search_from_catalog_item(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.segmented_control(key="vs_mode").set_value("Pick a catalog item").run()
    assert not problems(at)
    assert html_of(at).count('class="rs-card"') == at.slider(key="vs_k").value


def test_catalog_filters_and_clip_text_search(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    assert "**64** of 64 products" in html_of(at)
    colour = at.multiselect(key="cat_f_base_colour")
    first = colour.options[0]
    colour.set_value([first]).run()
    assert "of 64 products" in html_of(at) and "**64** of 64" not in html_of(at)
    colour.set_value([]).run()
    at.text_input(key="cat_query").input("red handbag").run()
    assert not problems(at)
    page = html_of(at)
    assert "The best **" in page and "most relevant first" in page


def test_user_picks_explains_and_compares(app_db: Path):
    at = app_test(app_db, "app_pages/user_picks.py")
    user = at.selectbox(key="up_user")
    user.set_value(user.options[3]).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    k = at.slider(key="up_k").value
    assert page.count('class="rs-weights"') == k             # every pick explained
    assert "resembles in your history" in page
    assert at.get("plotly_chart"), "the modality-weight chart is missing"
    store = Store(app_db)
    from recsys.recommend.training import train_model
    train_model(store, "demo", "itemknn")
    store.close()
    at = app_test(app_db, "app_pages/user_picks.py")
    at.toggle(key="up_compare").set_value(True).run()
    assert not problems(at)
    assert "picks in common" in "\n".join(c.value for c in at.caption)


@pytest.fixture
def log_only_db(app_db: Path, tmp_path: Path) -> Path:
    """The ready demo plus an interaction-only dataset 'log' (like the Amazon sets), active."""
    from recsys.data.interactions_import import import_interactions

    csv = tmp_path / "log.csv"
    rows = ["user_id,item_id,event,timestamp"]
    for u in range(30):
        for i in range(8):
            rows.append(f"u{u},i{(u * 3 + i * 7) % 40},view,2025-01-{1 + i:02d}")
    csv.write_text("\n".join(rows))
    store = Store(app_db)
    import_interactions(store, csv, "csv", dataset="log")
    store.close()
    return app_db


def test_interaction_only_dataset_offers_training(log_only_db: Path):
    at = app_test(log_only_db, "app_pages/user_picks.py")
    assert at.session_state["dataset"] == "log"
    assert any("No trained model" in w.value for w in at.warning)
    next(b for b in at.button if b.label.startswith("Train ")).click().run()
    assert not problems(at) and not at.error
    assert 'class="rs-weights"' in html_of(at)      # picks with explanations
    at = app_test(log_only_db, "app_pages/visual_search.py")
    assert not problems(at)
    assert any("interactions only" in i.value for i in at.info)


def test_train_page_trains_a_model(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("bpr").run()
    at.number_input(key="tr_bpr_epochs").set_value(3).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not problems(at) and not at.error
    assert any("saved" in s.value for s in at.success)
    store = Store(app_db)
    runs = store.runs("demo", kind="model")
    store.close()
    assert "bpr" in set(runs["model"]) and (runs["status"] == "finished").all()


def test_evaluate_page_shows_charts(app_db: Path):
    at = app_test(app_db, "app_pages/evaluate.py")
    at.multiselect(key="ev_models").set_value(["popularity", "itemknn"]).run()
    next(b for b in at.button if b.label == "Run evaluation").click().run()
    assert not problems(at) and not at.error
    assert len(at.get("plotly_chart")) >= 6
    assert any(t.label == "Table" for t in at.tabs)


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


def test_database_locked_by_another_process_is_a_message(tmp_path: Path):
    import subprocess
    import sys

    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                               f"c = duckdb.connect({str(db)!r}); print('ok', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ok"
        at = app_test(db)
        assert not problems(at)
        assert at.error and "in use by another process" in at.error[0].value
    finally:
        holder.kill()
        holder.wait()


def test_damaged_database_file_is_a_message_not_a_traceback(app_db: Path):
    # issue 9 item 5: a truncated database used to give a traceback on the Home page
    data = app_db.read_bytes()
    app_db.write_bytes(data[:len(data) // 3])
    at = app_test(app_db)
    assert not problems(at)
    assert at.error and "is damaged or incomplete" in at.error[0].value


def test_many_shoppers_are_found_by_search(app_db: Path, tmp_path: Path):
    from recsys.data.interactions_import import import_interactions

    csv = tmp_path / "big.csv"
    rows = ["user_id,item_id,event,timestamp"]
    rows += [f"s{u},i{(u + j) % 50},view,2025-02-0{1 + j}" for u in range(2100) for j in range(3)]
    csv.write_text("\n".join(rows))
    store = Store(app_db)
    import_interactions(store, csv, "csv", dataset="big")
    from recsys.recommend.training import train_model
    train_model(store, "big", "itemknn")
    store.close()
    at = app_test(app_db, "app_pages/user_picks.py")
    assert at.session_state["dataset"] == "big"
    assert len(at.selectbox(key="up_user").options) == 2000
    at.text_input(key="up_find").input("s204").run()
    options = at.selectbox(key="up_user").options
    assert options and all("s204" in o for o in options)
    assert not problems(at)


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


def test_catalog_similar_items_opens_visual_search(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    pick = at.selectbox(key="cat_pick")
    item = pick.options[2]
    pick.set_value(item).run()
    next(b for b in at.button if b.label == "Similar items").click().run()
    assert not problems(at)
    assert at.title[0].value == "Visual search"
    assert at.session_state["vs_item"] in item             # options show "title (id)"
    assert html_of(at).count('class="rs-card"') == at.slider(key="vs_k").value


def test_data_page_never_wipes_interactions_without_a_confirmation(app_db: Path):
    """Issue 9 item 3: a header-only log (or a short one) used to replace the demo's thousands
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


def test_the_server_freezes_its_long_lived_heap_after_a_page(app_db: Path):
    """app.py ends every run with `resources.settle_heap()`: the heavy libraries are imported
    and the heap alive after the first page is frozen, so full collections stop walking the
    ~600,000 objects of torch, plotly, pandas... (they cost 330-390 ms each, one in almost
    every photo upload)."""
    import gc
    import sys

    at = app_test(app_db, "app_pages/visual_search.py")   # a page that ends with st.stop()
    assert not problems(at)
    assert gc.get_freeze_count() > 50_000
    assert {"torch", "plotly.graph_objects", "recsys.usecases.search"} <= set(sys.modules)
