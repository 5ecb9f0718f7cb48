"""First start: from an empty database to a working dashboard (demo data, aligned encoder, item
vectors, a trained default model, a first evaluation), one idempotent call with one progress bar.

The app calls `set_up` when `readiness` says something is missing; the CLI equivalent is
`python -m recsys init-demo && python -m recsys train-encoder && python -m recsys embed &&
python -m recsys train --model <default model> && python -m recsys evaluate --models
popularity ease content <default model>`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from recsys.core.progress import ProgressCallback, report, scaled
from recsys.store import Store

from .data import init_demo
from .encoding import embed
from .evaluation import first_evaluation
from .recommenders import default_model, train

_lock = threading.Lock()


@dataclass
class Readiness:
    """What a dataset has; `missing` lists the steps `set_up` would run."""

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
        """Items with photos that an encoder could embed (not interaction-only)."""
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
    from recsys.recommend.training import finished_runs

    names = store.dataset_names()
    if dataset is None:
        dataset = store.active_dataset()
    if dataset is None or dataset not in names:
        return Readiness(None)
    counts = store.counts(dataset)
    sets = store.embedding_sets(dataset)
    vectors, encoder = 0, None
    if not sets.empty:
        row = sets.iloc[0]
        encoder = f"{row['encoder']}@{row['version']}"
        vectors = int(sets["n_items"].max())
    return Readiness(dataset, counts.get("items", 0), counts.get("users", 0),
                     counts.get("interactions", 0), store.photo_count(dataset), vectors, encoder,
                     len(finished_runs(store, dataset)))


def set_up(store: Store, dataset: str | None = None, model: str | None = None,
           progress: ProgressCallback | None = None, demo_items: int = 320,
           demo_users: int = 600) -> Readiness:
    """Run whatever `readiness` says is missing: build the demo (empty database), align the
    encoder and embed the items, train `model` (default: `default_model`) and then evaluate it
    next to bestsellers, EASE and a content model (`first_evaluation`), so the Evaluate page
    has numbers at once. Safe to call from several sessions at once (the second caller waits,
    then finds everything done)."""
    with _lock:
        state = readiness(store, dataset)
        steps = state.missing
        if not steps:
            report(progress, 1, 1, "ready", stage="done")
            return state
        if "model" in steps:
            steps = [*steps, "evaluation"]     # a first comparison, so Evaluate is not empty
        shares = {"demo": 0.25, "encoder": 0.45, "model": 0.22, "evaluation": 0.08}
        total = sum(shares[s] for s in steps)
        start = 0.0

        def part(step: str) -> ProgressCallback | None:
            nonlocal start
            end = start + shares[step] / total
            sub = scaled(progress, start, end)
            start = end
            return sub

        if "demo" in steps and "encoder" in steps:
            # the encoder's imports, per-machine text caches and OpenVINO trunk are made
            # ready while the demo is drawn (the alignment waits for what is not ready yet)
            from recsys.encoders.preload import start_preload

            start_preload()
        if "demo" in steps:
            sub = part("demo")
            report(sub, 0, 1, "drawing the demo catalog", stage="demo")
            init_demo(store, items=demo_items, users=demo_users, progress=sub)
            state = readiness(store)
        dataset = state.dataset
        if "encoder" in steps and state.has_content:
            sub = part("encoder")
            report(sub, 0, 1, "aligning the CLIP encoder on the catalog", stage="encoder")
            embed(store, dataset, align=True, progress=sub)
        elif "encoder" in steps:
            part("encoder")
        if "model" in steps:
            sub = part("model")
            name = model or default_model(store, dataset)
            report(sub, 0, 1, f"training {name}", stage="model")
            train(store, dataset, name, progress=sub)
        if "evaluation" in steps:
            sub = part("evaluation")
            report(sub, 0, 1, "comparing it with bestsellers and single-signal models",
                   stage="evaluation")
            first_evaluation(store, dataset, name, progress=sub)
        report(progress, 1, 1, "ready", stage="done")
        return readiness(store, dataset)
