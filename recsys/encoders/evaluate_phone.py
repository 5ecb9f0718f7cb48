"""Phone shots: find the exact product from a phone-style photo of it, on families it was not
tuned on.

Held-out catalog products (never used in alignment) are turned into phone-style queries by
several independent generators (`phone_families`: collage, room, bokeh, noise, flatlay;
reproducible from `seed`), encoded, and searched among the photo vectors of the whole catalog
(the product's own studio photo included):

- `exact_recall@1` / `exact_recall@10`: the product itself is first / in the top 10;
- `same_type_precision@10`: share of the top 10 of the query's category (article type).

**Leave one family out.** A catalog-clip encoder aligned with phone-style augmentation has seen
shots of its families. So for an aligned encoder the test re-aligns it (same settings as the
encoder under test, `CatalogClipConfig` from its registry row) once per family with that
family's augmented views masked out (`augment_exclude`), and scores each family only with the
alignment that never saw it. The crop (`crop.locate_product`) is a fixed rule, not tuned on any
family's scores here. Reported next to it: the same settings without augmentation
(`noaug_*`: one alignment), the untrained ConSE baseline (`conse_*`), and the encoder under
test itself on every family (`trained_*`: it was aligned with them, so this is *not* a held-out
number, shown for the gap). An encoder that was not aligned here (ConSE, frozen, OpenCLIP) is
scored directly on every family: nothing of it was tuned on them.

Query sets per family: `phone` (the shot as it is) and `phone_crop` (the search vector visual
search uses, `query_photo.encode_query_photo`: the mean of the whole shot's and its product
crop's vectors, `crop.locate_product`). `studio`: the catalog photo itself, as it is and
through the same query path (`studio_crop`: the crop must leave product shots alone). Keys:
`family:<name>:<set>_<metric>` per family, `<set>_<metric>` the mean over the families.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled

from .base import Encoder
from .evaluate import EvaluationError, category_field, heldout_items, heldout_rule_for
from .phone_families import FAMILIES, FAMILY_NAMES, DonorPool, check_families
from .registry import get_encoder

PROTOCOL = "encoder-phone-shots"
DEFAULT_QUERIES = 500
METRICS = ("exact_recall@1", "exact_recall@10", "same_type_precision@10")


@dataclass
class PhoneShotEvaluation:
    dataset: str
    encoder: str
    n_queries: int
    n_gallery: int
    seed: int
    metrics: dict[str, float]
    style: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None
    families: list[str] = field(default_factory=list)
    # "held-out family" (re-aligned once per family without it) or "fixed encoder"
    protocol: str = "fixed encoder"
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def family_rows(self, prefix: str = "") -> list[dict[str, Any]]:
        """One record per family (and the mean): `<prefix><set>_<metric>` values."""
        rows = []
        for name in self.families + ["mean"]:
            key = "" if name == "mean" else f"family:{name}:"
            rows.append({"family": name, **{k[len(key):]: v for k, v in self.metrics.items()
                                            if k.startswith(key + prefix) and
                                            (name != "mean" or not k.startswith("family:"))}})
        return rows


def exact_item_metrics(queries: np.ndarray, gallery: np.ndarray, own: np.ndarray,
                       labels: np.ndarray, k: int = 10) -> dict[str, float]:
    """Query i looks for gallery row own[i]; labels are the gallery rows' categories."""
    sims = queries @ gallery.T
    own_score = sims[np.arange(len(own)), own][:, None]
    rank = (sims > own_score).sum(1)
    k = min(k, gallery.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    same = labels[top] == labels[own][:, None]
    return {"exact_recall@1": float((rank < 1).mean()),
            f"exact_recall@{k}": float((rank < k).mean()),
            f"same_type_precision@{k}": float(same.mean())}


def make_phone_shots(items: pd.DataFrame, donors: Sequence[str], family: str, seed: int = 0):
    """One `phone_families.Shot` per item row of `family` (its own generator per (family,
    seed, item); donor photos drawn from `donors`, never the item's own photo)."""
    from .augment import render_view

    pool = DonorPool(donors, seed=seed)
    return [render_view(family, seed, str(item_id), pool, str(path))
            for item_id, path in zip(items["item_id"], items["image_path"])]


# -- features -----------------------------------------------------------------------------------
class _Features:
    """Pooled frozen-tower features, computed once per photo (or per phone shot) and shared by
    every alignment of the test (`features.TowerFeatures` interface plus `pil`)."""

    def __init__(self, inner, model, cfg):
        from .clip_encoder import normalise_pixels
        from .towers import IMAGE_MEAN, IMAGE_STD

        self.inner, self.model, self.cfg = inner, model, cfg
        self.pixels = lambda arrays: normalise_pixels(arrays, IMAGE_MEAN, IMAGE_STD)
        self._img: dict[str, Any] = {}
        self._views: dict[tuple[str, str], Any] = {}
        self._texts: dict[str, Any] = {}

    def images(self, model, paths, cfg, pixels, progress, flip):
        import torch

        missing = [p for p in dict.fromkeys(paths) if p not in self._img]
        if missing:
            got, _ = self.inner.images(self.model, missing, self.cfg, self.pixels, progress,
                                       False)
            self._img.update(zip(missing, got))
        return torch.stack([self._img[p] for p in paths]), None

    def texts(self, model, tokenize, texts, cfg, progress):
        import torch

        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if missing:
            got = self.inner.texts(self.model, tokenize, missing, self.cfg, progress)
            self._texts.update(zip(missing, got))
        return torch.stack([self._texts[t] for t in texts])

    def views(self, model, cfg, paths, item_ids, plan, pixels, progress, donor_paths):
        import torch

        from .augment import Views

        table = plan.table(item_ids)
        need = [(i, j) for i in range(len(item_ids)) for j in range(table.shape[1])
                if (table[i, j], str(item_ids[i])) not in self._views]
        if need:
            rows = sorted({i for i, _ in need})
            got = self.inner.views(self.model, self.cfg, [paths[i] for i in rows],
                                   [item_ids[i] for i in rows], plan, self.pixels, progress,
                                   donor_paths)
            for k, i in enumerate(rows):
                for j in range(table.shape[1]):
                    self._views[(got.families[k, j], str(item_ids[i]))] = got.features[k, j]
        feats = torch.stack([torch.stack([self._views[(table[i, j], str(item_ids[i]))]
                                          for j in range(table.shape[1])])
                             for i in range(len(item_ids))]) if table.shape[1] else \
            torch.empty((len(item_ids), 0, 1280), dtype=torch.bfloat16)
        return Views(feats, table)

    def pil(self, images, progress=None):
        """Features of in-memory photos (the queries)."""
        import torch

        from .clip_encoder import prepare_image
        from .training_data import autocast

        out = []
        with torch.inference_mode(), autocast(self.cfg):
            for start in range(0, len(images), 64):
                arrays = [prepare_image(im, self.cfg.tower.image_size)
                          for im in images[start:start + 64]]
                out.append(self.model.visual.trunk(self.pixels(arrays)).to(torch.bfloat16))
                report(progress, start + len(arrays), len(images), "query photos",
                       stage="queries")
        return torch.cat(out) if out else torch.empty((0, 1280), dtype=torch.bfloat16)


def head_vectors(model, feats) -> np.ndarray:
    """Unit photo vectors of a model's photo head over pooled features."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        return F.normalize(model.visual.head(feats.float()).float(), dim=-1).numpy()


def conse_vectors(head, feats) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        return F.normalize(head(feats.float()).float(), dim=-1).numpy()


def _config_of(store, dataset: str, enc: Encoder):
    """The CatalogClipConfig an aligned encoder was trained with (its registry row), else the
    defaults."""
    from .clip_config import CatalogClipConfig

    frame = store.encoders(dataset)
    row = frame[(frame["name"] == enc.name) & (frame["version"] == enc.version)]
    data: dict[str, Any] = {}
    if not row.empty:
        raw = row.iloc[0]["config"]
        data = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    known = set(CatalogClipConfig.__dataclass_fields__)
    return CatalogClipConfig.from_dict({k: v for k, v in data.items() if k in known})


def _score(metrics: dict, prefix: str, name: str, queries, gallery, own, labels) -> None:
    for key, value in exact_item_metrics(queries, gallery, own, labels).items():
        metrics[f"family:{name}:{prefix}{key}" if name else f"{prefix}{key}"] = value


def _means(metrics: dict, families: Sequence[str]) -> None:
    """`<set>_<metric>` = the mean over the families of `family:<f>:<set>_<metric>`."""
    keys = {k.split(":", 2)[2] for k in metrics if k.startswith("family:")}
    for key in sorted(keys):
        vals = [metrics[f"family:{f}:{key}"] for f in families if f"family:{f}:{key}" in metrics]
        if len(vals) == len(families):
            metrics[key] = float(np.mean(vals))


def evaluate_phone_shots(store, dataset: str | None = None,
                         encoder: Encoder | str | None = None, n: int = DEFAULT_QUERIES,
                         seed: int = 0, progress: ProgressCallback | None = None,
                         record: bool = True, families: Sequence[str] | None = None,
                         config=None, baseline: str | None = "conse",
                         features=None) -> PhoneShotEvaluation:
    """Score `encoder` (default: the dataset's newest catalog-clip) on `n` phone shots per
    family of held-out products against the whole catalog (see the module docstring).

    `families`: which families (default all); `config`: CatalogClipConfig overrides for the
    re-alignments of an aligned encoder (default: the encoder's own settings); `features`:
    where the frozen towers' outputs come from (default: computed; a benchmark passes a disk
    cache with the same interface as `features.TowerFeatures`).
    """

    from .alignment import align
    from .clip_config import CatalogClipConfig, check_config
    from .clip_encoder import torch_threads
    from .crop import locate_product
    from .hybrid import build_catalog_model
    from .query_photo import fuse
    from .features import TowerFeatures
    from .training_data import training_items

    t0 = time.perf_counter()
    families = check_families(list(families or FAMILY_NAMES))
    dataset = store.resolve_dataset(dataset)
    enc = encoder if isinstance(encoder, Encoder) else get_encoder(encoder, store, dataset)
    aligned = enc.name == "catalog-clip" and hasattr(enc, "model")
    catalog = store.items(dataset)
    catalog = catalog[catalog["image_path"].notna()].reset_index(drop=True)
    rule = heldout_rule_for(store, dataset, enc)
    held = heldout_items(store, dataset, rule)
    if n is not None:
        held = held.head(max(1, int(n)))
    if len(held) < 1 or len(catalog) < 2:
        raise EvaluationError(f"Dataset '{dataset}' has no held-out products with photos to "
                              "make phone shots of.")
    cat = category_field(catalog)
    labels = (catalog[cat].fillna("").astype(str).to_numpy(dtype=object) if cat
              else np.array([""] * len(catalog), dtype=object))
    pos = {i: k for k, i in enumerate(catalog["item_id"])}
    own = np.array([pos[i] for i in held["item_id"]])
    paths = [str(p) for p in catalog["image_path"]]

    # the queries: each family's shot of each held-out product, as it is and cropped
    shots: dict[str, list] = {}
    for f, fam in enumerate(families):
        report(progress, f, len(families) * 10, f"making {len(held)} {fam} shots",
               stage="shots")
        shots[fam] = [s.image for s in make_phone_shots(held, paths, fam, seed)]
    studio_photos = [_load(p) for p in held["image_path"]]
    crops = {fam: [locate_product(im) for im in shots[fam]] for fam in families}
    studio_crops = [locate_product(im) for im in studio_photos]

    metrics: dict[str, float] = {}
    cfg = None
    with torch_threads():
        if aligned:
            base = _config_of(store, dataset, enc) if config is None else \
                (config if isinstance(config, CatalogClipConfig)
                 else CatalogClipConfig.from_dict({**_config_of(store, dataset, enc).to_dict(),
                                                   **dict(config)}))
            cfg = replace(base, calibration_types=0, holdout=rule)   # gamma: no effect here
            check_config(cfg)
            # only the frozen trunk is used: no ConSE head to build
            fmodel = build_catalog_model(replace(cfg.tower, conse_residual=False),
                                         pretrained=True, instance=False).eval()
            feats = _Features(features if features is not None else TowerFeatures(), fmodel,
                              cfg)
            gallery_f, _ = feats.images(None, paths, cfg, None, scaled(progress, 0.1, 0.3),
                                        False)
            q_phone = {fam: feats.pil(shots[fam]) for fam in families}
            q_crop = {fam: feats.pil([c.image for c in crops[fam]]) for fam in families}
            q_studio_crop = feats.pil([c.image for c in studio_crops])
            items = training_items(store, dataset, rule)
            train = items[items["split"] != "heldout"].reset_index(drop=True)
            if cfg.max_items is not None:
                train = train.head(cfg.max_items)
            runs = [(fam, replace(cfg, augment_exclude=sorted(set(cfg.augment_exclude) | {fam})))
                    for fam in families] if cfg.augment_views > 0 else []
            runs.append(("noaug", replace(cfg, augment_views=0, instance_epochs=0)))
            for r, (name, run_cfg) in enumerate(runs):
                bar = scaled(progress, 0.3 + 0.65 * r / len(runs), 0.3 + 0.65 * (r + 1) / len(runs))
                report(bar, 0, 1, f"aligning without {name} shots" if name != "noaug"
                       else "aligning without augmentation", stage="align")
                model = align(train, run_cfg, bar, features=feats).model
                gallery = head_vectors(model, gallery_f)
                scored = [name] if name != "noaug" else families
                prefix = "" if name != "noaug" else "noaug_"
                for fam in scored:
                    full = head_vectors(model, q_phone[fam])
                    _score(metrics, prefix + "phone_", fam, full, gallery, own, labels)
                    _score(metrics, prefix + "phone_crop_", fam,
                           fuse(full, head_vectors(model, q_crop[fam])), gallery, own, labels)
            if cfg.augment_views <= 0:        # nothing to hold out: the encoder is the no-aug one
                for key in [k for k in metrics if ":noaug_" in k]:
                    metrics[key.replace(":noaug_", ":")] = metrics[key]
            # the encoder under test itself (aligned with every family: not held out)
            gallery = head_vectors(enc.model, gallery_f)
            for fam in families:
                _score(metrics, "trained_phone_crop_", fam,
                       fuse(head_vectors(enc.model, q_phone[fam]),
                            head_vectors(enc.model, q_crop[fam])), gallery, own, labels)
            _score(metrics, "studio_", "", gallery[own], gallery, own, labels)
            _score(metrics, "studio_crop_", "",
                   fuse(gallery[own], head_vectors(enc.model, q_studio_crop)), gallery, own,
                   labels)
            if baseline is not None:
                head = _conse_head(enc.model, fmodel, cfg)
                g = conse_vectors(head, gallery_f)
                for fam in families:
                    full = conse_vectors(head, q_phone[fam])
                    _score(metrics, "conse_phone_", fam, full, g, own, labels)
                    _score(metrics, "conse_phone_crop_", fam,
                           fuse(full, conse_vectors(head, q_crop[fam])), g, own, labels)
        else:
            gallery = _gallery(store, dataset, enc, catalog, scaled(progress, 0.1, 0.5))
            for f, fam in enumerate(families):
                bar = scaled(progress, 0.5 + 0.45 * f / len(families),
                             0.5 + 0.45 * (f + 1) / len(families))
                full = enc.encode_images(shots[fam], progress=bar)
                _score(metrics, "phone_", fam, full, gallery, own, labels)
                _score(metrics, "phone_crop_", fam,
                       fuse(full, enc.encode_images([c.image for c in crops[fam]])), gallery,
                       own, labels)
            _score(metrics, "studio_", "", gallery[own], gallery, own, labels)
            _score(metrics, "studio_crop_", "",
                   fuse(enc.encode_images([_load(p) for p in held["image_path"]]),
                        enc.encode_images([c.image for c in studio_crops])), gallery, own,
                   labels)
    for fam in families:
        metrics[f"family:{fam}:crop_rate"] = float(np.mean([c.box is not None
                                                            for c in crops[fam]]))
    metrics["studio_crop_rate"] = float(np.mean([c.box is not None for c in studio_crops]))
    _means(metrics, families)
    for name in ("phone", "phone_crop"):
        if f"{name}_exact_recall@10" in metrics:
            metrics[f"{name}_recall@10_vs_studio"] = (
                metrics[f"{name}_exact_recall@10"]
                / max(1e-9, metrics["studio_exact_recall@10"]))
    protocol = "held-out family" if aligned and cfg is not None and cfg.augment_views > 0 \
        else ("no augmentation" if aligned else "fixed encoder")
    style = {f: FAMILIES[f].description for f in families}
    ev = PhoneShotEvaluation(dataset, enc.spec, len(held), len(catalog), seed, metrics, style,
                             time.perf_counter() - t0, families=families, protocol=protocol,
                             config=cfg.to_dict() if cfg is not None else {})
    if record:
        run_id = store.start_run(dataset, "evaluation", enc.spec,
                                 {"protocol": PROTOCOL, "n": len(held), "seed": seed,
                                  "families": families, "evaluation": protocol})
        store.add_metrics(run_id, [(PROTOCOL, "all", k, None, v) for k, v in metrics.items()])
        store.finish_run(run_id, "finished", ev.seconds,
                         message=f"{len(held)} phone shots x {len(families)} families vs "
                                 f"{len(catalog)} photos ({protocol})")
        ev.run_id = run_id
    report(progress, 1, 1, "done", stage="done")
    return ev


def _conse_head(model, fmodel, cfg):
    """The untrained ConSE head (the baseline): the one inside a catalog-clip model's photo
    head (its buffers are the frozen classifier and class names), else built."""
    from .conse import ConseHead, build_conse_head
    from .towers import text_tokenizer

    for module in model.visual.head.modules():
        if isinstance(module, ConseHead):
            return module
    return build_conse_head(fmodel, text_tokenizer(cfg.tower.context_length))


def _load(path: str):
    from recsys.data.images import load_image
    return load_image(path).convert("RGB")


def _gallery(store, dataset: str, encoder: Encoder, items: pd.DataFrame,
             progress: ProgressCallback | None) -> np.ndarray:
    """Photo vectors of every catalog item: the stored ones when current, else computed."""
    ids = list(items["item_id"])
    stored_ids, stored = store.embeddings(dataset, encoder.name, encoder.version, "image")
    hashes = store.embedding_hashes(dataset, encoder.name, encoder.version, "image")
    if stored_ids and all(hashes.get(i) == h for i, h in zip(ids, items["content_hash"])):
        pos = {i: k for k, i in enumerate(stored_ids)}
        report(progress, 1, 1, "stored photo vectors", stage="gallery")
        return stored[[pos[i] for i in ids]]
    return encoder.encode_images(list(items["image_path"]), progress=progress)
