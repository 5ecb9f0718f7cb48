"""Live picks (issue 11): nothing already seen, diversity, a sentence from the model's own
attribution, the attributes that drove each pick, in the use case, the CLI and the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.data.attributes import attribute_table, infer_brands, price_bands
from recsys.explain.attribution import AttributeCodes, explain_attributes
from recsys.explain.sentences import Cited, emphasis_html, pick_sentence, plain
from recsys.recommend.picks import rank_picks
from recsys.store import Store

from ..app_helpers import app_test, html_of, problems
from ..test_models_helpers import tiny_data
from ..usecases.test_app_and_cli_agree import cli


# -- catalog attributes ----------------------------------------------------------------------
def test_brands_are_full_names_not_first_words():
    titles = ["Reid & Taylor Men Solid Grey Socks", "United Colors of Benetton Men Blue Shirt",
              "United Colors Of Benetton Women Red Top", "United Colors of Benetton Teal Top",
              "M Men Black Shirt", "Manchester United Men Printed Black Cap",
              "Genesis Maroon Formal Shirt", "", None]
    assert infer_brands(titles) == [
        "Reid & Taylor", "United Colors of Benetton", "United Colors of Benetton",
        "United Colors of Benetton", "M", "Manchester United", "Genesis", "", ""]
    assert infer_brands(["Loomcraft Men Tee"], ["Tidewell"]) == ["Tidewell"]


def test_price_bands_cut_at_quartiles():
    bands = price_bands([100, 200, 300, 400, 500, 600, 700, 800, None])
    assert bands[-1] is None and len(set(bands[:-1])) == 4
    assert bands[0] == bands[1] and bands[0].startswith("₹100-")
    assert price_bands([None, None, 5.0]) == [None, None, None]


def test_attribute_table_leaves_out_what_cannot_tell_items_apart():
    items = pd.DataFrame({"item_id": ["a", "b", "c"],
                          "title": ["X Men Tee", "Y Men Tee", "X Men Cap"],
                          "article_type": ["Tee", "Tee", "Cap"], "usage": ["Casual"] * 3,
                          "base_colour": ["Red", None, "Blue"], "price": [None] * 3})
    table = attribute_table(items)
    assert list(table.columns) == ["item_id", "article_type", "base_colour", "brand"]
    assert table["brand"].tolist() == ["X", "Y", "X"]


# -- the surrogate ---------------------------------------------------------------------------
def _catalog(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n)],
        "title": [f"{b} Men Thing" for b in rng.choice(["Alpha", "Beta", "Gamma"], n)],
        "article_type": rng.choice(["Socks", "Caps", "Shirts", "Shoes"], n),
        "base_colour": rng.choice(["Grey", "Red", "Blue", "Black"], n),
        "usage": rng.choice(["Casual", "Sports"], n)})


@pytest.mark.parametrize("driver, column", [("colour", "base_colour"),
                                            ("type", "article_type")])
def test_the_attribute_that_drives_the_scores_comes_first(driver, column):
    items = _catalog()
    codes = AttributeCodes(attribute_table(items), items["item_id"])
    rng = np.random.default_rng(1)
    pick = 7
    value = items[column].iloc[pick]
    scores = 2.0 * (items[column] == value).to_numpy() + rng.normal(0, 0.3, len(items))
    out = explain_attributes(scores, codes, pick, "i7")
    assert out.drivers and out.drivers[0].attribute == driver
    assert out.drivers[0].value == value and out.drivers[0].effect > 1.0
    assert 0.3 < out.fit <= 1.0 and out.items == len(items)
    other = explain_attributes(scores, codes, pick, "i7", exclude=np.arange(50))
    assert other.items == len(items) - 50 + (1 if pick < 50 else 0)


def test_scores_without_any_attribute_signal_give_no_strong_driver():
    items = _catalog()
    codes = AttributeCodes(attribute_table(items), items["item_id"])
    scores = np.random.default_rng(2).normal(size=len(items))
    out = explain_attributes(scores, codes, 3, "i3")
    assert out.effects
    assert all(abs(e.effect) < 0.5 for e in out.effects)


# -- sentences -------------------------------------------------------------------------------
SWEATER = Cited("Nike Men White Sweater", "purchase", {"cf": 0.2, "image": 0.9, "text": 0.5})
SOCKS = Cited("Puma Men Grey Socks", "view", {"cf": 0.7, "image": 0.3, "text": 0.8})


def test_sentence_follows_the_attribution():
    photo = pick_sentence({"cf": 0.35, "image": 0.6, "text": 0.05}, [SWEATER, SOCKS])
    assert plain(photo) == ("Looks like the Nike Men White Sweater you bought, and shoppers "
                            "with your history often choose it.")
    text = pick_sentence({"cf": 0.1, "image": 0.1, "text": 0.8}, [SWEATER, SOCKS])
    assert plain(text) == "Described like the Puma Men Grey Socks you looked at."
    behaviour = pick_sentence({"cf": 0.9, "image": 0.05, "text": 0.05}, [SWEATER, SOCKS])
    assert plain(behaviour) == ("Shoppers who looked at the Puma Men Grey Socks often choose it "
                                "too.")
    assert len({photo, text, behaviour}) == 3
    # the event the shopper had with the cited item changes the verb
    carted = Cited(SWEATER.title, "cart", SWEATER.similarities)
    assert "you put in your cart" in pick_sentence({"image": 1.0}, [carted])
    assert "you bought" in pick_sentence({"image": 1.0}, [SWEATER])


def test_sentence_for_cold_seen_and_historyless_picks():
    cold = pick_sentence({"image": 0.7, "text": 0.3}, [SWEATER], cold=True)
    assert cold.startswith("New in the catalog: looks like")
    seen = pick_sentence({"cf": 1.0}, [SOCKS], seen="cart")
    assert seen.startswith("Already in your cart; shoppers who looked at")
    alone = pick_sentence({"cf": 1.0}, [], attributes=[("type", "Socks"), ("colour", "Grey")])
    assert alone == "Matches what you like: Socks (type), Grey (colour)."
    assert pick_sentence({"cf": 1.0}, []) == "Popular with shoppers like you."
    assert emphasis_html("Looks like the *A <b>* you bought.") == \
        "Looks like the <em>A &lt;b&gt;</em> you bought."


# -- the live ranking ------------------------------------------------------------------------
def test_rank_picks_leaves_out_the_seen_and_spreads_near_duplicates():
    data = tiny_data()
    scores = np.linspace(1.0, 0.0, data.n_items)
    seen = np.array([0, 1, 2])
    items, _, picked, plain_sim = rank_picks(scores, data, 5, 0.0, exclude=seen)
    assert items.tolist() == [3, 4, 5, 6, 7]          # the model's order, seen items left out
    assert picked == pytest.approx(plain_sim)
    varied, _, picked, plain_sim = rank_picks(scores, data, 5, 0.9, exclude=seen)
    assert varied[0] == 3 and not set(varied) & set(seen)
    assert picked < plain_sim                        # the two taste groups get mixed in
    with pytest.raises(ValueError):
        rank_picks(scores, data, 5, 1.5)


# -- the use case, the CLI and the page -------------------------------------------------------
def test_live_picks_never_repeat_the_history_unless_asked(app_db: Path):
    store = Store(app_db)
    try:
        users = list(store.users("demo")["user_id"][:25])
        repeated = 0
        for user in users:
            history = set(store.user_item_events("demo", user)["item_id"])
            recs = usecases.recommend_for(store, "demo", user, k=10)
            assert len(recs.items) == 10, user
            assert not {e.item_id for e in recs.items} & history, user
            assert recs.seen == {}
            assert set(recs.sentences) == {e.item_id for e in recs.items}
            assert all(s.endswith(".") for s in recs.sentences.values())
            assert {s.item_id for e in recs.items for s in e.similar} <= history
            again = usecases.recommend_for(store, "demo", user, k=10, include_seen=True,
                                           diversity=0.0)
            repeated += len(again.seen)
            for item, event in again.seen.items():
                assert event == recs.history[item]
                assert not any(s.item_id == item for e in again.items if e.item_id == item
                               for s in e.similar)          # a pick never cites itself
        assert repeated > 0          # the model does rank some seen items high
        with pytest.raises(RecsysError, match="between 0"):
            usecases.recommend_for(store, "demo", users[0], diversity=1.5)
    finally:
        store.close()


def test_diversity_changes_the_list_and_reports_its_effect(app_db: Path):
    store = Store(app_db)
    try:
        user = store.users("demo")["user_id"].iloc[4]
        plain_list = usecases.recommend_for(store, "demo", user, k=12, diversity=0.0)
        varied = usecases.recommend_for(store, "demo", user, k=12, diversity=0.8)
    finally:
        store.close()
    assert [e.item_id for e in plain_list.items] != [e.item_id for e in varied.items]
    assert plain_list.items[0].item_id == varied.items[0].item_id
    assert varied.similarity["picks"] < plain_list.similarity["picks"]
    assert plain_list.similarity["picks"] == pytest.approx(plain_list.similarity["most_relevant"])


def test_attribute_explanations_come_with_every_pick(app_db: Path):
    store = Store(app_db)
    try:
        user = store.users("demo")["user_id"].iloc[2]
        recs = usecases.recommend_for(store, "demo", user, k=8)
        items = store.items("demo").set_index("item_id")
    finally:
        store.close()
    assert set(recs.attributes) == {e.item_id for e in recs.items}
    columns = {"article_type", "base_colour", "brand", "usage", "price_band"}
    for item_id, expl in recs.attributes.items():
        assert expl.effects and {e.column for e in expl.effects} <= columns
        for e in expl.effects:
            if e.column in ("article_type", "base_colour", "usage", "brand"):
                assert e.value == items.loc[item_id, e.column]
    data = recs.to_dict()
    first = data["items"][0]
    assert first["sentence"] and first["attributes"] and "attribute_fit" in first
    assert data["label"] == "Fusion: late" and data["diversity"] == pytest.approx(0.2)


def test_cli_recommend_flags(app_db: Path):
    store = Store(app_db)
    user = store.users("demo")["user_id"].iloc[1]
    history = set(store.user_item_events("demo", user)["item_id"])
    store.close()
    code, out, err = cli("recommend", "--db", str(app_db), "--user", user, "--json")
    assert code == 0, err
    assert not {i["item_id"] for i in out["items"]} & history
    assert out["items"]
    assert all(i["sentence"] for i in out["items"]) and out["include_seen"] is False
    code, out, err = cli("recommend", "--db", str(app_db), "--user", user, "--include-seen",
                         "--diversity", "0", "--json")
    assert code == 0, err
    assert out["include_seen"] is True and out["diversity"] == 0
    assert {i["item_id"] for i in out["items"] if i["seen"]} <= history
    code, text, err = cli("recommend", "--db", str(app_db), "--user", user, "--k", "3")
    assert code == 0 and "driven by:" in text and "Fusion: late" in text
    code, _, err = cli("recommend", "--db", str(app_db), "--user", user, "--diversity", "2")
    assert code == 2 and "between 0" in err


def test_user_picks_page_explains_in_words(app_db: Path):
    at = app_test(app_db, "app_pages/user_picks.py")
    user = at.selectbox(key="up_user")
    store = Store(app_db)
    sizes = store.users("demo").set_index("user_id")["n_interactions"]
    store.close()
    busy = sizes.idxmax()                  # a shopper whose history does not fit on screen
    user.set_value(busy).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    k = at.slider(key="up_k").value
    assert page.count('class="rs-why"') == k                 # one sentence per pick
    assert page.count('class="rs-attrs"') >= k // 2          # attributes on the cards
    assert page.count('class="rs-cite"') >= k                # cited items, with titles
    assert "rs-cited" in page                                # ...outlined in the history
    assert any(e.label.startswith("All ") for e in at.expander)      # the history expands
    assert " before</div>" not in page                       # nothing already seen
    at.toggle(key="up_seen").set_value(True).run()
    at.slider(key="up_div").set_value(0.0).run()
    assert not problems(at)
    assert " before</div>" in html_of(at)                    # seen picks, badged
    assert at.selectbox(key="up_run").format_func(at.selectbox(key="up_run").value) == \
        "Fusion: late"
