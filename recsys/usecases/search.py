"""Use cases of search: products similar to a photo, to words or to a catalog product (Visual
search, `python -m recsys search`), and the Catalog page's search by meaning with filters.

Both rank with exact cosine search (`recsys.index.ItemIndex`) over the dataset's stored item
vectors, the query being encoded by the encoder that made them. The default weight of the
products' photo vectors against their text vectors is one rule, `default_image_weight`, for the
app and the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from ..errors import RecsysError
from ..store import Store
from ._cache import cached, db_key, vectors_version
from .encoding import check_encoder_available

if TYPE_CHECKING:
    from ..encoders import Encoder
    from ..images import ImageSource
    from ..index import ItemIndex

PHOTO_WEIGHT = 1.0
"""Default image weight for a photo query: rank by look alone, so an identical product photo
always comes first (a photo compared with product texts gives cross-modal cosines on a lower
scale, which would only blur the ranking)."""

MIXED_WEIGHT = 0.7
"""Default image weight otherwise: a catalog product (which brings its own photo and text) or
words alone are matched on both the products' photos and their texts, photos first."""

RESULT_COLUMNS = ("rank", "item_id", "score", "image_score", "text_score", "title", "category",
                  "image_path")


class SearchError(RecsysError):
    """A search asked in a way that cannot be answered (no query, bad weight, unknown item)."""


class NoVectors(SearchError):
    """The dataset has no item vectors (from the asked encoder) to search."""


def default_image_weight(photo: bool) -> float:
    """The weight of the products' photo vectors (vs their text vectors) when none is given:
    `PHOTO_WEIGHT` for a photo query (with or without refining words), else `MIXED_WEIGHT`."""
    return PHOTO_WEIGHT if photo else MIXED_WEIGHT


@dataclass
class SearchInfo:
    """What a search of a dataset uses: the encoder's spec and how many products it ranks."""

    dataset: str
    encoder: str
    items: int


@dataclass
class SearchHits:
    """Products most similar to a query, best first.

    `results` has one row per product: rank, item_id, score (the weighted combination),
    image_score / text_score (the query against the product's photo / text vector, NaN when it
    has none), category, and the product's catalog columns. `seconds` is the time to encode
    the query and rank (models already loaded).
    """

    dataset: str
    encoder: str
    query: dict[str, Any]
    image_weight: float
    items: int
    seconds: float
    results: pd.DataFrame = field(repr=False)

    def rows(self) -> list[dict[str, Any]]:
        """The results as plain records (`RESULT_COLUMNS`; None for a missing score)."""
        out = []
        for h in self.results.to_dict("records"):
            row = {c: h.get(c) for c in RESULT_COLUMNS}
            row["rank"] = int(row["rank"])
            for c in ("score", "image_score", "text_score"):
                row[c] = None if row[c] is None or row[c] != row[c] else float(row[c])
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "encoder": self.encoder, "query": self.query,
                "image_weight": self.image_weight, "items": self.items,
                "seconds": self.seconds, "results": self.rows()}


@dataclass
class CatalogPage:
    """The Catalog page's products: filtered, and ranked by meaning when there was a query.

    `items` are the matching catalog rows (ranked: with rank, score, image_score, text_score;
    else sorted by item_id); `total` the size of the whole catalog.
    """

    dataset: str
    items: pd.DataFrame = field(repr=False)
    total: int
    ranked: bool = False
    seconds: float | None = None
    encoder: str | None = None


def _query_encoder(store: Store, dataset: str, spec: str) -> Encoder:
    """The encoder of `spec`, loaded once per process for an exact "name@version" spec, with its
    first forward pass done (it initialises torch's kernels: paid here, not by a query)."""
    from ..encoders import get_encoder

    def load() -> Encoder:
        from PIL import Image

        encoder = get_encoder(spec, store, dataset)
        encoder.encode_image(Image.new("RGB", (224, 224), (200, 200, 200)))
        encoder.encode_text("warm up")
        return encoder

    if "@" not in spec:          # resolved at load time (e.g. the newest checkpoint): no cache
        return get_encoder(spec, store, dataset)
    return cached("encoder", (db_key(store), dataset, spec), load)


def _searcher(store: Store, dataset: str, encoder: str | None) -> tuple[ItemIndex, Encoder]:
    """The index over the vectors a search uses and the encoder that made them.

    `encoder` None: the dataset's newest vectors and their encoder; else that encoder (its
    newest version without "@version"), whose vectors must exist.
    """
    from ..index import ItemIndex

    sets = store.embedding_sets(dataset)       # newest first
    if encoder is None:
        if sets.empty:
            raise NoVectors(f"Dataset '{dataset}' has no item vectors yet: run "
                            f"`python -m recsys embed --dataset {dataset}` first (in the app: "
                            "the button on the Visual search page).")
        encoder = f"{sets.iloc[0]['encoder']}@{sets.iloc[0]['version']}"
    else:
        check_encoder_available(encoder)
    enc = _query_encoder(store, dataset, encoder)
    if not ((sets["encoder"] == enc.name) & (sets["version"] == enc.version)).any():
        raise NoVectors(f"Dataset '{dataset}' has no vectors from {enc.spec}: run "
                        f"`python -m recsys embed --dataset {dataset} --encoder {enc.spec}`.")
    key = (db_key(store), dataset, enc.name, enc.version,
           vectors_version(store, dataset, sets))
    index = cached("index", key,
                   lambda: ItemIndex.from_store(store, dataset, enc.name, enc.version))
    return index, enc


def prepare_search(store: Store, dataset: str | None = None,
                   encoder: str | None = None) -> SearchInfo:
    """Load what searching `dataset` needs (index and query encoder, cached per process) so the
    first query is fast; raises `NoVectors` when the dataset has no item vectors."""
    dataset = store.resolve_dataset(dataset)
    index, enc = _searcher(store, dataset, encoder)
    return SearchInfo(dataset, enc.spec, len(index))


def _allowed_ids(store: Store, dataset: str,
                 filters: Mapping[str, Sequence[str]] | None) -> set[str] | None:
    """Item ids matching the facet filters (None: no filter given)."""
    from ..catalog import filter_items

    if not filters or not any(filters.values()):
        return None
    return set(filter_items(store.items(dataset), filters)["item_id"])


def _query_label(photo: Any) -> str | None:
    if photo is None:
        return None
    return str(photo) if isinstance(photo, (str, Path)) else "uploaded photo"


def search_similar(store: Store, dataset: str | None = None, *,
                   photo: ImageSource | None = None, text: str | None = None,
                   item_id: str | None = None, image_weight: float | None = None, k: int = 10,
                   filters: Mapping[str, Sequence[str]] | None = None,
                   encoder: str | None = None) -> SearchHits:
    """The `k` products most similar to a query; the one search of the app and the CLI.

    The query is a photo (a path, bytes or a PIL image), a catalog product (`item_id`: its own
    photo and text vectors), words (`text`), or a photo or a product refined with words.
    `image_weight` (0..1) weighs the products' photo vectors against their text vectors;
    None means `default_image_weight`. `filters` ({column: [values]}, as in the Catalog page)
    restricts the candidates; `encoder` picks the vectors (default: the newest ones).
    Raises `SearchError` (or `recsys.images.ImageError` for an unreadable photo) with a clear
    message; `NoVectors` when the dataset has no vectors to search.
    """
    dataset = store.resolve_dataset(dataset)
    text = (text or "").strip() or None
    if photo is None and item_id is None and text is None:
        raise SearchError("Give a query: a photo, a catalog product, words, or a photo or "
                          "product with words.")
    if photo is not None and item_id is not None:
        raise SearchError("Search by a photo or by a catalog product, not both.")
    if k < 1:
        raise SearchError("The number of results must be at least 1.")
    weight = default_image_weight(photo is not None) if image_weight is None \
        else float(image_weight)
    if not 0.0 <= weight <= 1.0:
        raise SearchError("The image weight must be between 0 and 1.")
    index, enc = _searcher(store, dataset, encoder)
    allowed = _allowed_ids(store, dataset, filters)
    exclude = set() if allowed is None else set(index.item_ids) - allowed
    t0 = time.perf_counter()
    try:
        words = enc.encode_text(text) if text else None
        if photo is not None:
            result = index.search(image=enc.encode_image(photo), text=words, k=k,
                                  image_weight=weight, exclude=exclude)
        elif item_id is not None and words is None:
            result = index.similar(str(item_id), k=k, image_weight=weight, exclude=exclude)
        elif item_id is not None:
            look, _ = index.item_vectors(str(item_id))
            result = index.search(image=look, text=words, k=k, image_weight=weight,
                                  exclude=exclude | {str(item_id)})
        else:
            result = index.search(text=words, k=k, image_weight=weight, exclude=exclude)
    except KeyError as exc:
        raise SearchError(f"Product {item_id!r} is not in '{dataset}' or has no vectors "
                          f"({exc.args[0] if exc.args else exc}).") from None
    except ValueError as exc:
        raise SearchError(str(exc)) from None
    seconds = time.perf_counter() - t0
    query = {"image": _query_label(photo), "text": text, "item_id": item_id,
             "image_weight": weight}
    return SearchHits(dataset, enc.spec, query, weight, len(index), seconds,
                      _with_category(_joined(store, dataset, result)))


def _joined(store: Store, dataset: str, result, items: pd.DataFrame | None = None
            ) -> pd.DataFrame:
    """Search results joined with their catalog rows (from `items`, else from the store)."""
    from ..catalog import with_items

    rows = store.items(dataset, result.item_ids) if items is None else items
    return with_items(rows, result)


def _with_category(frame: pd.DataFrame) -> pd.DataFrame:
    from ..encoders.captions import item_category

    return frame.assign(category=[item_category(r) for r in frame.to_dict("records")])


def search_catalog(store: Store, dataset: str | None = None, *, query: str = "",
                   filters: Mapping[str, Sequence[str]] | None = None, keywords: str = "",
                   image_weight: float | None = None, k: int = 240,
                   items: pd.DataFrame | None = None, encoder: str | None = None
                   ) -> CatalogPage:
    """The Catalog page: products matching facet `filters` and `keywords`; with a `query`,
    the best `k` of them ranked by meaning (the query's text vector against the products'
    photo and text vectors, weighted by `image_weight`, default `default_image_weight`).

    `items` are the catalog rows to browse (default: all items of the dataset; the app passes
    its cached copy). Raises `NoVectors` when there is a query and the dataset has no vectors.
    """
    from ..catalog import filter_items, rank_subset

    dataset = store.resolve_dataset(dataset)
    items = store.items(dataset) if items is None else items
    filtered = filter_items(items, filters, keywords)
    query = (query or "").strip()
    if not query:
        return CatalogPage(dataset, filtered.sort_values("item_id"), len(items))
    weight = default_image_weight(False) if image_weight is None else float(image_weight)
    if not 0.0 <= weight <= 1.0:
        raise SearchError("The image weight must be between 0 and 1.")
    index, enc = _searcher(store, dataset, encoder)
    t0 = time.perf_counter()
    result = rank_subset(index, filtered["item_id"], text=enc.encode_text(query),
                         image_weight=weight, k=min(len(filtered), k))
    shown = _joined(store, dataset, result, filtered)
    return CatalogPage(dataset, shown, len(items), True, time.perf_counter() - t0, enc.spec)
