"""Several sessions at once: one thread trains (writing runs and epochs) while others browse."""

from __future__ import annotations

import threading

from recsys.recommend.training import train_model
from recsys.search.facets import filter_items
from recsys.store import Store


def test_training_while_other_threads_read(demo_store: Store):
    store = demo_store
    users = list(store.users("demo")["user_id"][:20])
    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0, 0]

    def browse(slot: int) -> None:
        try:
            while not done.is_set():
                items = store.items("demo")
                assert len(filter_items(items, {"gender": ["Women"]})) > 0
                history = store.user_history("demo", users[reads[slot] % len(users)])
                assert len(history) > 0
                store.runs("demo")
                reads[slot] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=browse, args=(i,)) for i in range(2)]
    for t in readers:
        t.start()
    try:
        first = train_model(store, "demo", "bpr", {"epochs": 4})
        second = train_model(store, "demo", "itemknn")
    finally:
        done.set()
        for t in readers:
            t.join(30)
    assert not errors, errors
    assert min(reads) > 0
    runs = store.runs("demo", kind="model").set_index("run_id")
    assert runs.loc[first.run_id, "status"] == "finished"
    assert runs.loc[second.run_id, "status"] == "finished"
    assert len(store.run_epochs(first.run_id)) >= 1
