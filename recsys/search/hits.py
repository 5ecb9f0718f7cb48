"""The one result type of a search: `Hits`, the top-k items best first.

`VectorIndex.search` returns it with the scores the index computes; `ItemIndex.search` and
`ItemIndex.similar` return it on the façade's scale, with an "image" and a "text" part always
present; the use case `search_similar` wraps it (`SearchHits.hits`) with the hits' catalog rows,
the query and the timings, and `facets.with_items` joins it with catalog rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np


@dataclass
class Hits:
    """Top-k items of a search, best first.

    `slots` are the index's slots of the items (`VectorIndex.slot_ids[slots] == item_ids`),
    `scores` the fused scores (the weighted combination over the modalities an item has),
    `parts` each modality's cosine with the query (-inf where the item lacks that modality or
    it was not queried), and `method` says whether the exact or the approximate index answered.
    """

    slots: np.ndarray
    item_ids: list[str]
    scores: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    method: str = "exact"

    @classmethod
    def none(cls, modalities: Iterable[str], method: str = "exact") -> "Hits":
        """No hits (k of 0, an empty index, a filter that keeps nothing)."""
        return cls(np.zeros(0, np.int64), [], np.zeros(0, np.float32),
                   {m: np.zeros(0, np.float32) for m in modalities}, method)

    def __len__(self) -> int:
        return len(self.item_ids)

    def part(self, modality: str) -> np.ndarray:
        """The cosines of one modality (all -inf when the index has no such vectors)."""
        found = self.parts.get(modality)
        return np.full(len(self), -np.inf, np.float32) if found is None else found

    @property
    def image_scores(self) -> np.ndarray:
        """The query against each item's photo vector."""
        return self.part("image")

    @property
    def text_scores(self) -> np.ndarray:
        """The query against each item's text vector."""
        return self.part("text")

    def scaled(self, factor: float, modalities: Iterable[str] = ("image", "text")) -> "Hits":
        """The same hits with scores and parts multiplied by `factor` (float32), every one of
        `modalities` present among the parts."""
        factor = np.float32(factor)
        names = list(dict.fromkeys([*modalities, *self.parts]))
        return Hits(self.slots, self.item_ids, (self.scores * factor).astype(np.float32),
                    {m: (self.part(m) * factor).astype(np.float32) for m in names}, self.method)

    def to_records(self) -> list[dict]:
        """One plain record per hit: item_id, score, image_score, text_score (None where the
        item has no such vector)."""
        return [{"item_id": i, "score": float(s), "image_score": finite_or_none(a),
                 "text_score": finite_or_none(b)}
                for i, s, a, b in zip(self.item_ids, self.scores, self.image_scores,
                                      self.text_scores)]


def finite_or_none(value: float) -> float | None:
    """A score as a plain float, None when it is not finite (no such vector)."""
    return None if not np.isfinite(value) else float(value)
