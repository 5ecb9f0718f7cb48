""""No close match" in a search: the catalog's calibrated decision, kept beside its index, and
the check of one photo query against it.

The decision itself is `recsys.encoders.match_decision` (a small logistic model over a query's
10 best photo scores, the types of those neighbours and the query's closeness to the catalog's
type centroids and, when the encoder has a text tower, its confidence in the photo's type among
the catalog's type names; calibrated per catalog from the catalog's own photo vectors, the
cut-off on the photos the encoder never trained on: in-catalog queries are catalog
photos without their own product, off-catalog ones catalog photos with their whole article type
removed). Here:

* `catalog_threshold(index, labels, folder, token)`: the `CatalogMatch` of the photo vectors an
  index holds, its model read from `<folder>/match-threshold.json` when it was calibrated on the
  same vectors (`token`, the vectors' version), else calibrated (a few seconds on 10,000 photos)
  and written there atomically. None when the catalog cannot be calibrated: fewer than
  `match_threshold.MIN_ITEMS` photos, fewer than two article types, or more than
  `MAX_CALIBRATED_ITEMS` photos (the calibration copies the photo vectors).
* `check_close_match(index, look, threshold, hits, method)`: whether a photo query's search
  vector has close matches; the scores are those of an unfiltered photo-only search (the
  search's own hits when it was one, else one more search of 10).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recsys.core.files import atomic_path
from recsys.encoders.type_names import LABEL_COLUMNS, product_kinds  # noqa: F401 (re-exported)
from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex

FILE = "match-threshold.json"
MAX_CALIBRATED_ITEMS = 200_000
"""Above this many photos no threshold is calibrated (the page never says "no close match")."""


@dataclass(frozen=True)
class CloseMatch:
    """A photo query against the catalog's decision: `close` False means nothing in the
    catalog matches closely (the page labels the results "similar styles"); `score` the
    decision's log-odds of "close" (`threshold` the catalog's cut-off on it), `best10` the mean
    of the query's 10 best photo scores."""

    close: bool
    score: float
    threshold: float
    best10: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"close": self.close, "score": self.score, "threshold": self.threshold,
                "best10": self.best10}


@dataclass
class CatalogMatch:
    """A catalog's calibrated decision (`match_decision.MatchModel`) with what a query's check
    needs about the catalog's photos: their types by index row and the type centroids."""

    model: Any
    labels: np.ndarray
    centroids: Any
    texts: Any = None                 # match_decision.TypeTexts when the model uses type names

    @property
    def threshold(self) -> float:
        return float(self.model.cutoff)

    @property
    def k(self) -> int:
        return int(self.model.k)

    def __getattr__(self, name: str):                  # in_fire_rate, off_fire_rate, n_items...
        if name in ("model", "labels", "centroids", "texts"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def to_dict(self) -> dict[str, Any]:
        return self.model.to_dict()


def catalog_threshold(index: ItemIndex, labels: Sequence[str] | None, folder: Path | None,
                      token: str, texts: Any = None,
                      validation: Sequence[bool] | None = None) -> CatalogMatch | None:
    """The `CatalogMatch` of the index's photo vectors (see the module docstring), or None.
    `texts`: the catalog's type names through the encoder's text tower
    (`match_decision.TypeTexts`), used by the decision when given; `validation`: a bool per
    index row, the photos the encoder never trained on (the cut-off is taken on them)."""
    from recsys.encoders.match_decision import MatchModel, TypeCentroids, calibrate_match_model
    from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM, MIN_ITEMS

    n = len(index)
    if labels is None or n < MIN_ITEMS or n > MAX_CALIBRATED_ITEMS or index.image is None:
        return None
    present = np.asarray(index.vectors.present_mask("image"), bool)
    rows = np.flatnonzero(present)
    kinds = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    kinds = np.where(present, kinds, "")                 # no photo: never a neighbour's type
    centroids = TypeCentroids.of(index.image[rows], kinds[rows])
    from recsys.encoders.match_decision import FEATURES

    wanted = FEATURES + (tuple(texts.feature_names) if texts is not None else ())
    if texts is not None:
        token = f"{token}:names" + (":open" if texts.open_names else "")
    token = f"{token}:fa{DEFAULT_FALSE_ALARM:g}"      # another rate: calibrated again
    path = None if folder is None else Path(folder) / FILE
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text())
            if isinstance(saved, dict) and saved.get("token") == token:
                model = MatchModel.from_dict(saved.get("threshold"))
                if model is not None and tuple(model.features) == wanted:
                    return CatalogMatch(model, kinds, centroids, texts)
                if saved.get("threshold") is None:
                    return None                          # calibrated: nothing to calibrate on
        except (OSError, ValueError, TypeError):
            pass                                         # unreadable: calibrate again
    val = None if validation is None else np.asarray(validation, bool)[rows]
    model = calibrate_match_model(index.image[rows], kinds[rows], texts=texts, validation=val)
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"token": token, "threshold":
                                           model.to_dict() if model else None}))
        except OSError:
            pass                                         # a read-only or full disk: in memory
    return None if model is None else CatalogMatch(model, kinds, centroids, texts)


def check_close_match(index: ItemIndex, look: np.ndarray, threshold: CatalogMatch | None,
                      hits: Hits | None = None, method: str = "auto") -> CloseMatch | None:
    """Whether the photo query `look` (its search vector) has close matches in the catalog.
    `hits`: the search's own hits when they came from an unfiltered photo-only search (their
    photo scores are reused), else one photo-only search of `threshold.k` is made. None
    without a threshold."""
    if threshold is None or look is None:
        return None
    k = threshold.k
    if hits is None or len(hits.item_ids) < min(k, len(index)):
        hits = index.search(image=look, k=min(k, len(index)), image_weight=1.0, method=method)
    from recsys.encoders.match_threshold import match_score

    scores = np.full(k, -np.inf)
    got = np.asarray(hits.image_scores, dtype=np.float64)[:k]
    scores[:len(got)] = got
    order = np.argsort(-scores, kind="stable")
    pos = [index.position(i) for i in list(hits.item_ids)[:k]]
    pos = np.asarray([-1 if p is None else p for p in pos] + [-1] * (k - len(pos)))[order]
    scores = scores[order]
    labels = np.where(pos >= 0, threshold.labels[np.maximum(pos, 0)], "")
    cent = threshold.centroids
    text = None
    if threshold.model.uses_text and threshold.texts is not None:
        texts = threshold.texts if threshold.model.uses_open else threshold.texts.without_open()
        text = texts.features(np.asarray(look)[None, :], labels[:1])
    close, z = threshold.model.decide(scores[None, :], labels[None, :],
                                      cent.sims(np.asarray(look)[None, :]), cent.spread, text)
    return CloseMatch(bool(close[0]), float(z[0]), threshold.threshold,
                      match_score(scores[np.isfinite(scores)], k))
