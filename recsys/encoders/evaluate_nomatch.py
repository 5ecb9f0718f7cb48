""""No close match", measured on queries its calibration never saw (`eval-encoder --no-match`).

The catalog's photo vectors (the encoder's, as searched) are split by the encoder's held-out
rule: the decision is calibrated on the non-held-out photos only (as the app calibrates on the
catalog), then scored on the held-out photos, which it never saw:

- ``off_catalog``: each held-out photo searched against the whole catalog with its own article
  type removed (the shop does not sell that kind of thing): should say "no close match"
  (target >= 80%);
- ``catalog_new_product``: each held-out photo against the whole catalog minus itself (a new
  product of a kind the shop sells): should not (target <= 5%);
- ``catalog_photo``: a catalog photo with its product in the index (its own photo is the best
  hit): should not.

Three decisions are reported side by side, each at the same calibrated false-alarm rate:
``model`` (`match_decision` with the encoder's confidence in the photo's type and the
open-vocabulary evidence, `TypeTexts` with `product_types.PRODUCT_TYPES`, and its cut-off
taken on the encoder's validation photos, which it never trained on), ``names`` (the same
without the open vocabulary: the decision before it, with paired bootstrap CIs of the
difference, ``model_vs_names:*``),
``neighbours`` (`match_decision` from the neighbours and type centroids only, cut-off on the
calibration queries: the previous decision) and ``threshold`` (`match_threshold`, the single
cut-off on the mean of the 10 best scores). Without type texts or validation photos ``model``
falls back to what it can use. Plain numpy + scikit-learn.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .match_decision import TypeCentroids, TypeTexts, calibrate_match_model, top_k
from .type_names import type_texts_of
from .match_threshold import DEFAULT_FALSE_ALARM, calibrate_match_threshold

PROTOCOL = "encoder-no-match"
MIN_PER_TYPE = 10            # per-type off-catalog rates are listed for types with this many


@dataclass
class NoMatchEvaluation:
    dataset: str
    encoder: str
    n_items: int
    n_calibration: int
    n_queries: int
    false_alarm: float
    metrics: dict[str, float]
    per_type: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(model, vectors: np.ndarray, labels: np.ndarray, cent: TypeCentroids,
           queries: np.ndarray, exclude, remove=None, leave_out=None,
           texts: TypeTexts | None = None) -> np.ndarray:
    """Whether each query has a close match in `vectors` (rows where `exclude` is True left
    out), by the logistic decision `model`; `remove` / `leave_out` per query: the type the
    catalog lacks for it / its own type whose centroid must not contain it
    (`TypeCentroids.sims`); `texts` the catalog's type names when the model uses them."""
    s, r = top_k(queries, vectors, exclude, model.k)
    lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
    text = None
    if model.uses_text and texts is not None:
        text = (texts if model.uses_open else texts.without_open()).features(
            queries, lab[:, 0], remove)
    return model.decide(s, lab, cent.sims(queries, remove, leave_out), cent.spread, text)[0]


def calibrate_both(vectors: np.ndarray, labels: np.ndarray, heldout: np.ndarray,
                   false_alarm: float = DEFAULT_FALSE_ALARM, seed: int = 0,
                   texts: TypeTexts | None = None, validation: np.ndarray | None = None):
    """(shipped `MatchModel` with `texts` and the `validation` cut-off, neighbours-only
    `MatchModel`, single `MatchThreshold`, the whole catalog's `TypeCentroids`), all calibrated
    on the photos outside `heldout` only (`validation`: a bool mask [n] of photos the encoder
    never trained on, outside `heldout`). ValueError when the catalog is too small or has a
    single product type."""
    known = np.flatnonzero(~np.asarray(heldout, bool))
    val = None if validation is None else np.asarray(validation, bool)[known]
    model = calibrate_match_model(vectors[known], labels[known], false_alarm, seed=seed,
                                  texts=texts, validation=val)
    plain = calibrate_match_model(vectors[known], labels[known], false_alarm, seed=seed)
    single = calibrate_match_threshold(vectors[known], labels[known], false_alarm, seed=seed)
    if model is None or plain is None or single is None:
        raise ValueError("the catalog is too small or has a single product type")
    return model, plain, single, TypeCentroids.of(vectors, labels)


def single_close(single, vectors: np.ndarray, queries: np.ndarray, exclude) -> np.ndarray:
    """Whether each query has a close match by the single threshold (`match_threshold`)."""
    s, _ = top_k(queries, vectors, exclude, single.k)
    return np.array([single.is_close_match(r[np.isfinite(r)]) for r in s], dtype=bool)


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0, draws: int = 2000
                      ) -> tuple[float, float, float]:
    """Mean of `a` minus mean of `b` (two decisions' fire flags on the same queries) and its
    95% paired bootstrap interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    d = a - b
    boot = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def nomatch_rates(vectors: np.ndarray, labels: Sequence[str], heldout: np.ndarray,
                  false_alarm: float = DEFAULT_FALSE_ALARM, seed: int = 0,
                  texts: TypeTexts | None = None, validation: np.ndarray | None = None
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, per-type off-catalog rate of the model) of the protocol in the module doc:
    `vectors` [n, d] unit photo vectors of the whole catalog, `labels` their article types,
    `heldout` a bool mask [n] of the queries (never used to calibrate). Metric keys:
    ``<decision>:<query set>`` fire rates ("no close match"), decision ``model``,
    ``neighbours`` or ``threshold``, plus each calibration's in-sample rates. `texts` /
    `validation`: see `calibrate_both`."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    heldout = np.asarray(heldout, bool)
    held = np.flatnonzero(heldout)
    model, plain, single, cent = calibrate_both(vectors, labels, heldout, false_alarm, seed,
                                                texts, validation)
    if len(held) == 0:
        raise ValueError("no held-out photos")
    lab_h = labels[held]
    typed = lab_h != ""
    own_type = lambda a, b: labels[None, :] == lab_h[a:b, None]  # noqa: E731
    itself = lambda a, b: np.arange(len(vectors))[None, :] == held[a:b, None]  # noqa: E731
    off_close = decide(model, vectors, labels, cent, vectors[held], own_type, remove=lab_h,
                       texts=texts)
    new_close = decide(model, vectors, labels, cent, vectors[held], itself, leave_out=lab_h,
                       texts=texts)
    own_close = decide(model, vectors, labels, cent, vectors[held], None, texts=texts)
    p_off = decide(plain, vectors, labels, cent, vectors[held], own_type, remove=lab_h)
    p_new = decide(plain, vectors, labels, cent, vectors[held], itself, leave_out=lab_h)
    p_own = decide(plain, vectors, labels, cent, vectors[held], None)
    t_off = single_close(single, vectors, vectors[held], own_type)
    t_new = single_close(single, vectors, vectors[held], itself)
    t_own = single_close(single, vectors, vectors[held], None)
    metrics = {}
    if texts is not None and texts.open_names:      # the previous decision: names, no open list
        names = calibrate_match_model(vectors[~heldout], labels[~heldout], false_alarm,
                                      seed=seed, texts=texts.without_open(),
                                      validation=None if validation is None else
                                      np.asarray(validation, bool)[~heldout])
        n_off = decide(names, vectors, labels, cent, vectors[held], own_type, remove=lab_h,
                       texts=texts)
        n_new = decide(names, vectors, labels, cent, vectors[held], itself, leave_out=lab_h,
                       texts=texts)
        metrics.update({"names:off_catalog": float((~n_off[typed]).mean()),
                        "names:catalog_new_product": float((~n_new).mean())})
        for key, a, b in (("off_catalog", ~off_close[typed], ~n_off[typed]),
                          ("catalog_new_product", ~new_close, ~n_new)):
            diff, lo, hi = paired_difference(a, b, seed)
            metrics.update({f"model_vs_names:{key}": diff, f"model_vs_names:{key}_lo": lo,
                            f"model_vs_names:{key}_hi": hi})
    metrics.update({
        "model:off_catalog": float((~off_close[typed]).mean()),
        "model:catalog_new_product": float((~new_close).mean()),
        "model:catalog_photo": float((~own_close).mean()),
        "neighbours:off_catalog": float((~p_off[typed]).mean()),
        "neighbours:catalog_new_product": float((~p_new).mean()),
        "neighbours:catalog_photo": float((~p_own).mean()),
        "neighbours:calibration_in_fire": plain.in_fire_rate,
        "model:uses_type_names": float(model.uses_text),
        "model:cutoff_on_validation": float(model.cutoff_on == "validation"),
        "model:n_cutoff": float(model.n_cutoff),
        "threshold:off_catalog": float((~t_off[typed]).mean()),
        "threshold:catalog_new_product": float((~t_new).mean()),
        "threshold:catalog_photo": float((~t_own).mean()),
        "model:calibration_in_fire": model.in_fire_rate,
        "model:calibration_off_fire": model.off_fire_rate,
        "threshold:calibration_in_fire": single.in_fire_rate,
        "threshold:calibration_off_fire": single.off_fire_rate,
        "threshold:value": single.threshold,
        "model:cutoff": model.cutoff,
        "model:uses_open_vocabulary": float(model.uses_open),
    })
    per_type = {t: float((~off_close[lab_h == t]).mean()) for t in sorted(set(lab_h[typed]))
                if (lab_h == t).sum() >= MIN_PER_TYPE}
    return metrics, per_type


def evaluate_no_match(store, dataset: str, encoder=None,
                      false_alarm: float = DEFAULT_FALSE_ALARM, seed: int = 0,
                      progress=None, record: bool = True) -> NoMatchEvaluation:
    """The protocol of the module doc on a dataset's catalog: photo vectors stored for the
    encoder when every photo has one (`embed`), else encoded here (not stored)."""
    from recsys.core.progress import report

    from .evaluate import EvaluationError, heldout_rule_for
    from .registry import get_encoder

    t0 = time.perf_counter()
    enc = encoder if encoder is not None and not isinstance(encoder, str) else \
        get_encoder(encoder or "catalog-clip", store, dataset)
    items = store.items(dataset)
    items = items[items["image_path"].notna()].reset_index(drop=True)
    if "article_type" not in items or items["article_type"].dropna().nunique() < 2:
        raise EvaluationError(f"'{dataset}' has fewer than two article types: there is no "
                              "kind of product to leave out. Import a catalog with an "
                              "article_type column.")
    ids = [str(i) for i in items["item_id"]]
    stored_ids, stored = store.embeddings(dataset, enc.name, enc.version, "image")
    pos = {i: k for k, i in enumerate(stored_ids)}
    if stored_ids and all(i in pos for i in ids):
        vectors = stored[[pos[i] for i in ids]]
        report(progress, 0.5, 1, "stored photo vectors", stage="images")
    else:
        vectors = enc.encode_images(list(items["image_path"]), progress=progress)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    splits = np.asarray(heldout_rule_for(store, dataset, enc).splits(items["item_id"]))
    heldout, validation = splits == "heldout", splits == "val"
    labels = [str(x).strip() if isinstance(x, str) else "" for x in items["article_type"]]
    texts = None
    if hasattr(enc, "encode_texts"):
        report(progress, 0.6, 1, "type names", stage="texts")
        texts = type_texts_of(enc, sorted({t for t in labels if t}))
    try:
        metrics, per_type = nomatch_rates(vectors, labels, heldout, false_alarm, seed, texts,
                                          validation)
    except ValueError:
        raise EvaluationError(f"'{dataset}' is too small to calibrate \"no close match\" (it "
                              "needs 20 photos and two article types outside the held-out "
                              "20%).") from None
    report(progress, 1, 1, "scored", stage="images")
    ev = NoMatchEvaluation(dataset, enc.spec, len(ids), int((~heldout).sum()),
                           int(heldout.sum()), float(false_alarm), metrics, per_type,
                           time.perf_counter() - t0)
    if record:
        run_id = store.start_run(dataset, "evaluation", enc.spec,
                                 {"protocol": PROTOCOL, "false_alarm": false_alarm,
                                  "seed": seed})
        store.add_metrics(run_id, [(PROTOCOL, "all", k, None, v) for k, v in metrics.items()])
        store.finish_run(run_id, "finished", ev.seconds,
                         message=f"no close match: {ev.n_queries} held-out photos vs "
                                 f"{ev.n_items} photos")
        ev.run_id = run_id
    return ev
