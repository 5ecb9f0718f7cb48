"""Use cases: one plain function per thing a user does, shared by the app and the CLI.

Each takes the store and plain arguments (names, numbers, paths, bytes) and returns plain data
(dataclasses, dicts, data frames); errors meant for people are `RecsysError`s. The Streamlit
pages and the `python -m recsys` commands only parse input, call one of these and show the
result, so a rule (the default model, the default search weights, which vectors explain a run,
which runs are usable) is written once. See docs/architecture.md for the list with signatures.

    from recsys.store import Store
    from recsys import usecases

    store = Store("data/recsys.duckdb")
    hits = usecases.search_similar(store, photo="shoe.jpg", k=10)
    picks = usecases.recommend_for(store, None, "u0042", k=10)

Importing this package is cheap: the submodules (and torch behind them) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # setup: first start and what a dataset has
    "Readiness": "setup", "readiness": "setup", "set_up": "setup",
    # data: datasets, imports, shoppers
    "Upload": "data", "import_catalog": "data", "import_interactions": "data",
    "preview_catalog": "data", "CatalogPreview": "data",
    "simulate": "data", "init_demo": "data", "status": "data", "use_dataset": "data",
    "delete_dataset": "data", "ConfirmationNeeded": "data", "Shopper": "data",
    "shopper": "data", "find_myntra_sample": "data", "load_myntra_sample": "data",
    "app_path_policy": "data", "PathPolicy": "data", "PathNotAllowed": "data",
    # encoding: encoders and item vectors
    "embed": "encoding", "train_encoder": "encoding", "eval_encoder": "encoding",
    "eval_encoder_unseen_types": "encoding", "eval_encoder_phone_shots": "encoding",
    "eval_encoder_no_match": "nomatch",
    "list_encoders": "encoding", "check_encoder_available": "encoding",
    # modalities: item vectors as data, bring your own features
    "list_modalities": "modalities", "import_features": "modalities",
    # search
    "search_similar": "search", "search_catalog": "search", "browse_catalog": "search",
    "catalog_count_words": "search", "prepare_search": "search",
    "default_image_weight": "search", "SearchHits": "search", "CatalogPage": "search",
    "SearchInfo": "search", "SearchError": "search", "NoVectors": "search",
    "PHOTO_WEIGHT": "search", "MIXED_WEIGHT": "search", "example_queries": "search",
    "EXACT_COSINE": "search", "search_facets": "search", "SearchFacets": "search",
    # recommenders
    "DEFAULT_MODEL": "recommenders", "FALLBACK_MODEL": "recommenders",
    "default_model": "recommenders", "list_models": "recommenders", "train": "recommenders",
    "TrainResult": "recommenders", "recommend_for": "recommenders",
    "Recommendations": "recommenders", "run_data": "recommenders",
    "list_runs": "recommenders", "training_curve": "recommenders", "bench": "recommenders",
    "tune": "recommenders", "tuned_runs": "recommenders", "tuned_choice": "recommenders",
    # evaluate: comparisons with intervals and tests, cross-validation, diversity re-ranking
    "evaluate": "evaluation", "evaluation_results": "evaluation",
    "diversity_effect": "evaluation",
    "evaluation_summary": "evaluation", "EvaluationSummary": "evaluation",
    "tuned_models": "evaluation",
    "first_evaluation": "evaluation", "first_evaluation_models": "evaluation",
    "DIVERSITY_LEVELS": "evaluation",
    # personal: search for a shopper, a new shopper's picks (fold-in), their measurements
    "search_for_shopper": "personal", "PersonalHits": "personal",
    "new_shopper_picks": "personal", "NewShopperPicks": "personal",
    "starter_products": "personal", "resolve_run": "personal",
    "evaluate_cold_start": "personal", "evaluate_personal_search": "personal",
    "QUERY_SOURCES": "personal",
    # catalog_map: the catalog on a 2-D map, clusters and their purity
    "catalog_map": "catalog_map", "CatalogMap": "catalog_map",
    "cluster_purity": "catalog_map",
    # experiments: a simulated A/B test with the simulator's hidden tastes
    "ab_test": "experiments", "hidden_tastes": "experiments",
    # jobs: long use cases in the background, and the list of jobs
    "JOB_KINDS": "jobs", "start_job": "jobs", "list_jobs": "jobs", "job_summary": "jobs",
    "UnknownJobKind": "jobs",
    # housekeeping: disk use, old model files
    "disk_usage": "housekeeping", "prune_models": "housekeeping",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
