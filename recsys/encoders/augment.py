"""Augmented views for alignment: phone-style shots of the training photos, through the frozen
image tower once.

`ViewPlan` says which phone-shot families (`phone_families`) make the augmented views of each
training photo: `views` per photo (a fixed number, so the cost of augmentation is bounded:
`views` extra tower passes per training photo), the families taken in turn from a start that is
a hash of the item id. A view's pixels depend only on (family, seed, item) (`family_rng`), so
the same plan gives the same views in `train-encoder`, in `eval-encoder --phone-shots` and in a
feature cache. Leaving a family out (`ViewPlan.allowed`) masks its views instead of drawing new
ones: the held-out-family test of `evaluate_phone` aligns on the same plan minus the family it
scores.
"""

from __future__ import annotations

import hashlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from recsys.core.progress import ProgressCallback, report
from .phone_families import FAMILY_NAMES, DonorPool, Shot, check_families, cutout, family_rng

GENERATION_THREADS = 2


@dataclass(frozen=True)
class ViewPlan:
    """`views` phone-style views per training photo, from `families` (see the module doc)."""

    families: tuple[str, ...] = FAMILY_NAMES
    views: int = 2
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "families", tuple(check_families(self.families)))
        if self.views < 0:
            raise ValueError("views must be >= 0")

    @property
    def active(self) -> bool:
        return self.views > 0 and bool(self.families)

    def item_families(self, item_id: str) -> list[str]:
        """The families of one item's views (distinct while views <= len(families))."""
        if not self.active:
            return []
        digest = hashlib.sha1(f"views:{self.seed}:{item_id}".encode()).digest()
        start = int.from_bytes(digest[:4], "little") % len(self.families)
        return [self.families[(start + v) % len(self.families)] for v in range(self.views)]

    def table(self, item_ids: Sequence[str]) -> np.ndarray:
        """[items, views] family names (object array)."""
        out = np.empty((len(item_ids), self.views), dtype=object)
        for i, item in enumerate(item_ids):
            out[i] = self.item_families(str(item))
        return out

    def allowed(self, table: np.ndarray, exclude: Sequence[str] = ()) -> np.ndarray:
        """[items, views] bool: the views not made by an excluded family."""
        return ~np.isin(table, list(exclude)) if len(exclude) else np.ones(table.shape, bool)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "families": list(self.families)}


def render_view(family: str, seed: int, item_id: str, pool: DonorPool, path: str,
                product=None) -> Shot:
    """The phone-style shot `family` makes of one catalog photo (reproducible)."""

    from .phone_families import family_shot

    if product is None:
        from recsys.data.images import load_image
        product = cutout(load_image(path))
    return family_shot(family, None, family_rng(family, seed, str(item_id)),
                       pool.donors(exclude=path), product=product)


@dataclass
class Views:
    """Frozen-tower features of the augmented views: `features` [items, views, dim] (bf16
    torch tensor), `families` [items, views] (names)."""

    features: Any
    families: np.ndarray
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def view_features(model, cfg, paths: Sequence[str], item_ids: Sequence[str], plan: ViewPlan,
                  pixels, progress: ProgressCallback | None = None,
                  donor_paths: Sequence[str] | None = None) -> Views:
    """Render every planned view (in a small thread pool; each photo decoded and cut out once for
    all its views) and run the frozen image trunk over them in batches (pooled features;
    `cfg.image_trainable` must be 0; the trunk's runtime: `tower_runtime.frozen_trunk`)."""
    import time

    import torch

    from .clip_encoder import prepare_image, resolve_precision
    from .tower_runtime import frozen_trunk
    from .training_data import autocast

    t0 = time.perf_counter()
    table = plan.table(item_ids)
    n, v = table.shape
    if not plan.active or n == 0:
        return Views(torch.empty((n, 0, 1280), dtype=torch.bfloat16), table)
    if cfg.image_trainable != 0:
        raise ValueError("augmented views need the frozen pooled features (image_trainable 0)")
    pool = DonorPool(donor_paths or paths, seed=plan.seed)
    jobs = [(i, j) for i in range(n) for j in range(v)]

    def make(i):
        # one decode and one cutout per photo, shared by all its views (the cutout is most of
        # a view's drawing time); the views are the same as drawn one by one
        from recsys.data.images import load_image

        product = cutout(load_image(str(paths[i])))
        return [prepare_image(render_view(table[i, j], plan.seed, str(item_ids[i]), pool,
                                          str(paths[i]), product=product).image,
                              cfg.tower.image_size) for j in range(v)]

    trunk = frozen_trunk(model.visual, len(jobs), resolve_precision(cfg.precision))
    out = None
    bs = 64
    with ThreadPoolExecutor(GENERATION_THREADS) as ex, torch.inference_mode(), autocast(cfg):
        arrays = itertools.chain.from_iterable(ex.map(make, range(n)))
        for start in range(0, len(jobs), bs):
            batch = [next(arrays) for _ in range(min(bs, len(jobs) - start))]
            h = trunk(pixels(batch)).to(torch.bfloat16)
            if out is None:
                out = torch.empty((n, v, h.shape[1]), dtype=torch.bfloat16)
            for k, (i, j) in enumerate(jobs[start:start + len(batch)]):
                out[i, j] = h[k]
            done = start + len(batch)
            report(progress, done, len(jobs), f"{done:,}/{len(jobs):,} phone-style views",
                   stage="cache views")
    return Views(out, table, time.perf_counter() - t0, {"plan": plan.to_dict()})
