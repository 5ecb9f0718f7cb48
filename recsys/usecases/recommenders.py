"""Use cases of the recommenders: list them, train one, recommend with reasons, list the runs and
their curves, benchmark (evaluating several: `usecases/evaluation.py`).

Rules written once here, for the app and the command line alike:
* the default model (`default_model`): the tuned model with the best validation NDCG@20 once
  models were tuned (`tune`, `tuned_choice`), else late fusion when the dataset has item
  vectors, else EASE;
* training a model that reads photos or texts first makes the item vectors (`train`);
* a run is explained with the split and the item vectors of the encoder it was trained with
  (`run_data`), not with whatever vectors are newest;
* the runs a model can be loaded from are the finished ones whose file exists (`list_runs`,
  from `training.finished_runs`);
* a shopper's live picks (`recommend_for`) leave out everything they interacted with, are
  re-ranked for variety and come with a sentence and the attributes that drove them; the
  evaluation (`evaluate`) keeps leaving out the training split only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.limits import MAX_METRIC_K, MAX_PICKS, as_int, check_seed, clamp
from recsys.core.progress import Progress, ProgressCallback, scaled
from recsys.store import Store

from ._cache import cached, db_key, vectors_version

if TYPE_CHECKING:
    from recsys.data.interactions import InteractionData
    from recsys.explain.attribution import AttributeCodes, AttributeExplanation
    from recsys.explain.weights import Explanation
    from recsys.recommend.training import TrainedRun
    from recsys.recommend.tuning import TuneResult
    from recsys.vectors.embed import EmbedReport

DEFAULT_MODEL = "late-fusion"
"""The default when the dataset has item vectors: fast (seconds on the demo) and among the best
(on Myntra within noise of attention fusion, see docs/recommenders.md)."""

FALLBACK_MODEL = "ease"
"""The default for data without item vectors (interaction-only datasets such as the Amazon sets):
the best collaborative model measured."""

DEFAULT_KS = (5, 10, 20)
VECTORS_SHARE = 0.3          # of the progress bar, when `train` makes item vectors first


def default_model(store: Store, dataset: str | None = None) -> str:
    """The model used when none is named: trained on first start, preselected on the Train and
    User picks pages, used by `recommend` without `--model`.

    Once models were tuned (`tune`), the tuned model with the best validation NDCG@20 (never
    a test number; `tuned_choice`); before that late fusion with item vectors, else EASE."""
    dataset = store.resolve_dataset(dataset)
    chosen = tuned_choice(store, dataset)
    if chosen is not None:
        return chosen["model"]
    vectors = store.embedding_sets(dataset)
    return DEFAULT_MODEL if not vectors.empty else FALLBACK_MODEL


def tuned_runs(store: Store, dataset: str) -> list[dict[str, Any]]:
    """The usable tuned runs of a dataset, newest per model, each with its model name, run id,
    protocol, split seed and validation NDCG@20 (`tuning.best_value`), best first."""
    from recsys.recommend.training import finished_runs

    runs = finished_runs(store, dataset)
    newest: dict[str, dict[str, Any]] = {}
    for row in runs.to_dict("records"):                  # newest first
        config = json.loads(row["config"]) if row["config"] else {}
        tuning = config.get("tuning")
        if not isinstance(tuning, dict) or row["model"] in newest:
            continue
        value = tuning.get("best_value")
        if isinstance(value, (int, float)):
            newest[row["model"]] = {"model": row["model"], "run_id": int(row["run_id"]),
                                    "protocol": config.get("protocol"),
                                    "split_seed": config.get("split_seed"),
                                    "fingerprint": config.get("fingerprint"),
                                    "val_ndcg": float(value),
                                    "params": config.get("params", {})}
    return sorted(newest.values(), key=lambda r: -r["val_ndcg"])


def tuned_choice(store: Store, dataset: str) -> dict[str, Any] | None:
    """The tuned run with the best validation NDCG@20 among those of the newest tuned run's
    split and data (tuned runs compare on the same validation users only then), or None."""
    runs = tuned_runs(store, dataset)
    if not runs:
        return None
    newest_id = max(r["run_id"] for r in runs)
    ref = next(r for r in runs if r["run_id"] == newest_id)
    same = [r for r in runs if (r["protocol"], r["split_seed"], r["fingerprint"])
            == (ref["protocol"], ref["split_seed"], ref["fingerprint"])]
    return same[0]


def list_models(store: Store | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
    """Every registered model: name, family, summary, the signals it requires and its
    hyperparameters (name, type, default, range, choices, help). With a dataset, each also
    says whether it `applies`: collaborative models always, the others when the dataset has
    item vectors or photos to make them from (`train` makes them first)."""
    from ..models import describe_models

    models = describe_models()
    if store is not None and dataset is not None:
        offered = offered_signals(store, store.resolve_dataset(dataset))
        for m in models:
            m["applies"] = set(m["requires"]) <= offered
    return models


def offered_signals(store: Store, dataset: str) -> set[str]:
    """The signals a dataset offers models, or can offer once `train` made its vectors: cf,
    its vector modalities ("vectors" when any), image and text when it has photos, text for
    a catalog without photos, "ratings" when interactions carry ratings."""
    from recsys.vectors.embed import can_embed
    from recsys.vectors.modalities import ANY_VECTORS, modality_sources

    out = {"cf", *modality_sources(store, dataset)}
    if can_embed(store, dataset):
        out |= {"image", "text"} if store.photo_count(dataset) > 0 else {"text"}
    if out - {"cf"}:
        out.add(ANY_VECTORS)
    if store.rating_count(dataset):
        out.add("ratings")
    return out


@dataclass
class TrainResult:
    """A training run (`run`: the fitted model, its config, curves) and, when the model reads
    photos or texts, what making the item vectors first did (`vectors`)."""

    run: TrainedRun
    vectors: EmbedReport | None = None
    tuning: TuneResult | None = None
    """`tune` only: the search on the validation split that chose the run's settings."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.summary(),
                "vectors": None if self.vectors is None else self.vectors.to_dict(),
                "tuning": None if self.tuning is None else self.tuning.record()}


def _phase(progress: ProgressCallback | None, start: float, end: float, stage: str
           ) -> ProgressCallback | None:
    """A sub-task's events on `start..end` of the bar, under one stage name and without its
    metrics (so a listener drawing the model's epoch curves never sees the encoder's)."""
    if progress is None:
        return None

    def inner(p: Progress) -> None:
        progress(Progress(start + (end - start) * p.fraction, 1.0, p.message, stage))

    return inner


def train(store: Store, dataset: str | None, model: str, params: dict[str, Any] | None = None,
          *, protocol: str = "auto", split_seed: int = 0, keep_models: int | None = None,
          progress: ProgressCallback | None = None) -> TrainResult:
    """Train `model` on the dataset's training split, record the run and save the model.

    A model that reads photos or texts first gets up-to-date item vectors when the dataset has
    photos (the encoder is aligned if there is none, new or changed items are embedded: stage
    "vectors" of the progress), or text vectors for a catalog without photos. `params` are
    hyperparameters (strings are converted),
    `protocol` one of `recsys.data.interactions.PROTOCOLS`. The epoch events carry `metrics`
    (epoch, train_loss, val_loss, val_ndcg@20) for live curves. After the run, older files of
    this model beyond the newest `keep_models` are deleted (None: $RECSYS_KEEP_MODELS or 3;
    0 keeps all; see `prune_models`); `result.run.pruned` lists them.
    """
    from recsys.recommend.training import train_model
    from recsys.vectors.embed import can_embed, ensure_item_vectors

    from ..models import get_spec

    dataset = store.resolve_dataset(dataset)
    spec = get_spec(model)
    if keep_models is not None and as_int(keep_models, "keep_models") < 0:
        raise RecsysError("keep_models must be 0 (keep every model file) or more.")
    split_seed = check_seed(split_seed, "split seed")
    vectors = None
    makes = spec.create(**(params or {})).requires & {"image", "text", "vectors"}
    if makes and can_embed(store, dataset):
        vectors = ensure_item_vectors(store, dataset,
                                      progress=_phase(progress, 0.0, VECTORS_SHARE, "vectors"))
        progress = scaled(progress, VECTORS_SHARE, 1.0)
    run = train_model(store, dataset, model, params, progress=progress, protocol=protocol,
                      split_seed=split_seed, keep_models=keep_models)
    return TrainResult(run, vectors)


TUNE_SHARE = 0.9
"""Share of the progress bar the search takes (the rest: training the chosen settings)."""


def tune(store: Store, dataset: str | None, model: str, params: dict[str, Any] | None = None,
         *, trials: int = 20, budget_seconds: float = 300.0, protocol: str = "auto",
         split_seed: int = 0, keep_models: int | None = None,
         progress: ProgressCallback | None = None,
         should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Tune `model` on the validation split, then train it with the best settings found and
    record the run with the search in its config ("tuning": every trial, the best validation
    NDCG@20, why it stopped). `params` are settings kept fixed; `trials` and `budget_seconds`
    bound the search (`recsys.recommend.tuning`); `should_stop()` ends it early (the app's
    Stop), keeping the best so far. Progress: stage "vectors" (models reading photos or
    texts), "tune" (one event per trial), then the training's own events."""
    from recsys.data.interactions import load_data
    from recsys.recommend.training import train_model
    from recsys.recommend.tuning import tune_model
    from recsys.vectors.embed import can_embed, ensure_item_vectors

    from ..models import get_spec

    dataset = store.resolve_dataset(dataset)
    spec = get_spec(model)
    split_seed = check_seed(split_seed, "split seed")
    vectors = None
    if spec.create(**(params or {})).requires & {"image", "text", "vectors"} \
            and can_embed(store, dataset):
        vectors = ensure_item_vectors(store, dataset,
                                      progress=_phase(progress, 0.0, VECTORS_SHARE, "vectors"))
        progress = scaled(progress, VECTORS_SHARE, 1.0)
    data = load_data(store, dataset, protocol, split_seed)
    spec.check_signals(data.signals, dataset, spec.create(**(params or {})))
    found = tune_model(data, model, params, trials=trials, budget_seconds=budget_seconds,
                       progress=scaled(progress, 0.0, TUNE_SHARE), should_stop=should_stop)
    run = train_model(store, dataset, model, found.best_params,
                      progress=scaled(progress, TUNE_SHARE, 1.0), protocol=protocol,
                      split_seed=split_seed, data=data, keep_models=keep_models,
                      extra_config={"tuning": found.record()})
    return TrainResult(run, vectors, found)


def run_data(store: Store, dataset: str, run_config: dict[str, Any]) -> InteractionData:
    """The split a run was trained on (its protocol and split seed) with the item vectors of the
    encoder it was trained with ("name@version" in its config; the newest vectors when it
    recorded none). Cached per process until the interactions, items or vectors change."""
    from recsys.data.interactions import load_data

    protocol = run_config.get("protocol", "auto")
    seed = int(run_config.get("split_seed", 0))
    encoder = run_config.get("encoder")
    sources = run_config.get("sources") or None
    key = (db_key(store), dataset, protocol, seed, encoder,
           tuple(sorted((sources or {}).items())), store.items_version(dataset),
           store.interactions_version(dataset), vectors_version(store, dataset))
    return cached("data", key, lambda: load_data(store, dataset, protocol, seed, encoder,
                                                 sources))


@dataclass
class Recommendations:
    """A user's top-k picks from one run, each explained.

    `items`: `recsys.explain.weights.Explanation` per pick (modality weights, the most similar items
    of the shopper's whole history, cold flag); `sentences`: one sentence per pick built from
    that attribution (`recsys.explain.sentences`); `attributes`: the catalog attributes that drove
    each pick (`recsys.explain.attribution`, empty when the catalog has none); `history`: the shopper's
    strongest event per item they interacted with (all splits); `seen`: the picks that are in
    that history (only with `include_seen`); `similarity`: mean pairwise similarity of the
    picks ("picks") and of the model's plain top-k ("most_relevant"), what the diversity
    re-ranking did; `catalog`: item rows of the picks and of the cited items, by item_id.
    """

    dataset: str
    user_id: str
    model: str
    run_id: int
    encoder: str | None
    items: list[Explanation]
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    include_seen: bool = False
    diversity: float = 0.0
    history: dict[str, str] = field(default_factory=dict, repr=False)
    sentences: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, AttributeExplanation] = field(default_factory=dict)
    similarity: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the user should know about how the run was found: newer runs skipped because
    their model file is damaged, or a model trained again because every run of it was."""
    rule: str | None = None
    """The business rule applied on top of the model (the shopper's declared segment), said
    as such; None when none applied."""
    for_whom: dict[str, str] = field(default_factory=dict)
    """Picks for someone else in the shopper's declared segment: item_id -> "for partner" /
    "for children"."""

    @property
    def label(self) -> str:
        """The model's friendly name ("Combined: weighted blend")."""
        from ..models import display_name

        return display_name(self.model)

    @property
    def seen(self) -> dict[str, str]:
        """Picks the shopper already interacted with, with their strongest event."""
        return {e.item_id: self.history[e.item_id] for e in self.items
                if e.item_id in self.history}

    def title(self, item_id: str) -> str | None:
        title = self.catalog.get(item_id, {}).get("title")
        return title if isinstance(title, str) else None

    def to_dict(self) -> dict[str, Any]:
        def cited(s) -> dict[str, Any]:
            return {**asdict(s), "title": self.title(s.item_id),
                    "event": self.history.get(s.item_id)}

        items = []
        for e in self.items:
            attrs = self.attributes.get(e.item_id)
            items.append({**e.to_dict(), "title": self.title(e.item_id),
                          "similar": [cited(s) for s in e.similar],
                          "sentence": self.sentences.get(e.item_id),
                          "attributes": [] if attrs is None else
                          [asdict(a) for a in attrs.effects],
                          "attribute_fit": None if attrs is None else attrs.fit,
                          "seen": self.history.get(e.item_id)})
        return {"user": self.user_id, "dataset": self.dataset, "model": self.model,
                "label": self.label, "run_id": self.run_id, "encoder": self.encoder,
                "include_seen": self.include_seen, "diversity": self.diversity,
                "similarity": self.similarity, "notes": self.notes, "rule": self.rule,
                "items": items}


def _attribute_codes(store: Store, dataset: str, item_ids) -> AttributeCodes | None:
    """The catalog's attributes as codes in the model's item order (cached per catalog)."""
    from recsys.data.attributes import attribute_table
    from recsys.explain.attribution import AttributeCodes

    def build() -> AttributeCodes | None:
        items = store.items(dataset)
        if items.empty:
            return None
        codes = AttributeCodes(attribute_table(items), item_ids)
        return codes if codes.columns else None

    key = (db_key(store), dataset, store.items_version(dataset), len(item_ids),
           str(item_ids[0]) if len(item_ids) else "", str(item_ids[-1]) if len(item_ids) else "")
    return cached("attributes", key, build)


def recommend_for(store: Store, dataset: str | None, user_id: str, model: str | int | None = None,
                  k: int = 10, *, include_seen: bool = False, diversity: float | None = None,
                  train_if_missing: bool = True, progress: ProgressCallback | None = None,
                  segment_rule: bool = True) -> Recommendations:
    """A shopper's top-k items with why each was picked, from a model name (its newest finished
    run), a run id, or by default `default_model`.

    A live list (the app, the CLI), not an evaluation: everything the shopper interacted with
    (every split: viewed, carted, bought) is left out unless `include_seen`, and the list is
    re-ranked for variety by maximal marginal relevance over the items' image+text vectors
    (`diversity` 0 = the model's order, 1 = most varied; None = `rerank.DEFAULT_DIVERSITY`).
    Each pick gets the model's attribution (`recsys.explain.weights`, similar items cited from the whole
    history), a sentence built from it and the catalog attributes that drove it.

    A named model without a finished run, or whose newest run was trained on other data than
    the dataset holds now (`training.data_fingerprint`), is trained first (`train`) unless
    `train_if_missing` is False; a run id trained on other data raises `StaleModel`.
    Runs whose model file is damaged are passed over for the next usable run of the model
    (said in `notes`); when none is usable the model is trained again like a missing one (or,
    for a run id or without `train_if_missing`, `training.DamagedModel` says what happened).
    Explanations use `run_data` (the run's own split and encoder).
    `segment_rule` (default on): a shopper with a declared segment (simulated shoppers: own
    gender, plus a partner's or children's when they buy for them) gets no products made for
    another gender; said in `rule` as a business rule on top of the model.
    Raises `UnknownUser` for a user the dataset does not have, `UnknownModel` for an unknown
    name, `ModelNotTrained` for a run id that cannot be loaded, `RecsysError` for a diversity
    outside 0..1.
    """
    import numpy as np

    from recsys.data.interactions import UnknownUser, unknown_user_message
    from recsys.explain.attribution import explain_attributes
    from recsys.explain.sentences import Cited, pick_sentence
    from recsys.explain.weights import explain_items
    from recsys.recommend.picks import rank_picks
    from recsys.recommend.rerank import DEFAULT_DIVERSITY
    from recsys.recommend.training import (
        DamagedModel,
        ModelNotTrained,
        StaleModel,
        check_fingerprint,
        load_model,
    )

    from ..models import get_spec

    dataset = store.resolve_dataset(dataset)
    k = as_int(k, "k")
    if k < 1:
        raise RecsysError("The number of picks must be at least 1.")
    notes: list[str] = []
    k = clamp(k, "k", max(1, store.item_count(dataset)), MAX_PICKS, "products", notes)
    diversity = DEFAULT_DIVERSITY if diversity is None else float(diversity)
    if not 0.0 <= diversity <= 1.0:
        raise RecsysError(f"Diversity must be between 0 (most relevant) and 1 (most varied), "
                          f"got {diversity:g}.")
    name = default_model(store, dataset) if model is None else str(model)
    by_run = name.isdigit()
    if not by_run:
        get_spec(name)
    shopper_row = store.user(dataset, str(user_id))       # read once for the rules below
    if shopper_row is None:
        raise UnknownUser(unknown_user_message(user_id, store.users(dataset)["user_id"],
                                               dataset))
    try:
        run = load_model(store, dataset, name)
    except ModelNotTrained as exc:
        if by_run or not train_if_missing:
            raise
        if isinstance(exc, DamagedModel):
            notes += exc.skipped + [f"{name} was trained again."]
        run = train(store, dataset, name, progress=progress).run
    notes = run.skipped + notes       # the k note (if any) after the runs passed over
    data = run_data(store, dataset, run.config)
    try:
        check_fingerprint(run, data)
    except StaleModel:
        if by_run or not train_if_missing:
            raise
        run = train(store, dataset, name, protocol=run.config.get("protocol", "auto"),
                    split_seed=int(run.config.get("split_seed", 0)), progress=progress).run
        data = run_data(store, dataset, run.config)
    fitted = run.model
    user = fitted.user_index(str(user_id))
    events = store.user_item_events(dataset, str(user_id))
    history = dict(zip(events["item_id"].astype(str), events["event"].astype(str)))
    positions = pd.Index(fitted.item_ids.astype(str)).get_indexer(list(history))
    interacted = positions[positions >= 0]
    scores = fitted.score([user])[0].astype(np.float64)
    exclude = np.zeros(0, np.int64) if include_seen else interacted
    rule = None
    if segment_rule:
        outside, rule = segment_outside(store, dataset, str(user_id), fitted.item_ids,
                                        user=shopper_row)
        exclude = np.union1d(exclude, outside)
    items, item_scores, picked_sim, plain_sim = rank_picks(
        scores, data, k, diversity, exclude=exclude if len(exclude) else None)
    explanations = explain_items(fitted, data, user, items, item_scores, history=interacted)
    ids = list(dict.fromkeys([e.item_id for e in explanations]
                             + [s.item_id for e in explanations for s in e.similar]))
    rows = store.items(dataset, ids) if ids else pd.DataFrame(columns=["item_id"])
    catalog = {r["item_id"]: r for r in rows.to_dict("records")}
    codes = _attribute_codes(store, dataset, fitted.item_ids)
    thresholds = closeness(store, dataset, data, fitted.item_ids)
    attributes, sentences = {}, {}
    for e, item in zip(explanations, items):
        if codes is not None:
            attributes[e.item_id] = explain_attributes(scores, codes, int(item), e.item_id,
                                                       exclude=interacted)
        drivers = [(a.attribute, a.value) for a in attributes[e.item_id].drivers] \
            if e.item_id in attributes else []
        cited = [Cited(str(catalog.get(s.item_id, {}).get("title") or f"item {s.item_id}"),
                       history.get(s.item_id), s.similarities) for s in e.similar]
        sentences[e.item_id] = pick_sentence(e.weights, cited, cold=e.cold, attributes=drivers,
                                             thresholds=thresholds,
                                             seen=history.get(e.item_id))
    return Recommendations(dataset, str(user_id), run.name, run.run_id, run.config.get("encoder"),
                           explanations, catalog, include_seen, diversity, history, sentences,
                           attributes, {"picks": picked_sim, "most_relevant": plain_sim},
                           notes, rule, _for_whom(shopper_row, catalog))


def _for_whom(user: dict, catalog: dict) -> dict[str, str]:
    from recsys.simulation.shoppers import recipient_label

    profile = (user or {}).get("profile")
    labels = {i: recipient_label(profile, row.get("gender")) for i, row in catalog.items()}
    return {i: label for i, label in labels.items() if label}


def _item_column(store: Store, dataset: str, column: str, item_ids) -> list | None:
    """One catalog column's values in `item_ids` order (None where an item has none), read
    narrowly (two columns, not the catalog); None when the catalog has no such column."""
    rows = store.item_columns(dataset, [column])
    if column not in rows:
        return None
    by_id = dict(zip(rows["item_id"].astype(str), rows[column]))
    return [by_id.get(str(i)) for i in item_ids]


def closeness(store: Store, dataset: str, data, item_ids) -> dict[str, float]:
    """Per vector modality, the similarity above which a pick "looks like" / is "described
    like" a history item, measured on this catalog (`recsys.explain.closeness`); cached per
    catalog and vectors."""
    from recsys.explain.closeness import close_thresholds

    def build() -> dict[str, float]:
        return close_thresholds(data.vectors, _item_column(store, dataset, "article_type",
                                                           item_ids))

    key = (db_key(store), dataset, store.items_version(dataset), vectors_version(store, dataset),
           tuple(sorted(data.vectors)), len(item_ids))
    return cached("closeness", key, build)


def item_genders(store: Store, dataset: str, item_ids) -> list:
    """The catalog's gender of each item in `item_ids` order (None where unknown); cached per
    catalog version."""
    def build() -> list:
        return _item_column(store, dataset, "gender", item_ids) or [None] * len(item_ids)

    key = (db_key(store), dataset, store.items_version(dataset), len(item_ids),
           str(item_ids[0]) if len(item_ids) else "", str(item_ids[-1]) if len(item_ids) else "")
    return cached("genders", key, build)


def segment_outside(store: Store, dataset: str, user_id: str, item_ids,
                    user: dict | None = None):
    """(indices of `item_ids` outside the shopper's declared segment, the rule's sentence);
    (empty, None) for a shopper without a declared segment (real users). `user`: the
    shopper's row when the caller has read it already."""
    import numpy as np

    from recsys.recommend.picks import SEGMENT_RULE, segment_exclusions, segment_words
    from recsys.simulation.shoppers import segment_genders

    user = (store.user(dataset, str(user_id)) if user is None else user) or {}
    allowed = segment_genders(user.get("profile"))
    if not allowed:
        return np.zeros(0, np.int64), None
    outside = segment_exclusions(item_genders(store, dataset, item_ids), allowed)
    return outside, SEGMENT_RULE.format(who=segment_words(allowed))


def list_runs(store: Store, dataset: str | None = None, *, all_runs: bool = False
              ) -> pd.DataFrame:
    """Model runs of a dataset, newest first: those a model can be loaded from (finished, file
    present), or with `all_runs` every run (running, failed, interrupted too).

    The usable runs carry a `default` column: True on the run `recommend_for` uses when no
    model is named (the newest run of `default_model`).
    """
    from recsys.recommend.training import finished_runs

    dataset = store.resolve_dataset(dataset)
    if all_runs:
        return store.runs(dataset, kind="model")
    runs = finished_runs(store, dataset)
    first = runs.index[runs["model"] == default_model(store, dataset)][:1] if len(runs) else []
    return runs.assign(default=runs.index.isin(first))


def training_curve(store: Store, run_id: int) -> pd.DataFrame:
    """A run's epochs (epoch, train_loss, val_loss, seconds) with their JSON metrics spread into
    columns (val_ndcg@20...); empty for models fitted in one step."""
    epochs = store.run_epochs(int(run_id))
    if epochs.empty:
        return epochs
    metrics = pd.json_normalize([json.loads(m) if isinstance(m, str) else (m or {})
                                 for m in epochs["metrics"]])
    metrics = metrics.drop(columns=[c for c in metrics.columns if c in epochs.columns])
    return pd.concat([epochs.drop(columns=["metrics"]).reset_index(drop=True), metrics], axis=1)


def bench(store: Store, dataset: str | None = None, models: Sequence[str] | None = None,
          users: int = 200, k: int = 20, *, out: str | Path | None = None,
          progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Fit each model once, time top-k for `users` random users and one evaluation; the result
    (machine info included) is written as JSON to `out` (default
    `<data dir>/artifacts/bench/recommenders-<dataset>.json`) and returned with `saved_to`."""
    from recsys.core import config
    from recsys.core.files import atomic_path
    from recsys.evaluation.benchmark import benchmark

    dataset = store.resolve_dataset(dataset)
    notes: list[str] = []
    users = clamp(users, "users", max(1, store.counts(dataset)["users"]), None, "shoppers",
                  notes)
    k = clamp(k, "k", MAX_METRIC_K, MAX_METRIC_K, notes=notes)
    result = benchmark(store, dataset, models, users, k, progress=progress)
    result["notes"] = notes
    out = Path(out) if out else \
        config.artifacts_dir(store.path, "bench") / f"recommenders-{dataset}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    result["saved_to"] = str(out)
    return result
