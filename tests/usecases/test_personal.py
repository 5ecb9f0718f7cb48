"""The personal use cases: a new shopper's first picks (fold-in) and their errors, the cold-start
evaluation, search as a shopper and its evaluation.

On the tiny data set (`test_models_helpers`) or the small demo (simulated shoppers with hidden
tastes, an aligned encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import usecases
from recsys.store import Store

from ..test_models_helpers import DATASET, GROUP


# -- a new shopper's first picks -------------------------------------------------------------------
def test_new_shopper_picks_come_from_the_liked_group(tiny_ease: Store):
    picks = usecases.new_shopper_picks(tiny_ease, DATASET, ["i01", "i02", "i03"], model="ease", k=5)
    ids = list(picks.items["item_id"])
    assert len(ids) == 5 and not {"i01", "i02", "i03"} & set(ids)
    assert sum(int(i[1:]) < GROUP for i in ids) >= 4
    assert all(set(r) <= {"i01", "i02", "i03"} for r in picks.items["resembles"])
    assert list(picks.liked["item_id"]) == ["i01", "i02", "i03"]


def test_new_shopper_errors_are_clear(tiny_ease: Store):
    from recsys.core.errors import RecsysError

    with pytest.raises(RecsysError, match="at least one product"):
        usecases.new_shopper_picks(tiny_ease, DATASET, [], model="ease")
    with pytest.raises(RecsysError, match="Unknown product nope"):
        usecases.new_shopper_picks(tiny_ease, DATASET, ["nope"], model="ease")


def test_cold_start_evaluation_beats_popularity_on_two_taste_groups(tiny_ease: Store):
    frame = usecases.evaluate_cold_start(tiny_ease, DATASET, ["popularity", "ease", "content"],
                                         lengths=[1, 3], users=8, k=5)
    assert set(frame["model"]) == {"popularity", "ease", "content"}
    assert set(frame["history"]) == {1, 3} and (frame["users"] == 8).all()
    ndcg = frame[frame["metric"] == "ndcg"].set_index(["model", "history"])["value"]
    # popularity ignores the history: its numbers do not depend on its length
    assert ndcg[("popularity", 1)] == pytest.approx(ndcg[("popularity", 3)])
    assert ndcg[("ease", 3)] > ndcg[("popularity", 3)]
    assert ndcg[("content", 3)] > ndcg[("popularity", 3)]


# -- personalised search (needs the aligned encoder of the demo) -----------------------------------
def test_search_as_a_shopper_reorders_the_query_matches(ready_store: Store):
    users = ready_store.users("demo")
    a, b = users["user_id"].iloc[0], users["user_id"].iloc[40]
    plain = usecases.search_similar(ready_store, "demo", text="shoes", k=30)
    query_only = usecases.search_for_shopper(ready_store, "demo", user_id=a, text="shoes",
                                             taste=0.0, k=10, pool=30)
    assert list(query_only.results["item_id"]) == list(plain.results["item_id"][:10])
    assert (query_only.results["query_share"] == 1.0).all()
    mostly = usecases.search_for_shopper(ready_store, "demo", user_id=a, text="shoes", taste=1.0,
                                         k=30, pool=30)
    assert set(mostly.results["item_id"]) == set(plain.results["item_id"])   # same matches
    assert list(mostly.results["taste_score"]) == sorted(mostly.results["taste_score"],
                                                         reverse=True)
    other = usecases.search_for_shopper(ready_store, "demo", user_id=b, text="shoes", taste=1.0,
                                        k=30, pool=30)
    assert list(other.results["item_id"]) != list(mostly.results["item_id"])
    half = usecases.search_for_shopper(ready_store, "demo", user_id=a, text="shoes", taste=0.5,
                                       k=10, pool=30)
    np.testing.assert_allclose(half.results["query_share"] + half.results["taste_share"], 1.0)
    new = usecases.search_for_shopper(ready_store, "demo",
                                      history=list(mostly.results["item_id"][:2]),
                                      text="shoes", taste=0.7, k=5, pool=30,
                                      hide_history=True)
    assert not set(new.history) & set(new.results["item_id"])


def test_personal_search_evaluation_reports_every_taste_weight(ready_store: Store):
    out = usecases.evaluate_personal_search(ready_store, "demo", tastes=(0.0, 1.0), k=10, pool=50)
    assert out["cases"] > 0 and out["queries"] > 0
    keys = set(out["ndcg"])
    assert {"ndcg@10 taste=0.00", "ndcg@10 taste=1.00", "ndcg@10 taste_only",
            "pool_recall"} == keys
    assert all(0.0 <= v <= 1.0 for v in out["ndcg"].values())
