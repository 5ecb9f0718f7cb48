"""Embedding a dataset's items: photo and caption vectors stored in DuckDB, incrementally.

Public API (used by the CLI and the app): `embed_items(store, dataset, encoder, progress)` and
`ensure_item_vectors(store, dataset, progress)` (train catalog-clip if the dataset has none,
then embed what is missing), both returning an `EmbedReport`.

`embed_items` writes one image vector (from the item's photo) and one text vector (from
`item_caption`) per item, keyed by (dataset, item, encoder name, encoder version, modality),
with the item's `content_hash`. Re-running embeds only items that are new or whose hash changed
(new text or new photo bytes), and removes vectors of items no longer in the catalog. Vectors
are written in chunks, so an interrupted run keeps what it finished. A photo that cannot be
decoded is reported and skipped (its text is still embedded); the next run tries it again.

Product videos (a catalog's `video` column, or `<item_id>.mp4` / `.webm`... in a `videos`
folder) become a third modality, `video`, made by the same encoder's image tower from a few
sampled frames (`recsys.data.video`), keyed by the video file's path, size and time; a video that
cannot be read is reported and skipped.

A catalog without photos (titles, categories, descriptions only) has nothing to align an
encoder on: by default its texts are embedded with the pretrained text tower as is
(`TEXT_ONLY_ENCODER`, no alignment needed), so `embed`, `train` and `evaluate` work on it with
their defaults.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled
from recsys.encoders.base import Encoder
from recsys.encoders.captions import item_caption
from recsys.encoders.feature_shards import DeferredStop
from recsys.encoders.registry import get_encoder
from recsys.store import Store
from recsys.vectors.embed_plan import (
    MODALITIES,
    EmbedReport,
    items_to_embed,
    known_identity,
    remember_encoder,
    remove_stale,
)

CHUNK = 512
IMAGE_CHUNK = 256      # photos written per transaction: what a Stop may wait for, at most
TEXT_ONLY_ENCODER = "frozen"
"""The encoder of a catalog without photos: the pretrained towers, unaligned (its text vectors
are MiniLM's sentence embeddings; nothing to align without photos)."""


def can_embed(store: Store, dataset: str) -> bool:
    """Whether `embed` can make vectors for the dataset: it has photos, or it is a catalog
    (whose texts can be embedded); not a dataset of bare item ids from an interaction log."""
    return store.photo_count(dataset) > 0 or store.dataset_kind(dataset) in ("catalog", "demo")


def default_encoder(store: Store, dataset: str) -> str | None:
    """The encoder `embed` uses when none is given: None (the dataset's newest catalog-clip
    checkpoint), or `TEXT_ONLY_ENCODER` for a catalog without photos and without a
    checkpoint."""
    if store.photo_count(dataset) > 0:
        return None
    from recsys.encoders import catalog_clip_checkpoints

    checkpoints = catalog_clip_checkpoints(store, dataset)
    return None if bool(checkpoints["exists"].any()) else TEXT_ONLY_ENCODER


def register_used_encoder(store: Store, encoder: Encoder) -> None:
    """Record a non-catalog encoder in the registry the first time it is used, so that
    `get_encoder("name@version", store)` can rebuild it for search (e.g. an OpenCLIP file)."""
    if encoder.kind != "catalog-clip":
        remember_encoder(store, encoder.name, encoder.version, encoder.kind, encoder.info())


def embed_items(store: Store, dataset: str | None = None, encoder: Encoder | str | None = None,
                progress: ProgressCallback | None = None, batch_size: int = 64,
                force: bool = False, item_ids: list[str] | None = None,
                videos: str | Path | None = None, outputs=None) -> EmbedReport:
    """Embed new or changed items of `dataset` with `encoder`; return what was done.

    `encoder` is an `Encoder` or a spec string (default: the dataset's newest catalog-clip
    checkpoint, raising `NoCheckpointError` if there is none; for a catalog without photos,
    the pretrained text tower, `TEXT_ONLY_ENCODER`). Only items without a vector of
    this encoder version, or whose `content_hash` changed since, are embedded; when nothing is
    to do the weights are not even loaded (well under a second). `force` re-embeds everything;
    `item_ids` limits the work to those items. `videos` is a folder of product videos named
    by item id (besides the catalog's `video` column). `progress` receives
    `recsys.core.progress.Progress` updates (fraction done, message, stage "texts" / "images" /
    "videos" / "done").
    `outputs`: the frozen towers' pooled outputs over some of the items, computed by the
    alignment that produced `encoder` (`recsys.encoders.features.TowerOutputs`); those photos
    and captions get their vectors from the heads only (no second pass of the image tower),
    `rep.reused` counts them.
    """
    t0 = time.perf_counter()
    dataset = store.resolve_dataset(dataset)
    items = store.items(dataset) if item_ids is None else store.items(dataset, item_ids)
    if encoder is None:
        encoder = default_encoder(store, dataset)
    peek = known_identity(store, dataset, encoder)
    enc: Encoder | None = encoder if isinstance(encoder, Encoder) else None
    if peek is None:
        enc = get_encoder(encoder, store, dataset)
        peek = (enc.name, enc.version)
    name, version = peek
    rep = EmbedReport(dataset, name, version, items=len(items))
    if item_ids is None:
        for modality in MODALITIES:
            rep.removed[modality] = remove_stale(store, dataset, name, version, modality,
                                                 set(items["item_id"]))
        removed = remove_stale(store, dataset, name, version, "video", set(items["item_id"]))
        if removed:
            rep.removed["video"] = removed
    todo = items_to_embed(store, dataset, name, version, items, force, rep)
    clips = _video_work(store, dataset, name, version, items, videos, force, rep)
    n_img, n_txt = len(todo["image"]), len(todo["text"])
    # a video (a dozen frames to decode and encode) costs ~40 texts, a photo ~10
    vid_share = 40 * len(clips) / max(1, 10 * n_img + n_txt + 40 * len(clips))
    base = scaled(progress, 0.0, 1.0 - vid_share) if clips else progress
    if (n_img or n_txt or clips) and enc is None:
        report(progress, 0, 1, f"loading {name}@{version}", stage="load")
        enc = get_encoder(encoder, store, dataset)
    if n_img and outputs is None:
        outputs = disk_outputs(store, dataset, enc)
    if n_img or n_txt:
        register_used_encoder(store, enc)
        # photos cost ~10x more than texts: share the bar accordingly
        img_share = (10 * n_img) / max(1, 10 * n_img + n_txt)
        _embed_texts(store, dataset, enc, todo["text"], rep, scaled(base, img_share, 1.0),
                     outputs)
        _embed_images(store, dataset, enc, todo["image"], rep,
                      scaled(base, 0.0, img_share), batch_size, outputs)
        _keep_type_names(store, dataset, enc)
    if clips:
        register_used_encoder(store, enc)
        _embed_videos(store, dataset, enc, clips, rep, scaled(progress, 1.0 - vid_share, 1.0))
    rep.seconds = time.perf_counter() - t0
    report(progress, 1, 1, "done", stage="done")
    return rep


def _keep_type_names(store: Store, dataset: str, enc: Encoder) -> None:
    """The catalog's type names through the encoder's text tower (loaded now anyway), kept
    beside the search index (`recsys.encoders.type_names`): "no close match" needs them, and
    the first photo query of a process then reads them instead of running the text tower.
    A failure here never fails the embedding (the search computes them if they are absent)."""
    from recsys.encoders.type_names import store_catalog_type_names

    if store.photo_count(dataset) == 0:           # no photo queries to decide on
        return
    try:
        store_catalog_type_names(store, dataset, enc)
    except (OSError, NotImplementedError, ValueError):
        pass


def disk_outputs(store: Store, dataset: str, enc: Encoder):
    """The photo features an alignment of this catalog kept on disk
    (`recsys.encoders.feature_shards`), as `outputs` for `embed_items`, when `enc` is a
    catalog-clip whose image tower is the frozen one they came from; else None."""
    from recsys.encoders.feature_shards import (
        PhotoFeatureShards,
        ShardOutputs,
        shard_folder,
        tower_key,
    )

    meta = getattr(enc, "meta", {}) or {}
    if enc.kind != "catalog-clip" or meta.get("image_trainable", 1) != 0:
        return None
    folder = shard_folder(store.path, dataset, tower_key(enc.image_size, enc.precision))
    shards = PhotoFeatureShards(folder)
    return ShardOutputs(shards) if len(shards) else None


def ensure_item_vectors(store: Store, dataset: str | None = None,
                        progress: ProgressCallback | None = None,
                        config: dict | None = None) -> EmbedReport:
    """Make sure `dataset` has catalog-clip vectors for every item: the one call for the app.

    A catalog without photos gets text vectors from the pretrained text tower
    (`TEXT_ONLY_ENCODER`), nothing is trained. Otherwise, if the dataset has no aligned
    catalog-clip encoder yet, trains one first
    (`train_catalog_clip` with the default, best measured configuration, or `config`); then
    embeds the items that have no (or a stale) vector of the newest checkpoint. Idempotent:
    when everything is in place it only reads the database (well under a second) and returns a
    report with nothing embedded. `EmbedReport.trained` names the encoder trained by this call,
    if any. Progress: training takes the first 70% of the bar when it runs.
    """
    from recsys.encoders.base import NoCheckpointError
    from recsys.encoders.catalog_clip import resolve_checkpoint, train_catalog_clip

    dataset = store.resolve_dataset(dataset)
    trained = None
    if default_encoder(store, dataset) == TEXT_ONLY_ENCODER:     # no photos: texts only
        return embed_items(store, dataset, TEXT_ONLY_ENCODER, progress=progress)
    encoder, outputs = None, None
    try:
        resolve_checkpoint(store, dataset, None)
        embed_progress = progress
    except NoCheckpointError:
        info = train_catalog_clip(store, dataset, config, progress=scaled(progress, 0.0, 0.7),
                                  keep=True)
        trained = info.spec
        # embed with the model just aligned (not reloaded) and over the tower outputs the
        # alignment computed: only the held-out items' photos go through the image tower
        if info.reuse is not None:
            encoder, outputs = info.reuse.encoder, info.reuse.outputs
        info.reuse = None
        embed_progress = scaled(progress, 0.7, 1.0)
    rep = embed_items(store, dataset, encoder, progress=embed_progress, outputs=outputs)
    rep.trained = trained
    return rep


def _embed_images(store: Store, dataset: str, enc: Encoder, frame: pd.DataFrame,
                  rep: EmbedReport, progress: ProgressCallback | None, batch_size: int,
                  outputs=None) -> None:
    n = len(frame)
    for start in range(0, n, IMAGE_CHUNK):
        part = frame.iloc[start:start + IMAGE_CHUNK]
        failures: dict[int, str] = {}
        rows = (outputs.image_rows(list(part["item_id"]), list(part["image_path"]),
                                   list(part["content_hash"]))
                if outputs is not None else np.full(len(part), -1))
        cached = np.flatnonzero(rows >= 0)
        fresh = np.flatnonzero(rows < 0)
        vecs = np.zeros((len(part), enc.dim), dtype=np.float32)
        if len(cached):         # the alignment's tower outputs: only the head runs
            vecs[cached] = enc.encode_image_features(outputs.image_features(rows[cached]))
            rep.reused["image"] = rep.reused.get("image", 0) + len(cached)
        guard = DeferredStop(_overall(progress, start, len(part), n))
        if len(fresh):
            # a Stop while these photos are encoded lets the chunk finish and be written
            # first, so the next run does not encode them again
            sub: dict[int, str] = {}
            vecs[fresh] = enc.encode_images(list(part["image_path"].iloc[fresh]),
                                            batch_size=batch_size, failures=sub,
                                            progress=guard)
            failures = {int(fresh[i]): reason for i, reason in sub.items()}
        ok = np.array([i not in failures for i in range(len(part))], dtype=bool)
        for i, reason in failures.items():
            rep.failed[str(part["item_id"].iloc[i])] = reason
        store.upsert_embeddings(dataset, enc.name, enc.version, "image",
                                list(part["item_id"][ok]), vecs[ok],
                                list(part["content_hash"][ok].where(
                                    part["content_hash"][ok].notna(), None)))
        rep.embedded["image"] += int(ok.sum())
        guard.raise_if()
        report(progress, start + len(part), n, f"{start + len(part):,}/{n:,} photos",
               stage="images")


def _overall(progress: ProgressCallback | None, start: int, size: int, n: int
             ) -> ProgressCallback | None:
    """Progress of one chunk of photos reported as progress over all `n` photos."""
    if progress is None:
        return None

    def inner(p) -> None:
        done = start + int(round(p.fraction * size))
        report(progress, done, n, f"{done:,}/{n:,} photos", stage="images")
    return inner


def _embed_texts(store: Store, dataset: str, enc: Encoder, frame: pd.DataFrame,
                 rep: EmbedReport, progress: ProgressCallback | None, outputs=None) -> None:
    n = len(frame)
    records = frame.to_dict("records")
    for start in range(0, n, 4 * CHUNK):
        part = records[start:start + 4 * CHUNK]
        captions = [item_caption(r) for r in part]
        rows = (outputs.text_rows([r["item_id"] for r in part], captions)
                if outputs is not None else np.full(len(part), -1))
        cached, fresh = np.flatnonzero(rows >= 0), np.flatnonzero(rows < 0)
        vecs = np.zeros((len(part), enc.dim), dtype=np.float32)
        if len(cached):         # the alignment's pooled caption features: the projection only
            vecs[cached] = enc.encode_text_features(outputs.text_features(rows[cached]))
            rep.reused["text"] = rep.reused.get("text", 0) + len(cached)
        if len(fresh):
            vecs[fresh] = enc.encode_texts([captions[i] for i in fresh])
        store.upsert_embeddings(dataset, enc.name, enc.version, "text",
                                [r["item_id"] for r in part], vecs,
                                [r["content_hash"] if isinstance(r["content_hash"], str) else None
                                 for r in part])
        rep.embedded["text"] += len(part)
        report(progress, start + len(part), n, f"{start + len(part):,}/{n:,} texts",
               stage="texts")


# -- videos -------------------------------------------------------------------------------------
VIDEO_CHUNK = 32


def item_videos(items: pd.DataFrame, videos: str | Path | None = None,
                refused: dict[str, str] | None = None) -> dict[str, str]:
    """item_id -> video file: the catalog's `video` (kept in the item's `extra` by the
    importer), else `<item_id>.mp4` / `.webm` / ... in the `videos` folder.

    A file of the folder that is a symlink leading out of it (the folder resolved) is not
    taken: its item id gets the reason in `refused` (the file's name only, never where the
    link leads)."""
    import json
    import os

    from recsys.data.video import VIDEO_SUFFIXES

    found: dict[str, str] = {}
    if "extra" in items:
        for item_id, extra in zip(items["item_id"], items["extra"]):
            if isinstance(extra, str) and '"video"' in extra:
                try:
                    path = json.loads(extra).get("video")
                except (ValueError, AttributeError):
                    path = None
                if isinstance(path, str) and path:
                    found[str(item_id)] = path
    if videos is not None:
        folder = Path(videos)
        if not folder.is_dir():
            from recsys.data.video import VideoError
            raise VideoError(f"Video folder not found: {folder}")
        base = os.path.realpath(folder)
        by_stem: dict[str, str | None] = {}
        for f in folder.iterdir():
            if f.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            real = os.path.realpath(f)
            if os.path.commonpath([base, real]) != base:
                by_stem[f.stem] = None              # a link out of the folder
            elif os.path.isfile(real):
                by_stem[f.stem] = real
        for item_id in items["item_id"]:
            key = str(item_id)
            if key in found or key not in by_stem:
                continue
            if by_stem[key] is None:
                if refused is not None:
                    refused[key] = "the video file is a link out of the videos folder; not read"
            else:
                found[key] = by_stem[key]
    return found


def _video_hash(path: str) -> str | None:
    """A cheap fingerprint of a video file (path, size, modification time); None if missing."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()


def _video_work(store: Store, dataset: str, name: str, version: str, items: pd.DataFrame,
                videos: str | Path | None, force: bool, rep: EmbedReport
                ) -> list[tuple[str, str, str]]:
    """(item_id, path, fingerprint) of the videos to embed (new or changed); counts in `rep`."""
    found = item_videos(items, videos, refused=rep.failed_videos)
    stored = {} if force else store.embedding_hashes(dataset, name, version, "video")
    if not found and not stored:
        return []
    todo, unchanged = [], 0
    for item_id, path in found.items():
        fingerprint = _video_hash(path)
        if fingerprint is None:
            rep.failed_videos[item_id] = f"video file not found: {Path(path).name}"
        elif stored.get(item_id) == fingerprint:
            unchanged += 1
        else:
            todo.append((item_id, path, fingerprint))
    rep.embedded["video"] = 0
    rep.unchanged["video"] = unchanged
    return todo


def _embed_videos(store: Store, dataset: str, enc: Encoder, clips: list[tuple[str, str, str]],
                  rep: EmbedReport, progress: ProgressCallback | None) -> None:
    from recsys.data.video import VideoError, encode_video

    n = len(clips)
    for start in range(0, n, VIDEO_CHUNK):
        ids, vectors, hashes = [], [], []
        for item_id, path, fingerprint in clips[start:start + VIDEO_CHUNK]:
            try:
                vectors.append(encode_video(enc, path))
            except VideoError as exc:
                rep.failed_videos[item_id] = str(exc)
                continue
            ids.append(item_id)
            hashes.append(fingerprint)
        if ids:
            store.upsert_embeddings(dataset, enc.name, enc.version, "video", ids,
                                    np.vstack(vectors), hashes)
            rep.embedded["video"] += len(ids)
        done = min(n, start + VIDEO_CHUNK)
        report(progress, done, n, f"{done:,}/{n:,} videos", stage="videos")
