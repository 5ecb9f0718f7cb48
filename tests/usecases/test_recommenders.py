"""The recommendation use case: live picks that never repeat the history unless asked, diversity
and its effect, attribute explanations with every pick, and damaged model files (NaN weights,
every run damaged, a damaged run asked by id)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.store import Store
from recsys.recommend.training import DamagedModel, load_model, train_model
from ..damaged_files import damage_file


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
    assert data["label"] == "Combined: weighted blend" and data["diversity"] == pytest.approx(0.2)


def test_nan_weights_no_longer_give_an_empty_list(interactions_shop: Store):
    """The reported case: NaN weights gave "Top 0 for user"; now the run is passed over."""
    older = train_model(interactions_shop, "shop", "ease", keep_models=0)
    newer = train_model(interactions_shop, "shop", "ease", keep_models=0)
    damage_file(newer.artifact_path, "NaN weights")
    run = load_model(interactions_shop, "shop", "ease")
    assert run.run_id == older.run_id
    assert len(run.skipped) == 1 and f"Run {newer.run_id} (ease) was skipped" in run.skipped[0]
    recs = usecases.recommend_for(interactions_shop, "shop", "u001", "ease", k=5)
    assert recs.run_id == older.run_id and len(recs.items) == 5
    assert any("damaged" in n for n in recs.notes)


def test_when_every_run_is_damaged_the_model_is_trained_again(interactions_shop: Store):
    first = train_model(interactions_shop, "shop", "ease", keep_models=0)
    damage_file(first.artifact_path, "truncated")
    with pytest.raises(DamagedModel, match="damaged.*Train it again"):
        usecases.recommend_for(interactions_shop, "shop", "u001", "ease", k=5,
                               train_if_missing=False)
    recs = usecases.recommend_for(interactions_shop, "shop", "u001", "ease", k=5)
    assert recs.run_id > first.run_id and len(recs.items) == 5
    assert any("trained again" in n for n in recs.notes)
    assert any(f"Run {first.run_id}" in n for n in recs.notes)


def test_a_damaged_run_asked_by_id_says_so(interactions_shop: Store):
    good = train_model(interactions_shop, "shop", "ease", keep_models=0)
    bad = train_model(interactions_shop, "shop", "ease", keep_models=0)
    damage_file(bad.artifact_path, "wrong-shape weights")
    with pytest.raises(DamagedModel, match=f"Run {bad.run_id} \\(ease\\): its model file .* "
                                           "is damaged.*Use another run"):
        usecases.recommend_for(interactions_shop, "shop", "u001", str(bad.run_id), k=5)
    assert usecases.recommend_for(interactions_shop, "shop", "u001", str(good.run_id), k=5).items
