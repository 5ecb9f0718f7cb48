"""The frozen image tower's pooled features of a catalog's photos, kept on disk in shards.

An alignment (`alignment.align`, through `ShardedTowerFeatures`) runs EfficientNet-Lite0 over
every training photo; embedding the catalog then needs the same features again (the aligned
heads run on top of them). Kept in memory only, they are lost when the job stops or the server
restarts, and every photo would go through the tower a second time. Here they are written as
they are computed, `SHARD_PHOTOS` photos per shard, under
`artifacts/<db>/tower-features/<dataset>/<tower>/part-NNNNN.npz`, keyed by the photo's path and
the item's `content_hash` (a changed photo gets a new key). A stopped or restarted alignment
reads the shards and sends only the other photos through the tower; an embedding after an
interrupted align + embed runs the heads on them (`embed_items`).

A shard is written under a temporary name and renamed when complete; a shard that cannot be read
(or does not have the expected arrays) is deleted and its photos computed again. Files are plain
arrays (`np.load(allow_pickle=False)`); the features are bfloat16, stored as their 16 bits.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recsys.core.progress import Progress, ProgressCallback, report

log = logging.getLogger(__name__)

SHARD_PHOTOS = 256
SHARD_GLOB = "part-*.npz"
FEATURES = 1280                  # EfficientNet-Lite0's pooled features


def tower_key(image_size: int, precision: str) -> str:
    """The folder of one tower setting: the features depend on the photo size and precision."""
    return f"lite0-{int(image_size)}-{precision}"


def photo_key(path: str, content_hash: str | None) -> str:
    """A photo's key: its path and the item's content hash (None: the path alone)."""
    return hashlib.sha1(f"{path}|{content_hash or ''}".encode()).hexdigest()


def shard_folder(db_path: str | Path, dataset: str, key: str) -> Path:
    from recsys.core.config import artifacts_dir
    from recsys.core.files import path_part

    return artifacts_dir(db_path, "tower-features", path_part(dataset), key)


class PhotoFeatureShards:
    """The shards of one (dataset, tower setting): which photo keys they hold, their rows."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._keys: list[np.ndarray] = []
        self._feats: list[np.ndarray] = []
        self._index: dict[str, tuple[int, int]] = {}
        self._loaded = False

    # -- reading ------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for path in sorted(self.folder.glob(SHARD_GLOB)) if self.folder.is_dir() else []:
            try:
                with np.load(path, allow_pickle=False) as data:
                    keys, bits = data["keys"], data["features"]
                if keys.ndim != 1 or bits.dtype != np.uint16 or bits.shape != (len(keys),
                                                                                FEATURES):
                    raise ValueError("unexpected arrays")
            except (OSError, ValueError, KeyError) as exc:
                log.warning("dropping unreadable tower-feature shard %s: %s", path.name, exc)
                path.unlink(missing_ok=True)
                continue
            self._add(keys.astype(str), bits)

    def _add(self, keys: np.ndarray, bits: np.ndarray) -> None:
        shard = len(self._keys)
        self._keys.append(keys)
        self._feats.append(bits)
        for row, key in enumerate(keys):
            self._index[str(key)] = (shard, row)

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Whether each key is held (a boolean mask)."""
        self._load()
        return np.array([k in self._index for k in keys], dtype=bool)

    def features(self, keys: Sequence[str]):
        """The bf16 tensor [len(keys), 1280] of held keys (every key must be held)."""
        import torch

        self._load()
        out = np.empty((len(keys), FEATURES), dtype=np.uint16)
        for i, key in enumerate(keys):
            shard, row = self._index[key]
            out[i] = self._feats[shard][row]
        return torch.from_numpy(out.view(np.int16)).view(torch.bfloat16)

    # -- writing ------------------------------------------------------------------------------
    def append(self, keys: Sequence[str], features) -> Path:
        """Write features [n, 1280] (a tensor) of `keys` as the next shard, atomically."""
        import torch

        from recsys.core.files import atomic_path

        self._load()
        bits = features.to(torch.bfloat16).contiguous().view(torch.int16).numpy() \
            .view(np.uint16)
        numbers = [int(m.group(1)) for p in self.folder.glob(SHARD_GLOB)
                   if (m := re.fullmatch(r"part-(\d+)\.npz", p.name))]
        path = self.folder / f"part-{max(numbers, default=-1) + 1:05d}.npz"
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = np.asarray([str(k) for k in keys])
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, features=bits)
        self._add(keys, bits.copy())
        return path


class DeferredStop:
    """A progress callback that lets the work in hand finish when the callback raises (Stop,
    Ctrl-C, a page left): the exception is kept, later reports are not forwarded, and `raise_if`
    raises it once the finished work is saved."""

    def __init__(self, progress: ProgressCallback | None):
        self.progress = progress
        self.exc: BaseException | None = None

    def __call__(self, p: Progress) -> None:
        if self.progress is None or self.exc is not None:
            return
        try:
            self.progress(p)
        except BaseException as exc:     # noqa: BLE001 - re-raised by raise_if
            self.exc = exc

    def raise_if(self) -> None:
        if self.exc is not None:
            raise self.exc


class ShardedTowerFeatures:
    """`features.TowerFeatures` whose photo features come from, and go to, the shards.

    `keys` maps each photo path the alignment will ask for to its `photo_key`. Photos already
    in the shards are read; the others run through the tower `SHARD_PHOTOS` at a time, each
    chunk written as a shard before the next starts (a Stop lets the chunk in hand finish and
    be written, then stops). Mirrored photos (`flip`) and trained tower layers
    (`image_trainable` > 0) are not kept: they fall back to computing everything."""

    def __init__(self, shards: PhotoFeatureShards, keys: dict[str, str], base=None):
        from .features import TowerFeatures

        self.shards, self.keys = shards, keys
        self.base = base if base is not None else TowerFeatures()
        self.read = 0            # photos whose features came from the shards
        self.computed = 0        # photos run through the tower

    def images(self, model, paths, cfg, pixels, progress, flip):
        from .training_data import cache_images

        if flip or cfg.image_trainable > 0 or any(p not in self.keys for p in paths):
            return self.base.images(model, paths, cfg, pixels, progress, flip)
        keys = [self.keys[p] for p in paths]
        held = self.shards.rows(keys)
        todo = np.flatnonzero(~held)
        self.read += int(held.sum())
        n = len(paths)
        done = int(held.sum())
        for start in range(0, len(todo), SHARD_PHOTOS):
            chunk = todo[start:start + SHARD_PHOTOS]
            base = done

            def sub(p: Progress, base=base, size=len(chunk)) -> None:
                got = base + int(round(p.fraction * size))
                report(progress, got, n, f"{got:,}/{n:,} photos", stage="cache images")

            guard = DeferredStop(sub)
            feats, _ = cache_images(model, [paths[i] for i in chunk], cfg, pixels, guard, False,
                                    job_rows=len(todo))
            self.shards.append([keys[i] for i in chunk], feats)
            self.computed += len(chunk)
            done += len(chunk)
            guard.raise_if()
        report(progress, n, n, f"{n:,}/{n:,} photos", stage="cache images")
        return self.shards.features(keys), None

    def texts(self, model, tokenize, texts, cfg, progress):
        return self.base.texts(model, tokenize, texts, cfg, progress)

    def views(self, model, cfg, paths, item_ids, plan, pixels, progress, donor_paths):
        return self.base.views(model, cfg, paths, item_ids, plan, pixels, progress, donor_paths)


class ShardOutputs:
    """The shards seen as `features.TowerOutputs` for `embed_items` (photos only)."""

    def __init__(self, shards: PhotoFeatureShards):
        self.shards = shards
        self._keys: list[str] = []

    def image_rows(self, item_ids: Sequence[str], paths: Sequence[str],
                   hashes: Sequence[Any] | None = None) -> np.ndarray:
        hashes = hashes if hashes is not None else [None] * len(paths)
        keys = [photo_key(str(p), h if isinstance(h, str) else None)
                for p, h in zip(paths, hashes)]
        held = self.shards.rows(keys)
        out = np.full(len(keys), -1, dtype=np.int64)
        for i in np.flatnonzero(held):
            out[i] = len(self._keys)
            self._keys.append(keys[i])
        return out

    def image_features(self, rows: np.ndarray):
        return self.shards.features([self._keys[r] for r in rows])

    def text_rows(self, item_ids, captions) -> np.ndarray:
        return np.full(len(item_ids), -1, dtype=np.int64)
