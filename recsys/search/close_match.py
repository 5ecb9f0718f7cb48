""""No close match" in a search: the catalog's calibrated threshold, kept beside its index, and
the check of one photo query against it.

The threshold itself is `recsys.encoders.match_threshold` (calibrated per catalog from the
catalog's own photo vectors: in-catalog queries are catalog photos without their own product,
off-catalog ones catalog photos with their whole article type removed; the statistic is the
mean of a query's 10 best photo scores). Here:

* `catalog_threshold(index, labels, folder, token)`: the threshold of the photo vectors an
  index holds, read from `<folder>/match-threshold.json` when it was calibrated on the same
  vectors (`token`, the vectors' version), else calibrated (about a second on 10,000 photos)
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
from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex

FILE = "match-threshold.json"
MAX_CALIBRATED_ITEMS = 200_000
"""Above this many photos no threshold is calibrated (the page never says "no close match")."""
LABEL_COLUMNS = ("article_type", "sub_category", "master_category")
"""The catalog column whose values stand for "a kind of product", first one with two values."""


@dataclass(frozen=True)
class CloseMatch:
    """A photo query against the catalog's threshold: `close` False means nothing in the
    catalog matches closely (the page labels the results "similar styles"); `score` the mean of
    the query's best photo scores, `threshold` the catalog's."""

    close: bool
    score: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"close": self.close, "score": self.score, "threshold": self.threshold}


def product_kinds(columns: "Any", item_ids: Sequence[str]) -> list[str] | None:
    """Article types (or the first of `LABEL_COLUMNS` with two values or more) aligned with
    `item_ids`, from a narrow catalog read (item_id plus those columns); None without any."""
    frame = columns.set_index(columns["item_id"].astype(str))
    for column in LABEL_COLUMNS:
        if column not in frame:
            continue
        values = frame[column].reindex([str(i) for i in item_ids])
        values = values.where(values.notna(), "").astype(str).str.strip()
        if values[values != ""].nunique() >= 2:
            return list(values)
    return None


def catalog_threshold(index: ItemIndex, labels: Sequence[str] | None, folder: Path | None,
                      token: str):
    """The `MatchThreshold` of the index's photo vectors (see the module docstring), or None."""
    from recsys.encoders.match_threshold import MIN_ITEMS, MatchThreshold, \
        calibrate_match_threshold

    n = len(index)
    if labels is None or n < MIN_ITEMS or n > MAX_CALIBRATED_ITEMS or index.image is None:
        return None
    path = None if folder is None else Path(folder) / FILE
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text())
            if isinstance(saved, dict) and saved.get("token") == token:
                return MatchThreshold.from_dict(saved.get("threshold"))
        except (OSError, ValueError, TypeError):
            pass                                   # unreadable: calibrate again
    present = np.asarray(index.vectors.present_mask("image"), bool)
    rows = np.flatnonzero(present)
    found = calibrate_match_threshold(index.image[rows], [labels[i] for i in rows])
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"token": token, "threshold":
                                           found.to_dict() if found else None}))
        except OSError:
            pass                                   # a read-only or full disk: kept in memory
    return found


def check_close_match(index: ItemIndex, look: np.ndarray, threshold, hits: Hits | None = None,
                      method: str = "auto") -> CloseMatch | None:
    """Whether the photo query `look` (its search vector) has close matches in the catalog.
    `hits`: the search's own hits when they came from an unfiltered photo-only search (their
    photo scores are reused), else one photo-only search of `threshold.k` is made. None
    without a threshold."""
    if threshold is None or look is None:
        return None
    k = int(getattr(threshold, "k", 10))
    if hits is None or len(hits.item_ids) < min(k, len(index)):
        hits = index.search(image=look, k=min(k, len(index)), image_weight=1.0, method=method)
    scores = np.asarray(hits.image_scores, dtype=np.float64)
    from recsys.encoders.match_threshold import match_score

    score = match_score(scores[:k], k)
    return CloseMatch(bool(threshold.is_close_match(scores[:k])), score,
                      float(threshold.threshold))
