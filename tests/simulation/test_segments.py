"""Simulated shoppers shop for a declared segment (issue 24): own gender and age, a labelled
minority who also buy for a partner or children, names that agree."""

from __future__ import annotations

import json

import pandas as pd

from recsys.data.attributes import people_gender
from recsys.demo.art import generate_catalog
from recsys.simulation.shoppers import (
    FEMALE_NAMES,
    MALE_NAMES,
    SimulationConfig,
    recipient_label,
    segment_genders,
    simulate,
)


def _simulated(users=300):
    items = pd.DataFrame(generate_catalog(160, seed=1))
    items["image_path"] = None
    u, inter = simulate(items, SimulationConfig(users=users, seed=3))
    return items, u, inter


def test_single_segment_histories_never_cross_gender_and_the_minority_is_labelled():
    items, users, inter = _simulated()
    gender = dict(zip(items["item_id"], items["gender"]))
    by_user = inter.groupby("user_id")["item_id"].apply(list).to_dict()
    labelled = crossing_minority = 0
    for uid, name, segment, raw in users[["user_id", "name", "segment", "profile"]].itertuples(
            index=False):
        profile = json.loads(raw)
        allowed = segment_genders(profile)
        own = people_gender(profile["gender"])
        assert own in ("men", "women", "boys", "girls")
        assert (name.split()[0] in MALE_NAMES) == (own in ("men", "boys"))
        assert profile["age_band"] and profile["price_band"] in ("budget", "mid-range", "premium")
        others = [i for i in by_user.get(uid, [])
                  if people_gender(gender[i]) not in (None, own)]
        if not profile["buys_for"]:
            assert allowed == {own}
            assert others == [], (uid, others)
            assert "also buys for" not in segment
        else:
            labelled += 1
            assert own in ("men", "women") and f"also buys for {profile['buys_for'][0]}" in segment
            assert all(people_gender(gender[i]) in allowed for i in others)
            labels = {recipient_label(profile, gender[i]) for i in others}
            assert labels <= {"for partner", "for children"}
            crossing_minority += bool(others)
    assert 0.05 <= labelled / len(users) <= 0.3
    assert crossing_minority > 0


def test_recipient_label_and_segment_genders_for_real_users():
    assert segment_genders(None) is None and segment_genders("{}") is None
    assert recipient_label({"gender": "Women"}, "Men") is None
    partner = {"gender": "Women", "buys_for": ["partner"], "shops_for_genders": ["men"]}
    assert segment_genders(partner) == {"women", "men"}
    assert recipient_label(partner, "Men") == "for partner"
    assert recipient_label(partner, "Unisex") is None
    kids = {"gender": "Men", "buys_for": ["children"], "shops_for_genders": ["boys", "girls"]}
    assert recipient_label(json.dumps(kids), "Girls") == "for children"
    assert set(FEMALE_NAMES).isdisjoint(MALE_NAMES)
