"""Embedding a catalog with Ray Data: the same pipeline on a laptop and on a cluster.

`embed_items_ray(store, dataset, encoder, address=None, workers=None, ...)` embeds what
`recsys.vectors.embed.embed_items` would (items new to this encoder version or whose
`content_hash` changed; the same plan, `recsys.vectors.embed_plan.items_to_embed`) as a Ray
Data pipeline:

    the items table, read by the driver through the store
      -> `ray.data.from_pandas` blocks (item id, content hash, photo path, caption)
      -> `map_batches(EncodeBatch, compute=ActorPoolStrategy(size=workers))`: one encoder per
         actor, built from files only with `get_encoder(portable_spec(...))`; a worker never
         opens the DuckDB file (DuckDB allows one writing process: the driver)
      -> every output block written by the driver as an atomic Parquet shard
      -> `Store.import_embedding_shards`: all shards into DuckDB in one transaction.

Local Ray (`address=None`: `ray.init(num_cpus=workers)`, the `recsys` package shipped to the
workers with `runtime_env={"py_modules": ...}`) or a running cluster (`address="HOST:PORT"` or
`"auto"`); when the process already runs Ray (`ray.is_initialized()`, e.g. a test fixture) that
session is used as it is. On a cluster the photos and the checkpoint are read by the workers at
the paths the driver sees, so they must be on a shared file system (or the same paths on every
node); the shards are written by the driver only. Connecting is `recsys.vectors.ray_cluster`
(`ray_session`): a cluster address is probed first (`probe_address`: resolves, accepts a
connection, speaks gRPC, within seconds), because `ray.init` alone retries a wrong address
for many minutes; Ray missing or the cluster unreachable is a `RayUnavailable`.

Resumable: shards stay in `artifacts/<db>/embed-shards/<dataset>/<encoder>@<version>/` until
imported. A run stopped midway (Ctrl-C, the progress callback raising, a lost worker) keeps
the shards it finished and imports nothing; the next run reads them, skips the items they hold
with the same content hash, embeds only the rest, then imports everything at once and deletes
the shard folder. `force=True` starts over.

Throughput is measured per worker (actor): photos and texts encoded, seconds busy encoding,
photos/s; `RayEmbedReport.per_worker` and its summary carry them, progress events too.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.files import path_part
from recsys.core.progress import ProgressCallback, report, scaled
from recsys.encoders.base import EncoderError
from recsys.encoders.captions import item_caption
from recsys.encoders.registry import get_encoder, portable_spec
from recsys.store import Store
from recsys.vectors.embed_plan import (
    MODALITIES,
    EmbedReport,
    encoder_identity,
    items_to_embed,
    remember_encoder,
    remove_stale,
)
from recsys.vectors.ray_cluster import first_line, quiet_ray_data, ray_session

log = logging.getLogger(__name__)

PHOTO_COST = 10          # a photo costs ~10 texts: how the progress bar weighs them
SHARD_GLOB = "part-*.parquet"


# -- the report ---------------------------------------------------------------------------------
@dataclass
class WorkerStats:
    """What one Ray actor did: photos and texts encoded and the seconds spent encoding them."""

    worker: str
    batches: int = 0
    photos: int = 0
    texts: int = 0
    photo_seconds: float = 0.0
    text_seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def photos_per_s(self) -> float:
        return self.photos / self.photo_seconds if self.photo_seconds > 0 else 0.0

    @property
    def items_per_s(self) -> float:
        busy = self.photo_seconds + self.text_seconds
        return (self.photos + self.texts) / busy if busy > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "batches": self.batches, "photos": self.photos,
                "texts": self.texts, "photo_seconds": round(self.photo_seconds, 3),
                "text_seconds": round(self.text_seconds, 3),
                "load_seconds": round(self.load_seconds, 3),
                "photos_per_s": round(self.photos_per_s, 2),
                "items_per_s": round(self.items_per_s, 2)}


@dataclass
class RayEmbedReport(EmbedReport):
    """`EmbedReport` of a Ray run, with the cluster, the workers' throughput and the resume."""

    engine: str = "ray"
    address: str = "local"
    workers: int = 0
    per_worker: list[dict[str, Any]] = field(default_factory=list)
    encoded: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    resumed: dict[str, int] = field(default_factory=lambda: {"image": 0, "text": 0})
    shards: int = 0
    shard_dir: str = ""
    pipeline_seconds: float = 0.0

    @property
    def photos_per_s(self) -> float:
        """Photos encoded per second of the whole pipeline (start-up included)."""
        return self.encoded["image"] / self.pipeline_seconds if self.pipeline_seconds else 0.0

    def summary(self) -> str:
        lines = [super().summary()]
        if self.workers:
            lines.append(f"  Ray ({self.address}): {self.workers} workers, "
                         f"{self.encoded['image']:,} photos and {self.encoded['text']:,} texts "
                         f"encoded in {self.pipeline_seconds:.1f} s "
                         f"({self.photos_per_s:.1f} photos/s overall, start-up included).")
            for w in self.per_worker:
                lines.append(f"    worker {w['worker']}: {w['photos_per_s']:.1f} photos/s "
                             f"({w['photos']:,} photos, {w['texts']:,} texts, "
                             f"{w['photo_seconds'] + w['text_seconds']:.1f} s busy, "
                             f"model loaded in {w['load_seconds']:.1f} s)")
        if any(self.resumed.values()):
            lines.append(f"  Resumed: {self.resumed['image']:,} photos and "
                         f"{self.resumed['text']:,} texts came from the shards of an "
                         "interrupted run (not encoded again).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "photos_per_s": round(self.photos_per_s, 2)}


# -- the Ray worker -----------------------------------------------------------------------------
class EncodeBatch:
    """The `map_batches` callable class: one encoder per Ray actor, loaded once from files.

    `spec` must need no database (`encoders.portable_spec`); the encoder it loads must be
    `name@version`, the identity the driver stores the vectors under. A batch is a data frame
    of tasks (item_id, content_hash, image_path, caption, image, text); the result has one row
    per vector: item_id, modality, content_hash, vector, error (a photo that cannot be read:
    zeros and the reason) and the worker's timing of the call.
    """

    def __init__(self, spec: str, name: str, version: str, threads: int = 1,
                 batch_size: int = 64):
        os.environ["RECSYS_ENCODER_THREADS"] = str(max(1, int(threads)))
        start = time.perf_counter()
        self.encoder = get_encoder(spec)
        if (self.encoder.name, self.encoder.version) != (name, version):
            raise EncoderError(f"The worker loaded {self.encoder.spec} from {spec}, not "
                               f"{name}@{version}: the checkpoint file changed during the run. "
                               "Run the embedding again.")
        self.load_seconds = time.perf_counter() - start
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.batch_size = batch_size
        self.calls = 0
        self.info: str | None = json.dumps(self.encoder.info(), default=str)

    def __call__(self, batch: pd.DataFrame):
        import pyarrow as pa

        self.calls += 1
        ids, hashes, modality, errors, vectors = [], [], [], [], []
        photos = batch[batch["image"].astype(bool)]
        texts = batch[batch["text"].astype(bool)]
        start = time.perf_counter()
        if len(photos):
            failures: dict[int, str] = {}
            vecs = self.encoder.encode_images(list(photos["image_path"]),
                                              batch_size=self.batch_size, failures=failures)
            ids += list(photos["item_id"])
            hashes += list(photos["content_hash"])
            modality += ["image"] * len(photos)
            errors += [failures.get(i) for i in range(len(photos))]
            vectors.append(vecs)
        photo_seconds = time.perf_counter() - start
        start = time.perf_counter()
        if len(texts):
            vectors.append(self.encoder.encode_texts(list(texts["caption"])))
            ids += list(texts["item_id"])
            hashes += list(texts["content_hash"])
            modality += ["text"] * len(texts)
            errors += [None] * len(texts)
        text_seconds = time.perf_counter() - start
        matrix = (np.concatenate(vectors).astype(np.float32, copy=False) if vectors
                  else np.zeros((0, self.encoder.dim), dtype=np.float32))
        n, dim = matrix.shape[0], self.encoder.dim
        first = [self.info] + [None] * max(0, n - 1)
        self.info = None
        return pa.table({
            "item_id": pa.array(ids, type=pa.string()),
            "modality": pa.array(modality, type=pa.string()),
            "content_hash": pa.array([h if isinstance(h, str) else None for h in hashes],
                                     type=pa.string()),
            "vector": pa.ListArray.from_arrays(
                pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)),
                pa.array(matrix.ravel())),
            "error": pa.array(errors, type=pa.string()),
            "worker": pa.array([self.worker] * n, type=pa.string()),
            "call": pa.array([self.calls] * n, type=pa.int64()),
            "photo_seconds": pa.array([photo_seconds] * n, type=pa.float64()),
            "text_seconds": pa.array([text_seconds] * n, type=pa.float64()),
            "load_seconds": pa.array([self.load_seconds] * n, type=pa.float64()),
            "encoder_info": pa.array(first[:n], type=pa.string()),
        })


# -- shards on disk -----------------------------------------------------------------------------
def default_shard_dir(store: Store, dataset: str, name: str, version: str) -> Path:
    """`artifacts/<db>/embed-shards/<dataset>/<encoder>@<version>/`, beside the database."""
    from recsys.core.config import artifacts_dir

    return artifacts_dir(store.path, "embed-shards", path_part(dataset),
                         path_part(f"{name}@{version}"))


class ShardDir:
    """The Parquet shards of one (dataset, encoder version) embedding, until imported.

    A shard is written to a hidden temporary name and renamed when complete, so a crash never
    leaves half a shard under a shard name; an unreadable shard is deleted (its rows are
    embedded again).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.token = f"{os.getpid()}-{secrets.token_hex(3)}"
        for tmp in self.path.glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)
        self._next = 1 + max((self._number(p) for p in self.files()), default=0)

    @staticmethod
    def _number(path: Path) -> int:
        try:
            return int(path.name.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def files(self) -> list[Path]:
        return sorted(self.path.glob(SHARD_GLOB))

    def clear(self) -> None:
        for path in self.files():
            path.unlink(missing_ok=True)
        self._next = 1

    def done(self) -> tuple[dict[tuple[str, str], str | None], int]:
        """{(item_id, modality): content_hash} of the good rows already in shards, and how
        many unreadable shards were deleted."""
        import pyarrow.parquet as pq

        done: dict[tuple[str, str], str | None] = {}
        dropped = 0
        for path in self.files():
            try:
                table = pq.read_table(path, columns=["item_id", "modality", "content_hash",
                                                     "error"])
            except Exception as exc:     # a damaged file: any reader error means "redo"
                log.warning("dropping unreadable shard %s: %s", path, exc)
                path.unlink(missing_ok=True)
                dropped += 1
                continue
            cols = table.to_pydict()
            for item, mod, hsh, err in zip(cols["item_id"], cols["modality"],
                                           cols["content_hash"], cols["error"]):
                if err is None:
                    done[(item, mod)] = hsh
        return done, dropped

    def write(self, table) -> Path:
        """Write one output block as the next shard (atomically); returns its path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        number = self._next
        self._next += 1
        table = table.append_column("shard", pa.array([number] * table.num_rows, pa.int64()))
        final = self.path / f"part-{number:06d}-{self.token}.parquet"
        tmp = self.path / f".{final.name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        return final

    def save_info(self, info: str) -> None:
        (self.path / "encoder.json").write_text(info)

    def load_info(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "encoder.json").read_text())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# -- the pipeline -------------------------------------------------------------------------------
def _tasks(todo: dict[str, pd.DataFrame], done: dict[tuple[str, str], str | None],
           rep: RayEmbedReport) -> pd.DataFrame:
    """One row per item with something to encode: image / text flags, photo path, caption.
    Rows already in shards with the same content hash are counted as resumed, not redone."""
    parts = []
    for modality in MODALITIES:
        frame = todo.get(modality)
        if frame is None or frame.empty:
            continue
        hashes = frame["content_hash"].where(frame["content_hash"].notna(), None)
        again = [h is None or done.get((i, modality), "\0") != h
                 for i, h in zip(frame["item_id"], hashes)]
        rep.resumed[modality] = int(len(frame) - sum(again))
        frame = frame[np.asarray(again, dtype=bool)]
        if frame.empty:
            continue
        part = pd.DataFrame({
            "item_id": frame["item_id"].astype(str).to_numpy(),
            "content_hash": list(frame["content_hash"].where(frame["content_hash"].notna(),
                                                             None)),
            "image_path": ([_absolute(p) for p in frame["image_path"]]
                           if modality == "image" else None),
            "caption": ([item_caption(r) for r in frame.to_dict("records")]
                        if modality == "text" else None),
            "image": modality == "image", "text": modality == "text"})
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["item_id", "content_hash", "image_path", "caption",
                                     "image", "text"])
    both = pd.concat(parts, ignore_index=True)
    return (both.groupby("item_id", sort=False)
            .agg(content_hash=("content_hash", "first"), image_path=("image_path", "first"),
                 caption=("caption", "first"), image=("image", "any"), text=("text", "any"))
            .reset_index())


def _absolute(path: Any) -> str:
    text = str(path)
    return text if os.path.isabs(text) or "://" in text else os.path.abspath(text)


def embed_items_ray(store: Store, dataset: str | None = None, encoder: str | None = None, *,
                    address: str | None = None, workers: int | None = None,
                    batch_size: int = 64, force: bool = False, align: bool = False,
                    progress: ProgressCallback | None = None,
                    shard_dir: str | Path | None = None,
                    item_ids: list[str] | None = None) -> RayEmbedReport:
    """Embed new or changed items of `dataset` with a Ray Data pipeline (module docstring).

    `encoder`: a spec (default the dataset's newest catalog-clip checkpoint; with `align`, one
    is aligned first when there is none). `address`: a Ray cluster ("HOST:PORT", "auto"), None
    for local Ray. `workers`: encoder actors (default: every CPU Ray offers), one CPU each.
    `batch_size`: items per actor call and per shard. `force`: re-embed everything (and drop
    the shards of an interrupted run). `progress` gets Progress events (stage "ray", metrics
    photos_per_s); an exception raised by it stops the run, keeping the finished shards.
    `item_ids` limits the work to those items (as in `embed_items`).
    """
    t0 = time.perf_counter()
    if workers is not None and int(workers) < 1:
        raise RecsysError("--workers must be at least 1.")
    if batch_size < 1:
        raise RecsysError("--batch-size must be at least 1.")
    dataset = store.resolve_dataset(dataset)
    trained = None
    if align and encoder is None:
        from recsys.encoders.base import NoCheckpointError
        from recsys.encoders.catalog_clip import resolve_checkpoint, train_catalog_clip
        try:
            resolve_checkpoint(store, dataset, None)
        except NoCheckpointError:
            trained = train_catalog_clip(store, dataset, None,
                                         progress=scaled(progress, 0.0, 0.7)).spec
            progress = scaled(progress, 0.7, 1.0)
    name, version = encoder_identity(store, dataset, encoder)
    spec = portable_spec(encoder, store, dataset)
    items = store.items(dataset) if item_ids is None else store.items(dataset, item_ids)
    rep = RayEmbedReport(dataset, name, version, items=len(items), address=address or "local",
                         trained=trained)
    for modality in MODALITIES if item_ids is None else ():
        rep.removed[modality] = remove_stale(store, dataset, name, version, modality,
                                             set(items["item_id"]))
    todo = items_to_embed(store, dataset, name, version, items, force, rep)
    shards = ShardDir(Path(shard_dir) if shard_dir else
                      default_shard_dir(store, dataset, name, version))
    rep.shard_dir = str(shards.path)
    if force:
        shards.clear()
    done, _ = shards.done()
    tasks = _tasks(todo, done, rep)
    if len(tasks):
        _run_pipeline(tasks, spec, name, version, address, workers, batch_size, shards, rep,
                      progress)
    files = shards.files()
    rep.shards = len(files)
    if files:
        report(progress, 0.99, 1, f"importing {len(files):,} shards", stage="import")
        counts = store.import_embedding_shards(dataset, name, version, files)
        rep.embedded = {m: int(counts.get(m, 0)) for m in MODALITIES}
        info = shards.load_info()
        if info:
            remember_encoder(store, info["name"], info["version"], info.get("kind", "encoder"),
                             info)
        shards.remove()
    elif not len(tasks):
        shards.remove()
    rep.seconds = time.perf_counter() - t0
    report(progress, 1, 1, "done", stage="done")
    return rep


def _run_pipeline(tasks: pd.DataFrame, spec: str, name: str, version: str,
                  address: str | None, workers: int | None, batch_size: int,
                  shards: ShardDir, rep: RayEmbedReport,
                  progress: ProgressCallback | None) -> None:
    """Encode `tasks` on Ray actors, writing each output block as a shard as it arrives."""
    n_img, n_txt = int(tasks["image"].sum()), int(tasks["text"].sum())
    total = PHOTO_COST * n_img + n_txt
    report(progress, 0, total, "starting Ray", stage="load")
    with ray_session(address, workers) as cpus:
        import ray.data

        quiet_ray_data()
        size = int(workers or cpus or 1)
        if cpus and size > cpus:
            raise RecsysError(f"Asked for {size} workers but the Ray cluster offers {cpus} "
                              f"CPUs (one per worker); use --workers {cpus} or fewer.")
        rep.workers = size
        # one input block per batch: one actor call, one output block, one shard each, so a
        # stop loses at most the batches in flight
        ds = ray.data.from_pandas([tasks.iloc[i:i + batch_size].reset_index(drop=True)
                                   for i in range(0, len(tasks), batch_size)])
        ds = ds.map_batches(EncodeBatch, batch_size=batch_size, batch_format="pandas",
                            fn_constructor_kwargs={"spec": spec, "name": name,
                                                   "version": version, "threads": 1,
                                                   "batch_size": batch_size},
                            compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
        stats: dict[str, WorkerStats] = {}
        seen_calls: set[tuple[str, int]] = set()
        done = 0
        start = time.perf_counter()
        batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
        try:
            while True:
                try:
                    table = next(batches)
                except StopIteration:
                    break
                except Exception as exc:    # a Ray error: say what is kept and how to go on
                    raise _pipeline_error(exc, shards) from exc
                if table.num_rows == 0:
                    continue
                shards.write(table)
                cols = table.select(["modality", "error", "item_id", "worker", "call",
                                     "photo_seconds", "text_seconds", "load_seconds",
                                     "encoder_info"]).to_pydict()
                for info in cols["encoder_info"]:
                    if info:
                        shards.save_info(info)
                        break
                for i, (mod, err) in enumerate(zip(cols["modality"], cols["error"])):
                    w = stats.setdefault(cols["worker"][i], WorkerStats(cols["worker"][i]))
                    if (w.worker, cols["call"][i]) not in seen_calls:
                        seen_calls.add((w.worker, cols["call"][i]))
                        w.batches += 1
                        w.photo_seconds += cols["photo_seconds"][i]
                        w.text_seconds += cols["text_seconds"][i]
                        w.load_seconds = cols["load_seconds"][i]
                    if mod == "image":
                        w.photos += 1
                        done += PHOTO_COST
                        if err is None:
                            rep.encoded["image"] += 1
                        else:
                            rep.failed[cols["item_id"][i]] = err
                    else:
                        w.texts += 1
                        done += 1
                        rep.encoded["text"] += 1
                rep.per_worker = [s.to_dict() for s in stats.values()]
                elapsed = time.perf_counter() - start
                photos = sum(s.photos for s in stats.values())
                report(progress, done, total,
                       f"{photos:,}/{n_img:,} photos, {done - PHOTO_COST * photos:,}/"
                       f"{n_txt:,} texts on {size} workers", stage="ray",
                       photos_per_s=round(photos / elapsed, 2) if elapsed > 0 else 0.0,
                       per_worker=rep.per_worker)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            rep.pipeline_seconds = time.perf_counter() - start


def _pipeline_error(exc: BaseException, shards: ShardDir) -> RecsysError:
    """A Ray failure as a RecsysError: the cause when it is one of ours (raised in a worker),
    else a message saying that the finished shards are kept."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        # Ray wraps a worker's exception in a class derived from it; `.cause` is the original
        if isinstance(cause, RecsysError) and type(cause).__module__.startswith("recsys"):
            return cause
        inner = getattr(cause, "cause", None)
        cause = inner if isinstance(inner, BaseException) else cause.__cause__
    kept = len(shards.files())
    return RecsysError(f"The Ray embedding pipeline stopped: {first_line(exc)}. The {kept:,} "
                       f"shards finished so far are kept in {shards.path}; run the same "
                       "command again to embed only the rest.")
