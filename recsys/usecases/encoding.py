"""Use cases of the encoders: align the catalog CLIP encoder, embed the items, score an encoder,
list what is registered.

The heavy parts (torch, open_clip) are imported inside the functions, when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..progress import ProgressCallback
from ..store import Store

if TYPE_CHECKING:
    from ..embedding import EmbedReport
    from ..encoders import EncoderEvaluation, EncoderInfo


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
          progress: ProgressCallback | None = None) -> EmbedReport:
    """Embed the photos and captions of the dataset's new or changed items.

    `encoder`: a spec (default: the dataset's newest catalog-clip checkpoint). With `align`
    (and no `encoder`), first align catalog-clip on the catalog when the dataset has no
    checkpoint yet: the one call that makes a catalog searchable (the app's "align and embed"
    button, the Train page, first start). `force` re-embeds every item.
    """
    from ..embedding import embed_items, ensure_item_vectors

    dataset = store.resolve_dataset(dataset)
    if align and encoder is None and not force:
        return ensure_item_vectors(store, dataset, progress=progress)
    check_encoder_available(encoder)
    return embed_items(store, dataset, encoder, progress=progress, batch_size=batch_size,
                       force=force)


def train_encoder(store: Store, dataset: str | None = None,
                  settings: dict[str, Any] | None = None,
                  progress: ProgressCallback | None = None) -> EncoderInfo:
    """Align catalog-clip on the dataset's photo-text pairs; saves and registers a checkpoint.

    `settings` override fields of `CatalogClipConfig` (epochs, image_trainable, batch_size,
    max_items, seed, lr_head...); unknown names are a clear error.
    """
    from ..encoders import CatalogClipConfig, train_catalog_clip

    dataset = store.resolve_dataset(dataset)
    config = CatalogClipConfig.from_dict({**CatalogClipConfig().to_dict(), **(settings or {})})
    return train_catalog_clip(store, dataset, config, progress)


def eval_encoder(store: Store, dataset: str | None = None, encoder: str | None = None,
                 baseline: str | None = "frozen",
                 progress: ProgressCallback | None = None) -> EncoderEvaluation:
    """Score an encoder on the held-out 20% of the catalog (retrieval, zero-shot category,
    photo-to-photo), next to `baseline` (None or "none": no baseline)."""
    check_encoder_available(encoder)
    from ..encoders import evaluate_encoder

    dataset = store.resolve_dataset(dataset)
    if baseline is not None and baseline.strip().lower() in ("", "none"):
        baseline = None
    return evaluate_encoder(store, dataset, encoder, baseline=baseline, progress=progress)


def list_encoders(store: Store) -> dict[str, Any]:
    """Registered encoders (newest first, without their configs) and, per dataset, the item
    vectors stored: {"encoders": [records], "vectors": {dataset: [records]}}."""
    frame = store.encoders()
    return {"encoders": frame.drop(columns=["config"]).to_dict("records"),
            "vectors": {name: store.embedding_sets(name).to_dict("records")
                        for name in store.dataset_names()}}

