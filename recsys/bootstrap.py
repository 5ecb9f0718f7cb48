"""First start: from an empty database to a working dashboard (demo data, aligned encoder,
item vectors, a trained default model), one idempotent call with one progress bar.

The app calls `bootstrap` when `readiness` says something is missing; the CLI equivalent is
`python -m recsys init-demo && python -m recsys train-encoder && python -m recsys embed &&
python -m recsys train --model <DEFAULT_MODEL>`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from .progress import ProgressCallback, report, scaled
from .store import Store

DEFAULT_MODEL = "late-fusion"
"""Trained on first start: fast (seconds on the demo) and among the best on it."""

FALLBACK_MODEL = "ease"
"""For data without item vectors (interaction-only datasets such as the Amazon sets)."""

_lock = threading.Lock()


@dataclass
class Readiness:
    """What a dataset has; `missing` lists the steps `bootstrap` would run."""

    dataset: str | None
    items: int = 0
    users: int = 0
    interactions: int = 0
    photos: int = 0
    vectors: int = 0
    encoder: str | None = None
    models: int = 0

    @property
    def has_content(self) -> bool:
        """Items with text or photos that an encoder could embed (not interaction-only)."""
        return self.photos > 0

    @property
    def missing(self) -> list[str]:
        steps = []
        if self.dataset is None or self.items == 0:
            return ["demo", "encoder", "model"]
        if self.has_content and self.vectors == 0:
            steps.append("encoder")
        if self.models == 0 and self.interactions > 0:
            steps.append("model")
        return steps

    @property
    def ready(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing": self.missing}


def readiness(store: Store, dataset: str | None = None) -> Readiness:
    """Sizes of `dataset` (default: the active one) and whether vectors and models exist."""
    names = store.dataset_names()
    if dataset is None:
        dataset = store.active_dataset()
    if dataset is None or dataset not in names:
        return Readiness(None)
    counts = store.counts(dataset)
    photos = int(store.scalar("SELECT count(*) FROM items WHERE dataset = ? AND image_path "
                              "IS NOT NULL", [dataset]) or 0)
    sets = store.embedding_sets(dataset)
    vectors, encoder = 0, None
    if not sets.empty:
        row = sets.iloc[0]
        encoder = f"{row['encoder']}@{row['version']}"
        vectors = int(sets["n_items"].max())
    runs = store.runs(dataset, kind="model")
    models = 0 if runs.empty else int((runs["status"] == "finished").sum())
    return Readiness(dataset, counts.get("items", 0), counts.get("users", 0),
                     counts.get("interactions", 0), photos, vectors, encoder, models)


def default_model(has_vectors: bool) -> str:
    """The model to train first: fusion when items have vectors, else collaborative."""
    return DEFAULT_MODEL if has_vectors else FALLBACK_MODEL


def bootstrap(store: Store, dataset: str | None = None, model: str | None = None,
              progress: ProgressCallback | None = None, demo_items: int = 320,
              demo_users: int = 600) -> Readiness:
    """Run whatever `readiness` says is missing; safe to call from several sessions at once
    (the second caller waits, then finds everything done)."""
    from .demo import build_demo
    from .embedding import ensure_item_vectors
    from .training import train_model

    with _lock:
        state = readiness(store, dataset)
        steps = state.missing
        if not steps:
            report(progress, 1, 1, "ready", stage="done")
            return state
        shares = {"demo": 0.25, "encoder": 0.45, "model": 0.30}
        total = sum(shares[s] for s in steps)
        start = 0.0

        def part(step: str) -> ProgressCallback | None:
            nonlocal start
            end = start + shares[step] / total
            sub = scaled(progress, start, end)
            start = end
            return sub

        if "demo" in steps:
            sub = part("demo")
            report(sub, 0, 1, "drawing the demo catalog", stage="demo")
            build_demo(store, n_items=demo_items, n_users=demo_users, progress=sub)
            state = readiness(store)
        dataset = state.dataset
        if "encoder" in steps and state.has_content:
            sub = part("encoder")
            report(sub, 0, 1, "aligning the CLIP encoder on the catalog", stage="encoder")
            ensure_item_vectors(store, dataset, progress=sub)
        elif "encoder" in steps:
            part("encoder")
        if "model" in steps:
            sub = part("model")
            state = readiness(store, dataset)
            name = model or default_model(state.vectors > 0)
            report(sub, 0, 1, f"training {name}", stage="model")
            train_model(store, dataset, name, progress=sub)
        report(progress, 1, 1, "ready", stage="done")
        return readiness(store, dataset)
