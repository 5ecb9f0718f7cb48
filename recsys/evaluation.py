"""Splits, ranking metrics at K, slices and the model comparison behind `python -m recsys evaluate`.

Implicit feedback: the interactions table holds repeated events (view, cart, purchase of the same
item). They are collapsed to one positive per (user, item) whose confidence weight is the largest
event weight (view 1 < cart 3 < purchase 5) and whose time is the first time the user met the
item. Splits are made on these pairs, so one item is never both in a user's training history and
in their test set.

Protocols:
* ``stored``   - the split imported with the data (Amazon sets), used as is;
* ``random``   - MMRec's per-user random 8:1:1 split, deterministic by seed;
* ``temporal`` - leave-last-out: each user's newest item is test, the one before is validation;
* ``auto``     - ``stored`` when the data came with a split, else ``random``.

Ranking is always over all items with the user's training items excluded; the validation split
is only used for early stopping and for learning late-fusion weights, the test split for the
reported numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import RecsysError
from .progress import ProgressCallback, report, scaled
from .store import Store

if TYPE_CHECKING:
    from .models.base import Recommender

PROTOCOLS = ("auto", "stored", "random", "temporal")
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
DEFAULT_KS = (5, 10, 20)
SHORT_HISTORY = 5          # users with at most this many training items form the short slice
SCORE_BATCH = 512          # users scored at once (rows of n_items float32)


class EvaluationError(RecsysError):
    """The data cannot be split or evaluated as asked."""


class UnknownUser(RecsysError):
    """A user id the data (or the trained model) does not know."""


@dataclass
class InteractionData:
    """Implicit feedback of one dataset split into train / valid / test, plus item vectors.

    `train` holds confidence weights (largest event weight per user-item pair); `valid` and
    `test` are binary. Rows follow `user_ids`, columns `item_ids` (every catalog item).
    `image` / `text` are L2-normalised item vectors (zero rows for items without one) or None.
    """

    dataset: str
    protocol: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    image: np.ndarray | None = None
    text: np.ndarray | None = None
    encoder: str | None = None
    _user_pos: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._user_pos = {str(u): i for i, u in enumerate(self.user_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def signals(self) -> frozenset[str]:
        """Which signals the data offers: cf always, image/text when vectors exist."""
        out = {"cf"}
        if self.image is not None:
            out.add("image")
        if self.text is not None:
            out.add("text")
        return frozenset(out)

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_pos[str(user_id)]
        except KeyError:
            raise UnknownUser(unknown_user_message(user_id, self.user_ids, self.dataset)) from None

    def item_popularity(self) -> np.ndarray:
        """Number of training users per item."""
        return np.asarray((self.train > 0).sum(axis=0)).ravel().astype(np.float64)

    def cold_items(self) -> np.ndarray:
        """Boolean mask of items without any training interaction (only content reaches them)."""
        return self.item_popularity() == 0

    def content(self, modality: str) -> np.ndarray:
        """The item matrix of a modality; a clear error when the dataset has no such vectors."""
        mat = getattr(self, modality)
        if mat is None:
            raise EvaluationError(
                f"Dataset '{self.dataset}' has no {modality} vectors. Compute them with "
                f"`python -m recsys embed --dataset {self.dataset}`, or pick a collaborative "
                "model (see `python -m recsys models`).")
        return mat


def unknown_user_message(user_id: str, user_ids: Sequence, dataset: str) -> str:
    examples = ", ".join(str(u) for u in list(user_ids[:3]))
    return (f"Unknown user {user_id!r} in dataset '{dataset}'. Known users look like "
            f"{examples} ({len(user_ids):,} in all); see `python -m recsys status`, or retrain "
            "the model if the user was added after training.")


# -- splits -------------------------------------------------------------------------------------
def implicit_pairs(store: Store, dataset: str) -> pd.DataFrame:
    """One row per (user, item): weight = largest event weight, ts = first event, split code."""
    return store.query("""
        SELECT user_id, item_id, max(weight) AS weight, min(ts) AS ts,
               min(CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 WHEN 'test' THEN 2 END)
                 AS split_code
        FROM interactions WHERE dataset = ? GROUP BY user_id, item_id
        ORDER BY user_id, item_id""", [dataset])


def resolve_protocol(pairs: pd.DataFrame, protocol: str) -> str:
    """`auto` becomes `stored` when the data carries a split, else `random`."""
    if protocol not in PROTOCOLS:
        raise EvaluationError(f"Unknown split protocol {protocol!r}; use one of "
                              f"{', '.join(PROTOCOLS)}.")
    has_split = pairs["split_code"].notna().any()
    if protocol == "auto":
        return "stored" if has_split else "random"
    if protocol == "stored" and not has_split:
        raise EvaluationError("This dataset was imported without a train/valid/test split; use "
                              "--protocol random or temporal.")
    return protocol


def assign_split(pairs: pd.DataFrame, protocol: str, seed: int = 0) -> np.ndarray:
    """Split code (0 train, 1 valid, 2 test) per pair under a protocol (pairs sorted by user)."""
    if protocol == "stored":
        return pairs["split_code"].fillna(0).to_numpy(dtype=np.int8)
    users = pairs["user_id"].to_numpy()
    if protocol == "random":
        key = np.random.default_rng(seed).random(len(pairs))
    elif protocol == "temporal":
        if pairs["ts"].isna().all():
            raise EvaluationError("The temporal split needs timestamps and this dataset has none; "
                                  "use --protocol random (or stored).")
        # newest first; NaT converts to the smallest int64 and so counts as the oldest
        key = -pairs["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    else:
        raise EvaluationError(f"Cannot assign a split for protocol {protocol!r}.")
    order = np.lexsort((key, users))          # within each user: random / newest first
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    if protocol == "random":
        n_hold = np.where(n >= 3, np.maximum(1, np.rint(0.1 * n)), 0)
    else:
        n_hold = np.where(n >= 3, 1, 0)
    code_sorted = np.where(rank < n_hold, 2, np.where(rank < 2 * n_hold, 1, 0)).astype(np.int8)
    codes = np.empty(len(order), dtype=np.int8)
    codes[order] = code_sorted
    return codes


def load_data(store: Store, dataset: str, protocol: str = "auto", seed: int = 0,
              encoder: str | None = None) -> InteractionData:
    """Read a dataset's implicit feedback, split it and attach its item vectors."""
    from .index import load_item_vectors

    pairs = implicit_pairs(store, dataset)
    if pairs.empty:
        raise EvaluationError(f"Dataset '{dataset}' has no interactions to train on. Simulate "
                              f"users with `python -m recsys simulate --dataset {dataset}` or "
                              "import interactions.")
    protocol = resolve_protocol(pairs, protocol)
    codes = assign_split(pairs, protocol, seed)
    catalog = store.item_ids(dataset)
    extra_items = sorted(set(pairs["item_id"]) - set(catalog))
    item_ids = np.array(sorted(set(catalog) | set(extra_items)), dtype=object)
    user_ids = np.array(sorted(set(store.users(dataset)["user_id"]) | set(pairs["user_id"])),
                        dtype=object)
    rows = pd.Index(user_ids).get_indexer(pairs["user_id"])
    cols = pd.Index(item_ids).get_indexer(pairs["item_id"])
    weights = pairs["weight"].to_numpy(dtype=np.float32)
    shape = (len(user_ids), len(item_ids))

    def matrix(code: int, values: np.ndarray | None = None) -> sp.csr_matrix:
        sel = codes == code
        vals = np.ones(sel.sum(), dtype=np.float32) if values is None else values[sel]
        return sp.csr_matrix((vals, (rows[sel], cols[sel])), shape=shape, dtype=np.float32)

    vectors = load_item_vectors(store, dataset, encoder=encoder, item_ids=list(item_ids))
    enc = None if vectors.encoder is None else f"{vectors.encoder}@{vectors.version}"
    return InteractionData(dataset, protocol, user_ids, item_ids, matrix(0, weights), matrix(1),
                           matrix(2), vectors.image, vectors.text, enc)


# -- metrics ------------------------------------------------------------------------------------
def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores per row, best first (argpartition, then a small sort)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Set the scores of already-seen items to -inf in place (rows aligned with `seen`)."""
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    return scores


def ranking_metrics(top: np.ndarray, truth: sp.csr_matrix, ks: Iterable[int]
                    ) -> dict[tuple[str, int], np.ndarray]:
    """Per-user precision, recall, F1, NDCG, hit rate, MAP and MRR at each K.

    `top` holds each user's ranked item indices (at least max(ks) columns); `truth` the relevant
    items (rows aligned). Users without relevant items must be filtered out before.
    """
    hits = np.take_along_axis(truth.toarray() > 0, top, axis=1)
    n_rel = np.asarray(truth.getnnz(axis=1), dtype=np.float64)
    out: dict[tuple[str, int], np.ndarray] = {}
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    for k in ks:
        h = hits[:, :k]
        n_hit = h.sum(axis=1)
        precision = n_hit / k
        recall = n_hit / n_rel
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        dcg = (h * discount[:k]).sum(axis=1)
        ideal = np.cumsum(discount[:k])[np.minimum(n_rel, k).astype(int) - 1]
        cum_hits = np.cumsum(h, axis=1)
        ap = (h * cum_hits / np.arange(1, k + 1)).sum(axis=1) / np.minimum(n_rel, k)
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
        out.update({("precision", k): precision, ("recall", k): recall, ("f1", k): f1,
                    ("ndcg", k): dcg / ideal, ("hit_rate", k): (n_hit > 0).astype(float),
                    ("map", k): ap, ("mrr", k): 1.0 / first})
    return out


def pairwise_auc(scores: np.ndarray, truth: sp.csr_matrix, rng: np.random.Generator
                 ) -> np.ndarray:
    """Per held-out positive: 1 if it outranks one random non-positive item, 0.5 on ties."""
    coo = truth.tocoo()
    neg = rng.integers(0, scores.shape[1], len(coo.row))
    is_pos = truth.toarray()[coo.row, neg] > 0
    s_pos = scores[coo.row, coo.col]
    s_neg = scores[coo.row, neg]
    keep = ~is_pos & np.isfinite(s_neg)
    return np.where(s_pos > s_neg, 1.0, np.where(s_pos == s_neg, 0.5, 0.0))[keep]


def intra_list_diversity(top: np.ndarray, vectors: np.ndarray | None) -> np.ndarray | None:
    """Mean pairwise cosine distance of each list's items (None without item vectors)."""
    if vectors is None or top.shape[1] < 2:
        return None
    v = vectors[top]                                        # users x k x d
    sims = np.einsum("ukd,ujd->ukj", v, v)
    k = top.shape[1]
    mean_sim = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return 1.0 - mean_sim


def content_matrix(data: InteractionData) -> np.ndarray | None:
    """Image and text vectors side by side, re-normalised: the space diversity is measured in."""
    parts = [m for m in (data.image, data.text) if m is not None]
    if not parts:
        return None
    mat = np.hstack(parts)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return (mat / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass
class SliceSpec:
    """Which users / relevant items a slice keeps."""

    name: str
    users: np.ndarray          # boolean over users
    items: np.ndarray | None   # boolean over items (None: all relevant items count)


def slices(data: InteractionData, short_history: int = SHORT_HISTORY) -> list[SliceSpec]:
    """All users; cold-start items only (no training interactions); users with short histories."""
    n_train = np.asarray((data.train > 0).sum(axis=1)).ravel()
    return [SliceSpec("all", np.ones(data.n_users, dtype=bool), None),
            SliceSpec("cold_items", np.ones(data.n_users, dtype=bool), data.cold_items()),
            SliceSpec("short_history", n_train <= short_history, None)]


def evaluate_model(model: "Recommender", data: InteractionData, ks: Sequence[int] = DEFAULT_KS,
                   split: str = "test", seed: int = 0, max_users: int | None = None,
                   progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Full-ranking metrics of a fitted model on a split, per slice.

    Returns rows (slice, metric, k, value, users). Beyond the ranking metrics at K: `auc`
    (share of held-out positives ranked above a sampled negative), `coverage` (share of the
    catalog in anyone's top-K), `diversity` (intra-list cosine distance in the image/text space)
    and `novelty` (mean self-information -log2 of the training popularity of recommended items).
    """
    truth_all = getattr(data, split).tocsr()
    rng = np.random.default_rng(seed)
    users = np.flatnonzero(truth_all.getnnz(axis=1) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    if len(users) == 0:
        raise EvaluationError(f"No user has {split} interactions to evaluate on.")
    kmax = max(ks)
    specs = slices(data)
    cold = data.cold_items()
    vectors = content_matrix(data)
    popularity = data.item_popularity()
    self_info = -np.log2((popularity + 1.0) / (data.n_users + 1.0))
    acc: dict[str, dict] = {s.name: {"metrics": {}, "auc": [], "users": 0} for s in specs}
    tops: list[np.ndarray] = []
    for start in range(0, len(users), SCORE_BATCH):
        batch = users[start:start + SCORE_BATCH]
        scores = mask_seen(model.score(batch).astype(np.float32, copy=True), data.train[batch])
        top = top_k(scores, kmax)
        tops.append(top)
        for spec in specs:
            truth = truth_all[batch]
            if spec.items is not None:
                truth = truth.multiply(spec.items[None, :]).tocsr()
                truth.eliminate_zeros()
            keep = spec.users[batch] & (truth.getnnz(axis=1) > 0)
            if not keep.any():
                continue
            entry = acc[spec.name]
            entry["users"] += int(keep.sum())
            for key, vals in ranking_metrics(top[keep], truth[keep], ks).items():
                entry["metrics"].setdefault(key, []).append(vals)
            entry["auc"].append(pairwise_auc(scores[keep], truth[keep], rng))
        report(progress, start + len(batch), len(users), f"scored {start + len(batch):,} users",
               stage="evaluate")
    top = np.vstack(tops)
    rows = []
    for spec in specs:
        entry = acc[spec.name]
        if not entry["users"]:
            continue
        for (metric, k), parts in entry["metrics"].items():
            rows.append((spec.name, metric, k, float(np.concatenate(parts).mean()),
                         entry["users"]))
        aucs = np.concatenate(entry["auc"])
        rows.append((spec.name, "auc", None, float(aucs.mean()) if len(aucs) else np.nan,
                     entry["users"]))
        sel = spec.users[users]
        for k in ks:
            lists = top[sel, :k]
            if spec.name == "cold_items":
                rows.append((spec.name, "cold_share", k, float(cold[lists].mean()),
                             int(sel.sum())))
                continue
            rows.append((spec.name, "coverage", k,
                         float(len(np.unique(lists)) / data.n_items), int(sel.sum())))
            rows.append((spec.name, "novelty", k, float(self_info[lists].mean()), int(sel.sum())))
            div = intra_list_diversity(lists, vectors)
            if div is not None:
                rows.append((spec.name, "diversity", k, float(div.mean()), int(sel.sum())))
    return pd.DataFrame(rows, columns=["slice", "metric", "k", "value", "users"])


def validation_ndcg(model: "Recommender", data: InteractionData, users: np.ndarray,
                    k: int = 20) -> tuple[float, np.ndarray]:
    """NDCG@k on the validation split for `users`, and their masked score rows (for losses)."""
    scores = mask_seen(model.score(users).astype(np.float32, copy=True), data.train[users])
    metrics = ranking_metrics(top_k(scores, k), data.valid[users], [k])
    return float(metrics[("ndcg", k)].mean()), scores


# -- comparing models ---------------------------------------------------------------------------
def evaluate_models(store: Store, dataset: str, models: Sequence[str] | None = None,
                    ks: Sequence[int] = DEFAULT_KS, protocol: str = "auto", seed: int = 0,
                    retrain: bool = False, progress: ProgressCallback | None = None
                    ) -> pd.DataFrame:
    """Train (when no finished run exists) and evaluate models on the test split.

    Without `models`, every registered model whose signals the dataset offers. Each model's
    metrics are stored with `store.add_metrics` under its training run and returned as a frame
    (model, run_id, protocol, slice, metric, k, value, users).
    """
    from .models import applicable_models, get_spec
    from .training import ModelNotTrained, load_model, train_model

    data = load_data(store, dataset, protocol, seed)
    names = list(models) if models else applicable_models(data.signals)
    for name in names:
        get_spec(name).check_signals(data.signals, dataset)
    frames = []
    for n, name in enumerate(names):
        sub = scaled(progress, n / len(names), (n + 1) / len(names))
        trained = None
        if not retrain:
            try:
                trained = load_model(store, dataset, name, protocol=data.protocol,
                                     split_seed=seed)
            except ModelNotTrained:
                trained = None
        if trained is None:
            trained = train_model(store, dataset, name, {}, progress=scaled(sub, 0.0, 0.8),
                                  protocol=data.protocol, split_seed=seed, data=data)
        frame = evaluate_model(trained.model, data, ks, seed=seed,
                               progress=scaled(sub, 0.8, 1.0))
        store.add_metrics(trained.run_id, [(data.protocol, r.slice, r.metric,
                                            None if pd.isna(r.k) else int(r.k), r.value)
                                           for r in frame.itertuples()])
        frame.insert(0, "protocol", data.protocol)
        frame.insert(0, "run_id", trained.run_id)
        frame.insert(0, "model", name)
        frames.append(frame)
        report(progress, n + 1, len(names), f"evaluated {name}", stage="evaluate")
    return pd.concat(frames, ignore_index=True)
