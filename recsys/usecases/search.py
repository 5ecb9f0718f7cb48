"""Use cases of search: products similar to a photo, to words or to a catalog product (Visual
search, `python -m recsys search`), and the Catalog page's search by meaning with filters.

Both rank with the dataset's search index (`recsys.search.item_index.ItemIndex`, a façade over
`recsys.search.vector_index.VectorIndex`: exact faiss search in float32 or float16, an
approximate IVF index used automatically above `vector_index.ANN_MIN_ITEMS` items, files kept
beside the database and updated incrementally by `recsys.search.index_files`), the query being
encoded by the encoder that made the vectors. Filters become one boolean mask over the index
(`recsys.search.facets.FacetMasks`, cached per index and catalog version) applied inside the
search: no loop over item ids, ~10-30 ms at a million items. The default weight of the
products' photo vectors against their text vectors is one rule, `default_image_weight`, for
the app and the command line.

The steps of a query (checking it, decoding and cropping its photo, encoding, ranking, the
exact match) are `recsys.search.query` and `recsys.search.exact_match`; these functions run
them in order, time them, cache what can be cached and join the hits with the catalog.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.core.limits import MAX_RESULTS, clamp
from recsys.search.exact_match import EXACT_COSINE, SAME_FILE_CANDIDATES, exact_match
from recsys.search.facets import KEYWORD_COLUMNS
from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex
from recsys.search.query import (
    SearchError,
    SimilarQuery,
    add_crop,
    check_ann,
    check_method,
    check_storage,
    check_weight,
    crop_preview,
    decode_photo,
    encode_query,
    price_range,
    product_crop,
    rank_similar,
    to_jpeg,
)
from recsys.store import Store

from ._cache import cached, db_key, vectors_version
from .encoding import check_encoder_available

if TYPE_CHECKING:
    from recsys.data.images import ImageSource
    from recsys.search.facets import FacetMasks

    from ..encoders import Encoder

__all__ = ["EXACT_COSINE", "MIXED_WEIGHT", "PHOTO_WEIGHT", "CatalogPage", "NoVectors",
           "browse_catalog",
           "SearchError", "SearchFacets", "SearchHits", "SearchInfo", "default_image_weight",
           "example_queries", "prepare_search", "search_catalog", "search_facets",
           "search_similar"]

PHOTO_WEIGHT = 1.0
"""Default image weight for a photo query: rank by look alone, so an identical product photo
always comes first (a photo compared with product texts gives cross-modal cosines on a lower
scale, which would only blur the ranking)."""

MIXED_WEIGHT = 0.7
"""Default image weight otherwise: a catalog product (which brings its own photo and text) or
words alone are matched on both the products' photos and their texts, photos first."""

RESULT_COLUMNS = ("rank", "item_id", "score", "image_score", "text_score", "title", "category",
                  "image_path")


class NoVectors(SearchError):
    """The dataset has no item vectors (from the asked encoder) to search."""


def default_image_weight(photo: bool) -> float:
    """The weight of the products' photo vectors (vs their text vectors) when none is given:
    `PHOTO_WEIGHT` for a photo query (with or without refining words), else `MIXED_WEIGHT`."""
    return PHOTO_WEIGHT if photo else MIXED_WEIGHT


@dataclass
class SearchInfo:
    """What a search of a dataset uses: the encoder's spec, how many products it ranks, how the
    index stores them and whether it has an approximate part (`ann`, used by `auto` above
    `ann_min_items` products)."""

    dataset: str
    encoder: str
    items: int
    storage: str = "float32"
    ann: bool = False
    ann_min_items: int = 0
    notes: list[str] = field(default_factory=list)
    """E.g. the index could not be saved (a full disk): searched from memory."""


@dataclass
class SearchHits:
    """Products most similar to a query, best first: the index's `hits`
    (`recsys.search.hits.Hits`) joined with the products' catalog rows, with the query and
    what it cost.

    `results` has one row per hit: rank, item_id, score (the weighted combination),
    image_score / text_score (the query against the product's photo / text vector, NaN when it
    has none), category, and the product's catalog columns. `seconds` is the time to decode
    and encode the query and rank (models already loaded). `exact_match`: for a photo query
    that is a catalog photo, {"item_id", "how": "same file" | "same look", "similarity"},
    else None. `query_photo`: the JPEG of the product crop that was encoded beside the whole
    photo (None when not cropped). With the crop on, `query_preview` is the whole photo
    (upright JPEG) and `crop` where the product was found on it (`query.crop_preview`: box,
    fraction, reason; a product shot is never cropped). `close_match` (a photo query):
    {"close", "score", "threshold"}: close False when nothing in the catalog matches closely
    (`recsys.search.close_match`, the catalog's calibrated threshold; the page then labels the
    results "similar styles"); None when the catalog has no threshold. `timings` splits a
    search into encode, filter (the facet mask), rank and join (reading the hits' catalog
    rows), and for a photo decode (in the decoding worker), crop, close_match and
    exact_match, in seconds; `method` (from `hits`) says whether the exact or the approximate
    index answered.
    """

    dataset: str
    encoder: str
    query: dict[str, Any]
    image_weight: float
    items: int
    seconds: float
    results: pd.DataFrame = field(repr=False)
    hits: Hits = field(repr=False)
    exact_match: dict[str, Any] | None = None
    query_photo: bytes | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the user should know besides the results (the index's files could not be saved:
    the search answered from memory)."""
    query_preview: bytes | None = field(default=None, repr=False)
    crop: dict[str, Any] | None = None
    close_match: dict[str, Any] | None = None

    @property
    def no_close_match(self) -> bool:
        """Nothing in the catalog matches the photo closely: the results are similar styles."""
        return self.close_match is not None and not self.close_match["close"]

    @property
    def method(self) -> str:
        """"exact" or "ann": which index answered."""
        return self.hits.method

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
                "seconds": self.seconds, "exact_match": self.exact_match,
                "method": self.method, "timings": self.timings, "notes": self.notes,
                "crop": self.crop, "close_match": self.close_match, "results": self.rows()}


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
    notes: list[str] = field(default_factory=list)
    understood: dict[str, list[str]] = field(default_factory=dict)
    """What the query's words named of this catalog (gender, colour, type values), boosted
    softly in the ranking (`recsys.search.understand`)."""
    matched: int | None = None
    """How many products match the filters in all when `items` is one page of them
    (`browse_catalog`); None when `items` holds every match."""
    offset: int = 0
    """Where `items` starts in the matches (a page of `browse_catalog`)."""


def catalog_count_words(page: CatalogPage) -> str:
    """The Catalog page's headline count: a match count when filtering, the size of the
    ranked list (not a number of matches) when a query ranked the products."""
    if not page.ranked:
        matched = len(page.items) if page.matched is None else page.matched
        return f"**{matched:,}** of {page.total:,} products match"
    return (f"The best **{len(page.items):,}** of {page.total:,} products for your words, "
            f"most relevant first ({1000 * (page.seconds or 0):.0f} ms)")


def _vocabulary(store: Store, dataset: str, items: pd.DataFrame | None = None):
    """The catalog's words for query understanding, cached per catalog version."""
    from recsys.search.understand import Vocabulary

    return cached("vocabulary", (db_key(store), dataset, store.items_version(dataset)),
                  lambda: Vocabulary(_understood_columns(store, dataset)
                                     if items is None else items))


def _understood_columns(store: Store, dataset: str) -> pd.DataFrame:
    """The columns query understanding reads (title and the attribute columns), a narrow
    read cached per catalog version (not the whole catalog per query)."""
    from recsys.search.understand import FACETS

    return cached("understood_columns", (db_key(store), dataset, store.items_version(dataset)),
                  lambda: store.item_columns(dataset, ["title", *FACETS.values()]))


def understood_search(store: Store, dataset: str, index: ItemIndex, query: str,
                      text_vector, k: int, image_weight: float, allowed, method: str,
                      items: pd.DataFrame | None = None, understand: bool = True):
    """A text search with query understanding: (Hits, what was understood). The plain search
    over a wider pool, and a search among the products with every named attribute, merged by
    score plus the soft boosts; without recognised words, the plain search."""
    from recsys.search.understand import boosted, matching_ids

    plain = dict(text=text_vector, image_weight=image_weight, method=method)
    attributes = _vocabulary(store, dataset, items).understand(query) if understand else None
    if not attributes:
        return index.search(k=k, allowed_mask=allowed, **plain), {}
    rows = _understood_columns(store, dataset) if items is None else items
    pool = min(len(index), max(3 * k, 300))
    free = index.search(k=pool, allowed_mask=allowed, **plain)
    strict_ids = matching_ids(attributes, rows)
    pools = [free]
    if strict_ids:
        mask = index.mask_for(strict_ids)
        mask = mask if allowed is None else mask & allowed
        if mask.any():
            pools.insert(0, index.search(k=min(k, int(mask.sum())), allowed_mask=mask, **plain))
    ids = list(dict.fromkeys(i for h in pools for i in h.item_ids))
    cand = rows[rows["item_id"].astype(str).isin(ids)]
    return boosted(pools, cand, attributes, k), attributes.describe()


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


def _searcher(store: Store, dataset: str, encoder: str | None, storage: str | None = None
              ) -> tuple[ItemIndex, Encoder]:
    """The index over the vectors a search uses and the encoder that made them (see
    `_searcher_keyed`)."""
    index, enc, _ = _searcher_keyed(store, dataset, encoder, storage)
    return index, enc


def _searcher_keyed(store: Store, dataset: str, encoder: str | None,
                    storage: str | None = None) -> tuple[ItemIndex, Encoder, tuple]:
    """The index over the vectors a search uses, the encoder that made them, and the index's
    cache key (which also keys what is derived from the index, e.g. its facet masks).

    `encoder` None: the dataset's newest vectors and their encoder; else that encoder (its
    newest version without "@version"), whose vectors must exist. The index is cached per
    process by database, dataset, encoder version, vectors version and storage; the first
    call loads its files (memory-mapped), or updates / builds and saves them.
    """
    from recsys.vectors.modalities import searchable_encoder

    storage = check_storage(storage)
    sets = cached("sets", (db_key(store), dataset, store.embeddings_token(dataset)),
                  lambda: store.embedding_sets(dataset))      # newest first
    if encoder is None:
        encoder = searchable_encoder(store, dataset)     # never imported features
        if encoder is None:
            raise NoVectors(f"Dataset '{dataset}' has no item vectors yet: run "
                            f"`python -m recsys embed --dataset {dataset}` first (in the app: "
                            "the button on the Visual search page).")
    else:
        check_encoder_available(encoder)
    enc = _query_encoder(store, dataset, encoder)
    if not ((sets["encoder"] == enc.name) & (sets["version"] == enc.version)).any():
        raise NoVectors(f"Dataset '{dataset}' has no vectors from {enc.spec}: run "
                        f"`python -m recsys embed --dataset {dataset} --encoder {enc.spec}`.")
    key = (db_key(store), dataset, enc.name, enc.version,
           vectors_version(store, dataset, sets), storage)
    index = cached("index", key, lambda: ItemIndex.from_store(store, dataset, enc.name,
                                                              enc.version, storage=storage))
    return index, enc, key


def prepare_search(store: Store, dataset: str | None = None, encoder: str | None = None,
                   storage: str | None = None) -> SearchInfo:
    """Load what searching `dataset` needs (index and query encoder, cached per process) and
    run one made-up photo query through every step (`_warm_query_path`, once per index), so
    the first real query is fast; raises `NoVectors` when the dataset has no item vectors.
    `storage`: float32 or float16 (default $RECSYS_INDEX_STORAGE, else float32)."""
    from recsys.core import sandbox

    dataset = store.resolve_dataset(dataset)
    sandbox.start()                 # the worker that decodes uploads, ready for the first one
    index, enc, key = _searcher_keyed(store, dataset, encoder, storage)
    _match_threshold(store, dataset, index, enc, key)     # calibrated once, kept beside the index
    cached("warm", key, lambda: _warm_query_path(store, dataset, encoder, storage))
    vectors = index.vectors
    return SearchInfo(dataset, enc.spec, len(index), vectors.storage, vectors.ann is not None,
                      vectors.ann_min_items, index.notes)


def warm_photo() -> bytes:
    """A small made-up phone shot (a dark product on a light wall, off centre): not a catalog
    photo, so a search with it takes every step a visitor's upload takes, crop included."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 400), (214, 208, 198))
    ImageDraw.Draw(img).rounded_rectangle((90, 120, 250, 330), 24, fill=(60, 40, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _warm_query_path(store: Store, dataset: str, encoder: str | None,
                     storage: str | None) -> float:
    """Run one photo search with `warm_photo` so that what a first query pays once per
    process (the decoding worker's first photo, loading the crop's OpenCV code, the encoder's
    first pass at this size, pandas' string kernels for the join: ~0.3-1 s together) is paid
    here, when the search page opens, not by a visitor's first upload. Returns the seconds it
    took; a search error is left for the real query to report."""
    t0 = time.perf_counter()
    try:
        search_similar(store, dataset, photo=warm_photo(), k=10, encoder=encoder,
                       storage=storage)
    except (SearchError, ValueError):
        pass
    return time.perf_counter() - t0


@dataclass(frozen=True)
class SearchFacets:
    """What a search can be filtered by in one catalog: `facets` {column: (label, values most
    frequent first)} for the facets with two values or more, and `price` (low, high) or None
    when the catalog has fewer than two distinct prices."""

    facets: dict[str, tuple[str, list[str]]]
    price: tuple[float, float] | None


def search_facets(store: Store, dataset: str | None = None,
                  columns: Sequence[str] | None = None) -> SearchFacets:
    """The filters a search page offers for `dataset` (`columns`: which facets, default every
    facet of `facets.FACETS`), read narrowly (the facet and price columns only, not the whole
    catalog: a million-product catalog costs a fraction of a second, once per catalog
    version)."""
    from recsys.search.facets import FACETS

    dataset = store.resolve_dataset(dataset)
    wanted = tuple(FACETS if columns is None else (c for c in columns if c in FACETS))

    def build() -> SearchFacets:
        counts = store.item_facet_values(dataset, wanted)       # counted by the database
        facets = {c: (FACETS[c], [str(v) for v in counts[c].index]) for c in wanted
                  if c in counts and len(counts[c]) >= 2}
        low, high = store.item_price_range(dataset)
        price = (low, high) if low is not None and high is not None and high > low else None
        return SearchFacets(facets, price)

    return cached("search_facets", (db_key(store), dataset, store.items_version(dataset),
                                    wanted), build)


def _facets(store: Store, dataset: str, index: ItemIndex, index_key: tuple,
            columns: Sequence[str]) -> FacetMasks:
    """The catalog's facet columns as codes aligned with the index (`facets.FacetMasks`),
    cached beside it: built once per (index, catalog version, columns) from a narrow read of
    the items table, so a filter afterwards costs one lookup per facet."""
    from recsys.search.facets import DEFAULT_MASK_COLUMNS, FacetMasks

    wanted = tuple(sorted(set(DEFAULT_MASK_COLUMNS) | set(columns)))
    key = (*index_key, store.items_version(dataset), wanted)
    return cached("facets", key, lambda: FacetMasks(
        store.item_columns(dataset, [*wanted, "price"]), index.item_ids, columns=wanted))


def _allowed_mask(store: Store, dataset: str, index: ItemIndex, index_key: tuple,
                  filters: Mapping[str, Sequence[str]] | None,
                  price: tuple[float | None, float | None] | None = None
                  ) -> np.ndarray | None:
    """Boolean mask over `index.item_ids` of the products matching the facet `filters`
    ({column: [values]}) and the `price` range (either end None: open; None: no filter given)."""
    chosen = {str(c): [str(v) for v in vals] for c, vals in (filters or {}).items() if vals}
    price = price_range(price)
    if not chosen and price is None:
        return None
    facets = _facets(store, dataset, index, index_key, list(chosen))
    unknown = sorted(set(chosen) - set(facets.columns))
    if unknown:
        raise SearchError(f"Products cannot be filtered by {', '.join(map(repr, unknown))}; "
                          f"filter by one of: {', '.join(facets.columns)}.")
    return facets.mask(chosen, price)


def example_queries(store: Store, dataset: str | None = None, n_catalog: int = 3,
                    n_phone: int = 3) -> list[dict[str, Any]]:
    """Photos a visitor can try with one click: `n_catalog` catalog photos (of different
    categories) and `n_phone` phone-style shots of other catalog products against a plain
    wall, on a cloth or on a tiled floor (`recsys.search.query_photos.example_photos`,
    generated once and cached under the data folder). Each: label, path, kind ("catalog" |
    "phone"), item_id (the product it shows). Empty when the catalog has no photos."""
    from recsys.core import config
    from recsys.search.query_photos import example_photos

    dataset = store.resolve_dataset(dataset)
    # a narrow read: a million-product catalog in seconds instead of a minute
    items = store.item_columns(dataset, ["image_path", "title", "base_colour", "article_type",
                                         "master_category"])
    folder = config.artifacts_dir(store.path, "examples", dataset, create=False)
    return example_photos(items, folder, n_catalog, n_phone)


def search_similar(store: Store, dataset: str | None = None, *,
                   photo: ImageSource | None = None, text: str | None = None,
                   item_id: str | None = None, image_weight: float | None = None, k: int = 10,
                   filters: Mapping[str, Sequence[str]] | None = None,
                   price: tuple[float | None, float | None] | None = None,
                   crop: bool = True, encoder: str | None = None, video: Any = None,
                   method: str = "auto", storage: str | None = None) -> SearchHits:
    """The `k` products most similar to a query; the one search of the app and the CLI.

    The query is a photo (a path, bytes or a PIL image), a catalog product (`item_id`: its own
    photo and text vectors), words (`text`), or a photo or a product refined with words.
    `image_weight` (0..1) weighs the products' photo vectors against their text vectors;
    None means `default_image_weight`. `filters` ({column: [values]}, as in the Catalog page,
    e.g. {"gender": ["Women"]}) and `price` ((low, high), either end None for open) restrict
    the candidates. Words alone are understood as on the Catalog page (`understood_search`:
    words naming a gender, colour or type of this catalog boost those products softly; a
    filter is the way to restrict them). `crop` (default on)
    finds the product in a photo (`recsys.encoders.crop.locate_product`, GrabCut) and searches
    with the whole photo's and the crop's vectors fused; a product shot or a catalog photo is
    never cropped (on Myntra the fused crop raised held-out phone-shot families' exact-item
    R@10 from 0.51 to 0.63 and left catalog photos at 1.00, see docs/encoders.md). A photo
    that is a catalog photo (same bytes, or a vector within `EXACT_COSINE`) is reported in
    `exact_match`; a photo with nothing close in the catalog says so in `close_match`.
    `encoder` picks the vectors (default: the newest ones an encoder made, never imported
    features). A short product
    video (`video`: a path, bytes or a file object; or video bytes / a video file given as
    `photo`, told apart by their content) is a photo query made of a few of its frames: their
    image vectors pooled (`recsys.data.video`; no crop, no exact match).
    `method` auto / exact / ann and `storage` float32 / float16 choose how the index answers
    (see docs/scale.md). Raises `SearchError` (or `recsys.data.images.ImageError` for an
    unreadable photo, `recsys.data.video.VideoError` for an unreadable video) with a clear
    message; `NoVectors` when the dataset has no vectors to search.
    """
    dataset = store.resolve_dataset(dataset)
    query = SimilarQuery.parse(photo=photo, video=video, text=text, item_id=item_id, k=k,
                               filters=filters, price=price, crop=crop)
    weight = check_weight(default_image_weight(query.by_look) if image_weight is None
                          else image_weight)
    method = check_method(method)
    index, enc, key = _searcher_keyed(store, dataset, encoder, storage)
    check_ann(index, method)
    notes: list[str] = []
    k = clamp(query.k, "k", len(index), MAX_RESULTS, "products with vectors", notes)
    spent: dict[str, float] = {}
    with _timed(spent, "decode"):
        whole, sized = decode_photo(query.photo, enc, query.crop) \
            if query.photo is not None else (None, None)
    cropped = preview = crop = nearest = exact = None
    with _timed(spent, "filter"):
        allowed = _allowed_mask(store, dataset, index, key, filters, price)
    try:
        with _timed(spent, "encode"):
            vectors = encode_query(enc, query, sized)
        if query.photo is not None:      # compared with the whole catalog, uncropped, photos only
            with _timed(spent, "exact_match"):
                nearest = index.search(image=vectors.whole_photo, k=min(len(index), max(
                    SAME_FILE_CANDIDATES, 10)), image_weight=1.0, method=method)
                exact = exact_match(store, dataset, index, query.photo, vectors.whole_photo,
                                    nearest, method)
        if query.crops_photo:            # never a catalog photo, never a product shot
            with _timed(spent, "crop"):
                product = product_crop(whole, catalog_photo=exact is not None)
                cropped = to_jpeg(product.image) if product.cropped else None
                preview, crop = crop_preview(whole, product)
            if cropped is not None:
                with _timed(spent, "encode"):
                    add_crop(enc, vectors, cropped)
        with _timed(spent, "rank"):
            if query.text and query.photo is None and query.video is None and \
                    query.item_id is None:      # words only: understood as the Catalog page does
                hits, _ = understood_search(store, dataset, index, query.text, vectors.text, k,
                                            weight, allowed, method)
            else:
                hits = rank_similar(index, query, vectors, weight, k, allowed, method)
    except KeyError as exc:
        raise SearchError(f"Product {item_id!r} is not in '{dataset}' or has no vectors "
                          f"({exc.args[0] if exc.args else exc}).") from None
    except ValueError as exc:
        raise SearchError(str(exc)) from None
    close = None
    if query.photo is not None and query.video is None:
        with _timed(spent, "close_match"):        # an unfiltered photo-only search's scores
            same = nearest if cropped is None else (
                hits if allowed is None and vectors.text is None and weight == 1.0 else None)
            close = _close_match(store, dataset, index, enc, key, vectors.look, same, method)
    with _timed(spent, "join"):
        results = _with_category(_joined(store, dataset, hits))
    order = ["encode", "filter", "rank", "join"]
    if query.photo is not None:
        order += ["exact_match", "decode"] + [n for n in ("crop", "close_match") if n in spent]
    return SearchHits(dataset, enc.spec, query.describe(weight), weight, len(index),
                      spent["decode"] + spent.get("crop", 0.0) + spent["encode"] + spent["rank"],
                      results, hits, exact, cropped, {name: spent[name] for name in order},
                      list(index.notes) + notes, preview, crop, close)


def _match_threshold(store: Store, dataset: str, index: ItemIndex, enc: Encoder, key: tuple):
    """The catalog's "close match" threshold for these vectors (`recsys.search.close_match`):
    calibrated once from the index's photo vectors and the catalog's article types, kept in a
    file beside the index and cached per process; None when it cannot be calibrated."""
    from recsys.core import config
    from recsys.core.files import path_part
    from recsys.search.close_match import (LABEL_COLUMNS, MAX_CALIBRATED_ITEMS,
                                           catalog_threshold, product_kinds)

    def build():
        if len(index) > MAX_CALIBRATED_ITEMS:        # not even the narrow read of the labels
            return None
        labels = product_kinds(store.item_columns(dataset, list(LABEL_COLUMNS)), index.item_ids)
        folder = config.artifacts_dir(store.path, "indexes", path_part(dataset),
                                      path_part(f"{enc.name}@{enc.version}"))
        token = f"{key[4]}:{store.items_version(dataset)}:{len(index)}"
        texts, validation = _type_names_and_unseen(store, dataset, index, enc, labels)
        return catalog_threshold(index, labels, folder, token, texts, validation)

    return cached("match", (*key[:5], store.items_version(dataset)), build)


def _type_names_and_unseen(store: Store, dataset: str, index: ItemIndex, enc: Encoder,
                           labels: list[str] | None):
    """(the catalog's type names through the encoder's text tower, a bool per index row: the
    photos the encoder never trained on) for the "no close match" decision; (None, None) for
    an encoder without a text tower or a catalog without types."""
    if labels is None or not hasattr(enc, "encode_texts"):
        return None, None
    from recsys.encoders.evaluate import heldout_rule_for
    from recsys.encoders.type_names import catalog_type_texts, type_names_folder

    try:       # kept beside the index when the catalog was embedded: no text tower run here
        texts = catalog_type_texts(enc, sorted({t for t in labels if t}),
                                   type_names_folder(store.path, dataset, enc.name, enc.version))
        splits = np.asarray(heldout_rule_for(store, dataset, enc).splits(list(index.item_ids)))
    except (NotImplementedError, ValueError):
        return None, None
    return texts, splits != "train"


def _close_match(store: Store, dataset: str, index: ItemIndex, enc: Encoder, key: tuple,
                 look: np.ndarray | None, hits: Hits | None, method: str
                 ) -> dict[str, Any] | None:
    """{"close", "score", "threshold"} of a photo query's search vector, or None. `hits`: an
    unfiltered photo-only search of `look` when there is one already."""
    from recsys.search.close_match import check_close_match

    threshold = _match_threshold(store, dataset, index, enc, key)
    found = check_close_match(index, look, threshold, hits, method)
    return None if found is None else found.to_dict()


@contextmanager
def _timed(spent: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to `spent[name]`."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0


def _joined(store: Store, dataset: str, result: Hits, items: pd.DataFrame | None = None
            ) -> pd.DataFrame:
    """Search results joined with their catalog rows (from `items`, else from the store)."""
    from recsys.search.facets import with_items

    rows = store.items(dataset, result.item_ids) if items is None else items
    return with_items(rows, result)


def _with_category(frame: pd.DataFrame) -> pd.DataFrame:
    from ..encoders.captions import item_category

    return frame.assign(category=[item_category(r) for r in frame.to_dict("records")])


def search_catalog(store: Store, dataset: str | None = None, *, query: str = "",
                   filters: Mapping[str, Sequence[str]] | None = None, keywords: str = "",
                   image_weight: float | None = None, k: int = 240,
                   items: pd.DataFrame | None = None, encoder: str | None = None,
                   method: str = "auto", storage: str | None = None,
                   understand: bool = True) -> CatalogPage:
    """The Catalog page: products matching facet `filters` and `keywords`; with a `query`,
    the best `k` of them ranked by meaning (the query's text vector against the products'
    photo and text vectors, weighted by `image_weight`, default `default_image_weight`).

    `items` are the catalog rows to browse (default: all items of the dataset; the app passes
    its cached copy). With a query the facet filters are the index's cached mask and the
    keywords a mask over the matching ids, both applied inside the search. With `understand`
    (default) the words that name a gender, colour or type of this catalog are soft boosts
    (`understood_search`; said in `understood`). Raises `NoVectors`
    when there is a query and the dataset has no vectors.
    """
    from recsys.search.facets import filter_items, keyword_mask

    dataset = store.resolve_dataset(dataset)
    query = (query or "").strip()
    if items is None and not query:
        rows, _ = store.browse_items(dataset, _valid_filters(store, filters), keywords,
                                     0, 10**12, KEYWORD_COLUMNS)
        return CatalogPage(dataset, rows, store.item_count(dataset))
    if not query:
        filtered = filter_items(items, filters, keywords)
        return CatalogPage(dataset, filtered.sort_values("item_id"), len(items))
    weight = check_weight(default_image_weight(False) if image_weight is None else image_weight)
    method = check_method(method)
    index, enc, key = _searcher_keyed(store, dataset, encoder, storage)
    check_ann(index, method)
    t0 = time.perf_counter()
    allowed = _allowed_mask(store, dataset, index, key, filters)
    if (keywords or "").strip():
        ids = items["item_id"][keyword_mask(items, keywords)] if items is not None else \
            store.matching_item_ids(dataset, None, keywords, KEYWORD_COLUMNS)
        matching = index.mask_for(ids)
        allowed = matching if allowed is None else allowed & matching
    candidates = len(index) if allowed is None else int(np.count_nonzero(allowed))
    notes: list[str] = []
    # fewer matches than k is the usual case of a filtered page: no note for that
    k = min(candidates, clamp(k, "k", MAX_RESULTS, MAX_RESULTS, notes=notes))
    result, understood = understood_search(store, dataset, index, query,
                                           enc.encode_text(query), k, weight, allowed, method,
                                           items, understand)
    shown = _joined(store, dataset, result, items)
    total = len(items) if items is not None else store.item_count(dataset)
    return CatalogPage(dataset, shown, total, True, time.perf_counter() - t0, enc.spec,
                       notes, understood)


def _valid_filters(store: Store, filters: Mapping[str, Sequence[str]] | None
                   ) -> dict[str, list[str]]:
    """The chosen facet values ({column: [values]}, empty choices dropped); a filter on a
    column the catalog does not have is a `SearchError` naming the ones it can use."""
    from recsys.search.facets import FACETS

    chosen = {str(c): [str(v) for v in vals] for c, vals in (filters or {}).items() if vals}
    unknown = sorted(c for c in chosen if c not in FACETS and c not in ("brand", "price"))
    if unknown:
        raise SearchError(f"Products cannot be filtered by {', '.join(map(repr, unknown))}; "
                          f"filter by one of: {', '.join(FACETS)}.")
    return chosen


def browse_catalog(store: Store, dataset: str | None = None, *,
                   filters: Mapping[str, Sequence[str]] | None = None, keywords: str = "",
                   page: int = 1, size: int = 24) -> CatalogPage:
    """One page of the Catalog page's products without a query: those matching the facet
    `filters` ({column: [values]}) and every word of `keywords` (in a title, description,
    brand, type, colour or id), ordered by item_id, `size` per page (page 1 first; a page
    past the end gives the last one). The database filters, counts and pages: only the
    shown rows are read, so a million-product catalog answers in well under a second.
    `matched` is the number of matches in all, `total` the catalog's size."""
    dataset = store.resolve_dataset(dataset)
    size = max(1, min(int(size), MAX_RESULTS))
    chosen = _valid_filters(store, filters)
    page = max(1, int(page))
    rows, matched = store.browse_items(dataset, chosen, keywords, (page - 1) * size, size,
                                       KEYWORD_COLUMNS)
    if rows.empty and matched:                       # past the end: the last page
        page = -(-matched // size)
        rows, matched = store.browse_items(dataset, chosen, keywords, (page - 1) * size, size,
                                           KEYWORD_COLUMNS)
    return CatalogPage(dataset, rows, store.item_count(dataset), matched=matched,
                       offset=(page - 1) * size)
