"""Switching shopper on User picks reads one shopper narrowly: `recommend_for` reads the
shopper's row once (for the segment rule and "for whom" labels), counts the catalog with one
query, and never reads the whole users table, the whole catalog or every table's counts."""

from __future__ import annotations

from collections import Counter

from recsys import usecases
from recsys.store import Store


def test_a_shoppers_picks_read_that_shopper_once_and_nothing_whole(ready_store: Store,
                                                                    monkeypatch):
    users = ready_store.users("demo")["user_id"].tolist()
    usecases.recommend_for(ready_store, "demo", users[0], None, 12)      # model loaded, cached
    calls: Counter = Counter()

    def watch(name):
        original = getattr(Store, name)

        def watched(self, *args, **kwargs):
            if name != "items" or (len(args) < 2 and kwargs.get("item_ids") is None):
                calls[name] += 1
            return original(self, *args, **kwargs)
        monkeypatch.setattr(Store, name, watched)

    for name in ("user", "users", "counts", "items", "interactions", "has_user"):
        watch(name)
    for user in users[1:4]:
        picks = usecases.recommend_for(ready_store, "demo", user, None, 12)
        assert picks.items and picks.user_id == str(user)
        who = usecases.shopper(ready_store, "demo", user)
        assert len(who.history) == sum(who.events.values())
    assert calls["user"] == 2 * 3                 # once for the picks, once for the page's card
    assert not calls["users"] and not calls["counts"] and not calls["interactions"]
    assert not calls["items"] and not calls["has_user"]
