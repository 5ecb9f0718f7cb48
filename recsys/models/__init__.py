"""The model registry: every recommender by name, with its signals and hyperparameters.

`create_model(name, **params)` builds one; `describe_models()` gives the machine-readable
hyperparameters (name, type, default, range, help) the Streamlit Train page builds its widgets
from; `applicable_models(signals)` lists those a dataset can feed.

What is known of a model before it is fitted sits on its `ModelSpec`, set at registration:
its family, the signals it reads (`requires`, `single_signal`), whether its lists depend on
the shopper (`personalised`) and whether its fold-in of a trained shopper's own history gives
back that shopper's scores exactly (`exact_fold_in`). The evaluation and the model contract
tests read these facts here instead of listing model names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from recsys.core.errors import RecsysError

from .base import Recommender, use_registry
from .config import ModelConfig, coerce_params, describe_config


class UnknownModel(RecsysError):
    """A model name the registry does not know."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, a preset of hyperparameters and a one-line summary."""

    name: str
    cls: type[Recommender]
    family: str
    summary: str
    preset: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    """What a stakeholder reads ("Behaviour: EASE", "Combined: per-shopper mix"); the name otherwise."""
    personalised: bool = True
    """Its lists depend on the shopper (bestsellers: one list for everyone)."""
    exact_fold_in: bool = False
    """Scoring a trained shopper's own history by fold-in (`Recommender.score_history`) gives
    back exactly that shopper's scores (EASE: history row @ B; item k-NN; content profiles; the
    fusion models' user representation); the others approximate it."""

    def create(self, **params: Any) -> Recommender:
        merged = {**self.preset, **coerce_params(self.cls.config_class, params)}
        return self.cls(self.cls.config_class(**merged), name=self.name)

    @property
    def requires(self) -> frozenset[str]:
        return self.create().requires

    @property
    def single_signal(self) -> bool:
        """It reads one signal only (behaviour, photo or text): the comparison class fusion has
        to beat. A model left to use every vector modality of the dataset ("vectors") is not
        one: it reads photos and texts where there are both."""
        from recsys.vectors.modalities import ANY_VECTORS

        requires = self.requires
        return len(requires) == 1 and ANY_VECTORS not in requires

    @property
    def display(self) -> str:
        return self.label or self.name

    def applies_to(self, signals: frozenset[str]) -> bool:
        return self.requires <= signals

    def check_signals(self, signals: frozenset[str], dataset: str,
                      model: Recommender | None = None) -> None:
        """A clear error when the dataset lacks a signal this model needs, judged by the
        model's actual settings (`model`, e.g. built with `-p modalities=text`), else by its
        defaults."""
        from recsys.vectors.modalities import ANY_VECTORS

        requires = (model if model is not None else self.create()).requires
        missing = sorted(requires - signals)
        if not missing:
            return
        has = sorted(signals - {"cf", ANY_VECTORS, "ratings"})
        if missing == ["ratings"]:
            how = ("It predicts explicit ratings: import interactions with a rating column "
                   "(e.g. 1-5 stars).")
        else:
            needs = [m for m in missing if m not in ("cf", "ratings")]
            what = "any item vectors" if needs == [ANY_VECTORS] else \
                " and ".join(needs) + " vectors"
            how = (f"It needs {what}"
                   + (f"; the dataset has {', '.join(has)}" if has else "") + ". "
                   + ("Pick others with -p modalities=NAME, or c" if has else "C")
                   + f"ompute them with `python -m recsys embed --dataset {dataset}` or bring "
                   f"them with `python -m recsys import-features --dataset {dataset}`.")
        raise UnknownModel(
            f"Model {self.name} cannot train on dataset '{dataset}'. {how} Models this dataset "
            f"can feed: {', '.join(applicable_models(signals))}.")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.display, "family": self.family,
                "summary": self.summary,
                "requires": sorted(self.requires), "iterative": self.cls.iterative,
                "params": describe_config(self.cls.config_class, self.preset)}


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelSpec]:
    from .baselines import EASE, ContentKNN, ContentModel, ItemKNN, Popularity, UserKNN
    from .fusion_late import LateFusion
    from .fusion_neural import AttentionFusion, EarlyFusion
    from .neural import BPRMF, ContentLR, LightGCN
    from .peers import ImplicitALS, ImplicitBPR
    from .ratings import BiasedMF

    specs = [
        ModelSpec("popularity", Popularity, "baseline", "most interacted items for everyone",
                  label="Bestsellers", personalised=False, exact_fold_in=True),
        ModelSpec("itemknn", ItemKNN, "collaborative",
                  "item-based CF, cosine on co-occurrence", label="Behaviour: similar items",
                  exact_fold_in=True),
        ModelSpec("userknn", UserKNN, "collaborative", "user-based CF, Pearson similarity",
                  label="Behaviour: similar shoppers"),
        ModelSpec("bpr", BPRMF, "collaborative", "matrix factorisation trained with BPR",
                  label="Behaviour: BPR"),
        ModelSpec("ease", EASE, "collaborative", "EASE closed-form item-item autoencoder",
                  label="Behaviour: EASE", exact_fold_in=True),
        ModelSpec("als", ImplicitALS, "collaborative",
                  "implicit's ALS: weighted matrix factorisation (the peer library)",
                  label="Behaviour: ALS (implicit)"),
        ModelSpec("bpr-implicit", ImplicitBPR, "collaborative",
                  "implicit's BPR matrix factorisation (the peer library)",
                  label="Behaviour: BPR (implicit)"),
        ModelSpec("lightgcn", LightGCN, "collaborative",
                  "LightGCN graph propagation trained with BPR", label="Behaviour: LightGCN"),
        ModelSpec("content-image", ContentModel, "content",
                  "cosine to the user's image profile", {"modalities": ("image",)},
                  label="Content: photo", exact_fold_in=True),
        ModelSpec("content-text", ContentModel, "content",
                  "cosine to the user's text profile", {"modalities": ("text",)},
                  label="Content: text", exact_fold_in=True),
        ModelSpec("content", ContentModel, "content",
                  "cosine to the user's profile in each vector modality (photo, text...)",
                  label="Content: photo + text", exact_fold_in=True),
        ModelSpec("content-knn", ContentKNN, "content",
                  "items whose vectors (photo, text...) are nearest to any history item",
                  label="Content: nearest items", exact_fold_in=True),
        ModelSpec("content-lr", ContentLR, "content",
                  "per-user logistic regression on item vector features",
                  label="Content: per-shopper classifier"),
        ModelSpec("early-fusion", EarlyFusion, "fusion",
                  "feature-level fusion: item tower over the ID and each vector modality, BPR",
                  label="Combined: learned together", exact_fold_in=True),
        ModelSpec("late-fusion", LateFusion, "fusion",
                  "decision-level fusion: CF and one scorer per vector modality, weights "
                  "learned on validation", label="Combined: weighted blend", exact_fold_in=True),
        ModelSpec("attention-fusion", AttentionFusion, "fusion",
                  "model-level fusion: per user-item attention over the ID and each vector "
                  "modality", label="Combined: per-shopper mix", exact_fold_in=True),
        ModelSpec("rating-mf", BiasedMF, "rating",
                  "biased matrix factorisation of explicit ratings (MSE): predicts stars, "
                  "reports MAE / RMSE", label="Ratings: biased MF"),
    ]
    return {s.name: s for s in specs}


def model_names() -> list[str]:
    return list(_registry())


def get_spec(name: str) -> ModelSpec:
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownModel(f"Unknown model {name!r}. Known models: "
                           f"{', '.join(model_names())}.") from None


def create_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model from the registry (hyperparameters checked and converted)."""
    return get_spec(name).create(**params)


def describe_models() -> list[dict[str, Any]]:
    """Every model's name, family, summary, signals and hyperparameters, as plain data."""
    return [s.describe() for s in _registry().values()]


def applicable_models(signals: frozenset[str]) -> list[str]:
    """Registered models whose signals the data offers (only CF ones without vectors)."""
    return [s.name for s in _registry().values() if s.applies_to(signals)]


PROTOCOL_BASELINES = {"random": "Random order",
                      "attr-popularity": "Category bestsellers",
                      "attr-profile": "Category profile"}
"""Baselines of the new-items protocol (`recsys.evaluation.new_items`; not registered models:
they are measured, never trained or served) with their friendly names."""


def display_name(name: str) -> str:
    """A model's friendly name for charts and cards ("Combined: per-shopper mix"); unknown names as is."""
    spec = _registry().get(str(name))
    return spec.display if spec else PROTOCOL_BASELINES.get(str(name), str(name))


def model_class(class_name: str) -> type[Recommender]:
    """The class saved in a model file, by class name."""
    for spec in _registry().values():
        if spec.cls.__name__ == class_name:
            return spec.cls
    raise UnknownModel(f"Unknown model class {class_name!r} in a model file.")


use_registry(model_class, create_model)

__all__ = ["ModelConfig", "ModelSpec", "Recommender", "UnknownModel", "applicable_models",
           "create_model", "describe_models", "display_name", "get_spec", "model_class",
           "model_names"]
