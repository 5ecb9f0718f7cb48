"""The use cases: the app and the CLI give the same answers because they call the same function.

Where the two copies used to disagree (the default model, the vectors that explain a run, the
default search weights, which runs are usable, making item vectors before training a content
model), each test drives the dashboard (AppTest) and the command line on the same database and
compares what they show.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.store import Store

from ..app_helpers import app_test, problems
from ..cli_helpers import cli
from ..test_models_helpers import DATASET, fill_store


def card_titles(at) -> list[str]:
    """The titles of the product cards a page shows, in order."""
    page = "\n".join(m.value for m in at.markdown)
    return [html.unescape(t) for t in re.findall(r'class="rs-title" title="([^"]*)"', page)]


def resembles(at) -> list[list[str]]:
    """Per pick card, the labels of the history items it resembles."""
    page = "\n".join(m.value for m in at.markdown)
    rows = re.findall(r'class="rs-cites">(.*?)</div></div></div>', page)
    return [[html.unescape(t) for t in re.findall(r'class="rs-cite" title="([^"]*)"', r)]
            for r in rows]


def test_app_and_cli_use_the_same_default_model(app_db: Path):
    store = Store(app_db)
    try:
        assert usecases.default_model(store, "demo") == usecases.DEFAULT_MODEL
        default_run = int(usecases.list_runs(store, "demo").query("default")["run_id"].iloc[0])
        newer = usecases.train(store, "demo", "itemknn").run.run_id     # the newest run now
        user = store.users("demo")["user_id"].iloc[3]
    finally:
        store.close()
    assert newer > default_run
    code, data, err = cli("recommend", "--db", str(app_db), "--user", user, "--json")
    assert code == 0, err
    assert (data["model"], data["run_id"]) == (usecases.DEFAULT_MODEL, default_run)
    at = app_test(app_db, "app_pages/user_picks.py")
    assert not problems(at)
    assert at.selectbox(key="up_run").value == default_run


def test_explanations_use_the_vectors_of_the_runs_encoder(app_db: Path):
    from recsys.data.interactions import load_data
    from recsys.explain.weights import explain_items
    from recsys.recommend.picks import rank_picks
    from recsys.recommend.rerank import DEFAULT_DIVERSITY
    from recsys.recommend.training import load_model
    from recsys.usecases.recommenders import segment_outside

    def explain_recommendations(model, data, user_id, k):
        """The live picks' explanations (as `recommend_for` makes them) from `data`: the
        shopper's whole history and the products outside their declared segment (the
        business rule) left out, the history cited, MMR re-ranked in `data`'s vectors."""
        user = model.user_index(user_id)
        seen = np.unique(np.concatenate([m[user].indices for m in
                                         (data.train, data.valid, data.test)]))
        items, scores, _, _ = rank_picks(model.score([user])[0], data, k, DEFAULT_DIVERSITY,
                                         exclude=np.union1d(seen, outside))
        return explain_items(model, data, user, items, scores, history=seen)

    store = Store(app_db)
    try:
        run = load_model(store, "demo", usecases.DEFAULT_MODEL)
        encoder = run.config["encoder"]
        assert encoder and encoder.startswith("catalog-clip@")
        ids = store.item_ids("demo")
        rng = np.random.default_rng(0)
        for modality in ("image", "text"):     # newer vectors of another encoder
            store.upsert_embeddings("demo", "other", "2", modality, ids,
                                    rng.normal(size=(len(ids), 8)), [None] * len(ids))
        assert store.embedding_sets("demo").iloc[0]["encoder"] == "other"
        users = store.users("demo")["user_id"]
        data = load_data(store, "demo", run.config["protocol"], run.config["split_seed"], encoder)
        newest = load_data(store, "demo", run.config["protocol"], run.config["split_seed"])
        labels = dict(zip(store.items("demo")["item_id"], store.items("demo")["title"]))
        user = users.iloc[3]
        outside, _ = segment_outside(store, "demo", user, run.model.item_ids)
    finally:
        store.close()
    assert newest.encoder == "other@2"
    expected = explain_recommendations(run.model, data, user, 12)
    stale = explain_recommendations(run.model, newest, user, 12)
    assert [[s.similarities["image"] for s in e.similar] for e in expected] != \
        [[s.similarities["image"] for s in e.similar] for e in stale]

    code, out, err = cli("recommend", "--db", str(app_db), "--user", user, "--k", "12",
                         "--json")
    assert code == 0, err
    assert out["encoder"] == encoder
    for got, want in zip(out["items"], expected, strict=True):
        assert got["item_id"] == want.item_id
        assert [s["item_id"] for s in got["similar"]] == [s.item_id for s in want.similar]
        np.testing.assert_allclose([s["similarities"]["image"] for s in got["similar"]],
                                   [s.similarities["image"] for s in want.similar], rtol=1e-5)

    at = app_test(app_db, "app_pages/user_picks.py")
    at.selectbox(key="up_user").set_value(user).run()
    assert not problems(at) and at.slider(key="up_k").value == 12
    assert resembles(at) == [[labels[s.item_id] for s in e.similar] for e in expected]


def test_app_and_cli_rank_a_photo_alike_with_the_same_weights(app_db: Path):
    store = Store(app_db)
    try:
        photo = store.items("demo")["image_path"].dropna().iloc[5]
    finally:
        store.close()
    db = str(app_db)
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("query.jpg", Path(photo).read_bytes(), "image/jpeg")).run()
    at.slider(key="vs_k").set_value(8).run()
    assert not problems(at) and not at.error
    code, data, err = cli("search", "--db", db, "--image", photo, "--k", "8", "--json")
    assert code == 0, err
    assert data["image_weight"] == at.slider(key="vs_w_0").value == usecases.PHOTO_WEIGHT
    assert card_titles(at) == [r["title"] for r in data["results"]]

    at.slider(key="vs_w_0").set_value(0.5).run()        # the same photo, another weight
    code, data, _ = cli("search", "--db", db, "--image", photo, "--k", "8",
                        "--image-weight", "0.5", "--json")
    assert card_titles(at) == [r["title"] for r in data["results"]]

    at.slider(key="vs_w_0").set_value(usecases.PHOTO_WEIGHT)     # photo + words, defaults
    at.text_input(key="vs_refine").input("red").run()
    code, data, _ = cli("search", "--db", db, "--image", photo, "--text", "red", "--k",
                        "8", "--json")
    assert data["image_weight"] == usecases.PHOTO_WEIGHT
    assert card_titles(at) == [r["title"] for r in data["results"]]


def test_app_and_cli_rank_words_alike(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    at.text_input(key="cat_query").input("red handbag").run()
    assert not problems(at)
    assert at.slider(key="cat_w").value == usecases.MIXED_WEIGHT
    code, data, err = cli("search", "--db", str(app_db), "--text", "red handbag",
                          "--k", "24", "--json")
    assert code == 0, err
    assert card_titles(at) == [r["title"] for r in data["results"]]


def test_search_filters_and_catalog_product_queries(app_db: Path):
    store = Store(app_db)
    try:
        items = store.items("demo").set_index("item_id")
        item = items.index[7]
        hits = usecases.search_similar(store, "demo", item_id=item, k=5,
                                       filters={"gender": ["Women"]})
        assert len(hits.results) == 5 and item not in set(hits.results["item_id"])
        assert (items.loc[hits.results["item_id"], "gender"] == "Women").all()
        with pytest.raises(usecases.SearchError, match="not both"):
            usecases.search_similar(store, "demo", item_id=item, photo=b"x")
        with pytest.raises(usecases.SearchError, match="not in 'demo'"):
            usecases.search_similar(store, "demo", item_id="no-such-item")
    finally:
        store.close()
    code, data, err = cli("search", "--db", str(app_db), "--item", item, "--filter",
                          "gender=Women", "--k", "5", "--json")
    assert code == 0, err
    assert [r["item_id"] for r in data["results"]] == list(hits.results["item_id"])
    assert data["image_weight"] == usecases.MIXED_WEIGHT


def test_cli_train_makes_item_vectors_first_for_content_models(demo_store: Store):
    db = str(demo_store.path)
    assert demo_store.embedding_sets("demo").empty
    demo_store.close()
    code, data, err = cli("train", "--db", db, "--model", "content-image", "--json")
    assert code == 0, err
    assert data["status"] == "finished" and data["vectors"]["trained"].startswith("catalog-clip@")
    assert data["config"]["encoder"] == data["vectors"]["spec"]


def test_a_run_whose_file_is_gone_is_not_offered_anywhere(store):
    fill_store(store)
    older = usecases.train(store, DATASET, "popularity").run
    newer = usecases.train(store, DATASET, "popularity").run
    Path(newer.artifact_path).unlink()
    assert list(usecases.list_runs(store, DATASET)["run_id"]) == [older.run_id]
    assert usecases.readiness(store, DATASET).models == 1
    db = str(store.path)
    store.close()
    code, data, err = cli("recommend", "--db", db, "--user", "u01", "--model",
                          "popularity", "--json")
    assert code == 0 and data["run_id"] == older.run_id, err
    code, data, err = cli("runs", "--db", db, "--json")
    assert code == 0 and [r["run_id"] for r in data] == [older.run_id], err
    code, data, _ = cli("runs", "--db", db, "--all", "--json")
    assert [r["run_id"] for r in data] == [newer.run_id, older.run_id]
    code, _, err = cli("recommend", "--db", db, "--user", "u01", "--k", "0")
    assert code == 2 and "at least 1" in err


def test_train_page_hands_its_run_to_user_picks(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("itemknn").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not problems(at) and not at.error
    store = Store(app_db)
    try:
        newest = int(usecases.list_runs(store, "demo")["run_id"].iloc[0])
    finally:
        store.close()
    at.switch_page("app_pages/user_picks.py").run()
    assert not problems(at)
    assert at.selectbox(key="up_run").value == newest


def test_use_cases_return_plain_data(app_db: Path):
    store = Store(app_db)
    try:
        state = usecases.status(store)
        assert state["active_dataset"] == "demo" and state["datasets"][0]["items"] == 64
        picks = usecases.recommend_for(store, "demo", store.users("demo")["user_id"].iloc[0],
                                       k=3)
        payload = picks.to_dict()
        assert len(payload["items"]) == 3 and all(i["title"] for i in payload["items"])
        json.dumps(payload)
        who = usecases.shopper(store, "demo", picks.user_id)
        assert who.tastes and sum(who.events.values()) == len(who.history)
        assert {m["name"] for m in usecases.list_models(store, "demo") if m["applies"]} >= \
            {"late-fusion", "ease", "content-image"}
        with pytest.raises(usecases.ConfirmationNeeded, match="--yes"):
            usecases.delete_dataset(store, "demo")
        assert "demo" in store.dataset_names()
    finally:
        store.close()


def test_search_pages_explain_an_encoder_that_cannot_load(app_db: Path, tmp_path: Path):
    store = Store(app_db)
    try:
        row = store.encoders().iloc[0]
        store.register_encoder(row["name"], row["version"], row["kind"], row["dataset"],
                               str(tmp_path / "gone.pt"), json.loads(row["config"]))
    finally:
        store.close()
    for page in ("app_pages/visual_search.py", "app_pages/catalog.py"):
        at = app_test(app_db, page)
        if page.endswith("catalog.py"):
            at.text_input(key="cat_query").input("red handbag").run()
        assert not problems(at), page
        assert at.error and "not available" in at.error[0].value, page


def test_photo_queries_are_cropped_to_the_product_by_default(app_db: Path):
    """A catalog product shot small on a busy grey background (a phone photo): the search use
    case crops it to the product first, so the product itself comes back first;
    a studio photo is left as it is."""
    from PIL import Image

    store = Store(app_db)
    try:
        items = store.items("demo").dropna(subset=["image_path"])
        rng = np.random.default_rng(0)
        found_crop, found_raw = [], []
        for row in items.head(12).to_dict("records"):
            product = Image.open(row["image_path"]).convert("RGB").resize((120, 120))
            noise = rng.normal(128, 6, (480, 480, 3)).clip(0, 255).astype(np.uint8)
            shot = Image.fromarray(noise)
            shot.paste(product, (200, 170))
            buf = io.BytesIO()
            shot.save(buf, "JPEG", quality=85)
            ranks = []
            for crop in (True, False):
                hits = usecases.search_similar(store, "demo", photo=buf.getvalue(), k=10,
                                               crop=crop).rows()
                ids = [h["item_id"] for h in hits]
                ranks.append(ids.index(row["item_id"]) if row["item_id"] in ids else 10)
            found_crop.append(ranks[0])
            found_raw.append(ranks[1])
        studio = items["image_path"].iloc[0]
        assert usecases.search_similar(store, "demo", photo=studio, k=1).rows()[0]["item_id"] \
            == items["item_id"].iloc[0]
    finally:
        store.close()
    assert np.mean(np.array(found_crop) == 0) >= 0.75          # the product itself comes first
    assert np.mean(found_crop) < np.mean(found_raw)            # and cropping is what does it
