"""What an embedding run does, whichever engine runs it: the in-process one
(`recsys.vectors.embed`) and the Ray Data pipeline (`recsys.vectors.embed_ray`) share it.

* `encoder_identity`: the (name, version) an encoder spec stores its vectors under, known from
  the registry without loading weights where possible (`known_identity`);
* `items_to_embed`: the incremental rule: per modality, the items without a vector of this
  encoder version or whose `content_hash` changed since (all of them with `force`);
* `remove_stale`: vectors of items no longer in the catalog go;
* `remember_encoder`: a non-catalog encoder is recorded in the registry the first time it is
  used, so search can rebuild it;
* `EmbedReport`: what a run did (the Ray engine's report extends it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from recsys.encoders.base import Encoder, EncoderError
from recsys.encoders.registry import get_encoder, parse_spec
from recsys.store import Store

ENGINES = ("local", "ray")
"""The engines that embed: "local" (in this process) and "ray" (a Ray Data pipeline)."""
MODALITIES = ("image", "text")


def _skipped(failed: dict[str, str], what: str) -> list[str]:
    """The report line for files that could not be read (a few examples), or none."""
    if not failed:
        return []
    examples = "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:3])
    return [f"  {len(failed):,} {what} could not be read and were skipped (e.g. {examples})."]


@dataclass
class EmbedReport:
    """What an embedding run did: vectors embedded, unchanged and removed per modality, items
    without a photo, files that could not be read, the time it took."""

    dataset: str
    encoder: str
    version: str
    items: int = 0
    embedded: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    removed: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    without_photo: int = 0
    failed: dict[str, str] = field(default_factory=dict)    # item_id -> reason
    failed_videos: dict[str, str] = field(default_factory=dict)    # item_id -> reason
    seconds: float = 0.0
    trained: str | None = None      # encoder spec trained first (ensure_item_vectors only)
    # of `embedded`: vectors made from the alignment's cached tower outputs (heads only)
    reused: dict[str, int] = field(default_factory=dict)

    @property
    def nothing_to_do(self) -> bool:
        """True if no vector was written or removed (everything was up to date)."""
        return not (any(self.embedded.values()) or any(self.removed.values()) or self.trained)

    @property
    def spec(self) -> str:
        return f"{self.encoder}@{self.version}"

    def summary(self) -> str:
        e, u = self.embedded, self.unchanged
        lines = [f"Trained {self.trained} first."] if self.trained else []
        lines += [f"Embedded '{self.dataset}' with {self.spec} in {self.seconds:.1f} s: "
                 f"{e['image']:,} photos and {e['text']:,} texts new or changed; "
                 f"{u['image']:,} photos and {u['text']:,} texts unchanged."]
        if self.reused.get("image"):
            lines.append(f"  {self.reused['image']:,} of the photos were encoded once, by the "
                         "alignment just before (its tower outputs reused).")
        if self.without_photo:
            lines.append(f"  {self.without_photo:,} items have no photo (text vector only).")
        if any(self.removed.values()):
            lines.append(f"  Removed vectors of {max(self.removed.values()):,} items no longer "
                         "in the catalog.")
        lines += _skipped(self.failed, "photos")
        if "video" in e:
            lines.append(f"  Videos: {e['video']:,} new or changed, {u.get('video', 0):,} "
                         "unchanged.")
        lines += _skipped(self.failed_videos, "videos")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec, "nothing_to_do": self.nothing_to_do}


# -- the plan -----------------------------------------------------------------------------------
def known_identity(store: Store, dataset: str, encoder: Encoder | str | None
               ) -> tuple[str, str] | None:
    """(name, version) an encoder spec resolves to, without loading any weights, when that can
    be known from the registry alone (catalog-clip, frozen); None otherwise."""
    if isinstance(encoder, Encoder):
        return encoder.name, encoder.version
    try:
        spec = parse_spec(encoder)
        if spec.kind == "catalog-clip" and not spec.argument:
            from recsys.encoders.catalog_clip import NAME, resolve_checkpoint
            row = resolve_checkpoint(store, dataset, spec.version)
            return NAME, str(row["version"])
        if spec.kind == "frozen":
            from recsys.encoders.catalog_clip import FROZEN_NAME, FROZEN_VERSION
            return FROZEN_NAME, spec.version or FROZEN_VERSION
    except EncoderError:
        return None     # get_encoder will raise the same error with its full message
    return None


def encoder_identity(store: Store, dataset: str, encoder: str | None) -> tuple[str, str]:
    """(name, version) the vectors of `encoder` are stored under, without loading any weights
    (a kind registered by a plugin is asked once)."""
    peek = known_identity(store, dataset, encoder)
    if peek is not None:
        return peek
    spec = parse_spec(encoder)
    if spec.kind == "conse":
        from recsys.encoders.conse import CONSE_NAME, CONSE_VERSION
        if spec.version not in (None, CONSE_VERSION):
            raise EncoderError(f"Unknown conse encoder version {spec.version!r}; the only one "
                               f"is {CONSE_VERSION}.")
        return CONSE_NAME, CONSE_VERSION
    if spec.kind == "openclip":
        from recsys.encoders.openclip_pretrained import file_version, resolve
        source = resolve(spec, store)
        return source.name, file_version(source.path) if source.path else str(source.tag)
    enc = get_encoder(encoder, store, dataset)   # a kind registered by a plugin: ask it once
    return enc.name, enc.version


def items_to_embed(store: Store, dataset: str, name: str, version: str, items: pd.DataFrame,
                   force: bool, rep: EmbedReport) -> dict[str, pd.DataFrame]:
    """The items whose vectors are missing or stale, per modality (fills the report's counts)."""
    hashes = items["content_hash"].where(items["content_hash"].notna(), None)
    current = dict(zip(items["item_id"], hashes))
    todo: dict[str, pd.DataFrame] = {}
    for modality in MODALITIES:
        stored = {} if force else store.embedding_hashes(dataset, name, version, modality)
        need = [i for i, h in current.items() if i not in stored or stored[i] != h or h is None]
        frame = items[items["item_id"].isin(set(need))]
        if modality == "image":
            has_photo = frame["image_path"].notna()
            rep.without_photo = int(items["image_path"].isna().sum())
            frame = frame[has_photo]
            rep.unchanged[modality] = int(items["image_path"].notna().sum()) - len(frame)
        else:
            rep.unchanged[modality] = len(items) - len(frame)
        todo[modality] = frame.reset_index(drop=True)
    return todo


def remove_stale(store: Store, dataset: str, name: str, version: str, modality: str,
                 keep: set[str]) -> int:
    """Delete the `modality` vectors of this encoder version whose item is not in `keep`;
    returns how many were deleted."""
    stored = store.embedding_hashes(dataset, name, version, modality)
    return store.delete_embeddings(dataset, name, version, modality,
                                   [i for i in stored if i not in keep])


def remember_encoder(store: Store, name: str, version: str, kind: str,
                     info: dict[str, Any]) -> None:
    """Record a non-catalog encoder (`info`: its plain-data description) in the registry the
    first time it is used, so that `get_encoder("name@version", store)` can rebuild it for
    search (e.g. an OpenCLIP file). Catalog-clip checkpoints are registered when trained."""
    if kind == "catalog-clip":
        return
    known = store.encoders()
    if ((known["name"] == name) & (known["version"] == version)).any():
        return
    store.register_encoder(name, version, kind, None, info.get("path"), info)
