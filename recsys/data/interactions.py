"""A dataset's implicit feedback as matrices, and the train / validation / test splits.

Implicit feedback: the interactions table holds repeated events (view, cart, purchase of the same
item). They are collapsed to one positive per (user, item) whose confidence weight is the largest
event weight (view 1 < cart 3 < purchase 5) and whose time is the first time the user met the
item. Splits are made on these pairs, so one item is never both in a user's training history and
in their test set.

Protocols (`PROTOCOLS`, the one list the CLI choices and the Train / Evaluate pages offer):
* ``auto``     - ``stored`` when the data came with a split, else ``random``;
* ``stored``   - the split imported with the data (Amazon sets), used as is;
* ``random``   - MMRec's per-user random 8:1:1 split, deterministic by seed;
* ``temporal`` - leave-last-out: each user's newest item is test, the one before is validation;
* ``new-items`` - new arrivals: a seeded share of the items met in the interactions
  (`NEW_ITEMS_SHARE`, 20%) is held out with *all* their interactions (the test split); the
  other pairs are split per user 9:1 into train and validation. `InteractionData.candidates`
  marks the held-out items: the evaluation ranks them only, so a model must score items it
  never saw in training (content and fusion models; collaborative-only ones cannot).

The validation split is only used for early stopping and for learning late-fusion weights, the
test split for the reported numbers. Models (`recsys.models`) and the evaluation of a fitted
model (`recsys.evaluation.ranking`) read an `InteractionData`; nothing here knows about models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.errors import RecsysError
from recsys.store import Store

PROTOCOLS = ("auto", "stored", "random", "temporal", "new-items")
PROTOCOL_HELP = ("split: auto = the split imported with the data, else per-user random 8:1:1; "
                 "stored = the imported split; random = 8:1:1 per user; temporal = "
                 "leave-last-out; new-items = a fifth of the items held out with all their "
                 "interactions, each shopper's new items ranked among them only")
NEW_ITEMS_NOTE = ("New arrivals: 20% of the items are held out with all their interactions and "
                  "each shopper's held-out items are ranked among the new items only. Models "
                  "that read photos or texts (content, fusion) can rank them; behaviour-only "
                  "models cannot and are listed as not applicable. Random order, category "
                  "bestsellers and the shopper's category profile are measured as baselines.")
NEW_ITEMS = "new-items"
NEW_ITEMS_SHARE = 0.2
"""Share of the interacted items the new-items protocol holds out as new arrivals."""


class EvaluationError(RecsysError):
    """The data cannot be split or evaluated as asked."""


class UnknownUser(RecsysError):
    """A user id the data (or the trained model) does not know."""


@dataclass
class Ratings:
    """Explicit ratings (e.g. 1-5 stars) of user-item pairs, one entry per rated pair, with the
    split code of the pair (0 train, 1 valid, 2 test; `InteractionData` sets it from its own
    matrices, so a re-split copy, e.g. a cross-validation fold, splits its ratings alike)."""

    users: np.ndarray          # row indices of InteractionData
    items: np.ndarray          # column indices
    values: np.ndarray         # float32 ratings
    split: np.ndarray | None = None     # int8 split codes (-1: the pair is in no split)

    def part(self, code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, items, ratings) of one split."""
        sel = self.split == code
        return self.users[sel], self.items[sel], self.values[sel]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(init=False, repr=False, eq=False)
class InteractionData:
    """Implicit feedback of one dataset split into train / valid / test, plus item vectors.

    `train` holds confidence weights (largest event weight per user-item pair); `valid` and
    `test` are binary. Rows follow `user_ids`, columns `item_ids` (every catalog item).
    `vectors` maps each modality the dataset has (image, text, video, imported ones...) to
    L2-normalised item vectors (zero rows for items without one, False in `present`);
    `sources` says where each came from ("encoder@version"). `image` / `text` stay as
    read-only views of the two built-in modalities. `ratings` holds explicit ratings when
    the interactions carry them (else None). `candidates` (boolean over items, or None for
    all items) restricts what the evaluation ranks: the held-out new items of the new-items
    protocol.
    """

    dataset: str
    protocol: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    encoder: str | None
    vectors: dict
    present: dict
    sources: dict
    ratings: Ratings | None
    candidates: np.ndarray | None

    def __init__(self, dataset: str, protocol: str, user_ids: np.ndarray, item_ids: np.ndarray,
                 train: sp.csr_matrix, valid: sp.csr_matrix, test: sp.csr_matrix,
                 image: np.ndarray | None = None, text: np.ndarray | None = None,
                 encoder: str | None = None, *, vectors: dict[str, np.ndarray] | None = None,
                 present: dict[str, np.ndarray] | None = None,
                 sources: dict[str, str] | None = None, ratings: Ratings | None = None,
                 candidates: np.ndarray | None = None):
        self.dataset, self.protocol = dataset, protocol
        self.candidates = None if candidates is None else np.asarray(candidates, dtype=bool)
        self.user_ids, self.item_ids = user_ids, item_ids
        self.train, self.valid, self.test = train, valid, test
        self.encoder = encoder
        mats = dict(vectors or {})
        for name, mat in (("image", image), ("text", text)):
            if mat is not None:
                mats.setdefault(name, mat)
        from recsys.vectors.modalities import modality_order
        self.vectors: dict[str, np.ndarray] = {m: mats[m] for m in modality_order(mats)}
        self.present: dict[str, np.ndarray] = {
            m: (present or {}).get(m, np.abs(v).sum(axis=1) > 0) for m, v in self.vectors.items()}
        self.sources: dict[str, str] = dict(sources or {})
        self.ratings = None if ratings is None else self._split_ratings(ratings)
        self._user_pos = {str(u): i for i, u in enumerate(self.user_ids)}

    def _split_ratings(self, ratings: Ratings) -> Ratings:
        """The ratings with their split read off this data's train / valid / test matrices."""
        codes = np.full(len(ratings.values), -1, dtype=np.int8)
        if len(codes):
            for code, matrix in enumerate((self.train, self.valid, self.test)):
                hit = np.asarray(matrix[ratings.users, ratings.items]).ravel() != 0
                codes[hit & (codes < 0)] = code
        return Ratings(ratings.users, ratings.items, ratings.values, codes)

    def __repr__(self) -> str:
        return (f"InteractionData({self.dataset!r}, {self.protocol!r}, users={self.n_users}, "
                f"items={self.n_items}, modalities={list(self.vectors)})")

    @property
    def image(self) -> np.ndarray | None:
        return self.vectors.get("image")

    @property
    def text(self) -> np.ndarray | None:
        return self.vectors.get("text")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The vector modalities of the data, in display order (image, text, video, others)."""
        return tuple(self.vectors)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def signals(self) -> frozenset[str]:
        """Which signals the data offers: cf always, each vector modality it has, "vectors"
        when it has any, "ratings" when interactions carry explicit ratings."""
        from recsys.vectors.modalities import ANY_VECTORS

        out = {"cf", *self.vectors}
        if self.vectors:
            out.add(ANY_VECTORS)
        if self.ratings is not None and len(self.ratings):
            out.add("ratings")
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
        mat = self.vectors.get(modality)
        if mat is None:
            raise EvaluationError(missing_vectors_message(self.dataset, modality,
                                                          self.modalities))
        return mat


def missing_vectors_message(dataset: str, modality: str, has: Sequence[str] = ()) -> str:
    """What to do when a dataset lacks the vectors of a modality a model needs."""
    from recsys.vectors.modalities import ANY_VECTORS

    what = "item vectors" if modality == ANY_VECTORS else f"{modality} vectors"
    if modality in (ANY_VECTORS, "image", "text"):
        how = (f"Compute them with `python -m recsys embed --dataset {dataset}` (photos and "
               "texts; a catalog without photos gets text vectors)")
    elif modality == "video":
        how = (f"Compute them with `python -m recsys embed --dataset {dataset} --videos FOLDER` "
               "(or a `video` column in the catalog)")
    else:
        how = (f"Bring them with `python -m recsys import-features --dataset {dataset} "
               f"--modality {modality} FILE`")
    have = f" It has: {', '.join(has)}." if has else ""
    return (f"Dataset '{dataset}' has no {what}.{have} {how}, or pick a model that needs none "
            "(see `python -m recsys models`).")


def unknown_user_message(user_id: str, user_ids: Sequence, dataset: str) -> str:
    examples = ", ".join(str(u) for u in list(user_ids[:3]))
    return (f"Unknown user {user_id!r} in dataset '{dataset}'. Known users look like "
            f"{examples} ({len(user_ids):,} in all); see `python -m recsys status`, or retrain "
            "the model if the user was added after training.")


# -- pairs and splits ------------------------------------------------------------------------------
def implicit_pairs(store: Store, dataset: str) -> pd.DataFrame:
    """One row per (user, item): weight = largest event weight, ts = first event, split code
    (0 train, 1 valid, 2 test, NaN when the data came without a split), sorted by user."""
    return store.implicit_pairs(dataset)


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
    if protocol == NEW_ITEMS:
        return _new_items_codes(pairs, seed)
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


def new_item_ids(pairs: pd.DataFrame, seed: int = 0,
                 share: float = NEW_ITEMS_SHARE) -> np.ndarray:
    """The items the new-items protocol holds out: a seeded `share` of the distinct items of
    the pairs (at least one, and never all of them), sorted."""
    items = np.array(sorted(pd.unique(pairs["item_id"])), dtype=object)
    if len(items) < 2:
        raise EvaluationError("The new-items protocol needs interactions with at least two "
                              "items; use --protocol random.")
    n_new = int(min(len(items) - 1, max(1, round(share * len(items)))))
    return np.sort(np.random.default_rng(seed).choice(items, n_new, replace=False))


def _new_items_codes(pairs: pd.DataFrame, seed: int) -> np.ndarray:
    """Split codes of the new-items protocol: every pair of a held-out item is test (2); the
    others are split per user like the random protocol, minus its test part (about 9:1 train /
    validation for users with three or more pairs)."""
    held = pairs["item_id"].isin(set(new_item_ids(pairs, seed))).to_numpy()
    codes = np.full(len(pairs), 2, dtype=np.int8)
    rest = pairs[~held]
    if len(rest):
        users = rest["user_id"].to_numpy()
        key = np.random.default_rng(seed + 1).random(len(rest))
        order = np.lexsort((key, users))
        sorted_users = users[order]
        starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
        counts = np.diff(np.r_[starts, len(order)])
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        n = np.repeat(counts, counts)
        n_valid = np.where(n >= 3, np.maximum(1, np.rint(0.1 * n)), 0)
        rest_codes = np.empty(len(order), dtype=np.int8)
        rest_codes[order] = np.where(rank < n_valid, 1, 0)
        codes[~held] = rest_codes
    return codes


def load_data(store: Store, dataset: str, protocol: str = "auto", seed: int = 0,
              encoder: str | None = None, sources: dict[str, str] | None = None
              ) -> InteractionData:
    """Read a dataset's implicit feedback, split it and attach its item vectors and ratings.

    Every vector modality the dataset has is attached (`recsys.vectors.modalities`). `encoder` pins the
    encoder-made ones (image, text, video): "name@version" (exactly those, e.g. the encoder a
    run was trained with), "name" (its newest version), or None (the newest vectors of each
    modality). `sources` ({modality: "encoder@version"}, recorded with a run) pins each
    modality to one set.
    """
    from recsys.vectors.modalities import load_modality_matrices

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

    mats = load_modality_matrices(store, dataset, list(item_ids), sources=sources,
                                  encoder=encoder)
    candidates = None
    if protocol == NEW_ITEMS:
        candidates = np.zeros(len(item_ids), dtype=bool)
        candidates[pd.Index(item_ids).get_indexer(new_item_ids(pairs, seed))] = True
    return InteractionData(dataset, protocol, user_ids, item_ids, matrix(0, weights), matrix(1),
                           matrix(2), encoder=mats.encoder_spec(), vectors=mats.vectors,
                           present=mats.present, sources=mats.source_specs(),
                           ratings=_ratings(store, dataset, pairs, rows, cols),
                           candidates=candidates)


def _ratings(store: Store, dataset: str, pairs: pd.DataFrame, rows: np.ndarray,
             cols: np.ndarray) -> Ratings | None:
    """The explicit ratings of the dataset's pairs (split like the pairs), or None."""
    if not store.rating_count(dataset):
        return None
    rated = store.rated_pairs(dataset)
    key = pd.MultiIndex.from_arrays([pairs["user_id"], pairs["item_id"]])
    at = key.get_indexer(pd.MultiIndex.from_arrays([rated["user_id"], rated["item_id"]]))
    ok = at >= 0
    at = at[ok]
    values = rated["rating"].to_numpy(dtype=np.float32)[ok]
    finite = np.isfinite(values)
    at, values = at[finite], values[finite]
    return Ratings(rows[at].astype(np.int64), cols[at].astype(np.int64), values)
