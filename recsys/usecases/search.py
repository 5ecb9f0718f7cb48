"""Use cases of search: products similar to a photo, to words or to a catalog product (Visual
search, `python -m recsys search`), and the Catalog page's search by meaning with filters.

Both rank with the dataset's search index (`recsys.search.item_index.ItemIndex`, a façade over
`recsys.search.vector_index.VectorIndex`: exact faiss search in float32 or float16, an approximate IVF
index used automatically above `vector_index.ANN_MIN_ITEMS` items, files kept beside the
database and updated incrementally), the query being encoded by the encoder that made the
vectors. Filters become one boolean mask over the index (`recsys.search.facets.FacetMasks`, cached
per index and catalog version) applied inside the search: no loop over item ids, ~10-30 ms at a
million items. The default weight of the products' photo vectors against their text vectors is
one rule, `default_image_weight`, for the app and the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.limits import MAX_RESULTS, as_int, clamp
from recsys.store import Store

from ._cache import cached, db_key, vectors_version
from .encoding import check_encoder_available

if TYPE_CHECKING:
    from recsys.data.images import ImageSource
    from recsys.search.facets import FacetMasks
    from recsys.search.item_index import ItemIndex

    from ..encoders import Encoder

PHOTO_WEIGHT = 1.0
"""Default image weight for a photo query: rank by look alone, so an identical product photo
always comes first (a photo compared with product texts gives cross-modal cosines on a lower
scale, which would only blur the ranking)."""

MIXED_WEIGHT = 0.7
"""Default image weight otherwise: a catalog product (which brings its own photo and text) or
words alone are matched on both the products' photos and their texts, photos first."""

RESULT_COLUMNS = ("rank", "item_id", "score", "image_score", "text_score", "title", "category",
                  "image_path")

EXACT_COSINE = 0.985
"""A photo whose vector is this close to a catalog photo's is that photo ("exact match"): a
resized or re-compressed copy of a catalog photo scores 0.93-0.99, two different products of
one style up to 0.96 on Myntra, so below this the badge would also go to look-alikes."""

METHODS = ("auto", "exact", "ann")
"""How a search ranks: `auto` (the approximate index above `vector_index.ANN_MIN_ITEMS`
candidates, else exact), `exact` (every candidate scored) or `ann` (the approximate index; only
catalogs that have one)."""

STORAGES = ("float32", "float16")
"""How the index stores the vectors: float32, or float16 (half the memory and exact-search
time, recall@10 against float32 0.99-1.0). Default: $RECSYS_INDEX_STORAGE, else float32."""


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
    """Products most similar to a query, best first.

    `results` has one row per product: rank, item_id, score (the weighted combination),
    image_score / text_score (the query against the product's photo / text vector, NaN when it
    has none), category, and the product's catalog columns. `seconds` is the time to decode
    and encode the query and rank (models already loaded). `exact_match`: for a photo query
    that is a catalog photo, {"item_id", "how": "same file" | "same look", "similarity"},
    else None. `query_photo`: the JPEG that was encoded when the photo was cropped to the
    product. `timings` splits a search into encode, filter (the facet mask), rank and join
    (reading the hits' catalog rows), and for a photo decode (in the decoding worker) and
    exact_match, in seconds; `method`
    says whether the exact or the approximate index answered.
    """

    dataset: str
    encoder: str
    query: dict[str, Any]
    image_weight: float
    items: int
    seconds: float
    results: pd.DataFrame = field(repr=False)
    exact_match: dict[str, Any] | None = None
    query_photo: bytes | None = field(default=None, repr=False)
    method: str = "exact"
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the user should know besides the results (the index's files could not be saved:
    the search answered from memory)."""

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
                "results": self.rows()}


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


def _storage(storage: str | None) -> str:
    from recsys.search.item_index import default_storage

    storage = default_storage() if storage is None else str(storage)
    if storage not in STORAGES:
        raise SearchError(f"Unknown index storage {storage!r}; use one of "
                          f"{', '.join(STORAGES)}.")
    return storage


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
    from recsys.search.item_index import ItemIndex
    from recsys.vectors.modalities import searchable_encoder

    storage = _storage(storage)
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
    """Load what searching `dataset` needs (index and query encoder, cached per process) so the
    first query is fast; raises `NoVectors` when the dataset has no item vectors. `storage`:
    float32 or float16 (default $RECSYS_INDEX_STORAGE, else float32)."""
    from recsys.core import sandbox

    dataset = store.resolve_dataset(dataset)
    sandbox.start()                 # the worker that decodes uploads, ready for the first one
    index, enc = _searcher(store, dataset, encoder, storage)
    vectors = index.vectors
    return SearchInfo(dataset, enc.spec, len(index), vectors.storage, vectors.ann is not None,
                      vectors.ann_min_items, index.notes)


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
    facet of `catalog.FACETS`), read narrowly (the facet and price columns only, not the whole
    catalog: a million-product catalog costs a fraction of a second, once per catalog
    version)."""
    from recsys.search.facets import FACETS, available_facets, facet_values

    dataset = store.resolve_dataset(dataset)
    wanted = tuple(FACETS if columns is None else (c for c in columns if c in FACETS))

    def build() -> SearchFacets:
        frame = store.item_columns(dataset, [*wanted, "price"])
        labels = available_facets(frame)
        facets = {c: (labels[c], facet_values(frame, c)) for c in wanted if c in labels}
        price = None
        if "price" in frame:
            prices = pd.to_numeric(frame["price"], errors="coerce").dropna()
            prices = prices[np.isfinite(prices)]
            if len(prices) and prices.max() > prices.min():
                price = (float(prices.min()), float(prices.max()))
        return SearchFacets(facets, price)

    return cached("search_facets", (db_key(store), dataset, store.items_version(dataset),
                                    wanted), build)


def _facets(store: Store, dataset: str, index: ItemIndex, index_key: tuple,
            columns: Sequence[str]) -> FacetMasks:
    """The catalog's facet columns as codes aligned with the index (`catalog.FacetMasks`),
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
    price = _price_range(price)
    if not chosen and price is None:
        return None
    facets = _facets(store, dataset, index, index_key, list(chosen))
    unknown = sorted(set(chosen) - set(facets.columns))
    if unknown:
        raise SearchError(f"Products cannot be filtered by {', '.join(map(repr, unknown))}; "
                          f"filter by one of: {', '.join(facets.columns)}.")
    return facets.mask(chosen, price)


def _price_range(price: tuple[float | None, float | None] | None
                 ) -> tuple[float, float] | None:
    """A (low, high) price filter with open ends filled in; None when nothing is asked."""
    if price is None or (price[0] is None and price[1] is None):
        return None
    low = float("-inf") if price[0] is None else float(price[0])
    high = float("inf") if price[1] is None else float(price[1])
    if low != low or high != high or low > high:
        raise SearchError(f"The price range must go from low to high, got {price[0]} to "
                          f"{price[1]}.")
    return low, high


EXACT_CANDIDATES = 5
"""How many of the photo's nearest catalog photos are compared byte for byte with it: a copy
of a catalog photo is its own nearest neighbour (cosine ~1), so its file is among these."""


def _same_file(store: Store, dataset: str, data: bytes, item_ids: Sequence[str]) -> str | None:
    """The product among `item_ids` whose photo file has exactly these bytes (a size check
    first, then a digest: a handful of files read, whatever the catalog's size)."""
    from recsys.search.query_photos import photo_digest

    digest = None
    rows = store.items(dataset, list(item_ids))
    paths = dict(zip(rows["item_id"].astype(str), rows["image_path"]))
    for item_id in item_ids:
        path = paths.get(str(item_id))
        if not isinstance(path, str) or not path:
            continue
        try:
            if Path(path).stat().st_size != len(data):
                continue
            digest = digest or photo_digest(data)
            if photo_digest(Path(path).read_bytes()) == digest:
                return str(item_id)
        except OSError:
            continue
    return None


def _exact_match(store: Store, dataset: str, photo: Any, result) -> dict[str, Any] | None:
    """The catalog product a photo query is a copy of: same bytes as one of its nearest
    catalog photos (`result`: a photo-only search of the uncropped photo), or a vector within
    `EXACT_COSINE` of its photo's."""
    records = result.to_records()
    data = None
    if isinstance(photo, (bytes, bytearray)):
        data = bytes(photo)
    elif isinstance(photo, (str, Path)) and Path(photo).is_file():
        data = Path(photo).read_bytes()
    if data is not None and records:
        item = _same_file(store, dataset, data,
                          [str(r["item_id"]) for r in records[:EXACT_CANDIDATES]])
        if item is not None:
            return {"item_id": item, "how": "same file", "similarity": 1.0}
    if records:
        top = records[0]
        sim = top.get("image_score")
        if sim is not None and sim == sim and float(sim) >= EXACT_COSINE:
            return {"item_id": str(top["item_id"]), "how": "same look",
                    "similarity": float(sim)}
    return None


def _decoded(photo: Any, enc: Encoder, crop: bool) -> tuple[Any, Any]:
    """The query photo decoded once (`images.load_images`): the whole photo to crop (None
    without `crop`) and the photo at the encoder's input size to embed, exactly as the
    encoder would decode it. A photo given as bytes, a file or a path is untrusted: it is
    decoded by a worker process under the photo budget (`recsys.core.sandbox`)."""
    if hasattr(photo, "convert"):                      # a PIL image, already decoded
        return photo, photo
    from recsys.data.images import load_images

    size = getattr(enc, "image_size", None)
    images = load_images(photo, ([None] if crop else []) + [size], trusted=False)
    return (images[0] if crop else None), images[-1]


def _trusted(jpeg: bytes, enc: Encoder) -> Any:
    """Our own JPEG of the cropped photo, decoded here as the encoder would decode it."""
    from recsys.data.images import load_image

    return load_image(jpeg, getattr(enc, "image_size", None), trusted=True)


def _cropped(photo: Any) -> bytes:
    """The photo cropped to the product (`recsys.encoders.crop_to_product`), as JPEG."""
    import io

    from recsys.data.images import load_image

    from ..encoders import crop_to_product

    image = photo if hasattr(photo, "convert") else load_image(photo)
    buf = io.BytesIO()
    crop_to_product(image).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def example_queries(store: Store, dataset: str | None = None, n_catalog: int = 3,
                    n_phone: int = 3) -> list[dict[str, Any]]:
    """Photos a visitor can try with one click: `n_catalog` catalog photos (of different
    categories) and `n_phone` phone-style shots of other catalog products against a plain wall,
    on a cloth or on a tiled floor (`recsys.search.query_photos.phone_shot`, generated once and cached under the data folder).
    Each: label, path, kind ("catalog" | "phone"), item_id (the product it shows). Empty when
    the catalog has no photos."""
    from recsys.core import config
    from recsys.search.facets import item_label
    from recsys.search.query_photos import SURFACES, cached_phone_shot, stands_out

    dataset = store.resolve_dataset(dataset)
    # a narrow read (a million-product catalog: seconds instead of a minute), and a file check
    # only for the few candidates looked at, not one `stat` per product
    items = store.item_columns(dataset, ["image_path", "title", "base_colour", "article_type",
                                         "master_category"])
    items = items[items["image_path"].notna() & items["image_path"].astype(str).ne("")]
    if items.empty:
        return []
    group = next((c for c in ("article_type", "master_category") if c in items
                  and items[c].notna().any()), None)
    items = items.sort_values("item_id")
    groups = [items[items[group] == v] for v in items[group].value_counts().index] \
        if group is not None else [items]
    picks: list[pd.Series] = []
    used: set[str] = set()

    def first_fit(rows: pd.DataFrame, phone: bool) -> pd.Series | None:
        """A product of the group not used yet whose photo is there; for a phone shot one that
        cuts out cleanly."""
        for _, row in rows.head(24).iterrows():
            if row["item_id"] in used or not Path(row["image_path"]).is_file():
                continue
            if not phone or stands_out(row["image_path"]):
                return row
        return None

    for _ in range(3):                 # one product of each of the commonest groups, again
        for rows in groups:            # from the top when the catalog has few groups
            if len(picks) == n_catalog + n_phone:
                break
            row = first_fit(rows, phone=len(picks) >= n_catalog)
            if row is not None:
                picks.append(row)
                used.add(row["item_id"])
    folder = config.artifacts_dir(store.path, "examples", dataset)
    out = []
    for n, row in enumerate(picks):
        label = item_label(row)
        if n < n_catalog:
            out.append({"label": label, "path": str(row["image_path"]), "kind": "catalog",
                        "item_id": str(row["item_id"])})
        else:
            shot = cached_phone_shot(folder, str(row["item_id"]), row["image_path"], n)
            surface = list(SURFACES)[n % len(SURFACES)]
            out.append({"label": f"{label}, phone photo {SURFACES[surface]}",
                        "path": str(shot), "kind": "phone", "item_id": str(row["item_id"])})
    return out


def _query_label(photo: Any) -> str | None:
    if photo is None:
        return None
    if isinstance(photo, _VideoQuery):
        return str(photo.source) if isinstance(photo.source, (str, Path)) else "uploaded video"
    return str(photo) if isinstance(photo, (str, Path)) else "uploaded photo"


@dataclass(frozen=True)
class _VideoQuery:
    """A video given as the query (searched like a photo: its frames' pooled vector)."""

    source: Any


def _is_video(photo: Any) -> bool:
    """Video bytes or a video file given where a photo is expected."""
    from recsys.data.video import is_video_file, looks_like_video

    if isinstance(photo, (bytes, bytearray, memoryview)):
        return looks_like_video(bytes(photo[:16]))
    if isinstance(photo, (str, Path)):
        return is_video_file(photo)
    return False


def _method(method: str | None) -> str:
    method = "auto" if method is None else str(method)
    if method not in METHODS:
        raise SearchError(f"Unknown search method {method!r}; use one of {', '.join(METHODS)}.")
    return method


def _check_ann(index: ItemIndex, method: str) -> None:
    if method == "ann" and index.vectors.ann is None:
        raise SearchError(
            f"This catalog has no approximate index: it is built above "
            f"{index.vectors.ann_min_items:,} products and this one has {len(index):,}, where "
            "exact search is already fast. Search without --ann (or with --exact).")


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
    the candidates: filters, not words, are the way to say "for women". `crop` (default on)
    first crops a photo to the product (`recsys.encoders.crop_to_product`: a border-colour crop
    that leaves studio photos untouched; on Myntra it raised phone-shot exact-item R@10 from
    0.62 to 0.80, see docs/encoders.md). A photo that is a catalog photo (same bytes, or a
    vector within `EXACT_COSINE`) is reported in `exact_match`. `encoder` picks the vectors
    (default: the newest ones an encoder made, never imported features). A short product
    video (`video`: a path, bytes or a file object; or video bytes / a video file given as
    `photo`, told apart by their content) is a photo query made of a few of its frames: their
    image vectors pooled (`recsys.data.video`; no crop, no exact match).
    `method` auto / exact / ann and `storage` float32 / float16 choose how the index answers
    (see docs/scale.md). Raises `SearchError` (or `recsys.data.images.ImageError` for an unreadable photo,
    `recsys.data.video.VideoError` for an unreadable video) with a clear message; `NoVectors` when
    the dataset has no vectors to search.
    """
    dataset = store.resolve_dataset(dataset)
    if photo is not None and video is None and _is_video(photo):
        photo, video = None, photo
    if video is not None:
        if photo is not None:
            raise SearchError("Search by a photo or by a video, not both.")
        photo = _VideoQuery(video)
    text = (text or "").strip() or None
    if photo is None and item_id is None and text is None:
        raise SearchError("Give a query: a photo, a catalog product, words, or a photo or "
                          "product with words.")
    if photo is not None and item_id is not None:
        raise SearchError("Search by a photo or by a catalog product, not both.")
    k = as_int(k, "k")
    if k < 1:
        raise SearchError("The number of results must be at least 1.")
    weight = default_image_weight(photo is not None) if image_weight is None \
        else float(image_weight)
    if not 0.0 <= weight <= 1.0:
        raise SearchError("The image weight must be between 0 and 1.")
    method = _method(method)
    index, enc, key = _searcher_keyed(store, dataset, encoder, storage)
    _check_ann(index, method)
    notes: list[str] = []
    k = clamp(k, "k", len(index), MAX_RESULTS, "products with vectors", notes)
    still = photo is not None and not isinstance(photo, _VideoQuery)
    t0 = time.perf_counter()
    whole, sized = _decoded(photo, enc, crop) if still else (None, None)
    t_decode = time.perf_counter() - t0
    encoded = _cropped(whole) if crop and still else None
    t0 = time.perf_counter()
    allowed = _allowed_mask(store, dataset, index, key, filters, price)
    t_filter = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        words = enc.encode_text(text) if text else None
        look = query_look = None
        if isinstance(photo, _VideoQuery):
            from recsys.data.video import encode_video
            look = encode_video(enc, photo.source)
            query_look = look
        elif photo is not None:
            look = enc.encode_image(sized)
            query_look = look if encoded is None else \
                enc.encode_image(_trusted(encoded, enc))
        if item_id is not None and index.position(str(item_id)) is None:
            raise KeyError(f"item {item_id!r} is not in the index")
        t_encode = time.perf_counter() - t0
        t0 = time.perf_counter()
        if photo is not None or item_id is None:
            result = index.search(image=query_look, text=words, k=k,
                                  image_weight=weight, allowed_mask=allowed, method=method)
        elif words is None:
            result = index.similar(str(item_id), k=k, image_weight=weight,
                                   allowed_mask=allowed, method=method)
        else:           # the product's own photo vector, refined with words
            result = index.search(image=index.vector(str(item_id), "image"), text=words, k=k,
                                  image_weight=weight, exclude={str(item_id)},
                                  allowed_mask=allowed, method=method)
        t_rank = time.perf_counter() - t0
    except KeyError as exc:
        raise SearchError(f"Product {item_id!r} is not in '{dataset}' or has no vectors "
                          f"({exc.args[0] if exc.args else exc}).") from None
    except ValueError as exc:
        raise SearchError(str(exc)) from None
    t0 = time.perf_counter()
    exact = None
    if still:                    # compared with the whole catalog, uncropped, photos only
        plain = encoded is None and allowed is None and words is None and weight == 1.0
        exact = _exact_match(store, dataset, photo, result if plain else
                             index.search(image=look, k=EXACT_CANDIDATES, image_weight=1.0,
                                          method=method))
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = _with_category(_joined(store, dataset, result))
    t_join = time.perf_counter() - t0
    query = {"image": _query_label(photo), "text": text, "item_id": item_id,
             "image_weight": weight, "filters": {c: list(v) for c, v in (filters or {}).items()
                                                 if v},
             "price": None if _price_range(price) is None else list(price),
             "crop": bool(crop) and not isinstance(photo, _VideoQuery)}
    timings = {"encode": t_encode, "filter": t_filter, "rank": t_rank, "join": t_join}
    if still:
        timings["exact_match"] = t_exact
        timings["decode"] = t_decode
    return SearchHits(dataset, enc.spec, query, weight, len(index), t_decode + t_encode + t_rank,
                      results, exact, encoded, result.method, timings,
                      list(index.notes) + notes)


def _joined(store: Store, dataset: str, result, items: pd.DataFrame | None = None
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
                   method: str = "auto", storage: str | None = None) -> CatalogPage:
    """The Catalog page: products matching facet `filters` and `keywords`; with a `query`,
    the best `k` of them ranked by meaning (the query's text vector against the products'
    photo and text vectors, weighted by `image_weight`, default `default_image_weight`).

    `items` are the catalog rows to browse (default: all items of the dataset; the app passes
    its cached copy). With a query the facet filters are the index's cached mask and the
    keywords a mask over the matching ids, both applied inside the search. Raises `NoVectors`
    when there is a query and the dataset has no vectors.
    """
    from recsys.search.facets import filter_items, keyword_mask

    dataset = store.resolve_dataset(dataset)
    items = store.items(dataset) if items is None else items
    query = (query or "").strip()
    if not query:
        filtered = filter_items(items, filters, keywords)
        return CatalogPage(dataset, filtered.sort_values("item_id"), len(items))
    weight = default_image_weight(False) if image_weight is None else float(image_weight)
    if not 0.0 <= weight <= 1.0:
        raise SearchError("The image weight must be between 0 and 1.")
    method = _method(method)
    index, enc, key = _searcher_keyed(store, dataset, encoder, storage)
    _check_ann(index, method)
    t0 = time.perf_counter()
    allowed = _allowed_mask(store, dataset, index, key, filters)
    if (keywords or "").strip():
        matching = index.mask_for(items["item_id"][keyword_mask(items, keywords)])
        allowed = matching if allowed is None else allowed & matching
    candidates = len(index) if allowed is None else int(np.count_nonzero(allowed))
    notes: list[str] = []
    # fewer matches than k is the usual case of a filtered page: no note for that
    k = min(candidates, clamp(k, "k", MAX_RESULTS, MAX_RESULTS, notes=notes))
    result = index.search(text=enc.encode_text(query), k=k,
                          image_weight=weight, allowed_mask=allowed, method=method)
    shown = _joined(store, dataset, result, items)
    return CatalogPage(dataset, shown, len(items), True, time.perf_counter() - t0, enc.spec,
                       notes)
