"""The deterministic held-out rule: which items the encoder never sees in training.

An item's bucket is a hash of (seed, item_id) mapped to [0, 1): the same item lands in the same
split on every machine and in every run, whatever order or subset of the catalog is loaded, and
new items never move old ones between splits. Buckets below `fraction` are held out for
`eval-encoder`; the next `val_fraction` of the rest monitors training (validation loss/metric).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np


@dataclass(frozen=True)
class HoldoutRule:
    fraction: float = 0.2
    seed: int = 0
    val_fraction: float = 0.05   # share of the non-held-out items used for validation

    def bucket(self, item_id: str) -> float:
        digest = hashlib.sha1(f"{self.seed}:{item_id}".encode()).hexdigest()
        return int(digest[:13], 16) / float(16 ** 13)

    def split(self, item_id: str) -> str:
        """'heldout', 'val' or 'train'."""
        b = self.bucket(str(item_id))
        if b < self.fraction:
            return "heldout"
        if b < self.fraction + self.val_fraction * (1.0 - self.fraction):
            return "val"
        return "train"

    def splits(self, item_ids: Iterable[str]) -> np.ndarray:
        return np.array([self.split(i) for i in item_ids], dtype=object)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rule": "bucket = int(sha1(f'{seed}:{item_id}')[:13], 16) / "
                                         "16**13; heldout if bucket < fraction; val if bucket < "
                                         "fraction + val_fraction * (1 - fraction); else train"}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "HoldoutRule":
        data = data or {}
        return cls(fraction=float(data.get("fraction", 0.2)), seed=int(data.get("seed", 0)),
                   val_fraction=float(data.get("val_fraction", 0.05)))
