"""Use cases of personalisation beyond one shopper's list: a search answered for a shopper
(`search_for_shopper`), a new shopper's first picks with no retraining (`new_shopper_picks`),
and their offline measurements (`evaluate_personal_search`, `evaluate_cold_start`).

Rules written once here, for the app and the command line alike:
* a personalised search keeps the query's `pool` best products and reorders them by
  `(1 - taste) * query + taste * taste score`, both rescaled over the pool (`recsys.search.personal`);
  each result carries its query and taste shares;
* a new shopper's history is scored by the model's `score_history` (fold-in); a photo stands
  for the catalog products that look most like it;
* "which run": a model name (its newest usable run, trained first when missing), a run id, or
  `default_model` (`resolve_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.limits import (
    MAX_METRIC_K,
    MAX_PICKS,
    MAX_RESULTS,
    as_int,
    check_list,
    check_range,
    check_seed,
    clamp,
)
from recsys.core.progress import ProgressCallback, report, scaled
from recsys.store import Store

if TYPE_CHECKING:
    from recsys.data.images import ImageSource
    from recsys.recommend.training import TrainedRun

PHOTO_MATCHES = 3
"""Catalog products a new shopper's photo stands for (its nearest look-alikes)."""
MAX_PHOTO_MATCHES = 50

CLOSE_SECOND = 0.9
"""A pick names a second liked product it resembles only when that one is nearly as close
(at least this share of the closest one's similarity)."""

RESULT_COLUMNS = ("rank", "item_id", "score", "query_share", "taste_share", "query_score",
                  "taste_score", "in_history", "title", "image_path")


def resolve_run(store: Store, dataset: str, model: str | int | None = None, *,
                train_if_missing: bool = True, progress: ProgressCallback | None = None
                ) -> TrainedRun:
    """The run a personalised answer uses: a model name (its newest usable run; trained first
    when it has none, unless `train_if_missing` is False), a run id, or `default_model`."""
    from recsys.recommend.training import ModelNotTrained, load_model

    from ..models import get_spec
    from .recommenders import default_model, train

    name = default_model(store, dataset) if model is None else str(model)
    if not name.isdigit():
        get_spec(name)
    try:
        return load_model(store, dataset, name)
    except ModelNotTrained:
        if name.isdigit() or not train_if_missing:
            raise
        return train(store, dataset, name, progress=progress).run


def _positions(model_ids: Sequence[str]) -> dict[str, int]:
    return {str(i): n for n, i in enumerate(model_ids)}


def _history_positions(run: TrainedRun, liked: Sequence[str]) -> np.ndarray:
    pos = _positions(run.model.item_ids)
    unknown = [i for i in liked if str(i) not in pos]
    if unknown:
        raise RecsysError(f"Unknown product{'s' * (len(unknown) > 1)} "
                          f"{', '.join(map(str, unknown[:5]))} in '{run.dataset}' (or not in "
                          f"the data run {run.run_id} was trained on).")
    return np.array([pos[str(i)] for i in liked], dtype=np.int64)


# -- personalised search ------------------------------------------------------------------------
@dataclass
class PersonalHits:
    """A search answered for one shopper, best first.

    `results`: rank, item_id, score (the blend, 0..1), query_share / taste_share (of the score;
    they sum to 1), query_score (the search's own similarity) and taste_score (the model's
    score), in_history (the shopper already has it), and the product's catalog columns.
    `shopper` is a user id, or None for a new shopper described by `history`.
    """

    dataset: str
    shopper: str | None
    history: list[str]
    model: str
    run_id: int
    taste: float
    pool: int
    query: dict[str, Any]
    encoder: str
    seconds: float
    results: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for r in self.results.to_dict("records"):
            row = {c: r.get(c) for c in RESULT_COLUMNS}
            row["rank"] = int(row["rank"])
            row["in_history"] = bool(row["in_history"])
            for c in ("score", "query_share", "taste_share", "query_score", "taste_score"):
                row[c] = None if row[c] is None or row[c] != row[c] else float(row[c])
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "shopper": self.shopper, "history": self.history,
                "model": self.model, "run_id": self.run_id, "taste": self.taste,
                "pool": self.pool, "query": self.query, "encoder": self.encoder,
                "seconds": self.seconds, "notes": self.notes, "results": self.rows()}


def search_for_shopper(store: Store, dataset: str | None = None, *,
                       user_id: str | None = None, history: Sequence[str] | None = None,
                       text: str | None = None, photo: ImageSource | None = None,
                       item_id: str | None = None, taste: float | None = None, k: int = 20,
                       model: str | int | None = None, image_weight: float | None = None,
                       pool: int | None = None,
                       filters: Mapping[str, Sequence[str]] | None = None,
                       hide_history: bool = False, encoder: str | None = None,
                       train_if_missing: bool = True,
                       progress: ProgressCallback | None = None) -> PersonalHits:
    """A search (words, a photo or a catalog product, as `search_similar` takes them) answered
    for one shopper: the query's `pool` best products (default `recsys.search.personal.default_pool`:
    300, at most 5% of the catalog, at least `k`),
    reordered by `(1 - taste) * query relevance + taste * the shopper's model score`, both
    rescaled to 0..1 over the pool. `taste` (default `recsys.search.personal.DEFAULT_TASTE`, 0.3) 0 is
    the plain search, 1 the shopper's favourites
    among the matches. The shopper is a `user_id` of the dataset, or a new shopper given by
    `history` (product ids they like, scored by fold-in). `hide_history` leaves out products
    the shopper already has. Raises `SearchError`, `UnknownUser`, `UnknownModel`,
    `ModelNotTrained` (a run id, or `train_if_missing` False) with clear messages.
    """
    from recsys.data.interactions import UnknownUser, unknown_user_message
    from recsys.search.personal import DEFAULT_TASTE, blend, check_taste, default_pool

    from .search import SearchError, search_similar

    dataset = store.resolve_dataset(dataset)
    taste = check_taste(DEFAULT_TASTE if taste is None else taste)
    k, pool = as_int(k, "k"), None if pool is None else as_int(pool, "pool")
    if k < 1 or (pool is not None and pool < 1):
        raise SearchError("The number of results and the pool must be at least 1.")
    notes: list[str] = []
    n_items = len(store.item_ids(dataset))
    k = clamp(k, "k", n_items, MAX_RESULTS, "products", notes)
    pool = default_pool(n_items, k) if pool is None else \
        clamp(pool, "pool", n_items, MAX_RESULTS, "products", notes)
    if (user_id is None) == (not history):
        raise SearchError("Search as one shopper: give a shopper's id or a new shopper's "
                          "liked products, not both.")
    if user_id is not None and not store.has_user(dataset, str(user_id)):
        raise UnknownUser(unknown_user_message(user_id, store.users(dataset)["user_id"],
                                               dataset))
    run = resolve_run(store, dataset, model, train_if_missing=train_if_missing,
                      progress=progress)
    t0 = time.perf_counter()
    pos = _positions(run.model.item_ids)
    if user_id is not None:
        user = run.model.user_index(str(user_id))
        liking = run.model.score([user])[0]
        owned = {str(run.model.item_ids[i]) for i in run.model.seen[user].indices}
    else:
        idx = _history_positions(run, list(history))
        liking = run.model.score_history(idx)
        owned = {str(i) for i in history}
    extra = len(owned) if hide_history else 0
    hits = search_similar(store, dataset, photo=photo, text=text, item_id=item_id,
                          image_weight=image_weight, k=pool + extra, filters=filters,
                          encoder=encoder)
    found = hits.results
    if hide_history:
        found = found[~found["item_id"].astype(str).isin(owned)].head(pool)
    found = found[found["item_id"].astype(str).isin(pos)].reset_index(drop=True)
    taste_scores = np.array([liking[pos[str(i)]] for i in found["item_id"]], dtype=np.float64)
    mixed = blend(found["score"].to_numpy(dtype=np.float64), taste_scores, taste)
    ordered = found.iloc[mixed.order].reset_index(drop=True)
    ordered = ordered.assign(query_score=ordered["score"],
                             taste_score=taste_scores[mixed.order], score=mixed.score,
                             query_share=mixed.query_share,
                             taste_share=1.0 - mixed.query_share,
                             in_history=ordered["item_id"].astype(str).isin(owned))
    ordered = ordered.head(k)
    ordered["rank"] = np.arange(1, len(ordered) + 1)
    return PersonalHits(dataset, None if user_id is None else str(user_id),
                        [str(i) for i in (history or [])], run.name, run.run_id, taste, pool,
                        {**hits.query}, hits.encoder,
                        hits.seconds + time.perf_counter() - t0, ordered, notes)


# -- a new shopper's first picks ------------------------------------------------------------------
@dataclass
class NewShopperPicks:
    """Picks for a shopper the model never saw, from a few liked products (or a photo).

    `liked`: the history's item rows (for a photo: its nearest catalog products, with their
    `similarity`); `items`: rank, item_id, score, resembles (ids of the liked products each
    pick is closest to), resemblance, cold (no training interaction) and the catalog columns.
    """

    dataset: str
    model: str
    run_id: int
    from_photo: bool
    liked: pd.DataFrame = field(repr=False)
    items: pd.DataFrame = field(repr=False)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        cols = ["rank", "item_id", "score", "resembles", "resemblance", "cold", "title"]
        return {"dataset": self.dataset, "model": self.model, "run_id": self.run_id,
                "from_photo": self.from_photo, "seconds": self.seconds, "notes": self.notes,
                "liked": self.liked[[c for c in ("item_id", "title", "similarity")
                                     if c in self.liked]].to_dict("records"),
                "items": self.items[[c for c in cols if c in self.items]].to_dict("records")}


def new_shopper_picks(store: Store, dataset: str | None = None, liked: Sequence[str] = (), *,
                      photo: ImageSource | None = None, weights: Sequence[float] | None = None,
                      model: str | int | None = None, k: int = 12,
                      photo_matches: int = PHOTO_MATCHES, train_if_missing: bool = True,
                      progress: ProgressCallback | None = None) -> NewShopperPicks:
    """Picks at once for a new shopper: the products they like (`liked` ids, with optional
    confidence `weights`: view 1, cart 3, purchase 5) or one `photo` (it stands for its
    `photo_matches` nearest catalog products), scored by the model's fold-in
    (`Recommender.score_history`, no retraining). Each pick names the liked products it
    resembles most (photo, text and co-purchase similarity; a second one when nearly as close).
    Raises `ColdStartError` without
    a liked product or photo, `RecsysError` for unknown products."""
    from recsys.explain.weights import modality_similarities
    from recsys.recommend.foldin import ColdStartError, fold_in_picks

    from .recommenders import run_data
    from .search import search_similar

    dataset = store.resolve_dataset(dataset)
    k = as_int(k, "k")
    if k < 1:
        raise ColdStartError("The number of picks must be at least 1.")
    notes: list[str] = []
    n_items = store.counts(dataset)["items"]
    k = clamp(k, "k", n_items, MAX_PICKS, "products", notes)
    photo_matches = clamp(photo_matches, "photo_matches", n_items, MAX_PHOTO_MATCHES,
                          "products", notes)
    liked = check_list(liked, "liked products", MAX_RESULTS)
    liked = [str(i) for i in liked]
    similarity = None
    if photo is not None:
        if liked:
            raise ColdStartError("Start from liked products or from a photo, not both.")
        hits = search_similar(store, dataset, photo=photo, k=max(1, photo_matches))
        liked = [str(i) for i in hits.results["item_id"]]
        similarity = dict(zip(liked, hits.results["score"].astype(float)))
    if not liked:
        raise ColdStartError("Pick at least one product the new shopper likes (or give a "
                             "photo).")
    run = resolve_run(store, dataset, model, train_if_missing=train_if_missing,
                      progress=progress)
    t0 = time.perf_counter()
    idx = _history_positions(run, liked)
    picks, scores = fold_in_picks(run.model, idx, weights, k)
    seconds = time.perf_counter() - t0
    data = run_data(store, dataset, run.config)
    sims = modality_similarities(data, picks, np.unique(idx))
    combined = sum(sims.values()) / len(sims) if len(picks) else np.zeros((0, 0))
    history_ids = [str(data.item_ids[i]) for i in np.unique(idx)]
    cold = data.cold_items()
    resembles, resemblance = [], []
    for row in combined:
        best = np.argsort(-row, kind="stable")[:2]
        keep = [j for n, j in enumerate(best) if n == 0 or row[j] >= CLOSE_SECOND * row[best[0]]]
        resembles.append([history_ids[j] for j in keep])
        resemblance.append(float(row[best[0]]) if len(best) else float("nan"))
    ids = [str(run.model.item_ids[i]) for i in picks]
    frame = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "item_id": ids,
                          "score": scores.astype(float), "resembles": resembles,
                          "resemblance": resemblance, "cold": cold[picks].astype(bool)})
    rows = store.items(dataset, ids + liked)
    items = frame.merge(rows, on="item_id", how="left")
    liked_rows = pd.DataFrame({"item_id": liked}).merge(rows, on="item_id", how="left")
    if similarity is not None:
        liked_rows["similarity"] = liked_rows["item_id"].map(similarity)
    return NewShopperPicks(dataset, run.name, run.run_id, photo is not None, liked_rows, items,
                           seconds, notes)


def starter_products(store: Store, dataset: str | None = None, n: int = 24,
                     column: str = "article_type", seed: int = 0) -> pd.DataFrame:
    """Products to offer a new shopper to pick from: the most interacted-with product of each
    of the `n` most common values of `column` (article type), so the grid spans the catalog;
    topped up with the most popular products when there are fewer values."""
    dataset = store.resolve_dataset(dataset)
    n = clamp(n, "n", MAX_RESULTS, MAX_RESULTS)
    seed = check_seed(seed)
    items = store.items(dataset)
    if items.empty:
        raise RecsysError(f"'{dataset}' has no products.")
    popularity = store.implicit_pairs(dataset)["item_id"].value_counts()
    items = items.assign(_pop=items["item_id"].map(popularity).fillna(0))
    items = items.sample(frac=1.0, random_state=seed).sort_values("_pop", ascending=False,
                                                                   kind="stable")
    if column in items and items[column].notna().any():
        common = items[column].value_counts().index[:n]
        picks = items[items[column].isin(common)].drop_duplicates(column)
    else:
        picks = items.head(0)
    rest = items[~items["item_id"].isin(picks["item_id"])]
    out = pd.concat([picks, rest]).head(n)
    return out.drop(columns="_pop").reset_index(drop=True)


# -- offline measurements -------------------------------------------------------------------------
def _training_order(store: Store, dataset: str, data) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's training items in time order (first met first) with their weights, as row
    and column positions of `data`."""
    from recsys.data.interactions import assign_split, implicit_pairs

    pairs = implicit_pairs(store, dataset)
    pairs = pairs.assign(code=assign_split(pairs, data.protocol, 0))
    pairs = pairs[pairs["code"] == 0].sort_values(["user_id", "ts", "item_id"], kind="stable")
    users = pd.Index(data.user_ids).get_indexer(pairs["user_id"])
    items = pd.Index(data.item_ids).get_indexer(pairs["item_id"])
    weights = pairs["weight"].to_numpy(dtype=np.float32)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    frame = pd.DataFrame({"u": users, "i": items, "w": weights})
    for u, group in frame.groupby("u", sort=False):
        out[int(u)] = (group["i"].to_numpy(np.int64), group["w"].to_numpy(np.float32))
    return out


DEFAULT_COLD_MODELS = ("popularity", "content", "ease", "late-fusion", "attention-fusion")


def evaluate_cold_start(store: Store, dataset: str | None = None,
                        models: Sequence[str] | None = None, lengths: Sequence[int] = (1, 3, 5),
                        users: int = 300, k: int = 20, seed: int = 0,
                        progress: ProgressCallback | None = None) -> pd.DataFrame:
    """New-shopper quality: `users` test users (with at least max(lengths) training items and
    a test item) are held out of training entirely; each model (default `DEFAULT_COLD_MODELS`,
    those the data can feed) is fitted on the rest with its default settings, then scores each
    held-out user's first n training items (in time, n in `lengths`) by fold-in. Returns model,
    history, metric (recall, ndcg, hit_rate), k, value, users. Nothing is stored (the fits are
    throw-away)."""
    from recsys.data.interactions import load_data
    from recsys.recommend.foldin import ColdStartError, holdout_users, without_users
    from recsys.recommend.foldin import evaluate_cold_start as run_eval
    from recsys.recommend.training import ModelNotTrained

    from ..models import get_spec

    dataset = store.resolve_dataset(dataset)
    lengths = sorted({as_int(n, "history length") for n in check_list(lengths, "lengths")})
    if not lengths or lengths[0] < 1:
        raise ColdStartError("History lengths must be at least 1.")
    seed = check_seed(seed)
    users = check_range(users, "users", 1, 10**9)
    data = load_data(store, dataset)
    notes: list[str] = []
    k = clamp(k, "k", MAX_METRIC_K, MAX_METRIC_K, notes=notes)
    names = list(models) if models else [m for m in DEFAULT_COLD_MODELS
                                         if get_spec(m).applies_to(data.signals)]
    for name in names:
        get_spec(name).check_signals(data.signals, dataset)
    held = holdout_users(data, users, max(lengths), seed)
    order = _training_order(store, dataset, data)
    histories = {int(u): order[int(u)] for u in held if int(u) in order}
    if not histories:
        raise ModelNotTrained("No held-out user has a training history.")
    fit_on = without_users(data, held)
    fitted = {}
    for n, name in enumerate(names):
        report(progress, n, len(names) + 1, f"fitting {name} without the held-out shoppers",
               stage="fit")
        fitted[name] = get_spec(name).create(seed=seed).fit(fit_on)
    frame = run_eval(fitted, data, histories, lengths, k,
                     scaled(progress, len(names) / (len(names) + 1), 1.0))
    frame.insert(0, "dataset", dataset)
    frame.attrs["notes"] = notes
    return frame


QUERY_SOURCES = ("type", "words")
"""How a held-out product becomes a query: its article type ("Tshirts"), or the words a
shopper would type for it: gender, colour and type ("Men Navy Blue Tshirts")."""


def _query_text(row: Mapping[str, Any], source: str) -> str | None:
    def text(col: str) -> str:
        v = row.get(col)
        return str(v).strip() if isinstance(v, str) and v.strip() else ""

    if source == "type":
        return text("article_type") or text("sub_category") or None
    words = [text("gender"), text("base_colour"), text("article_type") or text("sub_category")]
    words = [w for w in words if w]
    return " ".join(words) if words else None


def evaluate_personal_search(store: Store, dataset: str | None = None, *,
                             model: str | int | None = None,
                             tastes: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                             query_from: str = "type", k: int = 20, pool: int | None = None,
                             users: int | None = None, image_weight: float | None = None,
                             seed: int = 0, progress: ProgressCallback | None = None
                             ) -> dict[str, Any]:
    """Offline value of personalised search: each test user's held-out products are looked
    for with a query made from them (`query_from`: "type" or "words", see `QUERY_SOURCES`);
    the ranking is the query's pool reordered with the user's taste (the model's scores; their
    training items left out) at each weight in `tastes`. Returns NDCG@k per taste weight,
    "taste_only" (the model's list ignoring the query), "pool_recall" (share of targets the
    query's pool holds), and the sizes (cases, users, queries). `users` caps the test users (a
    seeded sample)."""
    from recsys.search.personal import BlendCase, default_pool, evaluate_blend

    from .recommenders import run_data
    from .search import SearchError, _searcher, default_image_weight

    dataset = store.resolve_dataset(dataset)
    if query_from not in QUERY_SOURCES:
        raise SearchError(f"Unknown query source {query_from!r}; use one of "
                          f"{', '.join(QUERY_SOURCES)}.")
    seed = check_seed(seed)
    tastes = check_list(tastes, "tastes")
    notes: list[str] = []
    n_items = len(store.item_ids(dataset))
    k = clamp(k, "k", MAX_METRIC_K, MAX_METRIC_K, notes=notes)
    pool = default_pool(n_items, k) if pool is None else \
        clamp(pool, "pool", n_items, MAX_RESULTS, "products", notes)
    if users is not None:
        users = check_range(users, "users", 1, 10**9)
    weight = default_image_weight(False) if image_weight is None else float(image_weight)
    run = resolve_run(store, dataset, model, progress=scaled(progress, 0.0, 0.4))
    data = run_data(store, dataset, run.config)
    test_users = np.flatnonzero(data.test.getnnz(axis=1) > 0)
    if users is not None and len(test_users) > users:
        test_users = np.sort(np.random.default_rng(seed).choice(test_users, users,
                                                                replace=False))
    items = store.items(dataset).set_index("item_id")
    index, enc = _searcher(store, dataset, None)
    model_pos = _positions(run.model.item_ids)
    to_model = np.array([model_pos.get(str(i), -1) for i in index.item_ids])
    queries: dict[str, int] = {}
    cases: list[BlendCase] = []
    for u in test_users:
        by_query: dict[str, list[int]] = {}
        for i in data.test[u].indices:
            item_id = str(data.item_ids[i])
            if item_id not in items.index:
                continue
            text = _query_text(items.loc[item_id].to_dict(), query_from)
            if text:
                by_query.setdefault(text, []).append(int(i))
        for text, relevant in by_query.items():
            q = queries.setdefault(text, len(queries))
            cases.append(BlendCase(int(u), q, np.array(relevant),
                                   data.train[u].indices.astype(np.int64)))
    report(progress, 0.45, 1.0, f"encoding {len(queries)} queries", stage="queries")
    query_matrix = np.full((len(queries), data.n_items), -np.inf)
    index_pos = {str(i): n for n, i in enumerate(index.item_ids)}
    for text, q in queries.items():
        result = index.search(text=enc.encode_text(text), k=len(index), image_weight=weight)
        cols = to_model[[index_pos[str(i)] for i in result.item_ids]]
        keep = cols >= 0
        query_matrix[q, cols[keep]] = result.scores[keep]
    report(progress, 0.6, 1.0, f"scoring {len(test_users)} shoppers", stage="taste")
    taste_rows = {}
    for start in range(0, len(test_users), 256):
        batch = test_users[start:start + 256]
        for u, row in zip(batch, run.model.score(batch)):
            taste_rows[int(u)] = row
    report(progress, 0.8, 1.0, f"ranking {len(cases)} searches", stage="rank")
    result = evaluate_blend(query_matrix, taste_rows, cases, tastes, k, pool)
    report(progress, 1.0, 1.0, "done", stage="rank")
    return {"dataset": dataset, "model": run.name, "run_id": run.run_id,
            "query_from": query_from, "k": k, "pool": pool, "image_weight": weight,
            "cases": len(cases), "users": int(len(test_users)), "queries": len(queries),
            "ndcg": result, "notes": notes}
