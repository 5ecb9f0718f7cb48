"""How often a model's picks cross a shopper's declared segment, with and without
the segment business rule: the measurement behind `benchmarks/gender_picks.py` and its test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.store import Store


def segment_crossing(store: Store, dataset: str | None = None, model: str | int | None = None,
                     k: int = 12, *, max_shoppers: int | None = None) -> dict[str, Any]:
    """For the simulated shoppers who shop for one segment only (their own gender: no partner,
    no children), the mean number of their top-`k` live picks (history left out, re-ranked for
    variety as on the User picks page) made for another gender: `before` by the model alone,
    `after` with the segment rule (`recommend_for`'s default). Also the share of those
    shoppers' history events on another gender's items (`history_share`, 0 by construction of
    the simulator). Shoppers without a declared segment (real users) are not counted."""
    from recsys.data.attributes import people_gender
    from recsys.data.interactions import UnknownUser
    from recsys.recommend.picks import rank_picks, segment_exclusions
    from recsys.recommend.training import load_model
    from recsys.simulation.shoppers import segment_genders

    from .recommenders import default_model, item_genders, run_data

    dataset = store.resolve_dataset(dataset)
    name = default_model(store, dataset) if model is None else str(model)
    run = load_model(store, dataset, name)
    data = run_data(store, dataset, run.config)
    fitted = run.model
    genders = item_genders(store, dataset, fitted.item_ids)
    people = np.array([people_gender(g) or "" for g in genders], dtype=object)
    positions = pd.Index(fitted.item_ids.astype(str))
    users = store.users(dataset)
    interactions = store.interactions(dataset)
    by_user = interactions.groupby("user_id")["item_id"].apply(list).to_dict()
    before, after, crossing_events, events = [], [], 0, 0
    for uid, profile in zip(users["user_id"].astype(str), users["profile"]):
        allowed = segment_genders(profile)
        if not allowed or len(allowed) != 1:
            continue
        try:
            u = fitted.user_index(uid)
        except UnknownUser:     # a shopper the run never saw (no training events)
            continue
        history = positions.get_indexer([str(i) for i in by_user.get(uid, [])])
        history = history[history >= 0]
        crossing_events += int(sum(people[h] not in ("",) and people[h] not in allowed
                                   for h in history))
        events += len(history)
        scores = fitted.score([u])[0].astype(np.float64)
        plain, *_ = rank_picks(scores, data, k, exclude=history if len(history) else None)
        outside = segment_exclusions(genders, allowed)
        ruled, *_ = rank_picks(scores, data, k, exclude=np.union1d(history, outside))
        for picks, out in ((plain, before), (ruled, after)):
            out.append(sum(1 for i in picks if people[i] and people[i] not in allowed))
        if max_shoppers and len(before) >= max_shoppers:
            break
    n = len(before)
    return {"dataset": dataset, "model": run.name, "run_id": run.run_id, "k": int(k),
            "shoppers": n,
            "before": float(np.mean(before)) if n else 0.0,
            "after": float(np.mean(after)) if n else 0.0,
            "history_share": crossing_events / events if events else 0.0}
