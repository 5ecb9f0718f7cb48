"""Use cases of the encoders: align the catalog CLIP encoder, embed the items, score an encoder,
list what is registered.

The heavy parts (torch, open_clip) are imported inside the functions, when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from recsys.core.errors import RecsysError
from recsys.core.limits import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_QUERIES,
    MAX_WORKERS,
    as_int,
    check_range,
    check_seed,
)
from recsys.core.paths import PathPolicy, policy_or_any
from recsys.core.progress import ProgressCallback
from recsys.store import Store

if TYPE_CHECKING:
    from recsys.vectors.embed import EmbedReport

    from ..encoders import (
        EncoderEvaluation,
        EncoderInfo,
        PhoneShotEvaluation,
        UnseenTypesEvaluation,
    )


def check_encoder_available(spec: str | None) -> None:
    """Fail fast (well under 2 s) when an OpenCLIP encoder's weights are missing, before any
    heavy import; other specs are checked when the encoder loads."""
    from ..encoders import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == "openclip" and not parsed.version:
        from ..encoders.openclip_pretrained import resolve
        resolve(parsed)


def embed(store: Store, dataset: str | None = None, encoder: str | None = None, *,
          align: bool = False, force: bool = False, batch_size: int = 64,
          progress: ProgressCallback | None = None,
          videos: str | Path | None = None, engine: str = "local",
          ray_address: str | None = None, workers: int | None = None,
          path_policy: PathPolicy | None = None) -> EmbedReport:
    """Embed the photos, captions and videos of the dataset's new or changed items.

    `encoder`: a spec (default: the dataset's newest catalog-clip checkpoint; for a catalog
    without photos, the pretrained text tower). With `align` (and no `encoder`), first align
    catalog-clip on the catalog when the dataset has no checkpoint yet: the one call that
    makes a catalog searchable (the app's "align and embed" button, the Train page, first
    start). `force` re-embeds every item. `videos`: a folder of product videos named by item
    id (`<item_id>.mp4`, `.webm`...), besides those the catalog's `video` column names.
    `engine="ray"`: the same photo and caption work as a Ray Data pipeline
    (`recsys.vectors.embed_ray`) on local Ray or the cluster at `ray_address`, with `workers`
    encoder actors (default: every CPU); resumable, returns a `RayEmbedReport` (throughput per
    worker). Videos are embedded by the local engine only; a video file that is a link out of
    the folder is reported, not read. `path_policy`: the folders `videos` may lie in
    (`PathNotAllowed` otherwise); None: any path.
    """
    from recsys.vectors.embed import embed_items, ensure_item_vectors
    from recsys.vectors.embed_plan import ENGINES

    if videos is not None:
        videos = policy_or_any(path_policy).check(videos, "The videos folder")
    dataset = store.resolve_dataset(dataset)
    # the upper bounds here; workers below 1 is the Ray engine's own message
    batch_size = as_int(batch_size, "batch size")
    if batch_size < 1:
        raise RecsysError("--batch-size must be at least 1.")
    if batch_size > MAX_BATCH:
        check_range(batch_size, "batch size", 1, MAX_BATCH, "photos embedded at once")
    if workers is not None and as_int(workers, "workers") > MAX_WORKERS:
        check_range(workers, "workers", 1, MAX_WORKERS)
    if engine not in ENGINES:
        raise RecsysError(f"Unknown embedding engine {engine!r}: use {' or '.join(ENGINES)}.")
    if engine == "ray":
        if videos is not None:
            raise RecsysError("Videos are embedded by the local engine only: embed them without "
                              "--engine ray (photos and texts already embedded are kept).")
        from recsys.vectors.embed import TEXT_ONLY_ENCODER, default_encoder
        if encoder is None and default_encoder(store, dataset) == TEXT_ONLY_ENCODER:
            encoder = TEXT_ONLY_ENCODER          # no photos: the pretrained text tower
        check_encoder_available(encoder)
        from recsys.vectors.embed_ray import embed_items_ray
        return embed_items_ray(store, dataset, encoder, address=ray_address, workers=workers,
                               batch_size=batch_size, force=force, align=align,
                               progress=progress)
    if ray_address is not None or workers is not None:
        raise RecsysError("--ray-address and --workers apply to the Ray engine: add "
                          "--engine ray.")
    if align and encoder is None and not force:
        rep = ensure_item_vectors(store, dataset, progress=progress)
        if videos is not None:
            more = embed_items(store, dataset, rep.spec, videos=videos)
            for part in ("embedded", "unchanged", "removed"):
                getattr(rep, part).update({k: v for k, v in getattr(more, part).items()
                                           if k == "video"})
            rep.failed_videos.update(more.failed_videos)
        return rep
    check_encoder_available(encoder)
    return embed_items(store, dataset, encoder, progress=progress, batch_size=batch_size,
                       force=force, videos=videos)


def train_encoder(store: Store, dataset: str | None = None,
                  settings: dict[str, Any] | None = None,
                  progress: ProgressCallback | None = None) -> EncoderInfo:
    """Align catalog-clip on the dataset's photo-text pairs; saves and registers a checkpoint.

    `settings` override fields of `CatalogClipConfig` (epochs, image_trainable, batch_size,
    max_items, seed, lr_head...); unknown names are a clear error. Without `augment_views`,
    a catalog with fewer than `AUGMENT_MIN_PHOTOS` training photos aligns without views.
    """
    from ..encoders import CatalogClipConfig, train_catalog_clip

    dataset = store.resolve_dataset(dataset)
    settings = _checked_settings(settings)
    CatalogClipConfig.from_dict(settings)           # unknown names: an error before any work
    # settings, not a whole config: the defaults that depend on the catalog's size apply
    # (no phone-style views on a small catalog unless `augment_views` is set)
    return train_catalog_clip(store, dataset, settings, progress)


def _checked_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Alignment settings with their sizes in range (epochs, batch size, items, seed): a
    billion epochs would run for ever, a billion-pair batch allocate before failing."""
    out = dict(settings or {})
    for name, low, high in (("epochs", 1, MAX_EPOCHS), ("batch_size", 2, MAX_BATCH),
                            ("max_items", 8, 10**9)):
        if out.get(name) is not None:
            out[name] = check_range(out[name], name, low, high)
    if out.get("seed") is not None:
        out["seed"] = check_seed(out["seed"])
    return out


def _baseline(baseline: str | None) -> str | None:
    """"none" or "" mean no baseline."""
    return None if baseline is None or baseline.strip().lower() in ("", "none") else baseline


def eval_encoder(store: Store, dataset: str | None = None, encoder: str | None = None,
                 baseline: str | None = "conse",
                 progress: ProgressCallback | None = None) -> EncoderEvaluation:
    """Score an encoder on the held-out 20% of the catalog (retrieval, category from the names
    of types seen in alignment: in-distribution, photo-to-photo), next to `baseline` (default
    the untrained ConSE encoder; None or "none": no baseline)."""
    check_encoder_available(encoder)
    from ..encoders import evaluate_encoder

    dataset = store.resolve_dataset(dataset)
    return evaluate_encoder(store, dataset, encoder, baseline=_baseline(baseline),
                            progress=progress)


def eval_encoder_unseen_types(store: Store, dataset: str | None = None, k: int = 10,
                              seed: int = 0, settings: dict[str, Any] | None = None,
                              baseline: str | None = "conse",
                              progress: ProgressCallback | None = None
                              ) -> UnseenTypesEvaluation:
    """Generalisation to article types never seen in alignment: hold out `k` whole types
    (drawn with `seed` among those with enough photos), align catalog-clip on the rest
    (`settings`: CatalogClipConfig fields), then report weighted F1 among the unseen names and
    against all types, and name -> photo recall for seen vs unseen types, next to `baseline`."""
    from ..encoders import evaluate_unseen_types

    if as_int(k, "k") < 1:
        raise RecsysError("Hold out at least 1 article type.")
    k, seed = as_int(k, "k"), check_seed(seed)
    dataset = store.resolve_dataset(dataset)
    return evaluate_unseen_types(store, dataset, k, seed, _checked_settings(settings),
                                 baseline=_baseline(baseline), progress=progress)


def eval_encoder_phone_shots(store: Store, dataset: str | None = None,
                             encoder: str | None = None, n: int = 500, seed: int = 0,
                             progress: ProgressCallback | None = None,
                             families: Sequence[str] | None = None) -> PhoneShotEvaluation:
    """`n` held-out catalog photos per phone-shot family (`families`, default all five of
    `recsys.encoders.phone_families`) searched among the catalog photos: exact-item
    recall@1/@10 and same-type precision@10, for the studio photo, the phone shot as it is and
    fused with its product crop. An aligned catalog-clip is re-aligned once per family without
    that family's augmented views and scores only that family (leave one family out), beside
    the same settings without augmentation and the untrained ConSE baseline; the metrics hold
    each family (`family:<name>:...`) and their mean."""
    check_encoder_available(encoder)
    from ..encoders import evaluate_phone_shots
    from ..encoders.phone_families import check_families

    if as_int(n, "n") < 1:
        raise RecsysError("Use at least 1 phone-style query.")
    n = check_range(n, "phone-style queries", 1, MAX_QUERIES)
    seed = check_seed(seed)
    dataset = store.resolve_dataset(dataset)
    if families is not None:
        try:
            families = check_families(list(dict.fromkeys(families)))
        except ValueError as exc:
            raise RecsysError(f"{str(exc).capitalize()}.") from None
    return evaluate_phone_shots(store, dataset, encoder, n, seed, progress=progress,
                                families=families)


def list_encoders(store: Store) -> dict[str, Any]:
    """Registered encoders (newest first, without their configs) and, per dataset, the item
    vectors stored: {"encoders": [records], "vectors": {dataset: [records]}}."""
    frame = store.encoders()
    return {"encoders": frame.drop(columns=["config"]).to_dict("records"),
            "vectors": {name: store.embedding_sets(name).to_dict("records")
                        for name in store.dataset_names()}}

