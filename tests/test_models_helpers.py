"""Tiny data sets whose right answers are known, shared by the model, training and CLI tests.

Two taste groups: users 0-9 like items 0-9, users 10-19 like items 10-19. Items of a group look
alike (image and text vectors near one direction per group). Items 20 and 21 are cold: nobody
interacted with them, but 20 looks like group A and 21 like group B, so only content can place
them. Item 0 is the most popular item.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.interactions import InteractionData, Ratings
from recsys.store import Store

N_USERS, N_ITEMS, GROUP = 20, 22, 10
COLD_A, COLD_B = 20, 21
DATASET = "tiny"


def group_of_item(i: int) -> int:
    return 0 if i in (COLD_A,) or i < GROUP and i != COLD_B else 1


def _vectors(rng: np.random.Generator, dim: int) -> np.ndarray:
    base = np.zeros((2, dim))
    base[0, 0] = base[1, 1] = 1.0
    groups = [group_of_item(i) for i in range(N_ITEMS)]
    vec = base[groups] + 0.25 * rng.normal(size=(N_ITEMS, dim))
    return (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)


def tiny_pairs(seed: int = 0) -> tuple[list[tuple[int, int, int]], np.ndarray, np.ndarray]:
    """(user, item, split code) triples plus image and text vectors."""
    rng = np.random.default_rng(seed)
    triples = []
    for u in range(N_USERS):
        group = u // GROUP
        items = rng.permutation(np.arange(group * GROUP, (group + 1) * GROUP))[:8]
        if group == 0 and 0 not in items:
            items[-1] = 0
        codes = [0] * 6 + [1, 2]
        triples += [(u, int(i), c) for i, c in zip(items, codes)]
    # item 0 is in every group-A history and in some of group B's: the most popular item
    triples += [(u, 0, 0) for u in range(GROUP, GROUP + 4)]
    return triples, _vectors(rng, 8), _vectors(rng, 6)


def tiny_ratings(triples: list[tuple[int, int, int]], seed: int = 0) -> Ratings:
    """Stars for every pair: 4-5 for an item of the user's own group, 1-2 otherwise."""
    rng = np.random.default_rng(seed + 7)
    users, items, codes = (np.array(x) for x in zip(*triples))
    own = np.array([group_of_item(i) == u // GROUP for u, i in zip(users, items)])
    stars = np.where(own, rng.integers(4, 6, len(users)), rng.integers(1, 3, len(users)))
    return Ratings(users.astype(np.int64), items.astype(np.int64), stars.astype(np.float32),
                   codes.astype(np.int8))


def tiny_data(with_vectors: bool = True, seed: int = 0, with_ratings: bool = True
              ) -> InteractionData:
    triples, image, text = tiny_pairs(seed)
    mats = []
    for code in range(3):
        rows = [(u, i) for u, i, c in triples if c == code]
        r, c = zip(*rows)
        mats.append(sp.csr_matrix((np.ones(len(r), np.float32), (r, c)),
                                  shape=(N_USERS, N_ITEMS)))
    users = np.array([f"u{u:02d}" for u in range(N_USERS)], dtype=object)
    items = np.array([f"i{i:02d}" for i in range(N_ITEMS)], dtype=object)
    return InteractionData(DATASET, "stored", users, items, *mats,
                           image=image if with_vectors else None,
                           text=text if with_vectors else None,
                           encoder="test@1" if with_vectors else None,
                           ratings=tiny_ratings(triples, seed) if with_ratings else None)


def fill_store(store: Store, with_split: bool = False, with_vectors: bool = True) -> None:
    """Write the tiny data set into a store as a catalog with events, timestamps and vectors."""
    triples, image, text = tiny_pairs()
    items = pd.DataFrame({"dataset": DATASET, "item_id": [f"i{i:02d}" for i in range(N_ITEMS)],
                          "title": [f"Product {i} ({'AB'[group_of_item(i)]})"
                                    for i in range(N_ITEMS)]})
    users = pd.DataFrame({"dataset": DATASET, "user_id": [f"u{u:02d}" for u in range(N_USERS)]})
    start = datetime(2025, 1, 1)
    rows = []
    for n, (u, i, code) in enumerate(triples):
        ts = start + timedelta(days={0: 0, 1: 10, 2: 20}[code], minutes=n)
        split = ("train", "valid", "test")[code] if with_split else None
        rows.append((DATASET, f"u{u:02d}", f"i{i:02d}", "view", ts, 1.0, split))
        if n % 3 == 0:   # a repeated event of the same pair: must collapse to one positive
            rows.append((DATASET, f"u{u:02d}", f"i{i:02d}", "purchase", ts + timedelta(minutes=1),
                         5.0, split))
    inter = pd.DataFrame(rows, columns=["dataset", "user_id", "item_id", "event", "ts", "weight",
                                        "split"])
    with store.transaction() as cur:
        store.upsert_dataset(cur, DATASET, "catalog")
        for table, frame in (("items", items), ("users", users), ("interactions", inter)):
            store.insert_frame(cur, table, frame)
    if with_vectors:
        ids = list(items["item_id"])
        store.upsert_embeddings(DATASET, "test", "1", "image", ids, image, [None] * N_ITEMS)
        store.upsert_embeddings(DATASET, "test", "1", "text", ids, text, [None] * N_ITEMS)


def fast_params(name: str) -> dict:
    """Small hyperparameters so every model trains on the tiny data in about a second."""
    from recsys.models import get_spec

    spec = get_spec(name)
    if not spec.cls.iterative:
        return {"neighbors": 5} if name in ("userknn",) else {}
    # (the tiny data's 20 validation ratings are too few to stop a rating model on)
    wanted = {"epochs": 25, "patience": 25, "batch_size": 32, "dim": 16, "feature_dim": 4,
              "lr": 0.02, "stop_on": "ndcg"}
    fields = {p["name"] for p in spec.describe()["params"]}
    return {k: v for k, v in wanted.items() if k in fields}
