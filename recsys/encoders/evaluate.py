"""`eval-encoder`: how well an encoder's image and text vectors agree on held-out products.

On the deterministic held-out 20% of a catalog (items the aligned encoder never saw, see
`splits.HoldoutRule`):

- text -> image: each product's name retrieves its own photo among all held-out photos
  (Recall@1/5/10, MRR); image -> text: the photo retrieves its own name;
- category by prompt ("zeroshot_*" metrics; in-distribution: the category words occur in other
  items' training captions, see `evaluate_unseen` for whole unseen types): every photo is
  labelled with the category whose prompt ensemble
  ("a photo of {article type}", ...) is nearest; accuracy, weighted F1 and macro F1 over all
  categories of the catalog; "zeroshot_calibrated_*" the same with calibrated stacking
  (`calibration`) for encoders that carry it (equal to the raw numbers when every category
  was in the alignment);
- image -> image: share of a photo's 10 nearest held-out photos in the same category.

The same numbers for a baseline (default: the untrained `conse` encoder) come alongside.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report, scaled

from .base import Encoder
from .calibration import TypeCalibration, name_types, type_calibration
from .captions import CATEGORY_FIELDS, ZERO_SHOT_TEMPLATES, class_prompts
from .registry import get_encoder
from .splits import HoldoutRule

PROTOCOL = "encoder-heldout"
RETRIEVAL_KS = (1, 5, 10)


class EvaluationError(RecsysError):
    """The dataset cannot be evaluated (no held-out items with photos...)."""


# -- metric functions (plain numpy, reused by the training monitor and the benchmark) ----------
def ranks_of_own(query: np.ndarray, gallery: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """0-based rank of gallery row i for query row i (ties count against the query)."""
    n = len(query)
    ranks = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        q = query[start:start + chunk]
        sims = q @ gallery.T
        own = sims[np.arange(len(q)), np.arange(start, start + len(q))][:, None]
        ranks[start:start + len(q)] = (sims > own).sum(1)
    return ranks


def retrieval_metrics(query: np.ndarray, gallery: np.ndarray,
                      ks: Sequence[int] = RETRIEVAL_KS) -> dict[str, float]:
    """Recall@k and MRR of retrieving row i of `gallery` with row i of `query`."""
    ranks = ranks_of_own(query, gallery)
    out = {f"recall@{k}": float((ranks < k).mean()) for k in ks}
    out["mrr"] = float((1.0 / (ranks + 1)).mean())
    return out


def weighted_f1(truth: Sequence[str], pred: Sequence[str]) -> float:
    """Support-weighted F1 over the classes present in `truth`."""
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(truth, dtype=object), np.asarray(pred, dtype=object),
                          average="weighted", zero_division=0))


def zero_shot_metrics(image_vectors: np.ndarray, labels: Sequence[str],
                      class_names: Sequence[str], class_vectors: np.ndarray,
                      calibration: TypeCalibration | None = None) -> dict[str, float]:
    """Nearest-prompt classification: accuracy, weighted F1 and macro F1. With `calibration`
    (the seen types and gamma of the encoder, `calibration.TypeCalibration`) the seen types'
    scores are lowered by gamma first (calibrated stacking)."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = name_types(image_vectors, class_names, class_vectors, calibration)
    truth = np.asarray(labels, dtype=object)
    return {"accuracy": float(accuracy_score(truth, pred)),
            "weighted_f1": float(f1_score(truth, pred, average="weighted", zero_division=0)),
            "macro_f1": float(f1_score(truth, pred, average="macro",
                                       labels=sorted(set(truth)), zero_division=0))}


def class_vectors(encoder: Encoder, class_names: Sequence[str],
                  templates: Sequence[str] = ZERO_SHOT_TEMPLATES) -> np.ndarray:
    """One L2-normalised vector per class: the mean of its prompts' vectors."""
    prompts = [p for c in class_names for p in class_prompts(c, templates)]
    vecs = encoder.encode_texts(prompts).reshape(len(class_names), len(templates), -1).mean(1)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)


def same_category_precision(image_vectors: np.ndarray, labels: Sequence[str],
                            k: int = 10) -> float:
    """Mean share of each photo's k nearest other photos that share its category."""
    labels = np.asarray(labels, dtype=object)
    n = len(labels)
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    hits = []
    for start in range(0, n, 2048):
        sims = image_vectors[start:start + 2048] @ image_vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        hits.append((labels[top] == labels[start:start + sims.shape[0], None]).mean(1))
    return float(np.concatenate(hits).mean())


def vector_metrics(image_vectors: np.ndarray, title_vectors: np.ndarray, labels: Sequence[str],
                   class_names: Sequence[str], class_vecs: np.ndarray | None,
                   calibration: TypeCalibration | None = None) -> dict[str, float]:
    """All eval-encoder numbers from vectors (rows of images, titles and labels aligned); with
    a `calibration` (gamma > 0) also the calibrated category numbers ("zeroshot_calibrated_*":
    they differ from the raw ones only for categories the encoder was not aligned on)."""
    out: dict[str, float] = {}
    for key, value in retrieval_metrics(title_vectors, image_vectors).items():
        out[f"t2i_{key}"] = value
    for key, value in retrieval_metrics(image_vectors, title_vectors).items():
        out[f"i2t_{key}"] = value
    labelled = np.array([bool(x) for x in labels])
    if class_vecs is not None and labelled.sum() > 1:
        zs = zero_shot_metrics(image_vectors[labelled], np.asarray(labels)[labelled],
                               class_names, class_vecs)
        out.update({f"zeroshot_{k}": v for k, v in zs.items()})
        if calibration is not None and calibration.gamma:
            zs = zero_shot_metrics(image_vectors[labelled], np.asarray(labels)[labelled],
                                   class_names, class_vecs, calibration)
            out.update({f"zeroshot_calibrated_{k}": v for k, v in zs.items()})
            out["calibration_gamma"] = float(calibration.gamma)
        out["i2i_precision@10"] = same_category_precision(image_vectors[labelled],
                                                          np.asarray(labels)[labelled], 10)
    return out


# -- evaluating an encoder on a dataset ----------------------------------------------------------
@dataclass
class EncoderEvaluation:
    dataset: str
    encoder: str
    category_field: str
    n_items: int
    n_classes: int
    holdout: dict[str, Any]
    metrics: dict[str, float]
    baseline: str | None = None
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None
    templates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def category_field(items: pd.DataFrame) -> str | None:
    """The finest category column with at least two distinct values."""
    for col in CATEGORY_FIELDS:
        if col in items and items[col].dropna().astype(str).str.strip().replace("", np.nan) \
                .dropna().nunique() > 1:
            return col
    return None


def heldout_rule_for(store, dataset: str, encoder: Encoder | None) -> HoldoutRule:
    """The held-out rule stored with a catalog-clip encoder, else the dataset's newest one's,
    else the default (so frozen/OpenCLIP encoders are scored on the same items)."""
    import json

    from .checkpoints import NAME, catalog_clip_checkpoints
    frame = catalog_clip_checkpoints(store, dataset)
    if encoder is not None and encoder.name == NAME:
        frame = catalog_clip_checkpoints(store)
        frame = frame[frame["version"] == encoder.version]
    for raw in frame["config"]:
        cfg = json.loads(raw) if isinstance(raw, str) else (raw or {})
        if "holdout" in cfg:
            return HoldoutRule.from_dict(cfg["holdout"])
    return HoldoutRule()


def heldout_items(store, dataset: str, rule: HoldoutRule) -> pd.DataFrame:
    items = store.items(dataset)
    items = items[items["image_path"].notna() & items["title"].notna()]
    mask = rule.splits(items["item_id"]) == "heldout"
    return items[mask].reset_index(drop=True)


def _item_vectors(store, dataset: str, encoder: Encoder, items: pd.DataFrame,
                  progress: ProgressCallback | None) -> tuple[np.ndarray, np.ndarray]:
    """Image and title vectors of the items: stored image vectors when they are current for
    every item (same encoder version and content hash), else computed (never stored: an
    evaluation must not change what the recommenders read)."""
    ids = list(items["item_id"])
    stored_ids, stored = store.embeddings(dataset, encoder.name, encoder.version, "image")
    hashes = store.embedding_hashes(dataset, encoder.name, encoder.version, "image")
    current = all(hashes.get(i) == h for i, h in zip(ids, items["content_hash"]))
    if current and stored_ids:
        pos = {i: k for k, i in enumerate(stored_ids)}
        images = stored[[pos[i] for i in ids]]
        report(progress, 0.9, 1, "stored photo vectors", stage="images")
    else:
        images = encoder.encode_images(list(items["image_path"]),
                                       progress=scaled(progress, 0.0, 0.9))
    titles = encoder.encode_texts([str(t) for t in items["title"]],
                                  progress=scaled(progress, 0.9, 1.0))
    return images, titles


def evaluate_on_items(encoder: Encoder, items: pd.DataFrame, class_names: Sequence[str],
                      cat_field: str | None, templates: Sequence[str] = ZERO_SHOT_TEMPLATES,
                      progress: ProgressCallback | None = None, store=None,
                      dataset: str | None = None) -> dict[str, float]:
    if store is not None and dataset is not None:
        images, titles = _item_vectors(store, dataset, encoder, items, progress)
    else:
        images = encoder.encode_images(list(items["image_path"]), progress=progress)
        titles = encoder.encode_texts([str(t) for t in items["title"]])
    labels = [str(x).strip() if cat_field and pd.notna(x) else ""
              for x in (items[cat_field] if cat_field else [None] * len(items))]
    cvecs = class_vectors(encoder, class_names, templates) if class_names else None
    return vector_metrics(images, titles, labels, class_names, cvecs, type_calibration(encoder))


def evaluate_encoder(store, dataset: str | None = None, encoder: Encoder | str | None = None,
                     baseline: Encoder | str | None = "conse",
                     templates: Sequence[str] = ZERO_SHOT_TEMPLATES,
                     progress: ProgressCallback | None = None,
                     record: bool = True) -> EncoderEvaluation:
    """Score `encoder` (default: the dataset's newest catalog-clip) and `baseline` on the
    held-out items; records an evaluation run with its metrics when `record`."""
    t0 = time.perf_counter()
    dataset = store.resolve_dataset(dataset)
    enc = encoder if isinstance(encoder, Encoder) else get_encoder(encoder, store, dataset)
    rule = heldout_rule_for(store, dataset, enc)
    items = heldout_items(store, dataset, rule)
    if len(items) < 2:
        raise EvaluationError(f"Dataset '{dataset}' has {len(items)} held-out items with a photo "
                              "and a title; the evaluation needs at least 2.")
    all_items = store.items(dataset)
    cat_field = category_field(all_items)
    class_names = sorted({str(x).strip() for x in all_items[cat_field].dropna()
                          if str(x).strip()}) if cat_field else []
    share = 0.5 if baseline is not None else 1.0
    metrics = evaluate_on_items(enc, items, class_names, cat_field, templates,
                                scaled(progress, 0.0, share), store, dataset)
    base_name, base_metrics = None, {}
    if baseline is not None:
        base = baseline if isinstance(baseline, Encoder) else get_encoder(baseline, store, dataset)
        if base.spec != enc.spec:
            base_name = base.spec
            base_metrics = evaluate_on_items(base, items, class_names, cat_field, templates,
                                             scaled(progress, share, 1.0), store, dataset)
    result = EncoderEvaluation(dataset, enc.spec, cat_field or "", len(items), len(class_names),
                               rule.to_dict(), metrics, base_name, base_metrics,
                               time.perf_counter() - t0, templates=list(templates))
    if record:
        result.run_id = _record(store, result)
    report(progress, 1, 1, "done", stage="done")
    return result


def _record(store, result: EncoderEvaluation) -> int:
    """An evaluation run (model = encoder spec) with its metrics; the baseline's numbers get
    the slice 'baseline:<spec>'."""
    run_id = store.start_run(result.dataset, "evaluation", result.encoder,
                             {"protocol": PROTOCOL, "holdout": result.holdout,
                              "category_field": result.category_field,
                              "templates": result.templates, "baseline": result.baseline})
    rows = [(PROTOCOL, "all", *_split_metric(k), v) for k, v in result.metrics.items()]
    rows += [(PROTOCOL, f"baseline:{result.baseline}", *_split_metric(k), v)
             for k, v in result.baseline_metrics.items()]
    store.add_metrics(run_id, rows)
    store.finish_run(run_id, "finished", result.seconds, message=f"{result.n_items} held-out items")
    return run_id


def _split_metric(key: str) -> tuple[str, int | None]:
    """'t2i_recall@10' -> ('t2i_recall', 10); 'zeroshot_weighted_f1' -> (..., None)."""
    name, at, k = key.partition("@")
    return (name, int(k)) if at and k.isdigit() else (key, None)
