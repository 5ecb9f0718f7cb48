"""The segment rule (issue 24): a single-segment shopper's live picks stay within their
gender (plus unisex), said as a business rule; measured before/after by `segment_crossing`."""

from __future__ import annotations

import json

import numpy as np

from recsys.data.attributes import people_gender
from recsys.recommend.picks import segment_exclusions, segment_words
from recsys.simulation.shoppers import segment_genders
from recsys.usecases import recommend_for, train
from recsys.usecases.segments import segment_crossing


def test_segment_exclusions_keep_unisex_and_unknown():
    out = segment_exclusions(["Men", "Women", "Unisex", None, "girls", "Boys"], {"men", "boys"})
    assert out.tolist() == [1, 4]
    assert segment_exclusions(["Men"], None).size == 0
    assert segment_words({"women", "girls"}) == "women's and girls'"


def test_picks_of_single_segment_shoppers_stay_in_segment(demo_store):
    train(demo_store, "demo", "ease")
    result = segment_crossing(demo_store, "demo", "ease", k=12)
    assert result["shoppers"] > 20
    assert result["history_share"] == 0.0
    assert result["after"] == 0.0 <= result["before"]
    users = demo_store.users("demo")
    uid = next(u for u, p in zip(users["user_id"], users["profile"])
               if len(segment_genders(p) or ()) == 1)
    allowed = segment_genders(demo_store.user("demo", uid)["profile"])
    recs = recommend_for(demo_store, "demo", uid, "ease", k=12)
    assert recs.rule and recs.rule.startswith("Business rule")
    genders = dict(zip(demo_store.items("demo")["item_id"], demo_store.items("demo")["gender"]))
    assert all(people_gender(genders[e.item_id]) in (None, *allowed) for e in recs.items)
    plain = recommend_for(demo_store, "demo", uid, "ease", k=12, segment_rule=False)
    assert plain.rule is None and json.dumps(plain.to_dict()["rule"]) == "null"
    assert np.isfinite(result["before"])


def test_items_bought_for_someone_else_are_labelled_in_the_history(demo_store):
    from recsys.usecases import shopper

    users = demo_store.users("demo")
    labels = set()
    for uid, profile in zip(users["user_id"], users["profile"]):
        if json.loads(profile)["buys_for"]:
            labels |= set(shopper(demo_store, "demo", uid).history["for_whom"].dropna())
        else:
            assert shopper(demo_store, "demo", uid).history["for_whom"].isna().all()
            break
    assert labels <= {"for partner", "for children"}
    found = {lab for uid, p in zip(users["user_id"], users["profile"]) if json.loads(p)["buys_for"]
             for lab in shopper(demo_store, "demo", uid).history["for_whom"].dropna()}
    assert found, "no history item labelled as bought for a partner or children"
