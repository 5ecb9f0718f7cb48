"""Result sizes through the use cases the pages call: lowered to what there is, with a note; work
sizes beyond their maximum refused with the range."""

from __future__ import annotations
import pytest
from recsys import usecases
from recsys.core.limits import LimitError
from recsys.store import Store
from ..conftest import DEMO_ITEMS, DEMO_USERS


def test_use_cases_lower_result_sizes_with_a_note(ready_store: Store):
    user = ready_store.users("demo")["user_id"].iloc[0]
    recs = usecases.recommend_for(ready_store, "demo", user, "popularity", 10**9,
                                  train_if_missing=True)
    assert recs.notes and "lowered to 64" in recs.notes[0]
    assert 0 < len(recs.items) <= DEMO_ITEMS and recs.to_dict()["notes"] == recs.notes
    hits = usecases.search_for_shopper(ready_store, "demo", user_id=user, text="red", k=10**9,
                                       pool=10**9, model="popularity")
    assert len(hits.results) == DEMO_ITEMS
    assert [n.split(" was")[0] for n in hits.notes] == ["k 1,000,000,000", "pool 1,000,000,000"]
    liked = [str(i) for i in ready_store.item_ids("demo")[:2]]
    picks = usecases.new_shopper_picks(ready_store, "demo", liked, model="popularity", k=10**9)
    assert len(picks.items) <= DEMO_ITEMS and "lowered to 64" in picks.notes[0]
    page = usecases.search_catalog(ready_store, "demo", query="a bag", k=10**9)
    assert len(page.items) == DEMO_ITEMS and "the maximum is 10,000" in page.notes[0]
    cmap = usecases.catalog_map(ready_store, "demo", clusters=200, method="tsne")
    assert cmap.clusters["cluster"].nunique() <= DEMO_ITEMS
    assert "clusters 200 was lowered to 64" in cmap.notes[0]
    with pytest.raises(LimitError, match="visits must be between 1 and 1,000"):
        usecases.ab_test(ready_store, "demo", "popularity", "popularity", visits=10**9)
    with pytest.raises(LimitError, match="users must be between 1 and 100,000"):
        usecases.simulate(ready_store, "demo", users=10**9)
    with pytest.raises(LimitError, match="whole number"):
        usecases.search_similar(ready_store, "demo", text="red", k=float("nan"))
    assert ready_store.counts("demo")["users"] == DEMO_USERS         # nothing was replaced
