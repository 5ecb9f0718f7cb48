"""The slot table of a vector index: which item sits in which slot (a row of the faiss
indexes), its content signature and which modalities it has; a removed item frees its slot.

The faiss indexes identify rows by slot, so an item can be removed or replaced without
renumbering the others; `VectorIndex` extends this table with the vectors themselves.
"""

from __future__ import annotations

import gc
from typing import Iterable, Sequence

import numpy as np
import pandas as pd


class SlotTable:
    """Slots of an index: `slot_ids` (item id, None when freed), `signatures` (what the item's
    vectors were made from), `present` (slot x modality flags) and `alive` (not freed)."""

    def __init__(self, n_modalities: int):
        self.slot_ids = np.empty(0, dtype=object)       # slot -> item id (None when freed)
        self.signatures = np.empty(0, dtype=object)     # slot -> content signature
        self.present = np.zeros((0, n_modalities), dtype=bool)
        self.alive = np.zeros(0, dtype=bool)
        self._slot_map: dict[str, int] | None = {}
        self._cache: dict[str, object] = {}

    @property
    def slot_by_item(self) -> dict[str, int]:
        """Item id -> slot. Built lazily: a million-entry dict takes ~0.5 s, and a photo
        search never needs it (only exclusions, `position`, `vector` and updates do)."""
        if self._slot_map is None:
            live = np.flatnonzero(self.alive)
            gc_was_on = gc.isenabled()
            gc.disable()               # a million small objects: no collection passes meanwhile
            try:
                self._slot_map = dict(zip(self.slot_ids[live].tolist(), live.tolist()))
            finally:
                if gc_was_on:
                    gc.enable()
        return self._slot_map

    def __len__(self) -> int:
        if "len" not in self._cache:
            self._cache["len"] = int(self.alive.sum())
        return self._cache["len"]  # type: ignore[return-value]

    @property
    def n_slots(self) -> int:
        return len(self.alive)

    @property
    def item_ids(self) -> list[str]:
        """Indexed items, in slot order (the order of `mask_for`'s masks)."""
        if "item_ids" not in self._cache:
            self._cache["item_ids"] = [str(i) for i in self.slot_ids[self.alive]]
        return self._cache["item_ids"]  # type: ignore[return-value]

    @property
    def alive_slots(self) -> np.ndarray:
        if "alive_slots" not in self._cache:
            self._cache["alive_slots"] = np.flatnonzero(self.alive)
        return self._cache["alive_slots"]  # type: ignore[return-value]

    @property
    def stale_share(self) -> float:
        """Share of the slots freed by removed items."""
        return 0.0 if not self.n_slots else 1.0 - len(self) / self.n_slots

    def position(self, item_id: str) -> int | None:
        """Row of an item in `item_ids` (None when it is not indexed)."""
        slot = self.slot_by_item.get(str(item_id))
        if slot is None:
            return None
        return int(np.searchsorted(self.alive_slots, slot))

    def mask_for(self, item_ids: Iterable[str]) -> np.ndarray:
        """Boolean mask over `item_ids` of the given ids (unknown ids are ignored)."""
        if "pd_index" not in self._cache:
            self._cache["pd_index"] = pd.Index(self.item_ids)
        pos = self._cache["pd_index"].get_indexer(pd.Index([str(i) for i in item_ids]))
        mask = np.zeros(len(self), dtype=bool)
        mask[pos[pos >= 0]] = True
        return mask

    def slot_mask(self, allowed: np.ndarray) -> np.ndarray:
        """A boolean mask over `item_ids` turned into one over the slots."""
        if self.n_slots == len(self):                   # no freed slots: same order
            return allowed
        out = np.zeros(self.n_slots, dtype=bool)
        out[self.alive_slots[allowed]] = True
        return out

    def presence_groups(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(presence pattern, slot mask) per pattern among the items; the mask is None when
        every item shares the pattern (the usual case: one search, no selector)."""
        if "groups" not in self._cache:
            n_modalities = self.present.shape[1]
            bits = (self.present.astype(np.int64) << np.arange(n_modalities)).sum(axis=1)
            bits = np.where(self.alive, bits, 0)
            counts = np.bincount(bits, minlength=2 ** n_modalities)
            codes = [c for c in np.flatnonzero(counts) if c != 0]
            patterns = {c: ((c >> np.arange(n_modalities)) & 1).astype(bool) for c in codes}
            if len(codes) == 1 and counts[codes[0]] == len(self):
                groups = [(patterns[codes[0]], None)]
            else:
                groups = [(patterns[c], bits == c) for c in codes]
            self._cache["groups"] = groups
        return self._cache["groups"]  # type: ignore[return-value]

    def new_slots(self, n: int) -> np.ndarray:
        """The slots the next `n` items will take (after every slot so far)."""
        return np.arange(self.n_slots, self.n_slots + n, dtype=np.int64)

    def record(self, ids: Sequence[str], slots: np.ndarray, present: np.ndarray,
               signatures: Sequence[str]) -> None:
        """Note new items in `new_slots`, with their presence flags and signatures."""
        self.slot_ids = np.concatenate([self.slot_ids, np.array(ids, dtype=object)])
        self.signatures = np.concatenate([self.signatures, np.array(signatures, dtype=object)])
        self.present = np.vstack([self.present, present])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        self.slot_by_item.update(zip(ids, slots.tolist()))
        self._cache.clear()

    def take_slots(self, item_ids: Iterable[str]) -> np.ndarray:
        """The slots of the known ones of `item_ids`, dropped from the id map (call `free`
        once their rows are gone from the faiss indexes)."""
        return np.array([self.slot_by_item.pop(str(i)) for i in item_ids
                         if str(i) in self.slot_by_item], dtype=np.int64)

    def free(self, slots: np.ndarray) -> None:
        """Mark slots (from `take_slots`) as freed."""
        self.alive[slots] = False
        self.slot_ids[slots] = None
        self.present[slots] = False
        self._cache.clear()
